"""The WebDAV driver: a user's space on a WebDAV server, ownCloud/Nextcloud family or plain.

Where each concern lives: `storage.py` (`WebDAVStorage`: the operations and their statuses),
`multistatus.py` (PROPFIND answers, safe XML), `etags.py`, `checksums.py`, `capabilities.py`
(`ServerCapabilities`), `uploads.py` (the spool and the uploader of each protocol) and
`dialects.py` (versions and trash of each server family). Names are imported on first use, so
that `multistatus.parse_xml` loads without the driver's traitlets.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capabilities import ServerCapabilities
    from .multistatus import parse_xml
    from .storage import WebDAVStorage

_NAMES = {
    "WebDAVStorage": "storage",
    "ServerCapabilities": "capabilities",
    "parse_xml": "multistatus",
}

__all__ = ["ServerCapabilities", "WebDAVStorage", "parse_xml"]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
