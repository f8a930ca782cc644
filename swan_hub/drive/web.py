"""The drive's web pages: the signed-in user's drive (browse, upload, download, shares, "Open in
SWAN") and the page of a public link, server-rendered with the drive's own small script.

This module owns HTML only. It reads through `Spaces` and leaves every change to the WebDAV and
OCS endpoints, which the script calls with the page's request token.
"""

from __future__ import annotations

import html
import os
import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qs, quote

from .dav import user_content_headers
from .ocs import link_expired
from .spaces import DriveError, Place
from .state import STATE_PENDING
from .tree import is_hidden_entry

if TYPE_CHECKING:
    from .app import DriveWSGI
    from .identity import Caller

STATIC = os.path.join(os.path.dirname(__file__), "static")
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
OPENABLE = (".ipynb",)
#: the cookie of a password link opened in a browser (its path is the link's own)
LINK_COOKIE = "swan_link"
#: how long a browser keeps a password link open (seconds), and the largest password form read
LINK_COOKIE_SECONDS = 12 * 3600
MAX_FORM_BYTES = 4096
#: 1980-01-02, a day into the zip format's first year whatever the time zone
ZIP_EPOCH = 315619200

StartResponse = Callable[..., Any]


def _page(
    start_response: StartResponse, title: str, body: str, status: str = "200 OK", head: str = ""
) -> list[bytes]:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{head}"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "</head><body>" + body + "</body></html>"
    ).encode()
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(doc))),
            (
                "Content-Security-Policy",
                "default-src 'self'; style-src 'self'; frame-ancestors 'none'",
            ),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [doc]


