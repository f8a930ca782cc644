"""The storage part of the REST API: conditional saves on /api/contents, and
/swan/api/versions and /swan/api/trash (swan_share_ext/openapi.yaml).

It only reads requests and writes answers; what a save, a version or a trash entry is, the
contents manager decides. Routes here are added only when the server runs SwanContentsManager.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.services.contents.handlers import ContentsHandler, validate_model
from jupyter_server.utils import url_escape, url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from swan_contents.errors import StorageHTTPError
from swan_contents.manager import CHILDREN_AS_JSON, ChildrenJSON
from swan_contents.steps import ENTRIES_PER_STEP

from .contents_swap import contents_routes
from .handlers import JsonBodyMixin
from .request_bodies import TRASH_RESTORE, VERSION_RESTORE, check_body


class ErrorFieldsMixin:
    """Errors that carry more than a message (the current `etag` of a 409) have those fields
    in the JSON error body."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = (kwargs.get("exc_info") or (None, None))[1]
        if not isinstance(error, StorageHTTPError):
            super().write_error(status_code, **kwargs)
            return
        self.set_header("Content-Type", "application/json")
        reply = {"message": error.log_message, "reason": error.reason, **error.fields}
        self.log.warning("wrote error: %r", error.log_message)
        self.finish(json.dumps(reply))


#: fields of a contents model sent by a client, and the JSON types each may have
_MODEL_FIELDS: dict[str, tuple[type, ...]] = {
    "path": (str,),
    "copy_from": (str,),
    "type": (str,),
    "format": (str,),
    "ext": (str,),
    "name": (str,),
    "etag": (str,),
    "if_none_match": (str,),
    "chunk": (int,),
}


def check_model_shape(model: Any) -> None:
    """A 400 naming the field, for a body that is not a contents model: not an object, or a
    field of the wrong JSON type, or content that does not fit the model's type."""
    if not isinstance(model, dict):
        raise web.HTTPError(400, "The request body must be a JSON object (a contents model).")
    for name, types in _MODEL_FIELDS.items():
        value = model.get(name)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            kind = "an integer" if types == (int,) else "a string"
            raise web.HTTPError(400, f"The model's {name!r} must be {kind}.")
    content = model.get("content")
    if content is None:
        return
    if model.get("type") == "notebook" and not isinstance(content, dict):
        raise web.HTTPError(400, "A notebook's 'content' must be a JSON object.")
    if model.get("type") == "file" and not isinstance(content, str):
        raise web.HTTPError(400, "A file's 'content' must be a string (text or base64).")


#: JSON of a notebook's cells written between two turns of the event loop (about 1 ms of work).
BYTES_PER_STEP = 256 * 1024


def _long_list(model: dict[str, Any]) -> list[Any] | None:
    """The list of a model worth writing in steps: the children of a folder of more than
    `ENTRIES_PER_STEP` entries or given as JSON text (`ChildrenJSON`, which only this
    handler's writing knows), or the cells of a notebook (whose size only its JSON tells)."""
    content = model.get("content")
    if model.get("type") == "directory" and isinstance(content, list):
        return content if len(content) > ENTRIES_PER_STEP or type(content) is ChildrenJSON else None
    if model.get("type") == "notebook" and isinstance(content, dict):
        cells = content.get("cells")
        return cells if isinstance(cells, list) and cells else None
    return None


def save_condition(headers: Any) -> tuple[str | None, bool]:
    """What the headers of a save make it conditional on: the etag of `If-Match` (exactly one,
    as a model gives it), and whether `If-None-Match: *` asks to create only; 400 for any other
    spelling."""
    if_match = headers.get("If-Match")
    if if_match is not None:
        if_match = if_match.strip()
        if not if_match or if_match == "*" or "," in if_match:
            raise web.HTTPError(400, "If-Match must hold exactly one etag, as a model gives it")
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise web.HTTPError(
            400, "If-None-Match on a save must be *: save only if no such file exists"
        )
    return if_match, if_none_match is not None


class ModelAnswerMixin:
    """Answers of saves and uploads, as jupyter_server's contents API answers a save."""

    def answer_with_model(self, model: dict[str, Any]) -> None:
        """The saved model (without content) as JSON, with where the file lives (`Location`,
        under /api/contents) and when it last changed (`Last-Modified`)."""
        validate_model(model)
        location = url_path_join(self.base_url, "api", "contents", url_escape(model["path"]))
        self.set_header("Location", location)
        self.set_header("Last-Modified", model["last_modified"])
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model, default=json_default))


