"""What each mount of code last saw of each path, so that its uploads cannot silently replace a
change it never saw.

Code writes through an `rclone mount`, whose uploads are plain PUTs: rclone has no conditional
upload for WebDAV. Each mount names itself in the ``X-Swan-Mount`` header (an id the spawner
draws per mount), and this middleware notes, per mount and path, from when on the mount knows
the path's state: a listing of a folder (PROPFIND) tells it the state of the folder's entries, a
GET or HEAD of a file that file's, and the mount's own changes (PUT, MOVE, COPY,
DELETE, PROPPATCH) what it did. A PUT of that mount then carries `Seen` to `Spaces.publish`,
which keeps the file the upload would replace as a visible conflict copy when that file was
changed after the mount last knew it (by a sync client, the file browser, another person): the
code's file takes the name, as the code goes on reading what it wrote, and the other change sits
next to it.

Times are compared with the files' ctime, which the kernel keeps in coarse ticks (a few ms), so a
sighting counts from `MARGIN_NS` before the request began: a change in the same instant as a
listing is taken as unseen (one conflict copy too many rather than one change lost). A path the
mount never looked at, or one forgotten (at most `MAX_SIGHTINGS` are kept), is replaced as any
client's upload is: the old content becomes a version.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsgidav import util
from wsgidav.mw.base_mw import BaseMiddleware

from .dav import ENV_SEEN, DriveProvider, PublicLinkProvider, RefusedError, destination_path

#: the header with the id of the mount a request comes from (`swan_hub.mounts.MOUNT_HEADER`),
#: as WSGI names it
MOUNT_HEADER = "HTTP_X_SWAN_MOUNT"
#: how far a sighting reaches back before its request began (the kernel's ctime ticks)
MARGIN_NS = 20_000_000
#: the spaces mounts write in: users' own (and their shares), and a share of another site's
#: user, which that site's mount reaches with the share's secret where public links are served
#: (a mount's id is its own, so its paths below the share's root name no other share's)
WATCHED = (DriveProvider, PublicLinkProvider)
#: sightings kept for all mounts together; the oldest are forgotten first
MAX_SIGHTINGS = 100_000
#: a mount id longer than this is no id of ours
MAX_ID_LENGTH = 64
#: the key suffix of a folder's listing (what the mount knows of every entry in it)
LISTED = "/*"

OWN_WRITES = ("PUT", "MOVE", "COPY", "DELETE", "PROPPATCH")
OBSERVATIONS = ("PROPFIND", "GET", "HEAD")


@dataclass(frozen=True)
class Seen:
    """A mount knows the state of a path as of ``since_ns`` (time.time_ns()), and its ETag
    (unquoted) when it was told one."""

    since_ns: int
    etag: str | None = None

    def missed(self, ctime_ns: int, etag: str) -> bool:
        """Whether a file of this ``ctime_ns`` and ``etag`` is a change the mount never saw."""
        return ctime_ns > self.since_ns and etag != self.etag


class Sightings:
    """The sightings of all mounts, by (mount, path); thread-safe, bounded."""

    def __init__(self, limit: int = MAX_SIGHTINGS) -> None:
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str], Seen] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, mount: str, path: str, seen: Seen) -> None:
        with self._lock:
            key = (mount, path)
            earlier = self._seen.pop(key, None)
            if earlier is not None and earlier.since_ns > seen.since_ns:
                seen = earlier  # an answer that came late tells nothing newer
            self._seen[key] = seen
            while len(self._seen) > self.limit:
                self._seen.popitem(last=False)

    def forget(self, mount: str, path: str) -> None:
        with self._lock:
            self._seen.pop((mount, path), None)

    def of(self, mount: str, path: str) -> Seen | None:
        """What ``mount`` last knew of the file at ``path``: from its own sighting of the file
        or from a later listing of its folder (which tells no ETag)."""
        folder = path.rpartition("/")[0]
        with self._lock:
            own = self._seen.get((mount, path))
            listed = self._seen.get((mount, folder + LISTED))
        if listed is not None and (own is None or listed.since_ns > own.since_ns):
            return Seen(listed.since_ns)
        return own


def _path(raw: str) -> str:
    """A request's path as sightings are kept: a folder's without its last slash, which rclone
    sends with every listing and a PUT's parent lacks."""
    return util.normalize_path(raw).rstrip("/") or "/"


def _etag(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name.lower() in ("oc-etag", "etag"):
            return value.strip().removeprefix("W/").strip('"')
    return None


class SightingsMiddleware(BaseMiddleware):
    """WsgiDAV middleware noting what mounts see and write in users' spaces (see the module)."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.sightings = Sightings()

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        mount = environ.get(MOUNT_HEADER, "")
        method = environ["REQUEST_METHOD"].upper()
        if (
            not mount
            or len(mount) > MAX_ID_LENGTH
            or type(environ.get("wsgidav.provider")) not in WATCHED
            or method not in OWN_WRITES + OBSERVATIONS
        ):
            return self.next_app(environ, start_response)
        mount = f"{environ.get('wsgidav.auth.user_name', '')}:{mount}"
        path = _path(environ.get("SCRIPT_NAME", "") + environ["PATH_INFO"])
        began = time.time_ns() - MARGIN_NS
        if method == "PUT":
            seen = self.sightings.of(mount, path)
            if seen is not None:
                environ[ENV_SEEN] = seen
        try:
            target = _path(destination_path(environ)) if method in ("MOVE", "COPY") else None
        except RefusedError:
            target = None

        def noting(status: str, headers: list[tuple[str, str]], *more: Any) -> Any:
            if status[:1] == "2":
                self._note(mount, method, path, target, began, environ, headers)
            return start_response(status, headers, *more)

        return self.next_app(environ, noting)

    def _note(
        self,
        mount: str,
        method: str,
        path: str,
        target: str | None,
        began: int,
        environ: dict,
        headers: list[tuple[str, str]],
    ) -> None:
        sightings = self.sightings
        if method == "PROPFIND":
            # A PROPFIND Depth 0 is rclone's own look, not code's (as in the mount guard,
            # swan_hub.mount_guard): code's lookups list the folder, and rclone looks a file up
            # just before uploading one code made. The drive answers a listing of any other
            # depth as one of Depth 1.
            if environ.get("HTTP_DEPTH", "1") != "0":
                sightings.note(mount, path, Seen(began, _etag(headers)))
                sightings.note(mount, path + LISTED, Seen(began))
            return
        if method in OBSERVATIONS:
            sightings.note(mount, path, Seen(began, _etag(headers)))
            return
        # the mount's own change: it knows what it wrote, as of now
        done = time.time_ns()
        if method == "PUT":
            sightings.note(mount, path, Seen(done, _etag(headers)))
        elif method in ("DELETE", "PROPPATCH"):  # PROPPATCH: rclone setting a file's time
            sightings.note(mount, path, Seen(done))
        elif target is not None:
            if method == "MOVE":
                sightings.note(mount, path, Seen(done))
            sightings.note(mount, target, Seen(done))


__all__ = ["MOUNT_HEADER", "Seen", "Sightings", "SightingsMiddleware"]
