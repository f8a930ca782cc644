"""Landing fetched files in ``SWAN_projects/<name>/`` without ever destroying the user's edits.

This module owns the promise of a repeated click: a file the user changed is never overwritten;
the new version is merged in (git) or put beside it, and each decision is reported. A file is
replaced only in the version it was read in (the model's `etag`), and a file that was not there
is created only if it still is not (`if_none_match`), so a save the user makes while the
delivery runs wins too. It writes only through the contents manager (so POSIX and WebDAV
spaces behave alike) and keeps what it delivered in a small state file outside the space. It must
not fetch anything.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import posixpath
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jupyter_core.utils import ensure_async
from tornado.web import HTTPError

from swan_contents.errors import StorageHTTPError

Loader = Callable[[], Awaitable[bytes]]
Merger = Callable[[str, bytes], Awaitable[bytes | None]]
Emit = Callable[[dict[str, Any]], None]

_LOCKS: dict[str, asyncio.Lock] = {}
#: Why a file that was about to be replaced is kept after all: it was saved in between.
CHANGED_MEANWHILE = "it was saved while the new version was being written"
#: Why a file that was about to be created is kept: one of that name was saved in between.
CREATED_MEANWHILE = "a file of that name was saved while the new version was being written"
#: The words in the name of a new version put beside an edited file.
BESIDE_WORDS = "new version"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def beside_name(path: str, day: str, attempt: int = 1) -> str:
    """Where the new version of an edited file goes, in words a student reads:
    ``b.ipynb`` -> ``b (new version 2026-12-04).ipynb``; `attempt` 2, 3, … adds ``, 2``.
    """
    folder, name = posixpath.split(path)
    stem, ext = posixpath.splitext(name)
    if not stem:
        stem, ext = name, ""
    number = f", {attempt}" if attempt > 1 else ""
    return posixpath.join(folder, f"{stem} ({BESIDE_WORDS} {day}{number}){ext}")


def is_beside_name(path: str, name: str) -> bool:
    """Whether `name` (in the folder of `path`) is one of `beside_name(path, …)`."""
    stem, ext = posixpath.splitext(posixpath.basename(path))
    if not stem:
        stem, ext = posixpath.basename(path), ""
    return name.startswith(f"{stem} ({BESIDE_WORDS} ") and name.endswith(f"){ext}")


class ProjectState:
    """What was delivered last into one project folder; kept as JSON outside the user's space."""

    def __init__(self, state_dir: str, space: str, project: str) -> None:
        key = digest(f"{space}\0{project}".encode())[:24]
        self.folder = os.path.join(state_dir, key)
        self.file = os.path.join(self.folder, "state.json")
        self.git_dir = os.path.join(self.folder, "repository.git")
        self.source: str | None = None
        self.files: dict[str, str] = {}

    async def load(self) -> ProjectState:
        try:
            text = await asyncio.to_thread(_read_text, self.file)
        except (OSError, ValueError):
            return self
        try:
            saved = json.loads(text)
            self.source = saved.get("source")
            self.files = {str(k): str(v) for k, v in saved.get("files", {}).items()}
        except (ValueError, AttributeError):
            self.files = {}
        return self

    async def save(self, source: str, files: dict[str, str]) -> None:
        self.source, self.files = source, dict(files)
        text = json.dumps({"source": source, "files": files}, indent=1, sort_keys=True)
        await asyncio.to_thread(_write_text_atomically, self.file, text)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _write_text_atomically(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def project_lock(key: str) -> asyncio.Lock:
    """One delivery at a time per project folder (a double click must not interleave writes)."""
    return _LOCKS.setdefault(key, asyncio.Lock())


@dataclass(frozen=True)
class Stored:
    """A file as read from the user's space: its bytes and the storage's version of them (None
    where the contents manager gives no `etag`)."""

    data: bytes
    etag: str | None


@dataclass
class Outcome:
    """What happened to each file; `changes` are the events shown on the page."""

    changes: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, action: str, path: str, message: str = "", beside: str = "") -> dict[str, str]:
        self.counts[action] = self.counts.get(action, 0) + 1
        change = {"action": action, "path": path, "message": message}
        if beside:
            change["beside"] = beside
        self.changes.append(change)
        return change

    def summary(self) -> str:
        words = {
            "added": "added",
            "restored": "restored",
            "updated": "updated",
            "merged": "merged with your edits",
            "beside": "kept as you edited them, new version beside",
            "kept": "kept with your edits",
            "unchanged": "unchanged",
        }
        parts = [f"{n} {words.get(a, a)}" for a, n in self.counts.items() if n]
        return ", ".join(parts) if parts else "nothing to do"


