"""The SWAN server extension: REST API under /swan/api/ of the user's server.

It registers handlers only; storage access goes through the server's contents manager.
"""

from __future__ import annotations

from typing import Any

from swan_contents import SwanContentsManager

from ._version import __version__
from .handlers import setup_handlers
from .storage_api import storage_handlers


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "swan_share_ext"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    setup_handlers(server_app.web_app)
    if isinstance(server_app.contents_manager, SwanContentsManager):
        web_app = server_app.web_app
        web_app.add_handlers(".*$", storage_handlers(web_app.settings["base_url"]))
    server_app.log.info("swan_share_ext %s: /swan/api/ is enabled", __version__)


__all__ = ["__version__"]
