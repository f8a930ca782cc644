"""The version history of files: snapshots in a local area outside the synced space, EOS's own
`.sys.v#.<name>` folders (read only) and a WebDAV server's versions (Nextcloud, ownCloud, Reva).

It decides where versions come from and how they are named (ids usable as Jupyter checkpoint
ids); it must not write into the user's space: restoring is the contents manager's job.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .storage.base import (
    AlreadyExists,
    Entry,
    IsADirectory,
    NotFound,
    Storage,
    StorageError,
    VersionHistory,
    split_path,
)
from .storage.posix import PosixStorage

#: what a Jupyter checkpoint id may be (jupyter_server's route accepts `[\w-]+`)
ID_PATTERN = re.compile(r"[\w-]+")


@dataclass(frozen=True)
class Version:
    """One earlier (or the current) content of a file."""

    id: str
    mtime: float
    size: int | None
    #: where it lives: "swan" (our versions area), "eos" or "server"
    source: str

    @property
    def read_only(self) -> bool:
        return self.source != "swan"

    def to_json(self) -> dict[str, Any]:
        """The version as /swan/api/versions answers it (openapi.yaml, `Version`)."""
        return {
            "id": self.id,
            "last_modified": self.mtime,
            "size": self.size,
            "source": self.source,
            "read_only": self.read_only,
        }


def encode_id(prefix: str, name: str) -> str:
    """A checkpoint id for a storage's version name, reversible by `decode_id`."""
    if ID_PATTERN.fullmatch(name):
        return f"{prefix}-{name}"
    packed = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
    return f"{prefix}_{packed}"


def decode_id(prefix: str, version_id: str) -> str | None:
    """The storage's version name in an id made by `encode_id`, or None if not one of ours."""
    if version_id.startswith(f"{prefix}-"):
        return version_id[len(prefix) + 1 :]
    if version_id.startswith(f"{prefix}_"):
        packed = version_id[len(prefix) + 1 :]
        try:
            return base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode()
        except ValueError:
            return None
    return None


class VersionSource(abc.ABC):
    """Where some of a file's versions come from."""

    name: str = ""

    @abc.abstractmethod
    async def list(self, path: str) -> list[Version]:
        """The versions of the file at `path`, in any order; [] when it has none."""

    @abc.abstractmethod
    async def read(self, path: str, version_id: str) -> bytes:
        """The content of one version (`NotFound` if there is no such version)."""

    def owns(self, version_id: str) -> bool:
        return version_id.startswith(f"{self.name}-") or version_id.startswith(f"{self.name}_")


def _area_path(path: str, *, is_file: bool) -> str:
    """Where the versions of the storage path `path` live inside a local versions area: folders
    as `d.<name>`, a file's versions in `f.<name>/`, so no name can collide with another's."""
    parent, name = split_path(path)
    parts = [f"d.{p}" for p in parent.split("/") if p]
    parts.append(f"f.{name}" if is_file else f"d.{name}")
    return "/".join(parts)


