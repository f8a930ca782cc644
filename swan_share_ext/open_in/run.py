"""Carrying out a `Plan`: fetch the source, land it in ``SWAN_projects/<name>/``, say where to go.

This module owns the order of the steps and the events the confirmation page shows (``step``,
``progress``, ``file``, ``done``); refusals travel as `OpenRefused`. It must not parse links
(`sources`), decide what a URL may reach (`safety`) or write except through
`delivery`.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import nbformat
from jupyter_core.utils import ensure_async

from swan_contents.notebook_json import read_notebook

from ..sharing.backend import ShareBackend
from .archive import SafeZip, is_zip
from .config import SwanOpenIn
from .delivery import Loader, Outcome, ProjectState, ProjectWriter, project_lock
from .fetch import Download, Fetcher
from .git import GitRepository
from .safety import BadLink, OpenRefused, TooLarge, UrlPolicy
from .sources import Plan, safe_project_name

Emit = Callable[[dict[str, Any]], None]
_PROGRESS_EVERY = 0.25


def policy_of(settings: SwanOpenIn, resolver: Any = None) -> UrlPolicy:
    kwargs = {"resolver": resolver} if resolver is not None else {}
    return UrlPolicy.from_lists(
        settings.allowed_hosts, settings.allowed_schemes, settings.allowed_networks, **kwargs
    )


def view_url(path: str, is_dir: bool, open_with: str) -> str:
    """The server-relative URL that shows ``path`` (a notebook, a file or a folder); the top of
    the space is the application itself (JupyterLab says "Path Not Found" for ``lab/tree/``)."""
    if not path:
        return "lab" if open_with == "lab" else "tree"
    quoted = quote(path)
    if open_with == "lab":
        return f"lab/tree/{quoted}"
    if is_dir:
        return f"tree/{quoted}"
    return f"notebooks/{quoted}" if path.endswith(".ipynb") else f"edit/{quoted}"


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/"))


def _safe_file_name(name: str, fallback: str) -> str:
    """A visible file name made of the suggested one's words, keeping its extension."""
    stem, ext = posixpath.splitext(posixpath.basename(name))
    ext = re.sub(r"[^A-Za-z0-9]+", "", ext)[:16]
    cleaned = safe_project_name(stem)
    if cleaned == "project" and stem != "project":
        return fallback
    return f"{cleaned}.{ext}" if ext else cleaned


