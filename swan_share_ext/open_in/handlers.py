"""HTTP side of "Open in SWAN" in the user's server: the confirmation page and the JSON API.

``GET /swan/open`` only reads (shows the plan, or redirects for a path in the user's own space);
``POST /swan/open`` is the refusal page's "Accept and open" (a form with the XSRF token);
``POST /swan/api/open`` does the work and streams newline-delimited JSON events; ``POST
/swan/api/links`` builds links and badges; ``GET /download`` keeps SWAN's old links working. Errors
become pages or JSON here, once; the work itself lives in `run`.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlencode

import jinja2
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from ..handlers import JsonBodyMixin
from ..request_bodies import LINKS, OPEN, check_body
from ..sharing.handlers import BACKEND_SETTING
from .config import SwanOpenIn
from .run import OpenRun, policy_of, refusal_event, view_url
from .safety import OpenRefused
from .shares import ShareWaiting
from .sources import LinkReader, Plan

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC_DIR = os.path.join(HERE, "static")
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
# Loaded once at import: no file is read while a request is served.
_OPEN_PAGE = _TEMPLATES.get_template("open.html")
#: What the link reader (`sources`) checks of a link's query itself, in a link's words
#: (`kind=git`): a body is checked against openapi.yaml for its form only.
LINK_READER_CHECKS = ("enum",)
KIND_TITLES = {
    "git": "a git repository",
    "download": "a file from the web",
    "share-link": "a public share link",
    "other-path": "a file in someone else's space",
    "own-path": "a file in your space",
}


class OpenMixin:
    """What the page and the API share: settings, the link reader and the user's space."""

    auth_resource = "contents"

    @property
    def open_settings(self) -> SwanOpenIn:
        return self.settings["swan_open_in"]

    @property
    def space(self) -> str:
        return getattr(self.contents_manager, "root_dir", "") or ""

    @property
    def username(self) -> str:
        user = self.current_user
        return getattr(user, "username", None) or os.environ.get("JUPYTERHUB_USER", "")

    def link_reader(self) -> LinkReader:
        s = self.open_settings
        return LinkReader(
            policy_of(s, self.settings.get("swan_open_resolver")),
            user=self.username,
            space=self.space,
            storage_path_template=s.storage_path_template,
            git_hosts=tuple(h.lower() for h in s.git_hosts),
            share_link_hosts=tuple(h.lower() for h in s.share_link_hosts),
            drive_url=s.drive_url,
            hub_host=self.request.host,
        )

    def open_run(self, emit: Any) -> OpenRun:
        return OpenRun(
            self.open_settings,
            self.contents_manager,
            space=self.space,
            user=self.username,
            emit=emit,
            resolver=self.settings.get("swan_open_resolver"),
            share_backend=self.settings.get(BACKEND_SETTING),
        )

    def hub_url(self) -> str:
        if self.open_settings.hub_url:
            return self.open_settings.hub_url
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        return f"{self.request.protocol}://{self.request.host}{base}"


class OpenPageHandler(OpenMixin, JupyterHandler):
    """GET /swan/open?…: what will be fetched, from where, into which folder; nothing changes.
    POST /swan/open (the form of "Accept and open", XSRF-checked): accept the share waiting
    for the user that holds the link's path, then open it."""

    @web.authenticated
    @authorized("read")
    async def get(self) -> None:
        params = {k: self.get_argument(k) for k in self.request.arguments}
        try:
            plan = self.link_reader().plan(params)
            run = self.open_run(emit=lambda event: None)
            if plan.kind in ("own-path", "other-path"):
                # Nothing is fetched: resolving a path only reads, so it is done right here.
                done = await run.run(plan)
                self.redirect(url_path_join(self.base_url, done["redirect"]))
                return
            if plan.name:
                folder = (await run.project(plan.name, plan.source))[0] + "/"
            else:
                folder = f"{self.open_settings.projects_dir.strip('/')}/(named after the file)/"
        except OpenRefused as e:
            self._refused(e, params)
            return
        page = self._page(
            "confirm",
            reason="",
            plan=plan,
            folder=folder,
            params=params,
            asks_password=run.is_drive_link(plan),
        )
        self.finish(page)

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        params = {k: self.get_body_argument(k) for k in self.request.body_arguments if k != "_xsrf"}
        try:
            plan = self.link_reader().plan(params)
            if plan.kind != "other-path":
                raise OpenRefused(
                    "Only a link into someone else's space has a share to accept.", status=400
                )
            done = await self.open_run(emit=lambda event: None).run(plan, accept_share=True)
        except OpenRefused as e:
            self._refused(e, params)
            return
        self.log.info("Accepted the share of /%s of %s and opened it", plan.path, plan.owner)
        self.redirect(url_path_join(self.base_url, done["redirect"]))

    def _refused(self, e: OpenRefused, params: dict[str, str]) -> None:
        """The refusal page; a share waiting for the user's answer gets "Accept and open"."""
        waiting = isinstance(e, ShareWaiting)
        self.set_status(e.status)
        page = self._page(
            "refused",
            reason=e.message,
            plan=None,
            folder="",
            params=params if waiting else {},
            accepts_share=waiting,
        )
        self.finish(page)

    def _page(
        self,
        state: str,
        *,
        reason: str,
        plan: Plan | None,
        folder: str,
        params: dict,
        asks_password: bool = False,
        accepts_share: bool = False,
    ) -> str:
        s = self.open_settings
        return _OPEN_PAGE.render(
            state=state,
            reason=reason,
            plan=plan,
            kind_title=KIND_TITLES.get(plan.kind, plan.kind) if plan else "",
            folder=folder,
            params_json=json.dumps(params),
            asks_password=asks_password,
            accepts_share=accepts_share,
            params=params,
            page_url=url_path_join(self.base_url, "swan/open"),
            api_url=url_path_join(self.base_url, "swan/api/open"),
            home_url=url_path_join(self.base_url, view_url("", True, s.open_with)),
            static_url=url_path_join(self.base_url, "swan/static/"),
            xsrf=self.xsrf_token.decode("ascii"),
        )


