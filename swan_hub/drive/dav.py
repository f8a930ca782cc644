"""WsgiDAV providers of the drive: files (own space + ``Shared/``), public links, chunked uploads,
versions and trash, in the ownCloud/Nextcloud URL layout with the ``oc:`` properties.

This module owns the DAV resources and how each WebDAV verb maps onto `Spaces`. It must not parse
HTTP or XML itself (WsgiDAV does) nor decide who the user is (the app puts the authenticated user
or public link into the WSGI environ before a request gets here).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import xml.etree.ElementTree as ET  # noqa: S405 - writes XML, never parses any
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote, unquote, urlparse, urlsplit, urlunsplit

from wsgidav import util, xml_tools
from wsgidav.dav_error import (
    HTTP_FORBIDDEN,
    HTTP_NOT_FOUND,
    DAVError,
    as_DAVError,
    get_http_status_code,
    get_http_status_string,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider
from wsgidav.lock_man.lock_manager import normalize_lock_root

from swan_contents.gc_pause import gc_paused
from swan_contents.storage.ondisk import TEMP_PREFIX, make_etag

from .spaces import (
    PERM_CREATE,
    PERM_DELETE,
    PERM_READ,
    PERM_UPDATE,
    DriveError,
    Place,
    Spaces,
    check_name,
    file_etag,
    permission_letters,
    remove_tree,
    split_segments,
)
from .state import SHARE_FEDERATED, ShareRecord
from .tree import TreeSummary, is_hidden_entry

OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"
DAV_NS = "{DAV:}"
SABRE = "{http://sabredav.org/ns}"
FAVORITE = f"{OC}favorite"
# WsgiDAV writes its XML with the standard library's ElementTree (lxml is not installed), which
# names namespaces from this process-wide table (``ns0:`` otherwise). Clients of Nextcloud
# (nc-py-api, which reads answers by their literal prefixes) need Sabre's: ``d:``, ``oc:``,
# ``nc:`` and ``s:``. The drive runs in a process of its own, so no other XML is affected.
for _prefix, _uri in (
    ("d", "DAV:"),
    ("oc", "http://owncloud.org/ns"),
    ("nc", "http://nextcloud.org/ns"),
    ("s", "http://sabredav.org/ns"),
):
    ET.register_namespace(_prefix, _uri)
#: the ownCloud and Nextcloud properties the drive computes (any other non-DAV property a
#: client sets is a dead property, kept in SQLite by file id)
OC_PROPERTIES = [
    f"{OC}fileid",
    f"{OC}id",
    f"{OC}permissions",
    f"{OC}size",
    f"{OC}owner-id",
    f"{OC}owner-display-name",
    f"{NC}has-preview",
]
FOLDER_MIME = "httpd/unix-directory"

ENV_USER = "swan_drive.user"
#: what the mount a PUT comes from saw of its path (`sightings.Seen`), when it is a mount's
ENV_SEEN = "swan_drive.seen"
ENV_LINK = "swan_drive.link"
ENV_HEADERS = "swan_drive.response_headers"
ENV_TREE = "swan_drive.tree"
ENV_DESTINATION = "swan_drive.destination"
#: the keys of the locks held, where a PROPFIND looked them up once (`propfind.lock_roots`)
ENV_LOCK_ROOTS = "swan_drive.lock_roots"

#: The name of the stand-in Destination (see `stand_in_destination`); names with the reserved
#: temp-file prefix can never exist in a space, so no real path can be taken for it.
DESTINATION_STAND_IN = f"/{TEMP_PREFIX}destination"
#: Where the lock keys of files and folders of spaces live (see `_Node.get_ref_url`); the
#: reserved prefix again keeps every real path out of it.
LOCK_KEYS = f"/{TEMP_PREFIX}lock"


#: Sabre's exception class of each status, which ownCloud and Nextcloud name in error bodies
SABRE_EXCEPTIONS = {
    400: "BadRequest",
    401: "NotAuthenticated",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    423: "Locked",
    507: "InsufficientStorage",
}


class RefusedError(DAVError):
    """A refusal of the drive, answered as ownCloud and Nextcloud answer one: an XML error body
    (`d:error` with Sabre's `s:exception` and `s:message`) whose message clients can show."""

    def get_response_page(self) -> tuple[str, bytes]:
        if self.err_condition:
            return super().get_response_page()
        status = get_http_status_code(self)
        exception = "Sabre\\DAV\\Exception\\" + SABRE_EXCEPTIONS.get(status, "")
        message = str(self.context_info or get_http_status_string(self))
        root = ET.Element(f"{DAV_NS}error")
        ET.SubElement(root, f"{SABRE}exception").text = exception.rstrip("\\")
        ET.SubElement(root, f"{SABRE}message").text = message
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return "application/xml; charset=utf-8", body


#: WsgiDAV's RFC 1123 date of a second, remembered: a big folder's files share their seconds
http_date = functools.lru_cache(maxsize=65536)(util.get_rfc1123_time)


def dav_error(e: DriveError | OSError) -> RefusedError:
    """The WebDAV error for a refused operation or a failed file call."""
    if isinstance(e, DriveError):
        return RefusedError(e.status, e.message)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return RefusedError(507, "The storage is full; nothing was changed")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RefusedError(HTTP_FORBIDDEN, "Permission denied by the storage")
    if e.errno in (errno.ENOENT, errno.ELOOP):
        return RefusedError(HTTP_NOT_FOUND)
    if e.errno == errno.EEXIST:
        return RefusedError(405, "It exists already")
    return RefusedError(500, f"Storage error: {e.strerror}")


def require(place: Place, perm: int, what: str) -> None:
    """`Place.require` answering in WebDAV terms (403 with the reason)."""
    try:
        place.require(perm, what)
    except DriveError as e:
        raise dav_error(e) from e


def add_response_headers(environ: dict, headers: Iterable[tuple[str, str]]) -> None:
    environ.setdefault(ENV_HEADERS, []).extend(headers)


#: What a browser may do with bytes users stored: nothing that runs in the drive's origin,
#: which is the hub's (/hub, /user): no script, no plugin, no form, a unique origin.
USER_CONTENT_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data: blob:; media-src 'self'; "
    "style-src 'unsafe-inline'; frame-ancestors 'none'"
)
#: the parts of a media type that make a browser run or render something active
ACTIVE_MARKERS = ("html", "xml", "svg", "javascript", "ecmascript", "pdf", "xsl")


