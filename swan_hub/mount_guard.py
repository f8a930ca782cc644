"""The mount guard: a WebDAV pass-through on 127.0.0.1 between a server's rclone mounts and a
storage that is not the drive, so that an upload from code never silently replaces a change
another device made; the file it would replace is kept aside as a conflict copy first.

It must not buffer a body (bodies stream both ways), follow a redirect, reach anything but the
one upstream folder it was started for, or change an answer it passes on. Started for a share
of another site (``--no-redirects``), it passes on no redirect either: rclone would follow one
anywhere (`refuse_redirect`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import posixpath
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit
from xml.etree.ElementTree import SubElement, tostring  # noqa: S405 - builds, parses nothing

import httpcore
import httpx
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, HTTPError, RequestHandler, stream_request_body

from swan_contents.storage.base import kept_copy_name
from swan_contents.storage.webdav.etags import ETags, normalize_etag
from swan_contents.storage.webdav.multistatus import parse_xml, prop_text, responses

log = logging.getLogger("swan-mount-guard")

#: paths whose state the mount was told, at most (the oldest are forgotten first), as the drive
#: remembers (`swan_hub.drive.sightings.MAX_SIGHTINGS`)
MAX_PATHS = 100_000
#: bytes of raw folder listings kept (parsed only when a write needs one), at most
MAX_LISTING_BYTES = 64 << 20
#: a listing larger than this is passed on but not kept (its folder counts as never seen)
MAX_LISTING = 16 << 20
#: bytes of an answer passed on per write: fewer, larger writes to rclone's connection
STREAM_CHUNK = 256 << 10
#: how many chunks of a request body wait for the storage at most (back pressure on rclone)
BODY_QUEUE = 8
#: what a conflict copy says whose version it holds (as on the drive)
WHOSE = "changed elsewhere"
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    )
)
#: the headers the guard's own requests carry from rclone's (who it is)
AUTH_HEADERS = ("authorization", "cookie")
#: what a guard of a view-only share passes on
READS = frozenset(("GET", "HEAD", "OPTIONS", "PROPFIND"))
DAV = "{DAV:}"
GETETAG = f"{DAV}getetag"
#: a PROPFIND body longer than this is passed on as it is (rclone's are a few hundred bytes)
MAX_PROPFIND_BODY = 64 << 10
PROPFIND_ETAG = (
    b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/>'
    b"<d:resourcetype/></d:prop></d:propfind>"
)
ABSENT = ""  # the "etag" of a path the mount knows holds nothing


def _path_of(href: str) -> str:
    """The decoded path of an href or a URL path, without a trailing slash."""
    return unquote(urlsplit(href).path).rstrip("/") or "/"


class Knowledge:
    """What the mount last knew of each path: an ETag it was told (GET, HEAD, its own PUT) or a
    listing of its folder, whichever came later. Listings are kept as the raw
    multistatus bodies rclone was sent and parsed only when a write needs one (in a thread)."""

    def __init__(self, max_paths: int = MAX_PATHS, max_bytes: int = MAX_LISTING_BYTES) -> None:
        self.max_paths = max_paths
        self.max_bytes = max_bytes
        self._tick = 0
        #: path -> (tick, normalized etag; ABSENT for nothing there)
        self._files: OrderedDict[str, tuple[int, str]] = OrderedDict()
        #: folder -> (tick, raw multistatus body)
        self._listings: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._listing_bytes = 0
        #: the last listing parsed: (folder, tick, path -> etag)
        self._parsed: tuple[str, int, dict[str, str]] = ("", -1, {})

    def _next(self) -> int:
        self._tick += 1
        return self._tick

    def note(self, path: str, etag: str) -> None:
        """The mount knows ``path`` as of now: ``etag`` (normalized), or ABSENT."""
        self._files.pop(path, None)
        self._files[path] = (self._next(), etag)
        while len(self._files) > self.max_paths:
            self._files.popitem(last=False)

    def note_listing(self, folder: str, body: bytes) -> None:
        earlier = self._listings.pop(folder, None)
        if earlier is not None:
            self._listing_bytes -= len(earlier[1])
        self._listings[folder] = (self._next(), body)
        self._listing_bytes += len(body)
        while self._listing_bytes > self.max_bytes or len(self._listings) > self.max_paths:
            _, (_, dropped) = self._listings.popitem(last=False)
            self._listing_bytes -= len(dropped)

    async def moved(self, source: str, target: str) -> None:
        """The mount moved the folder ``source`` to ``target``: it knows what it knew inside."""

        def inside(path: str) -> bool:
            return path == source or path.startswith(source + "/")

        for path in [p for p in self._files if inside(p)]:
            self.note(target + path[len(source) :], self._files.pop(path)[1])
        for folder in [f for f in self._listings if inside(f)]:
            _, body = self._listings.pop(folder)
            self._listing_bytes -= len(body)
            for path, etag in (await asyncio.to_thread(_etags_in, body, folder) or {}).items():
                if inside(path):
                    self.note(target + path[len(source) :], etag)

    def forget(self, path: str) -> None:
        self._files.pop(path, None)

    async def of(self, path: str) -> str | None:
        """The ETag the mount last knew ``path`` by, ABSENT when it knew nothing there, None
        when it never saw it (or forgot)."""
        own = self._files.get(path)
        folder = posixpath.dirname(path)
        listed = self._listings.get(folder)
        if listed is None or (own is not None and own[0] > listed[0]):
            return None if own is None else own[1]
        tick, body = listed
        if self._parsed[:2] != (folder, tick):
            etags = await asyncio.to_thread(_etags_in, body, folder)
            if etags is None:
                return None if own is None else own[1]
            self._parsed = (folder, tick, etags)
        return self._parsed[2].get(path, ABSENT)


def _etags_in(body: bytes, where: str) -> dict[str, str] | None:
    """Path -> normalized ETag of each entry of a multistatus answer (None when unreadable)."""
    try:
        found = responses(body, where)
    except Exception:
        return None
    return {_path_of(href): normalize_etag(prop_text(props, GETETAG)) for href, props in found}


def with_etags(body: bytes) -> bytes:
    """A PROPFIND body that asks for ``getetag`` too: rclone lists folders without it, and a
    listing is what tells the guard the state of most files the mount writes. The body as it
    is when it asks for all properties, already has it, or is not one we can read."""
    if not body.strip() or b"getetag" in body or len(body) > MAX_PROPFIND_BODY:
        return body
    try:
        root = parse_xml(body)
    except Exception:
        return body
    prop = root.find(f"{DAV}prop")
    if root.tag != f"{DAV}propfind" or prop is None:
        return body
    SubElement(prop, GETETAG)
    return tostring(root, encoding="utf-8", xml_declaration=True)


class Found(NamedTuple):
    """What a storage has at a path: its ``answer`` to a PROPFIND Depth 0, the ``etag``
    (ABSENT when nothing is there, None when it did not say), whether it called that ETag
    ``weak``, and whether it is a ``folder``."""

    answer: httpx.Response
    etag: str | None
    weak: bool = False
    folder: bool = False


class Guard:
    """One guard: its upstream folder, its client and what the mount knows."""

    def __init__(self, upstream: str, *, redirects: bool = True, read_only: bool = False) -> None:
        parts = urlsplit(upstream)
        #: whether a redirect of the storage is passed on to rclone (which follows it)
        self.redirects = redirects
        #: whether only reads are passed on (a view-only share; nothing to remember then)
        self.read_only = read_only
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {upstream}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base = _path_of(parts.path)
        self.knowledge = Knowledge()
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(60.0, connect=10.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    def inside(self, path: str) -> bool:
        """Whether the decoded ``path`` lies in the upstream folder (no ``..`` way out)."""
        if "\0" in path:
            return False
        normal = posixpath.normpath(path) if path else "/"
        return self.base == "/" or normal == self.base or normal.startswith(self.base + "/")

    def url(self, path: str) -> str:
        return self.origin + quote(path)

    async def look(self, path: str, auth: dict[str, str]) -> Found:
        """What the storage has at ``path`` now (one PROPFIND Depth 0)."""
        r = await self.client.request(
            "PROPFIND",
            self.url(path),
            headers={**auth, "Depth": "0", "Content-Type": "application/xml"},
            content=PROPFIND_ETAG,
        )
        if r.status_code == 404:
            return Found(r, ABSENT)
        if r.status_code == 207:
            with contextlib.suppress(Exception):
                for href, props in responses(r.content, path):
                    if _path_of(href) == path:
                        raw = prop_text(props, GETETAG) or ""
                        folder = props.get(f"{DAV}resourcetype")
                        return Found(
                            r,
                            normalize_etag(raw) or None,
                            raw.startswith("W/"),
                            folder is not None and folder.find(f"{DAV}collection") is not None,
                        )
        return Found(r, None)
        with contextlib.suppress(Exception):
            for href, props in responses(r.content, path):
                if _path_of(href) == path:
                    raw = prop_text(props, GETETAG) or ""
                    return r, normalize_etag(raw) or None, raw.startswith("W/")
        return r, None, False


def _forwarded(headers: httpx.Headers | dict, drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    items = headers.get_all_items() if hasattr(headers, "get_all_items") else headers.items()
    return [(k, v) for k, v in items if k.lower() not in HOP_BY_HOP and k.lower() not in drop]


@stream_request_body
class PassThrough(RequestHandler):
    """Every request: checked, maybe preceded by keeping a file aside, passed on streamed."""

    SUPPORTED_METHODS = (  # type: ignore[assignment]
        "GET",
        "HEAD",
        "PUT",
        "DELETE",
        "OPTIONS",
        "POST",
        "PATCH",
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
    )

    def initialize(self, guard: Guard) -> None:
        self.guard = guard
        self._body: asyncio.Queue[bytes | None] = asyncio.Queue(BODY_QUEUE)
        self._upstream: asyncio.Task[httpx.Response] | None = None
        self._response: httpx.Response | None = None
        self._propfind_body: bytearray | None = None
        self._headers_on: list[tuple[str, str]] = []

    def compute_etag(self) -> None:
        return None  # the storage's ETags only

    def refuse(self, status: int, message: str) -> None:
        raise HTTPError(status, reason=message)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        # tornado drops a connection whose request body was not read: say so to the client
        self.set_header("Connection", "close")
        self.finish(f"{self._reason}\n")

    def _auth(self) -> dict[str, str]:
        return {k: v for k, v in self.request.headers.items() if k.lower() in AUTH_HEADERS}

    def _destination(self) -> str | None:
        """The decoded path of a MOVE's or COPY's Destination, on this guard; refused when it
        names another host or a path outside the upstream folder."""
        raw = self.request.headers.get("Destination")
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.netloc and parts.netloc != self.request.host:
            self.refuse(
                403,
                "The destination is on another server; this guard passes on moves within its "
                "storage folder only.",
            )
        path = _path_of(parts.path)
        if not self.guard.inside(path):
            self.refuse(403, "The destination lies outside the storage folder this guard serves.")
        return path

    async def prepare(self) -> None:
        self.path = _path_of(self.request.path)
        if not self.guard.inside(unquote(self.request.path)):
            self.refuse(403, f"This guard passes on requests inside {self.guard.base} only.")
        self.request.connection.set_max_body_size(1 << 50)
        self.request.connection.set_body_timeout(3600)
        headers = _forwarded(self.request.headers)
        method = self.request.method
        if self.guard.read_only and method not in READS:
            self.refuse(403, "This share is view-only: nothing in it can be changed.")
        destination = self._destination() if method in ("MOVE", "COPY") else None
        if destination is not None:
            headers = [(k, v) for k, v in headers if k.lower() != "destination"]
            slash = "/" if urlsplit(self.request.headers["Destination"]).path.endswith("/") else ""
            headers.append(("Destination", self.guard.url(destination) + slash))
        if method == "PUT":
            headers = await self._guard_write(self.path, headers, "put")
        elif destination is not None and self.request.headers.get("Overwrite", "T") != "F":
            headers = await self._guard_write(destination, headers, "replace")
        elif method == "DELETE":
            headers = await self._guard_delete(self.path, headers)
        if self._finished:
            return
        self._headers_on = headers
        if method == "PROPFIND":
            self._propfind_body = bytearray()
            return  # sent once its (small) body is read: see _send
        has_body = "Content-Length" in self.request.headers or (
            "Transfer-Encoding" in self.request.headers
        )
        self._send(self._stream() if has_body else None)

    def _send(self, content: AsyncIterator[bytes] | bytes | None) -> None:
        client = self.guard.client
        headers = self._headers_on
        if isinstance(content, bytes):
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        request = client.build_request(
            self.request.method,
            self.guard.origin + self.request.uri,
            headers=headers,
            content=content,
        )
        self._upstream = asyncio.ensure_future(client.send(request, stream=True))

    async def _guard_write(
        self, path: str, headers: list[tuple[str, str]], kind: str
    ) -> list[tuple[str, str]]:
        """Before a write that would replace ``path``: keep the file there aside when the mount
        never saw it as it is now; returns the headers the write goes on with."""
        knowledge = self.guard.knowledge
        auth = self._auth()
        try:
            found = await self.guard.look(path, auth)
        except httpx.HTTPError:
            self.refuse(502, "The storage did not answer; the write was not passed on.")
        answer, now = found.answer, found.etag
        if now is None and answer.status_code != 207:
            # 401 (a token to renew), 403, 5xx: rclone hears what the storage said
            await self._answer_with(answer)
            return headers
        known = await knowledge.of(path)
        drop = (
            ("if-match", "if-none-match", "overwrite")
            if kind == "replace"
            else ("if-match", "if-none-match")
        )
        headers = [(k, v) for k, v in headers if k.lower() not in drop]
        if now == ABSENT:
            return [*headers, *self._create_only(kind)]
        if now is None:
            return headers  # a storage without ETags: nothing to compare (docs: limits)
        if known is not None and known == now:
            if kind == "put":
                return [*headers, *ETags.condition(now, found.weak).items()]
            return [*headers, ("Overwrite", "T")]
        copy = await self._keep_aside(path, auth)
        if copy is None:
            return headers
        log.info(
            "kept %s aside as %s: the storage has %s, the mount knew %s",
            path,
            copy,
            now,
            "nothing there" if known == ABSENT else known or "nothing of it",
        )
        return [*headers, *self._create_only(kind)]

    async def _guard_delete(
        self, path: str, headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Before a DELETE of a file: keep it aside instead when the mount never saw it as it
        is. rclone sends one after every failed upload ("remove the failed upload"), which
        would otherwise delete the very change whose 412 failed it."""
        auth = self._auth()
        try:
            found = await self.guard.look(path, auth)
        except httpx.HTTPError:
            self.refuse(502, "The storage did not answer; nothing was deleted.")
        if found.folder or not found.etag:
            return headers  # a folder, nothing there, or no ETag to compare
        known = await self.guard.knowledge.of(path)
        if known == found.etag:
            return [*headers, *ETags.condition(found.etag, found.weak).items()]
        copy = await self._keep_aside(path, auth)
        if copy is not None:
            log.info(
                "kept %s aside as %s instead of deleting a change the mount never saw", path, copy
            )
            self.guard.knowledge.note(path, ABSENT)
            self.set_status(204)
            self._clear_headers()
            self.set_header("Connection", "close")  # as in write_error
            self.finish()
        return headers

    @staticmethod
    def _create_only(kind: str) -> list[tuple[str, str]]:
        return [("If-None-Match", "*")] if kind == "put" else [("Overwrite", "F")]

    async def _keep_aside(self, path: str, auth: dict[str, str]) -> str | None:
        folder, name = posixpath.split(path)
        for attempt in range(1, 100):
            copy = posixpath.join(folder, kept_copy_name(name, WHOSE, attempt))
            try:
                r = await self.guard.client.request(
                    "MOVE",
                    self.guard.url(path),
                    headers={**auth, "Destination": self.guard.url(copy), "Overwrite": "F"},
                )
            except httpx.HTTPError:
                self.refuse(502, "The storage did not answer; the write was not passed on.")
            if r.status_code == 412:
                continue  # a copy of that name this minute already
            if r.status_code == 404:
                return None  # gone meanwhile: nothing to keep (the write then creates it)
            if r.status_code >= 300:
                self.refuse(
                    503,
                    f"The file changed on the storage and could not be kept aside "
                    f"({r.status_code}); the write was not passed on.",
                )
            self.guard.knowledge.forget(path)
            return copy
        self.refuse(409, "Too many conflict copies of this file this minute; try again.")
        return None

    async def refuse_redirect(self, answer: httpx.Response) -> None:
        """Refuse (502) an answer that sends rclone elsewhere, when this guard passes on no
        redirect: rclone follows a redirect to any address, with the same method and body, so
        another site could have the hub's host fetch or send to what only it reaches (its
        loopback services, a cloud's metadata address) and show the answer to code. A 304
        (not modified) names no other address and passes."""
        status = answer.status_code
        if self.guard.redirects or not 300 <= status < 400 or status == 304:
            return
        await answer.aclose()
        self.refuse(
            502,
            f"The other site answered with a redirect ({status}); a share of another site "
            "is reached at its own address only, so it was not followed.",
        )

    async def _answer_with(self, answer: httpx.Response) -> None:
        await self.refuse_redirect(answer)
        self.set_status(answer.status_code, answer.reason_phrase or None)
        self._clear_headers()
        for k, v in _forwarded(answer.headers, ("content-length", "content-encoding")):
            self.add_header(k, v)
        self.set_header("Connection", "close")  # the request's body was not read
        self.finish(answer.content)

    def _clear_headers(self) -> None:
        for name in ("Content-Type", "Server", "Date"):
            self.clear_header(name)

    async def _stream(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._body.get()
            if chunk is None:
                return
            yield chunk

    async def data_received(self, chunk: bytes) -> None:
        if self._propfind_body is not None:
            self._propfind_body += chunk
            if len(self._propfind_body) > MAX_PROPFIND_BODY:
                self.refuse(413, "This PROPFIND body is too large for a WebDAV listing.")
        elif self._upstream is not None:
            await self._body.put(chunk)

    def on_connection_close(self) -> None:
        if self._upstream is not None and not self._upstream.done():
            self._upstream.cancel()

    async def _pass_on(self) -> None:
        if self._propfind_body is not None:
            self._send(with_etags(bytes(self._propfind_body)))
        await self._body.put(None)
        assert self._upstream is not None
        try:
            response = await self._upstream
        except httpx.HTTPError as e:
            self.refuse(502, f"The storage did not answer ({type(e).__name__}); try again later.")
        self._response = response
        await self.refuse_redirect(response)
        method = self.request.method
        self.set_status(response.status_code, response.reason_phrase or None)
        self._clear_headers()
        for k, v in _forwarded(response.headers):
            self.add_header(k, v)
        depth = self.request.headers.get("Depth", "infinity")
        # A listing tells what the mount knows; a PROPFIND Depth 0 tells nothing: it is rclone's
        # own look, not code's (code's lookups list the folder), and rclone looks a file up
        # just before uploading one code made, which would take another device's file there
        # for one the mount had seen.
        # A view-only share's guard remembers nothing: nothing is written there.
        remember = not self.guard.read_only
        keep = remember and method == "PROPFIND" and depth != "0" and response.status_code == 207
        kept: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_raw(STREAM_CHUNK):
                if keep:
                    size += len(chunk)
                    if size > MAX_LISTING:
                        keep, kept = False, []
                    else:
                        kept.append(chunk)
                self.write(chunk)
                await self.flush()
        finally:
            await response.aclose()
        if remember and (response.status_code < 300 or (keep and kept)):
            await self._note(method, response, b"".join(kept) if keep else None)
        self.finish()

    async def _note(self, method: str, response: httpx.Response, listing: bytes | None) -> None:
        """What the mount knows after a successful answer."""
        knowledge = self.guard.knowledge
        path = self.path
        etag = normalize_etag(response.headers.get("OC-ETag") or response.headers.get("ETag"))
        if method in ("GET", "HEAD"):
            if etag:
                knowledge.note(path, etag)
        elif method == "PROPFIND" and listing is not None:
            knowledge.note_listing(path, listing)
        elif method == "PUT":
            await self._learn(path, etag)
        elif method == "DELETE":
            knowledge.note(path, ABSENT)
        elif method == "MOVE" and self.request.headers.get("Destination", "").endswith("/"):
            # rclone names a folder's new place with a slash: what the mount knew inside moves
            target = self._destination()
            if target is not None:
                await knowledge.moved(path, target)
        elif method in ("MOVE", "COPY", "PROPPATCH"):
            target = self._destination() if method != "PROPPATCH" else path
            if method == "MOVE":
                knowledge.note(path, ABSENT)
            if target is not None:
                await self._learn(target, "")

    async def _learn(self, path: str, etag: str) -> None:
        """Note the state the mount's own write left at ``path``: the ETag the storage
        answered, else the one it tells now."""
        if not etag:
            with contextlib.suppress(httpx.HTTPError):
                etag = (await self.guard.look(path, self._auth())).etag or ""
        if etag:
            self.guard.knowledge.note(path, etag)
        else:
            self.guard.knowledge.forget(path)

    get = head = put = delete = options = post = patch = _pass_on
    propfind = proppatch = mkcol = copy = move = lock = unlock = _pass_on


def read_a_chunk_at_once() -> None:
    """Make httpcore read an answer from the storage STREAM_CHUNK at a time instead of its
    64 KiB (`AsyncHTTP11Connection.READ_NUM_BYTES`, read by each connection for each read):
    a quarter of the reads, parser events and wake-ups per byte, which nearly doubles what
    the guard passes on for the CPU it takes (370 to 600-700 MB/s on loopback). For the
    guard's own process only (`main`). httpcore has no setting for it; should the attribute
    go, the guard reads as before (tests/test_upstream_canaries.py says so)."""
    if isinstance(getattr(httpcore.AsyncHTTP11Connection, "READ_NUM_BYTES", None), int):
        httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = STREAM_CHUNK


def make_app(upstream: str, *, redirects: bool = True, read_only: bool = False) -> Application:
    guard = Guard(upstream, redirects=redirects, read_only=read_only)
    return Application([(r".*", PassThrough, {"guard": guard})])


async def serve(
    upstream: str, port: int = 0, *, redirects: bool = True, read_only: bool = False
) -> None:
    """Listen on 127.0.0.1 (``port``, 0 for a free one), print the port on stdout, then serve
    until ended."""
    server = HTTPServer(
        make_app(upstream, redirects=redirects, read_only=read_only),
        idle_connection_timeout=300,
        max_body_size=1 << 50,
    )
    sockets = bind_sockets(port, "127.0.0.1")
    server.add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m swan_hub.mount_guard")
    parser.add_argument("upstream", help="the storage folder's WebDAV URL")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--no-redirects",
        action="store_true",
        help="answer a redirect of the storage with an error instead of passing it on",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="pass on reads only (GET, HEAD, PROPFIND)"
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # one line per request would cost more than it tells: what the guard did is logged
    for quiet in ("httpx", "tornado.access"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    read_a_chunk_at_once()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                options.upstream,
                options.port,
                redirects=not options.no_redirects,
                read_only=options.read_only,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