class OpenRun:
    """One POST /swan/api/open: ``run(plan)`` returns the ``done`` event."""

    def __init__(
        self,
        settings: SwanOpenIn,
        contents_manager: Any,
        *,
        space: str,
        user: str,
        emit: Emit,
        resolver: Any = None,
        share_backend: ShareBackend | None = None,
    ) -> None:
        self.settings = settings
        self.cm = contents_manager
        self.space = space
        self.user = user
        self.emit = emit
        self.share_backend = share_backend
        self.policy = policy_of(settings, resolver)
        self._last_progress = 0.0

    def step(self, message: str) -> None:
        self.emit({"event": "step", "message": message})

    def _progress(self, received: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last_progress >= _PROGRESS_EVERY or received == total:
            self._last_progress = now
            self.emit({"event": "progress", "received": received, "total": total})

    async def run(
        self, plan: Plan, *, password: str = "", accept_share: bool = False
    ) -> dict[str, Any]:
        """Carry out ``plan``; ``password`` opens a password link of the drive;
        ``accept_share`` first accepts a share waiting for the user that holds the path."""
        if plan.kind == "own-path":
            return await self._own_path(plan.path)
        if plan.kind == "other-path":
            return await self._other_path(plan, accept_share)
        if plan.kind == "git":
            return await self._git(plan)
        return await self._download(plan, password)

    def is_drive_link(self, plan: Plan) -> bool:
        """Whether ``plan`` fetches a public link of this hub's drive (which may ask for a
        password: the page offers a field for it)."""
        return plan.kind == "share-link" and self.fetcher().trusts(plan.fetch_url)

    # -- paths --------------------------------------------------------------------------------

    async def _done(
        self, path: str, is_dir: bool, outcome: Outcome | None = None, project: str = ""
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event": "done",
            "path": path,
            "redirect": view_url(path, is_dir, self.settings.open_with),
        }
        if outcome is not None:
            event["summary"] = outcome.summary()
            event["counts"] = outcome.counts
            event["project"] = project
        return event

    async def _own_path(self, path: str) -> dict[str, Any]:
        if path and not await ensure_async(self.cm.exists(path)):
            raise OpenRefused(f"There is no /{path} in your space.", status=404)
        return await self._done(path, await ensure_async(self.cm.dir_exists(path)))

    async def _other_path(self, plan: Plan, accept_share: bool = False) -> dict[str, Any]:
        lookup = self.settings.share_lookup_class(self.share_backend, self.cm)
        if accept_share:
            await lookup.accept_waiting(plan.owner, plan.path)
        shared = await lookup.path_for(self.user, plan.owner, plan.path)
        if shared is None:
            raise OpenRefused(
                f"/{plan.path} is in the space of {plan.owner}, and it is not shared with you. "
                f"Ask {plan.owner} to share it with you (or to send you a public link), "
                "then click the link again.",
                status=403,
            )
        return await self._own_path(shared)

    # -- projects -----------------------------------------------------------------------------

    async def project(self, name: str, source: str) -> tuple[str, ProjectState]:
        """The folder for ``source``: ``SWAN_projects/<name>``, or ``<name>-2``… when ``<name>``
        holds another source's files."""
        base = posixpath.join(self.settings.projects_dir.strip("/"), name)
        for n in range(1, 100):
            folder = base if n == 1 else f"{base}-{n}"
            state = await ProjectState(self.settings.state_dir, self.space, folder).load()
            if state.source in (None, source):
                if state.source is None and n > 1 and await ensure_async(self.cm.exists(folder)):
                    continue
                return folder, state
        raise OpenRefused(f"Too many projects are named {name}; rename or remove some.", status=409)

    async def _deliver(
        self,
        plan: Plan,
        name: str,
        files: Sequence[tuple[str, Loader]],
        merge: Any = None,
        before_save: Any = None,
    ) -> dict[str, Any]:
        folder, state = await self.project(name, plan.source)
        async with project_lock(state.folder):
            state = await state.load()
            self.step(f"Writing {len(files)} file(s) into {folder}/")
            writer = ProjectWriter(self.cm, folder, emit=self.emit)
            outcome, remembered = await writer.deliver(files, state.files, merge)
            if before_save is not None:
                await before_save()
            await state.save(plan.source, remembered)
        target, is_dir = self._target(plan, folder, [path for path, _ in files])
        return await self._done(target, is_dir, outcome, folder)

    def _target(self, plan: Plan, folder: str, paths: list[str]) -> tuple[str, bool]:
        if plan.open:
            if plan.open in paths:
                return posixpath.join(folder, plan.open), False
            return posixpath.join(folder, plan.open), True
        if len(paths) == 1:
            return posixpath.join(folder, paths[0]), False
        notebooks = [p for p in paths if p.endswith(".ipynb") and "/" not in p]
        if len(notebooks) == 1:
            return posixpath.join(folder, notebooks[0]), False
        return folder, True

    # -- downloads ----------------------------------------------------------------------------

    def fetcher(self) -> Fetcher:
        s = self.settings
        return Fetcher(
            self.policy,
            max_bytes=s.max_download_bytes,
            timeout=s.download_timeout,
            max_redirects=s.max_redirects,
            verify=s.check_certificates,
            trusted_prefix=s.drive_url.rstrip("/") + "/" if s.drive_url else "",
        )

    async def _download(self, plan: Plan, password: str = "") -> dict[str, Any]:
        url = plan.fetch_url or plan.source
        self.step(f"Downloading from {plan.host}")
        # a drive link's password goes to the drive alone, as Basic auth with the link's token
        auth = (drive_link_token(url), password) if password and self.is_drive_link(plan) else None
        download = await self.fetcher().fetch(url, self._progress, auth=auth)
        self.step(f"Downloaded {len(download.data)} bytes")
        name = plan.name or safe_project_name(posixpath.splitext(download.filename)[0])
        if is_zip(download.data) and not download.filename.endswith(".ipynb"):
            return await self._unpack(plan, name, download)
        filename = _safe_file_name(download.filename, f"{name}.download")

        async def load() -> bytes:
            return download.data

        return await self._deliver(plan, name, [(filename, load)])

    async def _unpack(self, plan: Plan, name: str, download: Download) -> dict[str, Any]:
        s = self.settings
        self.step("Checking the zip archive")
        archive = await asyncio.to_thread(
            SafeZip,
            download.data,
            max_files=s.max_files,
            max_unpacked_bytes=s.max_unpacked_bytes,
            max_ratio=s.max_compression_ratio,
        )
        if archive.skipped:
            self.step(f"Leaving out {len(archive.skipped)} hidden file(s)")

        def loader(member: Any) -> Loader:
            return lambda: asyncio.to_thread(archive.read, member)

        files = [(m.path, loader(m)) for m in archive.members]
        return await self._deliver(plan, name, files)

    # -- git ----------------------------------------------------------------------------------

    async def _git(self, plan: Plan) -> dict[str, Any]:
        s = self.settings
        self.step(f"Checking {plan.host}")
        target = await self.policy.check(plan.source)
        folder, state = await self.project(plan.name, plan.source)
        repo = GitRepository(
            state.git_dir,
            git=s.git_command,
            timeout=s.git_timeout,
            max_bytes=s.max_repository_bytes,
            allow_http="http" in s.allowed_schemes,
            verify=s.check_certificates,
        )
        async with project_lock(state.folder + "#git"):
            self.step(f"Fetching the newest commit of {plan.source}")
            commit = await repo.update(target, plan.branch or None)
            self.step(f"Reading commit {commit[:10]}")
            tree, left_out = await repo.files(commit)
            kept = [f for f in tree if not _hidden(f.path)]
            left_out += [f.path for f in tree if _hidden(f.path)]
            if left_out:
                self.step(f"Leaving out {len(left_out)} hidden file(s), links or submodules")
            if len(kept) > s.max_files:
                raise TooLarge(
                    f"The repository holds {len(kept)} files, more than the {s.max_files} "
                    "allowed; nothing was written."
                )
            total = sum(f.size for f in kept)
            if total > s.max_repository_bytes:
                raise TooLarge(
                    f"The repository's files add up to {total} bytes, more than the "
                    f"{s.max_repository_bytes} allowed; nothing was written."
                )
            blobs = await repo.read_blobs([f.blob for f in kept])
            base_commit = await repo.delivered()
            base_blobs: dict[str, str] = {}
            if base_commit:
                base_blobs = {f.path: f.blob for f in (await repo.files(base_commit))[0]}
            new_by_path = {f.path: blobs[f.blob] for f in kept}

            async def merge(path: str, ours: bytes) -> bytes | None:
                if path not in base_blobs:
                    return None
                base = (await repo.read_blobs([base_blobs[path]]))[base_blobs[path]]
                merged = await repo.merge(ours, base, new_by_path[path])
                notebook = merged is not None and path.endswith(".ipynb")
                if notebook and not await asyncio.to_thread(_valid_notebook, merged):
                    return None
                return merged

            def loader(data: bytes) -> Loader:
                async def load() -> bytes:
                    return data

                return load

            files = [(f.path, loader(new_by_path[f.path])) for f in kept]
            return await self._deliver(
                plan, plan.name, files, merge, before_save=lambda: repo.mark_delivered(commit)
            )


def drive_link_token(fetch_url: str) -> str:
    """The token of a drive link's download URL (``…/s/<token>/download``)."""
    return fetch_url.rstrip("/").split("/")[-2]


def _valid_notebook(data: bytes) -> bool:
    """Whether `data` is a notebook nbformat reads without a validation error (JSON that is no
    object, such as `[]`, is none)."""
    invalid: dict[str, Any] = {}
    try:
        read_notebook(data.decode("utf-8"), capture_validation_error=invalid)
    except (ValueError, UnicodeError, AttributeError, nbformat.ValidationError):
        return False
    return not invalid


def refusal_event(error: OpenRefused | BadLink) -> dict[str, Any]:
    return {"event": "error", "status": error.status, "message": error.message}