class LocalVersions(VersionSource):
    """Snapshots kept in a local folder outside the synced space (so they never sync to the
    user's other devices). A snapshot is skipped when the newest one has the same content; the
    newest `max_count` are kept, and of those only the ones younger than `max_age` seconds,
    but never fewer than one."""

    name = "swan"

    def __init__(self, area: PosixStorage, max_count: int, max_age: float):
        self.area = area
        self.max_count = max_count
        self.max_age = max_age
        #: versions recorded after their save answered, one at a time, in order (record_later)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swan-versions")
        self._last: Future | None = None

    async def settled(self) -> None:
        """Wait until every version handed to `record_later` is written (or failed)."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.wrap_future(last)

    def record_later(self, path: str, data: bytes, log: logging.Logger) -> None:
        """Record `data` as a version of `path` in a background thread, after the ones handed
        here before; the other methods wait for them first.

        A save answers without waiting for its version: hashing and writing a copy of a 10 MB
        notebook took as long as its PUT to the storage. A failure is logged, never raised (the
        save it belongs to has succeeded). The thread finishes its work before the process
        exits, so a server that is stopped still writes the versions of its last saves.
        """

        def record() -> None:
            try:
                asyncio.run(self._record(path, data))
            except (StorageError, OSError) as e:
                log.warning("Could not keep a version of /%s: %s", path, e)

        self._last = self._writer.submit(record)

    @staticmethod
    def _id(when: float, digest: str) -> str:
        stamp = datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        return f"swan-{stamp}-{digest[:16]}"

    async def _entries(self, path: str):
        try:
            folder = await self.area.stat(_area_path(path, is_file=True), children=True)
        except NotFound:
            return []
        entries = [c for c in folder.children or () if c.name.startswith("swan-")]
        return sorted(entries, key=lambda e: e.name, reverse=True)

    async def list(self, path: str) -> list[Version]:
        await self.settled()
        return [
            Version(id=e.name, mtime=e.mtime, size=e.size, source=self.name)
            for e in await self._entries(path)
        ]

    async def read(self, path: str, version_id: str) -> bytes:
        if not ID_PATTERN.fullmatch(version_id):
            raise NotFound(path, f"no version {version_id}")
        await self.settled()
        _, data = await self.area.read(f"{_area_path(path, is_file=True)}/{version_id}")
        return data

    async def record(self, path: str, data: bytes) -> Version:
        """Keep `data` as the newest version of `path` (unless it is the newest already)."""
        await self.settled()
        return await self._record(path, data)

    async def _record(self, path: str, data: bytes) -> Version:
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        entries = await self._entries(path)
        if entries and entries[0].name.endswith(f"-{digest[:16]}"):
            newest = entries[0]
            return Version(id=newest.name, mtime=newest.mtime, size=newest.size, source="swan")
        folder = _area_path(path, is_file=True)
        await self._makedirs(folder)
        when = time.time()
        version_id = self._id(when, digest)
        if entries and version_id <= entries[0].name:
            # a clock that went back must not make the newest snapshot sort as older
            version_id = self._id(_id_time(entries[0].name) + 1e-6, digest)
        entry = await self.area.write(f"{folder}/{version_id}", data)
        await self._prune(folder, [entry.name, *[e.name for e in entries]], when)
        return Version(id=version_id, mtime=entry.mtime, size=entry.size, source=self.name)

    async def _prune(self, folder: str, names_newest_first: list[str], now: float) -> None:
        keep = names_newest_first[: self.max_count]
        horizon = now - self.max_age
        keep = keep[:1] + [n for n in keep[1:] if _id_time(n) >= horizon]
        for name in names_newest_first:
            if name not in keep:
                with contextlib.suppress(NotFound):
                    await self.area.delete(f"{folder}/{name}")

    async def _makedirs(self, area_dir: str) -> None:
        parts = area_dir.split("/")
        for i in range(1, len(parts) + 1):
            with contextlib.suppress(AlreadyExists):
                await self.area.mkdir("/".join(parts[:i]))

    async def delete(self, path: str, version_id: str) -> None:
        if not ID_PATTERN.fullmatch(version_id):
            raise NotFound(path, f"no version {version_id}")
        await self.settled()
        await self.area.delete(f"{_area_path(path, is_file=True)}/{version_id}")

    async def rename_all(self, old: str, new: str) -> None:
        """Move the versions of a file, or of everything below a folder, with it."""
        await self.settled()
        for is_file in (True, False):
            src = _area_path(old, is_file=is_file)
            dst = _area_path(new, is_file=is_file)
            if not await self.area.exists(src):
                continue
            await self._make_room(dst)
            await self.area.move(src, dst)

    async def _make_room(self, area_path: str) -> None:
        """Make the parent folders of `area_path` and delete what is there: versions left by an
        earlier file of that name are stale."""
        parent = split_path(area_path)[0]
        if parent:
            await self._makedirs(parent)
        with contextlib.suppress(NotFound):
            await self.area.delete(area_path, recursive=True)

    async def move_out(self, path: str, os_folder: str) -> None:
        """Move the versions of `path` (a file's, or all below a folder) out of the area into a
        new local folder `os_folder` (a trash entry's), to come back with `move_in`."""
        await self.settled()
        for is_file, name in ((True, "f"), (False, "d")):
            area_path = _area_path(path, is_file=is_file)
            if not await self.area.exists(area_path):
                continue
            await asyncio.to_thread(os.makedirs, os_folder, 0o700, True)
            await self.area.move_out(area_path, os.path.join(os_folder, name))

    async def move_in(self, os_folder: str, path: str) -> None:
        """Bring back versions kept by `move_out` as the versions of `path` (where the entry
        came back to), in place of any left there by an earlier entry of that name."""
        await self.settled()
        for is_file, name in ((True, "f"), (False, "d")):
            kept = os.path.join(os_folder, name)
            if not await asyncio.to_thread(os.path.lexists, kept):
                continue
            area_path = _area_path(path, is_file=is_file)
            await self._make_room(area_path)
            await self.area.move_in(kept, area_path)

    async def delete_all(self, path: str) -> None:
        await self.settled()
        for is_file in (True, False):
            with contextlib.suppress(NotFound):
                await self.area.delete(_area_path(path, is_file=is_file), recursive=True)


def _id_time(version_id: str) -> float:
    try:
        stamp = version_id.split("-")[1]
        parsed = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    except (IndexError, ValueError):
        return 0.0


class EosVersions(VersionSource):
    """EOS keeps a file's earlier contents in a hidden `.sys.v#.<name>` folder beside it; we
    read them and never write there (EOS makes and prunes them itself)."""

    name = "eos"

    def __init__(self, storage: Storage):
        self.storage = storage

    @staticmethod
    def folder(path: str) -> str:
        parent, name = split_path(path)
        return f"{parent}/.sys.v#.{name}" if parent else f".sys.v#.{name}"

    async def list(self, path: str) -> list[Version]:
        try:
            folder = await self.storage.stat(self.folder(path), children=True)
        except StorageError:
            return []
        return [
            Version(id=encode_id(self.name, c.name), mtime=c.mtime, size=c.size, source="eos")
            for c in folder.children or ()
            if not c.is_dir
        ]

    async def read(self, path: str, version_id: str) -> bytes:
        name = decode_id(self.name, version_id)
        if not name or "/" in name:
            raise NotFound(path, f"no version {version_id}")
        _, data = await self.storage.read(f"{self.folder(path)}/{name}")
        return data


class ServerVersions(VersionSource):
    """The versions a WebDAV server keeps of every file it stores (Nextcloud, ownCloud, Reva).

    Such a server lists only contents it replaced: a file never overwritten has no version.
    The current content stands in for one (`current`): its id names the content by the
    modification time, size and etag the file has now, and once a write replaces it the
    server's version of it is found by them (servers keep a version's modification time).
    So Jupyter's checkpoint of a file is the server's, with nothing copied aside.
    """

    name = "server"

    #: how the name of a stand-in for the current content starts (no server names one so)
    NOW = "now@"

    def __init__(self, storage: Storage, history: VersionHistory):
        self.storage = storage
        self.history = history

    async def list(self, path: str) -> list[Version]:
        return [
            Version(id=encode_id(self.name, v.name), mtime=v.mtime, size=v.size, source="server")
            for v in await self.history.list_versions(path)
        ]

    async def current(self, path: str) -> Version:
        """The current content of the file at `path`, as a version (a checkpoint)."""
        entry = await self.storage.stat(path)
        if entry.is_dir:
            raise IsADirectory(path, "folders have no versions")
        return self.current_of(entry)

    @classmethod
    def current_of(cls, entry: Entry) -> Version:
        """The content a file's entry describes (its stat), as a version."""
        name = f"{cls.NOW}{int(entry.mtime)}@{entry.size}@{entry.etag}"
        return Version(
            id=encode_id(cls.name, name), mtime=entry.mtime, size=entry.size, source="server"
        )

    async def _resolve(self, path: str, version_id: str) -> str | None:
        """The server's name of a version (None: the current content is that version)."""
        name = decode_id(self.name, version_id)
        if not name:
            raise NotFound(path, f"no version {version_id}")
        if not name.startswith(self.NOW):
            return name
        mtime, size, etag = (name[len(self.NOW) :].split("@", 2) + ["", ""])[:3]
        if (await self.storage.stat(path)).etag == etag:
            return None
        found = [
            v
            for v in await self.history.list_versions(path)
            if str(int(v.mtime)) == mtime and str(v.size) == size
        ]
        same = [v for v in found if v.etag == etag] or found
        if len(same) != 1:
            # not the file that is missing (path ""), but this version of it
            raise NotFound(
                "",
                "the storage no longer keeps that content"
                if not same
                else "the storage keeps several contents of that time and size",
            )
        return same[0].name

    async def read(self, path: str, version_id: str) -> bytes:
        name = await self._resolve(path, version_id)
        if name is None:
            return (await self.storage.read(path))[1]
        return await self.history.read_version(path, name)

    async def restore(self, path: str, version_id: str) -> None:
        name = await self._resolve(path, version_id)
        if name is not None:
            await self.history.restore_version(path, name)
