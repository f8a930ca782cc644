"""The drive's WSGI front door: the URL map (status.php, ocs/, remote.php/, public.php/, s/, the
web page) and who is let in where, with the OCS envelope around the share API's answers.

It routes only: who a caller is comes from `auth`, WebDAV is WsgiDAV's, shares are `ocs`'s and
pages `web`'s. Handlers run in cheroot's worker threads, so blocking calls block one request.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any

from wsgidav.wsgidav_app import WsgiDAVApp

from . import areas, ocs, propfind, search, sightings, web
from .auth import WWW_AUTHENTICATE, DriveAuth, TooManyAttempts
from .dav import ENV_LINK, ENV_USER, DriveProvider, PublicLinkProvider, UploadsProvider
from .identity import HubIdentity, HubUnavailable
from .mesh import DISCOVERY_PATHS, Mesh, provider_of
from .ocm import ACCEPT_INVITE_PATH, OCM, WAYF_PATH, OCMRefused, parse_json, read_body
from .outbox import Outbox
from .render import Limits, Renderer
from .responses import StartResponse, answer, json_answer, plain
from .signing import JWKS_PATH, CavageKey, SiteKey
from .spaces import PERM_READ, Spaces

log = logging.getLogger("swan_hub.drive")

OCS_SHARES = "apps/files_sharing/api/v1/"
STATUS_PATHS = ("/status.php", "/ocs/v1.php/cloud/status", "/ocs/v2.php/cloud/status")


def _unauthorized(start_response: StartResponse, credentials: str) -> list[bytes]:
    """A 401 that asks WebDAV clients for Basic auth with ``credentials``."""
    return plain(start_response, 401, f"Log in with {credentials}", [WWW_AUTHENTICATE])


def request_headers(environ: dict) -> dict[str, str]:
    """The request's header fields by their usual names (``Signature-Input``), from WSGI's."""
    found = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key
        else:
            continue
        found["-".join(part.capitalize() for part in name.split("_"))] = value
    return found


class DriveWSGI:
    """The WSGI application of the drive behind ``base_path`` (e.g. ``/services/drive``);
    ``service`` is the `DriveService` whose settings it follows."""

    def __init__(self, service: Any, identity: HubIdentity, spaces: Spaces):
        self.service = service
        self.identity = identity
        self.spaces = spaces
        self.base_path = service.base_path.rstrip("/")
        self.auth = DriveAuth(identity, spaces, self.base_path, service.link_password_attempts)
        keys = os.path.join(os.path.abspath(service.data_dir), "drive")
        public_url = service.public_url.rstrip("/")
        mesh = Mesh(
            service.ocm_trusted_providers,
            public_url=service.public_url,
            allowed_networks=service.ocm_allowed_networks,
            timeout=service.ocm_timeout,
            key=SiteKey(os.path.join(keys, "ocm-signing-key.pem"), provider_of(public_url))
            if public_url
            else None,
            cavage_key=CavageKey(
                os.path.join(keys, "ocm-cavage-key.pem"), f"{public_url}/ocm#signature"
            )
            if public_url
            else None,
        )
        self.ocm = OCM(
            spaces,
            mesh,
            users=identity.users,
            base_path=self.base_path,
            public_url=service.public_url,
            provider_name=service.ocm_provider_name,
            require_signatures=service.ocm_require_signatures,
            outbox=Outbox(
                spaces.state,
                mesh,
                first_pause=service.ocm_retry_pause,
                longest_pause=service.ocm_retry_longest_pause,
                give_up_after=service.ocm_retry_days * 86400,
            ),
        )
        self.shares = ocs.ShareAPI(
            spaces,
            users=identity.users,
            groups=identity.groups,
            public_url=self.public_url,
            public_links=service.public_links,
            federation=self.ocm,
        )
        self.dav = WsgiDAVApp(self._dav_config())
        self.pages = web.Pages(
            spaces,
            self.auth,
            self.base_path,
            service.open_in_url,
            origin=self.origin,
            link_url=self.public_url,
            open_link_url=service.open_link_url,
            lab_url=service.lab_url,
            hub_logout_url=service.hub_logout_url,
            provider=mesh.provider if mesh.enabled else "",
            swan_sites={
                provider.strip().lower(): url
                for provider, url in service.ocm_swan_sites.items()
                if url.startswith(("https://", "http://"))
            },
            ocm=self.ocm,
            renderer=Renderer(
                Limits(
                    seconds=service.preview_seconds,
                    memory_bytes=service.preview_memory_bytes,
                    file_bytes=service.preview_file_bytes,
                ),
                cache_bytes=service.preview_cache_bytes,
            ),
        )

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
                sightings.SightingsMiddleware,
                areas.OwnCloudMiddleware,
                search.SearchMiddleware,
                propfind.PropfindMiddleware,
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

    # -- routing ----------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path.rstrip("/") in DISCOVERY_PATHS:
            # served at the site's root (`swan up` routes these paths here)
            return self._discovery(environ, start_response)
        if path.rstrip("/") == JWKS_PATH:
            return self._jwks(environ, start_response)
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
        if path in STATUS_PATHS:
            return json_answer(start_response, 200, ocs.status_document())
        if path.startswith("/ocs/"):
            return self._ocs(path, environ, start_response)
        if path in DISCOVERY_PATHS:
            return self._discovery(environ, start_response)
        if path == JWKS_PATH:
            return self._jwks(environ, start_response)
        if path == WAYF_PATH and method in ("GET", "HEAD"):
            return self.pages.wayf(environ, start_response)
        if path == ACCEPT_INVITE_PATH and method in ("GET", "HEAD", "POST"):
            return self._accept_invite_page(method, environ, start_response)
        if path in ("/ocm/shares", "/ocm/notifications", "/ocm/invite-accepted"):
            return self._ocm(path, environ, start_response)
        if path.startswith("/ocm/app/") and method in ("GET", "HEAD"):
            return self.pages.shared_app(path[len("/ocm/app/") :], environ, start_response)
        if path.startswith("/remote.php/"):
            return self._user_dav(environ, start_response)
        if path.startswith("/public.php/webdav"):
            return self._link_dav(environ, start_response)
        if path == "/oauth_callback":
            return self.auth.oauth_callback(environ, start_response)
        if path.startswith("/s/") and method == "PUT":
            return self._drop(path[3:], environ, start_response)
        if path.startswith("/s/"):
            return self.pages.public(path[3:], environ, start_response)
        if path.startswith("/static/"):
            return self.pages.static(path[len("/static/") :], start_response)
        if method in ("GET", "HEAD") and (
            path
            in ("/", "/index.php", "/preview", "/preview/render", "/zip", "/trash", "/versions")
            or path in ("/versions/download", "/people")
            or path[1:] in web.SHARE_VIEWS
            or path.startswith("/apps/files")
        ):
            caller = self.auth.caller(environ)
            if caller is None or caller.via != "session":
                return self.auth.login(environ, start_response)
            if path.startswith("/preview"):
                sub = path[len("/preview/") :]
                return self.pages.preview(caller, sub, environ, start_response)
            if path == "/zip":
                return self.pages.folder_download(caller, environ, start_response)
            if path == "/trash":
                return self.pages.trash(caller, environ, start_response)
            if path == "/people":
                return self.pages.people(caller, start_response)
            if path[1:] in web.SHARE_VIEWS:
                return self.pages.shares(caller, path[1:], environ, start_response)
            if path.startswith("/versions"):
                sub = path[len("/versions/") :]
                return self.pages.versions(caller, sub, environ, start_response)
            return self.pages.drive(caller, environ, start_response)
        if path == "/logout" and method == "POST":
            return self.auth.logout(environ, start_response)
        return plain(start_response, 404, "Not found")

    def _accept_invite_page(
        self, method: str, environ: dict, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The page where a user of this site accepts an invite of another site: signed in
        in this browser (a GET logs in first and comes back; a POST must come from the page)."""
        caller = self.auth.caller(environ)
        if caller is None or caller.via != "session":
            if method == "POST":
                said = "Log in first: open the invite link again. Nothing was stored."
                return plain(start_response, 403, said)
            return self.auth.login(environ, start_response)
        return self.pages.accept_invite(caller, environ, start_response)

    def _user_dav(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        caller = self.auth.caller(environ)
        if caller is None:
            return _unauthorized(start_response, "your hub user name and a hub API token")
        if not self.auth.csrf_ok(environ, caller):
            return plain(start_response, 403, "Missing or wrong request token")
        environ[ENV_USER] = caller.name
        environ["wsgidav.auth.user_name"] = caller.name
        return self._dav(environ, start_response)

    def _link_dav(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        link = self.auth.link_for_basic(environ) or self.auth.federated_share(environ)
        if link is None:
            return _unauthorized(start_response, "the link token and its password")
        environ[ENV_LINK] = link
        environ["wsgidav.auth.user_name"] = f"link:{link.id}"
        return self._dav(environ, start_response)

    def _drop(self, rest: str, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """``PUT /s/<token>/drop/<name>``: a file a file drop's page adds, opened by the link's
        cookie where it has a password (a cookie other sites' requests never carry). The
        link's own WebDAV takes it, as a new file only: a taken name is refused, not replaced."""
        token, _, name = rest.partition("/drop/")
        link = self.auth.unlocked_link(token, environ)
        if link is None:
            known = self.spaces.state.share_by_token(token)
            if known is not None and known.password_hash and not ocs.link_expired(known):
                return plain(start_response, 401, "Open the link with its password again")
            return plain(start_response, 404, "This link does not exist or has expired")
        if link.permissions & PERM_READ or not name or "/" in name:
            return plain(start_response, 404, "Only a file drop's page adds files here")
        environ[ENV_LINK] = link
        environ["wsgidav.auth.user_name"] = f"link:{link.id}"
        environ["PATH_INFO"] = "/public.php/webdav/" + name
        environ["HTTP_IF_NONE_MATCH"] = "*"
        return self._dav(environ, start_response)

    def _dav(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        environ["PATH_INFO"] = environ["SCRIPT_NAME"] + environ["PATH_INFO"]
        environ["SCRIPT_NAME"] = ""
        return self.dav(environ, start_response)

    # -- Open Cloud Mesh --------------------------------------------------------------------------

    def _discovery(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"].upper() not in ("GET", "HEAD"):
            allow = [("Allow", "GET, HEAD")]
            return json_answer(start_response, 405, {"message": "Use GET"}, allow)
        return json_answer(start_response, 200, self.ocm.discovery(self.origin(environ)))

    def _jwks(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"].upper() not in ("GET", "HEAD"):
            allow = [("Allow", "GET, HEAD")]
            return json_answer(start_response, 405, {"message": "Use GET"}, allow)
        return json_answer(start_response, 200, self.ocm.jwks())

    def _ocm(self, path: str, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """``POST <endPoint>/shares``, ``/notifications`` and ``/invite-accepted``: other
        sites, no hub user."""
        if environ["REQUEST_METHOD"].upper() != "POST":
            return json_answer(start_response, 405, {"message": "Use POST"}, [("Allow", "POST")])
        try:
            body = read_body(environ)
            public_url = self.ocm.public_url or self.origin(environ) + self.base_path
            query = environ.get("QUERY_STRING")
            url = public_url + path + (f"?{query}" if query else "")
            signer = self.ocm.signer("POST", url, request_headers(environ), body)
            document = parse_json(body)
            if path == "/ocm/shares":
                return json_answer(start_response, 201, self.ocm.receive_share(document, signer))
            if path == "/ocm/invite-accepted":
                answer = self.ocm.receive_invite_accepted(document, signer)
                return json_answer(start_response, 200, answer)
            answer = self.ocm.receive_notification(document, signer)
            return json_answer(start_response, 201, answer)
        except OCMRefused as e:
            return json_answer(start_response, e.status, e.document())
        except HubUnavailable:
            # the spec's 503, with its Error object: the sender may try again
            message = "This site cannot check its users right now; nothing was stored."
            return json_answer(start_response, 503, {"message": message}, [("Retry-After", "5")])

    # -- OCS --------------------------------------------------------------------------------------

    def _ocs(self, path: str, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        match = re.fullmatch(r"/ocs/v([12])\.php/(.*)", path)
        version = int(match.group(1)) if match else 1
        rest = match.group(2) if match else ""
        query = environ.get("QUERY_STRING", "")
        as_json = "format=json" in query or "application/json" in environ.get("HTTP_ACCEPT", "")
        caller = self.auth.caller(environ)
        headers = []
        if caller is None:
            _, doc = ocs.envelope(version, None, 997, "Current user is not logged in")
            status, headers = 401, [WWW_AUTHENTICATE]
        elif not self.auth.csrf_ok(environ, caller):
            status, doc = ocs.envelope(version, None, 403, "Missing or wrong request token")
        else:
            try:
                data = self._ocs_data(ocs.Request(environ, caller.name, caller.via), rest)
                status, doc = ocs.envelope(version, data)
            except ocs.OCSError as e:
                status, doc = ocs.envelope(version, None, e.code, e.message)
        content_type, body = ocs.render(doc, as_json)
        return answer(start_response, status, body, content_type, headers)

    def _ocs_data(self, req: ocs.Request, rest: str) -> Any:
        if rest == "cloud/capabilities":
            return ocs.capabilities(
                self.service.public_links, chunking=self.service.advertised_chunking
            )
        if rest in ("cloud/user", f"cloud/users/{req.user}"):
            return self._user_document(req.user)
        if rest.startswith(OCS_SHARES):
            return self.shares.handle(req, rest[len(OCS_SHARES) :])
        raise ocs.OCSError(404, "Unknown OCS endpoint")

    def _user_document(self, user: str) -> dict[str, Any]:
        quota = self.spaces.quota_bytes
        used = self.spaces.used_bytes(user)
        return {
            "id": user,
            "display-name": user,
            "displayname": user,
            "email": None,
            "groups": self.identity.groups_of(user),
            "quota": {
                "free": (quota - used) if quota is not None else -3,
                "used": used,
                "total": quota if quota is not None else -3,
                "relative": round(100 * used / quota, 2) if quota else 0,
                "quota": quota if quota is not None else -3,
            },
        }
