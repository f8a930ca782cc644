"""The storage part of the REST API: conditional saves on /api/contents.

It only reads requests and writes answers; what a save, a version or a trash entry is, the
contents manager decides. Routes here are added only when the server runs SwanContentsManager.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.services.contents.handlers import default_handlers as contents_routes
from jupyter_server.utils import url_path_join
from tornado import web

from swan_contents.errors import StorageHTTPError


class SwanContentsHandler(ContentsHandler):
    """/api/contents as jupyter_server serves it, plus conditional saves.

    A PUT may name the version it was based on in an `If-Match` header (the model's `etag`,
    quotes included) instead of, or as well as, the model's `etag` field. Errors that carry
    more than a message (the current `etag` of a 409) have those fields in the JSON body.
    """

    def get_json_body(self) -> Any:
        model = super().get_json_body()
        if_match = self.request.headers.get("If-Match")
        if self.request.method != "PUT" or if_match is None or not isinstance(model, dict):
            return model
        if_match = if_match.strip()
        if not if_match or if_match == "*" or "," in if_match:
            raise web.HTTPError(400, "If-Match must hold exactly one etag, as a model gives it")
        if model.get("etag") not in (None, if_match):
            raise web.HTTPError(400, "If-Match and the model's etag name different versions")
        model["etag"] = if_match
        return model

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = (kwargs.get("exc_info") or (None, None))[1]
        if not isinstance(error, StorageHTTPError):
            super().write_error(status_code, **kwargs)
            return
        self.set_header("Content-Type", "application/json")
        reply = {"message": error.log_message, "reason": error.reason, **error.fields}
        self.log.warning("wrote error: %r", error.log_message)
        self.finish(json.dumps(reply))


def storage_handlers(base_url: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """Routes to add ahead of jupyter_server's own (tornado tries added rules first).

    The contents routes are repeated in jupyter_server's order with our handler in place of
    theirs, so `…/checkpoints` and `…/trust` still reach their handlers.
    """
    routes = [
        (pattern, SwanContentsHandler if handler is ContentsHandler else handler)
        for pattern, handler in contents_routes
    ]
    return [(url_path_join(base_url, pattern), handler) for pattern, handler in routes]
