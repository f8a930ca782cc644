"""The async storage seam: the `Storage` interface, the `Entry` it returns, its errors and paths.

The contents manager talks only to this interface; drivers (POSIX, WebDAV) know only their
protocol. Nothing here knows about HTTP or Jupyter models.
"""

from __future__ import annotations

import abc
import posixpath
import re
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any, Literal, Protocol

from ..gc_pause import gc_paused
from ..steps import in_steps

EntryKind = Literal["file", "directory"]


@dataclass(frozen=True)
class Entry:
    """One file or directory as the storage reports it, in one round trip.

    `path` is the storage path: `/`-separated, relative to the user's space, "" for the root.
    `etag` is the storage's version of the entry; it changes whenever the content changes.
    `children` is filled only by `Storage.stat(path, children=True)` on a directory.
    `checksums` are the file's checksums as the storage reports them, `(algorithm, hex digest)`
    with hashlib's lower-case names ("sha1", "md5", "adler32"), empty where it reports none.
    `shareable` is whether the storage lets the user share the entry on (the ownCloud family's
    `R` permission: own files, shares received with re-share rights), None where it does not say.
    """

    name: str
    path: str
    kind: EntryKind
    size: int | None
    mtime: float
    ctime: float
    etag: str
    writable: bool
    file_id: str | None = None
    children: tuple[Entry, ...] | None = field(default=None, compare=False)
    checksums: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    shareable: bool | None = field(default=None, compare=False)

    @property
    def is_dir(self) -> bool:
        return self.kind == "directory"

    def checksum(self, algorithm: str) -> str | None:
        """The storage's hex digest of this file in `algorithm` (hashlib's name), if it has one."""
        for name, digest in self.checksums:
            if name == algorithm:
                return digest
        return None

    @classmethod
    def listed(cls, **fields: Any) -> Entry:
        """The same entry as `Entry(**fields)`, made without the frozen dataclass's check per
        field, at a quarter of its cost: a listing makes one per child, 100,000 for a big
        folder."""
        entry = object.__new__(cls)
        vars(entry).update(_ENTRY_DEFAULTS, **fields)
        return entry


#: the fields of `Entry` that have defaults, as `Entry.listed` fills them in
_ENTRY_DEFAULTS = {f.name: f.default for f in dataclass_fields(Entry) if f.default is not MISSING}


@dataclass(frozen=True)
class TrashItem:
    """One deleted file or folder in a trash (ours or the storage's)."""

    id: str
    name: str
    #: where it was, as a storage path
    path: str
    #: when it was deleted (seconds since the epoch)
    deleted: float
    size: int | None
    type: str

    def to_json(self) -> dict[str, Any]:
        """The entry as /swan/api/trash answers it (openapi.yaml, `TrashItem`)."""
        return asdict(self)


class StorageError(Exception):
    """Base of every error a driver raises; `path` is the storage path it concerns.

    `said` is the storage's own explanation of a refusal (the message of a WebDAV server's
    error body), shown to the user as it came; "" when it gave none.
    """

    #: whether a conflict copy can be made beside the path, after a `Conflict` or an
    #: `AlreadyExists` (not beside a single file shared from another site: its folder is
    #: not the user's)
    copy_beside = True

    def __init__(self, path: str, detail: str = "", *, said: str = ""):
        self.path = path
        self.detail = detail
        self.said = said
        super().__init__(f"{path!r}: {detail}" if detail else repr(path))


class InvalidPath(StorageError):
    """The path is not a valid name in a user's space (`..`, NUL, empty segment)."""


class NotFound(StorageError):
    """Nothing exists at the path (or it is outside the space)."""


class AlreadyExists(StorageError):
    """The target of a create, move or copy exists already. `current_etag` is the version of
    the file found there, where a create-only write found one (None for a folder or unknown)."""

    def __init__(
        self, path: str, detail: str = "", *, current_etag: str | None = None, said: str = ""
    ):
        self.current_etag = current_etag
        super().__init__(path, detail, said=said)


class NotADirectory(StorageError):
    """A directory was expected: a parent in the path, or the path itself, is a file."""


class IsADirectory(StorageError):
    """A file was expected and a directory was found."""


class DirectoryNotEmpty(StorageError):
    """A non-recursive delete found a directory with children."""


class Conflict(StorageError):
    """The stored version is not the one the write was based on."""

    def __init__(self, path: str, current_etag: str | None, detail: str = "", *, said: str = ""):
        self.current_etag = current_etag
        super().__init__(path, detail or "the file was changed by another writer", said=said)


class PermissionDenied(StorageError):
    """The storage refused the operation for this user."""


class Locked(StorageError):
    """The entry is locked by another client (WebDAV 423, an office lock file)."""


