"""Checkpoints kept in a versions area outside the user's synced space.

Nothing of them lands in the space, so desktop sync clients never upload them. The area mirrors
the space's tree with each folder stored as `d.<name>` and each file's checkpoints in
`f.<name>/`, so no file name can collide with another's checkpoints. This module must not read or
write the space except through the contents manager's storage.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime, timezone
from typing import Any

from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from tornado.web import HTTPError

from .errors import storage_errors
from .storage.base import AlreadyExists, NotFound, split_path
from .storage.posix import PosixStorage

CHECKPOINT_ID = "checkpoint"


def _area_path(path: str, *, is_file: bool) -> str:
    """Where the checkpoints of the storage path `path` live inside the versions area."""
    parent, name = split_path(path)
    parts = [f"d.{p}" for p in parent.split("/") if p]
    parts.append(f"f.{name}" if is_file else f"d.{name}")
    return "/".join(parts)


class SwanCheckpoints(AsyncCheckpoints):
    """One checkpoint per file (id "checkpoint"), as Jupyter's stock checkpoints, stored in
    `SwanContentsManager.versions_dir`."""

    _area: PosixStorage | None = None

    @property
    def area(self) -> PosixStorage:
        if self._area is None:
            versions_dir = self.parent.versions_dir
            os.makedirs(versions_dir, mode=0o700, exist_ok=True)
            self._area = PosixStorage(versions_dir)
        return self._area

    def _model(self, mtime: float) -> dict[str, Any]:
        return {
            "id": CHECKPOINT_ID,
            "last_modified": datetime.fromtimestamp(mtime, tz=timezone.utc),
        }

    async def _makedirs(self, area_dir: str) -> None:
        parts = area_dir.split("/")
        for i in range(1, len(parts) + 1):
            with contextlib.suppress(AlreadyExists):
                await self.area.mkdir("/".join(parts[:i]))

    async def create_checkpoint(self, contents_mgr, path: str) -> dict[str, Any]:
        path = contents_mgr.storage_path(path)
        with storage_errors():
            _, data = await contents_mgr.storage.read(path)
            area_dir = _area_path(path, is_file=True)
            await self._makedirs(area_dir)
            entry = await self.area.write(f"{area_dir}/{CHECKPOINT_ID}", data)
        return self._model(entry.mtime)

    async def restore_checkpoint(self, contents_mgr, checkpoint_id: str, path: str) -> None:
        path = contents_mgr.storage_path(path)
        try:
            _, data = await self.area.read(self._file(path, checkpoint_id))
        except NotFound:
            raise HTTPError(404, f"Checkpoint does not exist: /{path}@{checkpoint_id}") from None
        with storage_errors():
            await contents_mgr.storage.write(path, data)

    def _file(self, path: str, checkpoint_id: str) -> str:
        if checkpoint_id != CHECKPOINT_ID:
            raise HTTPError(404, f"Checkpoint does not exist: /{path}@{checkpoint_id}")
        return f"{_area_path(path, is_file=True)}/{CHECKPOINT_ID}"

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        path = self.parent.storage_path(path)
        try:
            entry = await self.area.stat(self._file(path, CHECKPOINT_ID))
        except NotFound:
            return []
        return [self._model(entry.mtime)]

    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        await self.rename_all_checkpoints(old_path, new_path)

    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        """Move the checkpoints of a file, or of everything below a folder, with it."""
        old = self.parent.storage_path(old_path)
        new = self.parent.storage_path(new_path)
        for is_file in (True, False):
            src = _area_path(old, is_file=is_file)
            dst = _area_path(new, is_file=is_file)
            with storage_errors():
                if not await self.area.exists(src):
                    continue
                parent = split_path(dst)[0]
                if parent:
                    await self._makedirs(parent)
                # leftovers of an earlier file of that name are stale
                with contextlib.suppress(NotFound):
                    await self.area.delete(dst, recursive=True)
                await self.area.move(src, dst)

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        path = self.parent.storage_path(path)
        try:
            await self.area.delete(self._file(path, checkpoint_id))
        except NotFound:
            raise HTTPError(404, f"Checkpoint does not exist: /{path}@{checkpoint_id}") from None

    async def delete_all_checkpoints(self, path: str) -> None:
        path = self.parent.storage_path(path)
        for is_file in (True, False):
            with storage_errors(), contextlib.suppress(NotFound):
                await self.area.delete(_area_path(path, is_file=is_file), recursive=True)
