"""Storage drivers behind one async interface; see `base.Storage`."""

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
from .posix import PosixStorage
from .webdav import WebDAVStorage

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
