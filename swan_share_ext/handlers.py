"""Handlers of /swan/api/ in the user's server; each answers JSON and requires the server's auth.

They never touch storage directly: what they know of it comes from the contents manager.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ._version import __version__


def json_of(body: bytes) -> Any:
    """The JSON value of a request body (None for an empty one); a 400 that says what is wrong
    for a body that is not UTF-8 or not JSON (jupyter_server's own reading answers 500 to the
    first)."""
    if not body or body.isspace():  # not `strip()`: that copies a large body whole
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise web.HTTPError(
            400,
            f"The request body is not UTF-8 text (byte {e.start} is not); send JSON in UTF-8.",
        ) from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise web.HTTPError(400, f"The request body is not JSON: {e}.") from None


class JsonBodyMixin:
    """`get_json_body` through `json_of`: a bad body is the client's 400, never a 500."""

    def get_json_body(self) -> Any:
        return json_of(self.request.body)  # type: ignore[attr-defined]


#: Set by the hub's spawner: "1" when kernels and terminals see the user's storage mounted as
#: the server's root, "0" when they see only a local folder; unset where the spawner does not
#: mount (the server's root is then the storage itself, e.g. a POSIX space).
FILES_MOUNTED_ENV = "SWAN_FILES_MOUNTED"

LOCAL_FOLDER_ONLY = (
    "Code sees only this server's local folder: kernels and terminals cannot open the file "
    "browser's files and shares by path."
)


#: Set by the hub's spawner where it mounts the storage: the file where the side that mounts
#: lists the files code wrote that the storage refuses to take (swan_hub.mounts.STATUS_FILE).
MOUNT_STATUS_ENV = "SWAN_MOUNT_STATUS"
#: The list is small (the hub lists 100 files at most); a larger file is not read.
MAX_STATUS_BYTES = 1 << 20


def files_for_code() -> dict[str, Any]:
    """Whether code sees the files of the file browser, what to tell the user when not, and
    whether the server lists the files code wrote that the storage refuses."""
    mounted = {"1": True, "0": False}.get(os.environ.get(FILES_MOUNTED_ENV, ""))
    return {
        "mounted": mounted,
        "notice": LOCAL_FOLDER_ONLY if mounted is False else "",
        "refused_uploads": bool(os.environ.get(MOUNT_STATUS_ENV)),
    }


def refused_uploads() -> dict[str, list[dict[str, str]]]:
    """The files code wrote that went wrong, as the side that mounts lists them (paths from
    the server's root): ``refused``, those the storage refuses (with its reason), and
    ``cut``, those cut short (the disk where the mount stages writes was full, and the part
    written went up). Empty lists when it lists nothing or its list cannot be read. Blocking
    (a read of a small local file)."""
    found: Any = None
    if path := os.environ.get(MOUNT_STATUS_ENV):
        try:
            with open(path, "rb") as f:
                body = f.read(MAX_STATUS_BYTES + 1)
            found = json.loads(body) if len(body) <= MAX_STATUS_BYTES else None
        except (OSError, ValueError):
            found = None
    if not isinstance(found, dict):
        found = {}

    def items(key: str, *fields: str) -> list[dict[str, str]]:
        listed = found.get(key)
        return [
            {name: item[name] for name in fields}
            for item in (listed if isinstance(listed, list) else [])
            if isinstance(item, dict) and all(isinstance(item.get(name), str) for name in fields)
        ]

    return {"refused": items("refused", "path", "why"), "cut": items("cut", "path")}


def upload_offer(settings: Any) -> dict[str, Any] | None:
    """Whether this server takes streamed uploads (PUT /swan/api/upload/<path>) and up to what
    size in bytes (0: any); None where it does not (another contents manager)."""
    return None if settings is None else {"max_size": settings.max_size}


#: JupyterLab labels its file browser's delete command once, as the page starts, from this page
#: option: "Move to Trash" where it is true, "Delete" otherwise.
DELETE_TO_TRASH_OPTION = "delete_to_trash"


def tell_pages_where_deletes_go(server_app: Any, tries: int = 12, pause: float = 5.0) -> None:
    """Put in every page's options whether a delete goes to a trash (`has_trash`), as soon as
    the storage says so after the start; a storage that does not answer yet is asked again,
    `tries` times at most. (The front-end reads the same answer from /swan/api/info, but a
    command's label is fixed before that answer comes.)"""
    has_trash = getattr(server_app.contents_manager, "has_trash", None)
    if has_trash is None:
        return
    options = server_app.web_app.settings.setdefault("page_config_data", {})

    async def ask() -> None:
        for _ in range(tries):
            try:
                options[DELETE_TO_TRASH_OPTION] = bool(await has_trash())
                return
            except Exception as e:  # a storage still starting or out: asked again
                server_app.log.info("swan_share_ext: whether deletes go to a trash: %s", e)
                await asyncio.sleep(pause)

    server_app.io_loop.add_callback(ask)


class InfoHandler(APIHandler):
    """GET /swan/api/info: the suite's version, the kind of storage behind this server,
    whether kernels and terminals see it (``files_for_code``), whether it takes streamed
    uploads (``upload``), whether deleted files go to a trash (``trash``: JupyterLab then
    says "move to trash", not "permanently delete") and whether the user can invite people of
    other sites (``invites``)."""

    auth_resource = "contents"

    @web.authenticated
    async def get(self) -> None:
        cm = self.contents_manager
        storage = getattr(cm, "storage", None)
        has_trash = getattr(cm, "has_trash", None)
        # imported here: the sharing handlers import this module
        from .sharing.handlers import BACKEND_SETTING

        sharing = self.settings.get(BACKEND_SETTING)
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "contents_manager": type(cm).__name__,
                    "storage": {"kind": getattr(storage, "kind", "unknown")},
                    "files_for_code": files_for_code(),
                    "upload": upload_offer(self.settings.get("swan_upload")),
                    "trash": bool(has_trash and await has_trash()),
                    "invites": bool(getattr(sharing, "offers_invites", False)),
                }
            )
        )


class RefusedUploadsHandler(APIHandler):
    """GET /swan/api/refused-uploads: the files code wrote through the mount that the storage
    refuses to take (over quota, a name it forbids, a folder no longer writable; each waits
    in the mount's cache while its upload is tried again), and those cut short (the part
    written before the hub's disk was full went up). The labextension tells the user."""

    auth_resource = "contents"
    # read every few seconds by an open JupyterLab: no sign that the person is at work
    _track_activity = False

    @web.authenticated
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(await asyncio.to_thread(refused_uploads)))


def setup_handlers(web_app: web.Application) -> None:
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base_url, "swan/api/info"), InfoHandler),
            (url_path_join(base_url, "swan/api/refused-uploads"), RefusedUploadsHandler),
        ],
    )