class QuotaExceeded(StorageError):
    """The space is full: the user's quota or the device."""


class Refused(StorageError):
    """The storage refused a request for a reason of its own, which `said` gives (a WebDAV 400
    with a message): not a matter of names, permissions, locks or space."""


class StorageUnavailable(StorageError):
    """The storage cannot be reached or failed; the operation did not happen."""


class ChecksumMismatch(StorageUnavailable):
    """The bytes the storage received or holds are not the ones sent: their checksums differ.
    Raised where the storage refused them (nothing changed) and where it reports another
    checksum after an upload (`detail` says which)."""


class StorageTimeout(StorageUnavailable):
    """The storage did not answer in time; the operation may not have happened."""


class CredentialsUnavailable(StorageUnavailable):
    """This server cannot use its storage credentials (a missing, unreadable or invalid
    credentials file); nothing was sent to the storage. `detail` names the file, never a
    secret."""


def normalize_path(path: str) -> str:
    """Return the canonical storage path for an API path, or raise `InvalidPath`.

    Leading, trailing and doubled slashes are dropped. A `..` or `.` segment or a NUL byte never
    reaches a driver: the space is a closed tree and traversal is refused outright rather than
    resolved, so no spelling of it can escape.
    """
    if "\x00" in path:
        raise InvalidPath(path, "names must not contain a NUL byte")
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", ".."):
            raise InvalidPath(path, f"a path must not contain a {part!r} segment")
    return "/".join(parts)


def split_path(path: str) -> tuple[str, str]:
    """Split a normalized storage path into (parent, name); the root's parent is ""."""
    parent, _, name = path.rpartition("/")
    return parent, name


def join_path(parent: str, name: str) -> str:
    """Join a normalized parent path and a single name."""
    return posixpath.join(parent, name) if parent else name


#: characters Windows or a sync client refuses in a name
_PORTABLE_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def kept_copy_name(name: str, whose: str, attempt: int = 1) -> str:
    """The name of a conflict copy of ``name`` kept now, in words: ``whose`` says whose version
    it holds (``nb (alice's copy, conflict 2026-12-04 10.32).ipynb``, ``data (changed
    elsewhere, conflict 2026-12-04 10.32).csv``); ``attempt`` 2, 3, … adds ``, 2``. No character
    that Windows or a sync client refuses (no ``:``, no ``/``)."""
    stem, ext = posixpath.splitext(name)
    stamp = datetime.now().strftime("%Y-%m-%d %H.%M")
    number = f", {attempt}" if attempt > 1 else ""
    words = _PORTABLE_UNSAFE.sub("-", whose)
    return f"{stem} ({words}, conflict {stamp}{number}){ext}"


class VersionHistory(Protocol):
    """A storage that keeps earlier contents of each file itself (a WebDAV server's versions),
    named by the storage's own version keys (`Entry.name`)."""

    async def list_versions(self, path: str) -> list[Entry]: ...

    async def read_version(self, path: str, name: str) -> bytes: ...

    async def restore_version(self, path: str, name: str) -> None:
        """Make a version current (the storage keeps the content it replaces)."""


class TrashBin(Protocol):
    """A storage whose deleted entries go to a trash bin of its own."""

    async def list_trash(self) -> list[TrashItem]: ...

    async def restore_trash(self, item_id: str, target: str | None = None) -> Entry: ...


class LocalFolder(Protocol):
    """A storage that is a folder of this machine (a disk, or a FUSE mount such as EOS): its
    `root`, and moves between the space and folders outside it (a local trash area)."""

    root: str

    async def move_out(self, path: str, os_dst: str) -> None: ...

    async def move_in(self, os_src: str, path: str) -> Entry: ...


#: What `Storage.listing` makes of one child of a folder, from (name, path, is a folder, size,
#: mtime, ctime, etag, writable, shareable) as an `Entry` has them; None leaves it out.
ChildRenderer = Callable[
    [str, str, bool, "int | None", float, float, str, bool, "bool | None"], "str | None"
]


