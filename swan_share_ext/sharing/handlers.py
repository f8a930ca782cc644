"""REST handlers of sharing under /swan/api/: shares the user makes, shares made with the user
(accept, decline, clone), the search for people to share with, and invites for people of other
sites.

They check the form of a request, then ask the share backend; what a user may share is the
storage's decision. Files are reached only through the contents manager, never directly.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from swan_contents.errors import storage_errors
from swan_contents.storage.base import normalize_path

from ..handlers import json_of
from ..request_bodies import CLONE, NEW_SHARE, SHARE_CHANGES, check_body
from .backend import (
    READ,
    SHARE_STATES,
    InvalidShareRequest,
    NewShare,
    ShareBackend,
    ShareError,
    ShareForbidden,
    ShareNotFound,
    SharingAuthFailed,
    SharingUnavailable,
    StorageShare,
)

#: The web_app setting holding the server's `ShareBackend`.
BACKEND_SETTING = "swan_share_backend"

#: Longest search for people to share with.
MAX_SEARCH = 255
#: A share request is a few fields: anything larger is refused unread.
MAX_BODY = 64 * 1024
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

PERMISSIONS_HELP = (
    "permissions must be a whole number from 1 to 31, the sum of 1 read, 2 edit, 4 create, "
    "8 delete and 16 share"
)


def share_http_error(e: ShareError) -> web.HTTPError:
    """The HTTP error a user sees for what the share backend reported (the storage's words)."""
    if isinstance(e, InvalidShareRequest):
        return web.HTTPError(400, f"The storage refused: {e.message}")
    if isinstance(e, ShareNotFound):
        return web.HTTPError(404, f"The storage refused: {e.message}")
    if isinstance(e, ShareForbidden):
        return web.HTTPError(403, f"The storage refused: {e.message}")
    if isinstance(e, SharingAuthFailed):
        return web.HTTPError(502, e.message)
    if isinstance(e, SharingUnavailable):
        return web.HTTPError(503, e.message)
    return web.HTTPError(500, f"Sharing failed: {e.message}")


@contextmanager
def share_errors() -> Iterator[None]:
    """Raise the matching `HTTPError` for any `ShareError` raised inside the block."""
    try:
        yield
    except ShareError as e:
        raise share_http_error(e) from e


# -- checking what a request means (its form is checked against openapi.yaml) ---------------------


def check_permissions(value: int, *, kind: str) -> int:
    # a public link may be a drop box (create only); every other share can at least read
    if kind != "link" and not value & READ:
        raise web.HTTPError(400, f"{PERMISSIONS_HELP}, and must include read (1); got {value}")
    return value


def check_expiration(value: str | None) -> str | None:
    """A date YYYY-MM-DD from today on, "" or None (no expiry)."""
    if value in (None, ""):
        return value
    message = f"expiration must be a date written YYYY-MM-DD, today or later; got {value!r}"
    if not _DATE.fullmatch(value):
        raise web.HTTPError(400, message)
    try:
        date = datetime.date.fromisoformat(value)
    except ValueError:
        raise web.HTTPError(400, message) from None
    if date < datetime.date.today():
        raise web.HTTPError(400, message)
    return value


def check_path(value: str) -> str:
    with storage_errors():
        path = normalize_path(value)
    if not path:
        raise web.HTTPError(400, "Choose a file or folder to share: the whole space cannot be")
    return path


def check_new_share(body: dict[str, Any]) -> NewShare:
    """The share a body of the form of `NewShare` (openapi.yaml) asks for, if it makes sense."""
    kind = body["kind"]
    share_with = body.get("share_with")
    if kind != "link" and not share_with:
        raise web.HTTPError(400, f"share_with must name the {kind} to share with")
    if kind == "link" and share_with:
        raise web.HTTPError(400, "A public link is shared with nobody in particular: no share_with")
    if kind == "federated" and "@" not in (share_with or ""):
        raise web.HTTPError(400, "share_with of a federated share is user@server")
    password, name = body.get("password"), body.get("name")
    if kind != "link" and (password or name):
        raise web.HTTPError(400, "Only a public link has a password or a name")
    return NewShare(
        path=check_path(body["path"]),
        kind=kind,
        share_with=share_with,
        permissions=check_permissions(body.get("permissions", READ), kind=kind),
        password=password or None,
        expiration=check_expiration(body.get("expiration")) or None,
        name=name or None,
    )


def check_changes(body: dict[str, Any], share: StorageShare) -> dict[str, Any]:
    """The changes a body of the form of `ShareChanges` asks for, if `share` can take them."""
    allowed = {"permissions", "expiration"}
    if share.kind == "link":
        allowed |= {"password", "name"}
    unknown = set(body) - allowed
    if unknown:
        raise web.HTTPError(
            400,
            f"Cannot change {', '.join(sorted(unknown))} of a {share.kind} share; "
            f"change {', '.join(sorted(allowed))}",
        )
    changes: dict[str, Any] = {}
    if "permissions" in body:
        changes["permissions"] = check_permissions(body["permissions"], kind=share.kind)
    if "expiration" in body:
        changes["expiration"] = check_expiration(body["expiration"]) or ""
    if "password" in body:
        changes["password"] = body["password"] or ""
    if "name" in body:
        changes["name"] = body["name"] or ""
    return changes


# -- handlers -----------------------------------------------------------------------------------


class ShareHandler(APIHandler):
    """Base of the share handlers: the backend, JSON in and out, and the error translation."""

    auth_resource = "contents"

    @property
    def backend(self) -> ShareBackend:
        backend = self.settings.get(BACKEND_SETTING)
        if backend is None or not backend.configured:
            raise web.HTTPError(
                503,
                "Sharing is not set up on this server: its administrator has not told it "
                "which storage to share through (c.OCSShareBackend.url).",
            )
        return backend

    def json_body(self, schema: str) -> dict[str, Any]:
        """The JSON body, checked against `schema` (a pointer into openapi.yaml)."""
        if len(self.request.body or b"") > MAX_BODY:
            raise web.HTTPError(413, f"The request body is larger than {MAX_BODY} bytes")
        return check_body(json_of(self.request.body or b"{}"), schema)

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload))

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    async def received_share(self, share_id: str) -> StorageShare:
        """A share made with this user, as the storage sees it right now."""
        with share_errors():
            for share in await self.backend.received_shares("all"):
                if share.id == share_id:
                    return share
        raise web.HTTPError(
            404, f"No share {share_id} is shared with you (it may have been revoked)"
        )


