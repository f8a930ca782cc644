"""This site's Open Cloud Mesh signing key and the RFC 9421 HTTP Message Signatures of its
server-to-server requests: signing outgoing POSTs, verifying incoming ones (freshness, replays).

It reads and writes only its key file; where a peer's public keys come from is the caller's
(`Mesh`) business. It must not touch shares.
"""

from __future__ import annotations

import base64
import datetime
import os
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate

import http_sf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from http_message_signatures.signatures import SignatureVerifyWarning

#: the signature label OCM requires
LABEL = "ocm"
#: the components every OCM signature must cover (the spec's Appendix B)
COMPONENTS = ("@method", "@target-uri", "content-digest", "content-length", "date")
#: how old a signature may be (seconds); a signature is refused a second time within it
WINDOW_SECONDS = 60
#: where a site publishes its public keys (RFC 7517), at its root
JWKS_PATH = "/.well-known/jwks.json"


# OCM names its signature by the label `ocm` alone (no `tag`); the library warns about that
# choice on every request, which says nothing to an admin.
warnings.filterwarnings("ignore", category=SignatureVerifyWarning)


class SignatureRefused(Exception):
    """An incoming request's signature is missing, wrong, stale or replayed: ``message`` says
    which, for a person."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.message = message
        self.status = status


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SiteKey:
    """The site's Ed25519 key pair, made at first start in ``path`` (readable by its owner
    only) and kept from then on; ``kid`` is ``<provider>#key1``, as the spec's example."""

    def __init__(self, path: str, provider: str):
        self.path = path
        self.kid = f"{provider}#key1"
        self.private = self._load_or_create(path)

    @staticmethod
    def _load_or_create(path: str) -> Ed25519PrivateKey:
        try:
            with open(path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # written beside and linked into place: never a half-written key, and of two
            # starts at once the first one's key is the one both keep
            spare = f"{path}.{secrets.token_hex(4)}"
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(spare, path)
            except FileExistsError:
                return SiteKey._load_or_create(path)
            finally:
                os.unlink(spare)
            return key
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key

    def jwks(self) -> dict:
        """The public half, as ``/.well-known/jwks.json`` answers it."""
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": _b64url(raw)}]}

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        """Add ``Date``, ``Content-Length``, ``Content-Digest``, ``Signature-Input`` and
        ``Signature`` (label ``ocm``) to ``headers`` of a request about to be sent."""
        for name in [name for name in headers if name.lower() in ("date", "content-length")]:
            del headers[name]
        headers["Date"] = formatdate(usegmt=True)
        headers["Content-Length"] = str(len(body))
        message = _Message(method, url, headers)
        signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519, key_resolver=_OwnKey(self)
        )
        signer.sign(
            message,
            key_id=self.kid,
            created=datetime.datetime.now(datetime.timezone.utc),
            nonce=secrets.token_urlsafe(16),
            label=LABEL,
            covered_component_ids=COMPONENTS,
            body=body,
        )


@dataclass
class _Message:
    """A request as the signature library reads it."""

    method: str
    url: str
    headers: Mapping[str, str]


class _OCMVerifier(HTTPMessageVerifier):
    allow_label_only_selection = True


class _OwnKey(HTTPSignatureKeyResolver):
    def __init__(self, key: SiteKey):
        self.key = key

    def resolve_private_key(self, key_id: str):
        return self.key.private


class _PeerKeys(HTTPSignatureKeyResolver):
    def __init__(self, keys: Mapping[str, Ed25519PublicKey]):
        self.keys = keys

    def resolve_public_key(self, key_id: str):
        return self.keys.get(key_id)


def public_keys(jwks: object) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document by ``kid``; other kinds of key are left out."""
    found: dict[str, Ed25519PublicKey] = {}
    for entry in (jwks.get("keys") if isinstance(jwks, dict) else None) or []:
        if not isinstance(entry, dict) or entry.get("kty") != "OKP":
            continue
        if entry.get("crv") != "Ed25519" or not isinstance(entry.get("kid"), str):
            continue
        try:
            x = str(entry.get("x") or "")
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            found[entry["kid"]] = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            continue
    return found


def key_provider(headers: Mapping[str, str]) -> str | None:
    """The provider an incoming request's ``ocm`` signature names in its ``keyid`` (the part
    before ``#``), or None for an unsigned request."""
    value = headers.get("Signature-Input")
    if value is None:
        return None
    try:
        members = http_sf.parse(value.encode(), tltype="dictionary")
        keyid = members[LABEL][1]["keyid"]
    except (ValueError, KeyError, IndexError, TypeError):
        keyid = None
    if not isinstance(keyid, str) or not keyid:
        raise SignatureRefused(
            "The request carries no ocm signature with a keyid; nothing was changed."
        )
    return keyid.partition("#")[0].lower()


@dataclass
class Verifier:
    """Checks incoming signatures; remembers each accepted one for `WINDOW_SECONDS`, so the
    same signed request sent again is refused."""

    window: float = WINDOW_SECONDS
    _seen: dict[bytes, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        keys: Callable[[], Mapping[str, Ed25519PublicKey]],
    ) -> None:
        """Raise `SignatureRefused` unless the request carries exactly one fresh ``ocm``
        signature over `COMPONENTS`, by one of ``keys()``, over this body, never seen before."""
        if headers.get("Signature") is None or headers.get("Signature-Input") is None:
            raise SignatureRefused("The request is not signed; nothing was changed.")
        verifier = _OCMVerifier(
            signature_algorithm=algorithms.ED25519, key_resolver=_PeerKeys(keys())
        )
        try:
            results = verifier.verify(
                _Message(method, url, headers),
                max_age=datetime.timedelta(seconds=self.window),
                expect_label=LABEL,
                require_components=COMPONENTS,
                body=body,
            )
        except (InvalidSignature, HTTPMessageSignaturesException) as e:
            why = str(e) or "it was not made with a key its provider publishes for this request"
            raise SignatureRefused(
                f"The request's signature does not verify ({why}); nothing was changed."
            ) from None
        if len(results) != 1:
            raise SignatureRefused("The request must carry exactly one ocm signature.")
        signature = headers["Signature"].encode()
        now = time.monotonic()
        with self._lock:
            for seen, until in list(self._seen.items()):
                if until < now:
                    del self._seen[seen]
            if signature in self._seen:
                raise SignatureRefused(
                    "This signed request was received before (a replay); nothing was changed."
                )
            # the window plus the library's clock skew: a copy sent later is refused as stale
            self._seen[signature] = now + self.window + 10
