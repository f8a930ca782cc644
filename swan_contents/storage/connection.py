"""`StorageConnection`: where the user's storage is and how to reach it (URL, user, credential
sources, TLS, timeouts), resolved once from `c.WebDAVStorage.*` and handed to every client of
that storage: the WebDAV driver and the OCS share backend.

It must not read a secret (the `StorageAuth` it makes does, when a request needs one) nor
send a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import httpx

from .credentials import PASSWORD_ENV, TOKEN_ENV, StorageAuth

#: The names of the settings, as `WebDAVStorage` and `OCSShareBackend` spell them.
FIELDS = (
    "url",
    "username",
    "token_file",
    "password_file",
    "credentials_file",
    "token_env",
    "password_env",
    "timeout",
    "connect_timeout",
    "verify_tls",
)


@dataclass(frozen=True)
class StorageConnection:
    """The resolved connection settings of a storage (see `WebDAVStorage` for each one).
    `url` is the one its client addresses: the WebDAV folder for the driver, the server's base
    URL for the share backend."""

    url: str = ""
    username: str = ""
    token_file: str = ""
    password_file: str = ""
    credentials_file: str = ""
    token_env: str = TOKEN_ENV
    password_env: str = PASSWORD_ENV
    timeout: float = 60.0
    connect_timeout: float = 5.0
    verify_tls: bool = True

    @classmethod
    def of(cls, settings: Any) -> StorageConnection:
        """The settings a configurable resolved (its trait values of these names)."""
        return cls().overridden_by(settings)

    def overridden_by(self, settings: Any) -> StorageConnection:
        """These settings, with those that `settings` (a configurable) has of its own."""
        return replace(self, **{n: getattr(settings, n) for n in FIELDS if hasattr(settings, n)})

    def auth(self, log: logging.Logger | None = None) -> StorageAuth:
        """The credentials of requests to the storage, from the sources these name."""
        return StorageAuth(
            username=self.username,
            token_file=self.token_file,
            password_file=self.password_file,
            credentials_file=self.credentials_file,
            token_env=self.token_env,
            password_env=self.password_env,
            log=log,
        )

    def timeouts(self, timeout: float | None = None) -> httpx.Timeout:
        """How long to wait for the storage: `timeout` (else this connection's) per step,
        and the connect timeout for a connection."""
        step = self.timeout if timeout is None else timeout
        return httpx.Timeout(step, connect=self.connect_timeout)
