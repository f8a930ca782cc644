"""What a WebDAV server answers, read: multistatus documents (PROPFIND) into `Entry` objects,
the PROPFIND bodies we send, HTTP dates, and the message of a server's XML error body.

It owns reading XML safely (`parse_xml`: UTF-8 only, no document type); it must not send
requests or know which server family answers.
"""

from __future__ import annotations

import asyncio
import calendar
import functools
import re
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from xml.etree.ElementTree import (  # noqa: S405 - guarded in parse_xml and entries_in_steps
    Element,
    XMLPullParser,
    fromstring,
)

import httpx

from ...gc_pause import gc_paused
from ..base import Entry, StorageUnavailable
from .checksums import parse_checksums

DAV = "{DAV:}"
OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"
SABRE = "{http://sabredav.org/ns}"
_RESPONSE, _HREF, _PROPSTAT, _PROP, _STATUS = (
    f"{DAV}{t}" for t in ("response", "href", "propstat", "prop", "status")
)
_GETETAG, _LASTMODIFIED, _CONTENTLENGTH, _RESOURCETYPE, _COLLECTION = (
    f"{DAV}{t}"
    for t in ("getetag", "getlastmodified", "getcontentlength", "resourcetype", "collection")
)
_LOCKDISCOVERY, _ACTIVELOCK = f"{DAV}lockdiscovery", f"{DAV}activelock"
_OC_SIZE, _OC_PERMISSIONS, _OC_FILEID, _OC_ID, _OC_CHECKSUMS = (
    f"{OC}{t}" for t in ("size", "permissions", "fileid", "id", "checksums")
)

#: The properties of every PROPFIND: all a model needs, so a listing is one request.
PROPFIND_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
 <d:prop>
  <d:getetag/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/>
  <d:lockdiscovery/><oc:fileid/><oc:id/><oc:permissions/><oc:size/>
 </d:prop>
</d:propfind>
"""

#: The same with the checksums the server keeps of each file, for servers that say they keep them
#: (the `checksums` capability); asked only there, since elsewhere it is a "404" block per entry
CHECKSUMS_PROPFIND_BODY = PROPFIND_BODY.replace(b"<oc:size/>", b"<oc:size/><oc:checksums/>")

#: The same for a plain WebDAV server, which has no `oc:` properties: asking for them would only
#: add a "404" block per entry to every listing (Apache), twice the XML to parse
PLAIN_PROPFIND_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:">
 <d:prop>
  <d:getetag/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/>
  <d:lockdiscovery/>
 </d:prop>
</d:propfind>
"""

#: The properties of a trash listing, in both dialects (each server answers its own, 404s the rest)
TRASH_PROPFIND_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">
 <d:prop>
  <d:getcontentlength/><d:resourcetype/><d:getlastmodified/>
  <nc:trashbin-filename/><nc:trashbin-original-location/><nc:trashbin-deletion-time/>
  <oc:trashbin-original-filename/><oc:trashbin-original-location/>
  <oc:trashbin-delete-timestamp/><oc:trashbin-delete-datetime/>
 </d:prop>
</d:propfind>
"""

#: The most of an error answer's body read for the message in it (they are a few hundred bytes).
ERROR_BODY_LIMIT = 65536

#: Byte order marks of the encodings other than UTF-8 that XML allows (UTF-32 before UTF-16:
#: the UTF-32 little-endian mark starts with the UTF-16 one).
_OTHER_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)
_UTF8_BOM = b"\xef\xbb\xbf"
#: The encoding an XML declaration names (`<?xml version="1.0" encoding="..."?>`).
_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")

_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}


class UnreadableXML(StorageUnavailable, ValueError):
    """A server's XML answer that is refused before it is parsed (a document type, an encoding
    other than UTF-8). A `StorageUnavailable`, and a `ValueError` as the parser's own errors."""

    def __init__(self, detail: str):
        super().__init__("", detail)


