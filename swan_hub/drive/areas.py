"""The drive's areas outside the users' trees (Nextcloud layout): versions, trash, and the ownCloud
middleware that finishes chunked uploads, restores versions and trash, and adds OC headers.

This module owns the requests WsgiDAV cannot express as one provider's operation (a MOVE from the
uploads, versions or trash area into a user's files). It must not bypass `Spaces` for writes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from wsgidav import util
from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_NOT_FOUND, DAVError
from wsgidav.dav_provider import DAVCollection
from wsgidav.mw.base_mw import BaseMiddleware

from . import chunking
from .dav import (
    ENV_HEADERS,
    NC,
    OC,
    DriveFile,
    DriveFolder,
    DriveProvider,
    RefusedError,
    UploadsProvider,
    dav_error,
    destination_path,
    parse_mtime,
    stand_in_destination,
    upload_headers,
    user_content_headers,
)
from .spaces import PERM_CREATE, PERM_READ, PERM_UPDATE, DriveError, Place, file_etag, remove_tree
from .state import TrashRecord


class VirtualFolder(DAVCollection):
    """A fixed folder whose members come from a function (no files behind it)."""

    def __init__(self, path: str, environ: dict, names: Callable[[], list[str]]):
        super().__init__(path, environ)
        self._names = names

    def get_member_names(self) -> list[str]:
        return self._names()

    def get_member(self, name: str) -> Any:
        return self.provider.get_resource_inst(util.join_uri(self.path, name), self.environ)

    def get_member_list(self) -> list[Any]:
        # an entry whose blob is not a plain file or folder (a link) is not listed
        members = (self.get_member(name) for name in self.get_member_names())
        return [member for member in members if member is not None]

    def get_etag(self) -> None:
        return None


class _AreaProvider(DriveProvider):
    """A per-user area in Nextcloud's layout: ``/<user>/<listing>/...`` and ``/<user>/restore/``.

    Subclasses name their ``listing`` folder and map what is below it.
    """

    listing = ""

    def __init__(self, spaces: Any):
        super().__init__(spaces, user_in_path=True)

    def get_resource_inst(self, path: str, environ: dict) -> Any:
        split = self._split(path, environ)
        if split is None:
            return VirtualFolder(path, environ, lambda: [self._user(environ)])
        user, segments = split
        if not segments:
            return VirtualFolder(path, environ, lambda: [self.listing, "restore"])
        if segments == ["restore"]:
            return VirtualFolder(path, environ, lambda: [])
        if segments[0] != self.listing:
            return None
        return self.listed_resource(path, environ, user, segments[1:])

    def listed_resource(self, path: str, environ: dict, user: str, below: list[str]) -> Any:
        """The resource at ``below`` the listing folder (``[]``: the listing itself)."""
        raise NotImplementedError

    def place_for(self, path: str, environ: dict) -> Place:
        raise RefusedError(HTTP_FORBIDDEN, "This area is read-only")

    def blob_node(self, path: str, environ: dict, place: Place) -> Any:
        node = self._node(path, environ, place, at_root=False)
        if node is not None:
            node.place.perms = PERM_READ
        return node


class VersionsProvider(_AreaProvider):
    """``/remote.php/dav/versions/<user>/versions/<fileid>/<mtime>`` and ``.../restore/target``."""

    area = "versions"
    listing = "versions"

    def listed_resource(self, path: str, environ: dict, user: str, below: list[str]) -> Any:
        if not below:
            return VirtualFolder(path, environ, lambda: [])
        if not below[0].isdigit() or len(below) > 2:
            return None
        file_id = int(below[0])
        if self.spaces.state.path_of_file_id(user, file_id) is None:
            return None
        found = self.spaces.versions_by_name(user, file_id)
        if len(below) == 1:
            return VirtualFolder(path, environ, lambda: sorted(found))
        version = found.get(below[1])
        if version is None:
            return None
        blob = self.spaces.version_file(user, version.id)
        return self.blob_node(path, environ, Place(user, below[1], blob, PERM_READ))

    def restore(self, environ: dict) -> tuple[int, list[tuple[str, str]]]:
        user = self._user(environ)
        segments = [s for s in environ["PATH_INFO"].split("/") if s]
        target = destination_path(environ)
        if (
            len(segments) != 4
            or segments[:2] != [user, "versions"]
            or not target.rstrip("/").endswith(f"/versions/{user}/restore/target")
        ):
            raise DriveError(400, "Restore a version by COPY or MOVE to .../restore/target")
        file_id = int(segments[2]) if segments[2].isdigit() else -1
        version = self.spaces.versions_by_name(user, file_id).get(segments[3])
        current = self.spaces.state.path_of_file_id(user, file_id)
        if version is None or current is None:
            raise DriveError(404, "No such version")
        place = self.spaces.own_place(user, current)
        temp = self.spaces.temp_beside(place.fs_path)
        try:
            self.spaces.copy_file(self.spaces.version_file(user, version.id), temp)
            st = self.spaces.publish(place, temp, mtime=version.mtime)
        except BaseException:
            self.spaces.discard(temp)
            raise
        if environ["REQUEST_METHOD"].upper() == "MOVE":
            self.spaces.state.remove_version(version.id)
            remove_tree(self.spaces.version_file(user, version.id))
        return 204, [("OC-ETag", f'"{file_etag(st)}"'), ("ETag", f'"{file_etag(st)}"')]


class TrashItemMixin:
    item: TrashRecord

    def get_property_value(self, name: str) -> Any:
        if name == f"{NC}trashbin-filename":
            return self.item.name
        if name == f"{NC}trashbin-original-location":
            return self.item.original_path
        if name == f"{NC}trashbin-deletion-time":
            return str(int(self.item.deleted_at))
        if name == f"{OC}size":
            return str(self.item.size)
        if name in (f"{OC}fileid", f"{OC}id") and self.item.file_id is not None:
            # the id it had in the space, as Nextcloud keeps it: clients (nc-py-api) list only
            # entries that carry one
            file_id = self.item.file_id
            return str(file_id) if name == f"{OC}fileid" else self.spaces.oc_id(file_id)  # type: ignore[attr-defined]
        return super().get_property_value(name)  # type: ignore[misc]

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names = super().get_property_names(is_allprop=is_allprop)  # type: ignore[misc]
        return names + [
            f"{NC}trashbin-filename",
            f"{NC}trashbin-original-location",
            f"{NC}trashbin-deletion-time",
        ]


class TrashFile(TrashItemMixin, DriveFile):
    pass


class TrashFolder(TrashItemMixin, DriveFolder):
    pass


class TrashProvider(_AreaProvider):
    """``/remote.php/dav/trashbin/<user>/trash/<name>.d<time>`` and ``.../restore/<name>``."""

    area = "trash"
    listing = "trash"

    def items(self, user: str) -> dict[str, TrashRecord]:
        return self.spaces.trash_by_name(user)

    def listed_resource(self, path: str, environ: dict, user: str, below: list[str]) -> Any:
        items = self.items(user)
        if not below:
            return VirtualFolder(path, environ, lambda: list(items))
        item = items.get(below[0])
        if item is None:
            return None
        blob = self.spaces.trash_file(user, item.id)
        place = Place(user, below[-1], os.path.join(blob, *below[1:]), PERM_READ)
        node = self.blob_node(path, environ, place)
        if node is None or len(below) > 1:
            return node
        cls = TrashFolder if node.is_collection else TrashFile
        wrapped = cls(path, environ, node.place, node.st, self)  # type: ignore[call-arg]
        wrapped.item = item
        return wrapped

    def restore(self, environ: dict) -> tuple[int, list[tuple[str, str]]]:
        user = self._user(environ)
        segments = [s for s in environ["PATH_INFO"].split("/") if s]
        target = destination_path(environ)
        if (
            len(segments) != 3
            or segments[:2] != [user, "trash"]
            or f"/trashbin/{user}/restore/" not in target
        ):
            raise DriveError(400, "Restore a deleted item by MOVE to .../restore/<name>")
        item = self.items(user).get(segments[2])
        if item is None:
            raise DriveError(404, "No such item in the trash")
        place = self.spaces.own_place(user, item.original_path)
        self.spaces.make_parents(place)
        rel = item.original_path
        if os.path.lexists(place.fs_path):
            if environ.get("HTTP_OVERWRITE", "T").upper() == "F":
                raise DriveError(
                    412, f"{rel} exists already: rename or move it, then restore again"
                )
            # Nextcloud's way: the item comes back beside what took its place.
            stem, dot, ext = item.name.rpartition(".")
            restored = f"{stem} (restored).{ext}" if dot and stem else f"{item.name} (restored)"
            rel = f"{rel.rpartition('/')[0]}/{restored}".lstrip("/")
            place = self.spaces.own_place(user, rel)
            if os.path.lexists(place.fs_path):
                raise DriveError(409, f"{rel} exists already; rename it and restore again")
        try:
            self.spaces.rename(self.spaces.trash_file(user, item.id), place.fs_path, replace=False)
        except FileExistsError:
            raise DriveError(409, f"{rel} exists already; rename it and restore again") from None
        # deleted before the space passed to a container's user, it may still be the drive's
        self.spaces.give_to_space_user(user, place.fs_path, tree=True)
        self.spaces.state.remove_trash(item.id)
        return 201, []

    def purge(self, environ: dict) -> tuple[int, list[tuple[str, str]]]:
        user = self._user(environ)
        segments = [s for s in environ["PATH_INFO"].split("/") if s]
        if segments[:2] != [user, "trash"] or len(segments) > 3:
            raise DriveError(403, "Only whole items of the trash can be deleted")
        items = self.items(user)
        chosen = items.values() if len(segments) == 2 else [items.get(segments[2])]
        if None in chosen:
            raise DriveError(404, "No such item in the trash")
        for item in list(chosen):
            assert item is not None
            remove_tree(self.spaces.trash_file(user, item.id))
            self.spaces.state.remove_trash(item.id)
        return 204, []


def finish_chunked_upload(
    environ: dict, provider: UploadsProvider
) -> tuple[int, list[tuple[str, str]]]:
    """``MOVE <upload>/.file``: publish the parts, in order, at the Destination atomically."""
    upload = provider.place_for(util.get_uri_parent(environ["PATH_INFO"]), environ)
    if not os.path.isdir(upload.fs_path):
        raise DriveError(404, "No such upload")
    dest, existed = upload_destination(environ)
    if not os.path.isdir(os.path.dirname(dest.fs_path)):
        raise DriveError(409, "The destination folder does not exist")
    parts = sorted(
        (n for n in os.listdir(upload.fs_path) if not n.startswith(".")),
        key=lambda n: (0, int(n), "") if n.isdigit() else (1, 0, n),
    )
    total = sum(os.lstat(os.path.join(upload.fs_path, n)).st_size for n in parts)
    expected = environ.get("HTTP_OC_TOTAL_LENGTH")
    if expected is not None and (not expected.isdigit() or int(expected) != total):
        raise DriveError(400, f"The parts hold {total} bytes, not OC-Total-Length {expected}")
    provider.spaces.check_quota(dest.owner, total)
    temp = provider.spaces.temp_beside(dest.fs_path)
    try:
        with provider.spaces.create_temp(temp) as out:
            for name in parts:
                provider.spaces.append_file(os.path.join(upload.fs_path, name), out)
            # on disk before the rename, so that a crash leaves the old file or the whole new one
            out.flush()
            os.fsync(out.fileno())
        st = provider.spaces.publish(
            dest,
            temp,
            if_match=environ.get("HTTP_IF_MATCH"),
            if_none_match=environ.get("HTTP_IF_NONE_MATCH"),
            mtime=parse_mtime(environ),
        )
    except BaseException:
        provider.spaces.discard(temp)
        raise
    remove_tree(upload.fs_path)
    return (204 if existed else 201), upload_headers(provider.spaces, dest, st, environ)


def _may_lock(environ: dict, provider: DriveProvider) -> None:
    """A lock keeps others from writing: only who may write may take or drop one (a new
    file's lock is checked where WsgiDAV creates it, `DriveFolder.create_empty_resource`)."""
    place = provider.place_for(environ["PATH_INFO"], environ)
    if os.path.lexists(place.fs_path):
        place.require(PERM_UPDATE, "lock or unlock this (you may only read it)")


def upload_destination(environ: dict) -> tuple[Place, bool]:
    """The place a chunked upload's Destination names, if the user may write it, and whether
    a file is there already. Checked on its ``MKCOL`` and every part's ``PUT`` when they name
    it (as Nextcloud clients do), so nothing is taken in for a place the user may not write,
    and again on the final ``MOVE``."""
    target = destination_path(environ)
    share, dest_provider = environ["wsgidav.app"].resolve_provider(target)
    if not isinstance(dest_provider, DriveProvider) or dest_provider.area != "space":
        raise DriveError(400, "The Destination of an upload must be in your files")
    dest = dest_provider.place_for(target[len(share) :], environ)
    existed = os.path.lexists(dest.fs_path)
    dest.require(PERM_UPDATE if existed else PERM_CREATE, "write this file")
    return dest, existed


class OwnCloudMiddleware(BaseMiddleware):
    """WsgiDAV middleware: the cross-area MOVEs/COPYs of Nextcloud, destinations WsgiDAV would
    misread (see `stand_in_destination`), and the OC response headers."""

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        provider = environ.get("wsgidav.provider")
        method = environ["REQUEST_METHOD"].upper()
        action = None
        if isinstance(provider, UploadsProvider) and method == "MOVE":
            if environ["PATH_INFO"].rstrip("/").endswith("/.file"):
                action = lambda: finish_chunked_upload(environ, provider)  # noqa: E731
        elif (
            isinstance(provider, VersionsProvider)
            and method in ("MOVE", "COPY")
            or isinstance(provider, TrashProvider)
            and method == "MOVE"
        ):
            action = lambda: provider.restore(environ)  # noqa: E731
        elif isinstance(provider, TrashProvider) and method == "DELETE":
            action = lambda: provider.purge(environ)  # noqa: E731
        if action is None and method in ("MOVE", "COPY"):
            stand_in_destination(environ)
        if action is None:
            try:
                if method in ("LOCK", "UNLOCK") and isinstance(provider, DriveProvider):
                    _may_lock(environ, provider)
                elif (
                    method in ("MKCOL", "PUT")
                    and isinstance(provider, UploadsProvider)
                    and environ.get("HTTP_DESTINATION")
                ):
                    upload_destination(environ)
            except (DriveError, OSError) as e:
                raise dav_error(e) from e
        if (
            isinstance(provider, DriveProvider)
            and provider.area == "space"
            and chunking.is_v1_part(environ)
        ):
            # the part's body is read by the action itself, streamed to disk
            try:
                status, headers = chunking.put_part(environ, provider)
            except (DriveError, OSError) as e:
                raise dav_error(e) from e
            return util.send_status_response(environ, start_response, status, add_headers=headers)
        if action is not None:
            util.read_and_discard_input(environ)
            try:
                status, headers = action()
            except (DriveError, OSError) as e:
                raise dav_error(e) from e
            return util.send_status_response(environ, start_response, status, add_headers=headers)

        def with_oc_headers(status: str, headers: list, exc_info: Any = None) -> Any:
            extra = list(environ.get(ENV_HEADERS) or [])
            if method in ("GET", "HEAD"):
                extra += self._user_content_headers(environ, status, headers)
            if method in ("MKCOL", "MOVE", "COPY") and status[:3] in ("201", "204"):
                extra += self._new_item_headers(environ, provider, method)
            return start_response(status, headers + extra, exc_info)

        return self.next_app(environ, with_oc_headers)

    @staticmethod
    def _user_content_headers(environ: dict, status: str, headers: list) -> list:
        """Every GET of every area serves a user's bytes (or a listing of their names)."""
        if not status.startswith("2"):
            return [("X-Content-Type-Options", "nosniff")]
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        name = environ["PATH_INFO"].rstrip("/").rsplit("/", 1)[-1]
        return user_content_headers(content_type, name)

    @staticmethod
    def _new_item_headers(environ: dict, provider: Any, method: str) -> list[tuple[str, str]]:
        if not isinstance(provider, DriveProvider) or provider.area != "space":
            return []
        try:
            if method == "MKCOL":
                place = provider.place_for(environ["PATH_INFO"], environ)
            else:
                target = destination_path(environ)
                share, dest_provider = environ["wsgidav.app"].resolve_provider(target)
                place = dest_provider.place_for(target[len(share) :], environ)
            st = os.stat(place.fs_path)
        except (DAVError, DriveError, OSError):
            return []
        file_id = provider.spaces.file_id(place.owner, place.rel, st)
        headers = [("OC-FileId", provider.spaces.oc_id(file_id))]
        if not os.path.isdir(place.fs_path):
            headers.append(("OC-ETag", f'"{file_etag(st)}"'))
        return headers


__all__ = ["HTTP_NOT_FOUND", "OwnCloudMiddleware", "TrashProvider", "VersionsProvider"]
