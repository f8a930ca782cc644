"""`MountedStorage`: the user's own storage with other storages mounted as folders and files of
one folder (`Shared/<name>`): the shares of other sites, each reached through a storage of its own.

It owns the routing of paths to the storage that holds them, the entries of the mount points in
listings, and the errors of a mount that went away or cannot be reached. It must not know how a
mount's storage speaks (any `Storage`) nor where the list of mounts comes from (`MountSource`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from .base import (
    AlreadyExists,
    Conflict,
    Entry,
    EntryKind,
    InvalidPath,
    LocalFolder,
    NotFound,
    PermissionDenied,
    Storage,
    StorageError,
    StorageUnavailable,
    TrashBin,
    VersionHistory,
    join_path,
)


@dataclass(frozen=True)
class Mount:
    """One folder or file mounted at `<folder>/<name>`: `storage` reaches it at `root`, ""
    (the storage's root) for a folder, and for a single file its path in a storage of the
    folder above it (a storage's root is a folder); `origin` names who shares it, for
    messages (`alice@swan.example.org`)."""

    name: str
    storage: Storage
    origin: str
    kind: EntryKind = "directory"
    mtime: float = 0.0
    writable: bool = False
    root: str = ""

    def at(self, inner: str) -> str:
        """The storage's path of a path inside the mount."""
        return join_path(self.root, inner) if inner else self.root

    def inner(self, path: str) -> str:
        """The path inside the mount of a path of its storage."""
        if path == self.root:
            return ""
        return path.removeprefix(f"{self.root}/") if self.root else path


class MountSource(Protocol):
    """Where the mounts come from. `mounts()` may answer from a short-lived memory;
    `refresh()` asks anew (when a mount's storage refused or lost what it held)."""

    async def mounts(self) -> dict[str, Mount]: ...

    async def refresh(self) -> dict[str, Mount]: ...

    async def close(self) -> None: ...


REMOVED = (
    "this share was removed by {origin} (or you left it): nothing was changed; "
    "copy your work into your own space to keep it"
)
UNREACHABLE = "the site of {origin}, who shares this {what}, cannot be reached right now ({detail})"


class MountedStorage(Storage):
    """`own` with the mounts of `source` as the folders and files of `folder` (`Shared` by
    default).

    A path outside `folder` costs nothing more than `own` does; one inside a mount is one
    call to the mount's storage. Listing `folder` asks no mount's storage: the mount points
    are described from what `source` knows, so a site that is down does not stop a listing.
    """

    def __init__(self, own: Storage, source: MountSource, folder: str = "Shared"):
        self.own = own
        self.source = source
        self.folder = folder
        self.kind = own.kind
        self.versions_beside_files = own.versions_beside_files
        #: who shared each mount this storage has seen, kept after the mount is gone: a path
        #: in a mount that went away is "removed", never looked for in the own space
        self._origins: dict[str, str] = {}

    @property
    def location(self) -> str:
        return self.own.location

    def local_folder(self) -> LocalFolder | None:
        return self.own.local_folder()

    async def versions(self) -> VersionHistory | None:
        return await self.own.versions()

    async def trash_bin(self) -> TrashBin | None:
        return await self.own.trash_bin()

    async def reports_checksums(self) -> bool:
        return await self.own.reports_checksums()

    def sweep_leftovers(self) -> int:
        return self.own.sweep_leftovers()

    async def close(self) -> None:
        await self.source.close()
        await self.own.close()

    # -- routing ------------------------------------------------------------------------------

    def _mount_name(self, path: str) -> tuple[str, str] | None:
        """(mount name, path inside it) of a path below `folder`, else None."""
        head, _, rest = path.partition("/")
        if head != self.folder or not rest:
            return None
        name, _, inner = rest.partition("/")
        return name, inner

    async def _route(self, path: str) -> tuple[Mount, str] | None:
        split = self._mount_name(path)
        if split is None:
            return None
        mounts = await self.source.mounts()
        self._origins.update((name, m.origin) for name, m in mounts.items())
        mount = mounts.get(split[0])
        if mount is None and split[0] in self._origins:
            raise NotFound(path, REMOVED.format(origin=self._origins[split[0]]))
        if mount is not None and mount.kind == "file" and split[1]:
            raise NotFound(path, f"{mount.name} is a single file shared by {mount.origin}")
        return None if mount is None else (mount, split[1])

    def _outer(self, mount: Mount, inner: str) -> str:
        point = join_path(self.folder, mount.name)
        return join_path(point, inner) if inner else point

    def _outer_entry(self, mount: Mount, entry: Entry) -> Entry:
        inner = mount.inner(entry.path)
        path = self._outer(mount, inner)
        name = mount.name if not inner else entry.name
        children = entry.children
        if children is not None:
            children = tuple(self._outer_entry(mount, child) for child in children)
        return dataclasses.replace(entry, name=name, path=path, children=children)

    @contextmanager
    def _errors_of(self, mount: Mount) -> Iterator[None]:
        """A mount's errors, about the paths the user sees; its site's failures say whose."""
        try:
            yield
        except StorageError as e:
            e.path = self._outer(mount, mount.inner(e.path))
            if isinstance(e, StorageUnavailable) and not e.detail.startswith("the site of"):
                what = "file" if mount.kind == "file" else "folder"
                detail = e.detail or "no answer"
                e.detail = UNREACHABLE.format(origin=mount.origin, what=what, detail=detail)
            raise

    async def _in_mount(self, mount: Mount, inner: str, call):  # noqa: ANN001, ANN202
        """`call(storage, path)` on the mount, at the storage's path of `inner`; a refusal that
        may mean the share is gone (401, 403, or the shared folder or file missing) is checked
        with the source, and said plainly when it is."""
        with self._errors_of(mount):
            try:
                return await call(mount.storage, mount.at(inner))
            except (PermissionDenied, NotFound) as e:
                # a file missing inside the share is just missing; a refused secret or a
                # missing shared folder may be a share that ended
                if isinstance(e, NotFound) and inner:
                    raise
                if mount.name in await self.source.refresh():
                    raise
                raise NotFound(e.path, REMOVED.format(origin=mount.origin)) from e

    # -- the Storage API ----------------------------------------------------------------------

    async def stat(self, path: str, *, children: bool = False) -> Entry:
        routed = await self._route(path)
        if routed is not None:
            mount, inner = routed
            entry = await self._in_mount(mount, inner, lambda s, p: s.stat(p, children=children))
            return self._outer_entry(mount, entry)
        if path == self.folder:
            return await self._stat_folder(children)
        if not path and children:
            return await self._stat_root()
        return await self.own.stat(path, children=children)

    def _mount_entry(self, mount: Mount) -> Entry:
        return Entry(
            name=mount.name,
            path=join_path(self.folder, mount.name),
            kind=mount.kind,
            size=None,
            mtime=mount.mtime,
            ctime=mount.mtime,
            etag="",
            writable=mount.writable,
        )

    async def _stat_folder(self, children: bool) -> Entry:
        mounts = await self.source.mounts()
        try:
            entry = await self.own.stat(self.folder, children=children)
        except NotFound:
            if not mounts:
                raise
            entry = Entry(self.folder, self.folder, "directory", None, 0.0, 0.0, "", False, None)
            if children:
                entry = dataclasses.replace(entry, children=())
        if not children or not entry.is_dir:
            return entry
        own = tuple(entry.children or ())
        taken = {child.name for child in own}
        added = tuple(self._mount_entry(m) for name, m in mounts.items() if name not in taken)
        return dataclasses.replace(entry, children=own + added)

    async def _stat_root(self) -> Entry:
        entry = await self.own.stat("", children=True)
        kids = tuple(entry.children or ())
        if any(child.name == self.folder for child in kids) or not await self.source.mounts():
            return entry
        folder = Entry(self.folder, self.folder, "directory", None, 0.0, 0.0, "", False, None)
        return dataclasses.replace(entry, children=(*kids, folder))

    async def read(self, path: str, *, stated: Entry | None = None) -> tuple[Entry, bytes]:
        routed = await self._route(path)
        if routed is None:
            return await self.own.read(path, stated=stated)
        mount, inner = routed
        entry, data = await self._in_mount(mount, inner, lambda s, p: s.read(p, stated=stated))
        return self._outer_entry(mount, entry), data

    async def write(
        self, path: str, data: bytes, *, if_match: str | None = None, create_only: bool = False
    ) -> Entry:
        routed = await self._route(path)
        if routed is None:
            return await self.own.write(path, data, if_match=if_match, create_only=create_only)
        mount, inner = routed
        try:
            entry = await self._in_mount(
                mount,
                inner,
                lambda s, p: s.write(p, data, if_match=if_match, create_only=create_only),
            )
        except (Conflict, AlreadyExists) as e:
            # beside a single shared file is the `folder` of shares, where nothing can be made
            e.copy_beside = mount.kind != "file"
            raise
        return self._outer_entry(mount, entry)

    async def write_chunk(
        self,
        path: str,
        chunk: int,
        data: bytes,
        *,
        if_match: str | None = None,
        create_only: bool = False,
    ) -> Entry:
        routed = await self._route(path)
        if routed is None:
            return await self.own.write_chunk(
                path, chunk, data, if_match=if_match, create_only=create_only
            )
        mount, inner = routed
        entry = await self._in_mount(
            mount,
            inner,
            lambda s, p: s.write_chunk(p, chunk, data, if_match=if_match, create_only=create_only),
        )
        return self._outer_entry(mount, entry)

    async def drop_upload(self, path: str) -> None:
        routed = await self._route(path)
        if routed is None:
            await self.own.drop_upload(path)
            return
        mount, inner = routed
        await mount.storage.drop_upload(mount.at(inner))

    async def mkdir(self, path: str) -> Entry:
        routed = await self._route(path)
        if routed is None:
            return await self.own.mkdir(path)
        mount, inner = routed
        self._refuse_mount_point(mount, inner, "created")
        return self._outer_entry(mount, await self._in_mount(mount, inner, lambda s, p: s.mkdir(p)))

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        routed = await self._route(path)
        if routed is None:
            await self.own.delete(path, recursive=recursive)
            return
        mount, inner = routed
        self._refuse_mount_point(mount, inner, "deleted")
        await self._in_mount(mount, inner, lambda s, p: s.delete(p, recursive=recursive))

    def _refuse_mount_point(self, mount: Mount, inner: str, done: str) -> None:
        if not inner:
            raise PermissionDenied(
                self._outer(mount, inner),
                f"a share of another site cannot be {done} here; leave it in Shared with me",
            )

    async def move(self, src: str, dst: str) -> Entry:
        return await self._transfer(src, dst, move=True)

    async def copy(self, src: str, dst: str) -> Entry:
        return await self._transfer(src, dst, move=False)

    async def _transfer(self, src: str, dst: str, *, move: bool) -> Entry:
        from_mount, to_mount = await self._route(src), await self._route(dst)
        for routed in (from_mount, to_mount) if move else (to_mount,):
            if routed is not None:
                self._refuse_mount_point(*routed, "moved or replaced" if move else "replaced")
        same = (from_mount and from_mount[0].name) == (to_mount and to_mount[0].name)
        if same and from_mount is None:
            call = self.own.move if move else self.own.copy
            return await call(src, dst)
        if same:
            mount, inner = from_mount
            to_inner = mount.at(to_mount[1])
            method = "move" if move else "copy"
            entry = await self._in_mount(mount, inner, lambda s, p: getattr(s, method)(p, to_inner))
            return self._outer_entry(mount, entry)
        if move:
            raise PermissionDenied(
                src,
                "moving between your space and a share of another site is not possible; "
                "copy it, then delete the original",
            )
        return await self._copy_across(src, dst)

    async def _copy_across(self, src: str, dst: str) -> Entry:
        """Copy between two storages (a share of another site and the own space): folders
        made, files read and written create-only, so nothing there is ever replaced."""
        source = await self.stat(src, children=True)
        if not source.is_dir:
            _, data = await self.read(src, stated=source)
            return await self.write(dst, data, create_only=True)
        if await self.exists(dst):
            raise AlreadyExists(dst)
        made = await self.mkdir(dst)
        for child in source.children or ():
            if not child.name or "/" in child.name:
                raise InvalidPath(child.path, "the storage listed an invalid name")
            await self._copy_across(child.path, join_path(dst, child.name))
        return made
