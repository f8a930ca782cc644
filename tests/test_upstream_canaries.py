"""Canaries for what the suite borrows from upstream beyond its public API
(docs/architecture.md, "Upstream internals we lean on"): each fails with a sentence naming what
changed upstream and which of our modules to revisit, before a user meets the consequence.
"""

from __future__ import annotations

import inspect
import io
import sys
from pathlib import Path

from jupyter_server.services.contents.handlers import ContentsHandler, default_handlers
from tornado import web
from wsgidav.wsgidav_app import WsgiDAVApp

from swan_share_ext.contents_swap import contents_routes


def test_jupyter_server_still_lists_its_contents_handler_among_its_default_routes():
    routed = [pattern for pattern, handler in default_handlers if handler is ContentsHandler]
    assert len(routed) == 1 and routed[0].startswith("/api/contents"), (
        "jupyter_server.services.contents.handlers.default_handlers no longer routes "
        f"/api/contents to ContentsHandler (found {routed}): swan_share_ext/contents_swap.py "
        "would leave conditional saves to the stock handler; rebuild the swap"
    )


def test_the_swapped_routes_keep_jupyter_servers_order_with_only_the_contents_handler_replaced():
    class Replacement(ContentsHandler):
        pass

    swapped = contents_routes(Replacement)
    assert [pattern for pattern, _ in swapped] == [pattern for pattern, _ in default_handlers]
    pairs = zip(default_handlers, swapped, strict=True)
    changed = [(a, b) for (_, a), (_, b) in pairs if a is not b]
    assert changed == [(ContentsHandler, Replacement)]
    assert all(issubclass(handler, web.RequestHandler) for _, handler in swapped)


def test_jupyter_servers_contents_put_still_reads_its_model_through_get_json_body():
    source = inspect.getsource(ContentsHandler.put)
    assert "self.get_json_body()" in source, (
        "ContentsHandler.put no longer reads the model through get_json_body: the saves "
        "SwanContentsHandler hands over to it would skip the model's shape check and the "
        "If-Match header (swan_share_ext/storage_api.py, contents_swap.py)"
    )


def _wsgidav_copy(root: Path, destination: str) -> str:
    """COPY /a.txt on a plain WsgiDAV app over `root`, called as WSGI; its status line."""
    app = WsgiDAVApp(
        {
            "provider_mapping": {"/": str(root)},
            "simple_dc": {"user_mapping": {"*": True}},
            "verbose": 0,
            "logging": {"enable": False},
            "property_manager": None,
            "lock_storage": None,
        }
    )
    environ = {
        "REQUEST_METHOD": "COPY",
        "PATH_INFO": "/a.txt",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_DESTINATION": destination,
        "CONTENT_LENGTH": "0",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    status: list[str] = []
    b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
    return status[0]


def test_wsgidav_still_cuts_a_destination_at_an_encoded_question_mark(tmp_path):
    # mar10/wsgidav#139: the Destination header is decoded before it is parsed as a URL
    (tmp_path / "a.txt").write_text("x")
    status = _wsgidav_copy(tmp_path, "http://127.0.0.1/b%3Fc.txt")
    assert status.startswith("201")
    assert not (tmp_path / "b?c.txt").exists(), (
        "WsgiDAV now reads an encoded ? in a Destination as part of the name "
        "(mar10/wsgidav#139 is fixed): the drive's stand-in Destination "
        "(swan_hub/drive/dav.py, stand_in_destination) can go"
    )
    assert (tmp_path / "b").exists(), "WsgiDAV read the Destination in a way no one expected"
