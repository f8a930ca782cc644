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


class HubUnavailable(RuntimeError):
    """The hub did not answer a token check: neither yes nor no (a 503, never a 401)."""


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
    (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_PREFIX, ...). The hub's
    answer for a token is trusted for ``cache_seconds``, so a revoked token is refused at
    most that long after; a refusal (403 or 404: revoked, expired, unknown) ends at once the
    browser sessions made with that token. Users and groups are read for ``directory_seconds``.
    """

    def __init__(
        self,
        hub_auth: HubOAuth,
        *,
        cache_seconds: float = 5.0,
        directory_seconds: float = 30.0,
    ):
        self.hub_auth = hub_auth
        self._tokens = _TTLCache(cache_seconds)
        self._directory = _TTLCache(directory_seconds)
        self._sessions: dict[str, tuple[str, str]] = {}
        self._sessions_lock = threading.Lock()
        self._client = httpx.Client(timeout=15)

    # -- tokens -----------------------------------------------------------------------------------

    def user_for_token(self, token: str) -> dict[str, Any] | None:
        """The hub's model of the token's user if the token may use this service, else None.

        Raises HubUnavailable when the hub gives no answer (down, or an error of its own).
        """
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
            raise HubUnavailable("The hub did not answer") from None
        if r.status_code >= 500:
            log.error("The hub API failed a token check: %s", r.status_code)
            raise HubUnavailable(f"The hub answered {r.status_code}")
        model: dict[str, Any] = {}
        if r.status_code == 200:
            data = r.json()
            allowed = self.hub_auth.check_scopes(self.hub_auth.access_scopes, data)
            if data.get("kind", "user") == "user" and allowed:
                model = data
        else:
            self._end_sessions_of(token)
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
        with self._sessions_lock:
            self._sessions[session] = (token, secrets.token_urlsafe(24))
        return session, next_url or ""

    def user_for_session(self, session: str) -> Caller | None:
        found = self._sessions.get(session)
        if not found:
            return None
        token, csrf = found
        model = self.user_for_token(token)
        if model is None:
            self.end_session(session)
            return None
        return Caller(model["name"], "session", csrf=csrf)

    def end_session(self, session: str) -> None:
        with self._sessions_lock:
            self._sessions.pop(session, None)

    def _end_sessions_of(self, token: str) -> None:
        """The hub refused ``token``: the browser sessions it opened end now."""
        with self._sessions_lock:
            for session in [s for s, (t, _) in self._sessions.items() if t == token]:
                del self._sessions[session]

    # -- directory --------------------------------------------------------------------------------

    def _service_list(self, path: str) -> list[dict[str, Any]]:
        """Every item of the hub's list at ``path``, page after page (the hub answers at most
        ``JupyterHub.api_page_max_limit`` items at once); cached for ``directory_seconds``."""
        cached = self._directory.get(path)
        if cached is not None:
            return cached
        items: list[dict[str, Any]] = []
        offset = 0
        headers = {
            "Authorization": f"token {self.hub_auth.api_token}",
            "Accept": "application/jupyterhub-pagination+json",
        }
        while True:
            try:
                r = self._client.get(
                    f"{self.hub_auth.api_url}{path}", params={"offset": offset}, headers=headers
                )
                r.raise_for_status()
                data = r.json()
            except (httpx.HTTPError, ValueError) as e:
                log.error("Reading %s from the hub API failed: %s", path, e)
                return []
            if isinstance(data, list):  # a hub without pagination answers everything at once
                items = data
                break
            page = data.get("items") or []
            items.extend(page)
            following = (data.get("_pagination") or {}).get("next")
            if not following or not page:
                break
            offset = int(following["offset"])
        self._directory.put(path, items)
        return items

    def groups(self) -> dict[str, list[str]]:
        """Every hub group with its members."""
        return {g["name"]: list(g.get("users") or []) for g in self._service_list("/groups")}

    def users(self) -> list[str]:
        """Every hub user's name."""
        return [u["name"] for u in self._service_list("/users") if u.get("kind", "user") == "user"]

    def groups_of(self, user: str) -> list[str]:
        return sorted(name for name, members in self.groups().items() if user in members)
