"""Jupyter's checkpoints API over the version history of files (`swan_contents.versions`).

Every version is a checkpoint: snapshots in the versions folder outside the synced space, EOS's
and a WebDAV server's own versions. Nothing of them lands in the synced space (no
`.ipynb_checkpoints`). This module only translates; the contents manager owns the history.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from tornado.web import HTTPError

from .errors import storage_errors
from .storage.base import NotFound
from .versions import Version


def checkpoint_model(version: Version) -> dict[str, Any]:
    return {
        "id": version.id,
        "last_modified": datetime.fromtimestamp(version.mtime, tz=timezone.utc),
    }


class SwanCheckpoints(AsyncCheckpoints):
    """Checkpoints = versions, listed newest first, the current content first of all where the
    storage keeps versions itself. `create` snapshots the stored content into the versions
    folder; where the storage keeps versions, the current content is the checkpoint, which the
    storage keeps as a version once a write replaces it (nothing is read or copied aside)."""

    async def create_checkpoint(self, contents_mgr, path: str) -> dict[str, Any]:
        path = contents_mgr.storage_path(path)
        with storage_errors():
            current = await contents_mgr.current_version(path)
            if current is not None:
                return checkpoint_model(current)
            _, data = await contents_mgr.storage.read(path)
            version = await contents_mgr.local_versions.record(path, data)
        return checkpoint_model(version)

    async def restore_checkpoint(self, contents_mgr, checkpoint_id: str, path: str) -> None:
        await contents_mgr.restore_version(path, checkpoint_id)

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        try:
            versions = await self.parent.list_versions(path, current=True)
        except HTTPError as e:
            if e.status_code == 404:
                return []
            raise
        return [checkpoint_model(v) for v in versions]

    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        await self.rename_all_checkpoints(old_path, new_path)

    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        """Move the versions of a file, or of everything below a folder, with it."""
        old = self.parent.storage_path(old_path)
        new = self.parent.storage_path(new_path)
        with storage_errors():
            await self.parent.local_versions.rename_all(old, new)

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        path = self.parent.storage_path(path)
        if not self.parent.local_versions.owns(checkpoint_id):
            raise HTTPError(
                403, f"Version {checkpoint_id} of /{path} is kept by the storage and stays there"
            )
        try:
            await self.parent.local_versions.delete(path, checkpoint_id)
        except NotFound:
            raise HTTPError(404, f"Checkpoint does not exist: /{path}@{checkpoint_id}") from None

    async def delete_all_checkpoints(self, path: str) -> None:
        path = self.parent.storage_path(path)
        with storage_errors():
            await self.parent.local_versions.delete_all(path)