class ProjectWriter:
    """Writes one project's files through ``contents_manager`` under ``project`` (a folder path)."""

    def __init__(self, contents_manager: Any, project: str, emit: Emit | None = None) -> None:
        self.cm = contents_manager
        self.project = project.strip("/")
        self.emit = emit or (lambda event: None)
        self._known_dirs: set[str] = set()

    def _path(self, relative: str) -> str:
        return posixpath.join(self.project, relative) if relative else self.project

    async def ensure_folder(self, path: str) -> None:
        """Create ``path`` and its parents (one level at a time, through the contents manager)."""
        if not path or path in self._known_dirs:
            return
        parent = posixpath.dirname(path)
        await self.ensure_folder(parent)
        if not await ensure_async(self.cm.dir_exists(path)):
            if await ensure_async(self.cm.file_exists(path)):
                raise HTTPError(409, f"/{path} is a file, so no folder can be made there.")
            await ensure_async(self.cm.save({"type": "directory"}, path))
        self._known_dirs.add(path)

    async def read(self, relative: str) -> Stored | None:
        path = self._path(relative)
        try:
            model = await ensure_async(
                self.cm.get(path, content=True, type="file", format="base64")
            )
        except HTTPError as e:
            if e.status_code == 404:
                return None
            raise
        return Stored(base64.b64decode(model["content"]), model.get("etag"))

    async def write(
        self, relative: str, data: bytes, etag: str | None = None, *, create: bool = False
    ) -> bool:
        """Write ``data``: with ``etag``, only over that version of the file; with ``create``,
        only if no file of that name exists. False when the file was changed, or created,
        meanwhile (nothing was written then)."""
        path = self._path(relative)
        await self.ensure_folder(posixpath.dirname(path))
        model = {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}
        if etag is not None:
            model["etag"] = etag
        elif create:
            model["if_none_match"] = "*"
        try:
            await ensure_async(self.cm.save(model, path))
        except StorageHTTPError as e:
            conditional = etag is not None or create
            if conditional and e.status_code == 409 and "etag" in e.fields:
                return False
            raise
        return True

    async def deliver(
        self,
        files: Sequence[tuple[str, Loader]],
        delivered: dict[str, str],
        merge: Merger | None = None,
    ) -> tuple[Outcome, dict[str, str]]:
        """Bring ``files`` (relative path, loader) in; ``delivered`` maps paths to the digests
        written last time. Returns what happened and the digests to remember now.
        """
        outcome = Outcome()
        remembered: dict[str, str] = {}
        await self.ensure_folder(self.project)
        for relative, load in files:
            new = await load()
            new_digest = digest(new)
            remembered[relative] = new_digest
            change = await self._deliver_one(relative, new, new_digest, delivered, merge, outcome)
            self.emit({"event": "file", **change})
        return outcome, remembered

    async def _deliver_one(
        self,
        relative: str,
        new: bytes,
        new_digest: str,
        delivered: dict[str, str],
        merge: Merger | None,
        outcome: Outcome,
    ) -> dict[str, str]:
        base_digest = delivered.get(relative)
        local = await self.read(relative)
        if local is None:
            if not await self.write(relative, new, create=True):
                return await self._beside(relative, new, new_digest, outcome, CREATED_MEANWHILE)
            if base_digest:
                return outcome.add("restored", relative, "was deleted here; fetched again")
            return outcome.add("added", relative)
        local_digest = digest(local.data)
        if local_digest == new_digest:
            return outcome.add("unchanged", relative)
        if base_digest == new_digest:
            return outcome.add("kept", relative, "your edits are kept (no new version upstream)")
        if base_digest == local_digest:
            if await self.write(relative, new, local.etag):
                return outcome.add("updated", relative, "new version (you had not changed it)")
            return await self._beside(relative, new, new_digest, outcome, CHANGED_MEANWHILE)
        if merge is not None and base_digest is not None:
            merged = await merge(relative, local.data)
            if merged is not None:
                if await self.write(relative, merged, local.etag):
                    message = "upstream changes merged into your edits"
                    return outcome.add("merged", relative, message)
                return await self._beside(relative, new, new_digest, outcome, CHANGED_MEANWHILE)
        return await self._beside(relative, new, new_digest, outcome)

    async def _beside(
        self, relative: str, new: bytes, new_digest: str, outcome: Outcome, why: str = ""
    ) -> dict[str, str]:
        """Keep the user's file and put the new version beside it (once per upstream version:
        a copy beside that holds it already is found again, whatever day it was made)."""
        kept = f"your edits are kept ({why})" if why else "your edits are kept"
        other = await self._beside_holding(relative, new, new_digest)
        day = datetime.now().strftime("%Y-%m-%d")
        attempt = 0
        while other is None and attempt < 99:
            attempt += 1
            candidate = beside_name(relative, day, attempt)
            if await self.write(candidate, new, create=True):
                other = candidate
            else:  # saved meanwhile under that name: it is the new version only if it holds it
                existing = await self.read(candidate)
                if existing is not None and digest(existing.data) == new_digest:
                    other = candidate
        if other is None:
            return outcome.add("kept", relative, f"{kept}; no free name for the new version")
        return outcome.add("beside", relative, f"{kept}; the new version is {other}", beside=other)

    async def _beside_holding(self, relative: str, new: bytes, new_digest: str) -> str | None:
        """The copy beside `relative` that holds `new` already, if one does (only copies of
        the same size are read)."""
        folder = posixpath.dirname(self._path(relative))
        try:
            listing = await ensure_async(self.cm.get(folder, content=True, type="directory"))
        except HTTPError as e:
            if e.status_code == 404:
                return None
            raise
        for entry in listing["content"]:
            if entry["type"] == "directory" or not is_beside_name(relative, entry["name"]):
                continue
            if entry.get("size") not in (None, len(new)):
                continue
            candidate = posixpath.join(posixpath.dirname(relative), entry["name"])
            existing = await self.read(candidate)
            if existing is not None and digest(existing.data) == new_digest:
                return candidate
        return None