class SwanContentsHandler(ErrorFieldsMixin, ModelAnswerMixin, JsonBodyMixin, ContentsHandler):
    """/api/contents as jupyter_server serves it, plus conditional saves.

    A PUT may name the version it was based on in an `If-Match` header (the model's `etag`,
    quotes included) instead of, or as well as, the model's `etag` field; and may ask to create
    the file only if none of that name exists with `If-None-Match: *` (the model's
    `if_none_match: "*"`).
    """

    _model: Any = None
    #: a model with a long list (`_long_list`), written by `get` in steps
    _long_model: dict[str, Any] | None = None
    _in_steps = False

    def get_json_body(self) -> Any:
        # read once: a save's body may be megabytes of JSON, and `put` below may hand over to
        # jupyter_server's, which reads it again
        if self._model is None:
            self._model = self._read_model()
        return self._model

    def _read_model(self) -> Any:
        model = super().get_json_body()
        if model is not None and self.request.method in ("PUT", "PATCH", "POST"):
            check_model_shape(model)
        if self.request.method != "PUT" or not isinstance(model, dict):
            return model
        if_match, create_only = save_condition(self.request.headers)
        if if_match is not None:
            if model.get("etag") not in (None, if_match):
                raise web.HTTPError(400, "If-Match and the model's etag name different versions")
            model["etag"] = if_match
        if create_only:
            model["if_none_match"] = "*"
        return model

    @web.authenticated
    @authorized
    async def get(self, path: str = "") -> None:
        """As jupyter_server's, but a folder's children come as JSON made straight from the
        storage's listing (`CHILDREN_AS_JSON`), and a big folder's JSON or a notebook's is
        written in steps (`_write_in_steps`), not in one `json.dumps` that holds the event
        loop."""
        self._in_steps = True
        as_json = CHILDREN_AS_JSON.set(True)
        try:
            await super().get(path)
        finally:
            CHILDREN_AS_JSON.reset(as_json)
        if self._long_model is not None:
            await self._write_in_steps(self._long_model)

    def _finish_model(self, model: dict[str, Any], location: bool = True) -> None:
        if not (self._in_steps and _long_list(model)):
            super()._finish_model(model, location)
            return
        # the headers jupyter_server's sets (a GET sets no Location), the body left to `get`
        self.set_header("Last-Modified", model["last_modified"])
        self.set_header("Content-Type", "application/json")
        self._long_model = model

    async def _write_in_steps(self, model: dict[str, Any]) -> None:
        """The model as JSON, the same as one `json.dumps` gives but for the order of the
        fields: its own fields, then its long list (a folder's children, a notebook's cells)."""
        if model["type"] == "directory":
            around = [(model, "content")]
        else:
            around = [(model, "content"), (model["content"], "cells")]
        opening = ""
        for fields, key in around:
            rest = {name: value for name, value in fields.items() if name != key}
            opening += json.dumps(rest, default=json_default)[:-1]
            opening += (", " if rest else "") + json.dumps(key) + ": "
        items = _long_list(model) or []
        pieces = (
            items
            if isinstance(items, ChildrenJSON)
            else (json.dumps(item, default=json_default) for item in items)
        )
        await self._write_list(opening, pieces, "}" * len(around))

    async def _write_list(self, opening: str, pieces: Iterable[str], closing: str) -> None:
        """`opening`, the JSON list of `pieces` (each an item's JSON), `closing`, and finish:
        about `BYTES_PER_STEP` of JSON between two turns of the event loop, each step sent
        once made. A short answer is one write, which tornado still gives its ETag."""
        parts = [opening, "["]
        separator = ""
        size = 0
        for piece in pieces:
            parts.append(separator + piece)
            separator = ", "
            size += len(piece)
            if size > BYTES_PER_STEP:
                self.write("".join(parts))
                parts, size = [], 0
                try:
                    await self.flush()
                except StreamClosedError:
                    return  # the client went away
        parts += ["]", closing]
        self.write("".join(parts))
        await self.finish()

    @web.authenticated
    @authorized
    async def put(self, path: str = "") -> None:
        """As jupyter_server's, which first asks the storage whether the file exists (to answer
        200 or 201), except for a save that says it itself: one naming the version it replaces
        (that file exists, or the save is a 409) or asking to create (a new file, or a 409).
        JupyterLab names the version with every save of an open document: one request fewer."""
        model = self.get_json_body()
        conditional = isinstance(model, dict) and (
            model.get("etag") is not None or model.get("if_none_match") is not None
        )
        part = isinstance(model, dict) and model.get("chunk") is not None
        if not (conditional or part) or model.get("copy_from"):
            await super().put(path)
            return
        cm = self.contents_manager
        if not cm.allow_hidden and (
            (model.get("path") and await cm.is_hidden(model["path"])) or await cm.is_hidden(path)
        ):
            raise web.HTTPError(400, f"Cannot create file or directory {path!r}")
        if model.get("type", "") not in {None, "", "directory", "file", "notebook"}:
            model["type"] = "file"
        if part:
            await self._save_part(model, path)
            return
        if model.get("if_none_match") is None:
            self.log.info("Saving file at %s", path)
            self.answer_with_model(await cm.save(model, path))
            return
        # `new` gives a model without content an empty notebook or file, as an upload's
        saved = await cm.new(model, path)
        # 201 where the file was created; 200 where one was there and the save went to a
        # conflict copy, as jupyter_server answers a save of a file that exists
        self.set_status(201 if saved["path"] == path.strip("/") else 200)
        self.answer_with_model(saved)

    async def _save_part(self, model: dict[str, Any], path: str) -> None:
        """One part of an upload in parts, answered as jupyter_server answers it (201 for the
        first part of a new file, 200 for the others) but asking the storage whether the file
        exists for the first part only: on WebDAV that is a PROPFIND per MiB fewer."""
        created = model["chunk"] == 1 and not await self.contents_manager.file_exists(path)
        saved = await self.contents_manager.save(model, path)
        self.set_status(201 if created else 200)
        self.answer_with_model(saved)


