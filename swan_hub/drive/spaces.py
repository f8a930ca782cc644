"""The users' spaces on disk as the drive sees them: names, places, ETags, atomic publishing.

This module owns the mapping from a user's view (their own files plus the shares they accepted
under the virtual ``Shared/`` folder) to files on disk with permissions, the folder ETags that
change when anything inside changes, and the one way bytes are published (temp file beside the
target, then rename), with versions and trash kept outside the synced tree. It knows no HTTP.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO

from swan_contents.storage.base import kept_copy_name
from swan_contents.storage.ondisk import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    TempJournal,
    make_etag,
    rename_noreplace,
)
from swan_hub.ownership import hand_over

from .state import (
    STATE_ACCEPTED,
    STATE_DECLINED,
    STATE_PENDING,
    DriveState,
    FileRecord,
    Seen,
    ShareRecord,
    TrashRecord,
    VersionRecord,
)
from .tree import SubtreeCache, TreeSummary

if TYPE_CHECKING:
    from .sightings import Seen

PERM_READ = 1
PERM_UPDATE = 2
PERM_CREATE = 4
PERM_DELETE = 8
PERM_SHARE = 16
PERM_ALL = 31

MAX_NAME_BYTES = 255

#: How the temp files the drive makes in a space begin: hidden and ignored like every temp name,
#: and told apart from a notebook server's, which may write beside the drive at the same time.
DRIVE_TEMP_PREFIX = f"{TEMP_PREFIX}drive-"


class DriveError(Exception):
    """A refused or failed operation, with the HTTP status and a message for the person."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


def check_name(name: str) -> str:
    """Return ``name`` if it can name a file in a space, else raise DriveError(400)."""
    if name in ("", ".", ".."):
        raise DriveError(400, f"{name!r} is not a valid file name")
    if "/" in name or "\\" in name or "\0" in name:
        raise DriveError(400, f"File names must not contain '/', '\\' or NUL: {name!r}")
    if any(ord(c) < 32 for c in name):
        raise DriveError(400, f"File names must not contain control characters: {name!r}")
    if name.startswith(TEMP_PREFIX):
        raise DriveError(400, f"Names starting with {TEMP_PREFIX!r} are reserved: {name!r}")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise DriveError(400, f"File name too long (over {MAX_NAME_BYTES} bytes)")
    return name


def split_segments(path: str) -> list[str]:
    """The checked names of a `/`-separated path (no traversal can pass)."""
    return [check_name(p) for p in path.split("/") if p]


def file_etag(st: os.stat_result) -> str:
    """The ETag of a file (unquoted), the same value the notebook server's storage uses."""
    return make_etag(st).strip('"')


def permission_letters(perms: int, *, is_dir: bool, shared: bool, mount: bool) -> str:
    """oc:permissions as ownCloud/Nextcloud spell it (S R M G D N V W C K)."""
    letters = ""
    if shared:
        letters += "S"
    if perms & PERM_SHARE:
        letters += "R"
    if mount:
        letters += "M"
    letters += "G"
    if perms & PERM_DELETE and not mount:
        letters += "DNV"
    if not is_dir and perms & PERM_UPDATE:
        letters += "W"
    if is_dir and perms & PERM_CREATE:
        letters += "CK"
    return letters


#: How the versions of a file thin out as they age, like Nextcloud's expiry (but keeping
#: every version of the first minute): (up to this age in seconds, one version per this many
#: seconds). The age is that of the content a version keeps (its mtime).
VERSION_AGES = (
    (60, 0),  # the first minute: every version
    (3600, 60),  # the first hour: one per minute
    (24 * 3600, 3600),  # the first day: one per hour
    (30 * 24 * 3600, 24 * 3600),  # the first 30 days: one per day
    (None, 7 * 24 * 3600),  # older: one per week
)