@functools.lru_cache(maxsize=4096)
def http_date(value: str | None) -> float | None:
    """Seconds since the epoch of an HTTP date; the usual RFC 1123 GMT form on a fast path, and
    remembered, since a listing has one per entry and many entries share one."""
    if not value:
        return None
    parts = value.split()
    if len(parts) == 6 and parts[5] == "GMT" and parts[2] in _MONTHS:
        try:
            hours, minutes, seconds = (int(p) for p in parts[4].split(":"))
            return float(
                calendar.timegm(
                    (int(parts[3]), _MONTHS[parts[2]], int(parts[1]), hours, minutes, seconds)
                )
            )
        except ValueError:
            pass
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _refuse_other_encodings(body: bytes) -> None:
    """Refuse a body that is not UTF-8 (or its ASCII subset): the byte checks of `parse_xml`
    see markup only in an encoding where `<!DOCTYPE` is those very bytes. UTF-16 and UTF-32
    spell every ASCII character with NUL bytes, which UTF-8 XML never holds."""
    for bom, name in _OTHER_BOMS:
        if body.startswith(bom):
            raise UnreadableXML(f"an XML answer in {name} is refused (only UTF-8 is read)")
    if b"\x00" in body:
        raise UnreadableXML("an XML answer with NUL bytes (UTF-16 or UTF-32) is refused")
    start = body[len(_UTF8_BOM) :] if body.startswith(_UTF8_BOM) else body
    if start.startswith(b"<?xml"):
        declared = _DECLARED_ENCODING.match(start[: start.find(b"?>") + 2])
        if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
            name = declared.group(1).decode("ascii")
            raise UnreadableXML(f"an XML answer in {name} is refused (only UTF-8 is read)")


def parse_xml(body: bytes) -> Element:
    """Parse a server's XML answer with the standard library's C parser.

    Only UTF-8 is read: in another encoding (UTF-16, or one an XML declaration names) the byte
    check below could not see a declaration. A document type declaration is refused outright:
    WebDAV answers never have one, and without one there are no entities to expand or to fetch
    (the expat shipped with Python also limits entity amplification). This is what defusedxml
    guards against, at the C parser's speed, which matters for listings of thousands of entries.
    """
    _refuse_unsafe_bytes(body)
    return fromstring(body)  # noqa: S314 - UTF-8 without a DTD, so no entities (checked above)


def _refuse_unsafe_bytes(body: bytes) -> None:
    """What `parse_xml` refuses before parsing: another encoding than UTF-8, a document type."""
    _refuse_other_encodings(body)
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise UnreadableXML("an XML answer with a document type declaration is refused")


def server_message(response: httpx.Response, body: bytes | None = None) -> str:
    """The reason a server of the ownCloud family gives in its XML error body (Sabre's
    `s:message`, e.g. why a share may not be written), or "" when it gives none. `body` is the
    start of a streamed answer's body, read by the caller (see `WebDAVStorage._error_body`)."""
    if body is None:
        try:
            body = response.content
        except httpx.ResponseNotRead:
            return ""
    if "xml" not in response.headers.get("Content-Type", "") or len(body) > ERROR_BODY_LIMIT:
        return ""
    try:
        message = parse_xml(body).findtext(f"{SABRE}message")
    except Exception:
        return ""
    return " ".join((message or "").split())[:300]


def prop_text(props: dict[str, Element], tag: str) -> str | None:
    """The stripped text of a property, None where it is missing or empty."""
    element = props.get(tag)
    if element is None or not element.text:
        return None
    return element.text.strip()


Properties = dict[str, Element]


def responses(body: bytes, path: str) -> list[tuple[str, Properties]]:
    """(href, found properties) of each response of a multistatus answer about `path`.

    One pass over each response's children (href, then propstats of prop and status in
    either order): listings have thousands of responses, so no search per property.
    """
    try:
        root = parse_xml(body)
    except Exception as e:
        raise StorageUnavailable(path, f"the storage sent an unreadable listing ({e})") from e
    found = []
    for response in root.iter(_RESPONSE):
        href, props = _response(response)
        if href:
            found.append((href, props))
    return found


def _response(response: Element) -> tuple[str | None, Properties]:
    """The href (None where empty) and the found properties of one `d:response`."""
    href = None
    props: Properties = {}
    for part in response:
        if part.tag == _HREF:
            href = part.text
        elif part.tag == _PROPSTAT:
            prop = None
            ok = False
            for item in part:
                if item.tag == _PROP:
                    prop = item
                elif item.tag == _STATUS:
                    ok = " 200 " in f"{item.text} "
            if ok and prop is not None:
                for child in prop:
                    props[child.tag] = child
    return (href.strip() or None) if href else None, props


