"""The one place where storage errors become HTTP errors for the REST API.

Messages are written for the person in front of the notebook: what happened and what to do. This
module must not decide policy (what is allowed); it only translates what a driver reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tornado.web import HTTPError

from .storage.base import (
    AlreadyExists,
    ChecksumMismatch,
    Conflict,
    CredentialsUnavailable,
    DirectoryNotEmpty,
    InvalidPath,
    IsADirectory,
    Locked,
    NotADirectory,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    Refused,
    StorageError,
    StorageTimeout,
    StorageUnavailable,
)


class StorageHTTPError(HTTPError):
    """An HTTP error with fields for the JSON error body beside `message` (e.g. the current
    `etag` of a 409), which the SWAN contents handler writes out."""

    def __init__(self, status_code: int, message: str, **fields: object):
        super().__init__(status_code, message)
        self.fields = fields


def _shown(path: str) -> str:
    path = path.strip("/")
    return f"/{path}" if path else "/"


def http_error(e: StorageError) -> HTTPError:
    """The HTTP error a user should see for a storage error, ending with what the storage said
    of it, where it said anything."""
    error = _http_error(e)
    if not e.said:
        return error
    message = f"{error.log_message.rstrip('.')}. The storage said: {e.said}"
    if isinstance(error, StorageHTTPError):
        return StorageHTTPError(error.status_code, message, **error.fields)
    return HTTPError(error.status_code, message)


def _http_error(e: StorageError) -> HTTPError:
    where = _shown(e.path)
    detail = f" ({e.detail})" if e.detail else ""
    if isinstance(e, InvalidPath):
        return HTTPError(400, f"Invalid path {where}: {e.detail or 'not a valid name'}")
    if isinstance(e, NotFound):
        return HTTPError(404, f"No such file or folder: {where}{detail}")
    if isinstance(e, Conflict):
        if e.current_etag is None:
            happened = "was deleted or moved by someone else since you opened it"
        else:
            happened = "was changed by someone else since you opened it"
        if e.copy_beside:
            choices = "Reload it, save yours as a conflict copy, or save again without a version"
        else:
            choices = (
                "No conflict copy can be made beside a single shared file: reload it, save "
                "yours into your own space, or save again without a version"
            )
        return StorageHTTPError(
            409,
            f"{where} {happened}; your version was not saved and the stored file is unchanged. "
            f"{choices} to overwrite.",
            etag=e.current_etag,
        )
    if isinstance(e, AlreadyExists):
        if e.current_etag is not None:
            return StorageHTTPError(
                409,
                f"A file named {where} exists already, so yours was not saved and that file is "
                "unchanged. Save yours under another name, or save again with the etag of the "
                "file there to replace it.",
                etag=e.current_etag,
            )
        return HTTPError(409, f"A file or folder named {where} already exists")
    if isinstance(e, NotADirectory):
        return HTTPError(400, f"Cannot use {where}{detail}")
    if isinstance(e, IsADirectory):
        return HTTPError(400, f"{where} is a folder, not a file{detail}")
    if isinstance(e, DirectoryNotEmpty):
        return HTTPError(400, f"The folder {where} is not empty")
    if isinstance(e, PermissionDenied):
        return HTTPError(403, f"Permission denied: {where}{detail}")
    if isinstance(e, Locked):
        return HTTPError(423, f"{where} is locked by another application; try again later")
    if isinstance(e, QuotaExceeded):
        return HTTPError(
            507,
            f"Not enough space to write {where}: the storage is full or over quota. "
            "Nothing was changed; free some space and try again.",
        )
    if isinstance(e, Refused):
        return HTTPError(400, f"The storage refused this request for {where}{detail}")
    if isinstance(e, CredentialsUnavailable):
        return HTTPError(
            503,
            f"This server cannot use its storage credentials ({e.detail}), so nothing was read "
            "or changed. Log out and in again so that the hub hands them over anew, or ask your "
            "administrator.",
        )
    if isinstance(e, ChecksumMismatch):
        return HTTPError(
            502,
            f"The bytes of {where} did not arrive intact at the storage ({e.detail}). "
            "Save or upload it again.",
        )
    if isinstance(e, StorageTimeout):
        return HTTPError(
            504,
            f"The storage did not answer in time ({where}: {e.detail or 'timeout'}). The "
            "operation may or may not have happened; reload before trying again.",
        )
    if isinstance(e, StorageUnavailable):
        return HTTPError(
            503,
            f"The storage is not available right now, nothing was changed ({where}: "
            f"{e.detail or 'no answer'}). Try again in a moment.",
        )
    return HTTPError(500, f"Storage error on {where}{detail}")


@contextmanager
def storage_errors() -> Iterator[None]:
    """Raise the matching `HTTPError` for any `StorageError` raised inside the block."""
    try:
        yield
    except StorageError as e:
        raise http_error(e) from e
