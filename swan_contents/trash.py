"""Deleted files and folders, kept to be restored: a local trash area outside the synced space for
POSIX storages, or the WebDAV server's own trash bin (Nextcloud, ownCloud, Reva).

It owns the layout of the local area and its age policy; it must not decide what may be deleted
(the contents manager does) nor speak any protocol (the WebDAV driver does).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import asdict
from datetime import datetime, timezone

from .storage.base import Entry, LocalFolder, NotFound, StorageError, TrashItem
from .versions import LocalVersions

INFO = "info.json"
ENTRY = "entry"
VERSIONS = "versions"

__all__ = ["LocalTrash"]


class LocalTrash:
    """A trash area in a local folder: one folder per deleted entry holding the entry itself,
    `info.json` (where it was, when it was deleted) and the entry's versions, which come back
    with it. Entries older than `max_age` seconds are removed for good whenever something new is
    deleted."""

    def __init__(
        self,
        storage: LocalFolder,
        area: str,
        max_age: float,
        versions: LocalVersions | None = None,
        log: logging.Logger | None = None,
    ):
        self.storage = storage
        self.area = area
        self.max_age = max_age
        self.versions = versions
        self.log = log or logging.getLogger(__name__)

    def _new_id(self) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{stamp}-{secrets.token_hex(4)}"

    def _item_dir(self, item_id: str) -> str:
        if not item_id or "/" in item_id or item_id.startswith("."):
            raise NotFound("", f"no trash entry {item_id!r}")
        return os.path.join(self.area, item_id)

    async def put(self, path: str, entry: Entry) -> TrashItem:
        """Move the entry at `path` out of the space into the trash."""
        item = TrashItem(
            id=self._new_id(),
            name=entry.name,
            path=path,
            deleted=time.time(),
            size=entry.size,
            type="directory" if entry.is_dir else "file",
        )
        item_dir = self._item_dir(item.id)
        await asyncio.to_thread(self._prepare, item_dir, item)
        try:
            await self.storage.move_out(path, os.path.join(item_dir, ENTRY))
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, item_dir, True)
            raise
        if self.versions is not None:
            try:
                await self.versions.move_out(path, os.path.join(item_dir, VERSIONS))
            except (StorageError, OSError) as e:
                # the entry is in the trash: that is what the delete promised
                self.log.warning("The versions of /%s stay behind, not in the trash: %s", path, e)
        await asyncio.to_thread(self._sweep)
        return item

    def _prepare(self, item_dir: str, item: TrashItem) -> None:
        os.makedirs(self.area, mode=0o700, exist_ok=True)
        os.mkdir(item_dir, 0o700)
        with open(os.path.join(item_dir, INFO), "w", encoding="utf-8") as f:
            json.dump(asdict(item), f)

    def _sweep(self) -> None:
        horizon = time.time() - self.max_age
        for item in self._list():
            if item.deleted < horizon:
                shutil.rmtree(self._item_dir(item.id), ignore_errors=True)

    def _list(self) -> list[TrashItem]:
        items = []
        try:
            names = os.listdir(self.area)
        except FileNotFoundError:
            return []
        for name in names:
            try:
                with open(os.path.join(self.area, name, INFO), encoding="utf-8") as f:
                    items.append(TrashItem(**json.load(f)))
            except (OSError, ValueError, TypeError):
                continue  # half made or foreign: not an entry
        return sorted(items, key=lambda i: i.deleted, reverse=True)

    async def list(self) -> list[TrashItem]:
        return await asyncio.to_thread(self._list)

    @staticmethod
    def _read_info(item_dir: str, item_id: str) -> TrashItem:
        try:
            with open(os.path.join(item_dir, INFO), encoding="utf-8") as f:
                return TrashItem(**json.load(f))
        except (OSError, ValueError, TypeError):
            raise NotFound("", f"no trash entry {item_id!r}") from None

    async def restore(self, item_id: str, target: str | None = None) -> Entry:
        """Put an entry back where it was (or at `target`); never replaces anything there."""
        item_dir = self._item_dir(item_id)
        item = await asyncio.to_thread(self._read_info, item_dir, item_id)
        destination = item.path if target is None else target
        entry = await self.storage.move_in(os.path.join(item_dir, ENTRY), destination)
        if self.versions is not None:
            try:
                await self.versions.move_in(os.path.join(item_dir, VERSIONS), entry.path)
            except (StorageError, OSError) as e:
                self.log.warning(
                    "The versions of /%s could not come back with it: %s", entry.path, e
                )
        await asyncio.to_thread(shutil.rmtree, item_dir, True)
        return entry
