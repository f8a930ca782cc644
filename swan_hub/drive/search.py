"""Finding files the way Nextcloud and ownCloud clients ask the drive: WebDAV ``SEARCH`` (RFC 5323
basic search, as Nextcloud's files app and nc-py-api send it) and ``REPORT oc:filter-files``
(favorites, as nc-py-api and the sync clients ask for them).

This module owns reading those request bodies, matching entries and answering a multistatus with
the properties asked for. It reaches files only through the drive's WsgiDAV providers, so a search
sees exactly what PROPFIND sees (confinement, shares, hidden entries), and it never writes.
"""

from __future__ import annotations

import datetime
import email.utils
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from wsgidav import util, xml_tools
from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_NOT_FOUND, DAVError
from wsgidav.mw.base_mw import BaseMiddleware

from .dav import DAV_NS, ENV_USER, FAVORITE, OC, DriveProvider, RefusedError

#: the largest SEARCH or REPORT body read (they are a few hundred bytes in practice)
MAX_BODY = 256 * 1024
#: the comparisons of RFC 5323, each of a property and a literal
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def _read_xml(environ: dict) -> Any:
    """The request body as an XML element; a clear 4xx for anything else."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise RefusedError(400, "Content-Length is not a number") from None
    if length <= 0:
        raise RefusedError(400, "This request needs an XML body")
    if length > MAX_BODY:
        raise RefusedError(413, f"The request body is larger than {MAX_BODY} bytes")
    body = environ["wsgi.input"].read(length)
    try:
        return xml_tools.string_to_xml(body)
    except Exception:  # noqa: BLE001 - any parser error means the body is not XML we can read
        raise RefusedError(400, "The request body is not well-formed XML") from None


def _prop_names(prop: Any) -> list[str]:
    return [child.tag for child in prop] if prop is not None else []


def _is_favorite(res: Any) -> bool:
    return getattr(res, "is_favorite", lambda: False)()


def _walk(res: Any, depth: str) -> Iterator[Any]:
    """The entries below ``res`` (not ``res`` itself), folders before what they hold."""
    if not res.is_collection or depth == "0":
        return
    for member in res.get_member_list():
        if member is None:
            continue
        yield member
        if depth == "infinity":
            yield from _walk(member, depth)


def _own_resource(environ: dict, provider: DriveProvider, scope: Any, rel: str, depth: str) -> Any:
    """The resource of ``rel`` in the caller's own space if it lies below ``scope`` (within
    ``depth``), else None."""
    prefix = f"/{environ[ENV_USER]}" if provider.user_in_path else ""
    path = f"{prefix}/{rel}"
    below = scope.path.rstrip("/") + "/"
    if not path.startswith(below) or depth == "1" and "/" in path[len(below) :]:
        return None
    return provider.get_resource_inst(path, environ)


def _seconds(text: str) -> float:
    """A time literal (ISO 8601, RFC 1123 or seconds since the epoch) in seconds."""
    text = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise RefusedError(400, f"{text!r} is not a date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _number(text: str) -> float:
    """A number literal; like Nextcloud (PHP's cast), only its leading digits count, so an
    ``OC-FileId`` (``00000042oc1234abcd``) finds file 42, as nc-py-api's move and copy expect."""
    found = re.match(r"\s*(-?\d+(\.\d+)?)", text)
    if found is None:
        raise RefusedError(400, f"{text!r} is not a number")
    return float(found.group(1))


class Matcher:
    """One ``d:where`` of a basic search, evaluated on drive resources."""

    def __init__(self, where: Any):
        if where is None or len(where) != 1:
            raise RefusedError(400, "d:where must hold exactly one condition")
        self.condition = where[0]

    def __call__(self, res: Any) -> bool:
        return self._test(self.condition, res)

    def _test(self, cond: Any, res: Any) -> bool:
        op = cond.tag.removeprefix(DAV_NS)
        if op in ("and", "or"):
            results = (self._test(c, res) for c in cond)
            return all(results) if op == "and" else any(results)
        if op == "not":
            if len(cond) != 1:
                raise RefusedError(400, "d:not must hold exactly one condition")
            return not self._test(cond[0], res)
        if op == "is-collection":
            return bool(res.is_collection)
        if op in COMPARISONS or op == "like":
            name, literal = self._operands(cond)
            value = self._value(res, name)
            if value is None:
                return False
            if op == "like":
                return like(literal, str(value))
            return COMPARISONS[op](value, self._literal(name, literal))
        raise RefusedError(400, f"The search operator {cond.tag} is not supported")

    @staticmethod
    def _operands(cond: Any) -> tuple[str, str]:
        prop = cond.find(f"{DAV_NS}prop")
        literal = cond.find(f"{DAV_NS}literal")
        if prop is None or len(prop) != 1 or literal is None:
            raise RefusedError(400, f"{cond.tag} needs one d:prop and a d:literal")
        return prop[0].tag, literal.text or ""

    @staticmethod
    def _literal(name: str, text: str) -> Any:
        if name in (f"{DAV_NS}getlastmodified", f"{DAV_NS}creationdate"):
            return _seconds(text)
        if name in (f"{DAV_NS}getcontentlength", f"{OC}size", f"{OC}fileid", FAVORITE):
            return _number(text)
        return text

    @staticmethod
    def _value(res: Any, name: str) -> Any:
        """The property ``name`` of ``res`` in the type its literals are read in."""
        if name == f"{DAV_NS}displayname":
            return res.name
        if name == f"{DAV_NS}getcontenttype":
            return res.get_content_type()
        if name == f"{DAV_NS}getlastmodified":
            return res.get_last_modified()
        if name == f"{DAV_NS}creationdate":
            return res.get_creation_date()
        if name in (f"{DAV_NS}getcontentlength", f"{OC}size"):
            return float(res.oc_size())
        if name == f"{OC}fileid":
            return float(res.file_id())
        if name == FAVORITE:
            return float(_is_favorite(res))
        try:
            value = res.get_property_value(name)
        except DAVError:
            return None
        return value if isinstance(value, str) else getattr(value, "text", None)


def like(pattern: str, text: str) -> bool:
    """SQL ``LIKE`` (``%`` any run, ``_`` one character), case-insensitive as Nextcloud's.

    Matched by walking both strings and going back only to the last ``%`` (at most
    len(pattern) x len(text) steps), never by a regular expression, whose backtracking a
    pattern of many ``%`` would make explode."""
    pattern, text = pattern.casefold(), text.casefold()
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "%":
            star, resume = p, t
            p += 1
        elif p < len(pattern) and pattern[p] in ("_", text[t]):
            p, t = p + 1, t + 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return all(c == "%" for c in pattern[p:])


class SearchMiddleware(BaseMiddleware):
    """WsgiDAV middleware answering ``SEARCH`` and ``REPORT`` (WsgiDAV knows neither)."""

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        method = environ["REQUEST_METHOD"].upper()
        if method == "SEARCH":
            return self._answer(environ, start_response, self.search(environ))
        if method == "REPORT":
            return self._answer(environ, start_response, self.report(environ))
        return self.next_app(environ, start_response)

    @staticmethod
    def _answer(environ: dict, start_response: Callable[..., Any], found: tuple) -> Any:
        names, resources = found
        multistatus = xml_tools.make_multistatus_el()
        for res in resources:
            if names is None:
                props = res.get_properties("allprop")
            else:
                props = res.get_properties("named", name_list=names)
            util.add_property_response(multistatus, res.get_href(), props)
        return util.send_multi_status_response(environ, start_response, multistatus)

    # -- SEARCH -----------------------------------------------------------------------------------

    def search(self, environ: dict) -> tuple[list[str] | None, list[Any]]:
        root = _read_xml(environ)
        basic = root.find(f"{DAV_NS}basicsearch") if root.tag == f"{DAV_NS}searchrequest" else None
        if basic is None:
            raise RefusedError(400, "Send a d:searchrequest with a d:basicsearch")
        select = basic.find(f"{DAV_NS}select")
        if select is None:
            raise RefusedError(400, "d:basicsearch needs a d:select")
        prop = select.find(f"{DAV_NS}prop")
        names = _prop_names(prop) if prop is not None else None  # d:allprop: every property
        scopes = basic.findall(f"{DAV_NS}from/{DAV_NS}scope")
        if not scopes:
            raise RefusedError(400, "d:basicsearch needs a d:from with a d:scope")
        where = basic.find(f"{DAV_NS}where")
        matches = Matcher(where) if where is not None else (lambda res: True)
        found = []
        for scope in scopes:
            res = self._scope(environ, scope.findtext(f"{DAV_NS}href") or "")
            depth = (scope.findtext(f"{DAV_NS}depth") or "infinity").strip().lower()
            by_id = self._by_file_id(environ, res, depth, where)
            found += by_id if by_id is not None else [r for r in _walk(res, depth) if matches(r)]
        found = self._ordered(basic.find(f"{DAV_NS}orderby"), found)
        limit = basic.findtext(f"{DAV_NS}limit/{DAV_NS}nresults")
        if limit is not None:
            found = found[: int(_number(limit))]
        return names, found

    @staticmethod
    def _by_file_id(environ: dict, scope: Any, depth: str, where: Any) -> list[Any] | None:
        """The answer to ``oc:fileid`` equal to a number (nc-py-api asks so after every move
        and copy) from the file id's record instead of a walk of the whole scope; None where
        a walk is needed (another search, or an id not of the caller's own space)."""
        if where is None or len(where) != 1 or where[0].tag != f"{DAV_NS}eq" or depth == "0":
            return None
        name, literal = Matcher._operands(where[0])
        provider = scope.provider
        if name != f"{OC}fileid" or not isinstance(provider, DriveProvider):
            return None
        rel = provider.spaces.state.path_of_file_id(environ[ENV_USER], int(_number(literal)))
        if rel is None:
            return None
        res = _own_resource(environ, provider, scope, rel, depth)
        return [res] if res is not None else []

    @staticmethod
    def _scope(environ: dict, href: str) -> Any:
        """The folder a ``d:scope`` names: ``/files/<user>/...`` below the DAV root, or a full
        path or URL of it."""
        path = unquote(urlsplit(href.strip()).path)
        request_path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        dav_root = request_path[: request_path.find("/remote.php/dav")] + "/remote.php/dav"
        if not path.startswith(dav_root + "/"):
            path = dav_root + "/" + path.lstrip("/")
        app = environ["wsgidav.app"]
        share, provider = app.resolve_provider(path)
        if not isinstance(provider, DriveProvider) or provider.area != "space":
            raise RefusedError(HTTP_FORBIDDEN, f"Only your files can be searched, not {href}")
        res = provider.get_resource_inst(path[len(share) :] or "/", environ)
        if res is None:
            raise RefusedError(HTTP_NOT_FOUND, f"The search scope {href} does not exist")
        return res

    @staticmethod
    def _ordered(orderby: Any, found: list[Any]) -> list[Any]:
        orders = orderby.findall(f"{DAV_NS}order") if orderby is not None else []
        # the last key first: Python's sort is stable, so earlier keys decide ties last
        for order in reversed(orders):
            prop = order.find(f"{DAV_NS}prop")
            if prop is None or len(prop) != 1:
                raise RefusedError(400, "d:order needs one d:prop")
            name = prop[0].tag
            descending = order.find(f"{DAV_NS}descending") is not None

            def key(res: Any, name: str = name) -> tuple[bool, Any]:
                value = Matcher._value(res, name)
                return (value is None, value if value is not None else 0)

            found = sorted(found, key=key, reverse=descending)
        return found

    # -- REPORT oc:filter-files -------------------------------------------------------------------

    def report(self, environ: dict) -> tuple[list[str] | None, list[Any]]:
        provider = environ.get("wsgidav.provider")
        if not isinstance(provider, DriveProvider) or provider.area != "space":
            raise RefusedError(HTTP_NOT_FOUND, "Reports are answered on your files only")
        root = _read_xml(environ)
        if root.tag != f"{OC}filter-files":
            raise RefusedError(HTTP_FORBIDDEN, f"The report {root.tag} is not supported")
        names = _prop_names(root.find(f"{DAV_NS}prop")) or None
        rules = root.find(f"{OC}filter-rules")
        if rules is None or len(rules) == 0:
            raise RefusedError(400, "oc:filter-files needs oc:filter-rules")
        scope = provider.get_resource_inst(environ["PATH_INFO"], environ)
        if scope is None:
            raise RefusedError(HTTP_NOT_FOUND)
        for rule in rules:
            if rule.tag == FAVORITE and (rule.text or "").strip() == "1":
                continue
            if rule.tag == f"{OC}systemtag":
                # the drive keeps no tags, so no file carries the one asked for
                return names, []
            raise RefusedError(400, f"The filter rule {rule.tag} is not supported")
        return names, self._favorites(environ, provider, scope)

    @staticmethod
    def _favorites(environ: dict, provider: DriveProvider, scope: Any) -> list[Any]:
        """The caller's favorites at or below ``scope`` in their own space."""
        found = []
        for rel in provider.spaces.state.paths_with_property(environ[ENV_USER], FAVORITE):
            res = _own_resource(environ, provider, scope, rel, "infinity")
            if res is not None and _is_favorite(res):
                found.append(res)
        return found