class SharesHandler(ShareHandler):
    """GET /swan/api/shares?path= lists the user's shares; POST creates one."""

    @web.authenticated
    async def get(self) -> None:
        path = self.get_query_argument("path", None)
        if path is not None:
            with storage_errors():
                path = normalize_path(path)
        with share_errors():
            shares = await self.backend.list_shares(path)
        self.reply([s.to_json() for s in shares])

    @web.authenticated
    async def post(self) -> None:
        new = check_new_share(self.json_body(NEW_SHARE))
        if not await self.contents_manager.exists(new.path):
            raise web.HTTPError(404, f"No such file or folder: /{new.path}")
        with share_errors():
            share = await self.backend.create_share(new)
        self.log.info("Shared /%s with %s %s", new.path, new.kind, new.share_with or "(link)")
        self.reply(share.to_json(), 201)


class ShareItemHandler(ShareHandler):
    """GET, PATCH and DELETE /swan/api/shares/<id>: one share the user made."""

    @web.authenticated
    async def get(self, share_id: str) -> None:
        with share_errors():
            share = await self.backend.get_share(share_id)
        self.reply(share.to_json())

    @web.authenticated
    async def patch(self, share_id: str) -> None:
        body = self.json_body(SHARE_CHANGES)
        with share_errors():
            share = await self.backend.get_share(share_id)
            share = await self.backend.update_share(share_id, check_changes(body, share))
        self.reply(share.to_json())

    @web.authenticated
    async def delete(self, share_id: str) -> None:
        with share_errors():
            await self.backend.delete_share(share_id)
        self.log.info("Revoked share %s", share_id)
        self.no_content()


