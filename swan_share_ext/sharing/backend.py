"""What a share is to the rest of the suite: the `StorageShare` and `Sharee` records, the
`ShareBackend` interface that a storage's sharing service implements, and the errors it raises.

Nothing here speaks a protocol or HTTP: backends translate their protocol into these names, and
the REST handlers turn these errors into HTTP answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from traitlets.config import LoggingConfigurable

#: The permission bits of the OCS share API, shared by every storage we speak to.
READ = 1
UPDATE = 2
CREATE = 4
DELETE = 8
SHARE = 16

#: Where a received share stands: mounted in the user's space, waiting for an answer, refused.
SHARE_STATES: tuple[str, ...] = ("accepted", "pending", "declined")


@dataclass(frozen=True)
class StorageShare:
    """One share as the storage reports it.

    `path` is the shared item's path in the owner's space as this server sees it ("" when the
    item lies outside the folder this server shows); `location` is where a received share
    appears in the recipient's space (its mount point), or None where that is unknown.
    """

    id: str
    kind: str
    path: str
    item_type: Literal["file", "folder"]
    permissions: int
    share_with: str | None
    share_with_name: str | None
    owner: str
    owner_name: str
    expiration: str | None = None
    url: str | None = None
    password_protected: bool = False
    name: str = ""
    created: int | None = None
    state: str | None = None
    location: str | None = None
    #: a page at the owner's site that shows the shared item, view only (OCM ``webapp``)
    view_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sharee:
    """Someone a file can be shared with: `share_with` is what a new share names, `name` is
    what a person reads, `info` tells two people of the same name apart (an e-mail address)."""

    kind: str
    share_with: str
    name: str
    info: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Invite:
    """An invite for a person of another site (Open Cloud Mesh): the `link` they open (None
    where the storage makes none), or the `token` and this site's address (`provider`) to type
    at their own site; valid until `expiration` (ISO 8601, UTC) and used once."""

    token: str
    provider: str
    expiration: str
    link: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NewShare:
    """What a person asked to share, already checked for form (not for rights: the storage
    decides those)."""

    path: str
    kind: str
    share_with: str | None = None
    permissions: int = READ
    password: str | None = None
    expiration: str | None = None
    name: str | None = None


class ShareError(Exception):
    """Base of every error a share backend raises; `message` is the storage's own words."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class InvalidShareRequest(ShareError):
    """The storage refused the request as malformed: bad permissions, date, or recipient."""


class ShareNotFound(ShareError):
    """No such share, path or recipient for this user (or the user may not see it)."""


class ShareForbidden(ShareError):
    """The storage forbids it: sharing is disabled, or the user lacks the right to share."""


class SharingAuthFailed(ShareError):
    """The storage did not accept the credentials this server holds for the user."""


class SharingUnavailable(ShareError):
    """The sharing service cannot be reached or failed; nothing was changed."""


class ShareBackend(LoggingConfigurable):
    """A storage's sharing service, seen from one user's notebook server.

    Paths are the server's API paths ("" is the root of the folder the server shows). Every
    method is one or two round trips to the storage and raises only `ShareError` subclasses.
    A backend is configurable (traitlets); subclasses implement every method.
    """

    #: False while the backend lacks the configuration it needs; the API then answers 503.
    configured: bool = True

    async def list_shares(self, path: str | None = None) -> list[StorageShare]:
        """The shares the user made, all of them or those of one path."""
        raise NotImplementedError

    async def get_share(self, share_id: str) -> StorageShare:
        """One share the user can see, made or received."""
        raise NotImplementedError

    async def create_share(self, new: NewShare) -> StorageShare:
        """Share a path; the storage checks the user's rights on it."""
        raise NotImplementedError

    async def update_share(self, share_id: str, changes: dict[str, Any]) -> StorageShare:
        """Change `permissions`, `expiration`, `password` or `name` of a share ("" clears)."""
        raise NotImplementedError

    async def delete_share(self, share_id: str) -> None:
        """Revoke a share the user made."""
        raise NotImplementedError

    async def received_shares(self, state: str = "all") -> list[StorageShare]:
        """Shares made with the user (or a group of theirs), in one state or "all"."""
        raise NotImplementedError

    async def accept_share(self, share_id: str) -> StorageShare:
        """Accept a received share; it then appears in the user's space at `location`."""
        raise NotImplementedError

    async def decline_share(self, share_id: str) -> None:
        """Decline (or leave) a received share; the user loses access to it."""
        raise NotImplementedError

    async def search_sharees(self, search: str, item_type: str = "file") -> list[Sharee]:
        """Users and groups matching `search`, exact matches first."""
        raise NotImplementedError

    #: Whether the user can invite people of other sites here (the labextension then offers it).
    offers_invites: bool = False

    async def create_invite(self) -> Invite:
        """A new invite of the user for a person of another site."""
        raise ShareForbidden("This storage makes no invites for people of other sites.")

    async def close(self) -> None:
        """Release connections; the default holds none."""