def user_content_headers(content_type: str, name: str) -> list[tuple[str, str]]:
    """The headers of a response carrying a user's file ``name`` of ``content_type``, as
    jupyter-server's file handler confines them: sandboxed, never sniffed, and downloaded
    rather than shown when the type is active (HTML, SVG, XML, scripts, PDF) or unknown."""
    media = content_type.split(";", 1)[0].strip().lower()
    shown = media.split("/", 1)[0] in ("text", "image", "audio", "video") and not any(
        marker in media for marker in ACTIVE_MARKERS
    )
    headers = [
        ("Content-Security-Policy", USER_CONTENT_CSP),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if not shown:
        disposition = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
        headers.append(("Content-Disposition", disposition))
    return headers


def parse_mtime(environ: dict) -> int | None:
    value = environ.get("HTTP_X_OC_MTIME")
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        raise RefusedError(400, "X-OC-Mtime must be seconds since the epoch") from None


def announced_length(environ: dict) -> int | None:
    """The body length a PUT announced (Content-Length), None where it announced none (a body
    in chunked transfer-encoding, whose end the server itself checks)."""
    if environ.get("REQUEST_METHOD", "").upper() != "PUT":
        return None
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    raw = environ.get("CONTENT_LENGTH")
    return util.get_content_length(environ) if raw not in (None, "") else None


def cut_off(received: int, announced: int) -> RefusedError:
    """The answer to a body that ended before its announced length: the client broke off (or
    was killed), so these bytes are not the file it meant to send."""
    return RefusedError(
        400,
        f"The upload broke off after {received} of {announced} bytes; nothing was changed. "
        "Send the file again.",
    )


class _QuotaWriter:
    """The temp file of an upload; refuses bytes beyond ``limit`` (507) while they arrive and,
    at the end, a body shorter or longer than the ``expected`` length the request announced."""

    def __init__(
        self,
        spaces: Spaces,
        path: str,
        limit: int | None,
        expected: int | None = None,
        *,
        durable: bool = True,
    ):
        self.path = path
        self.limit = limit
        self.expected = expected
        self.durable = durable
        self.written = 0
        self._file = spaces.create_temp(path)  # closed by WsgiDAV after the body

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.limit is not None and self.written > self.limit:
            raise RefusedError(507, "Not enough space for this upload; nothing was changed")
        self._file.write(data)

    def writelines(self, blocks: Iterable[bytes]) -> None:
        """Write the body as WsgiDAV reads it (it prefers this to `write` per block)."""
        try:
            for data in blocks:
                self.write(data)
        except ValueError as e:
            # cheroot's word for a chunked transfer-encoding that broke off or is malformed
            raise RefusedError(400, f"The upload broke off ({e}); nothing was changed") from None

    def close(self) -> None:
        if not self._file.closed and self.durable:
            # on disk before it can replace anything: a crash then leaves the old file or the
            # whole new one, never a file whose blocks were not written yet
            self._file.flush()
            os.fsync(self._file.fileno())
        self._file.close()

    def check_complete(self) -> None:
        """Raise if the body ended before (or ran past) the length the request announced.

        WsgiDAV reads a body until the server's input ends, and cheroot ends a body with a
        Content-Length at that length or when the connection closes, whichever comes first.
        """
        if self.expected is not None and self.written != self.expected:
            raise cut_off(self.written, self.expected)


class _Node:
    """What files and folders of the drive have in common (mixed into WsgiDAV's classes)."""

    place: Place
    st: os.stat_result | None
    provider: DriveProvider
    environ: dict
    is_collection: bool
    _file_id: int | None = None
    _dead: dict[str, bytes] | None = None

    @property
    def spaces(self) -> Spaces:
        return self.provider.spaces

    def tree(self) -> TreeSummary:
        """The folder ETags and sizes of this request (each folder summarised once per request)."""
        found = self.environ.get(ENV_TREE)
        if found is None:
            found = self.environ[ENV_TREE] = self.spaces.tree()
        return found

    def file_id(self) -> int:
        if self._file_id is None:
            self._file_id = self.spaces.file_id(self.place.owner, self.place.rel, self.st)
        return self._file_id

    def oc_permissions(self) -> str:
        return permission_letters(
            self.place.perms,
            is_dir=self.is_collection,
            shared=self.place.share is not None,
            mount=self.place.mount,
        )

    def _make_folder(self, place: Place) -> None:
        if self.provider.area == "space":
            self.spaces.make_folder(place)
        else:
            with self.spaces.parent_folder(place.fs_path) as (folder, name):
                os.mkdir(name, 0o700, dir_fd=folder)

    def get_creation_date(self) -> float | None:
        return self.st.st_ctime if self.st else None

    def get_last_modified(self) -> float | None:
        return int(self.st.st_mtime) if self.st else None

    def get_display_name(self) -> str:
        return self.name  # type: ignore[attr-defined]

    def oc_size(self) -> int:
        raise NotImplementedError

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names = super().get_property_names(is_allprop=is_allprop)  # type: ignore[misc]
        return names + OC_PROPERTIES + list(self._dead_properties())

    _ref_url: str | None = None

    def get_ref_url(self) -> str:
        """The key WsgiDAV keeps locks (and lock checks) by.

        For what lies in a space it names the file, not the URL: the owner and the path in
        the owner's space, so that a lock taken through one URL (`/remote.php/dav/files/<u>/`,
        `/remote.php/webdav/`, a recipient's `Shared/`, a public link) holds for all the others.
        The provider maps such a key back to a path of its own (`DriveProvider.lock_path`).
        """
        # WsgiDAV asks for it for every property of every listed entry; a node never moves.
        if self._ref_url is None:
            if self.provider.area == "space":
                key = f"{LOCK_KEYS}/{self.place.owner}/{self.place.rel}"
                if self.is_collection and self.place.rel:
                    key += "/"
                self._ref_url = quote(key)
            else:
                self._ref_url = super().get_ref_url()  # type: ignore[misc]
        return self._ref_url

    def get_property_value(self, name: str) -> Any:
        if name == "{DAV:}lockdiscovery":
            roots = self.environ.get(ENV_LOCK_ROOTS)
            if roots is not None and normalize_lock_root(self.get_ref_url()) not in roots:
                # the PROPFIND of `propfind` looked up the locks once for all its entries
                return ET.Element(name)
        if name == "{DAV:}getlastmodified" and self.st is not None:
            return http_date(int(self.st.st_mtime))
        if name == "{DAV:}getetag":
            return f'"{self.get_etag()}"'  # type: ignore[attr-defined]
        if name in OC_PROPERTIES:
            return self._oc_property(name)
        if name == FAVORITE and self.provider.area == "space":
            # Nextcloud answers 0 for a file never marked, rather than a missing property
            return "1" if self.is_favorite() else "0"
        if not name.startswith(DAV_NS):
            value = self._dead_properties().get(name)
            if value is None:
                raise DAVError(HTTP_NOT_FOUND)
            return xml_tools.string_to_xml(value)
        return super().get_property_value(name)  # type: ignore[misc]

    def set_property_value(self, name: str, value: Any, *, dry_run: bool = False) -> Any:
        if name in OC_PROPERTIES or name.startswith(DAV_NS) or self.provider.area != "space":
            return super().set_property_value(name, value, dry_run=dry_run)  # type: ignore[misc]
        require(self.place, PERM_UPDATE, "change the properties of this")
        if not dry_run:
            data = None if value is None else xml_tools.etree.tostring(value)
            self.spaces.state.set_property(self.file_id(), name, data)
            self._dead = None
        return None

    def is_favorite(self) -> bool:
        """Whether a client marked this a favorite (``oc:favorite`` set to 1 by PROPPATCH)."""
        stored = self._dead_properties().get(FAVORITE)
        return bool(stored) and (xml_tools.string_to_xml(stored).text or "").strip() == "1"

    def _dead_properties(self) -> dict[str, bytes]:
        """The properties clients set on this file or folder (PROPPATCH), by name."""
        if self.provider.area != "space":
            return {}
        if self._dead is None:
            self._dead = self.spaces.state.properties(self.file_id())
        return self._dead

    def copy_properties_to(self, dest: Place) -> None:
        """A COPY takes the dead properties along."""
        if self.provider.area == "space" and self._dead_properties():
            dest_id = self.spaces.file_id(dest.owner, dest.rel)
            self.spaces.state.copy_properties(self.file_id(), dest_id)

    def _oc_property(self, name: str) -> Any:
        if self.provider.area != "space":
            raise RefusedError(HTTP_NOT_FOUND)
        if name == f"{OC}fileid":
            return str(self.file_id())
        if name == f"{OC}id":
            return self.spaces.oc_id(self.file_id())
        if name == f"{OC}permissions":
            return self.oc_permissions()
        if name == f"{OC}size":
            return str(self.oc_size())
        if name in (f"{OC}owner-id", f"{OC}owner-display-name"):
            return self.place.owner
        if name == f"{NC}has-preview":
            return "false"
        raise RefusedError(HTTP_NOT_FOUND)

    # -- writes shared by files and folders -------------------------------------------------------

    def _removable(self) -> None:
        if self.place.mount:
            raise RefusedError(HTTP_FORBIDDEN, "A received share cannot be deleted or moved here")
        require(self.place, PERM_DELETE, "delete or move this")

    def handle_delete(self) -> bool:
        self._removable()
        locks = self.provider.lock_manager
        if (
            locks
            and locks.is_url_locked(self.get_ref_url())
            and not getattr(self, "_unlocked", False)
        ):
            # WsgiDAV checks lock tokens only on its own per-resource path: take it.
            self._unlocked = True
            return False
        try:
            if self.provider.area == "space":
                self.spaces.to_trash(self.place)
            else:
                remove_tree(self.place.fs_path)
        except (OSError, DriveError) as e:
            raise dav_error(e) from e
        return True

    def delete(self) -> None:
        self.handle_delete()

    def support_recursive_move(self, dest_path: str) -> bool:
        return True

    def move_recursive(self, dest_path: str) -> None:
        self._removable()
        dest = self.provider.place_for(dest_path, self.environ)
        _require_create(self.provider, dest_path, self.environ)
        if self.provider.area == "space" and dest.owner != self.place.owner:
            used = self.tree().size(self.place.fs_path) if self.is_collection else 0
            self.spaces.check_quota(dest.owner, used or (self.st.st_size if self.st else 0))
        try:
            self.spaces.rename(self.place.fs_path, dest.fs_path)
        except (OSError, DriveError) as e:
            raise dav_error(e) from e
        if self.provider.area == "space":
            if dest.owner == self.place.owner:
                self.spaces.state.moved(self.place.owner, self.place.rel, dest.rel)
            else:
                self.spaces.state.forgotten(self.place.owner, self.place.rel)
                self.spaces.give_to_space_user(dest.owner, dest.fs_path, tree=True)


#: a property a file or folder does not have, as WsgiDAV's `get_properties` reports it
_NOT_FOUND = DAVError(HTTP_NOT_FOUND)
_COLLECTION = ET.Element("{DAV:}resourcetype")
ET.SubElement(_COLLECTION, "{DAV:}collection")


def _unlocked(node: _Node) -> Any:
    """An empty ``d:lockdiscovery`` where the PROPFIND's one look-up of the locks
    (`ENV_LOCK_ROOTS`) found none on the node, else its locks."""
    roots = node.environ.get(ENV_LOCK_ROOTS)
    if roots is not None and (not roots or normalize_lock_root(node.get_ref_url()) not in roots):
        return ""
    return node.get_property_value("{DAV:}lockdiscovery")


def _folder_etag(node: DriveFolder) -> str:
    return f'"{node.get_etag()}"'


#: The properties listings ask for, straight from a listed file's or folder's stat and ids:
#: the values `get_property_value` gives, without its dispatch per property (a PROPFIND of a
#: folder of 100,000 entries asks for 900,000 of them).
_LISTED_FILE: dict[str, Callable[[Any], Any]] = {
    "{DAV:}getetag": lambda node: make_etag(node.st),
    "{DAV:}getlastmodified": lambda node: http_date(int(node.st.st_mtime)),
    "{DAV:}getcontentlength": lambda node: str(node.st.st_size),
    "{DAV:}resourcetype": lambda node: "",
    "{DAV:}lockdiscovery": _unlocked,
    "{DAV:}displayname": lambda node: node.name,
    f"{OC}fileid": lambda node: str(node.file_id()),
    f"{OC}id": lambda node: node.spaces.oc_id(node.file_id()),
    f"{OC}permissions": lambda node: node.oc_permissions(),
    f"{OC}size": lambda node: str(node.st.st_size),
}
_LISTED_FOLDER: dict[str, Callable[[Any], Any]] = {
    **_LISTED_FILE,
    "{DAV:}getetag": _folder_etag,
    "{DAV:}getcontentlength": lambda node: _NOT_FOUND,
    "{DAV:}resourcetype": lambda node: _COLLECTION,
    f"{OC}size": lambda node: str(node.oc_size()),
}


def _property_value(name: str) -> Callable[[Any], Any]:
    def value(node: Any) -> Any:
        try:
            return node.get_property_value(name)
        except DAVError as e:
            return e
        except Exception as e:  # as WsgiDAV's `get_properties` reports it
            return as_DAVError(e)

    return value


def listing_getters(
    names: list[str],
) -> dict[type, list[tuple[str, Callable[[Any], Any]]]]:
    """How a PROPFIND gets each of ``names`` of a file and of a folder of a space: the value
    or, where the node has no such property or refuses it, its `DAVError` (as WsgiDAV's
    `get_properties` gives them). Only for nodes with a stat (`listed_with_stat`)."""
    return {
        kind: [(name, table.get(name) or _property_value(name)) for name in names]
        for kind, table in ((DriveFile, _LISTED_FILE), (DriveFolder, _LISTED_FOLDER))
    }


def listed_with_stat(node: Any) -> bool:
    """Whether `listing_getters` serve ``node``: a file or folder of a user's space, stated."""
    return node.provider.area == "space" and getattr(node, "st", None) is not None


def _require_create(provider: DriveProvider, dest_path: str, environ: dict) -> Place:
    parent = provider.place_for(util.get_uri_parent(real_path(dest_path, environ)), environ)
    require(parent, PERM_CREATE, "create files")
    return parent


class DriveFile(_Node, DAVNonCollection):
    def __init__(
        self,
        path: str,
        environ: dict,
        place: Place,
        st: os.stat_result | None,
        provider: DriveProvider,
    ):
        DAVNonCollection.__init__(self, path, environ)
        self.provider = provider
        self.place = place
        self.st = st
        self.name = place.name or place.fs_path.rsplit("/", 1)[-1]
        self._writer: _QuotaWriter | None = None

    def get_content_length(self) -> int | None:
        return self.st.st_size if self.st else 0

    def get_content_type(self) -> str:
        return util.guess_mime_type(self.name, self.environ["wsgidav.config"])

    def get_etag(self) -> str | None:
        return file_etag(self.st) if self.st else None

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def oc_size(self) -> int:
        return self.st.st_size if self.st else 0

    def get_content(self) -> Any:
        require(self.place, PERM_READ, "read this")
        try:
            return self.spaces.open_file(self.place.fs_path)
        except (DriveError, OSError) as e:
            raise dav_error(e) from e

    def begin_write(self, *, content_type: str | None = None) -> _QuotaWriter:
        require(self.place, PERM_UPDATE if self.st else PERM_CREATE, "write this file")
        limit = None
        if self.spaces.quota_bytes is not None and self.provider.area in ("space", "uploads"):
            # a file counts against its owner's quota; the parts of uploads in progress may
            # hold as much again at most, so that a client never finishing them cannot fill
            # the disk
            if self.provider.area == "space":
                used = self.spaces.used_bytes(self.place.owner)
            else:
                used = self.spaces.uploads_bytes(self.place.owner)
            limit = self.spaces.quota_bytes - used + (self.st.st_size if self.st else 0)
            announced = util.get_content_length(self.environ)
            if announced and announced > limit:
                raise RefusedError(507, "Not enough space for this upload; nothing was changed")
        try:
            self._writer = _QuotaWriter(
                self.spaces,
                self.spaces.temp_beside(self.place.fs_path),
                limit,
                announced_length(self.environ),
                # a part of a chunked upload reaches the disk with the whole file, which the
                # final MOVE writes and syncs: a crash before loses only the upload
                durable=self.provider.area == "space",
            )
        except (OSError, DriveError) as e:
            raise dav_error(e) from e
        return self._writer

    def end_write(self, *, with_errors: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if with_errors:
            self.spaces.discard(writer.path)
            return
        try:
            writer.check_complete()
            mtime = parse_mtime(self.environ)
        except RefusedError:
            self.spaces.discard(writer.path)
            raise
        try:
            if self.provider.area == "space":
                self.st = self.spaces.publish(
                    self.place,
                    writer.path,
                    if_match=self.environ.get("HTTP_IF_MATCH"),
                    if_none_match=self.environ.get("HTTP_IF_NONE_MATCH"),
                    mtime=mtime,
                    seen=self.environ.get(ENV_SEEN),
                )
            else:
                self.spaces.rename(writer.path, self.place.fs_path)
                self.st = os.stat(self.place.fs_path)
        except (DriveError, OSError) as e:
            self.spaces.discard(writer.path)
            raise dav_error(e) from e
        headers = [("OC-ETag", f'"{file_etag(self.st)}"')]
        if self.provider.area == "space":
            headers.append(("OC-FileId", self.spaces.oc_id(self.file_id())))
        if mtime is not None:
            headers.append(("X-OC-MTime", "accepted"))
        add_response_headers(self.environ, headers)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        dest = self.provider.place_for(dest_path, self.environ)
        require(dest, PERM_UPDATE if os.path.exists(dest.fs_path) else PERM_CREATE, "write there")
        temp = self.spaces.temp_beside(dest.fs_path)
        try:
            self.spaces.copy_file(self.place.fs_path, temp)
            if self.provider.area == "space":
                self.spaces.publish(dest, temp)
            else:
                self.spaces.rename(temp, dest.fs_path)
        except (DriveError, OSError) as e:
            self.spaces.discard(temp)
            raise dav_error(e) from e
        self.copy_properties_to(dest)


class DriveFolder(_Node, DAVCollection):
    def __init__(
        self,
        path: str,
        environ: dict,
        place: Place,
        st: os.stat_result,
        provider: DriveProvider,
        *,
        with_shares_folder: bool = False,
    ):
        DAVCollection.__init__(self, path, environ)
        self.provider = provider
        self.place = place
        self.st = st
        self.name = place.name or provider.root_name(environ)
        self.with_shares_folder = with_shares_folder

    def get_etag(self) -> str:
        etag = self.tree().etag(self.place.fs_path)
        if self.with_shares_folder:
            etag += self._shares_folder().get_etag()
        return etag

    def support_etag(self) -> bool:
        return True

    def oc_size(self) -> int:
        return self.tree().size(self.place.fs_path)

    def get_content_type(self) -> str:
        return FOLDER_MIME

    def get_used_bytes(self) -> int:
        return self.oc_size()

    def get_available_bytes(self) -> int:
        if self.provider.area != "space" or self.spaces.quota_bytes is None:
            return -3  # unlimited, as ownCloud and Nextcloud report it
        used = self.tree().size(self.spaces.space_dir(self.place.owner))
        return max(0, self.spaces.quota_bytes - used)

    def _shares_folder(self) -> SharesFolder:
        path = util.join_uri(self.path, self.spaces.share_folder)
        return SharesFolder(path, self.environ, self.provider, self.place.owner)

    def get_member_names(self) -> list[str]:
        return [m.name for m in self.get_member_list()]

    def get_member(self, name: str) -> Any:
        return self.provider.get_resource_inst(util.join_uri(self.path, name), self.environ)

    def get_member_list(self) -> list[Any]:
        require(self.place, PERM_READ, "list this folder")
        try:
            with os.scandir(self.place.fs_path) as it:
                entries = [e for e in it if not is_hidden_entry(e.name)]
        except OSError as e:
            raise dav_error(e) from e
        with gc_paused():  # a big folder's nodes: no cycles for the collector to find
            members = self._members(entries)
        if self.with_shares_folder:
            members = [m for m in members if m.name != self.spaces.share_folder]
            members.append(self._shares_folder())
        return members

    def _members(self, entries: list[os.DirEntry]) -> list[Any]:
        members: list[Any] = []
        base = util.join_uri(self.path, "_")[:-1]  # + a name: `util.join_uri(self.path, name)`
        for e in entries:
            try:
                if e.is_symlink():
                    continue
                st = e.stat()
            except FileNotFoundError:
                continue
            child = self.place.child(e.name)
            path = base + e.name
            if stat.S_ISDIR(st.st_mode):
                member: Any = DriveFolder(path, self.environ, child, st, self.provider)
            elif stat.S_ISREG(st.st_mode):
                member = DriveFile(path, self.environ, child, st, self.provider)
            else:
                continue
            members.append(member)
        if self.provider.area == "space":
            found = {m.name: m.st for m in members}
            ids = self.spaces.file_ids(self.place.owner, self.place.rel, found)
            for member in members:
                member._file_id = ids[member.name]
        return members

    def create_empty_resource(self, name: str) -> DriveFile:
        self._check_new_name(name)
        require(self.place, PERM_CREATE, "create files")
        path = util.join_uri(self.path, name)
        node = DriveFile(path, self.environ, self.place.child(name), None, self.provider)
        if self.environ["REQUEST_METHOD"].upper() == "LOCK":
            # Locking an unmapped URL makes an empty file (RFC 4918, 9.10.4), as Finder and
            # office suites do before they write a new one. A PUT publishes its own bytes.
            node.begin_write().close()
            node.end_write(with_errors=False)
        return node

    def create_collection(self, name: str) -> None:
        self._check_new_name(name)
        require(self.place, PERM_CREATE, "create folders")
        if self.provider.area == "uploads" and not self.place.rel:
            # a new upload: the time to drop the user's uploads abandoned long ago
            self.spaces.sweep_abandoned_uploads(self.place.owner)
        try:
            self._make_folder(self.place.child(name))
        except (OSError, DriveError) as e:
            raise dav_error(e) from e

    def _check_new_name(self, name: str) -> None:
        try:
            check_name(name)
        except DriveError as e:
            raise dav_error(e) from e
        if self.with_shares_folder and name == self.spaces.share_folder:
            raise RefusedError(
                HTTP_FORBIDDEN, f"{name!r} is where received shares appear; pick another name"
            )

    def support_recursive_delete(self) -> bool:
        return True

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        dest = self.provider.place_for(dest_path, self.environ)
        if not os.path.isdir(dest.fs_path):
            _require_create(self.provider, dest_path, self.environ)
            try:
                self._make_folder(dest)
            except (OSError, DriveError) as e:
                raise dav_error(e) from e
        self.copy_properties_to(dest)


class SharesFolder(_Node, DAVCollection):
    """The virtual ``Shared/`` folder: one entry per accepted share, named by its mount name."""

    def __init__(self, path: str, environ: dict, provider: DriveProvider, user: str):
        DAVCollection.__init__(self, path, environ)
        self.provider = provider
        self.user = user
        self.name = provider.spaces.share_folder
        self.place = Place(user, self.name, "", PERM_READ)
        self.st = None

    def _mounts(self) -> dict[str, ShareRecord]:
        return self.spaces.mounts(self.user)

    def _found(self) -> Iterator[tuple[str, ShareRecord, Place, os.stat_result]]:
        """Each share that is there, by name: its record, place and stat."""
        for name, share in sorted(self._mounts().items()):
            try:
                place = self.spaces.place_of_share(share)
                yield name, share, place, os.stat(place.fs_path)
            except (FileNotFoundError, DriveError):
                continue

    def get_etag(self) -> str:
        parts = []
        for name, share, place, st in self._found():
            inner = self.tree().etag(place.fs_path) if stat.S_ISDIR(st.st_mode) else ""
            parts.append(f"{name}:{share.id}:{share.permissions}:{file_etag(st)}:{inner}")
        return TreeSummary.digest_of(parts)

    def get_last_modified(self) -> float | None:
        """The newest time among the shares, else the space's own: a sync client refuses a
        folder without one (nextcloudcmd: "invalid modification time")."""
        times = [st.st_mtime for *_, st in self._found()]
        with contextlib.suppress(OSError):
            times = times or [os.stat(self.spaces.space_dir(self.user)).st_mtime]
        return int(max(times)) if times else None

    def support_etag(self) -> bool:
        return True

    def oc_size(self) -> int:
        return 0

    def oc_permissions(self) -> str:
        return "G"

    def get_content_type(self) -> str:
        return FOLDER_MIME

    def get_member_names(self) -> list[str]:
        return sorted(self._mounts())

    def get_member(self, name: str) -> Any:
        return self.provider.get_resource_inst(util.join_uri(self.path, name), self.environ)

    def create_empty_resource(self, name: str) -> Any:
        raise RefusedError(HTTP_FORBIDDEN, "Only received shares can appear in this folder")

    def create_collection(self, name: str) -> None:
        raise RefusedError(HTTP_FORBIDDEN, "Only received shares can appear in this folder")

    def handle_delete(self) -> bool:
        raise RefusedError(HTTP_FORBIDDEN, "The folder of received shares cannot be deleted")

    def move_recursive(self, dest_path: str) -> None:
        raise RefusedError(HTTP_FORBIDDEN, "The folder of received shares cannot be moved")

    def support_recursive_delete(self) -> bool:
        return True


class UsersFolder(DAVCollection):
    """``/remote.php/dav/files/`` itself: it lists only the signed-in user."""

    def __init__(self, path: str, environ: dict, user: str):
        super().__init__(path, environ)
        self.user = user

    def get_member_names(self) -> list[str]:
        return [self.user]

    def get_member(self, name: str) -> Any:
        return self.provider.get_resource_inst(util.join_uri(self.path, name), self.environ)


class DriveProvider(DAVProvider):
    """Files of the signed-in user's view, at ``/<user>/...`` (``user_in_path``) or at ``/...``.

    ``area`` is ``space`` for users' spaces and ``uploads`` for the chunked-upload area.
    """

    area = "space"

    def __init__(self, spaces: Spaces, *, user_in_path: bool):
        super().__init__()
        self.spaces = spaces
        self.user_in_path = user_in_path

    def is_readonly(self) -> bool:
        return False

    def root_name(self, environ: dict) -> str:
        return environ.get(ENV_USER) or ""

    def _user(self, environ: dict) -> str:
        user = environ.get(ENV_USER)
        if not user:
            raise RefusedError(401)
        return user

    def _split(self, path: str, environ: dict) -> tuple[str, list[str]] | None:
        """(user, names below the user's root), None for the list of users."""
        user = self._user(environ)
        try:
            segments = split_segments(real_path(path, environ))
        except DriveError as e:
            raise dav_error(e) from e
        if self.user_in_path:
            if not segments:
                return None
            if segments[0] != user:
                # Another user's space: the same answer as for a name that does not exist.
                raise RefusedError(HTTP_NOT_FOUND)
            segments = segments[1:]
        return user, segments

    def place_for(self, path: str, environ: dict) -> Place:
        split = self._split(path, environ)
        if split is None:
            raise RefusedError(HTTP_FORBIDDEN, "Not a place for files")
        user, segments = split
        try:
            place = self.spaces.resolve(user, "/".join(segments))
        except DriveError as e:
            raise dav_error(e) from e
        if place is None:
            raise RefusedError(HTTP_FORBIDDEN, "Only received shares can appear in this folder")
        return place

    def lock_path(self, key: str, environ: dict) -> str | None:
        """The path in this provider's view of the file a lock key names (`_Node.get_ref_url`),
        None where the signed-in user does not see it from here."""
        owner, rel = split_lock_key(key)
        user = self._user(environ)
        root = f"/{user}" if self.user_in_path else ""
        if owner == user:
            return f"{root}/{rel}"
        for name, share in self.spaces.mounts(user).items():
            below = path_below(owner, rel, share)
            if below is not None:
                return f"{root}/{self.spaces.share_folder}/{name}{below}"
        return None

    def _unkeyed(self, path: str, environ: dict) -> str | None:
        """``path``, or for a lock key (WsgiDAV turns a lock's key into a path to show the
        lock's root) the path it names here."""
        if path == LOCK_KEYS or path.startswith(LOCK_KEYS + "/"):
            return self.lock_path(path, environ)
        return path

    def get_resource_inst(self, path: str, environ: dict) -> Any:
        found = self._unkeyed(path, environ)
        return None if found is None else self.resource_at(found, environ)

    def resource_at(self, path: str, environ: dict) -> Any:
        """The resource at ``path`` (a lock key already turned into its path)."""
        split = self._split(path, environ)
        if split is None:
            return UsersFolder(path, environ, self._user(environ))
        user, segments = split
        try:
            place = self.spaces.resolve(user, "/".join(segments))
        except DriveError as e:
            if e.status == 404:
                return None
            raise dav_error(e) from e
        if place is None:
            return SharesFolder(path, environ, self, user)
        return self._node(path, environ, place, at_root=not segments)

    def _node(self, path: str, environ: dict, place: Place, *, at_root: bool) -> Any:
        """The file or folder at ``place``; None where nothing is, or a symbolic link on the
        way (`Spaces.confine`: every resource of every area is made here)."""
        try:
            st = os.lstat(self.spaces.confine(place.fs_path))
        except DriveError:
            return None
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise dav_error(e) from e
        if stat.S_ISDIR(st.st_mode):
            return DriveFolder(path, environ, place, st, self, with_shares_folder=at_root)
        if stat.S_ISREG(st.st_mode):
            return DriveFile(path, environ, place, st, self)
        return None


class SharedFileParent(DAVCollection):
    """What WsgiDAV's PUT finds as the parent of a link's or share's own URL where that is a
    single file (it writes a file only into a folder): a folder that lists nothing and takes
    no new file. The file itself is written as any other, with its own permissions."""

    def __init__(self, environ: dict):
        super().__init__("", environ)

    def get_member_names(self) -> list[str]:
        return []

    def create_empty_resource(self, name: str) -> Any:
        raise RefusedError(HTTP_NOT_FOUND, "The shared file is gone")


class PublicLinkProvider(DriveProvider):
    """``/public.php/webdav/``: the file or folder of the public link in the environ."""

    def __init__(self, spaces: Spaces):
        super().__init__(spaces, user_in_path=False)

    def get_resource_inst(self, path: str | None, environ: dict) -> Any:
        if path is None:
            # the parent of the root, which a PUT asks for: of a single file, a folder to
            # write it in; nothing above a shared folder
            link: ShareRecord | None = environ.get(ENV_LINK)
            is_file = link is not None and link.item_type == "file"
            return SharedFileParent(environ) if is_file else None
        return super().get_resource_inst(path, environ)

    def root_name(self, environ: dict) -> str:
        link: ShareRecord = environ[ENV_LINK]
        return link.name

    def _link_place(self, environ: dict) -> Place:
        link: ShareRecord | None = environ.get(ENV_LINK)
        if link is None:
            raise RefusedError(401)
        place = self.spaces.place_of_share(link)
        place.mount = False
        if link.item_type == "file" and link.share_type == SHARE_FEDERATED:
            place.perms &= ~(PERM_CREATE | PERM_DELETE)
        elif link.item_type == "file":
            place.perms &= PERM_READ
        return place

    def place_for(self, path: str, environ: dict) -> Place:
        try:
            place = self._link_place(environ)
            for name in split_segments(real_path(path, environ)):
                place = place.child(name)
            return self.spaces.confined(place)
        except DriveError as e:
            raise dav_error(e) from e

    def lock_path(self, key: str, environ: dict) -> str | None:
        link: ShareRecord | None = environ.get(ENV_LINK)
        below = None if link is None else path_below(*split_lock_key(key), link)
        return None if below is None else below or "/"

    def resource_at(self, path: str, environ: dict) -> Any:
        place = self.place_for(path, environ)
        if place.share is not None and place.share.item_type == "file" and path.strip("/"):
            return None
        node = self._node(path, environ, place, at_root=False)
        if node is not None and not path.strip("/"):
            node.place.perms &= ~PERM_DELETE  # the link's own root stays
        return node


class UploadsProvider(DriveProvider):
    """``/remote.php/dav/uploads/<user>/<upload-id>/<part>``: Nextcloud chunking v2."""

    area = "uploads"

    def __init__(self, spaces: Spaces):
        super().__init__(spaces, user_in_path=True)

    def place_for(self, path: str, environ: dict) -> Place:
        split = self._split(path, environ)
        if split is None:
            raise RefusedError(HTTP_FORBIDDEN, "Not a place for files")
        user, segments = split
        root = self.spaces.area_dir("uploads", user)
        place = Place(user, "/".join(segments), os.path.join(root, *segments), 31)
        try:
            return self.spaces.confined(place)
        except DriveError as e:
            raise dav_error(e) from e

    def get_resource_inst(self, path: str, environ: dict) -> Any:
        split = self._split(path, environ)
        if split is None:
            return UsersFolder(path, environ, self._user(environ))
        return self._node(path, environ, self.place_for(path, environ), at_root=False)


def destination_path(environ: dict) -> str:
    """The path of the Destination header (as WsgiDAV resolves providers by it)."""
    raw = environ.get("HTTP_DESTINATION")
    if not raw:
        raise RefusedError(400, "Missing Destination header")
    return util.normalize_path(unquote(urlsplit(raw).path))


def stand_in_destination(environ: dict) -> None:
    """Make WsgiDAV COPY and MOVE to the very path the drive reads from the Destination.

    WsgiDAV decodes the Destination header before it parses it as a URL, so a `?` or `;` in a
    file name cuts the path there (mar10/wsgidav#139), and `a%3F/../../x` names `a` to WsgiDAV
    but `x` to a reader that decodes after parsing. The drive parses it once
    (`destination_path`): where WsgiDAV would read another path, it gets a stand-in path of a
    name no space can hold, directly below the same provider, which `real_path` maps back to
    the drive's (and everything below it). Where the stand-in hides from WsgiDAV that the
    target is the source or below it, that is refused here as WsgiDAV would.

    Remove when WsgiDAV parses the Destination before decoding it (mar10/wsgidav#139;
    `tests/test_upstream_canaries.py` fails then), together with `real_path`, `ENV_DESTINATION`
    and `DESTINATION_STAND_IN`.
    """
    raw = environ.get("HTTP_DESTINATION")
    if not raw:
        return
    target = destination_path(environ)
    try:
        # as WsgiDAV reads it: decoded first, then parsed (`urlparse` also cuts `;params`)
        as_wsgidav = util.normalize_path(urlparse(unquote(raw), allow_fragments=False).path)
    except DAVError:
        as_wsgidav = None
    if as_wsgidav == target:
        return
    share, provider = environ["wsgidav.app"].resolve_provider(target)
    if provider is None:
        raise RefusedError(502, "The Destination is not a place of this drive")
    source = util.normalize_path(environ.get("SCRIPT_NAME", "") + environ["PATH_INFO"])
    if target == source:
        raise RefusedError(HTTP_FORBIDDEN, "The source and the Destination are the same")
    if util.is_child_uri(source, target):
        raise RefusedError(400, "A folder cannot be copied or moved into itself")
    environ[ENV_DESTINATION] = (DESTINATION_STAND_IN, target[len(share) :] or "/")
    parts = urlsplit(raw)
    stand_in = quote(share + DESTINATION_STAND_IN)
    environ["HTTP_DESTINATION"] = urlunsplit((parts.scheme, parts.netloc, stand_in, "", ""))


def split_lock_key(key: str) -> tuple[str, str]:
    """The owner and the path in the owner's space of a lock key (`_Node.get_ref_url`)."""
    owner, _, rel = key[len(LOCK_KEYS) + 1 :].partition("/")
    return owner, rel.strip("/")


def path_below(owner: str, rel: str, share: ShareRecord) -> str | None:
    """What follows the shared item in ``owner``'s ``rel`` (``""`` for the item itself, else
    ``/<rest>``), None when ``rel`` is not at or below ``share``'s item."""
    if owner != share.owner:
        return None
    if rel == share.path or rel.startswith(share.path + "/"):
        return rel[len(share.path) :]
    return None


def real_path(path: str, environ: dict) -> str:
    """``path`` (below a provider) with the stand-in of `stand_in_destination` replaced."""
    found = environ.get(ENV_DESTINATION)
    if found is not None:
        stand_in, real = found
        if path == stand_in or path.startswith(stand_in + "/"):
            return real.rstrip("/") + path[len(stand_in) :]
    return path


def upload_headers(spaces: Spaces, place: Place, st: os.stat_result, environ: dict) -> list:
    """What ownCloud answers a finished upload with: the new ETag, the file id, and whether
    the client's mtime was taken."""
    etag = f'"{file_etag(st)}"'
    file_id = spaces.file_id(place.owner, place.rel, st)
    headers = [
        ("OC-ETag", etag),
        ("ETag", etag),
        ("OC-FileId", spaces.oc_id(file_id)),
    ]
    if environ.get("HTTP_X_OC_MTIME"):
        headers.append(("X-OC-MTime", "accepted"))
    return headers
