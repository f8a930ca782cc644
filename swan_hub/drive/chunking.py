"""ownCloud's chunked upload (v1): ``PUT <path>-chunking-<transfer>-<count>-<index>`` with
``OC-Chunked: 1``, as pyocclient, old ownCloud clients and CERNBox (Reva) send large files.

This module owns where the parts wait (a hidden folder per transfer in the uploader's uploads area,
outside every space), when a set is complete, and its atomic publication through `Spaces.publish`.
It must not publish bytes that did not all arrive, nor keep part sets forever.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import zlib

from wsgidav import util

from swan_contents.storage.ondisk import TEMP_PREFIX

from .dav import (
    ENV_LINK,
    ENV_USER,
    DriveProvider,
    announced_length,
    cut_off,
    parse_mtime,
    upload_headers,
)
from .spaces import PERM_CREATE, PERM_UPDATE, DriveError, Place, check_name, file_etag, remove_tree

#: The name of a part: ownCloud's ``<name>-chunking-<transfer id>-<count>-<index from 0>``.
PART_NAME = re.compile(r"(?P<name>.+)-chunking-(?P<transfer>[^-/]+)-(?P<count>\d+)-(?P<index>\d+)")

#: More parts than any client sends (pyocclient's and ownCloud's parts are MBs each).
MAX_PARTS = 100_000

BLOCK = 1 << 20

#: Taken while a part is put in its place and the set is checked for completeness, so that of two
#: last parts arriving at once exactly one assembles the set.
_claim_lock = threading.Lock()


def is_v1_part(environ: dict) -> bool:
    """Whether the request is a PUT of a part of an ownCloud chunked upload (v1)."""
    return (
        environ["REQUEST_METHOD"].upper() == "PUT"
        and environ.get("HTTP_OC_CHUNKED", "").strip() not in ("", "0")
        and PART_NAME.fullmatch(util.get_uri_name(environ["PATH_INFO"])) is not None
    )


class _Checksum:
    """The whole file's ``OC-Checksum`` (``SHA1:<hex>``, also MD5, SHA256, ADLER32), computed
    while the parts are joined; None for a type the drive does not know (then not checked)."""

    def __init__(self, header: str):
        kind, _, self.expected = header.strip().partition(":")
        self.kind = kind.upper()
        self.expected = self.expected.strip().lower()
        self._adler = 1
        self._hash = None
        if self.kind in ("SHA1", "MD5", "SHA256"):
            self._hash = hashlib.new(self.kind.lower())

    @classmethod
    def of(cls, environ: dict) -> _Checksum | None:
        header = environ.get("HTTP_OC_CHECKSUM", "")
        found = cls(header) if ":" in header else None
        if found is None or (found._hash is None and found.kind != "ADLER32"):
            return None
        return found

    def update(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)
        else:
            self._adler = zlib.adler32(data, self._adler)

    def matches(self) -> bool:
        ours = self._hash.hexdigest() if self._hash is not None else f"{self._adler:08x}"
        return ours == self.expected


def put_part(environ: dict, provider: DriveProvider) -> tuple[int, list[tuple[str, str]]]:
    """Store one part; when it completes its set, publish the file. Answers as ownCloud does:
    201 for each part, with the new file's ETag and file id on the part that completed it."""
    parent = util.get_uri_parent(environ["PATH_INFO"])
    match = PART_NAME.fullmatch(util.get_uri_name(environ["PATH_INFO"]))
    assert match is not None
    name = match["name"]
    count, index = int(match["count"]), int(match["index"])
    if not 0 < count <= MAX_PARTS or index >= count:
        raise DriveError(400, f"Part {index} of {count} does not exist in a chunked upload")
    check_name(name)
    target = util.join_uri(parent, name)
    dest = _writable_target(provider, target, environ)
    spaces = provider.spaces

    uploader = environ.get(ENV_USER) or dest.owner
    link = environ.get(ENV_LINK)
    key = "\0".join(
        (environ.get("SCRIPT_NAME", ""), uploader, f"link:{link.id}" if link else "", target)
        + (match["transfer"], str(count))
    )
    area = spaces.area_dir("uploads", uploader)
    folder = os.path.join(area, f"{TEMP_PREFIX}v1-{hashlib.sha256(key.encode()).hexdigest()[:32]}")
    if not os.path.isdir(folder):
        # a new transfer: the time to drop the uploader's uploads abandoned long ago
        spaces.sweep_abandoned_uploads(uploader)
        os.makedirs(folder, mode=0o700, exist_ok=True)

    announced = announced_length(environ)
    stored = sum(e.stat().st_size for e in os.scandir(folder) if e.name.isdigit())
    old_size = os.path.getsize(dest.fs_path) if os.path.isfile(dest.fs_path) else 0
    spaces.check_quota(dest.owner, stored + (announced or 0), old_size)
    # and, as for chunking v2, all the uploader's parts in progress hold the quota at most
    quota = spaces.quota_bytes
    if quota is not None and spaces.uploads_bytes(uploader) + (announced or 0) > quota:
        raise DriveError(
            507,
            "Not enough space: your unfinished uploads fill your quota. Finish or cancel them, "
            "or wait until they are swept, and try again.",
        )

    _receive(environ, os.path.join(folder, str(index)), announced)
    claimed = _claim_if_complete(folder, count)
    if claimed is None:
        return 201, []
    try:
        st = _publish(claimed, count, dest, environ, provider)
    finally:
        remove_tree(claimed)
    return 201, upload_headers(spaces, dest, st, environ)


