"""The shares of other sites (Open Cloud Mesh) as folders and files of `Shared/`:
`FederatedMounts` asks the storage's share service which ones the user accepted and opens each
with a `WebDAVStorage` of its own, at the other site's WebDAV with the share's secret.

It owns the list of mounts and their storages (made once per share, closed when the share
ends). It must not read files (the contents manager does, through `MountedStorage`) nor show a
secret anywhere: not in a log line, not in an answer.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Generator
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from traitlets import TraitError

from swan_contents import SwanContentsManager
from swan_contents.storage.base import EntryKind, InvalidPath, StorageError, normalize_path
from swan_contents.storage.mounted import Mount, MountedStorage
from swan_contents.storage.webdav.storage import WebDAVStorage

from .backend import ShareError
from .ocs import OCSShareBackend

#: what a share of the drive's list (its `type`) appears as under `Shared/`
KINDS: dict[str, EntryKind] = {"dir": "directory", "file": "file"}


class SecretAuth(httpx.Auth):
    """A share's secret on every request: `Bearer` (OCM 1.1), or as the Basic user name with
    no password (OCM 1.0 and Nextcloud)."""

    def __init__(self, secret: str, kind: str, origin: str):
        self.source = f"the secret of a share of {origin}"
        if kind == "basic":
            pair = base64.b64encode(f"{secret}:".encode()).decode("ascii")
            self._header = f"Basic {pair}"
        else:
            self._header = f"Bearer {secret}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def _mount_name(record: dict[str, Any]) -> str | None:
    """The name under `Shared/` of a record, if it is one name (never a path)."""
    name = record.get("mount_name")
    if not isinstance(name, str):
        return None
    try:
        normal = normalize_path(name)
    except InvalidPath:
        return None
    return normal if normal and "/" not in normal else None


class SharedFileStorage(WebDAVStorage):
    """The storage of a single shared file, at the parent of the file's URL (`_address`):
    only the file is ever asked, since its secret opens nothing else, so a refused write
    means what its status says (not a missing folder above it, which the secret cannot
    see)."""

    async def write_failure(self, path: str, response: httpx.Response) -> StorageError:
        return self.error_of(response, path)


def _address(uri: str, kind: str) -> tuple[str, str]:
    """The URL of the storage that reaches a share at `uri`, and the share's path in it: a
    folder is the storage's root; a single file is the last segment of its URL, reached
    from the storage of the URL's parent, since a storage's root is a folder (the secret
    opens the file only: nothing but that path is ever asked of the parent)."""
    if kind != "file":
        return uri, ""
    parts = urlsplit(uri)
    parent, _, name = parts.path.rstrip("/").rpartition("/")
    if not name:
        return "", ""
    return urlunsplit(parts._replace(path=f"{parent}/", query="", fragment="")), unquote(name)


class FederatedMounts:
    """The `MountSource` of the shares the user accepted from other sites.

    The list is asked of the storage's share service at most every `max_age` seconds (and at
    once after the user accepted or left a share here, or when a share's site refused its
    secret): a share ended at the other site disappears within that time.
    """

    def __init__(
        self, backend: OCSShareBackend, log: logging.Logger, *, max_age: float = 5.0
    ) -> None:
        self.backend = backend
        self.log = log
        self.max_age = max_age
        self._mounts: dict[str, Mount] = {}
        #: each share's storage, by what opens it: a changed secret or URL makes a new one
        self._storages: dict[tuple[str, ...], WebDAVStorage] = {}
        self._fetched = -math.inf
        self._lock = asyncio.Lock()
        backend.on_received_change(self.invalidate)

    def invalidate(self) -> None:
        """Ask anew at the next use."""
        self._fetched = -math.inf

    async def mounts(self) -> dict[str, Mount]:
        if time.monotonic() - self._fetched < self.max_age:
            return self._mounts
        return await self.refresh()

    async def refresh(self) -> dict[str, Mount]:
        asked = time.monotonic()
        async with self._lock:
            if self._fetched >= asked:
                # another request asked while this one waited
                return self._mounts
            try:
                records = await self.backend.federated_mounts()
            except ShareError as e:
                self.log.warning("Cannot list the shares of other sites: %s", e.message)
                records = None
            self._fetched = time.monotonic()
            if records is not None:
                await self._replace(records)
        return self._mounts

    async def _replace(self, records: list[dict[str, Any]]) -> None:
        mounts: dict[str, Mount] = {}
        storages: dict[tuple[str, ...], WebDAVStorage] = {}
        for record in records:
            name = _mount_name(record)
            kind = KINDS.get(str(record.get("type")))
            if name is None or kind is None or name in mounts:
                continue
            key = tuple(
                str(record.get(k) or "")
                for k in ("id", "webdav_uri", "webdav_auth", "shared_secret")
            )
            url, root = _address(str(record.get("webdav_uri") or ""), kind)
            storage = self._storages.get(key) or storages.get(key) or self._open(record, url, kind)
            if storage is None:
                continue
            storages[key] = storage
            permissions = record.get("ocm_permissions") or []
            mounts[name] = Mount(
                name=name,
                storage=storage,
                origin=str(record.get("owner_address") or record.get("remote") or "another site"),
                kind=kind,
                mtime=float(record.get("mtime") or 0),
                writable=isinstance(permissions, list) and "write" in permissions,
                root=root,
            )
        for key, storage in self._storages.items():
            if key not in storages:
                await storage.close()
        self._storages, self._mounts = storages, mounts

    def _open(self, record: dict[str, Any], url: str, kind: str) -> WebDAVStorage | None:
        origin = str(record.get("owner_address") or "another site")
        secret = record.get("shared_secret")
        if not isinstance(secret, str) or not secret or not url:
            return None
        try:
            opened = SharedFileStorage if kind == "file" else WebDAVStorage
            return opened(
                url=url,
                auth=SecretAuth(secret, str(record.get("webdav_auth") or "bearer"), origin),
                # the ownCloud family's properties (a share's permissions); its versions and
                # trash stay the owner's
                dialect="owncloud",
                verify_tls=self.backend.connection.verify_tls,
                log=self.log,
            )
        except (TraitError, StorageError) as e:  # a URL the share service should not give
            self.log.warning("A share of %s has no usable WebDAV address: %s", origin, e)
            return None

    async def close(self) -> None:
        for storage in self._storages.values():
            await storage.close()
        self._storages, self._mounts = {}, {}


def mount_shares_of_other_sites(cm: SwanContentsManager, backend: OCSShareBackend) -> None:
    """Show the accepted shares of other sites under `Shared/` of a WebDAV storage (where
    the storage's own shares are: a sync&share server mounts them there)."""
    if not backend.shares_of_other_sites or cm.storage.kind != "webdav":
        return
    if isinstance(cm.storage, MountedStorage):
        return
    cm.storage = MountedStorage(cm.storage, FederatedMounts(backend, cm.log))
