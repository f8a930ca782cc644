"""The drive's Open Cloud Mesh peers: which other sites it trusts (by configuration, an exact list
of providers), and its calls to them (discovery, new shares, notifications).

Every outgoing call goes through the open-in flow's URL policy and fetcher (exact hosts, the
addresses checked and pinned, no redirects, time and size limits); this module adds only the
exact port of each trusted provider. It must not read requests or touch files.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from swan_share_ext.open_in.fetch import Fetcher, JsonAnswer
from swan_share_ext.open_in.safety import OpenRefused, UrlPolicy, literal_address

from .signing import JWKS_PATH, CavageKey, SiteKey, cavage_public_keys, public_keys

log = logging.getLogger("swan_hub.drive")

#: the OCM version whose request and answer shapes the drive speaks
API_VERSION = "1.1.0"
DISCOVERY_PATHS = ("/.well-known/ocm", "/ocm-provider")
#: how long a peer's discovery document is reused (seconds)
DISCOVERY_SECONDS = 60.0
#: how long a peer's public signing keys are reused (seconds)
KEYS_SECONDS = 600.0
#: the capability by which a site says it signs its requests (RFC 9421) and verifies others'
HTTP_SIG = "http-sig"
#: the discovery's criterion by which a site says it takes signed requests only (OCM 1.2)
MUST_SIGN = "must-use-http-sig"
#: the same criterion as drafts of OCM 1.2 named it, still read from other sites
MUST_SIGN_NAMES = (MUST_SIGN, "http-request-signatures")
#: the largest answer a peer may send (bytes)
MAX_ANSWER_BYTES = 256 * 1024


class PeerError(Exception):
    """A call to another site failed; `message` says why, for a person."""

    #: the HTTP status of the failure, as this site answers its own user
    status = 503

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PeerCannotSign(PeerError):
    """The other site takes signed requests only, of no kind this site makes: nothing was
    sent (sending it again will not help)."""

    status = 502


@dataclass(frozen=True)
class Peer:
    """A trusted provider: ``provider`` is its address as OCM names it (``host[:port]``, the
    part after ``@`` of its users' addresses), ``scheme`` how it is reached."""

    provider: str
    scheme: str

    @property
    def root(self) -> str:
        return f"{self.scheme}://{self.provider}"

    @property
    def host(self) -> str:
        return urlsplit(self.root).hostname or ""


def provider_of(url: str) -> str:
    """The ``host[:port]`` of ``url``, in lower case, without the default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    shown = f"[{host}]" if ":" in host else host
    default = 443 if parts.scheme == "https" else 80
    return shown if parts.port in (None, default) else f"{shown}:{parts.port}"


def parse_peer(entry: str) -> Peer:
    """A trusted provider from the admin's list: ``host[:port]`` (reached over https) or
    ``http://host:port`` / ``https://host[:port]``."""
    text = entry.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{entry!r} is not a provider: write host[:port] or http(s)://host:port")
    return Peer(provider_of(text), parts.scheme)


def split_address(address: str) -> tuple[str, str]:
    """(user, provider) of an OCM address ``user@host[:port]`` (user names may hold ``@``)."""
    user, at, provider = address.rpartition("@")
    if not at or not user or not provider:
        raise ValueError(f"{address!r} is not of the form user@provider")
    return user, provider.lower()


@dataclass(frozen=True)
class PeerEndpoint:
    """What a peer's discovery says: its OCM endpoint, its WebDAV prefix, whether it signs its
    requests the RFC 9421 way (``signs``, and so wants ours signed so) or the draft-cavage way
    (``cavage``: it publishes a ``publicKey``), whether it takes signed requests only, and the
    absolute URL of its page where a user accepts an invite (OCM 1.2's ``inviteAcceptDialog``;
    "" when it names none on a trusted provider)."""

    end_point: str
    webdav: str
    signs: bool = False
    cavage: bool = False
    requires_signatures: bool = False
    invite_accept_dialog: str = ""


class Mesh:
    """The trusted peers of this site and the calls to them. Calls block the calling thread
    (a worker of the drive's server) for at most ``timeout`` seconds each."""

    def __init__(
        self,
        trusted: Iterable[str],
        *,
        public_url: str,
        allowed_networks: Iterable[str] = (),
        timeout: float = 10.0,
        key: SiteKey | None = None,
        cavage_key: CavageKey | None = None,
    ):
        #: this site's signing key; None: it neither signs nor says it does
        self.key = key
        #: this site's draft-cavage key (for peers that verify only those); None: none
        self.cavage_key = cavage_key
        self.peers = {peer.provider: peer for peer in map(parse_peer, trusted)}
        #: this site's own provider (``host[:port]`` of its public URL), "" if unknown
        self.provider = provider_of(public_url) if public_url else ""
        networks = list(allowed_networks)
        for peer in self.peers.values():
            # A peer the admin named by its address is admitted at that address alone, even a
            # private or loopback one; peers named by host name resolve to public addresses
            # unless `allowed_networks` admits more.
            literal = literal_address(peer.host)
            if literal is not None:
                networks.append(str(ipaddress.ip_network(literal)))
        self.policy = UrlPolicy.from_lists(
            {peer.host for peer in self.peers.values()},
            allowed_schemes=sorted({peer.scheme for peer in self.peers.values()}) or ["https"],
            allowed_networks=networks,
        )
        self.fetcher = Fetcher(
            self.policy, max_bytes=MAX_ANSWER_BYTES, timeout=timeout, max_redirects=0
        )
        self._discovered: dict[str, tuple[float, PeerEndpoint]] = {}
        #: the public keys of peers by (kind, provider): ``jwks`` (RFC 9421) and
        #: ``publicKey`` (draft-cavage, from the discovery)
        self._keys: dict[tuple[str, str], tuple[float, dict]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.peers) and bool(self.provider)

    def trusted(self, provider: str) -> Peer | None:
        return self.peers.get(provider.lower())

    # -- calls ------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        document: Any = None,
        *,
        sign: Callable[[str, str, dict[str, str], bytes], None] | None = None,
    ) -> JsonAnswer:
        if self.trusted(provider_of(url)) is None:
            raise PeerError(f"{provider_of(url)} is not a trusted provider of this site.")
        try:
            return asyncio.run(
                self.fetcher.send_json(method, url, document, user_agent="SWAN OCM", sign=sign)
            )
        except OpenRefused as e:
            raise PeerError(e.message) from e

    def discover(self, provider: str) -> PeerEndpoint:
        """The OCM endpoint of the trusted ``provider`` (``/.well-known/ocm``, else the legacy
        ``/ocm-provider``), reused for `DISCOVERY_SECONDS`."""
        peer = self._peer(provider)
        with self._lock:
            cached = self._discovered.get(peer.provider)
        if cached and time.monotonic() - cached[0] < DISCOVERY_SECONDS:
            return cached[1]
        return self._discover(peer)

    def _peer(self, provider: str) -> Peer:
        peer = self.trusted(provider)
        if peer is None:
            raise PeerError(f"{provider} is not a trusted provider of this site.")
        return peer

    def _discover(self, peer: Peer) -> PeerEndpoint:
        """Fetch the discovery of ``peer``; keep its endpoint and its ``publicKey``."""
        problem = ""
        for path in DISCOVERY_PATHS:
            answer = self._call("GET", peer.root + path)
            found = answer.document
            if answer.status == 200 and isinstance(found, dict):
                keys = cavage_public_keys(found)
                endpoint = self._endpoint(peer, found, cavage=bool(keys))
                now = time.monotonic()
                with self._lock:
                    self._discovered[peer.provider] = (now, endpoint)
                    self._keys[("publicKey", peer.provider)] = (now, keys)
                return endpoint
            problem = f"{path} answered {answer.status}"
        raise PeerError(f"{peer.provider} offers no Open Cloud Mesh discovery ({problem}).")

    def _endpoint(self, peer: Peer, found: dict, *, cavage: bool) -> PeerEndpoint:
        end_point = found.get("endPoint")
        if found.get("enabled") is not True or not isinstance(end_point, str) or not end_point:
            raise PeerError(f"{peer.provider} does not accept federated shares now.")
        end_point = urljoin(peer.root + "/", end_point).rstrip("/")
        if self.trusted(provider_of(end_point)) is None:
            raise PeerError(
                f"{peer.provider} names its endpoint on {provider_of(end_point)}, "
                "which is not a trusted provider of this site."
            )
        webdav = ""
        for kind in found.get("resourceTypes") or []:
            if isinstance(kind, dict) and isinstance(kind.get("protocols"), dict):
                webdav = webdav or str(kind["protocols"].get("webdav") or "")
        capabilities = _strings(found.get("capabilities"))
        # OCM 1.2 puts the criterion in `criteria`; a site that lists it among its
        # capabilities means the same
        criteria = _strings(found.get("criteria")) | capabilities
        return PeerEndpoint(
            end_point,
            webdav,
            signs=HTTP_SIG in capabilities,
            cavage=cavage,
            requires_signatures=any(name in criteria for name in MUST_SIGN_NAMES),
            invite_accept_dialog=self._invite_dialog(peer, found),
        )

    def _invite_dialog(self, peer: Peer, found: dict) -> str:
        """The peer's ``inviteAcceptDialog`` as an absolute URL (the spec calls it a path;
        Nextcloud sends a URL), "" if it names none or names a page off the mesh: a browser
        is sent there, so it must be a site this one trusts."""
        dialog = found.get("inviteAcceptDialog")
        if not isinstance(dialog, str) or not dialog.strip():
            return ""
        url = urljoin(peer.root + "/", dialog.strip()).split("#", 1)[0]
        target = self.trusted(provider_of(url))
        if target is None or urlsplit(url).scheme != target.scheme:
            return ""
        return url

    def public_keys(self, provider: str, *, fresh: bool = False) -> dict:
        """The Ed25519 keys the trusted ``provider`` publishes (``/.well-known/jwks.json``) by
        ``kid``, reused for `KEYS_SECONDS`; empty if it publishes none. ``fresh``: fetched
        again if the copy here is older than `DISCOVERY_SECONDS` (a peer's new key is seen
        within a minute, and a flood of bad signatures costs at most one fetch a minute)."""
        peer = self._peer(provider)
        cached = self._cached_keys("jwks", peer, fresh)
        if cached is not None:
            return cached
        answer = self._call("GET", peer.root + JWKS_PATH)
        if answer.status != 200:
            raise PeerError(f"{peer.provider} publishes no signing keys ({answer.status}).")
        keys = public_keys(answer.document)
        with self._lock:
            self._keys[("jwks", peer.provider)] = (time.monotonic(), keys)
        return keys

    def cavage_keys(self, provider: str, *, fresh: bool = False) -> dict:
        """The RSA key the trusted ``provider`` publishes in its discovery (``publicKey``, for
        draft-cavage signatures) by key id, reused as `public_keys` are; empty if none."""
        peer = self._peer(provider)
        cached = self._cached_keys("publicKey", peer, fresh)
        if cached is not None:
            return cached
        self._discover(peer)
        with self._lock:
            return self._keys[("publicKey", peer.provider)][1]

    def _cached_keys(self, kind: str, peer: Peer, fresh: bool) -> dict | None:
        with self._lock:
            cached = self._keys.get((kind, peer.provider))
        lifetime = DISCOVERY_SECONDS if fresh else KEYS_SECONDS
        if cached and time.monotonic() - cached[0] < lifetime:
            return cached[1]
        return None

    def post(self, provider: str, what: str, document: dict) -> JsonAnswer:
        """POST ``document`` to ``<endPoint>/<what>`` of the trusted ``provider``, signed as
        it verifies signatures (`signature_for`)."""
        endpoint = self.discover(provider)
        sign = self.signature_for(provider, endpoint)
        return self._call("POST", f"{endpoint.end_point}/{what}", document, sign=sign)

    def signature_for(
        self, provider: str, endpoint: PeerEndpoint
    ) -> Callable[[str, str, dict[str, str], bytes], None] | None:
        """How a request to ``provider`` is signed: RFC 9421 where it lists ``http-sig``,
        draft-cavage where it publishes only a ``publicKey`` (Nextcloud), else not at all;
        `PeerCannotSign` where it takes signed requests only, of no kind made here."""
        if endpoint.signs and self.key is not None:
            return self.key.sign
        if endpoint.cavage and self.cavage_key is not None:
            return self.cavage_key.sign
        if endpoint.requires_signatures:
            raise PeerCannotSign(
                f"{provider} takes signed requests only, and names no kind of signature this "
                "site makes (RFC 9421 with the capability http-sig, or draft-cavage with a "
                "publicKey); ask its administrators which it verifies."
            )
        return None


def _strings(value: object) -> set[str]:
    """The strings of a list in a discovery document (nothing, if it is not a list)."""
    return {item for item in value if isinstance(item, str)} if isinstance(value, list) else set()