def retained_versions(
    versions: list[VersionRecord], now: float, max_count: int, thin_out: bool = True
) -> list[VersionRecord]:
    """The versions to keep: with ``thin_out``, the newest one of each period of `VERSION_AGES`
    for its age; then at most the ``max_count`` made last."""
    kept: list[VersionRecord] = []
    periods: set[tuple[int, int]] = set()
    for version in sorted(versions, key=lambda v: (v.mtime, v.id), reverse=True):
        age = now - version.mtime
        step = next(step for limit, step in VERSION_AGES if limit is None or age <= limit)
        if thin_out and step:
            period = (step, version.mtime // step)
            if period in periods:
                continue
            periods.add(period)
        kept.append(version)
    return sorted(kept, key=lambda v: v.id)[-max_count:] if max_count > 0 else []


@dataclass
class Place:
    """Where a path of a user's view lands on disk, and what that user may do there."""

    owner: str
    rel: str
    fs_path: str
    perms: int
    share: ShareRecord | None = None
    mount: bool = False

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    def child(self, name: str) -> Place:
        rel = f"{self.rel}/{name}" if self.rel else name
        fs_path = self.fs_path
        if not fs_path or fs_path.endswith("/") or name.startswith("/"):
            fs_path = os.path.join(fs_path, name)
        else:  # what os.path.join gives, at a fifth of its cost: a listing asks once per entry
            fs_path = f"{fs_path}/{name}"
        return Place(self.owner, rel, fs_path, self.perms, self.share)

    def require(self, perm: int, what: str) -> None:
        if not self.perms & perm:
            raise DriveError(403, f"You may not {what} here: the share does not allow it")


class Spaces:
    """Every user's space under ``users_root`` plus the drive's own areas under ``drive_root``."""

    def __init__(
        self,
        users_root: str,
        drive_root: str,
        state: DriveState,
        *,
        share_folder: str = "Shared",
        auto_accept: bool = False,
        quota_bytes: int | None = None,
        groups_of: Callable[[str], list[str]] = lambda user: [],
        instance_id: str = "ocswan",
        versions_max_count: int = 50,
        upload_max_age: float = 24 * 3600,
        versions_thin_out: bool = True,
        watch_folders: bool = True,
        folder_watch_limit: int = 0,
    ):
        self.users_root = os.path.abspath(users_root)
        self.drive_root = os.path.abspath(drive_root)
        self.state = state
        self.share_folder = share_folder
        self.auto_accept = auto_accept
        self.quota_bytes = quota_bytes
        self.groups_of = groups_of
        self.instance_id = instance_id
        self.versions_max_count = versions_max_count
        self.upload_max_age = upload_max_age
        self.versions_thin_out = versions_thin_out
        self._publish_lock = threading.Lock()
        #: the folder (an open descriptor) each temp file of a running write was made in, so
        #: that it is published or deleted there, wherever the folder's path leads meanwhile
        self._temp_folders: dict[str, int] = {}
        self.folders = SubtreeCache(
            self.users_root, watch=watch_folders, max_watches=folder_watch_limit
        )
        for area in ("trash", "versions", "uploads"):
            os.makedirs(os.path.join(self.drive_root, area), mode=0o700, exist_ok=True)
        self.temps = TempJournal(self.users_root, os.path.join(self.drive_root, "temp-folders"))

    # -- where things are -------------------------------------------------------------------------

    def space_dir(self, user: str) -> str:
        """The user's space, created (0700) on first use like the spawner does."""
        check_name(user)
        path = os.path.join(self.users_root, user)
        if not os.path.isdir(path):
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chmod(path, 0o700)
        return path

    def area_dir(self, area: str, user: str, *parts: str) -> str:
        path = os.path.join(self.drive_root, area, check_name(user), *parts)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def sweep_abandoned_uploads(self, user: str) -> None:
        """Delete the user's chunked uploads that got no part for ``upload_max_age`` seconds
        (a client that died half way never sends the final MOVE)."""
        horizon = time.time() - self.upload_max_age
        root = self.area_dir("uploads", user)
        with os.scandir(root) as it:
            stale = [e.path for e in it if e.is_dir() and e.stat().st_mtime < horizon]
        for path in stale:
            _unlink_quietly(path)

    def own_place(self, user: str, rel: str = "") -> Place:
        segments = split_segments(rel)
        fs_path = os.path.join(self.space_dir(user), *segments)
        return self.confined(Place(user, "/".join(segments), fs_path, PERM_ALL))

    def confined(self, place: Place) -> Place:
        """``place`` if its path reaches no symbolic link (see `confine`)."""
        self.confine(place.fs_path)
        return place

    def area_root(self, fs_path: str) -> str:
        """The root of the area ``fs_path`` lies in: a user's space, or one user's folder of
        the trash, versions or uploads. Raises DriveError(404) for a path outside them all."""
        for base in (
            self.users_root,
            *(os.path.join(self.drive_root, area) for area in ("trash", "versions", "uploads")),
        ):
            rel = os.path.relpath(fs_path, base)
            if rel != "." and not rel.startswith(".."):
                return os.path.join(base, rel.split(os.sep, 1)[0])
        raise DriveError(404, "No such file or folder")

    def confine(self, fs_path: str) -> str:
        """``fs_path`` if no existing part of it below its area's root is a symbolic link.

        The one check every path the drive serves or writes goes through. A link in a space
        can point anywhere the drive's process may read (another user's space, /etc; a
        container user's link names a host path), and a folder deleted into the trash takes
        its links along, so the drive follows none, in any area: a path through a link is
        answered like a path that does not exist. Reads then open without following links
        (`open_file`), so a link swapped in after the check is not followed either.
        """
        root = self.area_root(fs_path)
        if root.startswith(self.users_root + os.sep):
            self.space_dir(os.path.basename(root))
        current = root
        for name in os.path.relpath(fs_path, root).split(os.sep):
            if name in (".", ""):
                continue
            current = os.path.join(current, name)
            try:
                st = os.lstat(current)
            except (FileNotFoundError, NotADirectoryError):
                break
            if stat.S_ISLNK(st.st_mode):
                raise DriveError(404, "No such file or folder")
        return fs_path

    @contextlib.contextmanager
    def parent_folder(self, fs_path: str) -> Iterator[tuple[int, str]]:
        """The folder holding ``fs_path``, open, and ``fs_path``'s name in it.

        The one way the drive reaches a folder to read or write in it: from the root of
        ``fs_path``'s area one folder at a time with ``O_NOFOLLOW``, so that a folder swapped
        for a symbolic link after `confine` checked the path is not followed (404). Writes then
        name their files relative to this folder (``dir_fd``): a temp file is made there, and
        renamed there, whatever happens to the path meanwhile.
        """
        root = self.area_root(fs_path)
        names = [n for n in os.path.relpath(fs_path, root).split(os.sep) if n not in ("", ".")]
        if not names:
            raise DriveError(404, "No such file or folder")
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for name in names[:-1]:
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
                os.close(folder)
                folder = inner
        except OSError as e:
            os.close(folder)
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise DriveError(404, "No such file or folder") from None
            raise
        try:
            yield folder, names[-1]
        finally:
            os.close(folder)

    def open_file(self, fs_path: str) -> BinaryIO:
        """The regular file ``fs_path`` open for reading, reached without following any
        symbolic link (`parent_folder`, and ``O_NOFOLLOW`` for the file itself)."""
        try:
            with self.parent_folder(fs_path) as (folder, name):
                # O_NONBLOCK: a FIFO planted in a space must not hang the request
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise DriveError(404, "No such file") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise DriveError(404, "No such file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", 1 << 16)

    def create_temp(self, temp: str) -> BinaryIO:
        """The new file ``temp`` (a name from `temp_beside`) open for writing, made in the
        folder `parent_folder` opened: never through a link swapped in on the way. The folder
        stays open until `publish` or `discard` is done with the file."""
        with self.parent_folder(temp) as (folder, name):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(name, flags, 0o666, dir_fd=folder)
            self._temp_folders[temp] = os.dup(folder)
        return os.fdopen(fd, "wb")

    @contextlib.contextmanager
    def _temp_folder(self, temp: str) -> Iterator[tuple[int, str]]:
        """The folder `create_temp` made ``temp`` in, open, and its name there."""
        folder = self._temp_folders.get(temp)
        if folder is None:
            with self.parent_folder(temp) as found:
                yield found
        else:
            yield folder, os.path.basename(temp)

    def _done_with(self, temp: str) -> None:
        folder = self._temp_folders.pop(temp, None)
        if folder is not None:
            os.close(folder)

    def discard(self, temp: str) -> None:
        """Delete the temp file ``temp`` if it is there (where `create_temp` made it)."""
        try:
            with contextlib.suppress(OSError, DriveError), self._temp_folder(temp) as found:
                os.unlink(found[1], dir_fd=found[0])
        finally:
            self._done_with(temp)

    def rename(self, src: str, dst: str, *, replace: bool = True) -> None:
        """Rename ``src`` (a temp file: from the folder it was made in) to ``dst`` (of any
        areas) in the folders `parent_folder` opened, so that neither end follows a link
        swapped in after the check; with ``replace=False`` never over something there
        (FileExistsError)."""
        try:
            with (
                self._temp_folder(src) as (src_folder, src_name),
                self.parent_folder(dst) as (dst_folder, dst_name),
            ):
                folders = {"src_dir_fd": src_folder, "dst_dir_fd": dst_folder}
                if replace:
                    os.rename(src_name, dst_name, **folders)
                else:
                    rename_noreplace(src_name, dst_name, **folders)
        finally:
            self._done_with(src)

    def copy_file(self, fs_path: str, temp: str) -> None:
        """Copy the file ``fs_path`` to the new file ``temp`` (made by `create_temp`), with
        its mtime."""
        with self.create_temp(temp) as out:
            st = self.append_file(fs_path, out)
            os.utime(out.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))

    def append_file(self, fs_path: str, out: BinaryIO) -> os.stat_result:
        """Add the whole file ``fs_path`` (opened by `open_file`) at the end of ``out``, copied
        by the kernel without passing through this process; returns the status of the file."""
        out.flush()
        with self.open_file(fs_path) as source:
            st = os.fstat(source.fileno())
            offset = 0
            while sent := os.sendfile(out.fileno(), source.fileno(), offset, 1 << 30):
                offset += sent
        return st

    def default_state(self) -> int:
        return STATE_ACCEPTED if self.auto_accept else STATE_PENDING

    def received(self, user: str) -> list[ShareRecord]:
        """What ``user`` received, one entry per shared item (`merge_received`)."""
        shares = self.state.received_shares(user, self.groups_of(user), self.default_state())
        return merge_received(shares)

    def mounts(self, user: str) -> dict[str, ShareRecord]:
        """The user's accepted shares by the name they appear under in ``Shared/``."""
        mounts: dict[str, ShareRecord] = {}
        for share in self.received(user):
            if share.state == STATE_ACCEPTED:
                name = share.mount_name or share.name
                if name in mounts:
                    name = f"{name} ({share.id})"
                mounts[name] = share
        return mounts

    def place_of_share(self, share: ShareRecord, perms: int | None = None) -> Place:
        owner_root = self.space_dir(share.owner)
        fs_path = os.path.join(owner_root, *share.path.split("/"))
        place = Place(
            share.owner,
            share.path,
            fs_path,
            share.permissions if perms is None else perms,
            share,
            mount=True,
        )
        return self.confined(place)

    def resolve(self, user: str, rel: str) -> Place | None:
        """The place of ``rel`` in ``user``'s view; None for the virtual shares folder itself.

        Raises DriveError(404) when ``rel`` goes through a share folder name that does not exist.
        """
        segments = split_segments(rel)
        if segments and segments[0] == self.share_folder:
            if len(segments) == 1:
                return None
            share = self.mounts(user).get(segments[1])
            if share is None:
                raise DriveError(404, f"No share named {segments[1]!r}")
            place = self.place_of_share(share)
            if share.item_type == "file":
                place.perms &= ~(PERM_CREATE | PERM_DELETE)
            for name in segments[2:]:
                place = place.child(name)
            return self.confined(place)
        return self.own_place(user, "/".join(segments))

    # -- file ids ---------------------------------------------------------------------------------

    def file_ids(
        self, owner: str, parent: str, entries: dict[str, os.stat_result | None]
    ) -> dict[str, int]:
        """The ids of the ``entries`` (name -> its stat, None when not at hand) of folder
        ``parent`` of ``owner``'s space.

        An entry without a recorded id may be a file or folder renamed beside the drive (by a
        notebook server, a terminal): it takes over the record of the same inode (for a file,
        with the same mtime too, so a new file that got a freed inode is not taken for an old
        one) whose recorded path no longer holds that inode, ids below a folder included.
        Otherwise it gets a new id.
        """
        seen = {name: _seen(st) for name, st in entries.items()}
        known = self.state.files_in(owner, parent, seen)
        ids = {name: record.id for name, record in known.items()}
        changed = {
            name: s
            for name, s in seen.items()
            if s is not None and name in known and (known[name].inode, known[name].mtime_ns) != s
        }
        missing = {name: s for name, s in seen.items() if name not in known}
        by_inode = self.state.files_with_inodes(
            owner, [s[0] for s in missing.values() if s is not None]
        )
        for name, s in missing.items():
            if s is not None:
                path = f"{parent}/{name}" if parent else name
                adopted = self._adopt_renamed(owner, path, s, by_inode.get(s[0], []))
                if adopted is not None:
                    ids[name] = adopted
        added = self.state.add_files(
            owner, parent, {name: s for name, s in missing.items() if name not in ids}
        )
        if changed:
            self.state.note_seen(owner, parent, changed)
        return ids | added

    def oc_id(self, file_id: int) -> str:
        """``oc:id`` of a file: its id and the instance's, as ownCloud spells it."""
        return f"{file_id:08d}{self.instance_id}"

    def file_id(self, owner: str, rel: str, st: os.stat_result | None = None) -> int:
        """The id of ``rel`` in ``owner``'s space (see `file_ids`)."""
        if st is None:
            try:
                st = os.lstat(os.path.join(self.space_dir(owner), *split_segments(rel)))
            except OSError:
                st = None
        parent, _, name = rel.rpartition("/")
        return self.file_ids(owner, parent, {name: st})[name]

    def _adopt_renamed(
        self, owner: str, path: str, seen: Seen, candidates: list[FileRecord]
    ) -> int | None:
        """The id of the record among ``candidates`` that ``path`` was renamed from, moved to
        ``path``; None when it is none of them."""
        for record in candidates:
            if record.mtime_ns != seen[1]:
                continue
            try:
                at = os.path.join(self.space_dir(owner), *split_segments(record.path))
                still_there = os.lstat(at).st_ino == seen[0]  # a hard link, not a rename
            except (OSError, DriveError):
                still_there = False
            if not still_there and self.state.adopt(owner, record, path):
                return record.id
        return None

    def trash_file(self, owner: str, item_id: int) -> str:
        return os.path.join(self.area_dir("trash", owner), str(item_id))

    def version_file(self, owner: str, version_id: int) -> str:
        return os.path.join(self.area_dir("versions", owner), str(version_id))

    # -- changing things --------------------------------------------------------------------------

    def _space_user(self, owner: str) -> tuple[int, int] | None:
        """The uid and gid of ``owner``'s space folder where they are not the drive's own (a
        container's user), else None: what the drive makes there must change hands."""
        space = os.stat(self.space_dir(owner))
        user_ids = (space.st_uid, space.st_gid)
        return None if user_ids == (os.geteuid(), os.getegid()) else user_ids

    def give_to_space_user(self, owner: str, path: str, *, tree: bool = False) -> None:
        """Let the user of ``owner``'s space own ``path`` (with ``tree``, all below it), which
        the drive just made there: the uid and gid of the space's folder, a container's uid when
        servers run in containers, so that they can change it too. Only as root."""
        user_ids = self._space_user(owner)
        if user_ids is not None:
            hand_over(path, user_ids, tree=tree)

    def _make_dir(self, owner: str, fs_path: str) -> None:
        """Create the folder ``fs_path`` (mode 0700) belonging to the space's user from its
        first moment: where it must change hands, it is made under a hidden temporary name,
        handed over, then renamed into place, never over a folder made meanwhile. Made in the
        folder `parent_folder` opened, so never through a link."""
        user_ids = self._space_user(owner)
        with self.parent_folder(fs_path) as (folder, name):
            if user_ids is None or os.geteuid() != 0:
                os.mkdir(name, 0o700, dir_fd=folder)
                return
            temp = os.path.basename(self.temp_beside(fs_path))
            os.mkdir(temp, 0o700, dir_fd=folder)
            try:
                os.chown(temp, *user_ids, dir_fd=folder, follow_symlinks=False)
                rename_noreplace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.rmdir(temp, dir_fd=folder)
                raise

    def make_folder(self, place: Place) -> None:
        """Create the folder ``place`` (mode 0700), belonging to its space's user."""
        self._make_dir(place.owner, place.fs_path)

    def make_parents(self, place: Place) -> None:
        """Create the missing folders above ``place``, belonging to its space's user."""
        missing = []
        parent = os.path.dirname(place.fs_path)
        while not os.path.isdir(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for folder in reversed(missing):
            try:
                self._make_dir(place.owner, folder)
            except FileExistsError:
                if not os.path.isdir(folder):
                    raise

    def temp_beside(self, fs_path: str) -> str:
        """A fresh hidden name beside ``fs_path`` for a temp file or folder; its folder is in the
        journal before anything is made there, so `sweep_temp_files` finds what a killed drive
        left."""
        parent = os.path.dirname(fs_path)
        if parent.startswith(self.users_root + os.sep):
            self.temps.note(parent)
        return os.path.join(parent, f"{DRIVE_TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}")

    def sweep_temp_files(self) -> int:
        """Delete every temp file and folder the drive made in a space and did not publish:
        what a drive killed mid-upload left. Only at start, when no upload of this drive is
        running: a notebook server's temp files beside them (another prefix) stay. Returns how
        many were deleted."""

        def reachable(folder: str) -> bool:
            if not os.path.isdir(folder):
                return False  # gone, with its space maybe: confine() would make the space again
            try:
                self.confine(folder)
            except DriveError:
                return False
            return folder.startswith(self.users_root + os.sep)

        return self.temps.sweep(reachable, lambda de: de.name.startswith(DRIVE_TEMP_PREFIX))

    def tree(self) -> TreeSummary:
        """A view of folder ETags and sizes for one request (see `SubtreeCache`)."""
        return TreeSummary(self.folders)

    def used_bytes(self, user: str) -> int:
        return self.tree().size(self.space_dir(user))

    def uploads_bytes(self, user: str) -> int:
        """The bytes of the parts of the user's chunked uploads in progress."""
        total = 0
        for folder, _, files in os.walk(self.area_dir("uploads", user)):
            for name in files:
                with contextlib.suppress(OSError):  # a part joined or swept meanwhile
                    total += os.lstat(os.path.join(folder, name)).st_size
        return total

    def check_quota(self, owner: str, adding: int, replacing: int = 0) -> None:
        if self.quota_bytes is None:
            return
        if self.used_bytes(owner) - replacing + adding > self.quota_bytes:
            raise DriveError(
                507,
                f"Not enough space: {owner}'s quota of {self.quota_bytes} bytes would be "
                "exceeded. Nothing was changed; free some space and try again.",
            )

    def publish(
        self,
        place: Place,
        temp: str,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        mtime: int | None = None,
        seen: Seen | None = None,
    ) -> os.stat_result:
        """Move the finished upload ``temp`` (from `temp_beside` ``place``) to ``place``
        atomically; keep the old as a version, or, when the uploader never ``seen`` it (a mount
        of code, see `sightings`), as a conflict copy beside it.

        ``if_match`` (an ETag, quotes optional) and ``if_none_match`` ``*`` (only where nothing
        is) are checked again under a lock right before the rename, so two writers that both
        passed the HTTP precondition cannot both win. Every
        step names its file in the folder `parent_folder` opened: a link swapped in for a
        folder on the way since the checks is never followed.
        """
        with self._temp_folder(temp) as (temp_folder, temp_name):
            try:
                with self.parent_folder(place.fs_path) as target:
                    return self._publish(
                        place,
                        (temp_folder, temp_name),
                        target,
                        (if_match, if_none_match, seen),
                        mtime,
                    )
            except BaseException:
                # deleted where it was made: its folder's path may lead elsewhere by now
                with contextlib.suppress(OSError):
                    os.unlink(temp_name, dir_fd=temp_folder)
                raise
            finally:
                self._done_with(temp)

    def _publish(
        self,
        place: Place,
        temp: tuple[int, str],
        target: tuple[int, str],
        conditions: tuple[str | None, str | None, Seen | None],
        mtime: int | None,
    ) -> os.stat_result:
        (temp_folder, temp_name), (folder, name) = temp, target
        if_match, if_none_match, seen = conditions
        if mtime is not None:
            os.utime(temp_name, (mtime, mtime), dir_fd=temp_folder, follow_symlinks=False)
        with self._publish_lock:
            try:
                old: os.stat_result | None = os.stat(name, dir_fd=folder, follow_symlinks=False)
            except FileNotFoundError:
                old = None
            if old is not None and stat.S_ISLNK(old.st_mode):
                old = None  # a link's own name: the upload replaces the link, not its target
            if old is not None and stat.S_ISDIR(old.st_mode):
                raise DriveError(409, f"{place.name} is a folder")
            if if_match is not None and if_match.strip() != "*":
                tags = {t.strip().strip('"') for t in if_match.split(",")}
                if old is None or file_etag(old) not in tags:
                    raise DriveError(412, "The file was changed by someone else (If-Match)")
            if old is not None and (if_none_match or "").strip() == "*":
                raise DriveError(412, f"{place.name} exists already (If-None-Match: *)")
            # a change the uploading mount never saw stays beside the upload, not in versions
            aside = bool(old and seen and seen.missed(old.st_ctime_ns, file_etag(old)))
            size = os.stat(temp_name, dir_fd=temp_folder, follow_symlinks=False).st_size
            self.check_quota(place.owner, size, old.st_size if old and not aside else 0)
            if old is not None and aside:
                self.file_id(place.owner, place.rel, old)
                self._keep_aside(place, folder, name)
            elif old is not None:
                self._keep_version(place, old, folder, name)
            user_ids = self._space_user(place.owner)
            if user_ids is not None and os.geteuid() == 0:
                os.chown(temp_name, *user_ids, dir_fd=temp_folder, follow_symlinks=False)
            os.replace(temp_name, name, src_dir_fd=temp_folder, dst_dir_fd=folder)
            new = os.stat(name, dir_fd=folder, follow_symlinks=False)
            if aside:
                # the name's id stays with the name: the copy, holding the old inode, is a new file
                self.file_id(place.owner, place.rel, new)
        return new

    def _keep_aside(self, place: Place, folder: int, name: str) -> str:
        """Keep the file ``name`` (of ``place``, in the open ``folder``) under the name of a
        conflict copy beside it, in words (`kept_copy_name`); returns that name."""
        for attempt in range(1, 100):
            copy = kept_copy_name(name, "changed elsewhere", attempt)
            try:
                os.link(name, copy, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
            except FileExistsError:
                continue
            return copy
        raise DriveError(409, f"Too many conflict copies of {place.name} this minute; try again")

    def versions_by_name(self, owner: str, file_id: int) -> dict[str, VersionRecord]:
        """The versions of a file by the name they are listed under: the mtime (seconds) of the
        content each keeps, as Nextcloud names them, and ``<mtime>-<id>`` for each later
        version of the same second, so that no save of a busy second is lost."""
        named: dict[str, VersionRecord] = {}
        for version in self.state.versions(owner, file_id):
            name = str(version.mtime)
            if name in named:
                name = f"{name}-{version.id}"
            named[name] = version
        return named

    def trash_by_name(self, owner: str) -> dict[str, TrashRecord]:
        """What ``owner``'s trash holds, newest first, by the name each item is listed under:
        ``<name>.d<deletion time>`` as Nextcloud names them, and ``...-<id>`` for a later item
        of the same name and second. Entries deleted in the same second keep their order."""
        named: dict[str, TrashRecord] = {}
        for item in self.state.trash(owner):
            name = f"{item.name}.d{int(item.deleted_at)}"
            if name in named:
                name = f"{name}-{item.id}"
            named[name] = item
        newest_first = sorted(named, key=lambda name: -named[name].deleted_at)
        return {name: named[name] for name in newest_first}

    def _keep_version(self, place: Place, old: os.stat_result, folder: int, name: str) -> None:
        """Keep the content ``old`` of ``place`` (``name`` in the open ``folder``) as a
        version."""
        file_id = self.file_id(place.owner, place.rel, old)
        version = self.state.add_version(place.owner, file_id, int(old.st_mtime), old.st_size)
        target = self.version_file(place.owner, version.id)
        try:
            # The old inode leaves the space with the rename: a hard link keeps it for free.
            os.link(name, target, src_dir_fd=folder, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            try:
                self.copy_file(place.fs_path, target)
            finally:
                self._done_with(target)  # kept where it was made: nothing to publish
        versions = self.state.versions(place.owner, file_id)
        kept = retained_versions(
            versions, time.time(), self.versions_max_count, self.versions_thin_out
        )
        kept_ids = {version.id for version in kept}
        for stale in versions:
            if stale.id not in kept_ids:
                self.state.remove_version(stale.id)
                _unlink_quietly(self.version_file(place.owner, stale.id))

    def to_trash(self, place: Place) -> None:
        """Move ``place`` out of the space into its owner's trash."""
        st = os.lstat(place.fs_path)
        is_dir = stat.S_ISDIR(st.st_mode)
        size = self.tree().size(place.fs_path) if is_dir else st.st_size
        kind = "folder" if is_dir else "file"
        file_id = self.file_id(place.owner, place.rel, st)
        item = self.state.add_trash(place.owner, place.rel, kind, size, file_id)
        try:
            self.rename(place.fs_path, self.trash_file(place.owner, item.id), replace=False)
        except (OSError, DriveError):
            self.state.remove_trash(item.id)
            raise
        self.state.forgotten(place.owner, place.rel)


def merge_received(shares: list[ShareRecord]) -> list[ShareRecord]:
    """One entry per item for its recipient, as CERNBox and Nextcloud show a folder shared with
    someone directly and through a group: one mount, one pending entry. The entry keeps the id,
    type and name of the oldest share, answers for all of them (`ShareRecord.member_ids`), is
    accepted once any is, and grants the union of the permissions of the shares not declined.
    When one is revoked, the others still give access."""
    by_item: dict[tuple[str, str], list[ShareRecord]] = {}
    for share in shares:
        by_item.setdefault((share.owner, share.path), []).append(share)
    merged = []
    for members in by_item.values():
        if len(members) == 1:
            merged.append(members[0])
            continue
        states = [m.state for m in members]
        state = next((s for s in (STATE_ACCEPTED, STATE_PENDING) if s in states), STATE_DECLINED)
        granting = [m for m in members if m.state != STATE_DECLINED] or members
        permissions = 0
        for member in granting:
            permissions |= member.permissions
        mount_name = next(
            (m.mount_name for m in members if m.state == STATE_ACCEPTED and m.mount_name), None
        )
        merged.append(
            replace(
                members[0],
                state=state,
                permissions=permissions,
                mount_name=mount_name,
                member_ids=tuple(m.id for m in members),
            )
        )
    return merged


def _seen(st: os.stat_result | None) -> Seen | None:
    """What the drive remembers of an entry's stat: inode, and the mtime of a file."""
    if st is None:
        return None
    return (st.st_ino, None if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns)


def _unlink_quietly(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def remove_tree(path: str) -> None:
    _unlink_quietly(path)
