"""The drive's web pages: the signed-in user's drive (browse, upload, download, shares, "Open in
SWAN", the trash, a file's versions), the page of a public link and its password form, the
preview page of a file (what it shows by type: `previews`; notebooks rendered by `render`),
rendered from the Jinja2 templates in ``templates/`` with autoescape, and the drive's own small
script.

This module owns HTML only. It reads through `Spaces` and leaves every change (upload, new folder,
rename, move, delete, shares) to the WebDAV and OCS endpoints, which the script calls with the
page's request token; the one form that changes something itself, the invite accept page's,
posts the same request token and leaves the accepting to `ocm`.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jinja2
from markupsafe import Markup

from . import previews
from .auth import DriveAuth
from .dav import user_content_headers
from .identity import Caller
from .mesh import PeerError
from .ocm import OCM, check_invite_token, permission_bits, webapp_url
from .ocs import OCSError, link_expired
from .render import RENDERED, Renderer
from .responses import StartResponse, answer, client_address, cookies_of, redirect, set_cookie
from .spaces import (
    PERM_CREATE,
    PERM_READ,
    PERM_UPDATE,
    DriveError,
    Place,
    Spaces,
    file_etag,
    split_segments,
)
from .state import (
    SHARE_FEDERATED,
    SHARE_GROUP,
    SHARE_LINK,
    SHARE_USER,
    STATE_ACCEPTED,
    STATE_PENDING,
    ReceivedShare,
    ShareRecord,
)
from .tree import is_hidden_entry

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
OPENABLE = (".ipynb",)
#: the largest password form read
MAX_FORM_BYTES = 4096
#: the cookie repeating the password form's token (see `WebUI._password_page`), and how long a
#: form shown stays good to send
FORM_COOKIE = "swan_link_form"
FORM_COOKIE_SECONDS = 3600
#: 1980-01-02, a day into the zip format's first year whatever the time zone
ZIP_EPOCH = 315619200
PAGE_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; style-src 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
]
#: The view-only page of a share sent to another site (OCM ``webapp``) is reached by anyone
#: holding its URL: it is kept out of search engines and caches, and its URL (the share's id)
#: is never sent on as a Referer.
APP_HEADERS = (
    ("Referrer-Policy", "no-referrer"),
    ("X-Robots-Tag", "noindex, nofollow"),
    ("Cache-Control", "private, no-store"),
)
#: A rendered notebook is a user's content, sanitised: it still gets the rules of every file the
#: drive serves (no script, a unique origin), may only be framed by the drive's preview page,
#: and fetches nothing (its images are data: URLs inside it).
RENDERED_HEADERS = [
    (
        "Content-Security-Policy",
        "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "frame-ancestors 'self'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "private, no-cache"),
]
# Every value a page shows is escaped by the template engine: names of files and folders, user
# names and share names are chosen by users, and public link pages are seen by anyone.
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
)


def _page(
    start_response: StartResponse,
    template: str,
    status: int = 200,
    headers: tuple[tuple[str, str], ...] = (),
    **context: Any,
) -> list[bytes]:
    context.setdefault("assets", False)
    context.setdefault("base", "")
    body = TEMPLATES.get_template(template).render(**context).encode()
    return answer(
        start_response, status, body, "text/html; charset=utf-8", (*PAGE_HEADERS, *headers)
    )


def _message(
    start_response: StartResponse,
    status: int,
    message: str,
    headers: tuple[tuple[str, str], ...] = (),
) -> list[bytes]:
    title = "Bad request" if status == 400 else "Not found"
    return _page(start_response, "page.html", status, headers, title=title, message=message)


def _query(environ: dict) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _modified(mtime: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@dataclass
class Row:
    """One row of a folder's table: a name that links somewhere, and either a file's size,
    time and "Open in SWAN" target or a ``note`` across the other columns."""

    name: str
    href: str
    size: str = ""
    modified: str = ""
    open: str = ""
    note: str | None = None
    download: str = ""
    #: the entry's path in the user's view, for the page's actions (empty: no actions)
    path: str = ""
    #: what the name's markers say (`MARKS`): shared with others, a public link, read-only
    marks: tuple[str, ...] = ()


#: The markers a row of the Files view may carry after its name, each an inline SVG with a text
#: alternative (the template's ``mark``)
MARKS = ("shared", "link", "read-only")


def _writable(perms: int) -> bool:
    return bool(perms & (PERM_UPDATE | PERM_CREATE))


@dataclass
class PreviewLinks:
    """The URLs around a file's preview page: back to its folder, its bytes (``raw`` for an
    ``<img>``, ``download`` as an attachment), its rendering, and "Open in SWAN" (if any)."""

    back: str
    back_label: str
    download: str
    raw: str
    render: str
    open: str = ""
    open_label: str = "Open in SWAN"


#: Rows on one page of a folder: a folder of 100,000 entries shows its first page at once and
#: links to the others, instead of reading and rendering every entry for one page.
ROWS_PER_PAGE = 500


@dataclass
class Pager:
    """Which page of its folder a table shows, and the links to the pages around it."""

    page: int
    pages: int
    total: int
    first: str = ""
    previous: str = ""
    next: str = ""
    last: str = ""
    per_page: int = ROWS_PER_PAGE

    @classmethod
    def of(
        cls, page: int, total: int, link: Callable[[int], str], per_page: int = ROWS_PER_PAGE
    ) -> Pager:
        pages = max(1, -(-total // per_page))
        page = min(page, pages)  # the folder may have shrunk since the link was made
        return cls(
            page=page,
            pages=pages,
            total=total,
            first=link(1) if page > 1 else "",
            previous=link(page - 1) if page > 1 else "",
            next=link(page + 1) if page < pages else "",
            last=link(pages) if page < pages else "",
            per_page=per_page,
        )

    @property
    def shown(self) -> slice:
        return slice((self.page - 1) * self.per_page, self.page * self.per_page)

    @property
    def label(self) -> str:
        start, end = self.shown.start + 1, min(self.total, self.shown.stop)
        return f"{start:,}-{end:,} of {self.total:,} (page {self.page} of {self.pages})"


def page_number(query: dict[str, str]) -> int | None:
    """The page a query asks for (1 without one), None where it is not a whole number from 1."""
    text = query.get("page", "1").strip()
    if not text.isdigit() or int(text) < 1:
        return None
    return int(text)


BAD_PAGE = "The page number must be a whole number from 1 up."

SORT_KEYS = ("name", "size", "modified")
BAD_SORT = "Sort by name, size or modified (sort=), in asc or desc order (order=)."


@dataclass(frozen=True)
class Sort:
    """The order of a folder's rows: folders first whatever the column, then by ``key``."""

    key: str = "name"
    order: str = "asc"

    @classmethod
    def of(cls, query: dict[str, str]) -> Sort | None:
        """The order a query asks for (by name, ascending, without one); None where it names a
        column or an order there is not."""
        sort = cls(query.get("sort", "name"), query.get("order", "asc"))
        if sort.key not in SORT_KEYS or sort.order not in ("asc", "desc"):
            return None
        return sort

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    def query(self) -> dict[str, str]:
        """What a link keeps of this order: nothing for the default one."""
        return {} if self == Sort() else {"sort": self.key, "order": self.order}

    def arrange(self, entries: list[os.DirEntry]) -> list[os.DirEntry]:
        """``entries`` in this order. Ties keep name order; a folder has no size of its own,
        so sorted by size the folders stay in name order."""
        by_name = sorted(entries, key=lambda e: (e.name.lower(), e.name))
        folders = [e for e in by_name if e.is_dir()]
        files = [e for e in by_name if not e.is_dir()]
        if self.key != "name":
            files.sort(key=self._value, reverse=self.descending)
            if self.key == "modified":
                folders.sort(key=self._value, reverse=self.descending)
        elif self.descending:
            folders.reverse()
            files.reverse()
        return folders + files

    def _value(self, entry: os.DirEntry) -> int:
        try:
            st = entry.stat()  # scandir caches it for the row
        except OSError:
            return 0
        return st.st_size if self.key == "size" else st.st_mtime_ns


