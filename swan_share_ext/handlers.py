"""Handlers of /swan/api/ in the user's server; each answers JSON and requires the server's auth.

They never touch storage directly: what they know of it comes from the contents manager.
"""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ._version import __version__


class InfoHandler(APIHandler):
    """GET /swan/api/info: the suite's version and the kind of storage behind this server."""

    auth_resource = "contents"

    @web.authenticated
    async def get(self) -> None:
        cm = self.contents_manager
        storage = getattr(cm, "storage", None)
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "contents_manager": type(cm).__name__,
                    "storage": {"kind": getattr(storage, "kind", "unknown")},
                }
            )
        )


def setup_handlers(web_app: web.Application) -> None:
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base_url, "swan/api/info"), InfoHandler)],
    )
