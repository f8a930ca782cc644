"""`PosixStorage`: a user's space as a directory tree (local disk, or a FUSE mount such as EOS).

Owns the mapping of storage paths to OS paths, keeping every operation inside the space (symlinks
are followed only while they stay inside), atomic writes and the translation of OSError into
storage errors. Blocking calls run in worker threads; nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TypeVar

from ..gc_pause import gc_paused
from .base import (
    AlreadyExists,
    ChildRenderer,
    Conflict,
    DirectoryNotEmpty,
    Entry,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    Storage,
    StorageError,
    StorageUnavailable,
    join_path,
    split_path,
)
from .ondisk import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    TempJournal,
    make_etag,
    remove_quietly,
    rename_noreplace,
)

T = TypeVar("T")


def _current_umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 where it cannot be read."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


#: Writes to one path in this process take the same lock, so a conditional write's compare and
#: replace cannot interleave with another of ours. A fixed set of locks keeps memory bounded;
#: two paths sharing a lock only wait for each other.
_WRITE_LOCKS = tuple(threading.Lock() for _ in range(64))


def _write_lock(os_path: str) -> threading.Lock:
    return _WRITE_LOCKS[hash(os_path) % len(_WRITE_LOCKS)]


class PosixStorage(Storage):
    """A user's space rooted at a directory of the local file system or of a FUSE mount."""

    kind = "posix"
    #: EOS, mounted with FUSE, keeps earlier contents in `.sys.v#.<name>` folders
    versions_beside_files = True

    #: seconds after which a temp file no operation is using any more (the spool of an
    #: unfinished upload, what a killed save left) is deleted by `sweep()`
    spool_max_age = 6 * 3600.0

    def __init__(self, root: str, *, durable: bool = True, journal: str | None = None):
        """`durable=False` skips the fsyncs of writes: for areas where losing the newest write
        to a power cut is acceptable (our versions folder), never for the user's space.

        `journal` is a file outside the space where the folders that got temp files are noted,
        so that a sweep after a crash visits them, and only them (never the whole tree of a
        FUSE mount)."""
        self.durable = durable
        self.journal = journal
        #: temp files (OS paths) that an operation of this process is using now
        self._in_use: set[str] = set()
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise StorageUnavailable(
                "", f"the storage root {root} does not exist or is not a directory"
            )
        self.root = real
        self._root_prefix = real.rstrip("/") + "/"
        self._temps = TempJournal(real, journal)
        self._euid = os.geteuid()
        self._groups = set(os.getgroups()) | {os.getegid()}
        self._file_mode = 0o666 & ~_current_umask()

    @property
    def location(self) -> str:
        return self.root

    def local_folder(self) -> PosixStorage:
        return self

    # -- helpers (run in worker threads) ------------------------------------------------------

    async def _run(self, path: str, fn: Callable[..., T], *args) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except StorageError:
            raise
        except OSError as e:
            raise self._translate(path, e) from e

    def _translate(self, path: str, e: OSError) -> StorageError:
        code = e.errno
        if code in (errno.ENOENT, errno.ELOOP):
            return self._not_found(path)
        if code == errno.ENOTDIR:
            return NotADirectory(path, "a parent in the path is a file, not a directory")
        if code == errno.EISDIR:
            return IsADirectory(path)
        if code == errno.EEXIST:
            return AlreadyExists(path)
        if code == errno.ENOTEMPTY:
            return DirectoryNotEmpty(path)
        if code in (errno.EACCES, errno.EPERM):
            return PermissionDenied(path)
        if code == errno.EROFS:
            return PermissionDenied(path, "the storage is read-only")
        if code in (errno.ENOSPC, errno.EDQUOT):
            return QuotaExceeded(path)
        if code in (errno.ENAMETOOLONG, errno.EINVAL):
            return InvalidPath(path, e.strerror or "invalid name")
        return StorageUnavailable(path, e.strerror or str(e))

    def _not_found(self, path: str, detail: str = "") -> StorageError:
        # a missing root means an unmounted or removed storage, not a missing file
        if not os.path.isdir(self.root):
            return StorageUnavailable(path, "the storage is not mounted or was removed")
        return NotFound(path, detail)

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self._root_prefix)

    def _resolve(self, path: str) -> tuple[str, os.stat_result | None]:
        """The OS path of `path` with links inside the space resolved, and its stat if it exists.

        Walks the path one lstat per segment from the (already real) root, so a symlink anywhere
        in it is noticed; one that leads out of the space is refused as not found.
        """
        current = self.root
        st: os.stat_result | None = None
        parts = path.split("/") if path else []
        for i, part in enumerate(parts):
            candidate = f"{current}/{part}"
            try:
                st = os.lstat(candidate)
            except FileNotFoundError:
                return "/".join([candidate, *parts[i + 1 :]]), None
            except NotADirectoryError:
                raise NotFound(path) from None
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(candidate)
                if not self._inside(real):
                    raise NotFound(path, "it is a link that leads outside the user's space")
                try:
                    st = os.stat(real)
                except FileNotFoundError:
                    return "/".join([real, *parts[i + 1 :]]), None
                current = real
            else:
                current = candidate
        if st is None:
            st = os.stat(current)
        return current, st

    def _existing(self, path: str) -> tuple[str, os.stat_result]:
        os_path, st = self._resolve(path)
        if st is None:
            raise self._not_found(path)
        return os_path, st

    def _writable(self, st: os.stat_result) -> bool:
        if self._euid == 0:
            return True
        if st.st_uid == self._euid:
            return bool(st.st_mode & stat.S_IWUSR)
        if st.st_gid in self._groups:
            return bool(st.st_mode & stat.S_IWGRP)
        return bool(st.st_mode & stat.S_IWOTH)

    def _entry(self, path: str, st: os.stat_result, name: str | None = None) -> Entry:
        return Entry.listed(
            name=split_path(path)[1] if name is None else name,
            path=path,
            kind="directory" if stat.S_ISDIR(st.st_mode) else "file",
            size=st.st_size,
            mtime=st.st_mtime,
            ctime=st.st_ctime,
            etag=make_etag(st),
            writable=self._writable(st),
            file_id=f"{st.st_dev:x}:{st.st_ino:x}",
        )

    def _scan(self, os_path: str) -> Iterator[tuple[str, os.stat_result]]:
        """The name and stat of each file and folder listed in `os_path`: our temp files, links
        out of the space, vanished or unreadable entries and special files left out."""
        with os.scandir(os_path) as it:
            for de in it:
                name = de.name
                if name.startswith(TEMP_PREFIX):
                    continue
                try:
                    if de.is_symlink():
                        real = os.path.realpath(de.path)
                        if not self._inside(real):
                            continue
                        st = os.stat(real)
                    else:
                        st = de.stat(follow_symlinks=False)
                except OSError:
                    continue  # vanished, broken link or unreadable: not listed
                if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                    yield name, st

    def _children(self, path: str, os_path: str) -> tuple[Entry, ...]:
        prefix = join_path(path, "")
        with gc_paused():
            return tuple(self._entry(prefix + name, st, name) for name, st in self._scan(os_path))

    def _listing(self, path: str, render: ChildRenderer) -> tuple[Entry, list[str]]:
        os_path, st = self._existing(path)
        entry = self._entry(path, st)
        pieces: list[str] = []
        if not entry.is_dir:
            return entry, pieces
        prefix = join_path(path, "")
        writable = self._writable
        is_dir = stat.S_ISDIR
        with gc_paused():
            for name, st in self._scan(os_path):
                piece = render(
                    name, prefix + name, is_dir(st.st_mode), st.st_size, st.st_mtime,
                    st.st_ctime, make_etag(st), writable(st), None,
                )  # fmt: skip
                if piece is not None:
                    pieces.append(piece)
        return entry, pieces

    def _stat(self, path: str, children: bool) -> Entry:
        os_path, st = self._existing(path)
        entry = self._entry(path, st)
        if children and entry.is_dir:
            object.__setattr__(entry, "children", self._children(path, os_path))
        return entry

    def _read(self, path: str) -> tuple[Entry, bytes]:
        os_path, st = self._existing(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectory(path)
        with open(os_path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
        return self._entry(path, st), data

    def _parent_dir(self, path: str) -> str:
        parent, _ = split_path(path)
        os_parent, st = self._resolve(parent)
        if st is None:
            raise self._not_found(path, f"the folder {parent or '/'} does not exist")
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectory(path, f"{parent} is a file, not a folder")
        return os_parent

    def _publish(
        self,
        fd: int,
        tmp: str,
        target: str,
        mode: int,
        if_match: str | None = None,
        create_only: bool = False,
    ) -> os.stat_result:
        """fsync a finished temp file, give it its final mode and put it in place atomically.

        With `if_match`, the stored version is compared as the very last step before the
        rename, under this path's lock: no writer of this process can slip in between, and an
        outside writer only in the microseconds between that stat and rename(2). With
        `create_only` the rename itself refuses to replace anything (`rename_noreplace`), so
        no writer at all can slip in.
        """
        os.fchmod(fd, mode)
        if self.durable:
            os.fsync(fd)
        st = os.fstat(fd)
        with _write_lock(target):
            if create_only:
                try:
                    rename_noreplace(tmp, target)
                except FileExistsError:
                    raise self._taken(target) from None
            else:
                if if_match is not None:
                    try:
                        current = make_etag(os.stat(target))
                    except FileNotFoundError:
                        current = None
                    if current != if_match:
                        raise Conflict(target, current)
                os.replace(tmp, target)
        if self.durable:
            self._fsync_dir(os.path.dirname(target))
        return st

    @staticmethod
    def _taken(os_path: str) -> StorageError:
        """What a create-only write found at `os_path`: a folder, or a file with its etag."""
        try:
            st = os.stat(os_path)
        except OSError:
            return AlreadyExists(os_path)
        if stat.S_ISDIR(st.st_mode):
            return IsADirectory(os_path, "a folder of that name exists")
        return AlreadyExists(os_path, current_etag=make_etag(st))

    @staticmethod
    def _fsync_dir(os_dir: str) -> None:
        fd = os.open(os_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _target(self, path: str) -> tuple[str, os.stat_result | None]:
        """The OS path a write to `path` replaces (a link inside the space is written through)."""
        if not path:
            raise IsADirectory(path, "the root of the space is a folder")
        self._parent_dir(path)
        os_path, st = self._resolve(path)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise IsADirectory(path, "a folder of that name exists")
        return os_path, st

    def _write(
        self, path: str, data: bytes, if_match: str | None, create_only: bool = False
    ) -> Entry:
        os_path, current = self._target(path)
        # fail early without writing anything; _publish checks again at the last moment
        self._check_precondition(path, current, if_match, create_only)
        mode = stat.S_IMODE(current.st_mode) if current is not None else self._file_mode
        with self._temp_in(os.path.dirname(os_path)) as tmp:
            fd = _create_exclusive(tmp)
            try:
                with os.fdopen(fd, "wb", closefd=False) as f:
                    f.write(data)
                st = self._publish(fd, tmp, os_path, mode, if_match, create_only)
            except Conflict as e:
                raise Conflict(path, e.current_etag) from None
            except AlreadyExists as e:
                raise AlreadyExists(path, current_etag=e.current_etag) from None
            except IsADirectory:
                raise IsADirectory(path, "a folder of that name exists") from None
            finally:
                os.close(fd)
        return self._entry(path, st)

    @staticmethod
    def _check_precondition(
        path: str, current: os.stat_result | None, if_match: str | None, create_only: bool
    ) -> None:
        """Refuse a conditional write whose condition fails now (`current` is the target's
        stat, None if nothing is there)."""
        if create_only and current is not None:
            raise AlreadyExists(path, current_etag=make_etag(current))
        if if_match is not None:
            current_etag = make_etag(current) if current is not None else None
            if current_etag != if_match:
                raise Conflict(path, current_etag)

    # -- temp files: made beside their target, swept when abandoned ---------------------------

    @contextlib.contextmanager
    def _temp_in(self, os_dir: str) -> Iterator[str]:
        """A fresh hidden temp name in `os_dir`, for the block to create and rename into place;
        whatever is left of it when the block fails is removed. While the block runs `sweep()`
        never takes it, and its folder is in the journal, so a sweep after a crash finds it."""
        self._note_temp_folder(os_dir)
        tmp = f"{os_dir}/{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
        self._in_use.add(tmp)
        try:
            yield tmp
        except BaseException:
            remove_quietly(tmp)
            raise
        finally:
            self._in_use.discard(tmp)

    def _note_temp_folder(self, os_dir: str) -> None:
        self._temps.note(os_dir)

    def _journaled_folders(self) -> set[str]:
        return self._temps.folders() - self._temps.noted if self.journal else set()

    def sweep_leftovers(self) -> int:
        """Delete the temp files and folders older than `spool_max_age` that no operation of
        this process is using, in the folders of the journal and of this process; keep in the
        journal the folders that still hold some. Returns how many were deleted."""
        horizon = time.time() - self.spool_max_age

        def stale(de: os.DirEntry) -> bool:
            old = de.stat(follow_symlinks=False).st_mtime < horizon
            return old and de.path not in self._in_use

        return self._temps.sweep(lambda d: self._inside(os.path.realpath(d)), stale)

    @staticmethod
    def spool_name(name: str) -> str:
        """The hidden name beside the target under which an upload in parts is gathered."""
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:20]
        return f"{TEMP_PREFIX}upload-{digest}{TEMP_SUFFIX}"

    def _write_chunk(
        self, path: str, chunk: int, data: bytes, if_match: str | None, create_only: bool = False
    ) -> Entry:
        os_path, current = self._target(path)
        if chunk == -1:
            # refused before this part touches the spool: the client may send it again
            self._check_precondition(path, current, if_match, create_only)
        else:
            if_match, create_only = None, False
        self._note_temp_folder(os.path.dirname(os_path))
        spool = f"{os.path.dirname(os_path)}/{self.spool_name(os.path.basename(os_path))}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC if chunk == 1 else os.O_WRONLY | os.O_APPEND
        try:
            fd = os.open(spool, flags, 0o600)
        except FileNotFoundError:
            raise NotFound(
                path, "this upload was not started (its first part is missing); upload it again"
            ) from None
        self._in_use.add(spool)
        try:
            size_before = os.fstat(fd).st_size
            with os.fdopen(fd, "ab", closefd=False) as f:
                f.write(data)
            if chunk == -1:
                mode = stat.S_IMODE(current.st_mode) if current is not None else self._file_mode
                st = self._publish(fd, spool, os_path, mode, if_match, create_only)
            else:
                st = os.fstat(fd)
        except (Conflict, AlreadyExists, IsADirectory) as e:
            # another writer came between the check above and the rename: the spool keeps
            # the parts before this one, so the client may send the last part again
            os.ftruncate(fd, size_before)
            if isinstance(e, Conflict):
                raise Conflict(path, e.current_etag) from None
            if isinstance(e, IsADirectory):
                raise IsADirectory(path, "a folder of that name exists") from None
            raise AlreadyExists(path, current_etag=e.current_etag) from None
        except BaseException:
            _unlink_quietly(spool)
            raise
        finally:
            os.close(fd)
            self._in_use.discard(spool)
        return self._entry(path, st)

    def _drop_upload(self, path: str) -> None:
        os_path, _current = self._target(path)
        _unlink_quietly(f"{os.path.dirname(os_path)}/{self.spool_name(os.path.basename(os_path))}")

    def _mkdir(self, path: str) -> Entry:
        if not path:
            raise AlreadyExists(path)
        parent = self._parent_dir(path)
        os_path = f"{parent}/{split_path(path)[1]}"
        os.mkdir(os_path)
        return self._entry(path, os.stat(os_path))

    def _move(self, src: str, dst: str) -> Entry:
        if not src or not dst:
            raise InvalidPath(src or dst, "the root of the space cannot be moved or replaced")
        os_src, _ = self._existing(src)
        os_dst = f"{self._parent_dir(dst)}/{split_path(dst)[1]}"
        if (os_dst + "/").startswith(os_src + "/"):
            raise InvalidPath(dst, "a folder cannot be moved into itself")
        rename_noreplace(os_src, os_dst)
        return self._entry(dst, os.stat(os_dst))

    def _copy(self, src: str, dst: str) -> Entry:
        os_src, st = self._existing(src)
        os_dst = f"{self._parent_dir(dst)}/{split_path(dst)[1]}"
        if os.path.lexists(os_dst):
            raise AlreadyExists(dst)
        if stat.S_ISDIR(st.st_mode):
            if (os_dst + "/").startswith(os_src + "/"):
                raise InvalidPath(dst, "a folder cannot be copied into itself")
            with self._temp_in(os.path.dirname(os_dst)) as tmp:
                shutil.copytree(os_src, tmp, symlinks=True)
                rename_noreplace(tmp, os_dst)
        else:
            with self._temp_in(os.path.dirname(os_dst)) as tmp:
                fd = _create_exclusive(tmp)
                try:
                    with open(os_src, "rb") as fsrc, os.fdopen(fd, "wb", closefd=False) as fdst:
                        shutil.copyfileobj(fsrc, fdst, 1024 * 1024)
                    os.fchmod(fd, stat.S_IMODE(st.st_mode))
                    os.fsync(fd)
                    rename_noreplace(tmp, os_dst)
                finally:
                    os.close(fd)
        return self._entry(dst, os.stat(os_dst))

    def _own(self, path: str, action: str) -> tuple[str, str, os.stat_result]:
        """(OS path, OS parent, lstat) of the entry itself at `path`, not a link's target:
        deleting or moving out a link acts on the link."""
        if not path:
            raise InvalidPath(path, f"the root of the space cannot be {action}")
        parent, name = split_path(path)
        os_parent, _ = self._resolve(parent)
        os_path = f"{os_parent}/{name}"
        return os_path, os_parent, os.lstat(os_path)

    def _delete(self, path: str, recursive: bool) -> None:
        os_path, _, st = self._own(path, "deleted")
        if stat.S_ISDIR(st.st_mode):
            if recursive:
                shutil.rmtree(os_path)
            else:
                os.rmdir(os_path)
        else:
            os.unlink(os_path)

    def _move_out(self, path: str, os_dst: str) -> None:
        """Move the entry at `path` (a link itself, not its target) to `os_dst` outside the
        space. Across file systems it is copied, then deleted; a copy whose source could not
        be deleted is removed again, so the entry is in exactly one place."""
        os_path, os_parent, st = self._own(path, "moved out")
        try:
            os.rename(os_path, os_dst)
            return
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
        if os.statvfs(os_parent).f_flag & os.ST_RDONLY:
            raise PermissionDenied(path, "the storage is read-only")
        if stat.S_ISDIR(st.st_mode):
            shutil.copytree(os_path, os_dst, symlinks=True)
            # a folder deleted half way stays whole in its copy; nothing is lost either way
            shutil.rmtree(os_path)
        else:
            shutil.copy2(os_path, os_dst, follow_symlinks=False)
            try:
                os.unlink(os_path)
            except OSError:
                _unlink_quietly(os_dst)
                raise

    def _move_in(self, os_src: str, path: str) -> Entry:
        """Move `os_src` from outside the space to `path`, never replacing what is there."""
        os_dst = f"{self._parent_dir(path)}/{split_path(path)[1]}"
        if os.path.lexists(os_dst):
            raise AlreadyExists(path)
        try:
            rename_noreplace(os_src, os_dst)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            with self._temp_in(os.path.dirname(os_dst)) as tmp:
                if os.path.isdir(os_src):
                    shutil.copytree(os_src, tmp, symlinks=True)
                else:
                    shutil.copy2(os_src, tmp, follow_symlinks=False)
                rename_noreplace(tmp, os_dst)
            remove_quietly(os_src)
        return self._entry(path, os.stat(os_dst))

    # -- the Storage interface ----------------------------------------------------------------

    async def stat(self, path: str, *, children: bool = False) -> Entry:
        return await self._run(path, self._stat, path, children)

    async def listing(self, path: str, render: ChildRenderer) -> tuple[Entry, list[str]]:
        return await self._run(path, self._listing, path, render)

    async def read(self, path: str, *, stated: Entry | None = None) -> tuple[Entry, bytes]:
        entry, data = await self._run(path, self._read, path)
        if stated is not None and not stated.writable:
            entry = replace(entry, writable=False)
        return entry, data

    async def write(
        self, path: str, data: bytes, *, if_match: str | None = None, create_only: bool = False
    ) -> Entry:
        return await self._run(path, self._write, path, data, if_match, create_only)

    async def write_chunk(
        self,
        path: str,
        chunk: int,
        data: bytes,
        *,
        if_match: str | None = None,
        create_only: bool = False,
    ) -> Entry:
        return await self._run(path, self._write_chunk, path, chunk, data, if_match, create_only)

    async def drop_upload(self, path: str) -> None:
        await self._run(path, self._drop_upload, path)

    async def mkdir(self, path: str) -> Entry:
        return await self._run(path, self._mkdir, path)

    async def move(self, src: str, dst: str) -> Entry:
        return await self._run(dst, self._move, src, dst)

    async def copy(self, src: str, dst: str) -> Entry:
        return await self._run(dst, self._copy, src, dst)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        await self._run(path, self._delete, path, recursive)

    async def move_out(self, path: str, os_dst: str) -> None:
        """Move an entry out of the space to a local path (a trash area)."""
        await self._run(path, self._move_out, path, os_dst)

    async def move_in(self, os_src: str, path: str) -> Entry:
        """Move a local file or folder (from a trash area) into the space at `path`."""
        return await self._run(path, self._move_in, os_src, path)


def _create_exclusive(os_path: str) -> int:
    """Open a new file for writing, private until it is published; fails if it exists."""
    return os.open(os_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _unlink_quietly(os_path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(os_path)
