"""Where a server of each family keeps versions and the trash bin, and how it restores them:
Nextcloud (`/remote.php/dav/versions/<user>/…`, `/trashbin/<user>/…`) and the ownCloud family
(ownCloud 10, oCIS, Reva/CERNBox, the drive: `/meta/<fileid>/v/`, `/trash-bin/<user>/`).

It owns those URLs and the reading of a trash listing; it must not send requests (the driver
does, with what this gives it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from ..base import InvalidPath, TrashItem, split_path
from .etags import normalize_etag
from .multistatus import NC, OC, Properties, entry_of, http_date, prop_text


@dataclass(frozen=True)
class OwncloudLayout:
    """The versions and trash endpoints of the ownCloud family, under `dav_root`
    (`…/remote.php/dav/`) for the user `user` (URL-encoded)."""

    dav_root: str
    user: str

    def versions_url(self, file_id: str) -> str:
        return f"{self.dav_root}meta/{quote(file_id, safe='')}/v/"

    def version_restore(self, version_url: str, file_url: str) -> tuple[str, str]:
        """(method, Destination) that makes the version at `version_url` current."""
        return "COPY", file_url

    @property
    def trash_url(self) -> str:
        return f"{self.dav_root}trash-bin/{self.user}/"

    def trash_restore(
        self, item_id: str, original: str, target: str | None, url_of: Callable[[str], str]
    ) -> tuple[str, str]:
        """(where the entry goes, Destination) to put a trashed entry back: where it was, or
        at `target`."""
        target = original if target is None else target
        return target, url_of(target)


@dataclass(frozen=True)
class NextcloudLayout(OwncloudLayout):
    """Nextcloud's versions and trash endpoints: restored by a MOVE into `restore/`, and a
    trashed entry only to where it was."""

    def versions_url(self, file_id: str) -> str:
        return f"{self.dav_root}versions/{self.user}/versions/{quote(file_id, safe='')}/"

    def version_restore(self, version_url: str, file_url: str) -> tuple[str, str]:
        return "MOVE", f"{self.dav_root}versions/{self.user}/restore/target"

    @property
    def trash_url(self) -> str:
        return f"{self.dav_root}trashbin/{self.user}/trash/"

    def trash_restore(
        self, item_id: str, original: str, target: str | None, url_of: Callable[[str], str]
    ) -> tuple[str, str]:
        if target not in (None, original):
            raise InvalidPath(target, "Nextcloud restores an entry to where it was only")
        return original, f"{self.dav_root}trashbin/{self.user}/restore/{quote(item_id, safe='')}"


def layout_of(dialect: str, dav_root: str, user: str) -> OwncloudLayout:
    """The endpoints of a server of `dialect` ("nextcloud", else the ownCloud family's)."""
    kind = NextcloudLayout if dialect == "nextcloud" else OwncloudLayout
    return kind(dav_root, user)


def trash_item(key: str, props: Properties, path: str) -> TrashItem:
    """The trash entry `key` of a trash listing, once at `path` in the space."""
    deleted = prop_text(props, f"{NC}trashbin-deletion-time") or prop_text(
        props, f"{OC}trashbin-delete-timestamp"
    )
    if deleted is None:
        deleted_at = http_date(prop_text(props, f"{OC}trashbin-delete-datetime")) or 0.0
    else:
        deleted_at = float(deleted)
    entry = entry_of(path, props, normalize_etag)
    return TrashItem(
        id=key,
        name=split_path(path)[1],
        path=path,
        deleted=deleted_at,
        size=entry.size,
        type="directory" if entry.is_dir else "file",
    )


def original_location(props: Properties) -> str | None:
    """Where a trashed entry was, in the user's files (either family's property)."""
    return prop_text(props, f"{NC}trashbin-original-location") or prop_text(
        props, f"{OC}trashbin-original-location"
    )
