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
from collections.abc import Callable
from dataclasses import dataclass

from swan_contents.storage.ondisk import TEMP_PREFIX, TEMP_SUFFIX, make_etag, rename_noreplace
from swan_hub.ownership import hand_over

from .state import STATE_ACCEPTED, STATE_PENDING, DriveState, FileRecord, Seen, Share, Version
from .tree import SubtreeCache, TreeSummary

PERM_READ = 1
PERM_UPDATE = 2
PERM_CREATE = 4
PERM_DELETE = 8
PERM_SHARE = 16
PERM_ALL = 31

MAX_NAME_BYTES = 255


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
    versions: list[Version], now: float, max_count: int, thin_out: bool = True
) -> list[Version]:
    """The versions to keep: with ``thin_out``, the newest one of each period of `VERSION_AGES`
    for its age; then at most the ``max_count`` made last."""
    kept: list[Version] = []
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
    share: Share | None = None
    mount: bool = False

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    def child(self, name: str) -> Place:
        rel = f"{self.rel}/{name}" if self.rel else name
        return Place(self.owner, rel, os.path.join(self.fs_path, name), self.perms, self.share)

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
        self.folders = SubtreeCache(
            self.users_root, watch=watch_folders, max_watches=folder_watch_limit
        )
        for area in ("trash", "versions", "uploads"):
            os.makedirs(os.path.join(self.drive_root, area), mode=0o700, exist_ok=True)

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
        """``place`` if no existing part of its path below the owner's space is a symbolic link.

        A link in a space can point anywhere the drive's process may read, including other
        users' spaces (a container user's link names a host path), so the drive follows none:
        a path through a link is answered like a path that does not exist.
        """
        current = self.space_dir(place.owner)
        for name in place.rel.split("/") if place.rel else ():
            current = os.path.join(current, name)
            try:
                st = os.lstat(current)
            except (FileNotFoundError, NotADirectoryError):
                break
            if stat.S_ISLNK(st.st_mode):
                raise DriveError(404, f"No such file or folder: {place.rel}")
        return place

    def default_state(self) -> int:
        return STATE_ACCEPTED if self.auto_accept else STATE_PENDING

    def received(self, user: str) -> list[Share]:
        return self.state.received_shares(user, self.groups_of(user), self.default_state())

    def mounts(self, user: str) -> dict[str, Share]:
        """The user's accepted shares by the name they appear under in ``Shared/``."""
        mounts: dict[str, Share] = {}
        for share in self.received(user):
            if share.state == STATE_ACCEPTED:
                name = share.mount_name or share.name
                if name in mounts:
                    name = f"{name} ({share.id})"
                mounts[name] = share
        return mounts

    def place_of_share(self, share: Share, perms: int | None = None) -> Place:
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
        mounts = self.mounts(user) if segments and segments[0] == self.share_folder else {}
        if mounts:
            if len(segments) == 1:
                return None
            share = mounts.get(segments[1])
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
        handed over, then renamed into place, never over a folder made meanwhile."""
        user_ids = self._space_user(owner)
        if user_ids is None or os.geteuid() != 0:
            os.mkdir(fs_path, 0o700)
            return
        temp = self.temp_beside(fs_path)
        os.mkdir(temp, 0o700)
        try:
            hand_over(temp, user_ids)
            rename_noreplace(temp, fs_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(temp)
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
        parent = os.path.dirname(fs_path)
        return os.path.join(parent, f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}")

    def tree(self) -> TreeSummary:
        """A view of folder ETags and sizes for one request (see `SubtreeCache`)."""
        return TreeSummary(self.folders)

    def used_bytes(self, user: str) -> int:
        return self.tree().size(self.space_dir(user))

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
        mtime: int | None = None,
    ) -> os.stat_result:
        """Move the finished upload ``temp`` to ``place`` atomically; keep the old as a version.

        ``if_match`` (an ETag, quotes optional) is compared again under a lock right before the
        rename, so two writers that both passed the HTTP precondition cannot both win.
        """
        if mtime is not None:
            os.utime(temp, (mtime, mtime))
        with self._publish_lock:
            try:
                old = os.stat(place.fs_path)
            except FileNotFoundError:
                old = None
            if old is not None and stat.S_ISDIR(old.st_mode):
                raise DriveError(409, f"{place.name} is a folder")
            if if_match is not None and if_match.strip() != "*":
                tags = {t.strip().strip('"') for t in if_match.split(",")}
                if old is None or file_etag(old) not in tags:
                    raise DriveError(412, "The file was changed by someone else (If-Match)")
            size = os.stat(temp).st_size
            self.check_quota(place.owner, size, old.st_size if old else 0)
            if old is not None:
                self._keep_version(place, old)
            self.give_to_space_user(place.owner, temp)
            os.replace(temp, place.fs_path)
        return os.stat(place.fs_path)

    def versions_by_name(self, owner: str, file_id: int) -> dict[str, Version]:
        """The versions of a file by the name they are listed under: the mtime (seconds) of the
        content each keeps, as Nextcloud names them, and ``<mtime>-<id>`` for each later
        version of the same second, so that no save of a busy second is lost."""
        named: dict[str, Version] = {}
        for version in self.state.versions(owner, file_id):
            name = str(version.mtime)
            if name in named:
                name = f"{name}-{version.id}"
            named[name] = version
        return named

    def _keep_version(self, place: Place, old: os.stat_result) -> None:
        file_id = self.file_id(place.owner, place.rel, old)
        version = self.state.add_version(place.owner, file_id, int(old.st_mtime), old.st_size)
        target = self.version_file(place.owner, version.id)
        try:
            # The old inode leaves the space with the rename: a hard link keeps it for free.
            os.link(place.fs_path, target)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            shutil.copy2(place.fs_path, target)
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
        item = self.state.add_trash(place.owner, place.rel, "folder" if is_dir else "file", size)
        try:
            os.rename(place.fs_path, self.trash_file(place.owner, item.id))
        except OSError:
            self.state.remove_trash(item.id)
            raise
        self.state.forgotten(place.owner, place.rel)


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