def _writable_target(provider: DriveProvider, target: str, environ: dict) -> Place:
    """The place the file will be published at, refused (before any part is stored) where a PUT
    of it would be refused: no folder to hold it, a folder in its place, no permission, or an
    If-Match that fails already."""
    dest = provider.place_for(target, environ)
    if not os.path.isdir(os.path.dirname(dest.fs_path)):
        raise DriveError(409, "The folder of this upload does not exist")
    try:
        st = os.stat(dest.fs_path)
    except FileNotFoundError:
        st = None
    if st is not None and os.path.isdir(dest.fs_path):
        raise DriveError(409, f"{dest.name} is a folder")
    dest.require(PERM_UPDATE if st is not None else PERM_CREATE, "write this file")
    _check_not_locked(provider, target, environ)
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match is not None and if_match.strip() != "*":
        tags = {t.strip().strip('"') for t in if_match.split(",")}
        if st is None or file_etag(st) not in tags:
            raise DriveError(412, "The file was changed by someone else (If-Match)")
    return dest


def _check_not_locked(provider: DriveProvider, target: str, environ: dict) -> None:
    """423 where a WebDAV lock that the request holds no token of covers the target (or, for
    a new file, its folder), as WsgiDAV answers a plain PUT there."""
    locks = provider.lock_manager
    if locks is None:
        return
    res = provider.get_resource_inst(target, environ) or provider.get_resource_inst(
        util.get_uri_parent(target), environ
    )
    if res is None:
        return
    if "wsgidav.conditions.if" not in environ:
        util.parse_if_header_dict(environ)
    locks.check_write_permission(
        url=res.get_ref_url(),
        depth="0",
        token_list=environ["wsgidav.ifLockTokenList"],
        # the name WsgiDAV records as a lock's owner (its request server copies it later)
        principal=environ.get("wsgidav.auth.user_name", "anonymous"),
    )


def _receive(environ: dict, path: str, announced: int | None) -> None:
    """Stream the body to ``path`` (a re-sent part replaces the earlier one), a block at a time;
    a body that ends short of its announced length is refused and leaves nothing."""
    temp = os.path.join(os.path.dirname(path), f".{secrets.token_hex(8)}")
    received = 0
    stream = environ["wsgi.input"]
    try:
        with open(temp, "xb") as out:
            while announced is None or received < announced:
                want = BLOCK if announced is None else min(BLOCK, announced - received)
                data = stream.read(want)
                if not data:
                    break
                received += len(data)
                out.write(data)
            environ["wsgidav.all_input_read"] = 1
            if announced is not None and received != announced:
                raise cut_off(received, announced)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except ValueError as e:
        # cheroot's word for a chunked transfer-encoding that broke off
        raise DriveError(400, f"The upload broke off ({e}); nothing was changed") from None
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _claim_if_complete(folder: str, count: int) -> str | None:
    """The set's folder, renamed for this request alone, if every part is there; else None."""
    with _claim_lock:
        try:
            present = {n for n in os.listdir(folder) if n.isdigit()}
        except FileNotFoundError:
            return None
        if any(str(i) not in present for i in range(count)):
            return None
        claimed = f"{folder}-{secrets.token_hex(4)}"
        os.rename(folder, claimed)
        return claimed


def _publish(
    folder: str, count: int, dest: Place, environ: dict, provider: DriveProvider
) -> os.stat_result:
    """Join the parts in order into a temp file beside the target, check the checksum, and
    publish it as a PUT would (quota, If-Match, the old content kept as a version)."""
    spaces = provider.spaces
    checksum = _Checksum.of(environ)
    temp = spaces.temp_beside(dest.fs_path)
    try:
        with spaces.create_temp(temp) as out:
            for i in range(count):
                with spaces.open_file(os.path.join(folder, str(i))) as part:
                    while data := part.read(BLOCK):
                        if checksum is not None:
                            checksum.update(data)
                        out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if checksum is not None and not checksum.matches():
            raise DriveError(
                400,
                f"The parts do not add up to the file sent ({checksum.kind} differs); "
                "nothing was changed. Send the file again.",
            )
        return spaces.publish(
            dest, temp, if_match=environ.get("HTTP_IF_MATCH"), mtime=parse_mtime(environ)
        )
    except BaseException:
        spaces.discard(temp)
        raise