class SharedWithMeHandler(ShareHandler):
    """GET /swan/api/shared-with-me?state=accepted|pending|declined|all."""

    @web.authenticated
    async def get(self) -> None:
        state = self.get_query_argument("state", "all")
        if state not in (*SHARE_STATES, "all"):
            raise web.HTTPError(
                400, f"state must be one of {', '.join((*SHARE_STATES, 'all'))}; got {state!r}"
            )
        with share_errors():
            shares = await self.backend.received_shares(state)
        self.reply([s.to_json() for s in shares])


class AcceptHandler(ShareHandler):
    """POST /swan/api/shared-with-me/<id>/accept."""

    @web.authenticated
    async def post(self, share_id: str) -> None:
        with share_errors():
            share = await self.backend.accept_share(share_id)
        self.reply(share.to_json())


class DeclineHandler(ShareHandler):
    """POST /swan/api/shared-with-me/<id>/decline: the user loses access to the share."""

    @web.authenticated
    async def post(self, share_id: str) -> None:
        with share_errors():
            await self.backend.decline_share(share_id)
        self.no_content()


class CloneHandler(ShareHandler):
    """POST /swan/api/shared-with-me/<id>/clone {"destination": folder}: copy a received share
    into the user's own space, inside the storage (no byte goes through the browser)."""

    @web.authenticated
    async def post(self, share_id: str) -> None:
        body = self.json_body(CLONE)
        with storage_errors():
            destination = normalize_path(body.get("destination", ""))
        share = await self.received_share(share_id)
        if share.state != "accepted":
            raise web.HTTPError(
                409, f"Accept the share {share.name or share_id} before you clone it"
            )
        if share.location is None:
            raise web.HTTPError(
                409,
                "This share is not reachable from this server's folder, so it cannot be "
                "cloned here",
            )
        cm = self.contents_manager
        if not await cm.dir_exists(destination):
            raise web.HTTPError(404, f"No such folder to clone into: /{destination}")
        # copying into a folder never replaces anything: the manager picks a free name
        model = await cm.copy(share.location, destination)
        self.log.info("Cloned share %s (/%s) to /%s", share_id, share.location, model["path"])
        self.reply(_json_model(model), 201)


def _json_model(model: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime.datetime) else v) for k, v in model.items()}


class ShareesHandler(ShareHandler):
    """GET /swan/api/sharees?search=&item_type=file|folder: people and groups to share with."""

    @web.authenticated
    async def get(self) -> None:
        search = self.get_query_argument("search", "").strip()
        item_type = self.get_query_argument("item_type", "file")
        if item_type not in ("file", "folder"):
            raise web.HTTPError(400, f"item_type must be file or folder; got {item_type!r}")
        if len(search) > MAX_SEARCH or _CONTROL.search(search):
            raise web.HTTPError(400, f"search must be text of at most {MAX_SEARCH} characters")
        if not search:
            self.reply([])
            return
        with share_errors():
            sharees = await self.backend.search_sharees(search, item_type)
        self.reply([s.to_json() for s in sharees])


class InvitesHandler(ShareHandler):
    """POST /swan/api/invites: a new invite of the user for a person of another site, made by
    the storage (the drive's OCS ``ocm_invites``); a refusal is the storage's status and words."""

    @web.authenticated
    async def post(self) -> None:
        with share_errors():
            invite = await self.backend.create_invite()
        self.log.info("Made an invite for a person of another site")
        self.reply(invite.to_json(), 201)


_ID = r"([^/]+)"


def setup_share_handlers(web_app: web.Application, backend: ShareBackend) -> None:
    web_app.settings[BACKEND_SETTING] = backend
    api = url_path_join(web_app.settings["base_url"], "swan/api")
    web_app.add_handlers(
        ".*$",
        [
            (f"{api}/shares", SharesHandler),
            (f"{api}/shares/{_ID}", ShareItemHandler),
            (f"{api}/shared-with-me", SharedWithMeHandler),
            (f"{api}/shared-with-me/{_ID}/accept", AcceptHandler),
            (f"{api}/shared-with-me/{_ID}/decline", DeclineHandler),
            (f"{api}/shared-with-me/{_ID}/clone", CloneHandler),
            (f"{api}/sharees", ShareesHandler),
            (f"{api}/invites", InvitesHandler),
        ],
    )


__all__ = ["setup_share_handlers", "share_http_error"]
