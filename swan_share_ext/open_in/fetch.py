"""Downloads for the open-in flow: one GET, connected to the checked address, within the limits.

This module owns the HTTP side: every hop of a redirect chain is checked by `UrlPolicy` again and
connected to the address that was checked (the host name goes only into Host and TLS SNI), bodies
are streamed and cut off at the size and time limits. It must not write anything anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import email.message
import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from .safety import (
    BadLink,
    CheckedUrl,
    OpenRefused,
    PasswordNeeded,
    SourceFailed,
    TooLarge,
    TooSlow,
    UrlPolicy,
    literal_address,
)

Progress = Callable[[int, int | None], None]
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Download:
    """A complete response body and what is known about it."""

    url: str
    filename: str
    content_type: str
    data: bytes


def filename_of(url: str, content_disposition: str | None) -> str:
    """The file name a server suggests (Content-Disposition), else the URL's last path segment."""
    if content_disposition:
        message = email.message.Message()
        message["content-disposition"] = content_disposition
        suggested = message.get_filename()
        if suggested:
            return posixpath.basename(suggested.replace("\\", "/"))
    return posixpath.basename(unquote(urlsplit(url).path.rstrip("/")))


def _human(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:g} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


@dataclass(frozen=True)
class JsonAnswer:
    """A server's answer to `Fetcher.send_json`: its status and its body read as JSON (None
    for an empty body or one that is not JSON)."""

    status: int
    document: object


