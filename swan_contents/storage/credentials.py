"""The storage credentials a user's server presents to its WebDAV and OCS storage: the JSON
contract of the hub's credentials file ($SWAN_STORAGE_CREDENTIALS), the other sources (secret
files, SWAN_WEBDAV_* variables) in one order of precedence, and re-reading a file the hub replaces.

It must never put a secret into a log line, an error message, a URL or a repr, and never read a
file on the event loop (except once at start, for the storage URL).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import os
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from .base import CredentialsUnavailable

#: The environment variable through which spawners name the credentials file (a path, never
#: the secret itself).
CREDENTIALS_ENV = "SWAN_STORAGE_CREDENTIALS"
#: The variables of the environment source (`swan up`, or a deployment without a hub file).
URL_ENV = "SWAN_WEBDAV_URL"
USER_ENV = "SWAN_WEBDAV_USER"
PASSWORD_ENV = "SWAN_WEBDAV_PASSWORD"  # noqa: S105 - a variable name, not a secret
TOKEN_ENV = "SWAN_WEBDAV_TOKEN"  # noqa: S105 - a variable name, not a secret

KINDS = ("basic", "bearer")
#: No credentials file is this large; a bigger one is a mistake, not read into memory.
MAX_FILE_SIZE = 64 * 1024
#: How long (seconds) a file that was checked is trusted before it is looked at again: one
#: check serves a whole burst of requests (a listing, an upload in parts).
RECHECK_EVERY = 1.0

T = TypeVar("T")


class InvalidCredentials(ValueError):
    """Credentials that break the contract; the message says which field, never its value."""


def _printable_token(value: str) -> bool:
    # RFC 6750 tokens are visible ASCII; anything else (a newline above all) could split the
    # Authorization header.
    return all("!" <= c <= "~" for c in value)


@dataclass(frozen=True)
class Credentials:
    """What the server sends as `Authorization`: an app password (`basic`) or a bearer token.

    `secret` is the password or the token; it is left out of the repr so that no log line or
    traceback shows it. `username` is for basic auth (empty: the storage's configured user).
    `expires_at` (seconds since the epoch) and `url` (the user's WebDAV folder) are optional.
    """

    kind: str
    secret: str = field(repr=False)
    username: str = ""
    expires_at: float | None = None
    url: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidCredentials(f'"kind" must be "basic" or "bearer", not {self.kind!r}')
        if not isinstance(self.secret, str) or not self.secret:
            what = "token" if self.kind == "bearer" else "password"
            raise InvalidCredentials(f'"{what}" must be a non-empty string')
        if self.kind == "bearer" and not _printable_token(self.secret):
            raise InvalidCredentials('"token" must be visible ASCII without spaces')
        if not isinstance(self.username, str) or ":" in self.username:
            raise InvalidCredentials('"username" must be a string without ":"')
        if self.expires_at is not None and (
            isinstance(self.expires_at, bool) or not isinstance(self.expires_at, int | float)
        ):
            raise InvalidCredentials('"expires_at" must be a number (seconds since the epoch)')
        if self.url:
            parts = urlsplit(self.url) if isinstance(self.url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidCredentials('"url" must be the http(s) URL of a WebDAV folder')
            if "@" in parts.netloc:
                raise InvalidCredentials('"url" must not hold a user name or password')

    @classmethod
    def from_json(cls, data: Any) -> Credentials:
        """Credentials from the JSON object of the contract; `InvalidCredentials` otherwise."""
        if not isinstance(data, dict):
            raise InvalidCredentials("the credentials must be a JSON object")
        kind = data.get("kind")
        secret_field = "token" if kind == "bearer" else "password"
        return cls(
            kind=kind,
            secret=data.get(secret_field),
            username=data.get("username") or "",
            expires_at=data.get("expires_at"),
            url=data.get("url") or "",
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the contract (the only place a secret is written out)."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "bearer":
            data["token"] = self.secret
        else:
            if self.username:
                data["username"] = self.username
            data["password"] = self.secret
        if self.expires_at is not None:
            data["expires_at"] = self.expires_at
        if self.url:
            data["url"] = self.url
        return data

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at

    def authorization(self, default_username: str) -> str:
        """The `Authorization` header value; basic auth needs a user name from somewhere."""
        if self.kind == "bearer":
            return f"Bearer {self.secret}"
        username = self.username or default_username
        if not username:
            raise InvalidCredentials(
                'an app password needs a user name: put "username" into the credentials or '
                "configure the storage's user"
            )
        pair = f"{username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_credentials_file(text: str) -> Credentials:
    """The credentials of a credentials file's text (the JSON contract)."""
    try:
        data = json.loads(text)
    except ValueError as e:
        # json's messages give a position, never the document
        raise InvalidCredentials(f"not JSON ({e})") from None
    return Credentials.from_json(data)


def _single_secret(kind: str) -> Callable[[str], Credentials]:
    """A parser for a file holding one secret and nothing else (a token or an app password)."""

    def parse(text: str) -> Credentials:
        return Credentials(kind=kind, secret=text.strip())

    return parse


class WatchedFile(Generic[T]):
    """A small file read again only when it was replaced or changed: (device, inode, size,
    mtime) of the open file are compared at most once per `recheck_every` seconds, in a worker
    thread, and concurrent callers share that one check.

    Writers replace the file atomically (written beside, then renamed; a Kubernetes Secret
    volume swaps a symlink), so a reader sees the old or the new file, never half of one.
    """

    def __init__(self, path: str, parse: Callable[[str], T], recheck_every: float = RECHECK_EVERY):
        self.path = path
        self.recheck_every = recheck_every
        self._parse = parse
        self._value: T | None = None
        self._signature: tuple[int, ...] | None = None
        self._checked_at = 0.0
        self._lock: asyncio.Lock | None = None

    def _fresh(self) -> bool:
        return self._value is not None and time.monotonic() - self._checked_at < self.recheck_every

    async def value(self) -> T:
        """The parsed content, re-read if the file changed; `CredentialsUnavailable` if it
        cannot be read or parsed."""
        if self._fresh():
            return self._value  # type: ignore[return-value]
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._fresh():
                await asyncio.to_thread(self.read_now)
        return self._value  # type: ignore[return-value]

    def read_now(self) -> T:
        """Check the file now, blocking (for the start of a server, or a worker thread)."""
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                if signature != self._signature or self._value is None:
                    if st.st_size > MAX_FILE_SIZE:
                        raise InvalidCredentials(f"larger than {MAX_FILE_SIZE // 1024} KiB")
                    value = self._parse(f.read(MAX_FILE_SIZE).decode("utf-8"))
                    self._value, self._signature = value, signature
        except OSError as e:
            self._forget_value()
            reason = e.strerror or type(e).__name__
            raise CredentialsUnavailable("", f"cannot read {self.path}: {reason}") from None
        except (InvalidCredentials, UnicodeDecodeError) as e:
            self._forget_value()
            raise CredentialsUnavailable("", f"{self.path} is not valid: {e}") from None
        finally:
            self._checked_at = time.monotonic()
        return self._value

    def _forget_value(self) -> None:
        self._value = None
        self._signature = None

    def invalidate(self) -> None:
        """Look at the file again at the next call (the storage refused what it held)."""
        self._checked_at = 0.0


def url_from_credentials_file(path: str) -> str:
    """The `url` of a credentials file, read once at start; "" without a file or a url."""
    if not path:
        return ""
    try:
        return WatchedFile(path, parse_credentials_file).read_now().url
    except CredentialsUnavailable:
        return ""


def _when(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds")


class StorageAuth(httpx.Auth):
    """Puts the user's storage credentials on every request of an `httpx.AsyncClient`.

    Sources, the first one configured wins (no falling through to the next when it fails):

    1. `token_file`, then `password_file`: a file holding just the secret (explicit config);
    2. `credentials_file`: the hub's JSON file (by default the path in $SWAN_STORAGE_CREDENTIALS);
    3. the variables named by `token_env`, then `password_env` (SWAN_WEBDAV_TOKEN/_PASSWORD);
    4. none: requests go without `Authorization` (a storage that needs none).

    Files are re-read when they change. When the storage answers 401, the file is looked at
    again at once and the request is sent once more if it holds new credentials (a token the
    hub has just replaced), unless the body was a stream that cannot be sent twice.
    """

    def __init__(
        self,
        *,
        username: str = "",
        token_file: str = "",
        password_file: str = "",
        credentials_file: str = "",
        token_env: str = "",
        password_env: str = "",
        log: logging.Logger | None = None,
    ):
        self.username = username
        self.token_env = token_env
        self.password_env = password_env
        self.log = log or logging.getLogger(__name__)
        self._file: WatchedFile[Credentials] | None = None
        if token_file:
            self._file = WatchedFile(token_file, _single_secret("bearer"))
            self.source = f"the token file {token_file}"
        elif password_file:
            self._file = WatchedFile(password_file, _single_secret("basic"))
            self.source = f"the password file {password_file}"
        elif credentials_file:
            self._file = WatchedFile(credentials_file, parse_credentials_file)
            self.source = f"the credentials file {credentials_file}"
        elif token_env or password_env:
            names = " or ".join(f"${n}" for n in (token_env, password_env) if n)
            self.source = f"the environment ({names})"
        else:
            self.source = "nowhere (no credentials are configured)"
        self._reported: Credentials | None = None

    async def credentials(self) -> Credentials | None:
        """The credentials to send now, None if there are none; `CredentialsUnavailable` if the
        configured source cannot be used."""
        if self._file is not None:
            return await self._file.value()
        token = os.environ.get(self.token_env) if self.token_env else None
        password = os.environ.get(self.password_env) if self.password_env else None
        try:
            if token:
                return Credentials(kind="bearer", secret=token)
            if password:
                return Credentials(kind="basic", secret=password)
        except InvalidCredentials as e:
            raise CredentialsUnavailable("", f"{self.source} is not valid: {e}") from None
        return None

    def invalidate(self) -> None:
        """Look at the file again before the next request."""
        if self._file is not None:
            self._file.invalidate()

    def _header(self, credentials: Credentials) -> str:
        try:
            return credentials.authorization(self.username)
        except InvalidCredentials as e:
            raise CredentialsUnavailable("", f"{self.source}: {e}") from None

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        credentials = await self.credentials()
        if credentials is not None:
            request.headers["Authorization"] = self._header(credentials)
        response = yield request
        if response.status_code != 401:
            return
        self.invalidate()
        # a streamed body (an upload from its spool) cannot be sent twice
        if self._file is not None and isinstance(request.stream, httpx.ByteStream):
            renewed = await self.credentials()
            if renewed is not None and renewed != credentials:
                request.headers["Authorization"] = self._header(renewed)
                credentials = renewed
                response = yield request
                if response.status_code != 401:
                    return
        self._report_refusal(request, credentials)

    def _report_refusal(self, request: httpx.Request, credentials: Credentials | None) -> None:
        # once per credentials, so that a refused token does not flood the log
        if credentials is None or credentials == self._reported:
            return
        self._reported = credentials
        expired = ""
        if credentials.expires_at is not None and credentials.expired():
            expired = f", which expired at {_when(credentials.expires_at)}"
        self.log.warning(
            "The storage at %s refused the credentials from %s%s",
            request.url.host,
            self.source,
            expired,
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("StorageAuth reads files asynchronously: use an httpx.AsyncClient")
