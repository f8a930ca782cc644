"""Storage drivers behind one async interface; see `base.Storage`.

The drivers are imported on first use (`swan_contents.storage.WebDAVStorage` stays a class path),
so that the interface and `ondisk` load without httpx and the drivers' dependencies.
"""

from typing import TYPE_CHECKING, Any

from .base import (
    AlreadyExists,
    ChecksumMismatch,
    Conflict,
    CredentialsUnavailable,
    DirectoryNotEmpty,
    Entry,
    InvalidPath,
    IsADirectory,
    Locked,
    NotADirectory,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    Refused,
    Storage,
    StorageError,
    StorageTimeout,
    StorageUnavailable,
    normalize_path,
)

if TYPE_CHECKING:
    from .posix import PosixStorage
    from .webdav.storage import WebDAVStorage

_DRIVERS = {"PosixStorage": "posix", "WebDAVStorage": "webdav.storage"}

__all__ = [
    "AlreadyExists",
    "ChecksumMismatch",
    "Conflict",
    "CredentialsUnavailable",
    "DirectoryNotEmpty",
    "Entry",
    "InvalidPath",
    "IsADirectory",
    "Locked",
    "NotADirectory",
    "NotFound",
    "PermissionDenied",
    "PosixStorage",
    "QuotaExceeded",
    "Refused",
    "Storage",
    "StorageError",
    "StorageTimeout",
    "StorageUnavailable",
    "WebDAVStorage",
    "normalize_path",
]


def __getattr__(name: str) -> Any:
    if name in _DRIVERS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_DRIVERS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