class Fetcher:
    """Fetch URLs under one policy; ``trusted_prefix`` (the admin's drive) skips address checks
    for a fetch that starts there, never for a redirect that leads there from elsewhere."""

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        max_bytes: int,
        timeout: float,
        max_redirects: int,
        verify: bool = True,
        trusted_prefix: str = "",
    ) -> None:
        self.policy = policy
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.verify = verify
        self.trusted_prefix = trusted_prefix

    def trusts(self, url: str) -> bool:
        """Whether ``url`` is the admin's drive, fetched without the address checks."""
        return bool(self.trusted_prefix) and url.startswith(self.trusted_prefix)

    async def _target(self, url: str, trusted: bool) -> tuple[str, dict[str, str], dict[str, str]]:
        """(URL to connect to, extra headers, request extensions) for one hop."""
        if trusted:
            return url, {}, {}
        checked: CheckedUrl = await self.policy.check(url)
        extensions = {}
        if checked.scheme == "https" and literal_address(checked.host) is None:
            # TLS must name (and verify) the host, though the connection goes to its address.
            extensions["sni_hostname"] = checked.host
        return checked.pinned_url, {"Host": checked.host_header}, extensions

    async def fetch(
        self, url: str, progress: Progress | None = None, *, auth: tuple[str, str] | None = None
    ) -> Download:
        """The body at ``url``; raises `OpenRefused` (with the reason) instead of ever going too
        far.
        ``auth`` (user, password) goes as Basic auth to the admin's drive only, never to
        another address, redirects included."""
        try:
            return await asyncio.wait_for(self._fetch(url, progress, auth), self.timeout)
        except asyncio.TimeoutError:
            raise TooSlow(
                f"The download took longer than {self.timeout:g} s and was stopped; "
                "nothing was saved."
            ) from None

    async def _fetch(
        self, url: str, progress: Progress | None, auth: tuple[str, str] | None
    ) -> Download:
        async with httpx.AsyncClient(
            trust_env=False, follow_redirects=False, verify=self.verify, timeout=self.timeout
        ) as client:
            current = url
            # Only a chain that starts at the drive stays trusted, and only while it stays
            # there: an outside host redirecting to the drive's internal address is checked
            # like any other hop (and refused as a loopback or private address).
            chain_trusted = self.trusts(url)
            for _hop in range(self.max_redirects + 1):
                trusted = chain_trusted and self.trusts(current)
                target, headers, extensions = await self._target(current, trusted)
                if auth is not None and trusted:
                    pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
                    headers["Authorization"] = f"Basic {pair}"
                request = client.build_request(
                    "GET",
                    target,
                    headers={"User-Agent": "SWAN open-in", "Accept": "*/*", **headers},
                    extensions=extensions,
                )
                host = urlsplit(current).hostname
                try:
                    response = await client.send(request, stream=True)
                except httpx.RemoteProtocolError as e:
                    # httpx reads a redirect's Location itself, before we see the response
                    if "location header" in str(e).lower():
                        raise BadLink(
                            f"{host} redirected to an address that is not a valid URL ({e}); "
                            "nothing was fetched from there."
                        ) from e
                    raise SourceFailed(f"{host} could not be reached ({e}).") from e
                except httpx.HTTPError as e:
                    raise SourceFailed(f"{host} could not be reached ({e}).") from e
                try:
                    if response.is_redirect and response.headers.get("location"):
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code == 401:
                        raise PasswordNeeded(
                            f"{host} asks for a password for this link"
                            + (" and the one given is not right" if auth else "")
                            + "; nothing was saved."
                        )
                    if response.status_code != 200:
                        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                        raise SourceFailed(
                            f"{host} answered {response.status_code}{reason} "
                            f"for {urlsplit(current).path}; nothing was saved."
                        )
                    data = await self._read(response, progress)
                    return Download(
                        url=current,
                        filename=filename_of(current, response.headers.get("content-disposition")),
                        content_type=response.headers.get("content-type", ""),
                        data=data,
                    )
                finally:
                    await response.aclose()
            raise OpenRefused(f"The link redirected more than {self.max_redirects} times; stopped.")

    async def send_json(
        self,
        method: str,
        url: str,
        document: object = None,
        *,
        user_agent: str = "SWAN",
        sign: Callable[[str, str, dict[str, str], bytes], None] | None = None,
    ) -> JsonAnswer:
        """One request to ``url`` with ``document`` as its JSON body (None: no body), within the
        policy, the time and the size limits; the answer's status and JSON body. ``sign``, if
        given, adds its headers for the method, ``url``, the headers and the exact body sent.

        Redirects are not followed, whatever the method: a server-to-server call (Open Cloud
        Mesh) goes exactly to the host it was meant for. Raises `OpenRefused` (the policy),
        `SourceFailed` (unreachable, a redirect), `TooSlow` or `TooLarge`."""
        try:
            return await asyncio.wait_for(
                self._send_json(method, url, document, user_agent, sign), self.timeout
            )
        except asyncio.TimeoutError:
            host = urlsplit(url).hostname
            raise TooSlow(f"{host} did not answer within {self.timeout:g} s.") from None

    async def _send_json(
        self,
        method: str,
        url: str,
        document: object,
        user_agent: str,
        sign: Callable[[str, str, dict[str, str], bytes], None] | None,
    ) -> JsonAnswer:
        target, headers, extensions = await self._target(url, self.trusts(url))
        headers = {"User-Agent": user_agent, "Accept": "application/json", **headers}
        content = None
        if document is not None:
            content = json.dumps(document).encode()
            headers["Content-Type"] = "application/json"
        if sign is not None:
            sign(method, url, headers, content or b"")
        host = urlsplit(url).hostname
        async with httpx.AsyncClient(
            trust_env=False, follow_redirects=False, verify=self.verify, timeout=self.timeout
        ) as client:
            request = client.build_request(
                method, target, headers=headers, content=content, extensions=extensions
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as e:
                raise SourceFailed(f"{host} could not be reached ({e}).") from e
            try:
                if response.is_redirect:
                    raise SourceFailed(
                        f"{host} answered with a redirect ({response.status_code}), "
                        "which server-to-server calls do not follow."
                    )
                body = await self._read(response, None)
            except TooLarge:
                raise TooLarge(
                    f"{host} answered more than the {_human(self.max_bytes)} allowed; "
                    "the answer was not read."
                ) from None
            finally:
                await response.aclose()
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError:
            parsed = None
        return JsonAnswer(response.status_code, parsed)

    async def _read(self, response: httpx.Response, progress: Progress | None) -> bytes:
        limit = self.max_bytes
        declared = response.headers.get("content-length")
        total = int(declared) if declared and declared.isdigit() else None
        if total is not None and total > limit:
            raise TooLarge(
                f"The file is {_human(total)}, more than the {_human(limit)} allowed; "
                "nothing was downloaded."
            )
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes(_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise TooLarge(
                        f"The download grew past the {_human(limit)} allowed and was stopped; "
                        "nothing was saved."
                    )
                if progress:
                    progress(len(body), total)
        except httpx.HTTPError as e:
            raise SourceFailed(f"The download broke off ({e}); nothing was saved.") from e
        return bytes(body)
