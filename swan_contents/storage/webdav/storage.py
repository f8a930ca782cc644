"""`WebDAVStorage`: a user's space on a WebDAV server (ownCloud, Nextcloud, oCIS, CERNBox/Reva,
the embedded drive, or any plain WebDAV server such as Apache mod_dav or WsgiDAV).

Owns the storage operations over HTTP (httpx, pooled and with timeouts), the mapping of storage
paths to URLs and of HTTP statuses to storage errors. Multistatus parsing, ETags, checksums,
uploads in parts, capabilities and each dialect's versions and trash live in the modules beside
it. It must not know about Jupyter models, and it never reads or writes the user's files anywhere
but on the server (except the local spool of an upload in parts).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import tempfile
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes, urljoin, urlsplit

import httpx
from traitlets import (
    Bool,
    Enum,
    Float,
    Int,
    MetaHasTraits,
    TraitError,
    Unicode,
    default,
    validate,
)
from traitlets.config import LoggingConfigurable

from ..base import (
    AlreadyExists,
    ChecksumMismatch,
    Conflict,
    DirectoryNotEmpty,
    Entry,
    InvalidPath,
    IsADirectory,
    Locked,
    NotADirectory,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    Refused,
    Storage,
    StorageError,
    StorageTimeout,
    StorageUnavailable,
    TrashItem,
    split_path,
)
from ..connection import StorageConnection
from ..credentials import (
    CREDENTIALS_ENV,
    PASSWORD_ENV,
    TOKEN_ENV,
    URL_ENV,
    USER_ENV,
    url_from_credentials_file,
)
from .capabilities import ServerCapabilities
from .checksums import SPOOL_BLOCK, Payload, verify_answer, verify_stored
from .dialects import OwncloudLayout, layout_of, original_location, trash_item
from .etags import ETags
from .multistatus import (
    CHECKSUMS_PROPFIND_BODY,
    ERROR_BODY_LIMIT,
    PLAIN_PROPFIND_BODY,
    PROPFIND_BODY,
    TRASH_PROPFIND_BODY,
    Properties,
    entries_in_steps,
    entries_of,
    entry_of,
    http_date,
    responses,
    server_message,
)
from .uploads import Spool, Uploader, choose_uploader

#: Reva's status for an upload whose checksum does not match (oCIS's data gateway answers it).
STATUS_CHECKSUM_MISMATCH = 460


class _ConfigurableStorageMeta(MetaHasTraits, abc.ABCMeta):
    """Lets a driver be both a `Storage` (an ABC) and a traitlets `Configurable`."""


class WebDAVStorage(Storage, LoggingConfigurable, metaclass=_ConfigurableStorageMeta):
    """A user's space at a WebDAV URL, e.g. `https://cloud.example.org/remote.php/dav/files/alice/`.

    Select it with `c.SwanContentsManager.storage_class = "swan_contents.storage.WebDAVStorage"`
    and configure it with `c.WebDAVStorage.*`.
    """

    kind = "webdav"

    url = Unicode(
        config=True,
        help="""The WebDAV URL of the user's space (a folder), e.g.
        https://cloud.example.org/remote.php/dav/files/alice/ for ownCloud, Nextcloud, oCIS and
        CERNBox, or the URL of a folder on a plain WebDAV server. Defaults to the
        SWAN_WEBDAV_URL environment variable, else the `url` of the credentials file (read once,
        at start).""",
    )

    @default("url")
    def _default_url(self) -> str:
        return os.environ.get(URL_ENV) or url_from_credentials_file(self.credentials_file)

    @validate("url")
    def _validate_url(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        parts = urlsplit(value)
        if "@" in parts.netloc:
            # said without the value, which holds a secret
            raise TraitError(
                "WebDAVStorage.url must not hold a user name or password: give them as "
                "credentials (docs/storage.md, Credentials)"
            )
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TraitError(f"WebDAVStorage.url must be an http(s) URL of a folder, not {value!r}")
        return value if value.endswith("/") else value + "/"

    username = Unicode(
        config=True,
        help="""The user name for basic auth (with an app password) when the credentials do not
        name one. Defaults to the user in a /remote.php/dav/files/<user>/ URL, else
        SWAN_WEBDAV_USER.""",
    )

    @default("username")
    def _default_username(self) -> str:
        return self.dav_user or os.environ.get(USER_ENV, "")

    token_file = Unicode(
        config=True,
        help="""A file holding just a bearer token (e.g. an OIDC access token written by a token
        refresher), re-read when it changes. The first source of credentials: set, it wins over
        every other (see docs/storage.md, "Credentials").""",
    )
    password_file = Unicode(
        config=True,
        help="""A file holding just the (app) password for basic auth, re-read when it changes.
        Used when token_file is unset.""",
    )
    credentials_file = Unicode(
        config=True,
        help="""The credentials file the hub writes for this server (JSON: `kind` "bearer" with
        `token`, or "basic" with `password` and optionally `username`; optional `expires_at`
        and `url`), re-read when the hub replaces it. Used when neither token_file nor
        password_file is set. Defaults to the path in SWAN_STORAGE_CREDENTIALS.""",
    )

    @default("credentials_file")
    def _default_credentials_file(self) -> str:
        return os.environ.get(CREDENTIALS_ENV, "")

    token_env = Unicode(
        TOKEN_ENV,
        config=True,
        help="""The environment variable holding a bearer token, used when no file source
        (token_file, password_file, credentials_file) is set.""",
    )
    password_env = Unicode(
        PASSWORD_ENV,
        config=True,
        help="""The environment variable holding the (app) password, used when no file source is
        set and the token_env variable is empty.""",
    )
    timeout = Float(
        60.0,
        config=True,
        help="Seconds to wait for the server to answer one read or write step before giving up.",
    )
    connect_timeout = Float(
        5.0, config=True, help="Seconds to wait for a connection to the server."
    )
    max_connections = Int(
        16, config=True, help="Connections to the server kept open and reused at the most."
    )
    verify_tls = Bool(
        True, config=True, help="Check the server's TLS certificate (turn off only for tests)."
    )
    dialect = Enum(
        ["auto", "plain", "nextcloud", "owncloud"],
        default_value="auto",
        config=True,
        help="""Which server family to speak to for versions, trash and chunked uploads. `auto`
        asks status.php and the capabilities once, when first needed; `plain` uses none of
        them (a plain WebDAV server).""",
    )
    spool_dir = Unicode(
        config=True,
        help="""A local folder where uploads in parts are gathered until their last part, then
        sent to the server in one streamed PUT. Defaults to a private folder in the system's
        temporary directory.""",
    )

    @default("spool_dir")
    def _default_spool_dir(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"swan-uploads-{os.getuid()}")

    spool_max_age = Float(
        6 * 3600.0,
        config=True,
        help="""Seconds after its last part arrived that an unfinished upload is abandoned and
        its spool deleted (checked whenever an upload starts).""",
    )

    chunk_size = Int(
        10 * 1024 * 1024,
        config=True,
        help="""Bytes per part when a large upload is sent in parts: with TUS to servers that
        advertise it (oCIS; at most their max_chunk_size), else with Nextcloud's chunked
        upload (v2) to servers that advertise that (parts must be 5 MB or more), else with
        ownCloud's chunked upload (v1) to servers that offer only that. An upload no larger
        than one part is one PUT.""",
    )

    chunked_upload = Enum(
        ["auto", "tus", "v2", "v1", "none"],
        default_value="auto",
        config=True,
        help="""How an upload larger than `chunk_size` is sent. `auto` follows the server's
        capabilities as ownCloud's desktop client does: TUS where `files.tus_support` names
        it (oCIS), Nextcloud's chunking v2 where a Nextcloud advertises `dav.chunking` 1.0,
        ownCloud's chunking v1 (`<name>-chunking-<id>-<count>-<index>` with `OC-Chunked`)
        where `files.bigfilechunking` is on and `dav.chunking` absent (CERNBox, Reva), else
        one streamed PUT. `tus`, `v2` or `v1` forces that one (e.g. for a CERNBox that
        advertises more than it speaks); `none` always sends one PUT.""",
    )

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
        **kwargs: Any,
    ):
        """`auth` replaces the configured credentials (a share of another site opens with
        its own secret); it names itself in the log by its `source`."""
        super().__init__(**kwargs)
        #: URL, user, credential sources, TLS and timeouts, as resolved (`StorageConnection`)
        self.connection = StorageConnection.of(self)
        self._given_auth = auth
        self._open(transport)

    def _open(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._transport = transport
        if not self.url:
            raise StorageUnavailable(
                "",
                "no WebDAV URL is configured (WebDAVStorage.url, $SWAN_WEBDAV_URL, or the url "
                "of the credentials file)",
            )
        self._base = urlsplit(self.url)
        self._base_path = unquote(self._base.path)
        self._auth = self._given_auth or self.connection.auth(self.log)
        source = getattr(self._auth, "source", "the caller")
        self.log.info("WebDAV storage %s: credentials from %s", self.url, source)
        self._client: httpx.AsyncClient | None = None
        self._capabilities: ServerCapabilities | None = None
        self._uploader: Uploader | None = None
        #: one lock per path being written conditionally; gone when no write holds it
        self._write_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.etags = ETags()
        self.spool = Spool(self)
        #: requests sent, by method (for tests and benchmarks that check the cost of operations)
        self.requests: dict[str, int] = {}

    # -- URLs and paths -----------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self.url

    @property
    def dav_user(self) -> str:
        """The user in a `…/remote.php/dav/files/<user>/` URL, else ""."""
        marker = "/remote.php/dav/files/"
        path = unquote(urlsplit(self.url).path)
        if marker not in path:
            return ""
        return path.split(marker, 1)[1].split("/", 1)[0]

    @property
    def space_prefix(self) -> str:
        """Where the space lies inside the user's files (`work` for …/files/alice/work/)."""
        marker = "/remote.php/dav/files/"
        path = unquote(self._base.path)
        if marker not in path:
            return ""
        return path.split(marker, 1)[1].partition("/")[2].strip("/")

    @property
    def instance_url(self) -> str | None:
        """The URL of the ownCloud/Nextcloud instance (where status.php is), if the URL has one."""
        path = self._base.path
        if "/remote.php/" not in path:
            return None
        root = path.split("/remote.php/", 1)[0] + "/"
        return f"{self._base.scheme}://{self._base.netloc}{root}"

    @property
    def dav_root(self) -> str:
        """`…/remote.php/dav/`, under which versions, trash and uploads live."""
        root = self.instance_url
        if root is None:
            raise StorageUnavailable("", "this WebDAV URL has no /remote.php/dav/ endpoints")
        return urljoin(root, "remote.php/dav/")

    @property
    def dav_user_segment(self) -> str:
        return quote(self.dav_user or self.username, safe="")

    def url_of(self, path: str, *, folder: bool = False) -> str:
        """The URL of a storage path: each segment percent-encoded as UTF-8 (spaces, `#`, `%`)."""
        encoded = quote(path, safe="/")
        if folder and encoded:
            encoded += "/"
        return urljoin(self.url, encoded)

    def path_of(self, href: str) -> str | None:
        """The storage path of an href in a PROPFIND answer, or None if it is outside the space."""
        if not href.startswith("/"):
            href = urlsplit(href).path
        # what unquote() does, at a third of its cost (a listing asks this for every entry)
        decoded = unquote_to_bytes(href).decode("utf-8", "replace") if "%" in href else href
        if not decoded.startswith(self._base_path):
            if decoded.rstrip("/") == self._base_path.rstrip("/"):
                return ""
            return None
        return decoded[len(self._base_path) :].strip("/")

    def spool_path(self, path: str) -> str:
        """The local spool of an upload in parts to `path`."""
        return self.spool.path_for(self.url_of(path))

    # -- HTTP ---------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                auth=self._auth,
                timeout=self.connection.timeouts(),
                limits=httpx.Limits(
                    max_connections=self.max_connections,
                    max_keepalive_connections=self.max_connections,
                ),
                verify=self.connection.verify_tls,
                follow_redirects=False,
                transport=self._transport,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(
        self,
        method: str,
        url: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request; transport failures become `StorageUnavailable`, nothing else is judged."""
        self.requests[method] = self.requests.get(method, 0) + 1
        request = self.client.build_request(method, url, headers=headers, content=content)
        try:
            response = await self.client.send(request, stream=stream)
        except httpx.TimeoutException as e:
            raise StorageTimeout(path, f"the storage did not answer in time ({e!r})") from e
        except httpx.TransportError as e:
            raise StorageUnavailable(path, f"cannot reach the storage ({e!r})") from e
        return response

    def error_of(
        self, response: httpx.Response, path: str, body: bytes | None = None
    ) -> StorageError:
        """The storage error for a failed answer whose meaning does not depend on the method,
        with the server's own message where its error body has one (`body`: see
        `_error_body`)."""
        code = response.status_code
        said = server_message(response, body)
        if code == 401:
            return PermissionDenied(
                path, "the storage did not accept the credentials; log in again", said=said
            )
        if code == 403:
            # the message says why, so it is the detail; said only once
            return PermissionDenied(path, said or "the storage refused the operation")
        if code == 404:
            return NotFound(path, said=said)
        if code == 423:
            return Locked(path, said=said)
        if code == 507:
            return QuotaExceeded(path, said=said)
        if code == STATUS_CHECKSUM_MISMATCH:
            return ChecksumMismatch(
                path, "the storage received other bytes than were sent and refused them", said=said
            )
        if code == 400 and said:
            return Refused(path, said=said)
        if code in (400, 414):
            return InvalidPath(path, f"the storage refused the name ({code})")
        if code >= 500:
            return StorageUnavailable(path, f"the storage answered {code}", said=said)
        return StorageUnavailable(path, f"unexpected answer {code} from the storage", said=said)

    @staticmethod
    async def _error_body(response: httpx.Response) -> bytes:
        """The start of a streamed error answer's body, enough for the message in it."""
        body = b""
        with contextlib.suppress(httpx.HTTPError):
            async for block in response.aiter_bytes():
                body += block
                if len(body) > ERROR_BODY_LIMIT:
                    break
        return body

    async def write_failure(self, path: str, response: httpx.Response) -> StorageError:
        """Why a write to `path` was refused with a status servers use for several causes
        (400, 403, 405, 409): a missing parent folder, a parent that is a file, a folder in the
        way, or else the status's own meaning. Costs a PROPFIND or two, on failures only."""
        parent = split_path(path)[0]
        said = server_message(response)
        try:
            parent_entry = await self.stat(parent)
        except (NotFound, NotADirectory):
            return NotFound(path, f"the folder /{parent} does not exist", said=said)
        if not parent_entry.is_dir:
            return NotADirectory(path, f"/{parent} is a file, not a folder", said=said)
        try:
            if (await self.stat(path)).is_dir:
                return IsADirectory(path, "a folder of that name exists", said=said)
        except NotFound:
            pass
        return self.error_of(response, path)

    # -- PROPFIND -----------------------------------------------------------------------------

    @property
    def propfind_body(self) -> bytes:
        """What to ask a PROPFIND for: the `oc:` properties only where the server may have them
        (an ownCloud-style URL, or a dialect configured), checksums only where it keeps them."""
        if self.instance_url is None and self.dialect in ("auto", "plain"):
            return PLAIN_PROPFIND_BODY
        if self._capabilities is not None and self._capabilities.checksums:
            return CHECKSUMS_PROPFIND_BODY
        return PROPFIND_BODY

    async def _propfind(self, path: str, depth: int) -> list[Entry]:
        if self._capabilities is None and self.instance_url is not None:
            # once per server process: whether entries can carry the server's checksums
            await self.capabilities()
        response = await self.send(
            "PROPFIND",
            self.url_of(path),
            path,
            headers={"Depth": str(depth), "Content-Type": "application/xml; charset=utf-8"},
            content=self.propfind_body,
        )
        if response.status_code in (301, 302, 307, 308):
            # some servers redirect a folder's URL without the trailing slash
            response = await self.send(
                "PROPFIND",
                self.url_of(path, folder=True),
                path,
                headers={"Depth": str(depth), "Content-Type": "application/xml; charset=utf-8"},
                content=self.propfind_body,
            )
        if response.status_code == 409:
            raise NotFound(
                path, "a folder in the path does not exist", said=server_message(response)
            )
        if response.status_code != 207:
            raise self.error_of(response, path)
        return await entries_in_steps(response.content, path, self.path_of, self.etags.version)

    def parse_multistatus(self, body: bytes, path: str) -> list[Entry]:
        """The entries inside the space of a PROPFIND answer about `path`."""
        return entries_of(body, path, self.path_of, self.etags.version)

    def _entry(self, path: str, props: Properties) -> Entry:
        return entry_of(path, props, self.etags.version)

    async def stat(self, path: str, *, children: bool = False) -> Entry:
        entries = await self._propfind(path, 1 if children else 0)
        own = [e for e in entries if e.path == path]
        if not own:
            raise StorageUnavailable(path, "the storage's answer does not describe the path")
        entry = own[0]
        if children and entry.is_dir:
            kids = tuple(e for e in entries if e.path != path and split_path(e.path)[0] == path)
            object.__setattr__(entry, "children", kids)
        return entry

    # -- read and write -----------------------------------------------------------------------

    def _entry_from_headers(self, path: str, response: httpx.Response, size: int) -> Entry | None:
        etag = self.etags.version(response.headers.get("OC-ETag") or response.headers.get("ETag"))
        if not etag:
            return None
        mtime = http_date(response.headers.get("Last-Modified")) or time.time()
        return Entry(
            name=split_path(path)[1],
            path=path,
            kind="file",
            size=size,
            mtime=mtime,
            ctime=mtime,
            etag=etag,
            writable=True,
            file_id=response.headers.get("OC-FileId"),
        )

    async def read(self, path: str, *, stated: Entry | None = None) -> tuple[Entry, bytes]:
        if not path:
            raise IsADirectory(path, "the root of the space is a folder")
        if stated is not None:
            entry, data = await self._download(path)
            return _described_by(entry, stated), data
        if (await self.capabilities()).dialect == "plain":
            return await self._download(path)
        # On a server that shares (the ownCloud family) a file may be read-only, a share given
        # to view, and a GET does not say so: its permissions are asked beside it, in parallel.
        got, described = await asyncio.gather(
            self._download(path), self.stat(path), return_exceptions=True
        )
        if isinstance(got, BaseException):
            raise got
        if isinstance(described, BaseException):
            raise described
        entry, data = got
        return _described_by(entry, described), data

    async def _download(self, path: str) -> tuple[Entry, bytes]:
        response = await self.send("GET", self.url_of(path), path, stream=True)
        try:
            if response.status_code in (301, 302, 307, 308):
                raise IsADirectory(path)
            if response.status_code != 200:
                body = await self._error_body(response)
                if response.status_code in (403, 404, 405, 409):
                    # servers refuse a GET of a folder in different ways: ask what it is
                    entry = await self.stat(path)
                    if entry.is_dir:
                        raise IsADirectory(path)
                raise self.error_of(response, path, body)
            chunks = [chunk async for chunk in response.aiter_bytes(SPOOL_BLOCK)]
        except httpx.TransportError as e:
            raise StorageUnavailable(path, f"the download broke off ({e!r})") from e
        finally:
            await response.aclose()
        data = b"".join(chunks)
        entry = self._entry_from_headers(path, response, len(data))
        if entry is None or response.headers.get("Content-Type", "").startswith("text/html"):
            # no version header (or a server's folder page): ask the storage what this is
            entry = await self.stat(path)
            if entry.is_dir:
                raise IsADirectory(path)
        return entry, data

    async def put_payload(
        self,
        path: str,
        payload: Payload,
        if_match: str | None = None,
        *,
        create_only: bool = False,
        checksum: str | None = None,
        weak: bool | None = None,
        describe: bool = True,
    ) -> Entry | None:
        """PUT the payload, conditional on `if_match` or on nothing being there
        (`create_only`), with `checksum` ("SHA1:<hex>") for the server to verify; the new
        entry (None without `describe`: the caller stats itself)."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(payload.size),
        }
        if if_match is not None:
            as_weak = self.etags.seen_weak(if_match) if weak is None else weak
            headers.update(self.etags.condition(if_match, as_weak))
        if create_only:
            headers["If-None-Match"] = "*"
        if checksum:
            headers["OC-Checksum"] = checksum
        response = await self.send(
            "PUT", self.url_of(path), path, headers=headers, content=payload.body()
        )
        code = response.status_code
        if code in (200, 201, 204):
            await verify_answer(path, response, payload)
            entry = self._entry_from_headers(path, response, payload.size)
            if entry is None and describe:
                entry = await self.stat(path)
            return entry
        if code == 412 and create_only:
            try:
                found = await self.stat(path)
            except NotFound:
                raise AlreadyExists(path, said=server_message(response)) from None
            if found.is_dir:
                raise IsADirectory(path, "a folder of that name exists")
            raise AlreadyExists(path, current_etag=found.etag or None)
        if code == 412:
            try:
                current = (await self.stat(path)).etag or None
            except NotFound:
                current = None
            if current == if_match and weak is None:
                # the version asked for is the stored one, but the server judged its weakness
                # otherwise than we guessed (see ETags.condition): ask once more the other way; a
                # change meanwhile still fails, with another etag
                return await self.put_payload(
                    path,
                    payload,
                    if_match,
                    checksum=checksum,
                    weak=not as_weak,
                    describe=describe,
                )
            raise Conflict(path, current, said=server_message(response))
        if checksum and code == 400 and "checksum" in server_message(response).lower():
            raise ChecksumMismatch(
                path,
                "the storage received other bytes than were sent and refused them; nothing "
                "was changed",
                said=server_message(response),
            )
        if code in (400, 403, 405, 409):
            raise await self.write_failure(path, response)
        raise self.error_of(response, path)

    async def upload_checksum_type(self) -> str | None:
        """The checksum type sent with uploads (hashlib's name): the server's preferred one,
        where it says that it verifies checksums (the `checksums` capability of ownCloud,
        oCIS and Reva), else None."""
        types = (await self.capabilities()).checksums
        return types[0] if types else None

    async def write(
        self, path: str, data: bytes, *, if_match: str | None = None, create_only: bool = False
    ) -> Entry:
        """PUT, conditional with `if_match` (If-Match) or `create_only` (If-None-Match: *).
        Conditional writes to one path from this process go one at a time, so two of ours
        never race on a server whose check and write are not one step (WsgiDAV's are not)."""
        if not path:
            raise IsADirectory(path, "the root of the space is a folder")
        payload = Payload(len(data), data=data)
        checksum = await payload.header(await self.upload_checksum_type())
        if if_match is None and not create_only:
            return await self.put_payload(path, payload, checksum=checksum)
        async with self._write_lock(path):
            return await self.put_payload(
                path, payload, if_match, create_only=create_only, checksum=checksum
            )

    def _write_lock(self, path: str) -> asyncio.Lock:
        lock = self._write_locks.get(path)
        if lock is None:
            lock = self._write_locks[path] = asyncio.Lock()
        return lock

    # -- uploads in parts: a local spool, sent on by the uploader (uploads.py) -----------------

    def sweep_leftovers(self) -> int:
        """Delete spools of uploads whose last part is older than `spool_max_age`."""
        return self.spool.sweep()

    async def uploader(self) -> Uploader:
        """How a whole file goes to this server, chosen once from its capabilities."""
        if self._uploader is None:
            self._uploader = choose_uploader(self, await self.capabilities())
        return self._uploader

    async def write_chunk(
        self,
        path: str,
        chunk: int,
        data: bytes,
        *,
        if_match: str | None = None,
        create_only: bool = False,
    ) -> Entry:
        """Parts gather in a local spool; the last publishes it: conditionally (`if_match`,
        `create_only`) as one streamed PUT with If-Match or If-None-Match, where the server
        checks and writes in one step; else through the uploader (TUS, Nextcloud's or
        ownCloud's chunked upload where the server offers them and the file is larger than one
        part, otherwise one PUT). The result is checked by size, and by checksum where the
        server keeps one."""
        if not path:
            raise IsADirectory(path, "the root of the space is a folder")
        spool = self.spool_path(path)
        algorithm = await self.upload_checksum_type()
        try:
            size = await asyncio.to_thread(self.spool.append, spool, chunk, data, algorithm)
        except FileNotFoundError:
            raise NotFound(
                path, "this upload was not started (its first part is missing); upload it again"
            ) from None
        except OSError as e:
            raise StorageUnavailable(path, f"cannot keep the upload on this server: {e}") from e
        if chunk != -1:
            return Entry(
                name=split_path(path)[1],
                path=path,
                kind="file",
                size=size,
                mtime=time.time(),
                ctime=time.time(),
                etag="",
                writable=True,
            )
        keep_spool = False
        try:
            payload = self.spool.payload(spool, size)
            checksum = await payload.header(algorithm)
            if if_match is not None or create_only:
                async with self._write_lock(path):
                    await self.put_payload(
                        path,
                        payload,
                        if_match,
                        create_only=create_only,
                        checksum=checksum,
                        describe=False,
                    )
            else:
                await (await self.uploader()).publish(path, payload, checksum)
            entry = await self.stat(path)
            await verify_stored(entry, payload)
            return entry
        except (Conflict, AlreadyExists):
            # the upload keeps its earlier parts, so the client may send the last one again
            keep_spool = True
            await asyncio.to_thread(os.truncate, spool, size - len(data))
            raise
        finally:
            if not keep_spool:
                await asyncio.to_thread(Spool.remove, spool)

    async def drop_upload(self, path: str) -> None:
        """Remove the local spool of an unfinished upload to `path`; the server saw none of it."""
        await asyncio.to_thread(Spool.remove, self.spool_path(path))

    # -- folders, moves, copies, deletes ------------------------------------------------------

    async def mkdir(self, path: str) -> Entry:
        if not path:
            raise AlreadyExists(path)
        response = await self.send("MKCOL", self.url_of(path, folder=True), path)
        code = response.status_code
        if code in (200, 201):
            return await self.stat(path)
        if code == 405:
            raise AlreadyExists(path)
        if code in (400, 403, 409):
            raise await self.write_failure(path, response)
        raise self.error_of(response, path)

    async def _transfer(self, method: str, src: str, dst: str) -> Entry:
        if not src or not dst:
            raise InvalidPath(src or dst, "the root of the space cannot be moved or replaced")
        if (dst + "/").startswith(src + "/"):
            raise InvalidPath(dst, "a folder cannot be moved or copied into itself")
        headers = {"Destination": self.url_of(dst), "Overwrite": "F"}
        if method == "COPY":
            headers["Depth"] = "infinity"
        response = await self.send(method, self.url_of(src), src, headers=headers)
        code = response.status_code
        if code in (201, 204):
            return await self.stat(dst)
        if code == 412:
            raise AlreadyExists(dst)
        if code == 404:
            raise NotFound(src)
        if code in (400, 403, 409):
            raise await self.write_failure(dst, response)
        raise self.error_of(response, src)

    async def move(self, src: str, dst: str) -> Entry:
        return await self._transfer("MOVE", src, dst)

    async def copy(self, src: str, dst: str) -> Entry:
        return await self._transfer("COPY", src, dst)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        if not path:
            raise InvalidPath(path, "the root of the space cannot be deleted")
        if not recursive:
            entry = await self.stat(path, children=True)
            if entry.is_dir and entry.children:
                raise DirectoryNotEmpty(path)
        response = await self.send("DELETE", self.url_of(path), path)
        if response.status_code not in (200, 204):
            raise self.error_of(response, path)

    # -- the server's versions and trash (each dialect's endpoints: dialects.py) --------------

    async def _layout(self) -> OwncloudLayout:
        dialect = (await self.capabilities()).dialect
        return layout_of(dialect, self.dav_root, self.dav_user_segment)

    async def versions(self) -> WebDAVStorage | None:
        return self if await self.keeps_versions() else None

    async def trash_bin(self) -> WebDAVStorage | None:
        return self if await self.has_trash() else None

    async def _versions_url(self, path: str) -> str:
        entry = await self.stat(path)
        if entry.is_dir:
            raise IsADirectory(path, "folders have no versions")
        if not entry.file_id:
            raise StorageUnavailable(path, "the storage gives this file no id to ask versions of")
        return (await self._layout()).versions_url(entry.file_id)

    async def _propfind_collection(
        self, url: str, path: str, body: bytes
    ) -> list[tuple[str, Properties]]:
        """(name, properties) of each member of the collection at `url` (not itself)."""
        response = await self.send(
            "PROPFIND",
            url,
            path,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            content=body,
        )
        if response.status_code != 207:
            raise self.error_of(response, path)
        own = unquote(urlsplit(url).path).rstrip("/")
        members = []
        for href, props in responses(response.content, path):
            href_path = unquote(urlsplit(href).path).rstrip("/")
            if href_path != own and href_path.startswith(own + "/"):
                members.append((href_path[len(own) + 1 :], props))
        return members

    async def list_versions(self, path: str) -> list[Entry]:
        """The server's earlier versions of the file at `path` (name = the server's version key)."""
        url = await self._versions_url(path)
        members = await self._propfind_collection(url, path, PROPFIND_BODY)
        return [replace(self._entry(path, props), name=name) for name, props in members]

    async def read_version(self, path: str, name: str) -> bytes:
        url = await self._versions_url(path) + quote(name, safe="")
        response = await self.send("GET", url, path)
        if response.status_code != 200:
            raise self.error_of(response, path)
        return response.content

    async def restore_version(self, path: str, name: str) -> None:
        """Make a version current, on the server (which keeps the replaced one as a version)."""
        url = await self._versions_url(path) + quote(name, safe="")
        method, destination = (await self._layout()).version_restore(url, self.url_of(path))
        response = await self.send(method, url, path, headers={"Destination": destination})
        if response.status_code not in (200, 201, 204):
            raise self.error_of(response, path)

    def _space_path(self, location: str) -> str | None:
        """The path in the space of a location in the user's files, None if outside it."""
        location = location.strip("/")
        prefix = self.space_prefix
        if not prefix:
            return location
        if location.startswith(prefix + "/"):
            return location[len(prefix) + 1 :]
        return None

    async def list_trash(self) -> list[TrashItem]:
        """What the server's trash bin holds of this space, newest first."""
        layout = await self._layout()
        items = []
        for key, props in await self._propfind_collection(
            layout.trash_url, "", TRASH_PROPFIND_BODY
        ):
            path = self._space_path(original_location(props) or "")
            if path:
                items.append(trash_item(key, props, path))
        return sorted(items, key=lambda i: -i.deleted)

    async def restore_trash(self, item_id: str, target: str | None = None) -> Entry:
        """Put a trashed entry back where it was (ownCloud/Reva: or at `target`)."""
        if not item_id or "/" in item_id:
            raise NotFound("", f"no trash entry {item_id!r}")
        layout = await self._layout()
        original = {i.id: i.path for i in await self.list_trash()}.get(item_id)
        if original is None:
            raise NotFound("", f"no trash entry {item_id!r}")
        url = layout.trash_url + quote(item_id, safe="")
        target, destination = layout.trash_restore(item_id, original, target, self.url_of)
        response = await self.send(
            "MOVE", url, target, headers={"Destination": destination, "Overwrite": "F"}
        )
        if response.status_code == 412:
            raise AlreadyExists(target)
        if response.status_code not in (200, 201, 204):
            raise self.error_of(response, target)
        return await self.stat(target)

    # -- what the server offers (capabilities.py) ---------------------------------------------

    async def capabilities(self) -> ServerCapabilities:
        """What the server says of itself, asked once (`ServerCapabilities`).

        Plain WebDAV servers have no status.php: they are `plain`, and nothing more is asked.
        A configured dialect skips status.php; the capabilities are still asked where the URL
        has an instance. A server that cannot be reached is asked again next time.
        """
        if self._capabilities is not None:
            return self._capabilities
        found = ServerCapabilities(dialect="plain" if self.dialect == "auto" else self.dialect)
        root = self.instance_url
        if root is not None and self.dialect != "plain":
            found = await self._ask_instance(root, found)
        self._capabilities = found
        return found

    async def reports_checksums(self) -> bool:
        """Whether the server keeps checksums of its files and reports them (ownCloud 10,
        oCIS and Reva compute them for every upload, and advertise the `checksums`
        capability); Nextcloud keeps only those that clients sent."""
        return bool((await self.capabilities()).checksums)

    async def keeps_versions(self) -> bool:
        """Whether the server keeps versions of each file (Nextcloud, ownCloud, Reva)."""
        return (await self.capabilities()).keeps_versions

    async def has_trash(self) -> bool:
        """Whether deleted files go to a trash bin on the server."""
        return (await self.capabilities()).has_trash

    async def _ask_instance(self, root: str, configured: ServerCapabilities) -> ServerCapabilities:
        found = configured
        try:
            if self.dialect == "auto":
                status = await self.send("GET", urljoin(root, "status.php"), "")
                found = found.with_status(status.json() if status.status_code == 200 else {})
            caps = await self.send(
                "GET",
                urljoin(root, "ocs/v1.php/cloud/capabilities?format=json"),
                "",
                headers={"OCS-APIRequest": "true"},
            )
            data = caps.json().get("ocs", {}).get("data", {}) if caps.status_code == 200 else {}
            return found.with_features(data.get("capabilities", {}))
        except StorageUnavailable:
            raise
        except (ValueError, AttributeError, TypeError, StorageError) as e:
            self.log.info("The storage at %s tells nothing of itself (%s): plain WebDAV", root, e)
            return configured


class WebDAVStorageSettings(WebDAVStorage):
    """`c.WebDAVStorage.*` resolved as the driver resolves them, without a driver: for the
    other clients of the same storage (the OCS share backend), so that one configuration,
    read in one place, serves them all (`StorageConnection`)."""

    def _open(self, transport: httpx.AsyncBaseTransport | None) -> None:
        """Nothing to open: only the settings are wanted."""


def _described_by(read: Entry, stated: Entry) -> Entry:
    """The entry of a GET, with what only a PROPFIND says: its permissions."""
    return replace(read, writable=read.writable and stated.writable, shareable=stated.shareable)
