"""The drive's HTTP plumbing shared by its routes, sign-in and pages: status lines, plain and
JSON answers, cookies read and written, the client's address.

It owns no URL and no decision about who may do what; it imports only the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any

StartResponse = Callable[..., Any]
Header = tuple[str, str]


def status_line(code: int) -> str:
    """``"404 Not Found"`` for 404; an unknown code gets the reason ``Error``."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Error"


def answer(
    start_response: StartResponse,
    status: int,
    body: bytes,
    content_type: str,
    headers: Iterable[Header] = (),
) -> list[bytes]:
    """Start a response of ``body`` with its type and length, and hand the body back."""
    start_response(
        status_line(status),
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def json_answer(
    start_response: StartResponse, status: int, data: Any, headers: Iterable[Header] = ()
) -> list[bytes]:
    return answer(
        start_response,
        status,
        json.dumps(data).encode(),
        "application/json; charset=utf-8",
        headers,
    )


def plain(
    start_response: StartResponse, status: int, text: str, headers: Iterable[Header] = ()
) -> list[bytes]:
    return answer(start_response, status, text.encode(), "text/plain; charset=utf-8", headers)


def redirect(
    start_response: StartResponse, status: int, location: str, headers: Iterable[Header] = ()
) -> list[bytes]:
    """A redirect with no body (``302`` after a login, ``303`` after a form)."""
    return answer(
        start_response, status, b"", "text/plain; charset=utf-8", [("Location", location), *headers]
    )


def cookies_of(environ: dict) -> dict[str, str]:
    """The request's cookies by name; a malformed ``Cookie`` header counts as none."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(environ.get("HTTP_COOKIE", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def set_cookie(name: str, value: str, path: str, max_age: int | None = None) -> Header:
    """A ``Set-Cookie`` header for a cookie scripts cannot read, sent on top-level navigations
    from other sites but not on their cross-site requests; ``max_age=0`` removes it."""
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = path
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    if max_age is not None:
        morsel["max-age"] = max_age
    return ("Set-Cookie", morsel.OutputString())


def client_address(environ: dict) -> str:
    """The address of the client: the one the hub's proxy saw (the last X-Forwarded-For
    entry, which the proxy appends) when the request came through it, else the peer's."""
    peer = environ.get("REMOTE_ADDR", "")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and (peer.startswith("127.") or peer == "::1"):
        return forwarded.rsplit(",", 1)[-1].strip()
    return peer
