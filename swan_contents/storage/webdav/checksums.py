"""Checksums as the ownCloud family names them ("SHA1", "MD5", "ADLER32"), the bytes of one write
(`Payload`, in memory or in a local spool) with their digests computed at most once, and the
comparison of what a server says it stored with what was sent.

It must not send requests: the driver hands it the server's answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..base import ChecksumMismatch, Entry, StorageUnavailable

#: Bytes read from or sent to the spool of an upload per step (bounds the memory an upload takes).
SPOOL_BLOCK = 1024 * 1024


class _Adler32:
    """ADLER32 with hashlib's interface (the ownCloud family's third checksum type)."""

    def __init__(self) -> None:
        self.value = 1

    def update(self, data: bytes) -> None:
        self.value = zlib.adler32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def new_checksum(algorithm: str) -> Any:
    """A hash object for a checksum type as the ownCloud family names them ("SHA1", "MD5",
    "ADLER32", "SHA256"), by hashlib's lower-case name."""
    name = algorithm.lower().replace("-", "_")
    if name == "adler32":
        return _Adler32()
    return hashlib.new(name)


def checksum_algorithm(name: str) -> str | None:
    """hashlib's name of a checksum type we can compute ("SHA1" -> "sha1"), else None."""
    name = name.strip().lower().replace("-", "_")
    if name == "adler32" or name in hashlib.algorithms_available:
        return name
    return None


def parse_checksums(text: str) -> tuple[tuple[str, str], ...]:
    """`oc:checksums` ("SHA1:ab12 MD5:cd34 ADLER32:0a1b") as ((algorithm, hex digest), ...)."""
    found = []
    for part in text.split():
        kind, _, digest = part.partition(":")
        algorithm = checksum_algorithm(kind)
        if algorithm and digest:
            found.append((algorithm, digest.lower()))
    return tuple(found)


async def _spool_blocks(
    spool: str, start: int = 0, length: int | None = None
) -> AsyncIterator[bytes]:
    """The spool's bytes from `start` (`length` of them, or to the end), a block at a time: at
    most one block of an upload is in memory."""
    f = await asyncio.to_thread(open, spool, "rb")
    try:
        await asyncio.to_thread(f.seek, start)
        left = length
        while left is None or left > 0:
            want = SPOOL_BLOCK if left is None else min(SPOOL_BLOCK, left)
            block = await asyncio.to_thread(f.read, want)
            if not block:
                return
            if left is not None:
                left -= len(block)
            yield block
    finally:
        await asyncio.to_thread(f.close)


class Payload:
    """The bytes of one write: in memory, or in a local spool file of an upload in parts.

    It gives them as a request body as often as one is needed (a retry sends them again) and
    their checksums, each computed once (and not at all where nobody asks for one).
    """

    def __init__(
        self,
        size: int,
        *,
        data: bytes | None = None,
        spool: str | None = None,
        digests: dict[str, str] | None = None,
    ):
        self.size = size
        self.data = data
        self.spool = spool
        self._digests = dict(digests or {})

    def body(self, start: int = 0, length: int | None = None) -> bytes | AsyncIterator[bytes]:
        if self.data is not None:
            end = None if length is None else start + length
            return self.data if (start, end) == (0, None) else self.data[start:end]
        assert self.spool is not None
        return _spool_blocks(self.spool, start, length)

    def knows(self, algorithm: str) -> bool:
        """Whether the digest in `algorithm` is at hand without reading the bytes again."""
        return algorithm in self._digests

    async def digest(self, algorithm: str) -> str:
        """The hex digest in `algorithm` (hashlib's name, or "adler32")."""
        if algorithm not in self._digests:
            self._digests[algorithm] = await asyncio.to_thread(self._compute, algorithm)
        return self._digests[algorithm]

    async def header(self, algorithm: str | None) -> str | None:
        """`OC-Checksum` for these bytes ("SHA1:<hex>") in `algorithm`; None without one."""
        if algorithm is None:
            return None
        return f"{algorithm.upper().replace('_', '-')}:{await self.digest(algorithm)}"

    def _compute(self, algorithm: str) -> str:
        hasher = new_checksum(algorithm)
        if self.data is not None:
            hasher.update(self.data)
        else:
            assert self.spool is not None
            with open(self.spool, "rb") as f:
                while block := f.read(SPOOL_BLOCK):
                    hasher.update(block)
        return hasher.hexdigest()


async def verify_answer(path: str, response: httpx.Response, payload: Payload) -> None:
    """Compare the checksum a server answers a write with (Nextcloud's `X-Hash-SHA1`,
    `-MD5`, `-SHA256`) with the payload's; a server that answers none is not asked."""
    for algorithm in ("sha1", "md5", "sha256"):
        theirs = response.headers.get(f"X-Hash-{algorithm.upper()}")
        if theirs:
            ours = await payload.digest(algorithm)
            if theirs.strip().lower() != ours:
                raise ChecksumMismatch(
                    path,
                    f"the storage stored bytes other than those sent (their {algorithm.upper()}"
                    " differs)",
                )
            return


async def verify_stored(entry: Entry, payload: Payload) -> None:
    """Compare what the server says it stored (size, and a checksum where it reports one)
    with the payload, after an upload that the server assembled itself."""
    if entry.size is not None and entry.size != payload.size:
        raise StorageUnavailable(
            entry.path,
            f"the storage holds {entry.size} bytes of the {payload.size} sent; upload again",
        )
    if not entry.checksums:
        return
    algorithm, theirs = next(
        ((a, d) for a, d in entry.checksums if payload.knows(a)), entry.checksums[0]
    )
    if await payload.digest(algorithm) != theirs:
        raise ChecksumMismatch(
            entry.path,
            f"the storage holds bytes other than those sent (their {algorithm.upper()} "
            "differs); upload again",
        )