@dataclass
class Column:
    """A sortable column's header: its link and, for the current one, its ``aria-sort``."""

    label: str
    href: str
    aria_sort: str = ""


def sort_columns(sort: Sort, here: dict[str, str]) -> list[Column]:
    """The headers of the Name, Size and Modified columns: a click on the current column turns
    its order round, on another sorts by it ascending (back to the first page either way)."""
    columns = []
    for key in SORT_KEYS:
        current = key == sort.key
        order = ("asc" if sort.descending else "desc") if current else "asc"
        aria = ("descending" if sort.descending else "ascending") if current else ""
        href = "?" + urlencode({**here, **Sort(key, order).query()})
        columns.append(Column(key.capitalize(), href, aria))
    return columns


@dataclass
class TrashRow:
    """One item of the trash page: what it was called (``shown`` with a slash for a folder) and
    where, when it was deleted, its size, and ``item``, the name it has in the trashbin's WebDAV
    (for Restore and Delete forever)."""

    name: str
    shown: str
    folder: str
    location: str
    deleted: str
    size: str
    item: str


@dataclass
class VersionRow:
    """One earlier version of a file on its versions page: when its content was written, its
    size, the link that downloads it and ``name``, the name the versions' WebDAV lists it under
    (for Restore)."""

    modified: str
    size: str
    download: str
    name: str


def _modified_exactly(mtime: float) -> str:
    """A version's time to the second: saves a minute apart are told apart."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime))


#: Rows on one page of a sharing view
SHARES_PER_PAGE = 50

#: The sharing views: their path below the drive page, their heading and what they list
SHARE_VIEWS = {
    "shared-with-me": "Shared with me",
    "shared-by-me": "Shared by me",
    "links": "Links",
}


#: The view of the user's contacts at other sites and their invites, at ``/people``
PEOPLE_VIEW = "People of other sites"


@dataclass
class Contact:
    """A person of another site the user may share with: their OCM address, name, and when
    they became a contact."""

    address: str
    name: str
    added: str


@dataclass
class OpenInvite:
    """One of the user's invites not accepted yet: its token and until when it is valid."""

    token: str
    expires: str


def permission_label(permissions: int) -> str:
    """What a share lets its recipients do, in words."""
    if not permissions & PERM_READ:
        return "upload only"
    return "can edit" if permissions & (PERM_UPDATE | PERM_CREATE) else "view only"


@dataclass
class ShareRow:
    """One share of a sharing view: its id (for the OCS actions), the item's name and where it
    opens, and the view's other columns."""

    id: int
    name: str
    href: str
    who: str
    permission: str
    expiry: str = ""
    state: str = ""
    url: str = ""
    password: str = ""
    #: a received share's OCS path to accept it and to decline or leave it (a share of this
    #: site and one of another site have their own endpoints)
    accept: str = ""
    decline: str = ""
    #: what the owner's editors start from: the share's permission bits, its expiry day
    #: (YYYY-MM-DD, empty for none) and whether the item is a folder
    permissions: int = 0
    expires_on: str = ""
    folder: bool = False
    #: a share of another site: its view-only page there, and that site's name
    view: str = ""
    view_site: str = ""


def _expiry(share: ShareRecord) -> str:
    if not share.expiration:
        return "never"
    day = share.expiration[:10]
    return f"{day} (expired)" if link_expired(share) else day


