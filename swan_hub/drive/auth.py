"""Who a request of the drive comes from: hub tokens and Basic auth, the browser session and
its OAuth sign-in with the hub, public links and their passwords (with a limit on wrong ones).

It decides who a caller is and whether a link opens; it must not route requests or read files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, urlparse

from swan_hub.auth import verify_password

from . import ocs
from .identity import Caller, HubIdentity
from .responses import StartResponse, client_address, cookies_of, plain, redirect, set_cookie
from .spaces import Spaces
from .state import SHARE_FEDERATED

log = logging.getLogger("swan_hub.drive")

SESSION_COOKIE = "swan-drive-session"
STATE_COOKIE = "swan-drive-oauth-state"
#: the cookie of a password link opened in a browser (its path is the link's own)
LINK_COOKIE = "swan_link"
#: how long a browser keeps a password link open (seconds)
LINK_COOKIE_SECONDS = 12 * 3600
#: how long a sign-in with the hub may take (seconds)
LOGIN_SECONDS = 600
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
LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")


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


class DriveAuth:
    """The drive's answers to "who is this?" for a request under ``base_path``."""

    def __init__(
        self, identity: HubIdentity, spaces: Spaces, base_path: str, link_password_attempts: int
    ):
        self.identity = identity
        self.spaces = spaces
        self.base_path = base_path
        # signs the cookies of password links opened in a browser; a restart forgets them
        self._link_secret = secrets.token_bytes(32)
        # wrong link passwords: a few per client and link, more per link from all clients
        self.link_client_failures = FailureLimit(link_password_attempts)
        self.link_failures = FailureLimit(link_password_attempts * 6)

    # -- hub users --------------------------------------------------------------------------------

    def caller(self, environ: dict) -> Caller | None:
        """The hub user of a token (Basic, ``token``, ``Bearer``) or of the browser session."""
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        scheme = authorization.split(" ", 1)[0].lower()
        if scheme == "basic":
            name = self.identity.user_for_basic(authorization)
            return Caller(name, "token") if name else None
        if scheme in ("token", "bearer"):
            model = self.identity.user_for_token(authorization.split(" ", 1)[1].strip())
            return Caller(model["name"], "token") if model else None
        session = cookies_of(environ).get(SESSION_COOKIE)
        if session:
            return self.identity.user_for_session(session)
        return None

    def csrf_ok(self, environ: dict, caller: Caller) -> bool:
        """Cookie-authenticated writes must carry the page's request token (no cross-site forms)."""
        if caller.via != "session" or environ["REQUEST_METHOD"].upper() not in UNSAFE_METHODS:
            return True
        sent = environ.get("HTTP_REQUESTTOKEN", "")
        return bool(sent) and secrets.compare_digest(sent, caller.csrf)

    # -- browser sign-in ---------------------------------------------------------------------------

    def _cookie(self, name: str, value: str, max_age: int | None = None) -> tuple[str, str]:
        return set_cookie(name, value, f"{self.base_path}/", max_age)

    def login(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """Send the browser to the hub's OAuth page, to come back to the page it asked for."""
        next_url = self.base_path + environ["PATH_INFO"]
        if environ.get("QUERY_STRING"):
            next_url += "?" + environ["QUERY_STRING"]
        state, url = self.identity.start_login(next_url)
        return redirect(
            start_response, 302, url, [self._cookie(STATE_COOKIE, state, LOGIN_SECONDS)]
        )

    def oauth_callback(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """The hub's answer to a sign-in: a session cookie, and back to the page asked for."""
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        state, code = query.get("state", ""), query.get("code", "")
        expected = cookies_of(environ).get(STATE_COOKIE, "")
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
        cookies = [self._cookie(SESSION_COOKIE, session), self._cookie(STATE_COOKIE, "", 0)]
        return redirect(start_response, 302, next_url, cookies)

    def logout(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """End the browser's session: sent by the page with its request token, so that another
        site's form cannot sign a user out."""
        caller = self.caller(environ)
        if caller is not None and not self.csrf_ok(environ, caller):
            return plain(start_response, 403, "Missing or wrong request token")
        self.identity.end_session(cookies_of(environ).get(SESSION_COOKIE, ""))
        return plain(start_response, 200, "Logged out", [self._cookie(SESSION_COOKIE, "", 0)])

    # -- public links -----------------------------------------------------------------------------

    def link_for_basic(self, environ: dict) -> Any:
        """The link share of Basic auth whose user is a link's token and password its password."""
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if not authorization.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(authorization.split(" ", 1)[1]).decode("utf-8")
        except ValueError:
            return None
        token, _, password = decoded.partition(":")
        return self.open_link(token, password, client_address(environ))

    def federated_share(self, environ: dict) -> Any:
        """The share a user of another site reaches with its shared secret (Open Cloud Mesh):
        ``Authorization: Bearer <secret>`` (OCM 1.1), or Basic auth with the secret as user
        name and no password (the legacy form, Nextcloud's). A deleted or expired share, or
        one its recipient declined, opens nothing."""
        scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        secret = ""
        if scheme.lower() == "bearer":
            secret = value.strip()
        elif scheme.lower() == "basic":
            try:
                secret, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            except ValueError:
                return None
            if password:
                return None
        if not LINK_TOKEN.fullmatch(secret):
            return None
        share = self.spaces.state.share_by_token(secret, SHARE_FEDERATED)
        if share is None or ocs.link_expired(share):
            return None
        return share

    def shared_app(self, app_token: str) -> Any:
        """The federated share whose view-only page (OCM ``webapp``) ``app_token`` names; None
        once it is revoked, declined or expired, as for its secret."""
        if not LINK_TOKEN.fullmatch(app_token or ""):
            return None
        share = self.spaces.state.share_by_app_token(app_token)
        if share is None or ocs.link_expired(share):
            return None
        return share

    def link_cookie(self, share: Any) -> str:
        """The value of the cookie that keeps a password link open in a browser: a MAC of the
        link and its password's hash, so a new password closes it."""
        message = f"{share.token}:{share.password_hash}".encode()
        return hmac.new(self._link_secret, message, hashlib.sha256).hexdigest()

    def link_cookie_header(self, share: Any, link_path: str) -> tuple[str, str]:
        """The ``Set-Cookie`` that opens the password link ``share`` (at ``link_path``) here."""
        return set_cookie(LINK_COOKIE, self.link_cookie(share), link_path, LINK_COOKIE_SECONDS)

    def unlocked_link(self, token: str, environ: dict) -> Any:
        """The live link share of ``token`` where the request may open it: no password is
        needed, or it comes as Basic auth (user the token), or in the link's cookie."""
        share = self.open_link(token, None)
        if share is not None:
            return share
        by_basic = self.link_for_basic(environ)
        if by_basic is not None and by_basic.token == token:
            return by_basic
        sent = cookies_of(environ).get(LINK_COOKIE, "")
        share = self.spaces.state.share_by_token(token) if sent else None
        if share is None or ocs.link_expired(share) or not share.password_hash:
            return None
        return share if hmac.compare_digest(sent, self.link_cookie(share)) else None

    def open_link(self, token: str, password: str | None, client: str = "") -> Any:
        """The live link share of ``token`` if ``password`` opens it (None: no password given).

        Raises TooManyAttempts while ``client``, or all clients together, sent too many wrong
        passwords for this link lately (a right one then waits too: guessing gets nowhere).
        """
        if not LINK_TOKEN.fullmatch(token or ""):
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
