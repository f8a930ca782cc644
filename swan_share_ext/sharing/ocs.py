"""`OCSShareBackend`: the OCS share API of ownCloud 10, Nextcloud, oCIS and Reva/CERNBox (and of
the suite's own drive service), spoken over one async HTTP client.

It owns the dialect differences between those servers and the translation of OCS answers into
`StorageShare`, `Sharee` and `ShareError`. It must not decide what a user may share: the storage
does.
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
from traitlets import Bool, Enum, Float, TraitError, Unicode, default

from swan_contents.storage import credentials as storage_credentials
from swan_contents.storage.base import CredentialsUnavailable, normalize_path
from swan_contents.storage.connection import StorageConnection

from .backend import (
    InvalidShareRequest,
    Invite,
    NewShare,
    ShareBackend,
    Sharee,
    ShareError,
    ShareForbidden,
    ShareNotFound,
    SharingAuthFailed,
    SharingUnavailable,
    StorageShare,
)

SHARES_API = "apps/files_sharing/api/v1"

KIND_OF_TYPE = {0: "user", 1: "group", 3: "link", 4: "email", 6: "federated"}
TYPE_OF_KIND = {"user": 0, "group": 1, "link": 3, "federated": 6}
STATE_OF_CODE = {0: "accepted", 1: "pending", 2: "declined"}
#: the ids of shares received from other sites (OCS `remote_shares`) begin with this, so that
#: they never meet the ids of shares within the storage
REMOTE_PREFIX = "ocm-"
CODE_OF_STATE = {"accepted": "0", "pending": "1", "declined": "2", "all": "all"}

#: OCS meta status codes: success is 100 on /ocs/v1.php and 200 on /ocs/v2.php.
OCS_OK = (100, 200)
#: Reva's own codes besides the HTTP-like ones (cs3org/reva ocs/response).
REVA_SERVER_ERROR, REVA_UNAUTHORIZED, REVA_NOT_FOUND, REVA_UNKNOWN = 996, 997, 998, 999


def split_dav_url(url: str) -> tuple[str, str, str]:
    """(server base URL, user, folder inside the user's space) of a WebDAV URL such as
    https://cloud.example.org/remote.php/dav/files/alice/SWAN_projects/; empty parts where the
    URL does not say (a plain WebDAV server has no OCS API: its base is "")."""
    parts = urlsplit(url)
    before, marker, after = parts.path.partition("/remote.php/")
    if not marker or parts.scheme not in ("http", "https"):
        return "", "", ""
    base = urlunsplit((parts.scheme, parts.netloc, before.rstrip("/") + "/", "", ""))
    segments = [unquote(p) for p in after.split("/") if p]
    if segments[:2] == ["dav", "files"] and len(segments) >= 3:
        return base, segments[2], "/".join(segments[3:])
    if segments[:1] == ["webdav"]:
        return base, "", "/".join(segments[1:])
    return base, "", ""


def _share_kind(share_type: Any) -> str:
    try:
        return KIND_OF_TYPE.get(int(share_type), "other")
    except (TypeError, ValueError):
        return "other"


def _web_page(value: Any) -> str | None:
    """``value`` if it is an http(s) URL a page may link to, else None (the storage vetted
    it already; a page puts it in an ``href``)."""
    if not isinstance(value, str) or not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return value


def _permissions(data: dict[str, Any]) -> int:
    """The permission bits of an OCS share record; 0 where they are unreadable."""
    try:
        return int(data.get("permissions") or 0)
    except (TypeError, ValueError):
        return 0


def _expiration(value: Any) -> str | None:
    """The date part of an OCS expiration ("2026-12-31 00:00:00"), or None."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def _from_storage_connection(name: str) -> Any:
    """A trait default that takes the storage driver's setting of the same name, so that one
    configuration serves the driver and the share backend."""

    @default(name)
    def _default(self: OCSShareBackend) -> Any:
        return getattr(self.storage_connection, name)

    return _default


class OCSShareBackend(ShareBackend):
    """Shares through the OCS share API of the storage behind this notebook server.

    Unless set here, the URL, user and credentials are those of the storage driver
    (`c.WebDAVStorage.*`, the hub's credentials file or the SWAN_WEBDAV_* variables), found in
    the same order, so one configuration serves both (docs/storage.md, "Credentials").
    """

    url = Unicode(
        config=True,
        help="""Base URL of the storage server whose shares this server manages, the one in
        front of `/ocs/` and `/remote.php/` (for example `https://cernbox.example.org/`, or
        `http://127.0.0.1:8000/services/drive/` for the embedded drive). Defaults to the part of
        the storage driver's WebDAV URL (c.WebDAVStorage.url or $SWAN_WEBDAV_URL) in front of
        `/remote.php/`. Empty: sharing is not set up and the share API answers 503.""",
    )

    @default("url")
    def _default_url(self) -> str:
        return self._dav_url_parts[0]

    api_version = Enum(
        ["1", "2"],
        default_value="1",
        config=True,
        help="""OCS API version to call: `1` (`/ocs/v1.php`, understood by every server) or
        `2` (`/ocs/v2.php`, whose errors also carry HTTP statuses).""",
    )

    dialect = Enum(
        ["auto", "owncloud", "nextcloud", "reva"],
        default_value="auto",
        config=True,
        help="""Which server family speaks: `owncloud` (ownCloud 10 and the embedded drive),
        `nextcloud`, or `reva` (oCIS and CERNBox). They differ in how received shares are
        listed and declined and how federated shares are addressed. `auto` asks the server's
        `status.php` once.""",
    )

    username = Unicode(
        config=True,
        help="""The user's name on the storage, for basic authentication. Defaults to the
        storage driver's (c.WebDAVStorage.username, the user in its URL, $SWAN_WEBDAV_USER),
        else the JupyterHub user name of this server ($JUPYTERHUB_USER).""",
    )

    @default("username")
    def _default_username(self) -> str:
        return (
            self.storage_connection.username
            or self._dav_url_parts[1]
            or os.environ.get("JUPYTERHUB_USER", "")
        )

    token_file = Unicode(
        config=True,
        help="""A file holding just a bearer token for the storage (OpenID Connect deployments
        such as CERNBox and oCIS), re-read when it changes. Defaults to the storage driver's
        (c.WebDAVStorage.token_file). The first source of credentials, as for the driver.""",
    )

    _default_token_file = _from_storage_connection("token_file")

    password_file = Unicode(
        config=True,
        help="""A file holding just the user's app password for the storage (basic
        authentication), re-read when it changes. Defaults to the storage driver's
        (c.WebDAVStorage.password_file).""",
    )

    _default_password_file = _from_storage_connection("password_file")

    credentials_file = Unicode(
        config=True,
        help="""The hub's credentials file (JSON, see docs/storage.md), re-read when the hub
        replaces it. Defaults to the storage driver's (c.WebDAVStorage.credentials_file, else
        the path in SWAN_STORAGE_CREDENTIALS).""",
    )

    _default_credentials_file = _from_storage_connection("credentials_file")

    token_env = Unicode(
        config=True,
        help="""The environment variable holding a bearer token, used when no file source is
        set. Defaults to the storage driver's (c.WebDAVStorage.token_env, else
        SWAN_WEBDAV_TOKEN).""",
    )

    _default_token_env = _from_storage_connection("token_env")

    password_env = Unicode(
        config=True,
        help="""The environment variable holding the app password, used when no file source is
        set and the token variable is empty. Defaults to the storage driver's
        (c.WebDAVStorage.password_env, else SWAN_WEBDAV_PASSWORD).""",
    )

    _default_password_env = _from_storage_connection("password_env")

    path_prefix = Unicode(
        config=True,
        help="""Where the folder this server shows lies inside the user's storage space, when it
        is not the whole space (for example `SWAN_projects`). Paths sent to the storage get this
        prefix; shares outside it are listed with an empty path. Defaults to the folder of the
        storage driver's WebDAV URL below /remote.php/dav/files/<user>/.""",
    )

    @default("path_prefix")
    def _default_path_prefix(self) -> str:
        return self._dav_url_parts[2]

    shares_of_other_sites = Bool(
        False,
        config=True,
        help="""Show the shares that users of other sites (Open Cloud Mesh) made with the user:
        listed in Shared with me (OCS `remote_shares`, as Nextcloud, ownCloud 10 and the
        embedded drive answer it), and the accepted folders under `Shared/`, reached at the
        other site's WebDAV with the share's secret (the drive's `remote_shares/mounts`).
        `swan up` turns it on where it trusts other sites (`--ocm-peer`). Off, that API is
        never asked.""",
    )

    timeout = Float(
        30.0,
        config=True,
        help="Seconds to wait for the storage's share service before answering 503.",
    )

    verify_tls = Bool(
        config=True,
        help="""Check the storage's TLS certificate. Turn off only for a test server. Defaults
        to the storage driver's (c.WebDAVStorage.verify_tls).""",
    )

    _default_verify_tls = _from_storage_connection("verify_tls")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._client: httpx.AsyncClient | None = None
        self._dialect: str | None = None if self.dialect == "auto" else self.dialect
        #: the storage's connection as this backend reaches it (its own settings over the
        #: driver's)
        self.connection = self.storage_connection.overridden_by(self)
        self._storage_auth = self.connection.auth(self.log)
        self._received_listeners: list[Callable[[], None]] = []

    def on_received_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever the user accepted or left a share from another site."""
        self._received_listeners.append(listener)

    def _received_changed(self) -> None:
        for listener in self._received_listeners:
            listener()

    # -- the storage driver's configuration ---------------------------------------------------

    @functools.cached_property
    def storage_connection(self) -> StorageConnection:
        """The storage driver's connection settings, resolved by the driver's own rules from
        `c.WebDAVStorage.*`, the SWAN_WEBDAV_* variables and the credentials file."""
        # imported here: the driver's module is needed only to resolve its settings
        from swan_contents.storage.webdav.storage import WebDAVStorageSettings

        try:
            return WebDAVStorageSettings(config=self.config, log=self.log).connection
        except TraitError as e:
            self.log.warning("The storage driver's settings cannot be used for sharing: %s", e)
            return StorageConnection()

    @property
    def _dav_url_parts(self) -> tuple[str, str, str]:
        url = self.storage_connection.url
        url = url or storage_credentials.url_from_credentials_file(self.credentials_file)
        return split_dav_url(url)

    # -- HTTP ---------------------------------------------------------------------------------

    @property
    def configured(self) -> bool:  # type: ignore[override]
        return bool(self.url)

    def _base(self) -> str:
        return self.url.rstrip("/") + "/"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.connection.timeouts(),
                verify=self.connection.verify_tls,
                follow_redirects=False,
            )
        return self._client

    async def _request(
        self,
        method: str,
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> Any:
        """One OCS call; returns the `data` of a successful answer, raises `ShareError`."""
        if not self.configured:
            raise SharingUnavailable(
                "Sharing is not set up on this server (no storage URL is configured for it)."
            )
        url = f"{self._base()}ocs/v{self.api_version}.php/{endpoint}"
        headers = {"OCS-APIRequest": "true", "Accept": "application/json"}
        query = {**(params or {}), "format": "json"}
        try:
            response = await self._http().request(
                method, url, params=query, data=data, headers=headers, auth=self._storage_auth
            )
        except CredentialsUnavailable as e:
            raise SharingUnavailable(
                f"This server cannot use its storage credentials ({e.detail}); nothing was "
                "changed. Log out and in again so that the hub hands them over anew, or ask "
                "your administrator."
            ) from e
        except httpx.TimeoutException as e:
            raise SharingUnavailable(
                f"The storage's share service at {self._base()} did not answer in time; "
                "nothing was changed. Try again in a moment."
            ) from e
        except httpx.HTTPError as e:
            raise SharingUnavailable(
                f"The storage's share service at {self._base()} cannot be reached ({e}); "
                "nothing was changed. Try again in a moment."
            ) from e
        return self._ocs_data(response)

    def _ocs_data(self, response: httpx.Response) -> Any:
        try:
            payload = response.json()
            meta = payload["ocs"]["meta"]
            code = int(meta["statuscode"])
        except (ValueError, KeyError, TypeError):
            payload, meta, code = None, {}, None
        if code in OCS_OK and response.status_code < 300:
            return payload["ocs"].get("data")
        message = str(meta.get("message") or "").strip()
        status = response.status_code
        if status == 401 or code in (401, REVA_UNAUTHORIZED):
            raise SharingAuthFailed(
                "The storage did not accept this server's credentials"
                + (f" ({message})" if message else "")
                + "; log out and in again to renew them."
            )
        if code is None:
            detail = f"HTTP {status} from {response.request.url.copy_with(query=None)}"
            raise SharingUnavailable(
                f"The storage's share service answered something else than OCS ({detail}); "
                "nothing was changed."
            )
        message = message or f"the storage answered OCS status {code}"
        if code in (404, REVA_NOT_FOUND):
            raise ShareNotFound(message)
        if code == 403:
            raise ShareForbidden(message)
        if code in (REVA_SERVER_ERROR, REVA_UNKNOWN) or code >= 500:
            raise SharingUnavailable(f"The storage's share service failed: {message}")
        raise InvalidShareRequest(message)

    async def _server_dialect(self) -> str:
        if self._dialect is None:
            self._dialect = await self._probe_dialect()
        return self._dialect

    async def _probe_dialect(self) -> str:
        try:
            response = await self._http().get(self._base() + "status.php")
            product = str(response.json().get("productname", "")).lower()
        except (httpx.HTTPError, ValueError, AttributeError):
            product = ""
        if "nextcloud" in product:
            return "nextcloud"
        if any(name in product for name in ("reva", "infinite scale", "ocis", "cernbox")):
            return "reva"
        return "owncloud"

    # -- paths --------------------------------------------------------------------------------

    def storage_path(self, path: str) -> str:
        """The path the storage knows for an API path: "/" + prefix + path."""
        joined = "/".join(p for p in (normalize_path(self.path_prefix), path) if p)
        return "/" + joined

    def api_path(self, storage_path: Any) -> str | None:
        """The API path of a storage path, or None when it lies outside this server's folder."""
        if not isinstance(storage_path, str):
            return None
        parts = [p for p in storage_path.split("/") if p]
        prefix = [p for p in self.path_prefix.split("/") if p]
        if parts[: len(prefix)] != prefix:
            return None
        return "/".join(parts[len(prefix) :])

    # -- records ------------------------------------------------------------------------------

    def _share(self, data: Any, state: str | None = None) -> StorageShare:
        if not isinstance(data, dict) or "id" not in data:
            raise SharingUnavailable("The storage's share service answered an unreadable share.")
        kind = _share_kind(data.get("share_type"))
        share_with = data.get("share_with") or None
        password_protected = False
        if kind == "link":
            # OCS puts the link's password hash (or "***redacted***") in share_with: never show it
            password_protected = bool(share_with or data.get("password"))
            share_with = None
        code = data.get("state")
        if isinstance(code, int | str) and str(code).isdigit():
            state = STATE_OF_CODE.get(int(code), state)
        target = data.get("file_target")
        return StorageShare(
            id=str(data["id"]),
            kind=kind,
            path=self.api_path(data.get("path")) or "",
            item_type="folder" if data.get("item_type") == "folder" else "file",
            permissions=_permissions(data),
            share_with=share_with,
            share_with_name=(data.get("share_with_displayname") or share_with)
            if kind != "link"
            else None,
            owner=str(data.get("uid_file_owner") or data.get("uid_owner") or ""),
            owner_name=str(
                data.get("displayname_file_owner")
                or data.get("displayname_owner")
                or data.get("uid_file_owner")
                or ""
            ),
            expiration=_expiration(data.get("expiration")),
            url=data.get("url") or None,
            password_protected=password_protected,
            name=str(data.get("name") or data.get("label") or ""),
            created=int(data["stime"]) if str(data.get("stime", "")).isdigit() else None,
            state=state,
            location=self.api_path(target) if target else None,
        )

    def _shares(self, data: Any, state: str | None = None) -> list[StorageShare]:
        if data in (None, ""):
            return []
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise SharingUnavailable("The storage's share service answered an unreadable list.")
        return [self._share(item, state) for item in data]

    def _one_share(self, data: Any, share_id: str) -> StorageShare:
        shares = self._shares(data)
        if not shares:
            raise ShareNotFound(f"Wrong share ID, share {share_id} doesn't exist")
        return shares[0]

    @staticmethod
    def _share_endpoint(share_id: str, *, pending: bool = False) -> str:
        # an id is one path segment: "../" or "?" in it must not reach another endpoint
        segment = quote(str(share_id), safe="")
        return f"{SHARES_API}/shares/{'pending/' if pending else ''}{segment}"

    # -- the ShareBackend API -----------------------------------------------------------------

    async def list_shares(self, path: str | None = None) -> list[StorageShare]:
        params = {"reshares": "true"}
        if path is not None:
            params["path"] = self.storage_path(path)
        return self._shares(await self._request("GET", f"{SHARES_API}/shares", params=params))

    async def get_share(self, share_id: str) -> StorageShare:
        if share_id.startswith(REMOTE_PREFIX):
            return self._remote_share(await self._request("GET", self._remote_endpoint(share_id)))
        data = await self._request("GET", self._share_endpoint(share_id))
        return self._one_share(data, share_id)

    async def create_share(self, new: NewShare) -> StorageShare:
        form = {
            "path": self.storage_path(new.path),
            "shareType": str(TYPE_OF_KIND[new.kind]),
            "permissions": str(new.permissions),
        }
        if new.kind == "federated" and await self._server_dialect() == "reva":
            user, _, provider = (new.share_with or "").rpartition("@")
            form["shareWithUser"] = user
            form["shareWithProvider"] = provider
        elif new.share_with is not None:
            form["shareWith"] = new.share_with
        if new.password:
            form["password"] = new.password
        if new.expiration:
            form["expireDate"] = new.expiration
        if new.name:
            form["label" if await self._server_dialect() == "nextcloud" else "name"] = new.name
        data = await self._request("POST", f"{SHARES_API}/shares", data=form)
        return self._one_share(data, "new")

    async def update_share(self, share_id: str, changes: dict[str, Any]) -> StorageShare:
        form: dict[str, str] = {}
        if "permissions" in changes:
            form["permissions"] = str(changes["permissions"])
        if "expiration" in changes:
            form["expireDate"] = changes["expiration"] or ""
        if "password" in changes:
            form["password"] = changes["password"] or ""
        if "name" in changes:
            label = "label" if await self._server_dialect() == "nextcloud" else "name"
            form[label] = changes["name"] or ""
        data = await self._request("PUT", self._share_endpoint(share_id), data=form)
        if not data:
            return await self.get_share(share_id)
        return self._one_share(data, share_id)

    async def delete_share(self, share_id: str) -> None:
        await self._request("DELETE", self._share_endpoint(share_id))

    async def received_shares(self, state: str = "all") -> list[StorageShare]:
        return await self._received_here(state) + await self._received_from_other_sites(state)

    async def _received_from_other_sites(self, state: str) -> list[StorageShare]:
        """The shares of users of other sites (OCS `remote_shares`, as Nextcloud and the drive
        answer it). Best effort: the shares of the storage itself are listed whatever happens
        here; a storage without the API (Reva, or federation off) is not asked again."""
        found: list[StorageShare] = []
        for wanted, endpoint in (("accepted", ""), ("pending", "/pending")):
            if state not in (wanted, "all"):
                continue
            data = await self._remote_shares_call(f"remote_shares{endpoint}")
            found += [self._remote_share(item) for item in data if isinstance(item, dict)]
        return found

    async def federated_mounts(self) -> list[dict[str, Any]]:
        """The accepted shares of other sites with what opens each (the drive's
        `remote_shares/mounts`: WebDAV URL, secret); [] where the storage has no such API."""
        return [item for item in await self._remote_shares_call("remote_shares/mounts")]

    _without_remote_shares = False

    async def _remote_shares_call(self, endpoint: str) -> list[Any]:
        """A listing of the `remote_shares` API, [] where the storage has none."""
        if self._without_remote_shares or not self.shares_of_other_sites:
            return []
        try:
            data = await self._request("GET", f"{SHARES_API}/{endpoint}")
        except ShareNotFound:
            self._without_remote_shares = True
            return []
        except (SharingUnavailable, InvalidShareRequest, ShareForbidden) as e:
            self.log.warning("The shares of other sites cannot be listed now: %s", e.message)
            return []
        return data if isinstance(data, list) else []

    def _remote_share(self, data: Any) -> StorageShare:
        if not isinstance(data, dict) or "id" not in data:
            raise SharingUnavailable("The storage's share service answered an unreadable share.")
        accepted = str(data.get("accepted")) in ("1", "True", "true")
        folder = data.get("type") == "dir"
        owner = str(data.get("owner_address") or data.get("owner") or "")
        mountpoint = data.get("mountpoint")
        return StorageShare(
            id=f"{REMOTE_PREFIX}{data['id']}",
            kind="federated",
            path="",
            item_type="folder" if folder else "file",
            permissions=_permissions(data),
            share_with=str(data.get("user") or "") or None,
            share_with_name=None,
            owner=owner,
            owner_name=str(data.get("owner_display_name") or owner),
            expiration=None,
            name=str(data.get("name") or "").strip("/"),
            created=int(data["mtime"]) if str(data.get("mtime", "")).isdigit() else None,
            state="accepted" if accepted else "pending",
            location=self.api_path(mountpoint) if accepted and mountpoint else None,
            view_url=_web_page(data.get("webapp_url")),
        )

    @staticmethod
    def _remote_endpoint(share_id: str, *, pending: bool = False) -> str:
        segment = quote(share_id.removeprefix(REMOTE_PREFIX), safe="")
        return f"{SHARES_API}/remote_shares/{'pending/' if pending else ''}{segment}"

    async def _received_here(self, state: str) -> list[StorageShare]:
        if await self._server_dialect() != "nextcloud":
            data = await self._request(
                "GET",
                f"{SHARES_API}/shares",
                params={"shared_with_me": "true", "state": CODE_OF_STATE[state]},
            )
            shares = self._shares(data, "accepted")
            return [s for s in shares if state == "all" or s.state == state]
        # Nextcloud lists accepted and pending shares apart and has no "declined" state: a
        # declined share is one the user deleted from their space (its "deleted shares").
        found: list[StorageShare] = []
        if state in ("accepted", "all"):
            data = await self._request(
                "GET", f"{SHARES_API}/shares", params={"shared_with_me": "true"}
            )
            found += self._shares(data, "accepted")
        if state in ("pending", "all"):
            found += self._shares(
                await self._request("GET", f"{SHARES_API}/shares/pending"), "pending"
            )
        if state == "declined":
            found += self._shares(
                await self._request("GET", f"{SHARES_API}/deletedshares"), "declined"
            )
        return found

    async def accept_share(self, share_id: str) -> StorageShare:
        if share_id.startswith(REMOTE_PREFIX):
            await self._request("POST", self._remote_endpoint(share_id, pending=True))
            self._received_changed()
            return await self.get_share(share_id)
        data = await self._request("POST", self._share_endpoint(share_id, pending=True))
        shares = self._shares(data, "accepted")
        if shares:
            return shares[0]
        return self._accepted(await self.get_share(share_id))

    @staticmethod
    def _accepted(share: StorageShare) -> StorageShare:
        return StorageShare(**{**share.to_json(), "state": "accepted"})

    async def decline_share(self, share_id: str) -> None:
        if share_id.startswith(REMOTE_PREFIX):
            # a pending share is declined, an accepted one left: the other site is told
            await self._request("DELETE", self._remote_endpoint(share_id))
            self._received_changed()
            return
        if await self._server_dialect() == "nextcloud":
            await self._request("DELETE", self._share_endpoint(share_id))
        else:
            await self._request("DELETE", self._share_endpoint(share_id, pending=True))

    async def search_sharees(self, search: str, item_type: str = "file") -> list[Sharee]:
        data = await self._request(
            "GET",
            f"{SHARES_API}/sharees",
            params={"search": search, "itemType": item_type, "perPage": "50"},
        )
        if not isinstance(data, dict):
            return []
        exact = data.get("exact") if isinstance(data.get("exact"), dict) else {}
        found: dict[tuple[str, str], Sharee] = {}
        for group in (exact, data):
            for key in ("users", "groups", "remotes"):
                for match in group.get(key) or []:
                    sharee = _sharee(match)
                    if sharee is not None:
                        found.setdefault((sharee.kind, sharee.share_with), sharee)
        return list(found.values())

    @property
    def offers_invites(self) -> bool:  # type: ignore[override]
        return self.configured and self.shares_of_other_sites

    async def create_invite(self) -> Invite:
        """``POST ocm_invites``, as the embedded drive answers it (Nextcloud's invites are its
        Contacts app's, not this API)."""
        data = await self._request("POST", f"{SHARES_API}/ocm_invites")
        fields = data if isinstance(data, dict) else {}
        try:
            return Invite(
                token=str(fields["token"]),
                provider=str(fields["provider"]),
                expiration=str(fields["expiration"]),
                link=str(fields["link"]) if fields.get("link") else None,
            )
        except KeyError as e:
            raise SharingUnavailable(
                f"The storage's share service answered an invite without its {e.args[0]}."
            ) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _sharee(match: Any) -> Sharee | None:
    if not isinstance(match, dict) or not isinstance(match.get("value"), dict):
        return None
    value = match["value"]
    share_with = str(value.get("shareWith") or "")
    if not share_with:
        return None
    kind = _share_kind(value.get("shareType"))
    provider = value.get("shareWithProvider")
    if kind == "federated" and provider and "@" not in share_with:
        share_with = f"{share_with}@{provider}"
    # ownCloud and Reva put the distinguishing detail in the value, Nextcloud beside it
    info = (
        value.get("shareWithAdditionalInfo")
        or match.get("shareWithDisplayNameUnique")
        or match.get("subline")
        or ""
    )
    return Sharee(
        kind=kind,
        share_with=share_with,
        name=str(match.get("label") or share_with),
        info=str(info) if info != share_with else "",
    )


__all__ = ["OCSShareBackend", "ShareError"]
