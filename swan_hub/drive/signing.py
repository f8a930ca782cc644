"""This site's Open Cloud Mesh signing keys and the signatures of its server-to-server requests,
RFC 9421 HTTP Message Signatures and Nextcloud's draft-cavage HTTP signatures: signing outgoing
POSTs, verifying incoming ones (freshness, replays).

It reads and writes only its key files; where a peer's public keys come from is the caller's
(`Mesh`) business. It must not touch shares.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import re
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import http_sf
from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
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
#: seconds a signature may be dated ahead of this site's clock
CLOCK_SKEW_SECONDS = 10

#: the header fields a draft-cavage signature must cover (Nextcloud's profile of OCM)
CAVAGE_HEADERS = ("(request-target)", "content-length", "date", "digest", "host")
#: the draft-cavage algorithm this site signs with
CAVAGE_ALGORITHM = "rsa-sha256"
#: the draft-cavage algorithms taken from other sites, with their hashes
CAVAGE_HASHES = {"rsa-sha256": hashes.SHA256, "rsa-sha512": hashes.SHA512}
#: the ``Digest`` algorithms (RFC 3230) taken, with their hashes
DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
#: the size of the site's draft-cavage RSA key (bits)
RSA_BITS = 2048


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


def load_or_create_key(path: str, generate: Callable[[], Any], kind: type) -> Any:
    """The private key in ``path`` (PEM), made with ``generate`` at first use and kept from then
    on, readable by its owner only; ValueError if the file holds another ``kind`` of key."""
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        key = generate()
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
            return load_or_create_key(path, generate, kind)
        finally:
            os.unlink(spare)
        return key
    if not isinstance(key, kind):
        raise ValueError(f"{path} does not hold the {kind.__name__} it should")
    return key


class SiteKey:
    """The site's Ed25519 key pair, made at first start in ``path`` (readable by its owner
    only) and kept from then on; ``kid`` is ``<provider>#key1``, as the spec's example."""

    def __init__(self, path: str, provider: str):
        self.path = path
        self.kid = f"{provider}#key1"
        self.private: Ed25519PrivateKey = load_or_create_key(
            path, Ed25519PrivateKey.generate, Ed25519PrivateKey
        )

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


class CavageKey:
    """The site's RSA key pair for draft-cavage HTTP signatures (the ones Nextcloud makes and
    checks), made at first start in ``path`` (readable by its owner only) and kept from then
    on; ``key_id`` is ``<public URL of the drive>/ocm#signature``, as Nextcloud names its own."""

    def __init__(self, path: str, key_id: str):
        self.path = path
        self.key_id = key_id
        self.private: rsa.RSAPrivateKey = load_or_create_key(
            path, lambda: rsa.generate_private_key(65537, RSA_BITS), rsa.RSAPrivateKey
        )

    def public_key(self) -> dict[str, str]:
        """The discovery's ``publicKey``: the key id as ``keyId`` (Nextcloud's name) and ``id``
        (the spec's), and the public half as PEM."""
        pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"keyId": self.key_id, "id": self.key_id, "publicKeyPem": pem.decode()}

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        """Add ``Date``, ``Content-Length``, ``Digest`` and ``Signature`` (`CAVAGE_HEADERS`,
        `CAVAGE_ALGORITHM`) to ``headers`` of a request about to be sent to ``url``."""
        for name in [n for n in headers if n.lower() in ("date", "content-length", "digest")]:
            del headers[name]
        headers["Date"] = formatdate(usegmt=True)
        headers["Content-Length"] = str(len(body))
        headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        # the Host the request goes out with (the checked client names it), else the URL's
        fields = {name.lower(): value for name, value in headers.items()}
        fields.setdefault("host", urlsplit(url).netloc)
        text = _cavage_text(method, url, CAVAGE_HEADERS, fields)
        signature = self.private.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        headers["Signature"] = (
            f'keyId="{self.key_id}",algorithm="{CAVAGE_ALGORITHM}",'
            f'headers="{" ".join(CAVAGE_HEADERS)}",'
            f'signature="{base64.b64encode(signature).decode()}"'
        )


def _cavage_text(
    method: str, url: str, covered: list[str] | tuple[str, ...], fields: Mapping[str, str]
) -> str:
    """The text a draft-cavage signature signs: one ``name: value`` line per covered field,
    ``(request-target)`` made of ``method`` and the path (and query) of ``url``."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = []
    for name in covered:
        if name == "(request-target)":
            value = f"{method.lower()} {target}"
        elif fields.get(name) is None:
            raise SignatureRefused(
                f"The signature covers the header {name}, which the request does not carry; "
                "nothing was changed."
            )
        else:
            value = fields[name]
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def cavage_parameters(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The parameters (``keyId``, ``algorithm``, ``headers``, ``signature``) of a request's
    draft-cavage ``Signature`` header; None when it carries none (no ``Signature``, or an
    RFC 9421 one: ``Signature-Input`` beside it)."""
    fields = {name.lower(): value for name, value in headers.items()}
    value = fields.get("signature")
    if value is None or fields.get("signature-input") is not None:
        return None
    found = dict(re.findall(r'([A-Za-z]+)="([^"]*)"', value))
    if not found.get("keyId") or not found.get("signature"):
        raise SignatureRefused(
            "The request's Signature header names no keyId and signature; nothing was changed."
        )
    return found


