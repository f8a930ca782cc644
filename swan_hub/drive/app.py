"""The drive service process: configuration, the WSGI front door that authenticates and routes
every request, and the threaded cheroot server it runs on.

This module owns the URL map (status.php, ocs/, remote.php/, public.php/, s/, the web page) and
who is let in where. WebDAV itself is WsgiDAV's; OCS, files and pages live in their own modules.
Handlers run in cheroot's worker threads, so blocking calls here block one request, never a loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlparse

from cheroot import wsgi
from jupyterhub.services.auth import HubOAuth
from traitlets import Bool, Enum, Integer, Unicode, default
from traitlets.config import Application
from wsgidav.wsgidav_app import WsgiDAVApp

from swan_hub.auth import verify_password
from swan_hub.redaction import redact, redact_handlers

from . import areas, ocs, search, web
from .dav import ENV_LINK, ENV_USER, DriveProvider, PublicLinkProvider, UploadsProvider
from .identity import Caller, HubIdentity, HubUnavailable
from .spaces import Spaces
from .state import DriveState
from .web import LINK_COOKIE, client_address

log = logging.getLogger("swan_hub.drive")

SESSION_COOKIE = "swan-drive-session"
STATE_COOKIE = "swan-drive-oauth-state"
UNSAFE_METHODS = {
    "PUT",
    "POST",
    "DELETE",
    "MKCOL",
    "MOVE",
    "COPY",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "PATCH",
}
WWW_AUTHENTICATE = ("WWW-Authenticate", 'Basic realm="SWAN drive", charset="UTF-8"')

StartResponse = Callable[..., Any]


def _json(
    start_response: StartResponse, status: int, data: Any, headers: Iterable = ()
) -> list[bytes]:
    body = json.dumps(data).encode()
    start_response(
        _status_line(status),
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(body)))]
        + list(headers),
    )
    return [body]


def _status_line(code: int) -> str:
    from http import HTTPStatus

    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Error"


def plain(
    start_response: StartResponse, status: int, text: str, headers: Iterable = ()
) -> list[bytes]:
    body = text.encode()
    start_response(
        _status_line(status),
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        + list(headers),
    )
    return [body]


def _cookies(environ: dict) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(environ.get("HTTP_COOKIE", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header means no cookies
        return {}
    return {k: v.value for k, v in jar.items()}


class TooManyAttempts(Exception):
    """Too many wrong passwords for a link lately: answered 429 with ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(retry_after)


