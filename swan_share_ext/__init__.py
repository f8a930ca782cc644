"""The SWAN server extension: REST API under /swan/api/ of the user's server.

It registers handlers only; storage access goes through the server's contents manager.
"""

from __future__ import annotations

from typing import Any

from swan_contents import SwanContentsManager

from ._version import __version__
from .handlers import setup_handlers
from .open_in.handlers import setup_open_in
from .sharing.handlers import setup_share_handlers
from .sharing.ocs import OCSShareBackend
from .storage_api import storage_handlers
from .upload import setup_upload


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt labextension lives (`jupyter labextension develop` links it)."""
    return [{"src": "labextension", "dest": "@swan-suite/labextension"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "swan_share_ext"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    setup_handlers(server_app.web_app)
    setup_open_in(server_app)
    backend = OCSShareBackend(parent=server_app, log=server_app.log)
    setup_share_handlers(server_app.web_app, backend)
    if not backend.configured:
        server_app.log.info("swan_share_ext: sharing is off (c.OCSShareBackend.url is not set)")
    if isinstance(server_app.contents_manager, SwanContentsManager):
        web_app = server_app.web_app
        web_app.add_handlers(".*$", storage_handlers(web_app.settings["base_url"]))
        setup_upload(server_app)
    server_app.log.info("swan_share_ext %s: /swan/api/ is enabled", __version__)


__all__ = ["OCSShareBackend", "__version__"]