def cavage_public_keys(discovery: object) -> dict[str, rsa.RSAPublicKey]:
    """The RSA key a discovery document publishes (``publicKey``) by its key id (``keyId``, or
    the spec's ``id``); empty if it publishes none."""
    entry = discovery.get("publicKey") if isinstance(discovery, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("publicKeyPem"), str):
        return {}
    key_id = entry.get("keyId") or entry.get("id")
    if not isinstance(key_id, str) or not key_id:
        return {}
    try:
        key = serialization.load_pem_public_key(entry["publicKeyPem"].encode())
    except ValueError:
        return {}
    return {key_id: key} if isinstance(key, rsa.RSAPublicKey) else {}


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
        self._remember(headers["Signature"].encode())

    def verify_cavage(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        keys: Callable[[], Mapping[str, rsa.RSAPublicKey]],
    ) -> None:
        """Raise `SignatureRefused` unless the request's draft-cavage ``Signature`` covers
        `CAVAGE_HEADERS`, is dated within the window, its ``Digest`` and ``Content-Length`` are
        this body's, it verifies with the key of its ``keyId`` among ``keys()`` over this
        ``url`` (the URL the sender addressed: its path and host), and it was never seen
        before."""
        params = cavage_parameters(headers)
        if params is None:
            raise SignatureRefused("The request is not signed; nothing was changed.")
        covered = params.get("headers", "date").lower().split()
        missing = [name for name in CAVAGE_HEADERS if name not in covered]
        if missing:
            raise SignatureRefused(
                f"The request's signature does not cover {', '.join(missing)}; all of "
                f"{' '.join(CAVAGE_HEADERS)} must be signed. Nothing was changed."
            )
        algorithm = params.get("algorithm", CAVAGE_ALGORITHM).lower()
        if algorithm not in CAVAGE_HASHES:
            raise SignatureRefused(
                f"The signature algorithm {algorithm!r} is not taken here (only "
                f"{', '.join(CAVAGE_HASHES)}); nothing was changed."
            )
        fields = {name.lower(): value for name, value in headers.items()}
        self._check_date(fields.get("date"))
        if fields.get("content-length") != str(len(body)):
            raise SignatureRefused(
                "The request's Content-Length is not the length of its body; nothing was changed."
            )
        _check_digest(fields.get("digest"), body)
        # the host this site is addressed by, not what a proxy on the way may have put there
        fields["host"] = urlsplit(url).netloc
        text = _cavage_text(method, url, covered, fields)
        key = keys().get(params["keyId"])
        if key is None:
            raise SignatureRefused(
                f"The request's signature does not verify (its provider publishes no key "
                f"{params['keyId']}); nothing was changed."
            )
        try:
            signature = base64.b64decode(params["signature"], validate=True)
            key.verify(signature, text.encode(), padding.PKCS1v15(), CAVAGE_HASHES[algorithm]())
        except (BadSignature, ValueError):
            raise SignatureRefused(
                "The request's signature does not verify (it was not made with the key its "
                "provider publishes, over this request); nothing was changed."
            ) from None
        self._remember(params["signature"].encode())

    def _check_date(self, value: str | None) -> None:
        try:
            date = parsedate_to_datetime(value or "")
        except (TypeError, ValueError):
            date = None
        if date is None or date.tzinfo is None:
            raise SignatureRefused("The signed request carries no valid Date; nothing was changed.")
        age = (datetime.datetime.now(datetime.timezone.utc) - date).total_seconds()
        if age > self.window:
            raise SignatureRefused(
                f"The request's signature is older than {self.window:g} seconds (its Date is "
                f"{value}); nothing was changed."
            )
        if age < -CLOCK_SKEW_SECONDS:
            raise SignatureRefused(
                f"The request's signature is dated in the future ({value}); check the clocks "
                "of both sites. Nothing was changed."
            )

    def _remember(self, signature: bytes) -> None:
        """Refuse ``signature`` if it was accepted within the window, else note it."""
        now = time.monotonic()
        with self._lock:
            for seen, until in list(self._seen.items()):
                if until < now:
                    del self._seen[seen]
            if signature in self._seen:
                raise SignatureRefused(
                    "This signed request was received before (a replay); nothing was changed."
                )
            # the window plus the clock skew allowed: a copy sent later is refused as stale
            self._seen[signature] = now + self.window + CLOCK_SKEW_SECONDS


def _check_digest(value: str | None, body: bytes) -> None:
    """Refuse unless ``Digest`` names at least one algorithm of `DIGESTS` and each of them
    is the body's."""
    known = 0
    for part in (value or "").split(","):
        name, _, given = part.strip().partition("=")
        digest = DIGESTS.get(name.lower())
        if digest is None:
            continue
        known += 1
        if given != base64.b64encode(digest(body).digest()).decode():
            raise SignatureRefused(
                "The request's Digest is not the digest of its body (it was changed on the "
                "way); nothing was changed."
            )
    if not known:
        raise SignatureRefused(
            "The signed request carries no Digest (SHA-256 or SHA-512) of its body; nothing "
            "was changed."
        )