class FailureLimit:
    """Counts wrong link passwords per key (a link, a link and a client) over a sliding
    ``window`` and tells when a key had ``limit`` of them. Memory stays bounded: at most
    ``max_keys`` keys are remembered, the least recently failed go first."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 10_000):
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[Any, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: Any, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        while times and times[0] <= now - self.window:
            times.popleft()
        if times is not None and not times:
            del self._failures[key]
            return None
        return times

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._failures)

    def wait(self, key: Any) -> int:
        """Seconds until ``key`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, key: Any) -> None:
        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.limit)
                while len(self._failures) > self.max_keys:
                    self._failures.popitem(last=False)
            self._failures.move_to_end(key)
            times.append(now)


class DriveWSGI:
    """The WSGI application of the drive behind ``base_path`` (e.g. ``/services/drive``)."""

    def __init__(self, service: DriveService, identity: HubIdentity, spaces: Spaces):
        self.service = service
        self.identity = identity
        self.spaces = spaces
        self.base_path = service.base_path.rstrip("/")
        self.shares = ocs.ShareAPI(
            spaces,
            users=identity.users,
            groups=identity.groups,
            public_url=self.public_url,
            public_links=service.public_links,
        )
        self.dav = WsgiDAVApp(self._dav_config())
        self.pages = web.Pages(self)
        # signs the cookies of password links opened in a browser; a restart forgets them
        self._link_secret = secrets.token_bytes(32)
        # wrong link passwords: a few per client and link, more per link from all clients
        self.link_client_failures = FailureLimit(service.link_password_attempts)
        self.link_failures = FailureLimit(service.link_password_attempts * 6)

    def _dav_config(self) -> dict[str, Any]:
        # Shares are keyed by their full public path (no WsgiDAV mount_path): hrefs then carry
        # the service prefix, and a MOVE's Destination resolves to the same provider.
        providers = {
            "/remote.php/dav/files": DriveProvider(self.spaces, user_in_path=True),
            "/remote.php/webdav": DriveProvider(self.spaces, user_in_path=False),
            "/remote.php/dav/uploads": UploadsProvider(self.spaces),
            "/remote.php/dav/versions": areas.VersionsProvider(self.spaces),
            "/remote.php/dav/trashbin": areas.TrashProvider(self.spaces),
            "/public.php/webdav": PublicLinkProvider(self.spaces),
        }
        return {
            "provider_mapping": {self.base_path + k: v for k, v in providers.items()},
            "middleware_stack": [
                "wsgidav.error_printer.ErrorPrinter",
                areas.OwnCloudMiddleware,
                search.SearchMiddleware,
                "wsgidav.request_resolver.RequestResolver",
            ],
            # Dead properties are kept by the resources themselves, in SQLite by file id.
            "property_manager": None,
            "lock_storage": True,
            "verbose": 1,
            "logging": {"enable": False},
            "suppress_version_info": True,
            "add_header_MS_Author_Via": True,
            "hotfixes": {"re_encode_path_info": True},
            "dir_browser": {"enable": False},
        }

    # -- URLs -------------------------------------------------------------------------------------

    def public_url(self, environ: dict, token: str) -> str:
        """The URL of the public link ``token`` as a browser reaches it."""
        if self.service.public_url:
            return f"{self.service.public_url.rstrip('/')}/s/{token}"
        return f"{self.origin(environ)}{self.base_path}/s/{token}"

    def origin(self, environ: dict) -> str:
        scheme = environ.get("HTTP_X_FORWARDED_PROTO") or environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_X_FORWARDED_HOST") or environ.get("HTTP_HOST", "127.0.0.1")
        return f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}"

    # -- authentication ---------------------------------------------------------------------------

    def caller(self, environ: dict) -> Caller | None:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        scheme = authorization.split(" ", 1)[0].lower()
        if scheme == "basic":
            name = self.identity.user_for_basic(authorization)
            return Caller(name, "token") if name else None
        if scheme in ("token", "bearer"):
            model = self.identity.user_for_token(authorization.split(" ", 1)[1].strip())
            return Caller(model["name"], "token") if model else None
        session = _cookies(environ).get(SESSION_COOKIE)
        if session:
            return self.identity.user_for_session(session)
        return None

    def _csrf_ok(self, environ: dict, caller: Caller) -> bool:
        """Cookie-authenticated writes must carry the page's request token (no cross-site forms)."""
        if caller.via != "session" or environ["REQUEST_METHOD"].upper() not in UNSAFE_METHODS:
            return True
        sent = environ.get("HTTP_REQUESTTOKEN", "")
        return bool(sent) and secrets.compare_digest(sent, caller.csrf)

    def _link_for_basic(self, environ: dict) -> Any:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if not authorization.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(authorization.split(" ", 1)[1]).decode("utf-8")
        except ValueError:
            return None
        token, _, password = decoded.partition(":")
        return self.open_link(token, password, client_address(environ))

    def link_cookie(self, share: Any) -> str:
        """The value of the cookie that keeps a password link open in a browser: a MAC of the
        link and its password's hash, so a new password closes it."""
        message = f"{share.token}:{share.password_hash}".encode()
        return hmac.new(self._link_secret, message, hashlib.sha256).hexdigest()

    def unlocked_link(self, token: str, environ: dict) -> Any:
        """The live link share of ``token`` where the request may open it: no password is
        needed, or it comes as Basic auth (user the token), or in the link's cookie."""
        share = self.open_link(token, None)
        if share is not None:
            return share
        by_basic = self._link_for_basic(environ)
        if by_basic is not None and by_basic.token == token:
            return by_basic
        sent = _cookies(environ).get(LINK_COOKIE, "")
        share = self.spaces.state.share_by_token(token) if sent else None
        if share is None or ocs.link_expired(share) or not share.password_hash:
            return None
        return share if hmac.compare_digest(sent, self.link_cookie(share)) else None

    def open_link(self, token: str, password: str | None, client: str = "") -> Any:
        """The live link share of ``token`` if ``password`` opens it (None: no password given).

        Raises TooManyAttempts while ``client``, or all clients together, sent too many wrong
        passwords for this link lately (a right one then waits too: guessing gets nowhere).
        """
        if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", token or ""):
            return None
        share = self.spaces.state.share_by_token(token)
        if share is None or ocs.link_expired(share):
            return None
        if share.password_hash:
            if not password:
                return None
            keys = ((self.link_client_failures, (token, client)), (self.link_failures, token))
            wait = max(limit.wait(key) for limit, key in keys)
            if wait:
                raise TooManyAttempts(wait)
            if not verify_password(password, json.loads(share.password_hash)):
                for limit, key in keys:
                    limit.failed(key)
                return None
        return share

    # -- routing ----------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if self.base_path:
            if path == self.base_path:
                path = "/"
            elif path.startswith(self.base_path + "/"):
                path = path[len(self.base_path) :]
            else:
                return plain(start_response, 404, "Not found")
        environ["SCRIPT_NAME"] = self.base_path
        environ["PATH_INFO"] = path
        try:
            return self._route(path, environ, start_response)
        except TooManyAttempts as e:
            return plain(
                start_response,
                429,
                f"Too many wrong passwords for this link; try again in {e.retry_after} s",
                [("Retry-After", str(e.retry_after))],
            )
        except HubUnavailable:
            # Not a 401: sync clients would take it for a wrong password and stop syncing.
            return plain(
                start_response,
                503,
                "The hub did not answer the check of your token; try again in a moment",
                [("Retry-After", "5")],
            )
        except Exception:
            log.exception("Unexpected error on %s %s", environ.get("REQUEST_METHOD"), path)
            return plain(start_response, 500, "Internal error of the drive; nothing was changed")

    def _route(self, path: str, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        if path in ("/status.php", "/ocs/v1.php/cloud/status", "/ocs/v2.php/cloud/status"):
            return _json(start_response, 200, ocs.status_document())
        if path.startswith("/ocs/"):
            return self._ocs(path, environ, start_response)
        if path.startswith("/remote.php/"):
            caller = self.caller(environ)
            if caller is None:
                return plain(
                    start_response,
                    401,
                    "Log in with your hub user name and a hub API token",
                    [WWW_AUTHENTICATE],
                )
            if not self._csrf_ok(environ, caller):
                return plain(start_response, 403, "Missing or wrong request token")
            environ[ENV_USER] = caller.name
            environ["wsgidav.auth.user_name"] = caller.name
            return self._dav(environ, start_response)
        if path.startswith("/public.php/webdav"):
            link = self._link_for_basic(environ)
            if link is None:
                return plain(
                    start_response,
                    401,
                    "Log in with the link token and its password",
                    [WWW_AUTHENTICATE],
                )
            environ[ENV_LINK] = link
            environ["wsgidav.auth.user_name"] = f"link:{link.id}"
            return self._dav(environ, start_response)
        if path == "/oauth_callback":
            return self._oauth_callback(environ, start_response)
        if path.startswith("/s/"):
            return self.pages.public(path[3:], environ, start_response)
        if path.startswith("/static/"):
            return self.pages.static(path[len("/static/") :], start_response)
        if method in ("GET", "HEAD") and (
            path in ("/", "/index.php") or path.startswith("/apps/files")
        ):
            caller = self.caller(environ)
            if caller is None or caller.via != "session":
                return self._login(environ, start_response)
            return self.pages.drive(caller, environ, start_response)
        if path == "/logout" and method == "POST":
            session = _cookies(environ).get(SESSION_COOKIE, "")
            self.identity.end_session(session)
            return plain(
                start_response,
                200,
                "Logged out",
                [("Set-Cookie", self._cookie(SESSION_COOKIE, "", 0))],
            )
        return plain(start_response, 404, "Not found")

    def _dav(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        environ["PATH_INFO"] = environ["SCRIPT_NAME"] + environ["PATH_INFO"]
        environ["SCRIPT_NAME"] = ""
        return self.dav(environ, start_response)

    def _ocs(self, path: str, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        match = re.fullmatch(r"/ocs/v([12])\.php/(.*)", path)
        version = int(match.group(1)) if match else 1
        rest = match.group(2) if match else ""
        query = environ.get("QUERY_STRING", "")
        as_json = "format=json" in query or "application/json" in environ.get("HTTP_ACCEPT", "")
        caller = self.caller(environ)
        if caller is None:
            status, doc = ocs.envelope(version, None, 997, "Current user is not logged in")
            ctype, body = ocs.render(doc, as_json)
            start_response(
                _status_line(401),
                [("Content-Type", ctype), ("Content-Length", str(len(body))), WWW_AUTHENTICATE],
            )
            return [body]
        if not self._csrf_ok(environ, caller):
            status, doc = ocs.envelope(version, None, 403, "Missing or wrong request token")
        else:
            try:
                req = ocs.Request(environ, caller.name)
                data = self._ocs_data(req, rest)
                status, doc = ocs.envelope(version, data)
            except ocs.OCSError as e:
                status, doc = ocs.envelope(version, None, e.code, e.message)
        ctype, body = ocs.render(doc, as_json)
        start_response(
            _status_line(status), [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _ocs_data(self, req: ocs.Request, rest: str) -> Any:
        if rest == "cloud/capabilities":
            return ocs.capabilities(
                self.service.public_links, chunking=self.service.advertised_chunking
            )
        if rest in ("cloud/user", f"cloud/users/{req.user}"):
            quota = self.spaces.quota_bytes
            used = self.spaces.used_bytes(req.user)
            return {
                "id": req.user,
                "display-name": req.user,
                "displayname": req.user,
                "email": None,
                "groups": self.identity.groups_of(req.user),
                "quota": {
                    "free": (quota - used) if quota is not None else -3,
                    "used": used,
                    "total": quota if quota is not None else -3,
                    "relative": round(100 * used / quota, 2) if quota else 0,
                    "quota": quota if quota is not None else -3,
                },
            }
        if rest.startswith("apps/files_sharing/api/v1/"):
            return self.shares.handle(req, rest[len("apps/files_sharing/api/v1/") :])
        raise ocs.OCSError(404, "Unknown OCS endpoint")

    # -- browser login ----------------------------------------------------------------------------

    def _cookie(self, name: str, value: str, max_age: int | None = None) -> str:
        parts = [
            f"{name}={value}",
            f"Path={self.base_path or '/'}/".replace("//", "/"),
            "HttpOnly",
            "SameSite=Lax",
        ]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts)

    def _login(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        next_url = self.base_path + environ["PATH_INFO"]
        if environ.get("QUERY_STRING"):
            next_url += "?" + environ["QUERY_STRING"]
        state, url = self.identity.start_login(next_url)
        start_response(
            "302 Found",
            [
                ("Location", url),
                ("Set-Cookie", self._cookie(STATE_COOKIE, state, 600)),
                ("Content-Length", "0"),
            ],
        )
        return [b""]

    def _oauth_callback(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        from urllib.parse import parse_qs

        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        state, code = query.get("state", ""), query.get("code", "")
        expected = _cookies(environ).get(STATE_COOKIE, "")
        if not code or not state or not secrets.compare_digest(state, expected):
            return plain(
                start_response, 400, "OAuth state mismatch: start again from the drive page"
            )
        try:
            result = self.identity.finish_login(code, state)
        except Exception:  # noqa: BLE001 - any hub failure means the login did not happen
            log.exception("OAuth code exchange with the hub failed")
            result = None
        if result is None:
            return plain(start_response, 403, "The hub did not confirm your login")
        session, next_url = result
        target = urlparse(next_url)
        if target.scheme or target.netloc or not next_url.startswith(self.base_path + "/"):
            next_url = self.base_path + "/"
        start_response(
            "302 Found",
            [
                ("Location", next_url),
                ("Set-Cookie", self._cookie(SESSION_COOKIE, session)),
                ("Set-Cookie", self._cookie(STATE_COOKIE, "", 0)),
                ("Content-Length", "0"),
            ],
        )
        return [b""]


class AccessLog:
    """WSGI wrapper that appends ``METHOD PATH STATUS`` for each request to a file (secrets
    such as ``token=…`` in a path redacted)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: str):
        self.app = app
        self.path = path
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        # PATH_INFO is the request's bytes read as latin-1 (PEP 3333): log them as sent.
        raw = environ.get("PATH_INFO", "").encode("latin-1", "replace")
        line = f"{environ.get('REQUEST_METHOD', '-')} {quote(raw, safe='/')}"

        def logged(status: str, headers: list, exc_info: Any = None) -> Any:
            with self._lock, open(self.path, "a", encoding="ascii") as f:
                f.write(f"{redact(line)} {status.split(' ', 1)[0]}\n")
            return start_response(status, headers, exc_info)

        return self.app(environ, logged)


class DriveService(Application):
    """``python -m swan_hub.drive``: the drive as a JupyterHub-managed service."""

    name = "swan-drive"
    description = "The embedded sync&share drive of SWAN (WebDAV, OCS shares, web page)."

    data_dir = Unicode(
        "swan-data",
        config=True,
        help="""
        The data directory of ``swan up``. Users' files are read from and written to
        ``<data_dir>/users/<name>/`` (the spaces the spawner mounts); the drive's own state
        (SQLite database, trash, versions, uploads in progress) lives in ``<data_dir>/drive/``,
        outside every synced tree.
        """,
    )

    ip = Unicode("127.0.0.1", config=True, help="Address to listen on (loopback only by default).")

    port = Integer(
        0,
        config=True,
        help="""
        Port to listen on. 0 takes the port of JUPYTERHUB_SERVICE_URL, which the hub sets for a
        managed service.
        """,
    )

    base_path = Unicode(
        config=True,
        help="""
        URL prefix the drive is served under, e.g. ``/services/drive``. Defaults to
        JUPYTERHUB_SERVICE_PREFIX (without its trailing slash); empty when run alone.
        """,
    )

    @default("base_path")
    def _base_path_default(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "").rstrip("/")

    public_url = Unicode(
        "",
        config=True,
        help="""
        The drive's URL as browsers reach it, e.g. ``https://swan.example.org/services/drive``,
        used in the URLs of public links. Empty: taken from each request (its Host and
        X-Forwarded-* headers), which is right only for requests that came through the proxy;
        ``swan up`` sets it, because notebook servers call the drive on its own port.
        """,
    )

    open_in_url = Unicode(
        "/hub/user-redirect/swan/open?path={path}",
        config=True,
        help="""
        Target of the "Open in SWAN" button of the web drive page, with ``{path}`` replaced by
        the URL-encoded path in the user's space. ``/hub/user-redirect/lab/tree/{path}`` opens
        the file in the user's JupyterLab directly, without the open-in page.
        """,
    )

    share_folder = Unicode(
        "Shared",
        config=True,
        help="""
        Name of the virtual folder at the root of each user's space where accepted shares
        appear. A real folder of that name at the root is hidden from WebDAV while the user has
        accepted shares, and cannot be created through the drive.
        """,
    )

    auto_accept_shares = Bool(
        False,
        config=True,
        help="""
        Whether new user and group shares appear at once in the recipients' ``Shared/`` folder
        (Nextcloud's default) or wait as pending until accepted (``POST
        /ocs/v2.php/apps/files_sharing/api/v1/shares/pending/<id>``), so nothing lands in a
        synced folder without the recipient's consent.
        """,
    )

    public_links = Bool(True, config=True, help="Allow public link shares (share type 3).")

    quota_bytes = Integer(
        0,
        config=True,
        help="""
        Per-user quota in bytes for writes through the drive (0: none). A write that would
        exceed it is refused with HTTP 507 before anything is published.
        """,
    )

    versions_max_count = Integer(
        50,
        config=True,
        help="""
        How many earlier versions of each file the drive keeps at the most (every overwrite
        keeps the replaced content as a version; the oldest go first).
        """,
    )

    versions_thin_out = Bool(
        True,
        config=True,
        help="""
        Thin out older versions as Nextcloud's version expiry does: every version of the last
        minute is kept, then one per minute for the first hour, one per hour for the first
        day, one per day for 30 days and one per week after that (the newest of each period;
        ages count from the mtime of the content a version keeps). ``versions_max_count``
        caps the count on top. Off: only the count cap applies.
        """,
    )

    upload_max_age = Integer(
        24 * 3600,
        config=True,
        help="""
        Seconds after its last part that an unfinished chunked upload (Nextcloud chunking v2
        or ownCloud chunking v1) is abandoned: its parts are deleted when the same user starts
        another upload.
        """,
    )

    advertised_chunking = Enum(
        ["v2", "v1"],
        default_value="v2",
        config=True,
        help="""
        The chunked upload the capabilities offer to clients: ``v2`` (Nextcloud's uploads
        folder, ``dav.chunking`` 1.0) or ``v1`` (ownCloud's ``<name>-chunking-<id>-<n>-<i>``
        parts, ``files.bigfilechunking`` without ``dav.chunking``, as CERNBox offers it). The
        drive accepts both either way; this only changes what clients are told to use.
        """,
    )

    watch_folders = Bool(
        True,
        config=True,
        help="""
        Keep folder ETags and sizes (and so the quota's count) in memory and learn of every
        change in the users' spaces from Linux inotify, so that a listing reads only what
        changed since the last one. Off: every request walks the folders it asks about, as is
        needed when the spaces live on a file system other machines write to (NFS, a FUSE
        mount such as EOS), whose changes inotify does not report.
        """,
    )

    folder_watch_limit = Integer(
        0,
        config=True,
        help="""
        The most folders the drive watches (0: as many as the system allows,
        ``fs.inotify.max_user_watches``, which the drive shares with every other process of
        its user). Folders beyond the limit are walked on each request that needs them.
        """,
    )

    token_cache_seconds = Integer(
        5,
        config=True,
        help="""
        How long a token's check with the hub is trusted before asking the hub again: a token
        revoked at the hub (a stopped server's, or one deleted at ``/hub/token``) is refused at
        most this long after. A refusal also ends at once the browser sessions of that token.
        Each client asks the hub at most once per this many seconds.
        """,
    )

    link_password_attempts = Integer(
        5,
        config=True,
        help="""
        Wrong passwords a client may send for one public link per minute; then the link
        answers that client 429 (Too Many Requests, with Retry-After) until the minute has
        passed. All clients together may send six times as many for one link. A right
        password does not clear the count of anyone.
        """,
    )

    threads = Integer(16, config=True, help="Worker threads of the HTTP server (one per request).")

    access_log = Unicode(
        "",
        config=True,
        help="""
        A file to which every request is appended as one line ``METHOD PATH STATUS`` (the path
        percent-encoded, without its query, secrets such as ``token=…`` redacted), for admins
        who want to see what clients do and for tests that count requests. Empty (the
        default): no access log. Paths of public links carry the link's token, so keep this
        file as private as the data directory.
        """,
    )

    aliases = {
        "data-dir": "DriveService.data_dir",
        "port": "DriveService.port",
        "ip": "DriveService.ip",
        "base-path": "DriveService.base_path",
        "open-in-url": "DriveService.open_in_url",
        "public-url": "DriveService.public_url",
        "quota-bytes": "DriveService.quota_bytes",
    }
    flags = {
        "auto-accept-shares": (
            {"DriveService": {"auto_accept_shares": True}},
            "Accept new shares for the recipients.",
        ),
    }

    def initialize(self, argv: list[str] | None = None) -> None:
        self.parse_command_line(argv)
        # Admins tune the drive (quota, share acceptance, ...) in a file kept with its data.
        config_file = os.path.join(os.path.abspath(self.data_dir), "drive", "drive_config.py")
        if os.path.isfile(config_file):
            self.load_config_file(config_file)
            self.parse_command_line(argv)

    def make_wsgi(self) -> DriveWSGI:
        data_dir = os.path.abspath(self.data_dir)
        drive_root = os.path.join(data_dir, "drive")
        state = DriveState(os.path.join(drive_root, "drive.sqlite"))
        hub_auth = HubOAuth(cache_max_age=self.token_cache_seconds)
        identity = HubIdentity(hub_auth, cache_seconds=self.token_cache_seconds)
        spaces = Spaces(
            os.path.join(data_dir, "users"),
            drive_root,
            state,
            share_folder=self.share_folder,
            auto_accept=self.auto_accept_shares,
            quota_bytes=self.quota_bytes or None,
            groups_of=identity.groups_of,
            instance_id=self._instance_id(drive_root),
            versions_max_count=self.versions_max_count,
            upload_max_age=self.upload_max_age,
            versions_thin_out=self.versions_thin_out,
            watch_folders=self.watch_folders,
            folder_watch_limit=self.folder_watch_limit,
        )
        if swept := spaces.sweep_temp_files():
            log.info("Deleted %d temp files of uploads a stopped drive left unfinished", swept)
        return DriveWSGI(self, identity, spaces)

    @staticmethod
    def _instance_id(drive_root: str) -> str:
        path = os.path.join(drive_root, "instance-id")
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except FileNotFoundError:
            value = "oc" + secrets.token_hex(5)
            with open(path, "w", encoding="ascii") as f:
                f.write(value + "\n")
            return value

    def _listen_port(self) -> int:
        if self.port:
            return self.port
        url = os.environ.get("JUPYTERHUB_SERVICE_URL", "")
        port = urlparse(url).port
        if not port:
            self.log.error("No port: set --port or run the drive as a hub-managed service")
            self.exit(2)
        return int(port)

    def start(self) -> None:
        logging.basicConfig(
            level=logging.INFO, format="[%(levelname)s %(asctime)s drive] %(message)s"
        )
        redact_handlers()
        app: Any = self.make_wsgi()
        if self.access_log:
            app = AccessLog(app, self.access_log)
        port = self._listen_port()
        server = wsgi.Server(
            (self.ip, port), app, numthreads=self.threads, server_name="swan-drive"
        )
        # Large uploads stream through; no request body size limit beyond the quota.
        server.max_request_body_size = 0
        log.info(
            "SWAN drive on http://%s:%s%s/ (data in %s)",
            self.ip,
            port,
            self.base_path,
            self.data_dir,
        )
        try:
            server.start()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> None:
    # The hub stops its services with SIGINT. Started by a hub that was a shell's background
    # job, this process inherits SIGINT ignored, and Python keeps it so: take it back, or the
    # hub waits half a minute for the drive at every stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    DriveService.launch_instance(argv=argv if argv is not None else sys.argv[1:])
