"""PUT /swan/api/upload/<path>: a file uploaded as the raw bytes of one request body, streamed
to the storage (swan_contents.uploads) instead of JupyterLab's base64 parts in JSON.

It reads HTTP only (authentication, the headers, the body as it arrives) and answers as the
contents API answers a save; what is refused and how the bytes reach the storage, the contents
manager decides. Added only when the server runs SwanContentsManager.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.http1connection import HTTP1Connection
from traitlets import Int
from traitlets.config import LoggingConfigurable

from swan_contents.uploads import StreamedUpload

from .storage_api import ErrorFieldsMixin, ModelAnswerMixin, save_condition

GIB = 1024**3

#: the largest piece of the body handed over at a time (see `_announced_size`)
READ_SIZE = 1024 * 1024


class SwanUpload(LoggingConfigurable):
    """Settings of streamed uploads (``c.SwanUpload.…``)."""

    max_size = Int(
        10 * GIB,
        config=True,
        help="""The largest file, in bytes, that PUT /swan/api/upload accepts (10 GiB by
        default); a larger one is refused with 413 before any of it is read. 0: no limit. On a
        WebDAV storage an upload is gathered on this server's disk before it goes on, so keep
        this below the free space of the server's temporary folder.""",
    )


@web.stream_request_body
class UploadHandler(ErrorFieldsMixin, ModelAnswerMixin, APIHandler):
    """PUT /swan/api/upload/<path>: the body is the file. Conditional like a save
    (`If-Match: <etag>`, `If-None-Match: *`); answers the file's model as the contents API
    does, 201 where it created the file, 200 where it replaced one."""

    auth_resource = "contents"
    upload: StreamedUpload | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        # authentication and the XSRF check, then authorization: all before any body byte
        await super().prepare()
        if self._finished:
            return
        if not await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "write", "contents")
        ):
            raise web.HTTPError(403, "You may not change files on this server")
        if self.request.method != "PUT":
            return
        size = self._announced_size()
        if_match, create_only = save_condition(self.request.headers)
        path = self.path_args[0] if self.path_args else ""
        self.upload = await self.contents_manager.start_upload(
            path, size, if_match=if_match, create_only=create_only
        )

    def _announced_size(self) -> int:
        """The Content-Length: 411 without one, 413 above `max_size`. The connection is told to
        take a body of that size (jupyter_server's own limit is for JSON bodies)."""
        header = self.request.headers.get("Content-Length")
        if header is None:
            raise web.HTTPError(411, "Send the file with a Content-Length header")
        try:
            size = int(header)
        except ValueError:
            raise web.HTTPError(400, "The Content-Length must be a number of bytes") from None
        if size < 0:
            raise web.HTTPError(400, "The Content-Length must be a number of bytes")
        connection = self.request.connection
        connection.set_max_body_size(size)
        if isinstance(connection, HTTP1Connection):
            # Read the body in pieces of up to READ_SIZE, not the server's 64 KiB: a third of
            # the time of a large upload goes to the calls per piece otherwise. The parameters
            # are shared by the server's connections: this one gets its own copy.
            connection.params = copy.copy(connection.params)
            connection.params.chunk_size = READ_SIZE
        limit = self.settings["swan_upload"].max_size
        if limit and size > limit:
            raise web.HTTPError(
                413,
                f"The file is {size} bytes; this server takes files of at most {limit} bytes. "
                "Ask your administrator, or use a sync client for files that large.",
            )
        return size

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.upload is None or self.upload.received < self.upload.size:
            # answered before the whole body came: tornado closes the connection after this
            # answer (the only way not to read the rest); say so, so no client reuses it
            self.set_header("Connection", "close")
        super().write_error(status_code, **kwargs)

    async def data_received(self, chunk: bytes) -> None:
        if self.upload is None or self._finished:
            return
        try:
            await self.upload.feed(chunk)
        except web.HTTPError as e:
            # answered now, before the rest of the body: the connection closes after it
            await self.upload.abandon()
            self.send_error(e.status_code, exc_info=sys.exc_info())

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self.upload is not None:
            # the client went away mid-body: nothing at the path changes
            task = asyncio.ensure_future(self.upload.abandon())
            _abandoning.add(task)
            task.add_done_callback(_abandoning.discard)

    async def put(self, path: str) -> None:
        assert self.upload is not None  # the path was read in prepare()
        saved = await self.upload.finish()
        self.set_status(200 if self.upload.existed else 201)
        self.answer_with_model(saved)


#: uploads being dropped after their client went away (held until done)
_abandoning: set[asyncio.Future] = set()


def setup_upload(server_app: Any) -> None:
    """Add the upload route and its settings (`SwanUpload`) to the server's web application."""
    web_app = server_app.web_app
    web_app.settings["swan_upload"] = SwanUpload(parent=server_app)
    route = url_path_join(web_app.settings["base_url"], "/swan/api/upload/(.+)")
    web_app.add_handlers(".*$", [(route, UploadHandler)])
