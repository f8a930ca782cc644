"""Whether a URL may be fetched: scheme, exact host allowlist, the addresses the host resolves to.

This module owns the refusals of the open-in flow (`OpenRefused`, with the HTTP status and the
message a person reads) and `UrlPolicy.check`, which parses a URL once, rebuilds it from its parts
and pins the address that was checked. It must not fetch anything: `fetch` and `git` connect to
exactly the address returned here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
MAX_URL_LENGTH = 4096
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$")
_REMOTE_HELPER = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)::")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class OpenRefused(Exception):
    """The open-in flow will not do what a link asks; `message` says why, for a person."""

    status = 403

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadLink(OpenRefused):
    """The link itself is malformed or names something that cannot exist."""

    status = 400


class TooLarge(OpenRefused):
    """A download, a repository or an archive is larger than the admin allows."""

    status = 413


class TooSlow(OpenRefused):
    """A download or a clone took longer than the admin allows."""

    status = 504


class SourceFailed(OpenRefused):
    """The source answered with an error or could not be reached."""

    status = 502


class PasswordNeeded(SourceFailed):
    """The link asks for a password, and none or a wrong one was given: the page asks for it."""

    status = 401


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system's resolver (without blocking the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise SourceFailed(f"The host {host} could not be found ({e.strerror}).") from e
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed the policy, with the one address every connection must go to."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress
    #: whether the admin's own service (the drive) is the target, so addresses were not checked
    trusted: bool = False

    @property
    def parts(self) -> SplitResult:
        return urlsplit(self.url)

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def pinned_url(self) -> str:
        """The same URL with the checked address in place of the host name."""
        address = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        parts = self.parts
        return urlunsplit((self.scheme, f"{address}:{self.port}", parts.path, parts.query, ""))


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any notation a resolver accepts, or None for a name.

    ``127.1``, ``0x7f000001``, ``2130706433`` and ``0177.0.0.1`` all spell 127.0.0.1 to the C
    library; they are recognised here so that they never reach an allowlist as "names".
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise BadLink(f"{host!r} is neither a host name nor an IP address.") from None
    return None


def _unwrapped(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped, 6to4 or Teredo IPv6 address, else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if inner is not None:
            return inner
    return address


def address_problem(address: IPAddress) -> str | None:
    """Why a connection to ``address`` is refused by default, or None for a public address."""
    inner = _unwrapped(address)
    # The embedded IPv4 address first: it is where the packets go, and it names the reason.
    for candidate in dict.fromkeys((inner, address)):
        if candidate in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if candidate.is_loopback:
            return "a loopback address (this machine)"
        if candidate.is_link_local:
            return "a link-local address"
        if candidate.is_multicast:
            return "a multicast address"
        if candidate.is_unspecified:
            return "an unspecified address"
        if candidate.is_private:
            return "a private network address"
        if candidate.is_reserved or not candidate.is_global:
            return "a reserved address"
    return None


def _canonical_host(raw: str) -> str:
    host = raw.lower()
    if host.endswith("."):
        host = host[:-1]
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise BadLink(f"{raw!r} is not a valid host name.") from e
    if literal_address(host) is None and not all(_HOST_LABEL.match(p) for p in host.split(".")):
        raise BadLink(f"{raw!r} is not a valid host name.")
    return host


@dataclass(frozen=True)
class UrlPolicy:
    """The admin's rules for URLs (see `SwanOpenIn`), applied to every URL and every redirect."""

    allowed_hosts: tuple[str, ...]
    allowed_schemes: tuple[str, ...] = ("https",)
    allowed_networks: tuple[str, ...] = ()
    resolver: Resolver = system_resolver

    @classmethod
    def from_lists(
        cls,
        allowed_hosts: Iterable[str],
        allowed_schemes: Iterable[str] = ("https",),
        allowed_networks: Iterable[str] = (),
        resolver: Resolver = system_resolver,
    ) -> UrlPolicy:
        return cls(
            tuple(h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip()),
            tuple(allowed_schemes),
            tuple(allowed_networks),
            resolver,
        )

    def host_allowed(self, host: str) -> bool:
        """Exact comparison with the allowlist; ``*.domain`` rules admit proper subdomains."""
        for rule in self.allowed_hosts:
            if rule == "*" or rule == host:
                return True
            if rule.startswith("*.") and host.endswith(rule[1:]):
                return True
        return False

    def network_allowed(self, address: IPAddress) -> bool:
        for network in self.allowed_networks:
            try:
                if address in ipaddress.ip_network(network, strict=False):
                    return True
            except ValueError:
                continue
        return False

    def parse(self, url: str) -> tuple[SplitResult, str, int]:
        """Check the form of ``url`` without any network access: (parts, host, port)."""
        if not isinstance(url, str) or not url:
            raise BadLink("The link has no URL.")
        if len(url) > MAX_URL_LENGTH:
            raise BadLink(f"The URL is longer than {MAX_URL_LENGTH} characters.")
        helper = _REMOTE_HELPER.match(url)
        if helper:
            raise OpenRefused(f"{helper.group(1)}:: links (git remote helpers) are never used.")
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or "\\" in url:
            raise BadLink("The URL contains spaces, control characters or backslashes.")
        try:
            parts = urlsplit(url)
        except ValueError as e:
            raise BadLink(f"The URL cannot be read ({e}).") from e
        scheme = parts.scheme.lower()
        if scheme not in self.allowed_schemes:
            allowed = " or ".join(self.allowed_schemes)
            shown = f"{scheme}://" if scheme else "a URL without a scheme"
            raise OpenRefused(f"Only {allowed} links can be opened, not {shown}.")
        if "@" in parts.netloc:
            raise OpenRefused(
                "URLs with a user name or password before the host (user@host) are refused: "
                "they hide which host is contacted."
            )
        if not parts.hostname:
            raise BadLink("The URL names no host.")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as e:
            raise BadLink("The URL has an invalid port.") from e
        return parts._replace(scheme=scheme), _canonical_host(parts.hostname), port

    def check_form(self, url: str) -> tuple[str, str, int]:
        """Everything that can be checked without the network: (rebuilt URL, host, port)."""
        parts, host, port = self.parse(url)
        literal = literal_address(host)
        shown = str(literal) if literal is not None else host
        if not self.host_allowed(shown):
            raise OpenRefused(
                f"{shown} is not among the hosts this SWAN may fetch from. "
                "Ask your SWAN administrators to allow it, or download the file yourself."
            )
        if literal is not None:
            problem = address_problem(literal)
            if problem and not self.network_allowed(literal):
                raise OpenRefused(f"{shown} is {problem}; links may not reach it.")
        netloc = f"[{shown}]" if ":" in shown else shown
        if parts.port is not None:
            netloc += f":{port}"
        rebuilt = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return rebuilt, shown, port

    async def check(self, url: str) -> CheckedUrl:
        """The full check: form, allowlist, then every address the host resolves to."""
        rebuilt, host, port = self.check_form(url)
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            found = await self.resolver(host, port)
            if not found:
                raise SourceFailed(f"The host {host} has no address.")
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        for address in addresses:
            problem = address_problem(address)
            if problem and not self.network_allowed(address):
                raise OpenRefused(
                    f"{host} resolves to {address}, {problem}; links may not reach it."
                )
        return CheckedUrl(rebuilt, urlsplit(rebuilt).scheme, host, port, addresses[0])