def entry_of(path: str, props: Properties, version: Callable[[str | None], str]) -> Entry:
    """The entry a response's properties describe; `version` makes the etag of the raw
    `getetag` (see `etags.ETags.version`)."""
    # children compared directly: Element.find() goes through ElementPath, 2 µs a call
    resourcetype = props.get(_RESOURCETYPE)
    is_dir = resourcetype is not None and any(c.tag == _COLLECTION for c in resourcetype)
    size_text = prop_text(props, _OC_SIZE if is_dir else _CONTENTLENGTH)
    try:
        size = int(size_text) if size_text is not None else (None if is_dir else 0)
    except ValueError:
        size = None
    mtime = http_date(prop_text(props, _LASTMODIFIED)) or 0.0
    permissions = prop_text(props, _OC_PERMISSIONS)
    if permissions is None:
        writable = True
    elif is_dir:
        writable = "C" in permissions or "K" in permissions
    else:
        writable = "W" in permissions
    lock = props.get(_LOCKDISCOVERY)
    if lock is not None and any(c.tag == _ACTIVELOCK for c in lock):
        writable = False
    checksums_element = props.get(_OC_CHECKSUMS)
    checksums = (
        parse_checksums(" ".join(checksums_element.itertext()))
        if checksums_element is not None
        else ()
    )
    return Entry.listed(
        name=path.rpartition("/")[2],
        path=path,
        kind="directory" if is_dir else "file",
        size=size,
        mtime=mtime,
        ctime=mtime,
        etag=version(prop_text(props, _GETETAG)),
        writable=writable,
        file_id=prop_text(props, _OC_FILEID) or prop_text(props, _OC_ID),
        checksums=checksums,
        # "R": may be shared on (ownCloud, Nextcloud, oCIS and the drive spell it alike)
        shareable=None if permissions is None else "R" in permissions,
    )


def entries_of(
    body: bytes,
    path: str,
    path_of: Callable[[str], str | None],
    version: Callable[[str | None], str],
) -> list[Entry]:
    """The entries of a PROPFIND answer about `path` that lie inside the space (`path_of` maps
    an href to a storage path, None outside it), with the collector paused meanwhile."""
    entries = []
    with gc_paused():
        for href, props in responses(body, path):
            entry_path = path_of(href)
            if entry_path is not None:
                entries.append(entry_of(entry_path, props, version))
    return entries


#: Bytes of a multistatus answer read between two turns of the event loop: some 60 entries,
#: a few milliseconds of work. Read in one go, a listing of 10,000 entries held the loop (every
#: other request of the user) for 0.4 s or more.
PARSE_STEP = 32 * 1024


async def entries_in_steps(
    body: bytes,
    path: str,
    path_of: Callable[[str], str | None],
    version: Callable[[str | None], str],
) -> list[Entry]:
    """`entries_of`, with the event loop free between steps of `PARSE_STEP` bytes: the same
    checks on the whole body first, then the same C parser fed one step at a time, each
    response turned into its entry (and dropped) as soon as it is complete."""
    if len(body) <= PARSE_STEP:
        return entries_of(body, path, path_of, version)
    entries: list[Entry] = []
    try:
        _refuse_unsafe_bytes(body)
        parser = XMLPullParser(events=("end",))
        for start in range(0, len(body), PARSE_STEP):
            with gc_paused():
                parser.feed(body[start : start + PARSE_STEP])
                if start + PARSE_STEP >= len(body):
                    parser.close()
                for _event, element in parser.read_events():
                    if element.tag == _RESPONSE:
                        _add_entry(entries, element, path_of, version)
            await asyncio.sleep(0)
    except (ValueError, SyntaxError) as e:  # ParseError is a SyntaxError
        raise StorageUnavailable(path, f"the storage sent an unreadable listing ({e})") from e
    return entries


def _add_entry(
    entries: list[Entry],
    response: Element,
    path_of: Callable[[str], str | None],
    version: Callable[[str | None], str],
) -> None:
    href, props = _response(response)
    entry_path = path_of(href) if href else None
    if entry_path is not None:
        entries.append(entry_of(entry_path, props, version))
    response.clear()  # its elements are no longer needed: free them now
