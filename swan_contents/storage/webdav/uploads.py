"""Uploads in parts: the local spool where JupyterLab's parts gather until the last one
(`Spool`), and the one `Uploader` that sends a finished file to the server, chosen once from the
server's capabilities: one streamed PUT, TUS (oCIS, Reva), Nextcloud's chunked upload (v2) or
ownCloud's (v1).

It owns the protocols of those uploads; it must not decide whether a write is conditional
(conditional writes are one PUT, by the driver) or map statuses to errors itself (the driver's
`error_of` and `write_failure` do).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin, urlsplit

from ..base import StorageError, StorageUnavailable, split_path
from .capabilities import TUS_VERSION, ServerCapabilities
from .checksums import Payload, new_checksum, verify_answer

if TYPE_CHECKING:
    from .storage import WebDAVStorage

#: Failed PATCH requests of a TUS upload resumed (from the offset the server reports) before
#: the upload is given up; each failure that made no progress counts.
TUS_ATTEMPTS = 3


class SpoolSettings(Protocol):
    spool_dir: str
    spool_max_age: float


class Spool:
    """Local files where the parts of each upload gather until its last part, one per target,
    with the checksum of each carried forward as parts arrive (so that the last part need not
    read the whole spool again)."""

    def __init__(self, settings: SpoolSettings):
        self.settings = settings
        #: the checksum of each spool so far: (algorithm, size hashed, hash object)
        self._hashes: dict[str, tuple[str, int, Any]] = {}

    def path_for(self, url: str) -> str:
        """The spool of an upload to `url`."""
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        return os.path.join(self.settings.spool_dir, f"{key}.part")

    def sweep(self) -> int:
        """Delete spools of uploads whose last part is older than `spool_max_age`."""
        horizon = time.time() - self.settings.spool_max_age
        deleted = 0
        try:
            with os.scandir(self.settings.spool_dir) as it:
                for de in it:
                    try:
                        if de.name.endswith(".part") and de.stat().st_mtime < horizon:
                            os.unlink(de.path)
                            deleted += 1
                    except OSError:
                        continue
        except OSError:
            pass
        for spool in list(self._hashes):
            if not os.path.exists(spool):
                self._hashes.pop(spool, None)
        return deleted

    def append(self, spool: str, chunk: int, data: bytes, algorithm: str | None) -> int:
        """Append a part (the first one starts the spool anew); with `algorithm`, carry the
        spool's checksum forward with it. Blocks: run it in a worker thread."""
        if chunk == 1:
            os.makedirs(self.settings.spool_dir, mode=0o700, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        else:
            flags = os.O_WRONLY | os.O_APPEND
        with open(os.open(spool, flags, 0o600), "wb") as f:
            before = os.fstat(f.fileno()).st_size
            f.write(data)
            f.flush()
            size = os.fstat(f.fileno()).st_size
        known = self._hashes.pop(spool, None)
        if algorithm is not None:
            if chunk == 1:
                known = (algorithm, 0, new_checksum(algorithm))
            if known is not None and known[:2] == (algorithm, before):
                known[2].update(data)
                self._hashes[spool] = (algorithm, size, known[2])
        return size

    def payload(self, spool: str, size: int) -> Payload:
        """The payload of a whole spool, with its checksum where it was carried along."""
        known = self._hashes.pop(spool, None)
        digests = {}
        if known is not None and known[1] == size:
            digests[known[0]] = known[2].hexdigest()
        return Payload(size, spool=spool, digests=digests)

    @staticmethod
    def remove(spool: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(spool)


def uploader_kind(setting: str, capabilities: ServerCapabilities) -> str:
    """Which upload in parts a large upload uses: `setting` (`WebDAVStorage.chunked_upload`)
    where it names one, else what the capabilities offer, read as ownCloud's desktop client
    reads them."""
    if setting != "auto":
        return setting
    if capabilities.tus:
        return "tus"
    if capabilities.dialect == "nextcloud" and capabilities.chunking == "1.0":
        return "v2"
    if capabilities.bigfilechunking and not capabilities.chunking:
        return "v1"
    return "none"


class Uploader:
    """Sends a whole file to the server unconditionally; this one as one streamed PUT, the
    subclasses in parts (each protocol one subclass) when it is larger than one part."""

    kind = "none"

    def __init__(self, storage: WebDAVStorage, capabilities: ServerCapabilities):
        self.storage = storage
        self.capabilities = capabilities

    async def publish(self, path: str, payload: Payload, checksum: str | None) -> None:
        """Put `payload` at `path` (with `checksum`, "SHA1:<hex>", for the server to verify)."""
        if payload.size > self.storage.chunk_size and await self.send_in_parts(
            path, payload, checksum
        ):
            return
        await self.storage.put_payload(path, payload, checksum=checksum, describe=False)

    async def send_in_parts(self, path: str, payload: Payload, checksum: str | None) -> bool:
        """Send the payload in parts; False, with none of it sent, where the server declines
        (then it goes as one PUT)."""
        return False

    def part_ranges(self, size: int, part: int | None = None) -> list[tuple[int, int]]:
        """(start, length) of each part of `size` bytes (one empty part for an empty file)."""
        part = part or self.storage.chunk_size
        return [(start, min(part, size - start)) for start in range(0, max(size, 1), part)]

    async def put_part(
        self,
        url: str,
        path: str,
        headers: dict[str, str],
        payload: Payload,
        start: int,
        length: int,
    ) -> Any:
        """PUT `length` bytes of the payload from `start` to `url`, streamed."""
        return await self.storage.send(
            "PUT",
            url,
            path,
            headers={**headers, "Content-Length": str(length)},
            content=payload.body(start, length),
        )


class NextcloudChunking(Uploader):
    """Nextcloud's chunked upload (v2): parts into uploads/<user>/<id>/, assembled on the
    server by one MOVE of `.file`. An upload that fails half way is deleted on the server."""

    kind = "v2"

    async def send_in_parts(self, path: str, payload: Payload, checksum: str | None) -> bool:
        storage = self.storage
        folder = (
            f"{storage.dav_root}uploads/{storage.dav_user_segment}/swan-{secrets.token_hex(12)}/"
        )
        target = {"Destination": storage.url_of(path)}
        total = {**target, "OC-Total-Length": str(payload.size)}
        response = await storage.send("MKCOL", folder, path, headers=target)
        if response.status_code not in (200, 201):
            raise storage.error_of(response, path)
        try:
            for number, (start, length) in enumerate(self.part_ranges(payload.size), 1):
                response = await self.put_part(
                    f"{folder}{number:05d}", path, total, payload, start, length
                )
                if response.status_code not in (200, 201, 204):
                    raise storage.error_of(response, path)
            headers = {**total, "OC-Checksum": checksum} if checksum else total
            response = await storage.send("MOVE", f"{folder}.file", path, headers=headers)
            if response.status_code in (409, 412):
                raise await storage.write_failure(path, response)
            if response.status_code not in (200, 201, 204):
                raise storage.error_of(response, path)
            await verify_answer(path, response, payload)
        except BaseException:
            with contextlib.suppress(StorageError):
                await storage.send("DELETE", folder, path)
            raise
        return True


class OwncloudChunking(Uploader):
    """ownCloud's chunked upload (v1): `PUT <name>-chunking-<id>-<count>-<index>` with
    `OC-Chunked: 1`; the server publishes the file when the last part arrives. The protocol
    has no way to drop the parts of an upload that fails half way: the server sweeps them."""

    kind = "v1"

    async def send_in_parts(self, path: str, payload: Payload, checksum: str | None) -> bool:
        storage = self.storage
        parts = self.part_ranges(payload.size)
        transfer = secrets.randbelow(2**31)
        headers = {"OC-Chunked": "1", "OC-Total-Length": str(payload.size)}
        if checksum:
            headers["OC-Checksum"] = checksum
        for index, (start, length) in enumerate(parts):
            url = f"{storage.url_of(path)}-chunking-{transfer}-{len(parts)}-{index}"
            response = await self.put_part(url, path, headers, payload, start, length)
            if response.status_code in (400, 403, 405, 409, 412):
                raise await storage.write_failure(path, response)
            if response.status_code not in (200, 201, 204):
                raise storage.error_of(response, path)
        await verify_answer(path, response, payload)
        return True


def _tus_metadata(**values: str) -> str:
    """An Upload-Metadata header: `key base64(value)` pairs separated by commas."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}" for key, value in values.items()
    )


class TusUpload(Uploader):
    """A TUS upload (oCIS, Reva): created by a POST to the folder, sent by PATCH requests of at
    most the server's `max_chunk_size`, resumed from the offset a HEAD reports when one breaks
    off. Declined (one PUT instead) where the server does not create one or names an upload
    URL on another host (whom our credentials are not for)."""

    kind = "tus"
    headers = {"Tus-Resumable": TUS_VERSION}

    async def send_in_parts(self, path: str, payload: Payload, checksum: str | None) -> bool:
        storage = self.storage
        folder, name = split_path(path)
        folder_url = storage.url_of(folder, folder=True)
        metadata = {"filename": name}
        if checksum:
            kind, _, digest = checksum.partition(":")
            metadata["checksum"] = f"{kind.lower()} {digest}"
        response = await storage.send(
            "POST",
            folder_url,
            path,
            headers={
                **self.headers,
                "Upload-Length": str(payload.size),
                "Upload-Metadata": _tus_metadata(**metadata),
                "Content-Length": "0",
            },
        )
        if response.status_code in (405, 412, 501):
            storage.log.info("The storage declined a TUS upload (%d)", response.status_code)
            return False
        if response.status_code != 201 or not response.headers.get("Location"):
            raise await storage.write_failure(path, response)
        location = urljoin(folder_url, response.headers["Location"])
        if urlsplit(location)[:2] != urlsplit(storage.url)[:2]:
            storage.log.warning("The storage named a TUS upload URL on another host: not used")
            return False
        try:
            await self._send(path, location, payload)
        except BaseException:
            # the termination extension; servers without it expire the upload themselves
            with contextlib.suppress(StorageError):
                await storage.send("DELETE", location, path, headers=self.headers)
            raise
        return True

    async def _send(self, path: str, location: str, payload: Payload) -> None:
        """PATCH the payload to a created TUS upload, resuming where the server says it is."""
        storage = self.storage
        part = min(storage.chunk_size, self.capabilities.tus_max_chunk or storage.chunk_size)
        offset, failures = 0, 0
        while offset < payload.size:
            length = min(part, payload.size - offset)
            try:
                response = await storage.send(
                    "PATCH",
                    location,
                    path,
                    headers={
                        **self.headers,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(length),
                    },
                    content=payload.body(offset, length),
                )
            except StorageUnavailable as e:
                broken: StorageError = e
            else:
                code = response.status_code
                if code in (200, 204):
                    reached = int(response.headers.get("Upload-Offset", offset + length))
                    if reached > offset:
                        offset, failures = reached, 0
                        continue
                    broken = StorageUnavailable(path, "the storage takes no more of the upload")
                elif code in (404, 410):
                    raise StorageUnavailable(
                        path, "the storage dropped the unfinished upload; send it again"
                    )
                elif code == 409 or code >= 500:
                    # 409: the server is at another offset than we thought; ask it
                    broken = storage.error_of(response, path)
                else:
                    raise storage.error_of(response, path)
            failures += 1
            if failures >= TUS_ATTEMPTS:
                raise broken
            resumed = await self._offset(path, location)
            if resumed > offset:
                failures = 0
            offset = resumed

    async def _offset(self, path: str, location: str) -> int:
        """How much of a TUS upload the server holds (HEAD), to resume from there."""
        response = await self.storage.send("HEAD", location, path, headers=self.headers)
        if response.status_code in (404, 410):
            raise StorageUnavailable(
                path, "the storage dropped the unfinished upload; upload again"
            )
        if response.status_code not in (200, 204) or "Upload-Offset" not in response.headers:
            raise self.storage.error_of(response, path)
        return int(response.headers["Upload-Offset"])


UPLOADERS: dict[str, type[Uploader]] = {
    u.kind: u for u in (Uploader, TusUpload, NextcloudChunking, OwncloudChunking)
}


def choose_uploader(storage: WebDAVStorage, capabilities: ServerCapabilities) -> Uploader:
    """The uploader for a server of these capabilities (see `WebDAVStorage.chunked_upload`)."""
    return UPLOADERS[uploader_kind(storage.chunked_upload, capabilities)](storage, capabilities)
