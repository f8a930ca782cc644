"""The drive's answer to a PROPFIND of Depth 0 or 1: the resources of `dav` give the same
properties and values as WsgiDAV's own PROPFIND, and this writes the multistatus as XML text
while it goes (streamed, with Sabre's ``d:``/``oc:``/``nc:``/``s:`` prefixes), looking up the
locks once per request rather than once per entry.

It must not decide what a property is worth (the resources do) nor answer anything else: other
depths, conditional requests and paths without a resource go on to WsgiDAV unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from wsgidav import util
from wsgidav.dav_error import HTTP_BAD_REQUEST, DAVError, get_http_status_string
from wsgidav.lock_man.lock_manager import normalize_lock_root
from wsgidav.mw.base_mw import BaseMiddleware

from swan_contents.gc_pause import gc_paused

from .dav import ENV_LOCK_ROOTS, DriveProvider, listed_with_stat, listing_getters

#: the depths answered here (``infinity``, also a missing Depth, is taken as 1 before: see
#: `PropfindMiddleware`); others go to WsgiDAV, which refuses them
STREAMED_DEPTHS = ("0", "1")
#: requests with conditions go to WsgiDAV, which evaluates them
CONDITIONS = (
    "HTTP_IF",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)
#: Sabre's prefixes, declared once on the multistatus; other namespaces where they are used
PREFIXES = {
    "DAV:": "d",
    "http://owncloud.org/ns": "oc",
    "http://nextcloud.org/ns": "nc",
    "http://sabredav.org/ns": "s",
}
ROOT_OPEN = (
    '<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus'
    + "".join(f' xmlns:{prefix}="{uri}"' for uri, prefix in PREFIXES.items())
    + ">"
)
#: responses written per chunk of the streamed body
RESPONSES_PER_CHUNK = 500


def escape_text(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def escape_attribute(text: str) -> str:
    return (
        escape_text(text)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#09;")
    )


class _Names:
    """Clark names (``{uri}local``) as prefixed names, with the declarations the namespaces
    outside `PREFIXES` need on the element where they first appear."""

    def __init__(self) -> None:
        self.declared: dict[str, str] = {}

    def __call__(self, clark: str, declarations: list[str]) -> str:
        if not clark.startswith("{"):
            return clark
        uri, _, local = clark[1:].partition("}")
        prefix = PREFIXES.get(uri) or self.declared.get(uri)
        if prefix is None:
            prefix = self.declared[uri] = f"x{len(self.declared)}"
            declarations.append(f' xmlns:{prefix}="{escape_attribute(uri)}"')
        return f"{prefix}:{local}" if uri else local


def write_element(element: Any, out: list[str]) -> None:
    """``element`` (an ElementTree element: a property's value) as XML text onto ``out``."""
    _write(element, out, _Names())


def _write(element: Any, out: list[str], names: _Names) -> None:
    declarations: list[str] = []
    scope = dict(names.declared)
    tag = names(element.tag, declarations)
    attributes = "".join(
        f' {names(key, declarations)}="{escape_attribute(value)}"'
        for key, value in element.attrib.items()
    )
    children = list(element)
    text = element.text
    if not children and not text:
        out.append(f"<{tag}{''.join(declarations)}{attributes}/>")
    else:
        out.append(f"<{tag}{''.join(declarations)}{attributes}>")
        if text:
            out.append(escape_text(text))
        for child in children:
            _write(child, out, names)
            if child.tail:
                out.append(escape_text(child.tail))
        out.append(f"</{tag}>")
    names.declared = scope


class _Tags(dict):
    """The opening, closing and empty tags of each property name, made once per request."""

    def __missing__(self, name: str) -> tuple[str, str, str]:
        declarations: list[str] = []
        tag = _Names()(name, declarations)
        opening = f"<{tag}{''.join(declarations)}"
        found = self[name] = (f"{opening}>", f"</{tag}>", f"{opening}/>")
        return found


OK = "200 OK"


def write_response(
    href: str, properties: list[tuple[str, Any]], out: list[str], tags: _Tags | None = None
) -> None:
    """One ``d:response``: its href and a ``d:propstat`` per status, as WsgiDAV groups them
    (a property that failed is an empty element under its status; statuses in the order of
    their first property)."""
    if tags is None:
        tags = _Tags()
    ok: list[str] = []
    by_status: dict[str, list[str]] | None = None  # made at the first property that failed
    for name, value in properties:
        if type(value) is str:
            if value:
                opening, closing, _ = tags[name]
                if "&" in value or "<" in value or ">" in value:
                    value = escape_text(value)
                ok.append(f"{opening}{value}{closing}")
            else:
                ok.append(tags[name][2])
        elif isinstance(value, DAVError):
            if by_status is None:
                by_status = {OK: ok} if ok else {}
            by_status.setdefault(get_http_status_string(value), []).append(tags[name][2])
            continue
        elif value is None or value == "":
            ok.append(tags[name][2])
        elif util.is_etree_element(value):
            if not len(value) and not value.text and not value.attrib:
                ok.append(tags[value.tag][2])
            else:
                write_element(value, ok)
        else:
            opening, closing, _ = tags[name]
            ok.append(f"{opening}{escape_text(util.to_unicode_safe(value))}{closing}")
        if by_status is not None and OK not in by_status:
            by_status[OK] = ok
    if by_status is None:
        by_status = {OK: ok} if ok else {}
    out.append(f"<d:response><d:href>{escape_text(href)}</d:href>")
    for status, found in by_status.items():
        out.append("<d:propstat><d:prop>")
        out += found
        out.append(f"</d:prop><d:status>HTTP/1.1 {status}</d:status></d:propstat>")
    out.append("</d:response>")


def propfind_request(environ: dict) -> tuple[str, list[str] | None]:
    """The mode (``allprop``, ``name`` or ``named``) and the property names a PROPFIND body
    asks for; an empty body asks for all properties (RFC 4918, 9.1)."""
    request = util.parse_xml_body(environ, allow_empty=True)
    if request is None:
        return "allprop", None
    if request.tag != "{DAV:}propfind":
        raise DAVError(HTTP_BAD_REQUEST, "The body of a PROPFIND must be a d:propfind")
    mode = None
    names: list[str] = []
    for part in request:
        asked = {"{DAV:}allprop": "allprop", "{DAV:}propname": "name", "{DAV:}prop": "named"}
        found = asked.get(part.tag)
        if found is None:
            continue
        if mode not in (None, found) or (found != "named" and mode is not None):
            raise DAVError(HTTP_BAD_REQUEST, "A PROPFIND asks for one of allprop, propname, prop")
        mode = found
        if found == "named":
            names.extend(child.tag for child in part)
    if mode is None:
        # WsgiDAV treats a d:propfind without any of the three as a named request of nothing
        return "named", []
    return mode, names if mode == "named" else None


def lock_roots(provider: Any) -> set[str] | None:
    """The keys of every lock the drive holds (a lock shows in ``d:lockdiscovery`` of exactly
    the resource it was taken on), None without a lock manager."""
    locks = provider.lock_manager
    if locks is None:
        return None
    found = locks.storage.get_lock_list(
        "/", include_root=True, include_children=True, token_only=False
    )
    return {normalize_lock_root(lock["root"]) for lock in found}


class PropfindMiddleware(BaseMiddleware):
    """WsgiDAV middleware answering PROPFIND of Depth 0 and 1 in users' spaces, streamed.

    A PROPFIND of Depth ``infinity`` (or without Depth, which RFC 4918 makes the same) is
    answered as Depth 1 in every area, as Sabre (Nextcloud, ownCloud) does: one request must
    not make the drive walk a whole tree of a hundred thousand files for anybody who asks."""

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"].upper() == "PROPFIND":
            depth = environ.get("HTTP_DEPTH")
            if depth is None or depth.strip().lower() == "infinity":
                environ["HTTP_DEPTH"] = "1"
        if not self._answers(environ):
            return self.next_app(environ, start_response)
        provider = environ["wsgidav.provider"]
        res = provider.get_resource_inst(environ["PATH_INFO"], environ)
        if res is None:
            return self.next_app(environ, start_response)
        mode, names = propfind_request(environ)
        resources = res.get_descendants(depth=environ["HTTP_DEPTH"], add_self=True)
        environ[ENV_LOCK_ROOTS] = lock_roots(provider)
        start_response(
            "207 Multi-Status",
            [
                ("Content-Type", "application/xml; charset=utf-8"),
                ("Date", util.get_rfc1123_time()),
            ],
        )
        return self._body(resources, mode, names)

    @staticmethod
    def _answers(environ: dict) -> bool:
        if environ["REQUEST_METHOD"].upper() != "PROPFIND":
            return False
        provider = environ.get("wsgidav.provider")
        if type(provider) is not DriveProvider:  # users' spaces, not uploads or public links
            return False
        depth = environ.get("HTTP_DEPTH")
        if depth is None or depth.lower() not in STREAMED_DEPTHS:
            return False
        environ["HTTP_DEPTH"] = depth.lower()
        return not any(environ.get(key) for key in CONDITIONS)

    @staticmethod
    def _body(resources: list[Any], mode: str, names: list[str] | None) -> Iterator[bytes]:
        tags = _Tags()
        getters = listing_getters(names) if mode == "named" and names is not None else {}
        yield ROOT_OPEN.encode()
        for start in range(0, len(resources), RESPONSES_PER_CHUNK):
            out: list[str] = []
            with gc_paused():  # strings and short lists only: no cycles for the collector
                for res in resources[start : start + RESPONSES_PER_CHUNK]:
                    found = getters.get(type(res))
                    if found is not None and listed_with_stat(res):
                        properties = [(name, get(res)) for name, get in found]
                    else:
                        properties = res.get_properties(mode, name_list=names)
                    write_response(res.get_href(), properties, out, tags)
            yield "".join(out).encode()
        yield b"</d:multistatus>"
