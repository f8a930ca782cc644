"""Open-in-SWAN links and the hub service that serves the badge and the link generator page.

This module owns the shape of the links (``/hub/user-redirect/swan/open?…``), the badge markdown,
and a small hub-managed service (``python -m swan_hub.links``) answering at
``/services/swan-links/``. It must not fetch or check sources: the user's server does that when a
link is clicked. It imports neither JupyterHub nor the single-user server's packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from tornado import web
from tornado.log import access_log

from swan_hub.redaction import redact

SERVICE_NAME = "swan-links"
OPEN_PATH = "hub/user-redirect/swan/open"
LINK_PARAMETERS = ("url", "path", "owner", "kind", "branch", "open")
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "links_static")


def open_link(hub_url: str, params: Mapping[str, str]) -> str:
    """The link that opens ``params`` (``url=`` or ``path=``, …) for whoever clicks it."""
    query = urlencode([(k, params[k]) for k in LINK_PARAMETERS if params.get(k)])
    return f"{hub_url.rstrip('/')}/{OPEN_PATH}?{query}"


def badge_url(hub_url: str, service: str = SERVICE_NAME) -> str:
    return f"{hub_url.rstrip('/')}/services/{service}/badge.svg"


def link_set(
    hub_url: str, params: Mapping[str, str], service: str = SERVICE_NAME
) -> dict[str, str]:
    """The link, the badge's URL, and ready-to-paste markdown and HTML."""
    link = open_link(hub_url, params)
    badge = badge_url(hub_url, service)
    return {
        "link": link,
        "badge": badge,
        "markdown": f"[![Open in SWAN]({badge})]({link})",
        "html": (
            f'<a href="{html.escape(link)}"><img src="{html.escape(badge)}" alt="Open in SWAN"></a>'
        ),
    }


def link_problem(params: Mapping[str, str]) -> str | None:
    """Why ``params`` cannot make a link (the hub's quick check; the server checks the rest)."""
    unknown = sorted(k for k in params if k not in LINK_PARAMETERS)
    if unknown:
        return f"Unknown fields: {', '.join(unknown)}."
    if bool(params.get("url")) == bool(params.get("path")):
        return "Give either a URL or a path in a SWAN space."
    url = params.get("url", "")
    if url and urlsplit(url).scheme.lower() not in ("https", "http"):
        return "The URL must start with https://."
    if params.get("path") and not params.get("owner"):
        return "A path needs the name of the user whose space it is in."
    return None


class AssetHandler(web.RequestHandler):
    """One small file of ``links_static/``, read once when the service starts."""

    def initialize(self, body: bytes, content_type: str, max_age: int = 0) -> None:
        self.body = body
        self.content_type = content_type
        self.max_age = max_age

    def get(self) -> None:
        self.set_header("Content-Type", self.content_type)
        if self.max_age:
            self.set_header("Cache-Control", f"public, max-age={self.max_age}")
        self.finish(self.body)


def _asset(name: str) -> bytes:
    with open(os.path.join(STATIC_DIR, name), "rb") as f:
        return f.read()


class LinksServiceApiHandler(web.RequestHandler):
    """GET api/links?url=…|path=…&owner=…: the same answer as the server's POST /swan/api/links."""

    def initialize(self, hub_base_url: str) -> None:
        self.hub_base_url = hub_base_url

    def get(self) -> None:
        params = {k: self.get_argument(k) for k in self.request.arguments}
        params = {k: v.strip() for k, v in params.items() if v.strip()}
        self.set_header("Content-Type", "application/json")
        problem = link_problem(params)
        if problem:
            self.set_status(400)
            self.finish(json.dumps({"message": problem}))
            return
        hub_url = f"{self.request.protocol}://{self.request.host}{self.hub_base_url}"
        self.finish(json.dumps(link_set(hub_url, params)))


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log line, with the secrets a URL may carry (``?token=``) redacted."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    summary = redact(f"{request.method} {request.uri} ({request.remote_ip})")
    access_log.log(level, "%d %s %.2fms", status, summary, 1000 * request.request_time())


def make_app(prefix: str, hub_base_url: str) -> web.Application:
    """The service's pages under ``prefix`` (e.g. ``/services/swan-links/``)."""
    prefix = "/" + prefix.strip("/") + "/"
    return web.Application(
        [
            (prefix.rstrip("/"), web.RedirectHandler, {"url": prefix}),
            (
                prefix,
                AssetHandler,
                {"body": _asset("links.html"), "content_type": "text/html; charset=utf-8"},
            ),
            (
                prefix + "badge.svg",
                AssetHandler,
                {
                    "body": _asset("badge.svg"),
                    "content_type": "image/svg+xml; charset=utf-8",
                    "max_age": 86400,
                },
            ),
            (prefix + "api/links", LinksServiceApiHandler, {"hub_base_url": hub_base_url}),
            (prefix + "static/(.*)", web.StaticFileHandler, {"path": STATIC_DIR}),
        ],
        log_function=log_request,
    )


def links_service(port: int) -> dict[str, Any]:
    """The JupyterHub service entry that runs this module (``c.JupyterHub.services``)."""
    return {
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "swan_hub.stoppable", "swan_hub.links"],
        "display": True,
        "info": {"description": "Open-in-SWAN links and badges"},
    }


async def serve() -> None:
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8010"))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
    app = make_app(prefix, os.environ.get("JUPYTERHUB_BASE_URL", "/"))
    # Behind configurable-http-proxy: the scheme the browser used comes in X-Forwarded-Proto.
    app.listen(url.port or 8010, url.hostname or "127.0.0.1", xheaders=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # The hub stops its services with SIGINT: a stop, not an error to print a traceback for.
    # Started by a hub that was a shell's background job, this process inherits SIGINT
    # ignored, and Python keeps it so: take it back, or the hub waits half a minute for us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
