"""jupyter_server's /api/contents routes with the SWAN contents handler in place of its own: the
one place where the server extension leans on jupyter_server beyond its public API.

Why: a conditional save (`If-Match`, `If-None-Match: *`, the model's `etag`) and an upload part
must be answered without the stock handler's "does it exist?" call first, and jupyter_server has
no setting for the class that serves /api/contents. So the routes of
`jupyter_server.services.contents.handlers.default_handlers` are repeated, in their order (so
`…/checkpoints` and `…/trust` still reach their handlers), with the replacement where
`ContentsHandler` was, and added ahead of jupyter_server's own (tornado tries the rules added
later first). Every other request falls through to `ContentsHandler.put`, which must read its
model through `get_json_body` (the replacement checks the model's shape there).

Remove when: jupyter_server answers conditional saves itself, or lets an extension name the
handler of /api/contents. `tests/test_upstream_canaries.py` fails first, naming what changed.
"""

from __future__ import annotations

from jupyter_server.services.contents.handlers import ContentsHandler, default_handlers
from tornado import web


def contents_routes(
    replacement: type[ContentsHandler],
) -> list[tuple[str, type[web.RequestHandler]]]:
    """jupyter_server's contents routes (patterns without the base URL) with `replacement`
    serving /api/contents."""
    return [
        (pattern, replacement if handler is ContentsHandler else handler)
        for pattern, handler in default_handlers
    ]
