"""Canaries for what the suite borrows from upstream beyond its public API
(docs/architecture.md, "Upstream internals we lean on"): each fails with a sentence naming what
changed upstream and which of our modules to revisit, before a user meets the consequence.
"""

from __future__ import annotations

import inspect
import io
import sys
from pathlib import Path

import pytest
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


def test_jupyter_servers_contents_get_still_answers_through_finish_model():
    source = inspect.getsource(ContentsHandler.get)
    assert "self._finish_model(" in source, (
        "ContentsHandler.get no longer answers through _finish_model: SwanContentsHandler would "
        "write big folders and notebooks in one json.dumps again, holding the event loop "
        "(swan_share_ext/storage_api.py, SwanContentsHandler._finish_model)"
    )
    parameters = list(inspect.signature(ContentsHandler._finish_model).parameters)
    assert parameters[:3] == ["self", "model", "location"], (
        f"ContentsHandler._finish_model now takes {parameters}: revisit "
        "SwanContentsHandler._finish_model in swan_share_ext/storage_api.py"
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


def test_tornado_still_reads_a_fixed_length_body_in_pieces_of_its_connections_chunk_size():
    from tornado.http1connection import HTTP1Connection

    source = inspect.getsource(HTTP1Connection._read_fixed_body)
    assert "self.params.chunk_size" in source, (
        "tornado's HTTP1Connection no longer reads a body in pieces of params.chunk_size: "
        "swan_share_ext/upload.py sets that per connection to read uploads in 1 MiB pieces; "
        "find tornado's new knob, or drop the setting (uploads then read 64 KiB at a time)"
    )


FILEBROWSER_MODEL = (
    Path(__file__).resolve().parents[1] / "js/node_modules/@jupyterlab/filebrowser/lib/model.js"
)


def test_jupyterlabs_file_browser_model_still_sends_uploads_through_its_private_upload():
    if not FILEBROWSER_MODEL.exists():
        pytest.skip("the labextension's JavaScript dependencies are not installed (jlpm install)")
    source = FILEBROWSER_MODEL.read_text()
    for expected in (
        "await this._shouldUploadLarge(file)",
        "return await this._upload(file, ",
        "async _upload(file, chunked, uploadPath)",
        "this._uploads.push(",
        "this._uploadChanged.emit(",
    ):
        assert expected in source, (
            f"JupyterLab's FileBrowserModel no longer has {expected!r}: js/src/uploads.ts "
            "(replaceUploadSender) then leaves uploads to JupyterLab's base64 parts; use the "
            "seam JupyterLab offers now, or follow its new private names"
        )


def test_jupyterlabs_file_listing_still_draws_what_its_models_items_give_sorted_by_sort():
    listing = FILEBROWSER_MODEL.with_name("listing.js")
    if not listing.exists():
        pytest.skip("the labextension's JavaScript dependencies are not installed (jlpm install)")
    source = listing.read_text()
    for expected in (
        "sort(state) {\n        this._sortedItems = Private.sort(this.model.items(), state,",
        "this._sortedItems = Private.sort(this.model.items(), sortState,",
        "const state = { direction, key: column.id };",
        "void this.selectItemByName(name).catch(",
    ):
        assert expected in source, (
            f"JupyterLab's DirListing no longer has {expected!r}: js/src/bigFolders.ts "
            "(limitBigFolders) gives a file browser at most the first 1,000 entries of a folder "
            "through its model's items(), follows a new order through the listing's sort() and "
            "shows what JupyterLab selects through selectItemByName(); find how the listing now "
            "gets, sorts and selects its items, or JupyterLab draws whole folders again"
        )


def test_jupyter_servers_sessions_start_kernels_by_the_managers_start_kernel_with_a_path():
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager
    from jupyter_server.services.sessions.sessionmanager import SessionManager

    assert "path" in inspect.signature(MappingKernelManager.start_kernel).parameters, (
        "MappingKernelManager.start_kernel takes no `path` any more: a kernel's start would no "
        "longer wait for its notebook's folder new to the mount (swan_share_ext/kernel_folders.py)"
    )
    source = inspect.getsource(SessionManager.start_kernel_for_session)
    assert "self.kernel_manager.start_kernel(" in source and "path=" in source, (
        "SessionManager no longer starts a session's kernel through kernel_manager.start_kernel"
        "(path=...): revisit swan_share_ext/kernel_folders.py, which waits there"
    )


def test_httpcore_still_reads_an_answer_in_pieces_of_its_connections_read_num_bytes():
    import httpcore
    from httpcore._async.http11 import AsyncHTTP11Connection

    assert AsyncHTTP11Connection is httpcore.AsyncHTTP11Connection
    assert isinstance(getattr(AsyncHTTP11Connection, "READ_NUM_BYTES", None), int) and (
        "self.READ_NUM_BYTES" in inspect.getsource(AsyncHTTP11Connection._receive_event)
    ), (
        "httpcore's AsyncHTTP11Connection no longer reads an answer in pieces of its "
        "READ_NUM_BYTES: swan_hub/mount_guard.py's read_a_chunk_at_once no longer makes the "
        "mount guard read STREAM_CHUNK at a time, and guarded reads are slower; find the new seam"
    )