class StorageAPIHandler(ErrorFieldsMixin, JsonBodyMixin, APIHandler):
    """Shared by the /swan/api/ storage endpoints: the contents permission, JSON in and out."""

    auth_resource = "contents"

    def checked_body(self, schema: str) -> dict[str, Any]:
        """The JSON body, checked against `schema` (a pointer into openapi.yaml)."""
        return check_body(self.get_json_body(), schema)

    def reply(self, payload: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload, default=json_default))


class VersionsHandler(StorageAPIHandler):
    """GET /swan/api/versions?path=: every version of a file, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path")
        versions = await self.contents_manager.list_versions(path)
        self.reply({"path": path.strip("/"), "versions": [v.to_json() for v in versions]})


class VersionRestoreHandler(StorageAPIHandler):
    """POST /swan/api/versions/restore {path, id}: make a version the current content."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.checked_body(VERSION_RESTORE)
        self.reply(await self.contents_manager.restore_version(body["path"], body["id"]))


class TrashHandler(StorageAPIHandler):
    """GET /swan/api/trash: deleted files and folders that can be restored, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        trash = await self.contents_manager.list_trash()
        self.reply(
            {"supported": trash["supported"], "items": [i.to_json() for i in trash["items"]]}
        )


class TrashRestoreHandler(StorageAPIHandler):
    """POST /swan/api/trash/restore {id, path?}: put a deleted entry back (409 if taken)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.checked_body(TRASH_RESTORE)
        self.reply(await self.contents_manager.restore_from_trash(body["id"], body.get("path")))


def storage_handlers(base_url: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """Routes to add ahead of jupyter_server's own: its contents routes with
    `SwanContentsHandler` (`contents_swap`), and the versions, trash, diff and merge endpoints."""
    # they build on StorageAPIHandler, above
    from .notebook_diff import NotebookDiffHandler, NotebookMergeHandler

    routes = contents_routes(SwanContentsHandler)
    routes += [
        ("/swan/api/versions", VersionsHandler),
        ("/swan/api/versions/restore", VersionRestoreHandler),
        ("/swan/api/trash", TrashHandler),
        ("/swan/api/trash/restore", TrashRestoreHandler),
        ("/swan/api/diff", NotebookDiffHandler),
        ("/swan/api/merge", NotebookMergeHandler),
    ]
    return [(url_path_join(base_url, pattern), handler) for pattern, handler in routes]
