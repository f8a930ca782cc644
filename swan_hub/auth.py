"""Demo accounts for the embedded default (`swan up`): fixed users with generated passwords.

This module owns the demo credentials file (scrypt hashes, mode 0600) and the authenticator
that checks logins against it. It must not be used in production: replace it by configuring
any JupyterHub authenticator (``swan up -f jupyterhub_config.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

CREDENTIALS_FILE = "demo-users.json"
PASSWORDS_FILE = "demo-passwords.txt"

# scrypt cost: ~16 MiB and a few tens of milliseconds per check, enough for a demo hub.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> dict[str, Any]:
    """Return a JSON-serialisable salted scrypt record of ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return {"scheme": "scrypt", **_SCRYPT, "salt": salt.hex(), "hash": digest.hex()}


def verify_password(password: str, record: dict[str, Any]) -> bool:
    """Whether ``password`` matches a record made by :func:`hash_password`."""
    if record.get("scheme") != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(),
        salt=bytes.fromhex(record["salt"]),
        dklen=32,
        n=int(record["n"]),
        r=int(record["r"]),
        p=int(record["p"]),
    )
    return hmac.compare_digest(digest, bytes.fromhex(record["hash"]))


def _write_private(path: str, text: str) -> None:
    # Create with 0600 from the start (never world-readable, even briefly), then swap in.
    tmp = f"{path}.tmp-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_plain_passwords(path: str) -> dict[str, str]:
    """Read ``name password`` lines of a demo passwords file (missing file: empty)."""
    passwords: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    name, _, password = line.partition(" ")
                    passwords[name] = password.strip()
    except FileNotFoundError:
        pass
    return passwords


def ensure_demo_credentials(
    hub_dir: str, users: Iterable[str], reset: bool = False
) -> dict[str, str | None]:
    """Make the demo credentials of ``users`` exist under ``hub_dir``; return their passwords.

    A user keeps the password of earlier runs (so bookmarks and sync clients keep working)
    unless ``reset`` is true; a new user gets a random one. Hashes go to ``demo-users.json``,
    plain passwords to ``demo-passwords.txt`` (both 0600) for scripts and for printing at
    start. Deleting the plain file does not change the passwords; the value is then None.
    Users no longer listed are removed from both files and can no longer log in.
    """
    users = list(dict.fromkeys(users))
    credentials_path = os.path.join(hub_dir, CREDENTIALS_FILE)
    passwords_path = os.path.join(hub_dir, PASSWORDS_FILE)
    records: dict[str, Any] = {}
    if not reset:
        try:
            with open(credentials_path, encoding="utf-8") as f:
                records = json.load(f).get("users", {})
        except FileNotFoundError:
            pass
    known = {} if reset else read_plain_passwords(passwords_path)

    passwords: dict[str, str | None] = {}
    new_records: dict[str, Any] = {}
    for name in users:
        if name in records:
            new_records[name] = records[name]
            plain = known.get(name)
            passwords[name] = plain if plain and verify_password(plain, records[name]) else None
        else:
            plain = secrets.token_urlsafe(12)
            new_records[name] = hash_password(plain)
            passwords[name] = plain

    os.makedirs(hub_dir, mode=0o700, exist_ok=True)
    _write_private(credentials_path, json.dumps({"users": new_records}, indent=1) + "\n")
    lines = ["# swan up demo users: name password (delete this file once noted)"]
    lines += [f"{name} {plain}" for name, plain in passwords.items() if plain]
    _write_private(passwords_path, "\n".join(lines) + "\n")
    return passwords


class SwanDemoAuthenticator(Authenticator):
    """Username/password login for the demo users created by ``swan up``.

    Only the users in ``credentials_file`` may log in, each with their generated password;
    every other name is refused. Passwords are checked against salted scrypt hashes with a
    constant-time comparison. Meant for the embedded default on one machine; production
    deployments configure a real authenticator (OAuth/OIDC with the storage, LDAP, ...).
    """

    credentials_file = Unicode(
        "",
        config=True,
        help="""
        Path of the JSON file with the demo users' password hashes, written by ``swan up``
        (``<data-dir>/hub/demo-users.json``, mode 0600). It is read at every login, so users
        added or removed by a restart of ``swan up`` take effect without stale state.
        """,
    )

    @default("allowed_users")
    def _allowed_users_default(self) -> set[str]:
        # JupyterHub >= 5 lets nobody in without allow config: the demo users are the allow list
        # (and JupyterHub creates them at start, so API logins work before a browser login).
        return set(self._load_records())

    @default("allow_existing_users")
    def _allow_existing_users_default(self) -> bool:
        # Users of an earlier run with a different --users list must not come back in.
        return False

    def _load_records(self) -> dict[str, Any]:
        if not self.credentials_file:
            self.log.error("SwanDemoAuthenticator.credentials_file is not set: nobody can log in")
            return {}
        try:
            with open(self.credentials_file, encoding="utf-8") as f:
                return dict(json.load(f).get("users", {}))
        except FileNotFoundError:
            self.log.error(
                "Demo credentials file %s is missing: nobody can log in", self.credentials_file
            )
            return {}

    def _check(self, username: str, password: str) -> bool:
        record = self._load_records().get(username)
        if record is None:
            # Spend the same work as for a known user so timing does not reveal user names.
            hashlib.scrypt(password.encode(), salt=bytes(16), dklen=32, **_SCRYPT)
            return False
        return verify_password(password, record)

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> str | None:
        username = self.normalize_username(str(data.get("username", "")))
        password = str(data.get("password", ""))
        if not username or not password:
            return None
        ok = await asyncio.get_running_loop().run_in_executor(None, self._check, username, password)
        if not ok:
            self.log.warning("Failed demo login for %r", username)
            return None
        return username
