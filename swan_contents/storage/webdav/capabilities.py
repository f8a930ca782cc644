"""What a WebDAV server says of itself (`ServerCapabilities`): its family (dialect), and the
features the driver uses, read from `status.php` and the OCS capabilities document.

It owns the reading of those documents; it must not decide how to use a feature (the uploader
and the versions and trash of each dialect do).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from .checksums import checksum_algorithm

Dialect = Literal["plain", "nextcloud", "owncloud"]

#: The TUS protocol version spoken (tus.io/protocols/resumable-upload), oCIS's and Reva's.
TUS_VERSION = "1.0.0"


@dataclass(frozen=True)
class ServerCapabilities:
    """The server's family and features. A plain WebDAV server has none of them."""

    #: "nextcloud", "owncloud" (ownCloud 10, oCIS, Reva/CERNBox, the drive) or "plain"
    dialect: Dialect = "plain"
    #: the version status.php gives, where it was asked
    version: str | None = None
    #: `dav.chunking` ("1.0": Nextcloud's chunked upload v2), None where not advertised
    chunking: str | None = None
    #: `files.bigfilechunking`: ownCloud's chunked upload v1
    bigfilechunking: bool = False
    #: `files.versioning` and `files.undelete` (true unless the server says otherwise)
    versioning: bool = True
    undelete: bool = True
    #: the checksum types the server verifies (hashlib's names), preferred first
    checksums: tuple[str, ...] = ()
    #: TUS uploads (`files.tus_support` naming our version), and their largest PATCH
    tus: bool = False
    tus_max_chunk: int | None = None

    @property
    def keeps_versions(self) -> bool:
        return self.dialect != "plain" and self.versioning

    @property
    def has_trash(self) -> bool:
        return self.dialect != "plain" and self.undelete

    def with_status(self, info: dict[str, Any]) -> ServerCapabilities:
        """These, with the family and version a `status.php` document names."""
        product = str(info.get("productname") or info.get("product") or "").lower()
        version = info.get("versionstring") or info.get("version")
        return replace(
            self,
            dialect="nextcloud" if "nextcloud" in product else "owncloud",
            version=None if version is None else str(version),
        )

    def with_features(self, capabilities: dict[str, Any]) -> ServerCapabilities:
        """These, with the features we use from an OCS capabilities document (ownCloud 10 and
        Nextcloud spell `checksums` in camel case, oCIS and Reva in snake case)."""
        files = capabilities.get("files", {})
        sums = capabilities.get("checksums") or {}
        preferred = sums.get("preferredUploadType") or sums.get("preferred_upload_type") or ""
        types = [preferred, *(sums.get("supportedTypes") or sums.get("supported_types") or [])]
        usable = [a for a in map(checksum_algorithm, (str(t) for t in types if t)) if a]
        tus = files.get("tus_support") or {}
        versions = str(tus.get("version", "")).split(",")
        has_tus = isinstance(tus, dict) and TUS_VERSION in [v.strip() for v in versions]
        return replace(
            self,
            chunking=capabilities.get("dav", {}).get("chunking"),
            bigfilechunking=bool(files.get("bigfilechunking", False)),
            versioning=bool(files.get("versioning", True)),
            undelete=bool(files.get("undelete", True)),
            checksums=tuple(dict.fromkeys(usable)),
            tus=has_tus,
            tus_max_chunk=(int(tus.get("max_chunk_size") or 0) or None) if has_tus else None,
        )
