"""Who is calling the drive: JupyterHub API tokens (as app passwords or bearer tokens), browser
sessions made by JupyterHub OAuth, and the hub's users and groups.

This module owns every call to the hub's API and the short caches in front of them. It must never
log or store a token in clear (sessions map a random id to the token in memory only).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from jupyterhub.services.auth import HubOAuth

log = logging.getLogger("swan_hub.drive")


@dataclass
class Caller:
    """An authenticated caller: a hub user, and how they proved it."""

    name: str
    via: str  # "token" (basic auth or header) or "session" (browser cookie)
    csrf: str = ""
    groups: list[str] = field(default_factory=list)


class _TTLCache:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            return item[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[0] >= now}
            self._items[key] = (time.monotonic() + self.ttl, value)


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class HubIdentity:
    """Checks tokens with the hub (``GET /hub/api/user``) and reads its users and groups.

    ``hub_auth`` comes from the service environment JupyterHub gives a managed service
    (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_PREFIX, ...).
    """

    def __init__(self, hub_auth: HubOAuth, *, cache_seconds: float = 60.0):
        self.hub_auth = hub_auth
        self._tokens = _TTLCache(cache_seconds)
        self._directory = _TTLCache(min(cache_seconds, 30.0))
        self._sessions: dict[str, tuple[str, str]] = {}
        self._client = httpx.Client(timeout=15)

    # -- tokens -----------------------------------------------------------------------------------

    def user_for_token(self, token: str) -> dict[str, Any] | None:
        """The hub's model of the token's user if the token may use this service, else None."""
        if not token:
            return None
        key = _token_key(token)
        cached = self._tokens.get(key)
        if cached is not None:
            return cached or None
        try:
            r = self._client.get(
                f"{self.hub_auth.api_url}/user", headers={"Authorization": f"token {token}"}
            )
        except httpx.HTTPError as e:
            log.error("The hub API did not answer a token check: %s", type(e).__name__)
            return None
        model: dict[str, Any] = {}
        if r.status_code == 200:
            data = r.json()
            allowed = self.hub_auth.check_scopes(self.hub_auth.access_scopes, data)
            if data.get("kind", "user") == "user" and allowed:
                model = data
        self._tokens.put(key, model)
        return model or None

    def user_for_basic(self, authorization: str) -> str | None:
        """The user name of a ``Basic`` header whose password is the user's hub token."""
        try:
            decoded = base64.b64decode(authorization.split(" ", 1)[1].strip()).decode("utf-8")
        except (ValueError, IndexError):
            return None
        username, _, password = decoded.partition(":")
        model = self.user_for_token(password)
        if model is None or model.get("name") != username.strip().lower():
            return None
        return model["name"]

    # -- browser sessions -------------------------------------------------------------------------

    def start_login(self, next_url: str) -> tuple[str, str]:
        """(state, URL of the hub's authorize page) for a browser login."""
        state = self.hub_auth.generate_state(next_url=next_url)
        return state, f"{self.hub_auth.login_url}&state={state}"

    def finish_login(self, code: str, state: str) -> tuple[str, str] | None:
        """(session id, next URL) after the hub sent the browser back with ``code``."""
        next_url = self.hub_auth.get_next_url(state)
        self.hub_auth.clear_oauth_state(state)
        token = self.hub_auth.token_for_code(code, sync=True)
        model = self.user_for_token(token)
        if model is None:
            return None
        session = secrets.token_urlsafe(32)
        self._sessions[session] = (token, secrets.token_urlsafe(24))
        return session, next_url or ""

    def user_for_session(self, session: str) -> Caller | None:
        found = self._sessions.get(session)
        if not found:
            return None
        token, csrf = found
        model = self.user_for_token(token)
        if model is None:
            self._sessions.pop(session, None)
            return None
        return Caller(model["name"], "session", csrf=csrf)

    def end_session(self, session: str) -> None:
        self._sessions.pop(session, None)

    # -- directory --------------------------------------------------------------------------------

    def _service_get(self, path: str) -> Any:
        cached = self._directory.get(path)
        if cached is not None:
            return cached
        try:
            r = self._client.get(
                f"{self.hub_auth.api_url}{path}",
                headers={"Authorization": f"token {self.hub_auth.api_token}"},
            )
            r.raise_for_status()
            data = r.json()
        except httpx.HTTPError as e:
            log.error("Reading %s from the hub API failed: %s", path, e)
            return None
        self._directory.put(path, data)
        return data

    def groups(self) -> dict[str, list[str]]:
        """Every hub group with its members."""
        data = self._service_get("/groups") or []
        return {g["name"]: list(g.get("users") or []) for g in data}

    def users(self) -> list[str]:
        data = self._service_get("/users") or []
        return [u["name"] for u in data if u.get("kind", "user") == "user"]

    def groups_of(self, user: str) -> list[str]:
        return sorted(name for name, members in self.groups().items() if user in members)
