"""Streamed uploads: one file arriving as a stream of raw bytes (one HTTP request body), written
to the storage in bounded parts through `Storage.write_chunk`, published atomically at its end.

It owns the order of an upload (checks before any byte, parts, publish or drop) and the memory it
holds (one part at most). It must not read HTTP: the request handler feeds it bytes
(swan_share_ext/upload.py); nor touch storage except through the contents manager's storage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tornado.web import HTTPError

from .errors import storage_errors
from .storage.base import (
    AlreadyExists,
    Conflict,
    Entry,
    IsADirectory,
    NotADirectory,
    NotFound,
    PermissionDenied,
    StorageError,
    split_path,
)

if TYPE_CHECKING:
    from .manager import SwanContentsManager

MIB = 1024 * 1024

#: bytes gathered before they go to the storage as one part: the memory an upload holds
PART_SIZE = 4 * MIB


class StreamedUpload:
    """One upload of `size` bytes to `path`, made by `SwanContentsManager.start_upload` once
    the path, the target and the condition passed (so a refusal costs the client no body).

    Feed it the body with `feed`; `finish` publishes the file, `abandon` forgets what came
    (the old file stays as it was). A body that fits in one part is one `Storage.write`;
    a larger one goes in parts 1, 2, … and -1, which publishes it.
    """

    def __init__(
        self,
        manager: SwanContentsManager,
        path: str,
        size: int,
        *,
        existed: bool,
        if_match: str | None,
        create_only: bool,
        done: Callable[[str], None],
    ):
        self.manager = manager
        #: called with the path once the upload is published, refused or abandoned
        self._done = done
        self.path = path
        self.size = size
        #: whether a file was at `path` when the upload started (201 or 200)
        self.existed = existed
        self.if_match = if_match
        self.create_only = create_only
        self.received = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._parts_sent = 0
        self._finishing = False
        self._sending: asyncio.Future | None = None

    async def feed(self, data: bytes) -> None:
        """Take the next bytes of the body. A whole part goes to the storage while the next
        one arrives; the part after waits for it (the caller reads no more meanwhile), so
        memory stays at two parts."""
        self.received += len(data)
        if self.received > self.size:
            raise HTTPError(400, "The request body is longer than its Content-Length")
        self._buffer.append(data)
        self._buffered += len(data)
        # the last bytes stay for `finish`, which publishes with them
        if self._buffered >= PART_SIZE and self.received < self.size:
            await self._sent()
            self._parts_sent += 1
            self._sending = asyncio.ensure_future(
                self.manager.storage.write_chunk(self.path, self._parts_sent, self._take())
            )

    def _take(self) -> bytes:
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        return data

    async def _sent(self) -> None:
        """Wait for the part being written, if any; its failure is the upload's."""
        sending, self._sending = self._sending, None
        if sending is not None:
            with storage_errors():
                await sending

    async def finish(self) -> dict[str, Any]:
        """Publish the whole body at the path and return its model (without content)."""
        if self.received != self.size:
            raise HTTPError(
                400, f"The request body ended after {self.received} of {self.size} bytes"
            )
        self._finishing = True
        cm = self.manager
        data = self._take()
        try:
            if self._parts_sent == 0:
                with storage_errors():
                    entry = await cm._write(
                        self.path, data, self.if_match, self.create_only, "fail"
                    )
                await cm.record_version_later(entry.path, data)
            else:
                await self._sent()
                with storage_errors():
                    entry = await cm.storage.write_chunk(
                        self.path,
                        -1,
                        data,
                        if_match=self.if_match,
                        create_only=self.create_only,
                    )
        except BaseException:
            await self._drop()
            raise
        finally:
            self._done(self.path)
        saved = cm._model(entry, "file")
        cm.run_post_save_hooks(model=saved, os_path=cm.local_path(entry.path))
        cm.emit(data={"action": "save", "path": entry.path})
        return saved

    async def abandon(self) -> None:
        """The client went away before the end of its body: drop the parts sent so far (after
        the one being written, if any). Nothing at the path changes. Never raises."""
        if self._finishing:
            return
        self._finishing = True
        self._buffer.clear()
        with contextlib.suppress(Exception):
            await self._sent()
        try:
            await self._drop()
        finally:
            self._done(self.path)

    async def _drop(self) -> None:
        if self._parts_sent:
            with contextlib.suppress(StorageError):
                await self.manager.storage.drop_upload(self.path)


async def check_upload_target(
    manager: SwanContentsManager, path: str, if_match: str | None, create_only: bool
) -> bool:
    """Refuse an upload to `path` before any of its body is read, as a save of it would be
    refused: a folder there, a condition that fails now, a file or folder the user may not
    write, a folder missing above it. Whether a file is there now."""
    storage = manager.storage
    with storage_errors():
        try:
            entry: Entry | None = await storage.stat(path)
        except NotFound:
            entry = None
        if entry is not None and entry.is_dir:
            raise IsADirectory(path, "a folder of that name exists")
        if create_only and entry is not None:
            raise AlreadyExists(path, current_etag=entry.etag or None)
        current = entry.etag or None if entry is not None else None
        if if_match is not None and current != if_match:
            raise Conflict(path, current)
        if entry is not None and not entry.writable:
            raise PermissionDenied(path, "the file is read-only")
        if entry is None:
            parent = split_path(path)[0]
            try:
                folder = await storage.stat(parent)
            except NotFound:
                raise NotFound(path, f"the folder /{parent} does not exist") from None
            if not folder.is_dir:
                raise NotADirectory(path, f"/{parent} is a file, not a folder")
            if not folder.writable:
                raise PermissionDenied(path, "the folder is read-only")
    return entry is not None