class Storage(abc.ABC):
    """A user's space in a sync&share storage, reached asynchronously.

    Every method takes normalized storage paths (see `normalize_path`) and raises only
    `StorageError` subclasses. Each is one round trip to the storage where the protocol allows:
    the manager relies on that to keep listings and saves cheap.
    """

    #: a short name of the driver, shown by /swan/api/info ("posix", "webdav")
    kind: str = ""

    #: whether a file's earlier contents may sit in a hidden `.sys.v#.<name>` folder beside it
    #: (EOS, mounted as a folder), read as versions
    versions_beside_files: bool = False

    @property
    def location(self) -> str:
        """Where the space is, for the log (a URL, a folder)."""
        return ""

    # Optional capabilities: None where the storage has none, else what offers it.

    def local_folder(self) -> LocalFolder | None:
        """The space as a folder of this machine, where it is one."""
        return None

    async def versions(self) -> VersionHistory | None:
        """The storage's own versions of each file, where it keeps them (asked of the storage
        once, then remembered)."""
        return None

    async def trash_bin(self) -> TrashBin | None:
        """The storage's own trash bin, where deleted entries go to one."""
        return None

    @abc.abstractmethod
    async def stat(self, path: str, *, children: bool = False) -> Entry:
        """The entry at `path`; with `children=True` a directory comes with its children."""

    async def listing(self, path: str, render: ChildRenderer) -> tuple[Entry, list[str]]:
        """The entry at `path` and, for a folder, what `render` makes of each child it keeps
        (a child it answers None for is left out), in the storage's order; a file comes with
        an empty list. The same children as `stat(path, children=True)`: drivers that list in
        a thread (POSIX) render there too, without making entries of the children."""
        entry = await self.stat(path, children=True)
        pieces: list[str] = []
        async for children in in_steps(entry.children or ()):
            with gc_paused():
                for c in children:
                    piece = render(
                        c.name, c.path, c.is_dir, c.size, c.mtime, c.ctime, c.etag, c.writable,
                        c.shareable,
                    )  # fmt: skip
                    if piece is not None:
                        pieces.append(piece)
        return entry, pieces

    @abc.abstractmethod
    async def read(self, path: str, *, stated: Entry | None = None) -> tuple[Entry, bytes]:
        """The content of the file at `path` and the entry of exactly that content.

        `stated` is the entry a stat of `path` just gave: what it says of the file is not asked
        again, and the entry returned is writable only if both say so (a stat knows of locks
        and share permissions that a download may not tell).
        """

    @abc.abstractmethod
    async def write(
        self, path: str, data: bytes, *, if_match: str | None = None, create_only: bool = False
    ) -> Entry:
        """Replace or create the file at `path` atomically; readers see old or new, never a mix.

        With `if_match`, the write happens only if the stored etag is that one (else `Conflict`).
        With `create_only`, only if nothing exists at `path`: else `AlreadyExists` carrying the
        etag of the file found there, and nothing is written. The check and the write are one
        step where the storage allows (see each driver).
        """

    @abc.abstractmethod
    async def write_chunk(
        self,
        path: str,
        chunk: int,
        data: bytes,
        *,
        if_match: str | None = None,
        create_only: bool = False,
    ) -> Entry:
        """One part of an upload in parts: `chunk` 1 starts it, 2.. append, -1 appends and
        publishes the whole file at `path` atomically. Until -1 nothing at `path` changes.
        Returns the entry of the published file at -1, else the entry of the upload so far
        (named after `path`).

        With `if_match` the last part publishes only if the stored etag is that one; else
        `Conflict`, and the upload keeps its earlier parts, so the last one may be sent again.
        `create_only` is the same for "only if nothing is there" (`AlreadyExists`). Earlier
        parts ignore both.
        """

    async def drop_upload(self, path: str) -> None:  # noqa: B027 - optional hook
        """Forget the parts of an unfinished upload in parts to `path` (its client went away):
        nothing at `path` changes. The default leaves them to `sweep_leftovers`."""

    @abc.abstractmethod
    async def mkdir(self, path: str) -> Entry:
        """Create the directory `path` (its parent must exist)."""

    @abc.abstractmethod
    async def move(self, src: str, dst: str) -> Entry:
        """Rename `src` to `dst`; never replaces an existing `dst` (`AlreadyExists`)."""

    @abc.abstractmethod
    async def copy(self, src: str, dst: str) -> Entry:
        """Copy the file or directory tree `src` to `dst`, which must not exist."""

    @abc.abstractmethod
    async def delete(self, path: str, *, recursive: bool = False) -> None:
        """Delete `path`; a non-empty directory only when `recursive`."""

    async def exists(self, path: str) -> bool:
        try:
            await self.stat(path)
        except (NotFound, NotADirectory):
            return False
        return True

    async def reports_checksums(self) -> bool:
        """Whether entries carry the storage's checksums of files (`Entry.checksums`)."""
        return False

    def sweep_leftovers(self) -> int:
        """Delete what interrupted operations left behind (temp files, spools of abandoned
        uploads) once it is old enough, never what an operation is using; how many went.
        It blocks: the contents manager runs it in a worker thread, at start and then
        periodically."""
        return 0

    async def close(self) -> None:  # noqa: B027 - optional hook, most drivers hold nothing
        """Release connections and other resources; the default holds none."""