def client_address(environ: dict) -> str:
    """The address of the client: the one the hub's proxy saw (the last X-Forwarded-For
    entry, which the proxy appends) when the request came through it, else the peer's."""
    peer = environ.get("REMOTE_ADDR", "")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and (peer.startswith("127.") or peer == "::1"):
        return forwarded.rsplit(",", 1)[-1].strip()
    return peer


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class Pages:
    def __init__(self, app: DriveWSGI):
        self.app = app
        self.spaces = app.spaces

    def _url(self, path: str) -> str:
        return self.app.base_path + path

    def static(self, name: str, start_response: StartResponse) -> Iterable[bytes]:
        ext = os.path.splitext(name)[1]
        if "/" in name or ext not in STATIC_TYPES:
            return self._missing(start_response)
        try:
            with open(os.path.join(STATIC, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return self._missing(start_response)
        start_response(
            "200 OK", [("Content-Type", STATIC_TYPES[ext]), ("Content-Length", str(len(data)))]
        )
        return [data]

    def _missing(self, start_response: StartResponse) -> list[bytes]:
        return _page(start_response, "Not found", "<p>Not found.</p>", "404 Not Found")

    def _head(self) -> str:
        return (
            f"<link rel='stylesheet' href='{self._url('/static/drive.css')}'>"
            f"<script defer src='{self._url('/static/drive.js')}'></script>"
        )

    def _rows(self, place: Place, href: Callable[[str, bool], str], *, open_in: bool) -> str:
        try:
            with os.scandir(place.fs_path) as it:
                entries = sorted(
                    (e for e in it if not is_hidden_entry(e.name) and not e.is_symlink()),
                    key=lambda e: (not e.is_dir(), e.name.lower()),
                )
        except OSError:
            entries = []
        rows = []
        for e in entries:
            try:
                st = e.stat()
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            rel = f"{place.rel}/{e.name}" if place.rel else e.name
            name = html.escape(e.name + ("/" if is_dir else ""))
            cells = [
                f"<td><a href='{html.escape(href(rel, is_dir))}'>{name}</a></td>",
                f"<td>{'' if is_dir else _size(st.st_size)}</td>",
                f"<td>{time.strftime('%Y-%m-%d %H:%M', time.localtime(st.st_mtime))}</td>",
            ]
            action = ""
            if open_in and (is_dir or e.name.endswith(OPENABLE)):
                target = self.app.service.open_in_url.replace("{path}", quote(rel))
                action = f"<a class='open' href='{html.escape(target)}'>Open in SWAN</a>"
            cells.append(f"<td>{action}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        if not rows:
            rows.append("<tr><td colspan='4'>This folder is empty.</td></tr>")
        return "".join(rows)

    def drive(
        self, caller: Caller, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        folder = query.get("dir", "").strip("/")
        try:
            place = self.spaces.resolve(caller.name, folder)
        except DriveError as e:
            return _page(
                start_response, "Not found", f"<p>{html.escape(e.message)}</p>", "404 Not Found"
            )
        dav = self._url(f"/remote.php/dav/files/{quote(caller.name)}/")
        if place is None:
            mounts = self.spaces.mounts(caller.name)
            rows = (
                "".join(
                    f"<tr><td><a href='?dir={quote(self.spaces.share_folder + '/' + name)}'>"
                    f"{html.escape(name)}/</a></td>"
                    f"<td colspan='3'>from {html.escape(s.owner)}</td></tr>"
                    for name, s in sorted(mounts.items())
                )
                or "<tr><td colspan='4'>Nothing shared with you yet.</td></tr>"
            )
        elif not os.path.isdir(place.fs_path):
            return _page(start_response, "Not found", "<p>No such folder.</p>", "404 Not Found")
        else:

            def href(rel: str, is_dir: bool) -> str:
                shown = f"{folder}/{rel.rsplit('/', 1)[-1]}" if folder else rel
                return f"?dir={quote(shown)}" if is_dir else dav + quote(shown)

            rows = self._rows(place, href, open_in=place.share is None)
            if not folder and self.spaces.mounts(caller.name):
                rows = (
                    f"<tr><td><a href='?dir={quote(self.spaces.share_folder)}'>"
                    f"{html.escape(self.spaces.share_folder)}/</a></td><td colspan='3'>"
                    "shared with you</td></tr>" + rows
                )
        crumbs = [f"<a href='{self._url('/')}'>{html.escape(caller.name)}</a>"]
        walked = ""
        for part in [p for p in folder.split("/") if p]:
            walked = f"{walked}/{part}" if walked else part
            crumbs.append(f"<a href='?dir={quote(walked)}'>{html.escape(part)}</a>")
        pending = [s for s in self.spaces.received(caller.name) if s.state == STATE_PENDING]
        pending_html = "".join(
            f"<li>{html.escape(s.owner)} shares <b>{html.escape(s.name)}</b> "
            f"<button data-accept='{s.id}'>Accept</button> "
            f"<button data-decline='{s.id}'>Decline</button></li>"
            for s in pending
        )
        body = (
            f"<header><h1>SWAN drive</h1><nav>{' / '.join(crumbs)}</nav></header>"
            f"<main id='drive' data-dav='{html.escape(dav)}' data-dir='{html.escape(folder)}' "
            f"data-ocs='{html.escape(self._url('/ocs/v2.php/apps/files_sharing/api/v1'))}' "
            f"data-requesttoken='{html.escape(caller.csrf)}'>"
            + (
                "<section class='pending'><h2>Shared with you, waiting</h2>"
                f"<ul>{pending_html}</ul></section>"
                if pending
                else ""
            )
            + "<form id='upload'><input type='file' name='file' multiple> <button>Upload</button> "
            "<span id='status' role='status'></span></form>"
            "<table><thead><tr><th>Name</th><th>Size</th><th>Modified</th><th></th></tr></thead>"
            f"<tbody>{rows}</tbody></table></main>"
        )
        return _page(start_response, f"{caller.name} · SWAN drive", body, head=self._head())

    def public(self, rest: str, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        token, _, sub = rest.partition("/")
        if environ["REQUEST_METHOD"].upper() == "POST" and sub == "":
            return self._unlock(token, environ, start_response)
        share = self.app.unlocked_link(token, environ)
        known = self.app.spaces.state.share_by_token(token) if share is None else None
        protected = known is not None and bool(known.password_hash) and not link_expired(known)
        if protected and sub in ("", "download"):
            return self._password_page(token, start_response, wrong=False)
        try:
            place = self.spaces.place_of_share(share) if share is not None else None
        except DriveError:
            place = None
        if place is None:
            return _page(
                start_response,
                "Not found",
                "<p>This link does not exist or has expired.</p>",
                "404 Not Found",
            )
        place.mount = False
        if sub == "download":
            if share.item_type == "file":
                return self._download(place, start_response)
            return self._download_folder(place, start_response)
        if share.item_type == "file":
            body = (
                f"<h1>{html.escape(share.name)}</h1><p>Shared by {html.escape(share.owner)}.</p>"
                f"<p><a href='{html.escape(self._url(f'/s/{token}/download'))}'>"
                "Download</a></p>"
            )
        else:
            dav = self._url("/public.php/webdav/")
            body = (
                f"<h1>{html.escape(share.name)}</h1><p>Shared by {html.escape(share.owner)}. "
                f"WebDAV: <code>{html.escape(self.app.origin(environ) + dav)}</code> "
                f"(user <code>{html.escape(token)}</code>).</p>"
                f"<p><a href='{html.escape(self._url(f'/s/{token}/download'))}'>"
                "Download all as a zip</a></p><table><tbody>"
                + self._rows(place, lambda rel, is_dir: "#", open_in=False)
                + "</tbody></table>"
            )
        return _page(start_response, share.name, body, head=self._head())

    def _download(self, place: Place, start_response: StartResponse) -> Iterable[bytes]:
        try:
            f = self.spaces.open_file(place.fs_path)
            size = os.fstat(f.fileno()).st_size
        except (DriveError, OSError):
            return self._missing(start_response)
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(size)),
                *user_content_headers("application/octet-stream", place.name),
            ],
        )
        return iter(lambda: f.read(1 << 16), b"")

    def _password_page(
        self, token: str, start_response: StartResponse, *, wrong: bool
    ) -> list[bytes]:
        """The form that opens a password link in this browser (a cookie for this link only),
        and how programs send the password instead: Basic auth, user the link's token."""
        body = (
            "<h1>Protected link</h1><p>This link needs a password.</p>"
            + ("<p class='error' role='alert'>That password is not right.</p>" if wrong else "")
            + f"<form method='post' action='{html.escape(self._url(f'/s/{token}'))}'>"
            "<label>Password <input type='password' name='password' autofocus required></label> "
            "<button>Open</button></form>"
            f"<p>Programs send the password as Basic auth, user <code>{html.escape(token)}</code>: "
            f"to <code>{html.escape(self._url(f'/s/{token}/download'))}</code>, or over WebDAV "
            f"at <code>{html.escape(self._url('/public.php/webdav/'))}</code>.</p>"
        )
        return _page(start_response, "Protected link", body, "401 Unauthorized")

    def _unlock(self, token: str, environ: dict, start_response: StartResponse) -> list[bytes]:
        """POST /s/<token> with the link's password (a form): the link's cookie, then its page."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if not 0 < length <= MAX_FORM_BYTES:
            return _page(
                start_response, "Bad request", "<p>Send the password form.</p>", "400 Bad Request"
            )
        form = parse_qs(environ["wsgi.input"].read(length).decode("utf-8", "replace"))
        password = (form.get("password") or [""])[0]
        share = self.app.open_link(token, password, client_address(environ))
        if share is None or not share.password_hash:
            return self._password_page(token, start_response, wrong=True)
        link = self._url(f"/s/{token}")
        cookie = (
            f"{LINK_COOKIE}={self.app.link_cookie(share)}; Path={link}; HttpOnly; "
            f"SameSite=Lax; Max-Age={LINK_COOKIE_SECONDS}"
        )
        start_response("303 See Other", [("Location", link), ("Set-Cookie", cookie)])
        return [b""]

    def _download_folder(self, place: Place, start_response: StartResponse) -> Iterable[bytes]:
        if not os.path.isdir(place.fs_path):
            return self._missing(start_response)
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/zip"),
                *user_content_headers("application/zip", f"{place.name}.zip"),
            ],
        )
        return folder_zip(place.fs_path, place.name, self.spaces.open_file)


class _ZipSink:
    """Where `zipfile` writes a streamed archive: bytes collected until the response takes them.
    It cannot seek, so `zipfile` writes each entry's sizes after its data."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _folder_entries(root: str) -> Iterator[tuple[str, str, bool]]:
    """(path on disk, path in the archive, is a folder) of everything below ``root``, in name
    order, without symbolic links and the temporary files of uploads in progress."""
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if is_hidden_entry(name) or os.path.islink(path):
            continue
        if os.path.isdir(path):
            yield path, name, True
            for inner, arcname, is_dir in _folder_entries(path):
                yield inner, f"{name}/{arcname}", is_dir
        elif os.path.isfile(path):
            yield path, name, False


def folder_zip(
    root: str, top: str, open_file: Callable[[str], BinaryIO], chunk_size: int = 1 << 16
) -> Iterator[bytes]:
    """The folder at ``root`` as a zip archive under the folder name ``top``, as Nextcloud serves
    a public folder link's download: streamed while it is written, so memory stays bounded
    whatever the folder's size. Entries are stored, not compressed: notebooks are small and the
    drive's CPU is shared with the notebook servers. A file that goes away meanwhile is left out,
    and so is one that became a symbolic link (``open_file`` follows none).
    """
    sink = _ZipSink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.mkdir(top)
        for path, arcname, is_dir in _folder_entries(root):
            if is_dir:
                archive.mkdir(f"{top}/{arcname}")
                continue
            try:
                source = open_file(path)
            except (DriveError, OSError):
                continue
            with source:
                st = os.fstat(source.fileno())
                # zip times start in 1980
                when = time.localtime(max(st.st_mtime, ZIP_EPOCH))[:6]
                info = zipfile.ZipInfo(f"{top}/{arcname}", when)
                info.external_attr = (st.st_mode & 0xFFFF) << 16
                size = st.st_size
                with archive.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as entry:
                    while chunk := source.read(chunk_size):
                        entry.write(chunk)
                        yield sink.take()
            yield sink.take()
    yield sink.take()
