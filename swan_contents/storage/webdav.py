"""`WebDAVStorage`: a user's space on a WebDAV server (ownCloud, Nextcloud, oCIS, CERNBox/Reva,
the embedded drive, or any plain WebDAV server such as Apache mod_dav or WsgiDAV).

Owns the HTTP conversation with the server (httpx, pooled and with timeouts), the mapping of
storage paths to URLs and of HTTP statuses to storage errors. It must not know about Jupyter
models, and it never reads or writes the user's files anywhere but on the server (except the
local spool of an upload in parts).
"""

from __future__ import annotations

import abc
import asyncio
import base64
import calendar
import contextlib
import functools
import hashlib
import os
import secrets
import tempfile
import time
import weakref
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes, urljoin, urlsplit
from xml.etree.ElementTree import Element, fromstring  # noqa: S405 - guarded in parse_xml

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

from ..gc_pause import gc_paused
from .base import (
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
from .credentials import (
    CREDENTIALS_ENV,
    PASSWORD_ENV,
    TOKEN_ENV,
    URL_ENV,
    USER_ENV,
    StorageAuth,
    url_from_credentials_file,
)

DAV = "{DAV:}"
OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"
SABRE = "{http://sabredav.org/ns}"
_RESPONSE, _HREF, _PROPSTAT, _PROP, _STATUS = (
    f"{DAV}{t}" for t in ("response", "href", "propstat", "prop", "status")
)
_GETETAG, _LASTMODIFIED, _CONTENTLENGTH, _RESOURCETYPE, _COLLECTION = (
    f"{DAV}{t}"
    for t in ("getetag", "getlastmodified", "getcontentlength", "resourcetype", "collection")
)
_LOCKDISCOVERY, _ACTIVELOCK = f"{DAV}lockdiscovery", f"{DAV}activelock"
_OC_SIZE, _OC_PERMISSIONS, _OC_FILEID, _OC_ID, _OC_CHECKSUMS = (
    f"{OC}{t}" for t in ("size", "permissions", "fileid", "id", "checksums")
)

#: The properties of every PROPFIND: all a model needs, so a listing is one request.
PROPFIND_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
 <d:prop>
  <d:getetag/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/>
  <d:lockdiscovery/><oc:fileid/><oc:id/><oc:permissions/><oc:size/>
 </d:prop>
</d:propfind>
"""

#: The same with the checksums the server keeps of each file, for servers that say they keep them
#: (the `checksums` capability); asked only there, since elsewhere it is a "404" block per entry
CHECKSUMS_PROPFIND_BODY = PROPFIND_BODY.replace(b"<oc:size/>", b"<oc:size/><oc:checksums/>")

#: The same for a plain WebDAV server, which has no `oc:` properties: asking for them would only
#: add a "404" block per entry to every listing (Apache), twice the XML to parse
PLAIN_PROPFIND_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:">
 <d:prop>
  <d:getetag/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/>
  <d:lockdiscovery/>
 </d:prop>
</d:propfind>
"""

#: The properties of a trash listing, in both dialects (each server answers its own, 404s the rest)
TRASH_PROPFIND_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">
 <d:prop>
  <d:getcontentlength/><d:resourcetype/><d:getlastmodified/>
  <nc:trashbin-filename/><nc:trashbin-original-location/><nc:trashbin-deletion-time/>
  <oc:trashbin-original-filename/><oc:trashbin-original-location/>
  <oc:trashbin-delete-timestamp/><oc:trashbin-delete-datetime/>
 </d:prop>
</d:propfind>
"""

#: Bytes read from or sent to the spool of an upload per step (bounds the memory an upload takes).
SPOOL_BLOCK = 1024 * 1024

#: The most of an error answer's body read for the message in it (they are a few hundred bytes).
ERROR_BODY_LIMIT = 65536

#: The TUS protocol version spoken (tus.io/protocols/resumable-upload), oCIS's and Reva's.
TUS_VERSION = "1.0.0"

#: Failed PATCH requests of a TUS upload resumed (from the offset the server reports) before
#: the upload is given up; each failure that made no progress counts.
TUS_ATTEMPTS = 3

#: Reva's status for an upload whose checksum does not match (oCIS's data gateway answers it).
STATUS_CHECKSUM_MISMATCH = 460


class _ConfigurableStorageMeta(MetaHasTraits, abc.ABCMeta):
    """Lets a driver be both a `Storage` (an ABC) and a traitlets `Configurable`."""


_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}


@functools.lru_cache(maxsize=4096)
def _http_date(value: str | None) -> float | None:
    """Seconds since the epoch of an HTTP date; the usual RFC 1123 GMT form on a fast path, and
    remembered, since a listing has one per entry and many entries share one."""
    if not value:
        return None
    parts = value.split()
    if len(parts) == 6 and parts[5] == "GMT" and parts[2] in _MONTHS:
        try:
            hours, minutes, seconds = (int(p) for p in parts[4].split(":"))
            return float(
                calendar.timegm(
                    (int(parts[3]), _MONTHS[parts[2]], int(parts[1]), hours, minutes, seconds)
                )
            )
        except ValueError:
            pass
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def parse_xml(body: bytes) -> Element:
    """Parse a server's XML answer with the standard library's C parser.

    A document type declaration is refused outright: WebDAV answers never have one, and without
    one there are no entities to expand or to fetch (the expat shipped with Python also limits
    entity amplification). This is what defusedxml guards against, at the C parser's speed,
    which matters for listings of thousands of entries.
    """
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise ValueError("an XML answer with a document type declaration is refused")
    return fromstring(body)  # noqa: S314 - no DTD, so no entities (checked above)


def server_message(response: httpx.Response, body: bytes | None = None) -> str:
    """The reason a server of the ownCloud family gives in its XML error body (Sabre's
    `s:message`, e.g. why a share may not be written), or "" when it gives none. `body` is the
    start of a streamed answer's body, read by the caller (see `WebDAVStorage._error_body`)."""
    if body is None:
        try:
            body = response.content
        except httpx.ResponseNotRead:
            return ""
    if "xml" not in response.headers.get("Content-Type", "") or len(body) > ERROR_BODY_LIMIT:
        return ""
    try:
        message = parse_xml(body).findtext(f"{SABRE}message")
    except Exception:
        return ""
    return " ".join((message or "").split())[:300]


def _text(props: dict[str, Element], tag: str) -> str | None:
    """The stripped text of a property, None where it is missing or empty."""
    element = props.get(tag)
    if element is None or not element.text:
        return None
    return element.text.strip()


def normalize_etag(value: str | None) -> str:
    """One spelling per version, whichever way the server wrote it ("" for none).

    Servers differ: WsgiDAV leaves `getetag` unquoted but quotes its `ETag` header; Apache marks
    an ETag weak (`W/`) while the file is less than a second old and strong afterwards, for the
    same version. The quoted strong form is what we keep and send back in `If-Match`.
    """
    if not value:
        return ""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    if not (len(value) >= 2 and value.startswith('"') and value.endswith('"')):
        value = f'"{value}"'
    return value


class _Adler32:
    """ADLER32 with hashlib's interface (the ownCloud family's third checksum type)."""

    def __init__(self) -> None:
        self.value = 1

    def update(self, data: bytes) -> None:
        self.value = zlib.adler32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def new_checksum(algorithm: str) -> Any:
    """A hash object for a checksum type as the ownCloud family names them ("SHA1", "MD5",
    "ADLER32", "SHA256"), by hashlib's lower-case name."""
    name = algorithm.lower().replace("-", "_")
    if name == "adler32":
        return _Adler32()
    return hashlib.new(name)


def checksum_algorithm(name: str) -> str | None:
    """hashlib's name of a checksum type we can compute ("SHA1" -> "sha1"), else None."""
    name = name.strip().lower().replace("-", "_")
    if name == "adler32" or name in hashlib.algorithms_available:
        return name
    return None


def parse_checksums(text: str) -> tuple[tuple[str, str], ...]:
    """`oc:checksums` ("SHA1:ab12 MD5:cd34 ADLER32:0a1b") as ((algorithm, hex digest), ...)."""
    found = []
    for part in text.split():
        kind, _, digest = part.partition(":")
        algorithm = checksum_algorithm(kind)
        if algorithm and digest:
            found.append((algorithm, digest.lower()))
    return tuple(found)


def _tus_metadata(**values: str) -> str:
    """An Upload-Metadata header: `key base64(value)` pairs separated by commas."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}" for key, value in values.items()
    )


async def _spool_blocks(
    spool: str, start: int = 0, length: int | None = None
) -> AsyncIterator[bytes]:
    """The spool's bytes from `start` (`length` of them, or to the end), a block at a time: at
    most one block of an upload is in memory."""
    f = await asyncio.to_thread(open, spool, "rb")
    try:
        await asyncio.to_thread(f.seek, start)
        left = length
        while left is None or left > 0:
            want = SPOOL_BLOCK if left is None else min(SPOOL_BLOCK, left)
            block = await asyncio.to_thread(f.read, want)
            if not block:
                return
            if left is not None:
                left -= len(block)
            yield block
    finally:
        await asyncio.to_thread(f.close)


class Payload:
    """The bytes of one write: in memory, or in a local spool file of an upload in parts.

    It gives them as a request body as often as one is needed (a retry sends them again) and
    their checksums, each computed once (and not at all where nobody asks for one).
    """

    def __init__(
        self,
        size: int,
        *,
        data: bytes | None = None,
        spool: str | None = None,
        digests: dict[str, str] | None = None,
    ):
        self.size = size
        self.data = data
        self.spool = spool
        self._digests = dict(digests or {})

    def body(self, start: int = 0, length: int | None = None) -> bytes | AsyncIterator[bytes]:
        if self.data is not None:
            end = None if length is None else start + length
            return self.data if (start, end) == (0, None) else self.data[start:end]
        return _spool_blocks(self.spool, start, length)

    def knows(self, algorithm: str) -> bool:
        """Whether the digest in `algorithm` is at hand without reading the bytes again."""
        return algorithm in self._digests

    async def digest(self, algorithm: str) -> str:
        """The hex digest in `algorithm` (hashlib's name, or "adler32")."""
        if algorithm not in self._digests:
            self._digests[algorithm] = await asyncio.to_thread(self._compute, algorithm)
        return self._digests[algorithm]

    def _compute(self, algorithm: str) -> str:
        hasher = new_checksum(algorithm)
        if self.data is not None:
            hasher.update(self.data)
        else:
            with open(self.spool, "rb") as f:
                while block := f.read(SPOOL_BLOCK):
                    hasher.update(block)
        return hasher.hexdigest()


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

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._transport = transport
        if not self.url:
            raise StorageUnavailable(
                "",
                "no WebDAV URL is configured (WebDAVStorage.url, $SWAN_WEBDAV_URL, or the url "
                "of the credentials file)",
            )
        self._base = urlsplit(self.url)
        self._base_path = unquote(self._base.path)
        self._auth = StorageAuth.configured_by(self)
        self.log.info("WebDAV storage %s: credentials from %s", self.url, self._auth.source)
        self._client: httpx.AsyncClient | None = None
        self._capabilities: dict[str, Any] | None = None
        #: one lock per path being written conditionally; gone when no write holds it
        self._write_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        #: etags the server called weak, with when (monotonic) we last saw them so (see _put)
        self._weak_seen: dict[str, float] = {}
        #: the checksum of each spool so far, (algorithm, size hashed, hash object), kept while
        #: its parts arrive so that the last part need not read the whole spool again
        self._spool_hashes: dict[str, tuple[str, int, Any]] = {}
        #: requests sent, by method (for tests and benchmarks that check the cost of operations)
        self.requests: dict[str, int] = {}

    # -- URLs and paths -----------------------------------------------------------------------

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

    # -- HTTP ---------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                auth=self._auth,
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                limits=httpx.Limits(
                    max_connections=self.max_connections,
                    max_keepalive_connections=self.max_connections,
                ),
                verify=self.verify_tls,
                follow_redirects=False,
                transport=self._transport,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(
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

    def _error(
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

    # -- PROPFIND -----------------------------------------------------------------------------

    @property
    def propfind_body(self) -> bytes:
        """What to ask a PROPFIND for: the `oc:` properties only where the server may have them
        (an ownCloud-style URL, or a dialect configured), checksums only where it keeps them."""
        if self.instance_url is None and self.dialect in ("auto", "plain"):
            return PLAIN_PROPFIND_BODY
        if self._capabilities is not None and self._capabilities.get("checksums"):
            return CHECKSUMS_PROPFIND_BODY
        return PROPFIND_BODY

    async def _propfind(self, path: str, depth: int) -> list[Entry]:
        if self._capabilities is None and self.instance_url is not None:
            # once per server process: whether entries can carry the server's checksums
            await self.capabilities()
        response = await self._send(
            "PROPFIND",
            self.url_of(path),
            path,
            headers={"Depth": str(depth), "Content-Type": "application/xml; charset=utf-8"},
            content=self.propfind_body,
        )
        if response.status_code in (301, 302, 307, 308):
            # some servers redirect a folder's URL without the trailing slash
            response = await self._send(
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
            raise self._error(response, path)
        return self._parse_multistatus(response.content, path)

    @staticmethod
    def _responses(body: bytes, path: str) -> list[tuple[str, dict[str, Element]]]:
        """(href, found properties) of each response of a multistatus answer.

        One pass over each response's children (href, then propstats of prop and status in
        either order): listings have thousands of responses, so no search per property.
        """
        try:
            root = parse_xml(body)
        except Exception as e:
            raise StorageUnavailable(path, f"the storage sent an unreadable listing ({e})") from e
        found = []
        for response in root.iter(_RESPONSE):
            href = None
            props: dict[str, Element] = {}
            for part in response:
                if part.tag == _HREF:
                    href = part.text
                elif part.tag == _PROPSTAT:
                    prop = None
                    ok = False
                    for item in part:
                        if item.tag == _PROP:
                            prop = item
                        elif item.tag == _STATUS:
                            ok = " 200 " in f"{item.text} "
                    if ok and prop is not None:
                        for child in prop:
                            props[child.tag] = child
            if href and href.strip():
                found.append((href.strip(), props))
        return found

    def _parse_multistatus(self, body: bytes, path: str) -> list[Entry]:
        entries = []
        with gc_paused():
            for href, props in self._responses(body, path):
                entry_path = self.path_of(href)
                if entry_path is not None:
                    entries.append(self._entry(entry_path, props))
        return entries

    #: how many etags seen weak are remembered at the most (see _put)
    weak_memory = 1000

    def _version(self, raw: str | None) -> str:
        """The normalized etag of a raw one, remembering when a server last called it weak."""
        etag = normalize_etag(raw)
        if raw and raw.lstrip().startswith("W/"):
            now = time.monotonic()
            if len(self._weak_seen) >= self.weak_memory:
                # forget what no save can still ask about; if a listing of more young files
                # than that came at once, forget all (costs at most a retried save)
                horizon = now - 1.5
                self._weak_seen = {e: t for e, t in self._weak_seen.items() if t > horizon}
                if len(self._weak_seen) >= self.weak_memory // 2:
                    self._weak_seen = {}
            self._weak_seen[etag] = now
        return etag

    def _condition(self, etag: str, weak: bool) -> dict[str, str]:
        """The header that makes a write conditional on `etag`.

        Apache calls an ETag weak during its file's first second and compares If-Match
        strongly, so no If-Match matches a version that young; the WebDAV If header naming the
        weak form does. Everywhere else, If-Match.
        """
        return {"If": f"([W/{etag}])"} if weak else {"If-Match": etag}

    def _seen_weak(self, etag: str) -> bool:
        seen = self._weak_seen.get(etag)
        return seen is not None and time.monotonic() - seen < 1.5

    def _entry(self, path: str, props: dict[str, Element]) -> Entry:
        # children compared directly: Element.find() goes through ElementPath, 2 µs a call
        resourcetype = props.get(_RESOURCETYPE)
        is_dir = resourcetype is not None and any(c.tag == _COLLECTION for c in resourcetype)
        size_text = _text(props, _OC_SIZE if is_dir else _CONTENTLENGTH)
        try:
            size = int(size_text) if size_text is not None else (None if is_dir else 0)
        except ValueError:
            size = None
        mtime = _http_date(_text(props, _LASTMODIFIED)) or 0.0
        permissions = _text(props, _OC_PERMISSIONS)
        if permissions is None:
            writable = True
        elif is_dir:
            writable = "C" in permissions or "K" in permissions
        else:
            writable = "W" in permissions
        lock = props.get(_LOCKDISCOVERY)
        if lock is not None and any(c.tag == _ACTIVELOCK for c in lock):
            writable = False
        checksums_element = props.get(_OC_CHECKSUMS)
        checksums = (
            parse_checksums(" ".join(checksums_element.itertext()))
            if checksums_element is not None
            else ()
        )
        return Entry(
            name=path.rpartition("/")[2],
            path=path,
            kind="directory" if is_dir else "file",
            size=size,
            mtime=mtime,
            ctime=mtime,
            etag=self._version(_text(props, _GETETAG)),
            writable=writable,
            file_id=_text(props, _OC_FILEID) or _text(props, _OC_ID),
            checksums=checksums,
        )

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

    async def _write_failure(self, path: str, response: httpx.Response) -> StorageError:
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
        return self._error(response, path)

    # -- read and write -----------------------------------------------------------------------

    def _entry_from_headers(self, path: str, response: httpx.Response, size: int) -> Entry | None:
        etag = self._version(response.headers.get("OC-ETag") or response.headers.get("ETag"))
        if not etag:
            return None
        mtime = _http_date(response.headers.get("Last-Modified")) or time.time()
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
            return replace(entry, writable=entry.writable and stated.writable), data
        if (await self.capabilities())["dialect"] == "plain":
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
        return replace(entry, writable=entry.writable and described.writable), data

    async def _download(self, path: str) -> tuple[Entry, bytes]:
        response = await self._send("GET", self.url_of(path), path, stream=True)
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
                raise self._error(response, path, body)
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

    async def _put(
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
            as_weak = self._seen_weak(if_match) if weak is None else weak
            headers.update(self._condition(if_match, as_weak))
        if create_only:
            headers["If-None-Match"] = "*"
        if checksum:
            headers["OC-Checksum"] = checksum
        response = await self._send(
            "PUT", self.url_of(path), path, headers=headers, content=payload.body()
        )
        code = response.status_code
        if code in (200, 201, 204):
            await self._verify_answer(path, response, payload)
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
                # otherwise than we guessed (see _condition): ask once more the other way; a
                # change meanwhile still fails, with another etag
                return await self._put(
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
            raise await self._write_failure(path, response)
        raise self._error(response, path)

    async def _verify_answer(self, path: str, response: httpx.Response, payload: Payload) -> None:
        """Compare the checksum a server answers a write with (Nextcloud's `X-Hash-SHA1`,
        `-MD5`, `-SHA256`) with the payload's; a server that answers none is not asked."""
        for algorithm in ("sha1", "md5", "sha256"):
            theirs = response.headers.get(f"X-Hash-{algorithm.upper()}")
            if theirs:
                ours = await payload.digest(algorithm)
                if theirs.strip().lower() != ours:
                    raise ChecksumMismatch(
                        path,
                        f"the storage stored bytes other than those sent (their {algorithm.upper()}"
                        " differs)",
                    )
                return

    async def _verify_stored(self, entry: Entry, payload: Payload) -> None:
        """Compare what the server says it stored (size, and a checksum where it reports one)
        with the payload, after an upload that the server assembled itself."""
        if entry.size is not None and entry.size != payload.size:
            raise StorageUnavailable(
                entry.path,
                f"the storage holds {entry.size} bytes of the {payload.size} sent; upload again",
            )
        if not entry.checksums:
            return
        algorithm, theirs = next(
            ((a, d) for a, d in entry.checksums if payload.knows(a)), entry.checksums[0]
        )
        if await payload.digest(algorithm) != theirs:
            raise ChecksumMismatch(
                entry.path,
                f"the storage holds bytes other than those sent (their {algorithm.upper()} "
                "differs); upload again",
            )

    async def upload_checksum_type(self) -> str | None:
        """The checksum type sent with uploads (hashlib's name): the server's preferred one,
        where it says that it verifies checksums (the `checksums` capability of ownCloud,
        oCIS and Reva), else None."""
        types = (await self.capabilities()).get("checksums") or ()
        return types[0] if types else None

    async def _checksum_header(self, payload: Payload) -> str | None:
        """`OC-Checksum` for a payload ("SHA1:<hex>"), where the server verifies one."""
        algorithm = await self.upload_checksum_type()
        if algorithm is None:
            return None
        return f"{algorithm.upper().replace('_', '-')}:{await payload.digest(algorithm)}"

    async def write(
        self, path: str, data: bytes, *, if_match: str | None = None, create_only: bool = False
    ) -> Entry:
        """PUT, conditional with `if_match` (If-Match) or `create_only` (If-None-Match: *).
        Conditional writes to one path from this process go one at a time, so two of ours
        never race on a server whose check and write are not one step (WsgiDAV's are not)."""
        if not path:
            raise IsADirectory(path, "the root of the space is a folder")
        payload = Payload(len(data), data=data)
        checksum = await self._checksum_header(payload)
        if if_match is None and not create_only:
            return await self._put(path, payload, checksum=checksum)
        async with self._write_lock(path):
            return await self._put(
                path, payload, if_match, create_only=create_only, checksum=checksum
            )

    def _write_lock(self, path: str) -> asyncio.Lock:
        lock = self._write_locks.get(path)
        if lock is None:
            lock = self._write_locks[path] = asyncio.Lock()
        return lock

    # -- uploads in parts: a local spool, published by one streamed PUT ------------------------

    def spool_path(self, path: str) -> str:
        key = hashlib.sha256(self.url_of(path).encode()).hexdigest()[:32]
        return os.path.join(self.spool_dir, f"{key}.part")

    def sweep_leftovers(self) -> int:
        """Delete spools of uploads whose last part is older than `spool_max_age`."""
        horizon = time.time() - self.spool_max_age
        deleted = 0
        try:
            with os.scandir(self.spool_dir) as it:
                for de in it:
                    try:
                        if de.name.endswith(".part") and de.stat().st_mtime < horizon:
                            os.unlink(de.path)
                            deleted += 1
                    except OSError:
                        continue
        except OSError:
            pass
        for spool in list(self._spool_hashes):
            if not os.path.exists(spool):
                self._spool_hashes.pop(spool, None)
        return deleted

    def _append_to_spool(self, spool: str, chunk: int, data: bytes, algorithm: str | None) -> int:
        """Append a part; with `algorithm`, carry the spool's checksum forward with it."""
        if chunk == 1:
            os.makedirs(self.spool_dir, mode=0o700, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        else:
            flags = os.O_WRONLY | os.O_APPEND
        with open(os.open(spool, flags, 0o600), "wb") as f:
            before = os.fstat(f.fileno()).st_size
            f.write(data)
            f.flush()
            size = os.fstat(f.fileno()).st_size
        known = self._spool_hashes.pop(spool, None)
        if algorithm is not None:
            if chunk == 1:
                known = (algorithm, 0, new_checksum(algorithm))
            if known is not None and known[:2] == (algorithm, before):
                known[2].update(data)
                self._spool_hashes[spool] = (algorithm, size, known[2])
        return size

    def _spool_payload(self, spool: str, size: int) -> Payload:
        """The payload of a whole spool, with its checksum where it was carried along."""
        known = self._spool_hashes.pop(spool, None)
        digests = {}
        if known is not None and known[1] == size:
            digests[known[0]] = known[2].hexdigest()
        return Payload(size, spool=spool, digests=digests)

    async def _publish_in_parts(self, path: str, payload: Payload, checksum: str | None) -> None:
        """Nextcloud's chunked upload (v2): parts into uploads/<user>/<id>/, assembled on the
        server by one MOVE of `.file`. Used where the server advertises `dav.chunking` 1.0; an
        upload that fails half way is deleted on the server."""
        folder = f"{self.dav_root}uploads/{self.dav_user_segment}/swan-{secrets.token_hex(12)}/"
        target = {"Destination": self.url_of(path)}
        total = {**target, "OC-Total-Length": str(payload.size)}
        response = await self._send("MKCOL", folder, path, headers=target)
        if response.status_code not in (200, 201):
            raise self._error(response, path)
        try:
            for number, (start, length) in enumerate(self._part_ranges(payload.size), 1):
                response = await self._put_part(
                    f"{folder}{number:05d}", path, total, payload, start, length
                )
                if response.status_code not in (200, 201, 204):
                    raise self._error(response, path)
            headers = {**total, "OC-Checksum": checksum} if checksum else total
            response = await self._send("MOVE", f"{folder}.file", path, headers=headers)
            if response.status_code in (409, 412):
                raise await self._write_failure(path, response)
            if response.status_code not in (200, 201, 204):
                raise self._error(response, path)
            await self._verify_answer(path, response, payload)
        except BaseException:
            with contextlib.suppress(StorageError):
                await self._send("DELETE", folder, path)
            raise

    def _part_ranges(self, size: int) -> list[tuple[int, int]]:
        """(start, length) of each part of `size` bytes (one empty part for an empty file)."""
        return [
            (start, min(self.chunk_size, size - start))
            for start in range(0, max(size, 1), self.chunk_size)
        ]

    async def _put_part(
        self,
        url: str,
        path: str,
        headers: dict[str, str],
        payload: Payload,
        start: int,
        length: int,
    ) -> httpx.Response:
        """PUT `length` bytes of the payload from `start` to `url`, streamed."""
        return await self._send(
            "PUT",
            url,
            path,
            headers={**headers, "Content-Length": str(length)},
            content=payload.body(start, length),
        )

    def _upload_in_parts(self, caps: dict[str, Any]) -> str:
        """Which chunked upload a large upload uses (see `chunked_upload`)."""
        if self.chunked_upload != "auto":
            return self.chunked_upload
        if caps.get("tus"):
            return "tus"
        if caps["dialect"] == "nextcloud" and caps.get("chunking") == "1.0":
            return "v2"
        if caps.get("bigfilechunking") and not caps.get("chunking"):
            return "v1"
        return "none"

    async def _publish_in_v1_parts(self, path: str, payload: Payload, checksum: str | None) -> None:
        """ownCloud's chunked upload (v1): `PUT <name>-chunking-<id>-<count>-<index>` with
        `OC-Chunked: 1`; the server publishes the file when the last part arrives. The
        protocol has no way to drop the parts of an upload that fails half way: the server
        sweeps them."""
        parts = self._part_ranges(payload.size)
        transfer = secrets.randbelow(2**31)
        headers = {"OC-Chunked": "1", "OC-Total-Length": str(payload.size)}
        if checksum:
            headers["OC-Checksum"] = checksum
        for index, (start, length) in enumerate(parts):
            url = f"{self.url_of(path)}-chunking-{transfer}-{len(parts)}-{index}"
            response = await self._put_part(url, path, headers, payload, start, length)
            if response.status_code in (400, 403, 405, 409, 412):
                raise await self._write_failure(path, response)
            if response.status_code not in (200, 201, 204):
                raise self._error(response, path)
        await self._verify_answer(path, response, payload)

    async def _publish_by_tus(self, path: str, payload: Payload, checksum: str | None) -> bool:
        """A TUS upload (oCIS, Reva): created by a POST to the folder, sent by PATCH requests
        of at most the server's `max_chunk_size`, resumed from the offset a HEAD reports when
        one breaks off. False, with none of the file sent, where the server declines to create
        one or names an upload URL on another host (whom our credentials are not for)."""
        folder, name = split_path(path)
        folder_url = self.url_of(folder, folder=True)
        metadata = {"filename": name}
        if checksum:
            kind, _, digest = checksum.partition(":")
            metadata["checksum"] = f"{kind.lower()} {digest}"
        tus = {"Tus-Resumable": TUS_VERSION}
        response = await self._send(
            "POST",
            folder_url,
            path,
            headers={
                **tus,
                "Upload-Length": str(payload.size),
                "Upload-Metadata": _tus_metadata(**metadata),
                "Content-Length": "0",
            },
        )
        if response.status_code in (405, 412, 501):
            self.log.info("The storage declined a TUS upload (%d)", response.status_code)
            return False
        if response.status_code != 201 or not response.headers.get("Location"):
            raise await self._write_failure(path, response)
        location = urljoin(folder_url, response.headers["Location"])
        if urlsplit(location)[:2] != self._base[:2]:
            self.log.warning("The storage named a TUS upload URL on another host: not used")
            return False
        try:
            await self._send_tus(path, location, payload)
        except BaseException:
            # the termination extension; servers without it expire the upload themselves
            with contextlib.suppress(StorageError):
                await self._send("DELETE", location, path, headers=tus)
            raise
        return True

    async def _send_tus(self, path: str, location: str, payload: Payload) -> None:
        """PATCH the payload to a created TUS upload, resuming where the server says it is."""
        part = self.chunk_size
        if self._capabilities and self._capabilities.get("tus_max_chunk"):
            part = min(part, self._capabilities["tus_max_chunk"])
        tus = {"Tus-Resumable": TUS_VERSION}
        offset, failures = 0, 0
        while offset < payload.size:
            length = min(part, payload.size - offset)
            try:
                response = await self._send(
                    "PATCH",
                    location,
                    path,
                    headers={
                        **tus,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(length),
                    },
                    content=payload.body(offset, length),
                )
            except StorageUnavailable as e:
                broken: StorageError = e
            else:
                code = response.status_code
                if code in (200, 204):
                    reached = int(response.headers.get("Upload-Offset", offset + length))
                    if reached > offset:
                        offset, failures = reached, 0
                        continue
                    broken = StorageUnavailable(path, "the storage takes no more of the upload")
                elif code in (404, 410):
                    raise StorageUnavailable(
                        path, "the storage dropped the unfinished upload; send it again"
                    )
                elif code == 409 or code >= 500:
                    # 409: the server is at another offset than we thought; ask it
                    broken = self._error(response, path)
                else:
                    raise self._error(response, path)
            failures += 1
            if failures >= TUS_ATTEMPTS:
                raise broken
            resumed = await self._tus_offset(path, location)
            if resumed > offset:
                failures = 0
            offset = resumed

    async def _tus_offset(self, path: str, location: str) -> int:
        """How much of a TUS upload the server holds (HEAD), to resume from there."""
        response = await self._send("HEAD", location, path, headers={"Tus-Resumable": TUS_VERSION})
        if response.status_code in (404, 410):
            raise StorageUnavailable(
                path, "the storage dropped the unfinished upload; upload again"
            )
        if response.status_code not in (200, 204) or "Upload-Offset" not in response.headers:
            raise self._error(response, path)
        return int(response.headers["Upload-Offset"])

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
        checks and writes in one step; else, for an upload larger than one part, with TUS
        (oCIS) or Nextcloud's chunked upload where the server offers them, and otherwise as
        one PUT. The result is checked by size, and by checksum where the server keeps one."""
        if not path:
            raise IsADirectory(path, "the root of the space is a folder")
        spool = self.spool_path(path)
        algorithm = await self.upload_checksum_type()
        try:
            size = await asyncio.to_thread(self._append_to_spool, spool, chunk, data, algorithm)
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
            caps = await self.capabilities()
            payload = self._spool_payload(spool, size)
            checksum = await self._checksum_header(payload)
            in_parts = size > self.chunk_size
            if if_match is not None or create_only:
                async with self._write_lock(path):
                    await self._put(
                        path,
                        payload,
                        if_match,
                        create_only=create_only,
                        checksum=checksum,
                        describe=False,
                    )
            elif (
                in_parts
                and self._upload_in_parts(caps) == "tus"
                and await self._publish_by_tus(path, payload, checksum)
            ):
                pass
            elif in_parts and self._upload_in_parts(caps) == "v2":
                await self._publish_in_parts(path, payload, checksum)
            elif in_parts and self._upload_in_parts(caps) == "v1":
                await self._publish_in_v1_parts(path, payload, checksum)
            else:
                await self._put(path, payload, checksum=checksum, describe=False)
            entry = await self.stat(path)
            await self._verify_stored(entry, payload)
            return entry
        except (Conflict, AlreadyExists):
            # the upload keeps its earlier parts, so the client may send the last one again
            keep_spool = True
            await asyncio.to_thread(os.truncate, spool, size - len(data))
            raise
        finally:
            if not keep_spool:
                await asyncio.to_thread(_unlink_quietly, spool)

    # -- folders, moves, copies, deletes ------------------------------------------------------

    async def mkdir(self, path: str) -> Entry:
        if not path:
            raise AlreadyExists(path)
        response = await self._send("MKCOL", self.url_of(path, folder=True), path)
        code = response.status_code
        if code in (200, 201):
            return await self.stat(path)
        if code == 405:
            raise AlreadyExists(path)
        if code in (400, 403, 409):
            raise await self._write_failure(path, response)
        raise self._error(response, path)

    async def _transfer(self, method: str, src: str, dst: str) -> Entry:
        if not src or not dst:
            raise InvalidPath(src or dst, "the root of the space cannot be moved or replaced")
        if (dst + "/").startswith(src + "/"):
            raise InvalidPath(dst, "a folder cannot be moved or copied into itself")
        headers = {"Destination": self.url_of(dst), "Overwrite": "F"}
        if method == "COPY":
            headers["Depth"] = "infinity"
        response = await self._send(method, self.url_of(src), src, headers=headers)
        code = response.status_code
        if code in (201, 204):
            return await self.stat(dst)
        if code == 412:
            raise AlreadyExists(dst)
        if code == 404:
            raise NotFound(src)
        if code in (400, 403, 409):
            raise await self._write_failure(dst, response)
        raise self._error(response, src)

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
        response = await self._send("DELETE", self.url_of(path), path)
        if response.status_code not in (200, 204):
            raise self._error(response, path)

    # -- the server's versions and trash (Nextcloud; ownCloud, oCIS and Reva) -----------------

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

    async def _versions_url(self, path: str) -> str:
        entry = await self.stat(path)
        if entry.is_dir:
            raise IsADirectory(path, "folders have no versions")
        if not entry.file_id:
            raise StorageUnavailable(path, "the storage gives this file no id to ask versions of")
        file_id = quote(entry.file_id, safe="")
        if (await self.capabilities())["dialect"] == "nextcloud":
            return f"{self.dav_root}versions/{self.dav_user_segment}/versions/{file_id}/"
        return f"{self.dav_root}meta/{file_id}/v/"

    async def _propfind_collection(
        self, url: str, path: str, body: bytes
    ) -> list[tuple[str, dict[str, Element]]]:
        """(name, properties) of each member of the collection at `url` (not itself)."""
        response = await self._send(
            "PROPFIND",
            url,
            path,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            content=body,
        )
        if response.status_code != 207:
            raise self._error(response, path)
        own = unquote(urlsplit(url).path).rstrip("/")
        members = []
        for href, props in self._responses(response.content, path):
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
        response = await self._send("GET", url, path)
        if response.status_code != 200:
            raise self._error(response, path)
        return response.content

    async def restore_version(self, path: str, name: str) -> None:
        """Make a version current, on the server (which keeps the replaced one as a version)."""
        url = await self._versions_url(path) + quote(name, safe="")
        if (await self.capabilities())["dialect"] == "nextcloud":
            method = "MOVE"
            destination = f"{self.dav_root}versions/{self.dav_user_segment}/restore/target"
        else:
            method, destination = "COPY", self.url_of(path)
        response = await self._send(method, url, path, headers={"Destination": destination})
        if response.status_code not in (200, 201, 204):
            raise self._error(response, path)

    def _trash_url(self, dialect: str) -> str:
        if dialect == "nextcloud":
            return f"{self.dav_root}trashbin/{self.dav_user_segment}/trash/"
        return f"{self.dav_root}trash-bin/{self.dav_user_segment}/"

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
        dialect = (await self.capabilities())["dialect"]
        items = []
        members = await self._propfind_collection(self._trash_url(dialect), "", TRASH_PROPFIND_BODY)
        for key, props in members:

            def text(tag: str, props=props) -> str | None:
                element = props.get(tag)
                return element.text.strip() if element is not None and element.text else None

            location = text(f"{NC}trashbin-original-location") or text(
                f"{OC}trashbin-original-location"
            )
            path = self._space_path(location or "")
            if not path:
                continue
            deleted = text(f"{NC}trashbin-deletion-time") or text(f"{OC}trashbin-delete-timestamp")
            if deleted is None:
                deleted_at = _http_date(text(f"{OC}trashbin-delete-datetime")) or 0.0
            else:
                deleted_at = float(deleted)
            entry = self._entry(path, props)
            items.append(
                TrashItem(
                    id=key,
                    name=split_path(path)[1],
                    path=path,
                    deleted=deleted_at,
                    size=entry.size,
                    type="directory" if entry.is_dir else "file",
                )
            )
        return sorted(items, key=lambda i: -i.deleted)

    async def restore_trash(self, item_id: str, target: str | None = None) -> Entry:
        """Put a trashed entry back where it was (ownCloud/Reva: or at `target`)."""
        if not item_id or "/" in item_id:
            raise NotFound("", f"no trash entry {item_id!r}")
        dialect = (await self.capabilities())["dialect"]
        original = {i.id: i.path for i in await self.list_trash()}.get(item_id)
        if original is None:
            raise NotFound("", f"no trash entry {item_id!r}")
        url = self._trash_url(dialect) + quote(item_id, safe="")
        if dialect == "nextcloud":
            if target not in (None, original):
                raise InvalidPath(target, "Nextcloud restores an entry to where it was only")
            destination = f"{self.dav_root}trashbin/{self.dav_user_segment}/restore/"
            destination += quote(item_id, safe="")
            target = original
        else:
            target = original if target is None else target
            destination = self.url_of(target)
        response = await self._send(
            "MOVE", url, target, headers={"Destination": destination, "Overwrite": "F"}
        )
        if response.status_code == 412:
            raise AlreadyExists(target)
        if response.status_code not in (200, 201, 204):
            raise self._error(response, target)
        return await self.stat(target)

    # -- what the server offers ---------------------------------------------------------------

    async def capabilities(self) -> dict[str, Any]:
        """What the server says of itself, asked once: `{"dialect": ..., "chunking": ...,
        "checksums": [types it verifies, preferred first], "tus": bool, ...}`.

        Plain WebDAV servers have no status.php: they are `plain`, and nothing more is asked.
        A configured dialect skips status.php; the capabilities are still asked where the URL
        has an instance. A server that cannot be reached is asked again next time.
        """
        if self._capabilities is not None:
            return self._capabilities
        found: dict[str, Any] = {"dialect": "plain", "chunking": None}
        root = self.instance_url
        if self.dialect != "auto":
            found["dialect"] = self.dialect
        if root is not None and self.dialect != "plain":
            found.update(await self._ask_instance(root))
        self._capabilities = found
        return found

    async def reports_checksums(self) -> bool:
        """Whether the server keeps checksums of its files and reports them (ownCloud 10,
        oCIS and Reva compute them for every upload, and advertise the `checksums`
        capability); Nextcloud keeps only those that clients sent."""
        return bool((await self.capabilities()).get("checksums"))

    async def keeps_versions(self) -> bool:
        """Whether the server keeps versions of each file (Nextcloud, ownCloud, Reva)."""
        caps = await self.capabilities()
        return caps["dialect"] != "plain" and caps.get("versioning", True)

    async def has_trash(self) -> bool:
        """Whether deleted files go to a trash bin on the server."""
        caps = await self.capabilities()
        return caps["dialect"] != "plain" and caps.get("undelete", True)

    async def _ask_instance(self, root: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        try:
            if self.dialect == "auto":
                status = await self._send("GET", urljoin(root, "status.php"), "")
                info = status.json() if status.status_code == 200 else {}
                product = str(info.get("productname") or info.get("product") or "").lower()
                found["dialect"] = "nextcloud" if "nextcloud" in product else "owncloud"
                found["version"] = info.get("versionstring") or info.get("version")
            caps = await self._send(
                "GET",
                urljoin(root, "ocs/v1.php/cloud/capabilities?format=json"),
                "",
                headers={"OCS-APIRequest": "true"},
            )
            data = caps.json().get("ocs", {}).get("data", {}) if caps.status_code == 200 else {}
            found.update(self._read_capabilities(data.get("capabilities", {})))
        except StorageUnavailable:
            raise
        except (ValueError, AttributeError, TypeError, StorageError) as e:
            self.log.info("The storage at %s tells nothing of itself (%s): plain WebDAV", root, e)
            found = {"dialect": "plain"} if self.dialect == "auto" else {}
        return found

    @staticmethod
    def _read_capabilities(capabilities: dict[str, Any]) -> dict[str, Any]:
        """The features we use, from an OCS capabilities document (ownCloud 10 and Nextcloud
        spell `checksums` in camel case, oCIS and Reva in snake case)."""
        found: dict[str, Any] = {"chunking": capabilities.get("dav", {}).get("chunking")}
        files = capabilities.get("files", {})
        found["bigfilechunking"] = bool(files.get("bigfilechunking", False))
        found["versioning"] = bool(files.get("versioning", True))
        found["undelete"] = bool(files.get("undelete", True))
        sums = capabilities.get("checksums") or {}
        preferred = sums.get("preferredUploadType") or sums.get("preferred_upload_type") or ""
        types = [preferred, *(sums.get("supportedTypes") or sums.get("supported_types") or [])]
        usable = [a for a in map(checksum_algorithm, (str(t) for t in types if t)) if a]
        found["checksums"] = list(dict.fromkeys(usable))
        tus = files.get("tus_support") or {}
        versions = str(tus.get("version", "")).split(",")
        found["tus"] = isinstance(tus, dict) and TUS_VERSION in [v.strip() for v in versions]
        if found["tus"]:
            found["tus_max_chunk"] = int(tus.get("max_chunk_size") or 0) or None
        return found


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