class Pages:
    """The pages of the drive behind ``base_path``; ``origin`` tells a request's scheme and host."""

    def __init__(
        self,
        spaces: Spaces,
        auth: DriveAuth,
        base_path: str,
        open_in_url: str,
        origin: Callable[[dict], str],
        *,
        link_url: Callable[[dict, str], str] | None = None,
        open_link_url: str = "",
        renderer: Renderer | None = None,
        lab_url: str = "/hub/user-redirect/lab",
        hub_logout_url: str = "/hub/logout",
        provider: str = "",
        swan_sites: dict[str, str] | None = None,
        ocm: OCM | None = None,
    ):
        self.spaces = spaces
        self.auth = auth
        self.base_path = base_path
        self.open_in_url = open_in_url
        self.origin = origin
        self.link_url = link_url or (lambda env, token: f"{origin(env)}{base_path}/s/{token}")
        self.open_link_url = open_link_url
        self.renderer = renderer or Renderer()
        self.lab_url = lab_url
        self.hub_logout_url = hub_logout_url
        #: this site's OCM provider (``host[:port]``), "" when it trusts no other site
        self.provider = provider
        #: the "Open in SWAN" page of each trusted provider that is a SWAN site
        self.swan_sites = swan_sites or {}
        #: the drive's OCM side, for the pages of the invite flow (None: they answer 404)
        self.ocm = ocm

    def _url(self, path: str) -> str:
        return self.base_path + path

    def _full_page(
        self,
        start_response: StartResponse,
        template: str,
        status: int = 200,
        headers: tuple[tuple[str, str], ...] = (),
        **context: Any,
    ) -> list[bytes]:
        """A page with the drive's style sheet and script. The first one starts the renderer
        (it loads nbconvert for 1-2 s), so that the preview a visitor opens next need not wait,
        while a drive that only syncs never loads it."""
        self.renderer.start()
        return _page(
            start_response,
            template,
            status,
            headers,
            assets=True,
            base=self.base_path,
            **context,
        )

    def _signed_in_page(
        self,
        caller: Caller,
        start_response: StartResponse,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> list[bytes]:
        """A page of the signed-in user's drive: their request token for the script's writes,
        and the header's links to JupyterLab and to log out."""
        return self._full_page(
            start_response,
            template,
            status,
            csrf=caller.csrf,
            lab=self.lab_url,
            hub_logout=self.hub_logout_url,
            **context,
        )

    def static(self, name: str, start_response: StartResponse) -> Iterable[bytes]:
        ext = os.path.splitext(name)[1]
        if "/" in name or ext not in STATIC_TYPES:
            return self._missing(start_response)
        try:
            with open(os.path.join(STATIC, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return self._missing(start_response)
        return answer(start_response, 200, data, STATIC_TYPES[ext])

    def _missing(self, start_response: StartResponse) -> list[bytes]:
        return _message(start_response, 404, "Not found.")

    def _rows(
        self,
        place: Place,
        href: Callable[[str, bool], str],
        *,
        open_in: bool,
        page: int,
        link: Callable[[int], str],
        download: Callable[[str], str] = lambda rel: "",
        folder_download: Callable[[str], str] = lambda rel: "",
        sort: Sort = Sort(),
        path: Callable[[str], str] = lambda rel: "",
    ) -> tuple[list[Row], Pager]:
        """The rows of one page of the folder (folders first, then in ``sort``'s order), and
        its pager: sorted by name, every entry is sorted by what the folder listing itself
        says and only the page's own are statted and rendered; by size or time every entry
        is statted once."""
        try:
            with os.scandir(place.fs_path) as it:
                entries = sort.arrange(
                    [e for e in it if not is_hidden_entry(e.name) and not e.is_symlink()]
                )
        except OSError:
            entries = []
        pager = Pager.of(page, len(entries), link)
        rows = []
        for e in entries[pager.shown]:
            try:
                st = e.stat()
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            rel = f"{place.rel}/{e.name}" if place.rel else e.name
            target = ""
            if open_in and (is_dir or e.name.endswith(OPENABLE)):
                target = self.open_in_url.replace("{path}", quote(rel))
            rows.append(
                Row(
                    name=e.name + ("/" if is_dir else ""),
                    href=href(rel, is_dir),
                    size="" if is_dir else _size(st.st_size),
                    modified=_modified(st.st_mtime),
                    open=target,
                    download=folder_download(rel) if is_dir else download(rel),
                    path=path(rel),
                )
            )
        return rows, pager

    def drive(
        self, caller: Caller, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        query = _query(environ)
        folder = query.get("dir", "").strip("/")
        page = page_number(query)
        if page is None:
            return _message(start_response, 400, BAD_PAGE)
        sort = Sort.of(query)
        if sort is None:
            return _message(start_response, 400, BAD_SORT)
        here = {"dir": folder} if folder else {}
        pager = None
        columns: list[Column] = []
        try:
            place = self.spaces.resolve(caller.name, folder)
        except DriveError as e:
            return _message(start_response, 404, e.message)
        dav = self._url(f"/remote.php/dav/files/{quote(caller.name)}/")
        lead = None
        share_folder = self.spaces.share_folder
        if place is None:
            rows = [
                Row(
                    f"{name}/",
                    f"?dir={quote(share_folder + '/' + name)}",
                    note=f"from {s.owner}",
                    marks=() if _writable(s.permissions) else ("read-only",),
                )
                for name, s in sorted(self.spaces.mounts(caller.name).items())
            ]
            empty = "Nothing shared with you yet."
        elif not os.path.isdir(place.fs_path):
            return _message(start_response, 404, "No such folder.")
        else:

            def shown(rel: str) -> str:
                return f"{folder}/{rel.rsplit('/', 1)[-1]}" if folder else rel

            def href(rel: str, is_dir: bool) -> str:
                if is_dir:
                    return f"?dir={quote(shown(rel))}"
                return self._url("/preview?" + urlencode({"path": shown(rel)}))

            def link(number: int) -> str:
                return "?" + urlencode({**here, **sort.query(), "page": number})

            rows, pager = self._rows(
                place,
                href,
                open_in=place.share is None,
                page=page,
                link=link,
                download=lambda rel: dav + quote(shown(rel)),
                folder_download=lambda rel: self._url("/zip?" + urlencode({"path": shown(rel)})),
                sort=sort,
                path=shown,
            )
            self._mark(caller, place, rows)
            columns = sort_columns(sort, here)
            empty = "This folder is empty."
            if not folder:
                lead = Row(
                    f"{share_folder}/", f"?dir={quote(share_folder)}", note="shared with you"
                )
        crumbs = [Row(caller.name, self._url("/"))]
        walked = ""
        for part in [p for p in folder.split("/") if p]:
            walked = f"{walked}/{part}" if walked else part
            crumbs.append(Row(part, f"?dir={quote(walked)}"))
        pending = [s for s in self.spaces.received(caller.name) if s.state == STATE_PENDING]
        return self._signed_in_page(
            caller,
            start_response,
            "drive.html",
            title=f"{caller.name} · SWAN drive",
            crumbs=crumbs,
            dav=dav,
            folder=folder,
            ocs=self._url("/ocs/v2.php/apps/files_sharing/api/v1"),
            versions=self._url("/versions"),
            uploads=self._url(f"/remote.php/dav/uploads/{quote(caller.name)}/"),
            pending=pending,
            entries=rows,
            empty=empty,
            lead=lead,
            pager=pager,
            columns=columns,
            can_share=place is not None and place.share is None,
        )

    def _mark(self, caller: Caller, place: Place, rows: list[Row]) -> None:
        """Marks the rows of ``place`` that the user shares with others or by a public link
        (their own space), or every row as read-only (a share they may not change)."""
        if place.share is not None:
            if not _writable(place.perms):
                for row in rows:
                    row.marks = ("read-only",)
            return
        kinds: dict[str, set[str]] = {}
        for share in self.spaces.state.shares_of_owner(caller.name, place.rel, subfiles=True):
            if share.path.rpartition("/")[0] == place.rel:
                kind = "link" if share.share_type == SHARE_LINK else "shared"
                kinds.setdefault(share.path, set()).add(kind)
        for row in rows:
            found = kinds.get(row.path, set())
            row.marks = tuple(kind for kind in MARKS if kind in found)

    def folder_download(
        self, caller: Caller, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        """``/zip?path=``: a folder of the signed-in user's view (their space or a share) as a
        zip archive, as a public folder link's download: no symbolic link followed, neither
        on the way to the folder nor inside it."""
        rel = _query(environ).get("path", "").strip("/")
        try:
            place = self.spaces.resolve(caller.name, rel) if rel else None
        except DriveError as e:
            return _message(start_response, e.status, e.message)
        if place is None:
            return _message(start_response, 404, "No such folder.")
        return self._download_folder(place, start_response)

    # -- trash ------------------------------------------------------------------------------------

    def trash(
        self, caller: Caller, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        """``/trash``: what the signed-in user deleted, newest first, as the trashbin's WebDAV
        lists it (`Spaces.trash_by_name`); restoring and deleting forever are the script's."""
        page = page_number(_query(environ))
        if page is None:
            return _message(start_response, 400, BAD_PAGE)
        items = list(self.spaces.trash_by_name(caller.name).items())
        pager = Pager.of(page, len(items), lambda number: "?" + urlencode({"page": number}))
        rows = []
        for item_name, item in items[pager.shown]:
            folder = item.original_path.rpartition("/")[0]
            rows.append(
                TrashRow(
                    name=item.name,
                    shown=item.name + ("/" if item.kind == "folder" else ""),
                    folder=folder,
                    location=folder or "the top of your space",
                    deleted=_modified(item.deleted_at),
                    size=_size(item.size),
                    item=item_name,
                )
            )
        user = quote(caller.name)
        return self._signed_in_page(
            caller,
            start_response,
            "trash.html",
            title=f"Trash · {caller.name} · SWAN drive",
            user=caller.name,
            entries=rows,
            pager=pager,
            trash=self._url(f"/remote.php/dav/trashbin/{user}/trash/"),
            restore=self._url(f"/remote.php/dav/trashbin/{user}/restore/"),
        )

    # -- sharing ----------------------------------------------------------------------------------

    def shares(
        self, caller: Caller, view: str, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        """``/shared-with-me``, ``/shared-by-me`` and ``/links``: the signed-in user's received
        shares (pending ones to accept or decline), outgoing shares with users, groups and other
        sites, and public links, read from the drive's state as the OCS API lists them, newest
        first, `SHARES_PER_PAGE` to a page; every change is the script's, through the OCS API."""
        page = page_number(_query(environ))
        if page is None:
            return _message(start_response, 400, BAD_PAGE)
        found: list[tuple[int, int, Callable[[], ShareRow]]] = []
        if view == "shared-with-me":
            for s in self.spaces.received(caller.name):
                found.append((s.stime, s.id, lambda s=s: self._received_row(s)))
            for r in self.spaces.state.received_shares_of(caller.name):
                found.append((r.created, r.id, lambda r=r: self._remote_row(r)))
        else:
            wanted = (
                (SHARE_LINK,) if view == "links" else (SHARE_USER, SHARE_GROUP, SHARE_FEDERATED)
            )
            for s in self.spaces.state.shares_of_owner(caller.name):
                if s.share_type in wanted:
                    found.append((s.stime, s.id, lambda s=s: self._given_row(s, environ)))
        found.sort(key=lambda item: item[:2], reverse=True)
        pager = Pager.of(
            page, len(found), lambda number: "?" + urlencode({"page": number}), SHARES_PER_PAGE
        )
        return self._signed_in_page(
            caller,
            start_response,
            "shares.html",
            title=f"{SHARE_VIEWS[view]} · {caller.name} · SWAN drive",
            view=view,
            heading=SHARE_VIEWS[view],
            entries=[row() for _, _, row in found[pager.shown]],
            pager=pager,
            ocs=self._url("/ocs/v2.php/apps/files_sharing/api/v1"),
        )

    def _received_row(self, s: ShareRecord) -> ShareRow:
        """A share of this site in Shared with me."""
        who = s.owner if s.share_type == SHARE_USER else f"{s.owner} (to {s.share_with})"
        state = {STATE_PENDING: "pending", STATE_ACCEPTED: "accepted"}.get(s.state or 0, "declined")
        href = self._opens(f"{self.spaces.share_folder}/{s.mount_name or s.name}", s)
        shown = s.name + ("/" if s.item_type == "folder" else "")
        answer = f"/shares/pending/{s.id}"
        perm = permission_label(s.permissions)
        return ShareRow(s.id, shown, href, who, perm, state=state, accept=answer, decline=answer)

    def _remote_row(self, r: ReceivedShare) -> ShareRow:
        """A share of another site in Shared with me: it opens in JupyterLab, where the user's
        server reaches the other site; this page links to the other site's view-only page of
        it, where that site offers one."""
        pending = r.state == STATE_PENDING
        state = "pending" if pending else "accepted"
        shown = r.name + ("/" if r.resource_type == "folder" else "")
        perm = permission_label(permission_bits(r.permissions, r.resource_type))
        answer = f"/remote_shares/pending/{r.id}"
        leave = answer if pending else f"/remote_shares/{r.id}"
        view = webapp_url(r) or ""
        return ShareRow(
            r.id,
            shown,
            "",
            r.owner,
            perm,
            state=state,
            accept=answer,
            decline=leave,
            view=view,
            view_site=urlsplit(view).netloc,
        )

    def _given_row(self, s: ShareRecord, environ: dict) -> ShareRow:
        """A share of the user's in Shared by me, or one of their links in Links."""
        who = s.share_with or ""
        if s.share_type == SHARE_GROUP:
            who = f"group {who}"
        folder = s.item_type == "folder"
        return ShareRow(
            s.id,
            s.path + ("/" if folder else ""),
            self._opens(s.path, s),
            who,
            permission_label(s.permissions),
            expiry=_expiry(s),
            url=self.link_url(environ, s.token or "") if s.token else "",
            password="yes" if s.password_hash else "no",
            permissions=s.permissions,
            expires_on=(s.expiration or "")[:10],
            folder=folder,
        )

    def _opens(self, path: str, share: ShareRecord) -> str:
        """Where the shared item at ``path`` (of the user's view) opens: a folder's page or a
        file's preview."""
        if share.item_type == "file":
            return self._url("/preview?" + urlencode({"path": path}))
        return self._url("/?" + urlencode({"dir": path}))

    # -- people of other sites ---------------------------------------------------------------------

    def people(self, caller: Caller, start_response: StartResponse) -> list[bytes]:
        """``/people``: the user's contacts at other sites and open invites, read from the
        drive's state; making, withdrawing and accepting invites and removing a contact are
        the script's, through the OCS API."""
        state = self.spaces.state
        contacts = [
            Contact(row["address"], row["name"], _modified(row["added"]))
            for row in state.contacts_of(caller.name)
        ]
        invites = [
            OpenInvite(row["token"], _modified(row["expires"]))
            for row in state.open_invites_of(caller.name, time.time())
        ]
        return self._signed_in_page(
            caller,
            start_response,
            "people.html",
            title=f"{PEOPLE_VIEW} · {caller.name} · SWAN drive",
            view="people",
            heading=PEOPLE_VIEW,
            user=caller.name,
            provider=self.provider,
            contacts=contacts,
            invites=invites,
            ocs=self._url("/ocs/v2.php/apps/files_sharing/api/v1"),
        )

    # -- the invite flow's pages (OCM 1.2: WAYF and inviteAcceptDialog) ---------------------------

    def wayf(self, environ: dict, start_response: StartResponse) -> list[bytes]:
        """``/ocm/wayf?token=…``, public (whoever was sent the link has no account here): the
        sites of the mesh, to pick one's own. ``&site=<host:port>`` sends the browser (303) to
        that site's page for accepting invites, found in its discovery through the mesh's
        checked client; only a site of the mesh can be a target. A site that names no such
        page, or cannot be reached, gets the token and this site's address to type there."""
        query = _query(environ)
        token = query.get("token", "").strip()
        ocm = self.ocm

        def shown(status: int, said: str = "", **context: Any) -> list[bytes]:
            context.setdefault("sites", [])
            context.setdefault("inviter", "")
            return self._full_page(
                start_response,
                "wayf.html",
                status,
                title="Where are you from? · SWAN",
                said=said,
                token=token,
                provider=self.provider,
                **context,
            )

        if ocm is None or not self.provider:
            return shown(404, "This site invites nobody of other sites: it trusts no other site.")
        if not token:
            return shown(400, "This link holds no invite: open the whole link you were sent.")
        try:
            check_invite_token(token)
        except OCSError as e:
            return shown(400, e.message)
        invite = self.spaces.state.invite(token)
        if invite is None or invite["accepted"] is not None or invite["expires"] < time.time():
            said = (
                "This invite is not open any more: it was used, withdrawn or has expired, or "
                "the link was cut short. Ask the person who invited you for a new one."
            )
            return shown(404, said)
        sites = sorted(p for p in ocm.mesh.peers if p != self.provider)
        context = {"sites": sites, "inviter": invite["user"]}
        site = query.get("site", "").strip().lower()
        if not site:
            return shown(200, **context)
        if site not in sites:
            said = f"“{site}” is not a site of this mesh: pick yours from the list."
            return shown(400, said, **context)
        by_hand = (
            f" Log in at {site}, open its page for invites (the drive's People of other "
            "sites), and type this invite's token and site there."
        )
        try:
            target = ocm.invite_accept_dialog(site, token)
        except PeerError as e:
            said = f"{site} cannot be reached right now: {e.message}{by_hand}"
            return shown(503, said, fallback=site, **context)
        if not target:
            said = f"{site} has no page that takes an invite link.{by_hand}"
            return shown(200, said, fallback=site, **context)
        return redirect(start_response, 303, target)

    def accept_invite(
        self, caller: Caller, environ: dict, start_response: StartResponse
    ) -> list[bytes]:
        """``/ocm/accept-invite?token=…&providerDomain=…`` (OCM 1.2's ``inviteAcceptDialog``),
        for the signed-in user: whose site the invite is from and an Accept button, a form
        posted with the page's request token; a GET never accepts. The POST tells the other
        site (`OCM.accept_invite`) and says who the new contact is."""
        method = environ["REQUEST_METHOD"].upper()
        fields = _query(environ)
        if method == "POST":
            fields = self._form(environ) or {}
        token, provider = fields.get("token", ""), fields.get("providerDomain", "")

        def shown(status: int, said: str = "", **context: Any) -> list[bytes]:
            context.setdefault("contact", "")
            context.setdefault("offer", False)
            return self._signed_in_page(
                caller,
                start_response,
                "accept-invite.html",
                status=status,
                title=f"Accept an invite · {caller.name} · SWAN drive",
                view="",
                said=said,
                token=token.strip(),
                provider=provider,
                **context,
            )

        if self.ocm is None:
            return shown(404, "This site trusts no other site, so it takes no invites.")
        if method == "POST" and not secrets.compare_digest(
            fields.get("requesttoken", ""), caller.csrf
        ):
            said = "This form came from another page or is too old: open the invite link again."
            return shown(403, said)
        try:
            token, provider = self.ocm.checked_invite(token, provider)
        except OCSError as e:
            return shown(e.code, e.message)
        if method != "POST":
            return shown(200, offer=True)
        try:
            contact = self.ocm.accept_invite(caller.name, token, provider)
        except OCSError as e:
            return shown(e.code, e.message)
        return shown(200, contact=contact["address"])

    def _form(self, environ: dict) -> dict[str, str] | None:
        """The fields of a small form posted to a page; None if it is not one."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= MAX_FORM_BYTES:
            return None
        body = environ["wsgi.input"].read(length).decode("utf-8", "replace")
        return {k: v[-1] for k, v in parse_qs(body).items()}

    # -- versions ---------------------------------------------------------------------------------

    def _versioned_file(self, caller: Caller, rel: str) -> tuple[Place, int]:
        """The place of the file ``rel`` of the signed-in user's own space and its id;
        DriveError with a sentence for anything else (a folder, a share, nothing there)."""
        if not rel:
            raise DriveError(400, "Say which file: versions?path=<the file's path>.")
        place = self.spaces.resolve(caller.name, rel)
        if place is None or place.share is not None:
            raise DriveError(
                400,
                "The versions of a file shared with you are kept in its owner's drive; "
                "ask them for an earlier version.",
            )
        try:
            st = os.lstat(place.fs_path)
        except OSError:
            raise DriveError(404, f"There is no file “{rel}” in your space.") from None
        if stat.S_ISDIR(st.st_mode):
            raise DriveError(400, f"“{rel}” is a folder; only files have versions.")
        if not stat.S_ISREG(st.st_mode):
            raise DriveError(404, f"There is no file “{rel}” in your space.")
        return place, self.spaces.file_id(caller.name, place.rel, st)

    def versions(
        self, caller: Caller, sub: str, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        """``/versions?path=``: the earlier versions of a file of the signed-in user's space,
        newest first, as the versions' WebDAV keeps them (`Spaces.versions_by_name`);
        ``/versions/download?path=&version=`` one of them, under the file's name. Restoring
        one is the script's (a MOVE to the versions' ``restore/target``)."""
        query = _query(environ)
        rel = query.get("path", "").strip("/")
        try:
            place, file_id = self._versioned_file(caller, rel)
        except DriveError as e:
            return _message(start_response, e.status, e.message)
        found = self.spaces.versions_by_name(caller.name, file_id)
        if sub == "download":
            version = found.get(query.get("version", ""))
            if version is None:
                return _message(start_response, 404, "This file has no such version (any more).")
            blob = self.spaces.version_file(caller.name, version.id)
            return self._download(Place(caller.name, place.name, blob, PERM_READ), start_response)
        if sub:
            return self._missing(start_response)
        newest_first = sorted(found.items(), key=lambda kv: (kv[1].mtime, kv[1].id), reverse=True)
        rows = [
            VersionRow(
                modified=_modified_exactly(version.mtime),
                size=_size(version.size),
                download=self._url(
                    "/versions/download?" + urlencode({"path": place.rel, "version": name})
                ),
                name=name,
            )
            for name, version in newest_first
        ]
        st = os.lstat(place.fs_path)
        folder = place.rel.rpartition("/")[0]
        user = quote(caller.name)
        return self._signed_in_page(
            caller,
            start_response,
            "versions.html",
            title=f"Versions of {place.name} · SWAN drive",
            name=place.name,
            path=place.rel,
            folder=self._url("/?" + urlencode({"dir": folder}) if folder else "/"),
            folder_label=folder or caller.name,
            preview=self._url("/preview?" + urlencode({"path": place.rel})),
            size=_size(st.st_size),
            modified=_modified_exactly(st.st_mtime),
            entries=rows,
            versions=self._url(f"/remote.php/dav/versions/{user}/versions/{file_id}/"),
            restore=self._url(f"/remote.php/dav/versions/{user}/restore/target"),
        )

    # -- previews ---------------------------------------------------------------------------------

    def preview(
        self, caller: Caller, sub: str, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        """``/preview?path=`` (the page) and ``/preview/render?path=`` (a rendered notebook or
        markdown file) of a file in the signed-in user's view of the drive."""
        rel = _query(environ).get("path", "").strip("/")
        try:
            place = self.spaces.resolve(caller.name, rel) if rel else None
        except DriveError as e:
            return _message(start_response, e.status, e.message)
        if place is None or os.path.isdir(place.fs_path):
            return redirect(start_response, 302, self._url("/?" + urlencode({"dir": rel})))
        if sub == "render":
            return self._rendered(place, environ, start_response)
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        dav = self._url(f"/remote.php/dav/files/{quote(caller.name)}/{quote(rel)}")
        links = PreviewLinks(
            back=self._url("/?" + urlencode({"dir": folder}) if folder else "/"),
            back_label=folder or caller.name,
            download=dav,
            raw=dav,
            render=self._url("/preview/render?" + urlencode({"path": rel})),
            open=self.open_in_url.replace("{path}", quote(rel)) if place.share is None else "",
        )
        return self._preview_page(place, links, start_response)

    def _preview_page(
        self,
        place: Place,
        links: PreviewLinks,
        start_response: StartResponse,
        shared_by: str = "",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> list[bytes]:
        """The page of one file: its facts, "Open in SWAN" and "Download", and what its kind
        shows (`previews`)."""
        opened = self._opened(place)
        if opened is None:
            return self._missing(start_response)
        f, st = opened
        with f:
            kind = previews.kind_of(place.name, f.read(4096))
            f.seek(0)
            excerpt = None
            if kind == previews.TEXT:
                excerpt = previews.text_excerpt(f)
            elif kind == previews.CSV:
                excerpt = previews.csv_excerpt(f, place.name)
        return self._full_page(
            start_response,
            "preview.html",
            headers=headers,
            title=place.name,
            name=place.name,
            kind=kind,
            size=_size(st.st_size),
            modified=_modified(st.st_mtime),
            links=links,
            excerpt=excerpt,
            shared_by=shared_by,
        )

    def _rendered(self, place: Place, environ: dict, start_response: StartResponse) -> list[bytes]:
        """A notebook or markdown file rendered (`render`), as a page of its own that the
        preview page frames; a file that cannot be rendered gets a sentence saying why. Its
        ETag is the file's, so a browser that saw this version gets a 304."""
        opened = self._opened(place)
        if opened is None:
            return self._missing(start_response)
        f, st = opened
        with f:
            kind = previews.kind_of(place.name, b"")
            if kind not in previews.RENDERED_KINDS:
                return _message(start_response, 404, "This kind of file is not rendered.")
            tag = f'"{file_etag(st)}"'
            if environ.get("HTTP_IF_NONE_MATCH") == tag:
                return answer(start_response, 304, b"", "text/html; charset=utf-8", [("ETag", tag)])
            key = (st.st_dev, st.st_ino, tag, kind)
            preview = self.renderer.render(f, kind, key)
        rendered = preview.outcome == RENDERED
        body = TEMPLATES.get_template("rendered.html").render(
            title=place.name,
            # sanitised by the renderer (nbconvert with its HTML cleaned), and inert here anyway
            body=Markup(preview.body) if rendered else None,  # noqa: S704
            message="" if rendered else preview.body,
        )
        headers = list(RENDERED_HEADERS)
        if rendered:
            headers.append(("ETag", tag))
        if preview.status == 503:
            headers.append(("Retry-After", "5"))
        html = body.encode()
        return answer(start_response, preview.status, html, "text/html; charset=utf-8", headers)

    def _opened(self, place: Place) -> tuple[BinaryIO, os.stat_result] | None:
        """The file at ``place`` open (no link followed) and its stat; None where there is
        no such file."""
        try:
            f = self.spaces.open_file(place.fs_path)
        except (DriveError, OSError):
            return None
        return f, os.fstat(f.fileno())

    # -- public links -----------------------------------------------------------------------------

    def public(self, rest: str, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """``/s/<token>``: a file link's preview, a folder link's folder (``?path=`` a folder
        or a file's preview inside it); ``/download``, ``/raw`` and ``/render`` of either."""
        token, _, sub = rest.partition("/")
        if environ["REQUEST_METHOD"].upper() == "POST" and sub == "":
            return self._unlock(token, environ, start_response)
        if sub not in ("", "download", "raw", "render"):
            return self._missing(start_response)
        share = self.auth.unlocked_link(token, environ)
        known = self.spaces.state.share_by_token(token) if share is None else None
        protected = known is not None and bool(known.password_hash) and not link_expired(known)
        if protected and sub in ("", "download"):
            return self._password_page(token, start_response)
        try:
            place = self.spaces.place_of_share(share) if share is not None else None
        except DriveError:
            place = None
        if place is None:
            return _message(start_response, 404, "This link does not exist or has expired.")
        place.mount = False
        if not share.permissions & PERM_READ:
            # a file drop: its visitors add files and see none, here as through WebDAV
            if sub:
                return _message(
                    start_response, 404, "This link is a file drop: nothing in it is shown."
                )
            return self._full_page(
                start_response,
                "drop.html",
                title=share.name,
                share=share,
                token=token,
                webdav=self.origin(environ) + self._url("/public.php/webdav/"),
                drop=self._url(f"/s/{token}/drop/"),
            )
        query = _query(environ)
        inner = query.get("path", "").strip("/") if share.item_type != "file" else ""
        try:
            target = self._inside(place, inner)
        except DriveError as e:
            return _message(start_response, e.status, e.message)
        is_dir = os.path.isdir(target.fs_path)
        if sub == "download":
            if is_dir:
                return self._download_folder(target, start_response)
            return self._download(target, start_response)
        if sub == "raw":
            return self._download(target, start_response, previews.content_type(target.name))
        if sub == "render":
            return self._rendered(target, environ, start_response)
        link = self._url(f"/s/{token}")
        opened = self.open_link(environ, token, inner)
        if not is_dir:
            up = inner.rsplit("/", 1)[0] if "/" in inner else ""
            back = link + ("?" + urlencode({"path": up}) if up else "")
            here = "?" + urlencode({"path": inner}) if inner else ""
            links = PreviewLinks(
                back=back if inner else "",
                back_label=share.name,
                download=f"{link}/download{here}",
                raw=f"{link}/raw{here}",
                render=f"{link}/render{here}",
                open=opened,
            )
            return self._preview_page(target, links, start_response, shared_by=share.owner)
        page = page_number(query)
        if page is None:
            return _message(start_response, 400, BAD_PAGE)
        here_query = [("path", inner)] if inner else []

        def inside(rel: str) -> str:
            return f"{inner}/{rel.rsplit('/', 1)[-1]}" if inner else rel.rsplit("/", 1)[-1]

        entries, pager = self._rows(
            target,
            lambda rel, _is_dir: "?" + urlencode({"path": inside(rel)}),
            open_in=False,
            page=page,
            link=lambda number: "?" + urlencode([*here_query, ("page", number)]),
            download=lambda rel: f"{link}/download?" + urlencode({"path": inside(rel)}),
        )
        crumbs = [Row(share.name, link)]
        walked = ""
        for part in [p for p in inner.split("/") if p]:
            walked = f"{walked}/{part}" if walked else part
            crumbs.append(Row(part, "?" + urlencode({"path": walked})))
        here = "?" + urlencode(here_query) if inner else ""
        return self._full_page(
            start_response,
            "public.html",
            title=share.name,
            share=share,
            token=token,
            crumbs=crumbs,
            entries=entries,
            pager=pager,
            download=f"{link}/download{here}",
            open=opened,
            webdav=self.origin(environ) + self._url("/public.php/webdav/"),
        )

    # -- the view-only page of a share sent to another site (OCM webapp) -----------------------

    def shared_app(
        self, rest: str, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        """``/ocm/app/<id>/<path>``: the page a share sent to another site offers its recipient
        (OCM ``webapp``, ``viewMode`` view), with no login: the shared file's preview, or the
        shared folder's listing and the previews of the files in it (``?view=render`` a
        notebook rendered, ``?view=raw`` an image shown), within the shared item only. View
        only: nothing is downloaded, uploaded or changed here. It ends with the share."""
        token, _, inner = rest.partition("/")
        share = self.auth.shared_app(token)
        try:
            # WSGI hands the path over as Latin-1 of its bytes
            inner = inner.encode("latin-1").decode("utf-8").strip("/")
            place = self.spaces.place_of_share(share) if share is not None else None
        except (UnicodeError, DriveError):
            place = None
        if place is None:
            return self._app_message(
                start_response, 404, "This share does not exist, was ended or has expired."
            )
        place.mount = False
        if share.item_type == "file" and inner:
            return self._app_message(start_response, 404, "No such file or folder in this share.")
        try:
            target = self._inside(place, inner)
        except DriveError as e:
            return self._app_message(start_response, e.status, e.message)
        view = _query(environ).get("view", "")
        app = self._url(f"/ocm/app/{token}")

        def url(rel: str, **query: str) -> str:
            return f"{app}/{quote(rel)}" + ("?" + urlencode(query) if query else "")

        is_dir = os.path.isdir(target.fs_path)
        if view == "render" and not is_dir:
            return self._rendered(target, environ, start_response)
        if view == "raw" and not is_dir:
            return self._shown_image(target, start_response)
        if view:
            return self._app_message(start_response, 404, "This page offers no such view.")
        shared_by = f"{share.owner}@{self.provider}" if self.provider else share.owner
        parts = [p for p in inner.split("/") if p]
        up = url("/".join(parts[:-1])) if parts else ""
        opened = self._open_at_recipient(share, shared_by, parts)
        if not is_dir:
            links = PreviewLinks(
                back=up,
                back_label=share.name,
                download="",
                raw=url(inner, view="raw"),
                render=url(inner, view="render"),
                open=opened,
                open_label="Open in your SWAN",
            )
            return self._preview_page(
                target, links, start_response, shared_by=shared_by, headers=APP_HEADERS
            )
        query = _query(environ)
        page = page_number(query)
        if page is None:
            return self._app_message(start_response, 400, BAD_PAGE)

        def inside(rel: str) -> str:
            return "/".join([*parts, rel.rsplit("/", 1)[-1]])

        entries, pager = self._rows(
            target,
            lambda rel, _is_dir: url(inside(rel)),
            open_in=False,
            page=page,
            link=lambda number: url(inner, page=str(number)),
        )
        crumbs = [Row(share.name, url(""))]
        for n, part in enumerate(parts, 1):
            crumbs.append(Row(part, url("/".join(parts[:n]))))
        return self._full_page(
            start_response,
            "app.html",
            headers=APP_HEADERS,
            title=share.name,
            name=target.name if parts else share.name,
            shared_by=shared_by,
            shared_with=share.share_with,
            crumbs=crumbs,
            entries=entries,
            pager=pager,
            open=opened,
        )

    def _open_at_recipient(self, share: ShareRecord, shared_by: str, parts: list[str]) -> str:
        """The target of a view-only page's "Open in your SWAN": the Open in SWAN page of the
        recipient's own site, which opens the file through the share they accepted there;
        "" where their site is not known as a SWAN site."""
        _, _, provider = (share.share_with or "").rpartition("@")
        target = self.swan_sites.get(provider.lower()) if self.provider else None
        if not target:
            return ""
        query = urlencode({"path": "/".join([share.name, *parts]), "owner": shared_by})
        return f"{target}{'&' if '?' in target else '?'}{query}"

    @staticmethod
    def _app_message(start_response: StartResponse, status: int, message: str) -> list[bytes]:
        return _message(start_response, status, message, APP_HEADERS)

    def _shown_image(self, place: Place, start_response: StartResponse) -> Iterable[bytes]:
        """An image of a view-only page, as its ``<img>`` asks for it; other files are not
        given out (view only: nothing to download)."""
        media = previews.content_type(place.name)
        # an SVG image would be served as an attachment (it can hold script): not shown here
        if previews.kind_of(place.name, b"") != previews.IMAGE or "svg" in media:
            return self._app_message(start_response, 404, "Only images are shown this way.")
        return self._download(place, start_response, media)

    def _inside(self, place: Place, inner: str) -> Place:
        """The place of ``inner`` (a path below a folder link's folder), reached through no
        link; DriveError(404) where nothing is there."""
        for name in split_segments(inner):
            place = place.child(name)
        place = self.spaces.confined(place)
        if not os.path.lexists(place.fs_path):
            raise DriveError(404, "No such file or folder in this link.")
        return place

    def open_link(self, environ: dict, token: str, inner: str) -> str:
        """The "Open in SWAN" link of a public link (``inner``: the file to open in it): the
        visitor logs in, and the link's file or folder is copied into their SWAN_projects/."""
        if not self.open_link_url:
            return ""
        target = self.open_link_url.replace("{url}", quote(self.link_url(environ, token), safe=""))
        if inner:
            target += ("&" if "?" in target else "?") + urlencode({"open": inner})
        return target

    def _download(
        self, place: Place, start_response: StartResponse, media: str = "application/octet-stream"
    ) -> Iterable[bytes]:
        """The file at ``place`` as ``media`` (a download by default; the preview page's
        ``<img>`` asks for its own type), with the headers of every user's file: sandboxed,
        never sniffed, active types downloaded."""
        opened = self._opened(place)
        if opened is None:
            return self._missing(start_response)
        f, st = opened
        start_response(
            "200 OK",
            [
                ("Content-Type", media),
                ("Content-Length", str(st.st_size)),
                *user_content_headers(media, place.name),
            ],
        )
        return iter(lambda: f.read(1 << 16), b"")

    def _password_page(
        self, token: str, start_response: StartResponse, *, said: str = "", status: int = 401
    ) -> list[bytes]:
        """The form that opens a password link in this browser (a cookie for this link only),
        with ``said`` above it. Programs send the password as Basic auth instead (docs/drive.md
        says how). The form carries a token that a cookie of its own repeats (double submit):
        a form posted from another site comes without that cookie (SameSite) and is refused."""
        link = self._url(f"/s/{token}")
        form_token = secrets.token_urlsafe(18)
        cookie = set_cookie(FORM_COOKIE, form_token, link, FORM_COOKIE_SECONDS)
        return _page(
            start_response,
            "password.html",
            status,
            headers=(cookie,),
            title="Protected link",
            said=said,
            link=link,
            form_token=form_token,
        )

    def _unlock(self, token: str, environ: dict, start_response: StartResponse) -> list[bytes]:
        """POST /s/<token> with the link's password (a form): the link's cookie, then its page."""
        form = self._form(environ)
        if form is None:
            return _message(start_response, 400, "Send the password form.")
        sent = form.get("form_token", "")
        expected = cookies_of(environ).get(FORM_COOKIE, "")
        if not (sent and expected and secrets.compare_digest(sent, expected)):
            said = "This form was too old or came from another page; type the password again."
            return self._password_page(token, start_response, said=said, status=403)
        password = form.get("password", "")
        share = self.auth.open_link(token, password, client_address(environ))
        if share is None or not share.password_hash:
            said = "That password is not right."
            return self._password_page(token, start_response, said=said)
        link = self._url(f"/s/{token}")
        return redirect(start_response, 303, link, [self.auth.link_cookie_header(share, link)])

    def _download_folder(self, place: Place, start_response: StartResponse) -> Iterable[bytes]:
        if os.path.islink(place.fs_path) or not os.path.isdir(place.fs_path):
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
