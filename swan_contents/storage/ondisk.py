"""On-disk conventions shared by the POSIX driver and the embedded drive: temporary names, ETags
from one stat, and a rename that never replaces. Standard library only: the drive imports this
without loading the user server's packages (jupyter_server, nbformat)."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable

__all__ = ["TEMP_PREFIX", "TEMP_SUFFIX", "make_etag", "rename_noreplace"]

#: Prefix and suffix of every temporary name written beside a target, by the driver or the drive.
#: Hidden (a dot name) and ending in ".part", which the ownCloud and Nextcloud desktop clients
#: never upload.
TEMP_PREFIX = ".~swan-"
TEMP_SUFFIX = ".part"

_RENAME_NOREPLACE = 1


def _load_renameat2() -> Callable[[bytes, bytes], int] | None:
    """renameat2(2) with RENAME_NOREPLACE: a rename that fails instead of replacing the target."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return None
    at_fdcwd = -100

    def call(src: bytes, dst: bytes) -> int:
        if fn(at_fdcwd, src, at_fdcwd, dst, _RENAME_NOREPLACE) == 0:
            return 0
        return ctypes.get_errno()

    return call


_renameat2 = _load_renameat2()


def rename_noreplace(src: str, dst: str) -> None:
    """Rename `src` to `dst` unless something is there (FileExistsError): renameat2(2) with
    RENAME_NOREPLACE; where the file system lacks it (some FUSE mounts), a hard link, which
    never replaces either; for folders there, a check just before the rename."""
    if _renameat2 is not None:
        err = _renameat2(os.fsencode(src), os.fsencode(dst))
        if err == 0:
            return
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), dst)
    if not os.path.isdir(src) or os.path.islink(src):
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
                raise
        else:
            os.unlink(src)
            return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "exists", dst)
    os.rename(src, dst)


def make_etag(st: os.stat_result) -> str:
    """A version tag from one stat: changes when the file is replaced, written or resized.

    The inode changes on every atomic replace (ours and the sync clients', which write a temp
    file and rename it); mtime and size catch writes in place. Its one blind spot is a rewrite in
    place to the same size within the file system's mtime granularity (docs/storage.md).
    """
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'
