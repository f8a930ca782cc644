"""On-disk conventions shared by the POSIX driver and the embedded drive: temporary names, the
journal of folders holding them, ETags from one stat, and a rename that never replaces. Standard
library only: the drive imports this without loading the user server's packages (jupyter_server,
nbformat)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import threading
from collections.abc import Callable

__all__ = ["TEMP_PREFIX", "TEMP_SUFFIX", "TempJournal", "make_etag", "rename_noreplace"]

#: Prefix and suffix of every temporary name written beside a target, by the driver or the drive.
#: Hidden (a dot name) and ending in ".part", which the ownCloud and Nextcloud desktop clients
#: never upload.
TEMP_PREFIX = ".~swan-"
TEMP_SUFFIX = ".part"

_RENAME_NOREPLACE = 1


def _load_renameat2() -> Callable[[bytes, bytes, int, int], int] | None:
    """renameat2(2) with RENAME_NOREPLACE: a rename that fails instead of replacing the target."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return None

    def call(src: bytes, dst: bytes, src_dir_fd: int, dst_dir_fd: int) -> int:
        if fn(src_dir_fd, src, dst_dir_fd, dst, _RENAME_NOREPLACE) == 0:
            return 0
        return ctypes.get_errno()

    return call


_renameat2 = _load_renameat2()
_AT_FDCWD = -100


def rename_noreplace(
    src: str, dst: str, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None
) -> None:
    """Rename `src` to `dst` unless something is there (FileExistsError): renameat2(2) with
    RENAME_NOREPLACE; where the file system lacks it (some FUSE mounts), a hard link, which
    never replaces either; for folders there, a check just before the rename. Relative names
    with `src_dir_fd`/`dst_dir_fd` are taken in those open folders (as `os.rename`'s)."""
    if _renameat2 is not None:
        err = _renameat2(
            os.fsencode(src),
            os.fsencode(dst),
            _AT_FDCWD if src_dir_fd is None else src_dir_fd,
            _AT_FDCWD if dst_dir_fd is None else dst_dir_fd,
        )
        if err == 0:
            return
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), dst)
    if not stat.S_ISDIR(os.stat(src, dir_fd=src_dir_fd, follow_symlinks=False).st_mode):
        try:
            os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
                raise
        else:
            os.unlink(src, dir_fd=src_dir_fd)
            return
    try:
        os.stat(dst, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    else:
        raise FileExistsError(errno.EEXIST, "exists", dst)


def make_etag(st: os.stat_result) -> str:
    """A version tag from one stat: changes when the file is replaced, written or resized.

    The inode changes on every atomic replace (ours and the sync clients', which write a temp
    file and rename it); mtime and size catch writes in place. Its one blind spot is a rewrite in
    place to the same size within the file system's mtime granularity (docs/storage.md).
    """
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'


class TempJournal:
    """The folders below ``root`` in which temp files were made, noted in the file ``path``
    (outside ``root``; None keeps them in memory only), so that a sweep after a crash visits
    those folders, and only them (never the whole tree of a FUSE mount)."""

    def __init__(self, root: str, path: str | None):
        self.root = root
        self.path = path
        #: folders (OS paths) this process has made temp files in
        self.noted: set[str] = set()
        #: held while the journal is written (by a note, and by a sweep rewriting it: a folder
        #: noted while a sweep rewrites the journal must not be lost by its replacement)
        self._lock = threading.Lock()

    def note(self, os_dir: str) -> None:
        """Record that a temp file is about to be made in ``os_dir`` (before it is made)."""
        if os_dir in self.noted:
            return
        with self._lock:
            self.noted.add(os_dir)
            if self.path:
                os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
                with open(self.path, "a", encoding="utf-8", errors="surrogateescape") as f:
                    f.write(os.path.relpath(os_dir, self.root) + "\n")

    def folders(self) -> set[str]:
        """The folders of the journal (of every process that wrote it) and of this process."""
        found = set(self.noted)
        if self.path:
            try:
                with open(self.path, encoding="utf-8", errors="surrogateescape") as f:
                    found |= {
                        os.path.normpath(os.path.join(self.root, line.rstrip("\n"))) for line in f
                    }
            except FileNotFoundError:
                pass
        return found

    def sweep(
        self,
        reachable: Callable[[str], bool],
        stale: Callable[[os.DirEntry], bool],
    ) -> int:
        """Delete the temp files (and temp folders) that ``stale`` picks in the journal's
        folders that are ``reachable`` (inside ``root``, through no link); keep in the journal
        the folders that still hold temp files. Returns how many were deleted."""
        still_there: set[str] = set()
        deleted = 0
        for os_dir in self.folders():
            if not reachable(os_dir):
                continue
            try:
                entries = list(os.scandir(os_dir))
            except OSError:
                continue  # removed meanwhile, or unreadable: nothing of ours to find there
            for de in entries:
                if not de.name.startswith(TEMP_PREFIX):
                    continue
                try:
                    chosen = stale(de)
                except OSError:
                    continue
                if not chosen:
                    still_there.add(os_dir)
                    continue
                remove_quietly(de.path)
                deleted += 1
        if self.path:
            with self._lock:
                self._rewrite(still_there | self.noted)
        return deleted

    def _rewrite(self, os_dirs: set[str]) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        tmp = f"{self.path}.new"
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.writelines(os.path.relpath(d, self.root) + "\n" for d in sorted(os_dirs))
        os.replace(tmp, self.path)


def remove_quietly(os_path: str) -> None:
    """Remove a file or a whole folder, whichever it is, ignoring what cannot be removed."""
    if os.path.isdir(os_path) and not os.path.islink(os_path):
        shutil.rmtree(os_path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(os_path)
