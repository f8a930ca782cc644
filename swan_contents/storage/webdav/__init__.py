"""The WebDAV driver: a user's space on a WebDAV server, ownCloud/Nextcloud family or plain.

Where each concern lives: `storage.py` (`WebDAVStorage`: the operations and their statuses),
`multistatus.py` (PROPFIND answers, safe XML), `etags.py`, `checksums.py`, `capabilities.py`
(`ServerCapabilities`), `uploads.py` (the spool and the uploader of each protocol) and
`dialects.py` (versions and trash of each server family).

`WebDAVStorage` is imported on first use (``swan_contents.storage.webdav.WebDAVStorage`` was its
class path before the driver became a package), so that `multistatus.parse_xml` loads without
the driver's traitlets.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .storage import WebDAVStorage

__all__ = ["WebDAVStorage"]


def __getattr__(name: str) -> Any:
    if name == "WebDAVStorage":
        from .storage import WebDAVStorage

        return WebDAVStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
