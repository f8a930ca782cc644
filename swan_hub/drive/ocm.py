"""Open Cloud Mesh (OCM 1.1) in the drive: its discovery document, the endpoints other sites call
(``POST <endPoint>/shares``, ``POST <endPoint>/notifications``), shares sent to users of other
sites (OCS share type 6) and the received ones (OCS ``remote_shares``).

This module owns the OCM request and answer shapes and their validation: a refused request
changes nothing. It must not read or write files (the shared secret opens a share through the
public-link WebDAV of `routes`) nor make calls except through `mesh.Mesh`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import posixpath
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from .mesh import API_VERSION, HTTP_SIG, MUST_SIGN, Mesh, PeerError, provider_of, split_address
from .ocs import OCSError
from .outbox import Outbox
from .signing import SignatureRefused, Verifier, cavage_parameters, key_provider
from .spaces import PERM_CREATE, PERM_DELETE, PERM_READ, PERM_UPDATE, Spaces
from .state import (
    SHARE_FEDERATED,
    STATE_ACCEPTED,
    STATE_PENDING,
    ReceivedShare,
    ShareRecord,
)

log = logging.getLogger("swan_hub.drive")

#: the largest OCM request body the drive reads (bytes)
MAX_BODY_BYTES = 64 * 1024
NEW_SHARE_FIELDS = (
    "shareWith",
    "name",
    "providerId",
    "owner",
    "sender",
    "shareType",
    "resourceType",
    "protocol",
)
NOTIFICATION_FIELDS = ("notificationType", "resourceType", "providerId")
INVITE_ACCEPTED_FIELDS = ("recipientProvider", "token", "userID", "email", "name")
#: the notification of a sent share's new permissions or expiry (this drive's; OCM leaves such
#: a notification out of its scope)
SHARE_CHANGE = "SHARE_CHANGE_PERMISSION"
#: how long an invite can be accepted (seconds)
INVITE_SECONDS = 7 * 24 * 3600
#: the drive's pages of the invite flow, below its public URL: where an invite link leads (the
#: WAYF page: "where are you from?") and where a user of this site accepts one (OCM 1.2's
#: ``inviteAcceptDialog``)
WAYF_PATH = "/ocm/wayf"
ACCEPT_INVITE_PATH = "/ocm/accept-invite"
#: the capability of a site with a WAYF page (OCM 1.2)
INVITE_WAYF = "invite-wayf"
RESOURCE_TYPES = ("file", "folder")
PERMISSION_WORDS = ("read", "write", "share")
_PROVIDER_ID = re.compile(r"[\x21-\x7e]{1,255}")
PERM_WRITE = PERM_UPDATE | PERM_CREATE | PERM_DELETE
#: the placeholder of a ``webapp.uriTemplate`` (OCM 1.1)
RELATIVE_PATH = "{relative-path-to-shared-resource}"
#: the longest ``webapp.uriTemplate`` kept
MAX_URI_CHARS = 2048


class OCMRefused(Exception):
    """An OCM request refused with ``status``; the answer is the spec's Error object."""

    def __init__(self, status: int, message: str, errors: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    def document(self) -> dict[str, Any]:
        found: dict[str, Any] = {"message": self.message}
        if self.errors:
            found["validationErrors"] = [{"name": n, "message": m} for n, m in self.errors]
        return found


def read_body(environ: dict) -> bytes:
    """The request's body (at most `MAX_BODY_BYTES`), or OCMRefused(400)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > MAX_BODY_BYTES:
        raise OCMRefused(400, f"The request body must be JSON of at most {MAX_BODY_BYTES} bytes.")
    body = environ["wsgi.input"].read(length) if length else b""
    if len(body) != length:
        raise OCMRefused(400, f"The request broke off after {len(body)} of {length} bytes.")
    return body


def parse_json(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object, or OCMRefused(400) saying what is wrong with it."""
    try:
        found = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise OCMRefused(400, "The request body is not JSON (UTF-8).") from None
    if not isinstance(found, dict):
        raise OCMRefused(400, "The request body must be a JSON object.")
    return found


def _missing(document: dict, names: tuple[str, ...], kinds: dict[str, type]) -> None:
    """OCMRefused(400) listing each of ``names`` that is absent, empty or of the wrong type."""
    errors = []
    for name in names:
        value = document.get(name)
        if value is None or value == "":
            errors.append((name, "REQUIRED"))
        elif not isinstance(value, kinds.get(name, str)):
            errors.append((name, "INVALID_TYPE"))
    if errors:
        listed = ", ".join(name for name, _ in errors)
        raise OCMRefused(400, f"Missing or invalid fields: {listed}.", errors)


def _secret(found: dict, where: str, message: str) -> str:
    """The ``sharedSecret`` of ``found`` (the object at ``where``), or OCMRefused(400)."""
    secret = found.get("sharedSecret")
    if not isinstance(secret, str) or not secret:
        raise OCMRefused(400, message, [(f"{where}.sharedSecret", "REQUIRED")])
    return secret


def _changed_terms(details: dict[str, Any]) -> tuple[list[str], int | None]:
    """(permission words, expiration) of a `SHARE_CHANGE` notification, or OCMRefused(400)."""
    words = details.get("permissions")
    if not isinstance(words, list) or not all(w in PERMISSION_WORDS for w in words):
        raise OCMRefused(
            400,
            "notification.permissions must be a list of read, write and share.",
            [("notification.permissions", "INVALID")],
        )
    expiration = details.get("expiration")
    if expiration is not None and type(expiration) is not int:
        raise OCMRefused(400, "notification.expiration must be seconds since the epoch.")
    return sorted(set(words) - {"share"} | {"read"}), expiration


def _expiration(share: ShareRecord) -> int | None:
    """OCM's ``expiration`` of ``share``: OCS keeps the last day the share works, OCM the
    second it stops working."""
    if not share.expiration:
        return None
    last_day = datetime.date.fromisoformat(share.expiration[:10])
    end = datetime.datetime.combine(last_day, datetime.time(), datetime.timezone.utc)
    return int(end.timestamp()) + 86400


def _contact_data(row: Any) -> dict[str, Any]:
    return {
        "address": row["address"],
        "name": row["name"],
        "email": row["email"],
        "added": row["added"],
    }


def _key_id_provider(key_id: str) -> str:
    """The provider a draft-cavage ``keyId`` names: the ``host[:port]`` of its URL
    (``https://cloud.example.org/ocm#signature``), or what comes before ``#``."""
    try:
        provider = provider_of(key_id) if "://" in key_id else key_id.partition("#")[0].lower()
    except ValueError:
        provider = ""
    if not provider:
        raise SignatureRefused(
            f"The signature's keyId {key_id!r} names no provider; nothing was changed."
        )
    return provider


def _decoded_invite(invite: str) -> tuple[str, str]:
    """(token, provider) of an OCM invite string (base64 of ``token@provider``)."""
    try:
        decoded = base64.b64decode(invite.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    token, at, provider = decoded.rpartition("@")
    if not at or not token or not provider:
        raise OCSError(400, "This is not an invite: paste the invite string you were sent.")
    return token, provider


def webapp_url(share: ReceivedShare) -> str | None:
    """The sender's view-only page of the received ``share`` itself (its ``uriTemplate`` with
    the relative path left empty), None where it sent none this site kept."""
    return share.webapp_uri.replace(RELATIVE_PATH, "") if share.webapp_uri else None


def check_invite_token(token: str) -> None:
    """OCSError unless ``token`` (stripped) can be an invite's token."""
    if len(token) > 255 or any(ord(c) < 33 for c in token):
        raise OCSError(400, "This is not an invite's token: paste the token you were sent.")


def permission_words(perms: int) -> list[str]:
    """The OCM words of an OCS permission bitmask (resharing is never offered)."""
    return ["read", "write"] if perms & PERM_WRITE else ["read"]


def permission_bits(words: list[str], resource_type: str) -> int:
    """The OCS bitmask of OCM permission words, as a recipient's client reads it."""
    perms = PERM_READ
    if "write" in words:
        perms |= PERM_UPDATE if resource_type == "file" else PERM_WRITE
    return perms


@dataclass
class Notification:
    """A validated notification: its type, the share it names and the secret that proves it."""

    kind: str
    provider_id: str
    secret: str
    resource_type: str
    extra: dict[str, Any] = field(default_factory=dict)


class OCM:
    """The OCM side of one drive: ``mesh`` says whom it trusts and makes its calls."""

    def __init__(
        self,
        spaces: Spaces,
        mesh: Mesh,
        *,
        users: Callable[[], list[str]],
        base_path: str,
        public_url: str,
        provider_name: str = "SWAN",
        outbox: Outbox | None = None,
        require_signatures: bool = False,
    ):
        self.spaces = spaces
        self.state = spaces.state
        self.mesh = mesh
        #: notifications to other sites, kept until delivered
        self.outbox = outbox or Outbox(self.state, mesh)
        self.users = users
        self.base_path = base_path
        self.public_url = public_url.rstrip("/")
        self.provider_name = provider_name
        self.verifier = Verifier()
        #: every incoming server-to-server request must be signed (either kind)
        self.require_signatures = require_signatures

    # -- discovery --------------------------------------------------------------------------------

    @property
    def webdav_path(self) -> str:
        """Where shared secrets open their shares over WebDAV (the public-link WebDAV)."""
        return f"{self.base_path}/public.php/webdav/"

    @property
    def webapp_path(self) -> str:
        """Where the view-only pages of sent shares are (OCM ``webapp``; each share's
        ``uriTemplate`` names its own page below it)."""
        return f"{self.base_path}/ocm/app/"

    def discovery(self, origin: str) -> dict[str, Any]:
        """``/.well-known/ocm`` and ``/ocm-provider``; ``origin`` (the request's) names the
        endpoint where no public URL is set, and federation is off then."""
        protocols = {"webdav": self.webdav_path, "webapp": self.webapp_path}
        public_url = self.public_url or origin + self.base_path
        found: dict[str, Any] = {
            "enabled": self.mesh.enabled,
            "apiVersion": API_VERSION,
            "endPoint": f"{public_url}/ocm",
            "provider": self.provider_name,
            "resourceTypes": [
                {"name": name, "shareTypes": ["user"], "protocols": protocols}
                for name in RESOURCE_TYPES
            ],
            "capabilities": ["/notifications", "/invite-accepted"]
            + ([HTTP_SIG] if self.mesh.key else [])
            + ([INVITE_WAYF] if self.mesh.enabled else []),
            **(
                {"inviteAcceptDialog": f"{public_url}{ACCEPT_INVITE_PATH}"}
                if self.mesh.enabled
                else {}
            ),
        }
        if self.mesh.cavage_key is not None:
            found["publicKey"] = self.mesh.cavage_key.public_key()
        if self.require_signatures:
            found["criteria"] = [MUST_SIGN]
        return found

    def jwks(self) -> dict[str, Any]:
        """``/.well-known/jwks.json``: this site's public signing key (none without one)."""
        return self.mesh.key.jwks() if self.mesh.key else {"keys": []}

    # -- signatures -------------------------------------------------------------------------------

    def signer(self, method: str, url: str, headers: dict[str, str], body: bytes) -> str | None:
        """The trusted provider whose valid signature the request carries (``url`` as the
        sender addressed it), None if it carries none; OCMRefused if one is there and fails,
        or if none is there while this site requires signatures. An RFC 9421 signature
        (``Signature-Input``) is the one checked when the request carries both kinds."""
        provider: str | None = None
        try:
            provider = key_provider(headers)
            if provider is not None:
                verify, keys = self.verifier.verify, self.mesh.public_keys
            elif (params := cavage_parameters(headers)) is not None:
                provider = _key_id_provider(params["keyId"])
                verify, keys = self.verifier.verify_cavage, self.mesh.cavage_keys
            elif self.require_signatures:
                raise OCMRefused(
                    401,
                    "This site accepts only signed requests (RFC 9421 HTTP Message Signatures, "
                    "or draft-cavage HTTP signatures as Nextcloud makes them), and this one is "
                    "not signed; nothing was changed.",
                )
            else:
                return None
            if self.mesh.trusted(provider) is None:
                raise OCMRefused(
                    403,
                    f"The request is signed by {provider}, which is not a trusted provider of "
                    "this site; nothing was changed.",
                )
            signer = provider
            try:
                verify(method, url, headers, body, lambda: keys(signer))
            except SignatureRefused:
                # the peer may have a new key: once more with its keys of the last minute
                verify(method, url, headers, body, lambda: keys(signer, fresh=True))
        except SignatureRefused as e:
            raise OCMRefused(e.status, e.message) from None
        except PeerError as e:
            raise OCMRefused(
                503, f"The signing keys of {provider} cannot be fetched: {e.message}"
            ) from None
        return provider

    def _require_signer(self, provider: str, signer: str | None) -> None:
        """Refuse a request about ``provider`` signed by another one, or unsigned while
        ``provider`` says it signs its requests."""
        if signer is not None:
            if signer != provider:
                raise OCMRefused(
                    403,
                    f"The request is signed by {signer} but speaks for {provider}; "
                    "nothing was changed.",
                )
            return
        try:
            endpoint = self.mesh.discover(provider)
        except PeerError as e:
            raise OCMRefused(
                503, f"Whether {provider} signs its requests cannot be checked: {e.message}"
            ) from None
        if endpoint.signs or endpoint.cavage:
            raise OCMRefused(
                401,
                f"{provider} signs its requests, and this one is not signed; nothing was changed.",
            )

    # -- POST <endPoint>/shares -------------------------------------------------------------------

    def _require_enabled(self) -> None:
        if not self.mesh.enabled:
            raise OCMRefused(
                501, "This site does not accept federated shares (it trusts no other site)."
            )

    def receive_share(self, document: dict[str, Any], signer: str | None = None) -> dict[str, Any]:
        """Store a share another site made with one of our users (pending); the 201 answer.
        ``signer``: the provider whose signature the request carries (`signer`)."""
        self._require_enabled()
        _missing(document, NEW_SHARE_FIELDS, {"protocol": dict})
        provider = self._trusted_provider(document, "sender")
        owner_provider = self._trusted_provider(document, "owner")
        self._require_signer(provider, signer)
        if document["shareType"] != "user":
            raise OCMRefused(501, f"Share type {document['shareType']!r} is not supported here.")
        if document["resourceType"] not in RESOURCE_TYPES:
            raise OCMRefused(
                501, f"Resource type {document['resourceType']!r} is not supported here."
            )
        user = self._local_user(document["shareWith"])
        protocol = document["protocol"]
        if protocol.get("name") == "webdav" and isinstance(protocol.get("options"), dict):
            uri, secret, words = self._legacy_webdav(protocol["options"], provider)
            auth = "basic"
        else:
            uri, secret, words = self._webdav(protocol)
            auth = "bearer"
        webapp_uri = self._webapp(protocol, provider)
        name = document["name"].replace("\\", "/").rstrip("/")
        name = posixpath.basename(name)
        if name in ("", ".", "..") or "\x00" in name or len(name) > 255:
            raise OCMRefused(400, "The share's name is not a file name.", [("name", "INVALID")])
        if not _PROVIDER_ID.fullmatch(document["providerId"]):
            raise OCMRefused(400, "providerId is not a short printable identifier.")
        expiration = document.get("expiration")
        if expiration is not None and type(expiration) is not int:
            raise OCMRefused(400, "expiration must be seconds since the epoch.")
        received = self.state.receive_share(
            user=user,
            provider=provider,
            provider_id=document["providerId"],
            name=name,
            owner=document["owner"],
            sender=document["sender"],
            owner_display=str(document.get("ownerDisplayName") or ""),
            sender_display=str(document.get("senderDisplayName") or ""),
            resource_type=document["resourceType"],
            permissions=words,
            webdav_uri=uri,
            shared_secret=secret,
            webdav_auth=auth,
            expiration=expiration,
            webapp_uri=webapp_uri,
        )
        log.info(
            "OCM: %s of %s shared %s with %s (received share %d, from %s)",
            document["sender"],
            owner_provider,
            name,
            user,
            received.id,
            provider,
        )
        return {"recipientDisplayName": user}

    def _trusted_provider(self, document: dict[str, Any], name: str) -> str:
        try:
            _, provider = split_address(document[name])
        except ValueError:
            raise OCMRefused(
                400, f"{name} must be an address user@provider.", [(name, "INVALID")]
            ) from None
        if self.mesh.trusted(provider) is None:
            raise OCMRefused(
                403,
                f"{provider} is not a trusted provider of this site; nothing was stored. "
                "Ask the administrators of both sites to trust each other.",
            )
        return provider

    def _local_user(self, address: str) -> str:
        try:
            user, provider = split_address(address)
        except ValueError:
            raise OCMRefused(
                400, "shareWith must be an address user@provider.", [("shareWith", "INVALID")]
            ) from None
        if provider != self.mesh.provider:
            raise OCMRefused(
                400,
                f"shareWith names the provider {provider}, not this one ({self.mesh.provider}).",
                [("shareWith", "NOT_FOUND")],
            )
        if user not in self.users():
            raise OCMRefused(
                400, f"{user} is not a user of this site.", [("shareWith", "NOT_FOUND")]
            )
        return user

    def _webdav(self, protocol: dict[str, Any]) -> tuple[str, str, list[str]]:
        """(uri, sharedSecret, permissions) of the protocol object; only OCM 1.1's ``webdav``
        with a shared secret is taken."""
        webdav = protocol.get("webdav")
        if not isinstance(webdav, dict):
            raise OCMRefused(501, "Only the webdav protocol is supported here.")
        errors = [
            (f"protocol.webdav.{key}", "REQUIRED")
            for key in ("uri", "sharedSecret")
            if not isinstance(webdav.get(key), str) or not webdav[key]
        ]
        if errors:
            raise OCMRefused(
                400,
                "protocol.webdav needs a uri and a sharedSecret (the code flow is not supported).",
                errors,
            )
        uri = webdav["uri"]
        if "://" in uri and (
            not uri.lower().startswith(("http://", "https://"))
            or self.mesh.trusted(provider_of(uri)) is None
        ):
            raise OCMRefused(
                400,
                "protocol.webdav.uri names a host this site does not trust.",
                [("protocol.webdav.uri", "INVALID")],
            )
        requirements = webdav.get("requirements")
        if requirements:
            raise OCMRefused(501, f"This site cannot fulfil the requirements {requirements}.")
        words = webdav.get("permissions", ["read"])
        if not isinstance(words, list) or not all(w in PERMISSION_WORDS for w in words):
            raise OCMRefused(
                400,
                "protocol.webdav.permissions must be a list of read, write and share.",
                [("protocol.webdav.permissions", "INVALID")],
            )
        return uri, webdav["sharedSecret"], sorted(set(words) - {"share"} | {"read"})

    def _webapp(self, protocol: dict[str, Any], provider: str) -> str | None:
        """The ``webapp.uriTemplate`` of the protocol object when it is an absolute http(s)
        URL at the sender's own provider (host and port exactly), else None: the share is
        taken without it, since a recipient clicks it."""
        webapp = protocol.get("webapp")
        template = webapp.get("uriTemplate") if isinstance(webapp, dict) else None
        if not isinstance(template, str):
            return None
        parts = urlsplit(template)
        if (
            len(template) > MAX_URI_CHARS
            or parts.scheme not in ("http", "https")
            or any(ord(c) <= 32 or c in "\"<>\\'`" for c in template)
            or parts.username is not None
            or parts.password is not None
            or provider_of(template) != provider
        ):
            log.info("OCM: a share from %s came with a webapp link elsewhere, dropped", provider)
            return None
        return template

    def _legacy_webdav(self, options: dict[str, Any], provider: str) -> tuple[str, str, list[str]]:
        """(uri, sharedSecret, permissions) of OCM 1.0's ``{name: webdav, options: {...}}``
        (what Nextcloud sends): the share is reached at the WebDAV path the sender's discovery
        names, with the secret as Basic user name. Its permissions are not in a form OCM
        defines, so the share is taken as read-only here (the sender enforces its own)."""
        secret = _secret(options, "protocol.options", "protocol.options needs a sharedSecret.")
        try:
            endpoint = self.mesh.discover(provider)
        except PeerError as e:
            raise OCMRefused(
                503, f"The sender's discovery, needed for the OCM 1.0 form, failed: {e.message}"
            ) from None
        if not endpoint.webdav:
            raise OCMRefused(501, f"{provider} names no WebDAV path in its discovery.")
        peer = self.mesh.trusted(provider)
        assert peer is not None  # discover() answers trusted providers only
        uri = urljoin(peer.root + "/", endpoint.webdav)
        if self.mesh.trusted(provider_of(uri)) is None:
            raise OCMRefused(
                501, f"{provider} names its WebDAV path on a host this site does not trust."
            )
        return uri, secret, ["read"]

    # -- POST <endPoint>/notifications ------------------------------------------------------------

    def receive_notification(
        self, document: dict[str, Any], signer: str | None = None
    ) -> dict[str, Any]:
        """Apply a notification about a share; the 201 answer. Only a notification that carries
        the share's secret changes anything, and only when it comes from the share's other site
        (signed by it when it signs its requests)."""
        self._require_enabled()
        _missing(document, NOTIFICATION_FIELDS, {})
        details = document.get("notification") or {}
        if not isinstance(details, dict):
            raise OCMRefused(400, "notification must be an object.", [("notification", "INVALID")])
        secret = _secret(
            details, "notification", "notification.sharedSecret is required: it proves the share."
        )
        note = Notification(
            document["notificationType"], document["providerId"], secret, document["resourceType"]
        )
        owned = self._owned_share(note)
        if owned is not None:
            _, recipient_provider = split_address(owned.share_with or "")
            self._require_signer(recipient_provider, signer)
            self._about_sent_share(owned, note)
            return {}
        received = [
            r
            for r in self._received_matching(note)
            if secrets.compare_digest(r.shared_secret, note.secret)
        ]
        if not received:
            raise OCMRefused(
                403, "No share of this site matches this providerId and secret; nothing changed."
            )
        for share in received:
            self._require_signer(share.provider, signer)
        if note.kind == "SHARE_UNSHARED":
            for share in received:
                self.state.forget_received_share(share.id)
        elif note.kind == SHARE_CHANGE:
            words, expiration = _changed_terms(details)
            for share in received:
                self.state.change_received_share(share.id, words, expiration)
        return {}

    def _owned_share(self, note: Notification) -> ShareRecord | None:
        if not note.provider_id.isdigit() or len(note.provider_id) > 18:
            return None
        share = self.state.share(int(note.provider_id))
        if share is None or share.share_type != SHARE_FEDERATED or not share.token:
            return None
        return share if secrets.compare_digest(share.token, note.secret) else None

    def _received_matching(self, note: Notification) -> list[ReceivedShare]:
        return [
            share
            for provider in self.mesh.peers
            if (share := self.state.received_share_from(provider, note.provider_id)) is not None
        ]

    def _about_sent_share(self, share: ShareRecord, note: Notification) -> None:
        """A recipient's answer to a share sent from here: accepted is noted; declined ends
        the share (its secret stops working), as Nextcloud does."""
        recipient = share.share_with or ""
        if note.kind == "SHARE_ACCEPTED":
            self.state.set_share_state(share.id, recipient, STATE_ACCEPTED, None)
        elif note.kind in ("SHARE_DECLINED", "SHARE_UNSHARED"):
            self.state.delete_share(share.id)

    # -- the invite flow ---------------------------------------------------------------------------

    def receive_invite_accepted(
        self, document: dict[str, Any], signer: str | None = None
    ) -> dict[str, Any]:
        """``POST <endPoint>/invite-accepted``: a user of a trusted site accepted an invite of
        one of ours; both are now each other's contacts. The 200 answer names our user."""
        self._require_enabled()
        _missing(document, INVITE_ACCEPTED_FIELDS[:3], {})
        for name in INVITE_ACCEPTED_FIELDS:  # email and name may be empty, not absent
            if not isinstance(document.get(name), str):
                raise OCMRefused(400, f"{name} must be a string.", [(name, "INVALID_TYPE")])
        provider = document["recipientProvider"].strip().lower()
        if self.mesh.trusted(provider) is None:
            raise OCMRefused(
                403,
                f"{provider} is not a trusted provider of this site; the invite stays open. "
                "Ask the administrators of both sites to trust each other.",
            )
        self._require_signer(provider, signer)
        user_id = document["userID"]
        if len(user_id) > 255 or any(ord(c) < 32 for c in user_id):
            raise OCMRefused(400, "userID is not a user identifier.", [("userID", "INVALID")])
        invite = self.state.invite(document["token"])
        if invite is None:
            raise OCMRefused(400, "This invite does not exist (mistyped, or withdrawn).")
        if invite["accepted"] is not None:
            raise OCMRefused(409, "This invite was accepted already; an invite is used once.")
        if invite["expires"] < time.time():
            raise OCMRefused(400, "This invite has expired; ask for a new one.")
        contact = {
            "address": f"{user_id}@{provider}",
            "name": document["name"][:255] or user_id,
            "email": document["email"][:255],
        }
        if not self.state.use_invite(document["token"], contact):
            raise OCMRefused(409, "This invite was accepted already; an invite is used once.")
        inviter = invite["user"]
        log.info("OCM: %s accepted the invite of %s", contact["address"], inviter)
        return {"userID": inviter, "email": "", "name": inviter}

    def invites(
        self, user: str, method: str, parts: list[str], arg: Callable[[str], str | None]
    ) -> Any:
        """The user's side of the invite flow below ``apps/files_sharing/api/v1/``:
        ``POST ocm_invites`` makes an invite, ``GET ocm_invites`` lists the open ones,
        ``DELETE ocm_invites/<token>`` withdraws one, ``POST ocm_invites/accept`` accepts one
        of another site (``invite=`` the invite string, or ``token=`` and ``provider=``),
        ``GET ocm_contacts`` lists the contacts and ``DELETE ocm_contacts/<address>`` forgets
        one."""
        if parts == ["ocm_invites"] and method == "POST":
            return self.create_invite(user)
        if parts == ["ocm_invites"] and method == "GET":
            now = time.time()
            return [self._invite_data(row) for row in self.state.open_invites_of(user, now)]
        if parts == ["ocm_invites", "accept"] and method == "POST":
            if arg("invite") is None:
                return self.accept_invite(user, arg("token") or "", arg("provider") or "")
            return self.accept_invite(user, *_decoded_invite(arg("invite") or ""))
        if len(parts) == 2 and parts[0] == "ocm_invites" and method == "DELETE":
            if not self.state.withdraw_invite(user, parts[1]):
                raise OCSError(
                    404,
                    "You have no open invite with this token: it was accepted or withdrawn "
                    "already, or it is not yours. Nothing was changed.",
                )
            return []
        if parts == ["ocm_contacts"] and method == "GET":
            return [_contact_data(row) for row in self.state.contacts_of(user)]
        if len(parts) >= 2 and parts[0] == "ocm_contacts" and method == "DELETE":
            address = "/".join(parts[1:])
            if not self.state.remove_contact(user, address):
                raise OCSError(404, f"{address} is not one of your contacts. Nothing was changed.")
            return []
        raise OCSError(404, "Unknown invite endpoint")

    def create_invite(self, user: str) -> dict[str, Any]:
        if not self.mesh.enabled:
            raise OCSError(403, "Federated sharing is off: this site trusts no other site.")
        token = secrets.token_urlsafe(24)
        expires = int(time.time()) + INVITE_SECONDS
        self.state.create_invite(user, token, expires)
        return self._invite_data({"token": token, "expires": expires})

    def _invite_data(self, row: Any) -> dict[str, Any]:
        token = row["token"]
        return {
            "token": token,
            "provider": self.mesh.provider,
            "invite": base64.b64encode(f"{token}@{self.mesh.provider}".encode()).decode(),
            "link": self.invite_link(token),
            "expiration": datetime.datetime.fromtimestamp(row["expires"], datetime.timezone.utc)
            .isoformat()
            .replace("+00:00", "Z"),
        }

    def accept_invite(self, user: str, token: str, provider: str) -> dict[str, Any]:
        """Accept the invite ``token`` of a user of the trusted site ``provider`` (its
        ``host[:port]``, or its URL): tell that site, and keep its user as a contact of
        ``user``."""
        token, provider = self.checked_invite(token, provider)
        document = {
            "recipientProvider": self.mesh.provider,
            "token": token,
            "userID": user,
            "email": "",
            "name": user,
        }
        try:
            answer = self.mesh.post(provider, "invite-accepted", document)
        except PeerError as e:
            message = f"The invite could not be accepted at {provider}: {e.message}"
            raise OCSError(e.status, message) from None
        found = answer.document if isinstance(answer.document, dict) else {}
        if answer.status != 200:
            said = found.get("message")
            code = answer.status if answer.status in (400, 403, 409) else 503
            raise OCSError(
                code, f"{provider} refused the invite ({answer.status}: {said or 'no reason'})."
            )
        user_id = found.get("userID")
        if not isinstance(user_id, str) or not user_id or len(user_id) > 255:
            raise OCSError(503, f"{provider} took the invite but did not say whose it is.")
        name = found.get("name")
        email = found.get("email")
        contact = {
            "address": f"{user_id}@{provider}",
            "name": name[:255] if isinstance(name, str) and name else user_id,
            "email": email[:255] if isinstance(email, str) else "",
        }
        self.state.add_contact(user, contact)
        return {**contact, "provider": provider, "userID": user_id}

    def checked_invite(self, token: str, provider: str) -> tuple[str, str]:
        """(token, provider) of an invite of another site as a person typed or a link
        carried them (``provider`` as ``host[:port]`` or a URL); OCSError with a sentence for
        a missing or malformed token, or a site outside the mesh."""
        token, provider = token.strip(), provider.strip().lower()
        provider = provider_of(provider) if "://" in provider else provider.rstrip("/")
        if not token or not provider:
            raise OCSError(
                400, "Give the invite's token and the site it is from, as you were sent them."
            )
        check_invite_token(token)
        if not self.mesh.enabled or self.mesh.trusted(provider) is None:
            raise OCSError(
                403,
                f"The invite is from {provider}, which is not a trusted provider of this site; "
                "ask your administrators to trust it.",
            )
        return token, provider

    def invite_link(self, token: str) -> str:
        """The link that leads the person invited to this site's WAYF page, which sends them
        on to their own site."""
        return f"{self.public_url}{WAYF_PATH}?{urlencode({'token': token})}"

    def invite_accept_dialog(self, provider: str, token: str) -> str:
        """Where the WAYF page sends a person of the trusted site ``provider`` to accept the
        invite ``token`` of this site: that site's ``inviteAcceptDialog`` with ``token`` and
        ``providerDomain``; "" when it names no such page; PeerError with a sentence when its
        discovery fails."""
        dialog = self.mesh.discover(provider).invite_accept_dialog
        if not dialog:
            return ""
        query = urlencode({"token": token, "providerDomain": self.mesh.provider})
        return f"{dialog}{'&' if '?' in dialog else '?'}{query}"

    def contact_sharees(self, user: str, search: str) -> list[dict[str, Any]]:
        """The sharee search's entries for ``user``'s contacts whose address or name holds
        ``search`` (lower case), as federated sharees."""
        found = []
        for row in self.state.contacts_of(user):
            if search not in row["address"].lower() and search not in row["name"].lower():
                continue
            _, provider = split_address(row["address"])
            peer = self.mesh.trusted(provider)
            if peer is None:
                continue  # a site no longer in the mesh: nothing can be shared with it
            found.append(
                {
                    "label": f"{row['name']} ({row['address']})",
                    "value": {
                        "shareType": SHARE_FEDERATED,
                        "shareWith": row["address"],
                        "server": peer.root,
                    },
                }
            )
        return found

    # -- sending (OCS share type 6) ---------------------------------------------------------------

    def send_share(self, fields: dict[str, Any], share_with: str) -> ShareRecord:
        """Create the federated share of ``fields`` with ``share_with`` (``user@provider``) and
        send it; if the peer does not take it, nothing remains of it here."""
        try:
            user, provider = split_address(share_with.strip())
        except ValueError as e:
            raise OCSError(400, f"{e}; a federated share goes to user@provider.") from None
        if not self.mesh.enabled:
            raise OCSError(403, "Federated sharing is off: this site trusts no other site.")
        if self.mesh.trusted(provider) is None:
            raise OCSError(
                403,
                f"{provider} is not a trusted provider of this site; ask your administrators "
                "to trust it.",
            )
        owner_address = f"{fields['owner']}@{self.mesh.provider}"
        share = self.state.create_share(
            share_type=SHARE_FEDERATED,
            share_with=f"{user}@{provider}",
            token=secrets.token_urlsafe(32),
            app_token=secrets.token_urlsafe(32),
            **fields,
        )
        try:
            answer = self.mesh.post(provider, "shares", self._new_share(share, owner_address))
        except PeerError as e:
            self.state.delete_share(share.id)
            raise OCSError(
                e.status,
                f"The share could not be sent to {provider}: {e.message} Nothing was shared.",
            ) from None
        if answer.status != 201:
            self.state.delete_share(share.id)
            said = answer.document.get("message") if isinstance(answer.document, dict) else None
            code = answer.status if answer.status in (400, 403, 404, 501) else 503
            raise OCSError(
                code,
                f"{provider} refused the share ({answer.status}"
                + (f": {said}" if said else "")
                + "). Nothing was shared.",
            )
        return share

    def _new_share(self, share: ShareRecord, owner_address: str) -> dict[str, Any]:
        """The NewShare document of ``share``."""
        document: dict[str, Any] = {
            "shareWith": share.share_with,
            "name": share.name,
            "providerId": str(share.id),
            "owner": owner_address,
            "sender": owner_address,
            "ownerDisplayName": share.owner,
            "senderDisplayName": share.owner,
            "shareType": "user",
            "resourceType": share.item_type,
            "protocol": {
                "name": "multi",
                "webdav": {
                    "uri": f"{self.public_url}/public.php/webdav/",
                    "sharedSecret": share.token,
                    "permissions": permission_words(share.permissions),
                },
            },
        }
        if share.app_token:
            # the page needs no secret: its URL names the share by an id of its own
            document["protocol"]["webapp"] = {
                "uriTemplate": f"{self.public_url}/ocm/app/{share.app_token}/{RELATIVE_PATH}",
                "viewMode": "view",
            }
        if share.note:
            document["description"] = share.note
        if share.expiration:
            document["expiration"] = _expiration(share)
        return document

    def changed(self, share: ShareRecord) -> None:
        """Tell the recipient's site the new permissions and expiry of ``share`` (sent from
        here), as `SHARE_CHANGE_PERMISSION`; sent again while that site cannot be reached."""
        _, provider = split_address(share.share_with or "")
        document = self._notification(SHARE_CHANGE, share.id, share)
        document["notification"]["permissions"] = permission_words(share.permissions)
        document["notification"]["expiration"] = _expiration(share)
        self.outbox.notify(provider, document)

    def sharee(self, typed: str) -> dict[str, Any] | None:
        """The sharee search's entry for ``typed`` when it is an address ``user@provider`` of
        a trusted site (Nextcloud's ``remotes``), else None."""
        try:
            user, provider = split_address(typed)
        except ValueError:
            return None
        peer = self.mesh.trusted(provider)
        if peer is None or not self.mesh.enabled:
            return None
        address = f"{user}@{peer.provider}"
        return {
            "label": address,
            "value": {"shareType": SHARE_FEDERATED, "shareWith": address, "server": peer.root},
        }

    def unshared(self, share: ShareRecord) -> None:
        """Tell the recipient's site that ``share`` (already deleted here) is gone."""
        _, provider = split_address(share.share_with or "")
        self.outbox.notify(provider, self._notification("SHARE_UNSHARED", share.id, share))

    @staticmethod
    def _notification(kind: str, provider_id: Any, share: Any) -> dict[str, Any]:
        secret = share.token if isinstance(share, ShareRecord) else share.shared_secret
        resource = share.item_type if isinstance(share, ShareRecord) else share.resource_type
        return {
            "notificationType": kind,
            "resourceType": resource,
            "providerId": str(provider_id),
            "notification": {"sharedSecret": secret, "message": kind.replace("_", " ").lower()},
        }

    # -- received shares (OCS remote_shares) ------------------------------------------------------

    def remote_shares(self, user: str, method: str, parts: list[str], *, via: str = "token") -> Any:
        """Nextcloud's ``remote_shares`` API below ``apps/files_sharing/api/v1/``, and
        ``GET remote_shares/mounts`` (this drive's own): how the user's notebook server
        reaches each accepted share."""
        if parts == ["mounts"] and method == "GET":
            return self.mounts(user, via)
        if parts in ([], ["pending"]) and method == "GET":
            state = STATE_PENDING if parts else STATE_ACCEPTED
            return [self._remote_data(s) for s in self.state.received_shares_of(user, state)]
        if len(parts) == 2 and parts[0] == "pending" and method in ("POST", "DELETE"):
            share = self._mine(user, parts[1], STATE_PENDING)
            return self.accept(share) if method == "POST" else self.decline(share)
        if len(parts) == 1 and method == "GET":
            return self._remote_data(self._mine(user, parts[0], None))
        if len(parts) == 1 and method == "DELETE":
            return self.decline(self._mine(user, parts[0], None))
        raise OCSError(404, "Unknown remote shares endpoint")

    def _mine(self, user: str, text: str, state: int | None) -> ReceivedShare:
        share = self.state.received_share(int(text)) if re.fullmatch(r"\d{1,18}", text) else None
        if share is None or share.user != user or (state is not None and share.state != state):
            raise OCSError(404, "Wrong share ID, share does not exist")
        return share

    def mount_names(self, user: str) -> set[str]:
        """The names under ``Shared/`` the user's accepted shares from other sites hold."""
        accepted = self.state.received_shares_of(user, STATE_ACCEPTED)
        return {s.mount_name for s in accepted if s.mount_name}

    def mounts(self, user: str, via: str) -> list[dict[str, Any]]:
        """Each accepted share with what opens it: its WebDAV URL and secret. Only for a
        token (the user's own notebook server, a client with an app password), never for a
        browser session: a page of the drive has no use for a secret."""
        if via != "token":
            raise OCSError(403, "The shares' secrets are given to token-authenticated clients only")
        found = []
        for share in self.state.received_shares_of(user, STATE_ACCEPTED):
            data = self._remote_data(share)
            found.append(
                {
                    **data,
                    "mount_name": data["mountpoint"].rpartition("/")[2],
                    "webdav_uri": share.webdav_uri,
                    "webdav_auth": share.webdav_auth,
                    "shared_secret": share.shared_secret,
                }
            )
        return found

    def accept(self, share: ReceivedShare) -> list:
        taken = self.mount_names(share.user) | set(self.spaces.mounts(share.user))
        name, n = share.name, 2
        while name in taken:
            name = f"{share.name} ({n})"
            n += 1
        self.state.set_received_state(share.id, STATE_ACCEPTED, name)
        self.outbox.notify(
            share.provider, self._notification("SHARE_ACCEPTED", share.provider_id, share)
        )
        return []

    def decline(self, share: ReceivedShare) -> list:
        """Decline a pending share or leave an accepted one: it is forgotten here, and the
        sender is told (it then ends the share)."""
        self.state.forget_received_share(share.id)
        self.outbox.notify(
            share.provider, self._notification("SHARE_DECLINED", share.provider_id, share)
        )
        return []

    def _mount_name(self, share: ReceivedShare) -> str:
        """The name of an accepted share under ``Shared/``; one that a share of this site
        took since (an auto-accepted one) is told apart by its owner's address."""
        name = share.mount_name or share.name
        if name in self.spaces.mounts(share.user):
            return f"{name} ({share.owner})"
        return name

    def _remote_data(self, share: ReceivedShare) -> dict[str, Any]:
        peer = self.mesh.trusted(share.provider)
        owner = share.owner.rpartition("@")[0] or share.owner
        mountpoint = (
            f"/{self.spaces.share_folder}/{self._mount_name(share)}"
            if share.state == STATE_ACCEPTED
            else None
        )
        folder = share.resource_type == "folder"
        return {
            "id": share.id,
            "remote": peer.root if peer else share.provider,
            "remote_id": share.provider_id,
            "name": f"/{share.name}",
            "owner": owner,
            "owner_address": share.owner,
            "owner_display_name": share.owner_display or owner,
            "sender": share.sender,
            "user": share.user,
            "mountpoint": mountpoint,
            "accepted": int(share.state == STATE_ACCEPTED),
            "state": share.state,
            "type": "dir" if folder else "file",
            "mimetype": "httpd/unix-directory" if folder else "application/octet-stream",
            "permissions": permission_bits(share.permissions, share.resource_type),
            "ocm_permissions": share.permissions,
            "mtime": share.created,
            "expiration": share.expiration,
            "webapp_url": webapp_url(share),
        }