class OpenApiHandler(OpenMixin, JsonBodyMixin, APIHandler):
    """POST /swan/api/open: carry out a link; the body streams ``application/x-ndjson`` events."""

    def _emit(self, event: dict[str, Any]) -> None:
        if "redirect" in event:
            event["url"] = url_path_join(self.base_url, event["redirect"])
        try:
            self.write(json.dumps(event) + "\n")
            self.flush()
        except StreamClosedError:
            # The page went away; the work goes on so that the project is left consistent.
            pass

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        body = check_body(self.get_json_body() or {}, OPEN, left_to_caller=LINK_READER_CHECKS)
        # typed on the page for a password link of the drive; never a part of the link
        password = body.pop("password", "")
        try:
            plan = self.link_reader().plan(body)
        except OpenRefused as e:
            raise web.HTTPError(e.status, e.message) from e
        self.set_header("Content-Type", "application/x-ndjson; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")
        run = self.open_run(emit=self._emit)
        try:
            self._emit(await run.run(plan, password=password))
        except OpenRefused as e:
            self._emit(refusal_event(e))
        except web.HTTPError as e:
            self._emit({"event": "error", "status": e.status_code, "message": e.log_message})
        except Exception as e:
            self.log.exception("Open in SWAN failed for %s", plan.source)
            self._emit({"event": "error", "status": 500, "message": f"Unexpected error: {e}"})
        self.finish()


class OpenLinksApiHandler(OpenMixin, JsonBodyMixin, APIHandler):
    """POST /swan/api/links: the open-in link, badge and markdown for a path or a source."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = check_body(self.get_json_body() or {}, LINKS, left_to_caller=LINK_READER_CHECKS)
        params = {k: v for k, v in body.items() if v}
        if params.get("path") and not params.get("owner"):
            # A link is for others: it names whose space the path is in (for a file in a
            # share of another site, its owner's, by their address).
            lookup = self.open_settings.share_lookup_class(
                self.settings.get(BACKEND_SETTING), self.contents_manager
            )
            origin = await lookup.origin_of(params["path"])
            params["owner"], params["path"] = origin or (self.username, params["path"])
        try:
            self.link_reader().plan(params)
        except OpenRefused as e:
            raise web.HTTPError(e.status, e.message) from e
        # The link's shape is the hub's (swan_hub.links, shared with its links service); asked
        # for here only, so importing this extension does not import the hub's package.
        from swan_hub.links import link_set

        links = link_set(self.hub_url(), params, service=self.open_settings.links_service_name)
        self.finish(json.dumps(links))


class DownloadRedirectHandler(JupyterHandler):
    """GET /download?projurl=…: SWAN's old links, sent on to /swan/open with the same query."""

    def get(self) -> None:
        query = urlencode([(k, self.get_argument(k)) for k in self.request.arguments])
        self.redirect(url_path_join(self.base_url, "swan/open") + (f"?{query}" if query else ""))


def setup_open_in(server_app: Any) -> None:
    """Read ``c.SwanOpenIn`` from the server's config and register the open-in handlers."""
    web_app = server_app.web_app
    web_app.settings["swan_open_in"] = SwanOpenIn(parent=server_app)
    web_app.add_handlers(".*$", open_handlers(web_app.settings["base_url"]))


def open_handlers(base_url: str) -> list[tuple[Any, ...]]:
    return [
        (url_path_join(base_url, "swan/open"), OpenPageHandler),
        (url_path_join(base_url, "swan/api/open"), OpenApiHandler),
        (url_path_join(base_url, "swan/api/links"), OpenLinksApiHandler),
        (url_path_join(base_url, "download"), DownloadRedirectHandler),
        (
            url_path_join(base_url, "swan/static/(.*)"),
            web.StaticFileHandler,
            {"path": STATIC_DIR},
        ),
    ]
