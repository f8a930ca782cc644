"""The seam between "Open in SWAN" and sharing: how a user reaches a path in someone else's space.

It maps the owner's path of a link onto where a share the user accepted appears in their own
space (``Shares/<name>/…``), asking the configured `ShareBackend`. It must not speak a share
protocol itself, nor decide who may see what: the storage did that when it listed the shares.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jupyter_core.utils import ensure_async

from ..sharing.backend import ShareBackend, ShareError, StorageShare
from .safety import OpenRefused


@dataclass(frozen=True)
class Route:
    """One way to reach the owner's path: through ``share``, at ``path`` in the user's view."""

    share: StorageShare
    path: str
    depth: int


def item_names(share: StorageShare) -> set[str]:
    """The names the shared item goes by: its name in the owner's space where the storage says
    (Reva), and the name of the place where it appears for the recipient (ownCloud, Nextcloud,
    unless the recipient renamed it)."""
    return {posixpath.basename(p.rstrip("/")) for p in (share.path, share.location or "") if p}


def _same_owner(share: StorageShare, owner: str) -> bool:
    """Whether ``owner`` (a link's) names the owner of ``share``; a person of another site by
    their address ``user@host[:port]``, whose host is compared in any case."""
    if share.kind != "federated":
        return share.owner == owner
    user, at, provider = owner.rpartition("@")
    known_user, _, known_provider = share.owner.rpartition("@")
    return bool(at and user) and (user, provider.lower()) == (known_user, known_provider.lower())


def routes(shares: Iterable[StorageShare], owner: str, path: str) -> Iterator[Route]:
    """Every received share of ``owner`` that can hold ``path`` (a path in the owner's space), and
    where that path then is for the recipient. OCS does not say where a received item lies in its
    owner's space, so a folder named like one of the link's segments is taken to be that segment;
    the caller checks that the path is really there."""
    segments = [s for s in path.split("/") if s]
    for share in shares:
        # a share of another site has no place in the space before it is accepted: it can
        # still be the one to accept (its route's path is then never opened)
        location = share.location
        if share.kind == "federated" and share.state == "pending":
            location = ""
        if not _same_owner(share, owner) or location is None or not segments:
            continue
        names = item_names(share) | ({share.name} if share.kind == "federated" else set())
        if share.item_type == "file":
            if segments[-1] in names:
                yield Route(share, location, len(segments))
            continue
        for i, segment in enumerate(segments):
            if segment in names:
                rest = segments[i + 1 :]
                yield Route(share, posixpath.join(location, *rest), i + 1)


class ShareWaiting(OpenRefused):
    """A share that holds the link's path waits for the user's answer: the page offers to
    accept it and go on (`ShareLookup.accept_waiting`)."""

    status = 409


class ShareLookup:
    """Answers where ``owner``'s ``path`` can be opened by this server's user, if anywhere.

    With a configured share backend (``c.OCSShareBackend``), that is through a share the user
    received and accepted: a link to ``class-2026/exercise-1.ipynb`` of ``teacher`` opens
    ``Shares/class-2026/exercise-1.ipynb`` when teacher shared ``class-2026`` with the user. A
    share still waiting for the user's answer is a refusal that says to accept it first. Without
    a backend, nothing is shared and links into someone else's space ask to have it shared.

    Another lookup (e.g. one that knows a site's mount layout) subclasses this and is configured
    as ``c.SwanOpenIn.share_lookup_class``.
    """

    def __init__(self, backend: ShareBackend | None = None, contents_manager: Any = None) -> None:
        self.backend = backend
        self.contents_manager = contents_manager

    async def path_for(self, user: str, owner: str, path: str) -> str | None:
        """The path in ``user``'s own view where ``owner``'s ``path`` can be opened, or None."""
        if self.backend is None or not self.backend.configured:
            return None
        try:
            received = await self.backend.received_shares("all")
        except ShareError as e:
            raise OpenRefused(
                f"The storage could not say which shares you have, so /{path} of {owner} cannot "
                f"be opened now: {e.message}",
                status=503,
            ) from e
        found = sorted(routes(received, owner, path), key=lambda r: -r.depth)
        accepted = [r for r in found if r.share.state in (None, "accepted")]
        for route in accepted:
            if await self._exists(route.path):
                return route.path
        if accepted:
            return accepted[0].path
        if any(r.share.state == "pending" for r in found):
            raise ShareWaiting(
                f"{owner} shared /{path} with you, but you have not accepted the share yet. "
                "Accept it in the Shared with me panel of JupyterLab, then click the link again."
            )
        return None

    async def accept_waiting(self, owner: str, path: str) -> list[str]:
        """Accept the shares of ``owner`` waiting for this user's answer that can hold
        ``path``, as Accept in the Shared with me panel does (the same backend call); the ids
        accepted. A share the user declined stays declined: only the owner can offer it again."""
        if self.backend is None or not self.backend.configured:
            return []
        try:
            received = await self.backend.received_shares("pending")
            waiting = {r.share.id for r in routes(received, owner, path)}
            for share_id in sorted(waiting):
                await self.backend.accept_share(share_id)
        except ShareError as e:
            raise OpenRefused(
                f"The storage did not accept the share of /{path} of {owner}: {e.message}",
                status=503,
            ) from e
        return sorted(waiting)

    async def origin_of(self, path: str) -> tuple[str, str] | None:
        """(owner's address, path) of ``path`` (in this user's view) when it lies in a share
        of another site the user accepted: a link made of it opens through that share for any
        user of this site who has it, as the owner's own link would. None elsewhere (and where
        the storage cannot say now: the link is then the user's own)."""
        backend = self.backend
        if backend is None or not getattr(backend, "shares_of_other_sites", False):
            return None
        try:
            received = await backend.received_shares("accepted")
        except ShareError:
            return None
        segments = [s for s in path.split("/") if s]
        for share in received:
            if share.kind != "federated" or not share.location or not share.name:
                continue
            mount = [s for s in share.location.split("/") if s]
            if segments[: len(mount)] == mount:
                return share.owner, posixpath.join(share.name, *segments[len(mount) :])
        return None

    async def _exists(self, path: str) -> bool:
        if self.contents_manager is None:
            return True
        return bool(await ensure_async(self.contents_manager.exists(path)))
