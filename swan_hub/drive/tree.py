"""Folder ETags and subtree sizes of the users' spaces, cached and kept right by Linux inotify.

This module owns the digest of a folder's subtree (the ETag sync clients compare), a cache of
those digests and sizes, and the watcher that drops a folder's cached summary and its parents'
as soon as anything in it changes, through the drive or beside it. It knows no users, shares or
HTTP. Where inotify is missing or a folder cannot be watched, it walks that folder as before.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import sys
import threading

from inotify_simple import INotify
from inotify_simple import flags as IN

from swan_contents.storage.ondisk import TEMP_PREFIX

log = logging.getLogger("swan_hub.drive")

#: Everything that changes what a folder's summary covers: its entries' names, inodes, sizes
#: and mtimes (a write in place, `touch`, a rename, a new or deleted entry), and the folder.
WATCHED_EVENTS = (
    IN.MODIFY
    | IN.ATTRIB
    | IN.MOVED_FROM
    | IN.MOVED_TO
    | IN.CREATE
    | IN.DELETE
    | IN.DELETE_SELF
    | IN.MOVE_SELF
    | IN.ONLYDIR
    | IN.DONT_FOLLOW
)
#: Events after which the watches below a child folder follow the wrong path (or none).
CHILD_FOLDER_GONE = IN.MOVED_FROM | IN.MOVED_TO | IN.DELETE | IN.CREATE
SELF_GONE = IN.DELETE_SELF | IN.MOVE_SELF | IN.UNMOUNT | IN.IGNORED

Summary = tuple[bytes, int]  # (digest of the subtree, bytes in it)


def is_hidden_entry(name: str) -> bool:
    """Temporary files of uploads in progress: never listed, never part of an ETag."""
    return name.startswith(TEMP_PREFIX)


def inotify_available() -> bool:
    return sys.platform.startswith("linux")


def _new_inotify() -> INotify:
    # Non-blocking as well: reads never wait, even one racing another reader of the queue.
    return INotify(nonblocking=True)


def _remove_watch(inotify: INotify, wd: int) -> None:
    # The kernel drops a watch by itself when its folder goes: removing it again is fine.
    with contextlib.suppress(OSError):
        inotify.rm_watch(wd)


class SubtreeCache:
    """Summaries (digest, size) of the folders below ``root``, remembered until they change.

    A folder's digest covers its own inode and mtime and, sorted by name, each file's name,
    inode, mtime in nanoseconds and size and each subfolder's name and digest: any change
    below a folder changes its digest and its parents'. With ``watch`` (and inotify), a
    summary is kept once computed, and every folder it covers is watched from before it was
    read: an event in a folder drops the cached summaries of that folder and of its parents
    up to ``root``, so the next request reads just that path again. The kernel queues events
    inside the system call that changed the file, so reading the queue before answering
    sees every change that finished before the request. A lost queue (overflow) drops the
    whole cache; a folder that cannot be watched (beyond the system's watch limit,
    ``fs.inotify.max_user_watches``, or ``max_watches`` when set) is walked on every request,
    as without ``watch``.

    Without ``watch``, every request walks the folders it asks about: right on file systems
    whose changes inotify does not see (NFS, FUSE mounts written on other machines).
    """

    def __init__(self, root: str, *, watch: bool = True, max_watches: int = 0):
        self.root = os.path.abspath(root)
        self.max_watches = max_watches
        #: folders read from disk, and lost event queues, since the start (for tests and logs)
        self.folders_read = 0
        self.overflows = 0
        self._lock = threading.Lock()
        self._summaries: dict[str, Summary] = {}
        self._watches: dict[str, tuple[int, int]] = {}  # path -> (generation, wd)
        self._paths: dict[int, str] = {}  # wd -> path
        self._below: dict[str, set[str]] = {}  # watched folder -> its watched subfolders
        self._generation = 0
        self._epoch = 0
        self._computing = 0
        self._dirty: dict[str, int] = {}  # path -> epoch it changed at, while computations run
        self._warned_limit = False
        self._inotify: INotify | None = None
        if watch and inotify_available():
            try:
                self._inotify = _new_inotify()
            except OSError as e:
                log.warning("No inotify (%s): folder ETags are computed on each request", e)

    @property
    def watching(self) -> bool:
        return self._inotify is not None

    def close(self) -> None:
        with self._lock:
            if self._inotify is not None:
                self._inotify.close()
                self._inotify = None
            self._forget_everything()

    def summary(self, path: str, scratch: dict[str, Summary]) -> Summary:
        """The summary of the folder ``path`` now; ``scratch`` holds what one request has
        computed already (summaries that could not be kept are computed once per request)."""
        if self._inotify is None or not _is_below(path, self.root):
            return self._compute(path, scratch, None)[0]
        with self._lock:
            self._drain()
            found = self._summaries.get(path)
            if found is not None:
                return found
            start = self._epoch
            self._computing += 1
        fresh: dict[str, tuple[Summary, tuple[int, int]]] = {}
        try:
            return self._compute(path, scratch, fresh)[0]
        finally:
            with self._lock:
                self._drain()
                for folder, (result, watch) in fresh.items():
                    # Kept only if no event touched the folder since this computation began,
                    # and it is still watched by the watch that existed before it was read.
                    if self._dirty.get(folder, -1) <= start and self._watches.get(folder) == watch:
                        self._summaries[folder] = result
                self._computing -= 1
                if not self._computing:
                    self._dirty.clear()

    # -- computing --------------------------------------------------------------------------------

    def _compute(
        self,
        path: str,
        scratch: dict[str, Summary],
        fresh: dict[str, tuple[Summary, tuple[int, int]]] | None,
    ) -> tuple[Summary, bool]:
        """(summary, whether it may be kept) of ``path``; kept ones are added to ``fresh``."""
        watch = None
        if fresh is not None:
            with self._lock:
                cached = self._summaries.get(path)
                if cached is not None:
                    return cached, True
                watch = None if path in scratch else self._watch(path)
        found = scratch.get(path)
        if found is not None:
            return found, False
        keep = watch is not None
        self.folders_read += 1
        digest = hashlib.blake2b(digest_size=16)
        size = 0
        try:
            st = os.stat(path)
            digest.update(f"{st.st_ino}:{st.st_mtime_ns}\n".encode())
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            entries = []
            keep = False
        for e in entries:
            if is_hidden_entry(e.name):
                continue
            try:
                if e.is_symlink():
                    continue
                name = e.name.encode("utf-8", "surrogateescape")
                if e.is_dir():
                    (sub_digest, sub_size), sub_keep = self._compute(e.path, scratch, fresh)
                    keep = keep and sub_keep
                    digest.update(b"d" + name + b"\0" + sub_digest)
                    size += sub_size
                else:
                    s = e.stat()
                    digest.update(
                        b"f" + name + f"\0{s.st_ino}:{s.st_mtime_ns}:{s.st_size}\n".encode()
                    )
                    size += s.st_size
            except FileNotFoundError:
                continue
        result = (digest.digest(), size)
        scratch[path] = result
        if keep and fresh is not None and watch is not None:
            fresh[path] = (result, watch)
        return result, keep

    def _watch(self, path: str) -> tuple[int, int] | None:
        """The watch of ``path`` (added now if new; lock held); None if it cannot be watched."""
        found = self._watches.get(path)
        if found is not None:
            return found
        assert self._inotify is not None
        try:
            if self.max_watches and len(self._watches) >= self.max_watches:
                raise OSError(errno.ENOSPC, "the drive's folder_watch_limit is reached")
            wd = self._inotify.add_watch(path, WATCHED_EVENTS)
        except OSError as e:
            if e.errno == errno.ENOSPC and not self._warned_limit:
                self._warned_limit = True
                log.warning(
                    "No more folders can be watched (%s; %d watched here): folders beyond "
                    "the limit are walked on each request. Raise fs.inotify.max_user_watches.",
                    e.strerror,
                    len(self._watches),
                )
            return None
        previous = self._paths.get(wd)
        self._paths[wd] = path
        if previous is not None and previous != path:
            # The same folder under a new name, moved before its old watch was dropped: the
            # watch (the kernel's is per inode) now serves the new name only.
            self._forget_below(previous)
        watch = (self._generation, wd)
        self._watches[path] = watch
        self._below.setdefault(os.path.dirname(path), set()).add(path)
        return watch

    # -- events -----------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Apply every queued event (lock held)."""
        if self._inotify is None:
            return
        # Everything queued now, without waiting: the kernel queued each change before the
        # system call that made it returned.
        events = self._inotify.read(timeout=0)
        if not events:
            return
        self._epoch += 1
        for wd, mask, _cookie, name in events:
            if mask & IN.Q_OVERFLOW:
                log.warning("inotify lost events (queue overflow): forgetting all folder ETags")
                self.overflows += 1
                self._inotify.close()
                self._forget_everything()
                try:
                    self._inotify = _new_inotify()
                except OSError as e:
                    log.warning("No new inotify instance (%s): walking folders from now on", e)
                    self._inotify = None
                return
            folder = self._paths.get(wd)
            if folder is None:
                continue
            if name:
                if is_hidden_entry(name):
                    continue
                if mask & IN.ISDIR and mask & CHILD_FOLDER_GONE:
                    self._forget_below(os.path.join(folder, name))
                self._changed(folder)
            elif mask & SELF_GONE:
                self._forget_below(folder)
                self._changed(os.path.dirname(folder))
            else:
                self._changed(folder)

    def _changed(self, folder: str) -> None:
        """Drop the summaries of ``folder`` and of its parents up to the root."""
        while _is_below(folder, self.root):
            self._summaries.pop(folder, None)
            if self._computing:
                self._dirty[folder] = self._epoch
            if folder == self.root:
                break
            folder = os.path.dirname(folder)

    def _forget_below(self, folder: str) -> None:
        """Stop watching ``folder`` and everything below it, and drop their summaries."""
        self._below.get(os.path.dirname(folder), set()).discard(folder)
        stack = [folder]
        while stack:
            path = stack.pop()
            self._summaries.pop(path, None)
            stack.extend(self._below.pop(path, ()))
            watch = self._watches.pop(path, None)
            if watch is not None and self._paths.get(watch[1]) == path:
                del self._paths[watch[1]]
                if self._inotify is not None:
                    _remove_watch(self._inotify, watch[1])

    def _forget_everything(self) -> None:
        self._generation += 1
        self._summaries.clear()
        self._watches.clear()
        self._paths.clear()
        self._below.clear()
        self._epoch += 1


def _is_below(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


class TreeSummary:
    """The folder summaries one request sees: from the space cache, each at most once."""

    def __init__(self, cache: SubtreeCache):
        self._cache = cache
        self._memo: dict[str, Summary] = {}

    def summary(self, path: str) -> Summary:
        found = self._memo.get(path)
        if found is None:
            found = self._memo[path] = self._cache.summary(path, self._memo)
        return found

    def etag(self, path: str) -> str:
        return self.summary(path)[0].hex()

    def size(self, path: str) -> int:
        return self.summary(path)[1]

    @staticmethod
    def digest_of(parts: list[str]) -> str:
        return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()
