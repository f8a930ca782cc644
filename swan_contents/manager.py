"""`SwanContentsManager`: Jupyter's contents API on top of one async `Storage`.

It turns storage entries into Jupyter models (the same fields and statuses as jupyter_server's
stock manager) and applies Jupyter's policy (hidden files, notebook signing, hooks). It must not
touch files itself: every byte goes through `self.storage`, so the same code serves a POSIX mount
and a WebDAV storage.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import fnmatch
import functools
import getpass
import hashlib
import math
import mimetypes
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from json.encoder import encode_basestring_ascii
from typing import Any

import nbformat
from jupyter_core.paths import jupyter_data_dir
from jupyter_server.services.contents.manager import AsyncContentsManager, copy_pat
from nbformat.sign import NotebookNotary
from tornado.web import HTTPError
from traitlets import (
    Enum,
    Float,
    Instance,
    Int,
    TraitError,
    Type,
    Unicode,
    default,
    validate,
)

from . import notebook_json
from .checkpoints import SwanCheckpoints
from .errors import http_error, storage_errors
from .gc_pause import freeze_once, gc_paused
from .steps import in_steps
from .storage.base import (
    AlreadyExists,
    ChildRenderer,
    Conflict,
    Entry,
    IsADirectory,
    NotADirectory,
    NotFound,
    Storage,
    StorageError,
    TrashItem,
    join_path,
    kept_copy_name,
    normalize_path,
    split_path,
)
from .storage.posix import PosixStorage
from .trash import LocalTrash
from .trust import NotebookTrust
from .uploads import StreamedUpload, check_upload_target
from .versions import EosVersions, LocalVersions, ServerVersions, Version, VersionSource

#: Characters that Windows, and so the sync clients there, refuse in a file name.


#: Set (by the contents API's handler) while a `get` of a folder may answer its children as
#: `ChildrenJSON`, the JSON text of each, made straight from the storage's listing
#: (`Storage.listing`; in its thread on POSIX): no entry or model object per child, for a
#: listing of 100,000 entries.
CHILDREN_AS_JSON: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "children_as_json", default=False
)


class ChildrenJSON(list):
    """A folder's children as the JSON text of each one's model: what
    `json.dumps(child, default=json_default)` writes of the model `get` otherwise lists."""


#: JSON of an optional flag
_JSON_FLAGS = {None: "null", True: "true", False: "false"}


def _iso_times() -> Callable[[float], str]:
    """What writes a timestamp as `json_default` writes `_utc(timestamp)` (ISO 8601, "Z"), with
    the part down to the second remembered: the files of a folder often share their seconds.
    Microseconds rounded half to even, as `datetime.fromtimestamp` rounds them. One per
    listing (what it remembers is not shared between threads)."""
    seconds: dict[int, str] = {}

    def iso(timestamp: float) -> str:
        if not 0 <= timestamp < 253402300799:  # before 1970, or past what a datetime holds
            return _utc(timestamp).isoformat().replace("+00:00", "Z")
        fraction, whole = math.modf(timestamp)
        micro = round(fraction * 1e6)
        second = int(whole)
        if micro >= 1000000:
            second, micro = second + 1, micro - 1000000
        text = seconds.get(second)
        if text is None:
            text = seconds[second] = _utc(second).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{text}.{micro:06d}Z" if micro else f"{text}Z"

    return iso


def _utc(timestamp: float) -> datetime:
    try:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return datetime(1970, 1, 1, tzinfo=timezone.utc)


@functools.lru_cache(maxsize=4096)
def _mimetype_of_suffixes(suffixes: str) -> str | None:
    return mimetypes.guess_type(f"x{suffixes}")[0]


def mimetype_of(name: str) -> str | None:
    """What `mimetypes.guess_type(name)` says, remembered per ending: a listing asks it for
    every file, and the answer depends only on the last two suffixes (`.csv`, `.tar.gz`)."""
    last = name.rfind(".")
    if last <= 0:
        return None
    before = name.rfind(".", 0, last)
    return _mimetype_of_suffixes(name[before:] if before > 0 else name[last:])


class SwanContentsManager(AsyncContentsManager):
    """Serve a user's storage space (POSIX mount or WebDAV) through Jupyter's contents API."""

    root_dir = Unicode(
        config=True,
        help="""The user's storage space on this machine's file system (a local folder or a
        FUSE mount such as EOS). Defaults to the server's root_dir.""",
    )

    @default("root_dir")
    def _default_root_dir(self) -> str:
        if self.parent is not None and getattr(self.parent, "root_dir", None):
            return self.parent.root_dir
        return os.getcwd()

    @validate("root_dir")
    def _validate_root_dir(self, proposal: dict[str, Any]) -> str:
        value = os.path.abspath(proposal["value"])
        if not os.path.isdir(value):
            raise TraitError(
                f"The storage space {value} does not exist or is not a folder; "
                "create it, mount the storage there, or point root_dir elsewhere."
            )
        return value

    versions_dir = Unicode(
        config=True,
        help="""A folder outside the synced space where versions (Jupyter's checkpoints) are
        kept, so that they never sync to the user's other devices. Created when missing.
        Defaults to a folder per space under Jupyter's data directory.""",
    )

    versions_max_count = Int(
        50,
        config=True,
        help="""How many versions of a file the versions folder keeps at the most; the oldest go
        first. A version is made on each save that changes the content (on storages that keep
        no versions of their own) and on each explicit checkpoint.""",
    )

    versions_max_age_days = Float(
        30.0,
        config=True,
        help="""Versions older than this many days are dropped when a newer one is made; the
        newest version of a file is always kept.""",
    )

    @default("versions_dir")
    def _default_versions_dir(self) -> str:
        key = hashlib.sha256(self.root_dir.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return os.path.join(jupyter_data_dir(), "swan", "versions", key)

    trash_dir = Unicode(
        config=True,
        help="""A folder outside the synced space where deleted files and folders of a POSIX
        storage go, to be restored from /swan/api/trash. Defaults to `trash` inside
        versions_dir. (WebDAV storages use the server's own trash bin, where it has one.)""",
    )

    @default("trash_dir")
    def _default_trash_dir(self) -> str:
        return os.path.join(self.versions_dir, "trash")

    trash_max_age_days = Float(
        30.0,
        config=True,
        help="""Deleted entries older than this many days are removed from the trash for good
        (checked whenever something is deleted).""",
    )

    storage_class = Type(
        PosixStorage,
        klass=Storage,
        config=True,
        help="""The storage driver of the user's space: PosixStorage (a local folder or FUSE
        mount at root_dir) or swan_contents.storage.WebDAVStorage (configured with
        c.WebDAVStorage.url and credentials).""",
    )

    storage = Instance(
        Storage,
        help="""The storage driver of the user's space, made from storage_class.""",
    )

    @default("storage")
    def _default_storage(self) -> Storage:
        try:
            if issubclass(self.storage_class, PosixStorage):
                journal = os.path.join(self.versions_dir, "temp-folders")
                return self.storage_class(self.root_dir, journal=journal)
            return self.storage_class(parent=self, log=self.log)
        except (StorageError, TraitError) as e:
            raise TraitError(f"The storage cannot be used as configured: {e}") from e

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # made now, so that a storage configured wrongly stops the server at start with its
        # reason, not at the first request
        self.storage  # noqa: B018
        self._uploading = set()
        self.trust = NotebookTrust(lambda: NotebookNotary(parent=self), self.log)
        self.notary = self.trust.notary

    temp_sweep_interval = Float(
        3600.0,
        config=True,
        help="""Seconds between two sweeps for what interrupted operations left in the storage:
        hidden temp files of saves killed half way and spools of abandoned uploads, deleted
        once untouched for 6 hours (never one in use). The first sweep runs when the server
        serves its first contents request; 0 sweeps only then.""",
    )

    hash_algorithm = Enum(
        sorted(hashlib.algorithms_available),
        default_value="sha256",
        config=True,
        help="The hash algorithm of the `hash` field, when a client asks for it.",
    )

    user_name = Unicode(
        config=True,
        help="""The user's name as it appears in conflict copies
        (`name (<user_name>'s copy, conflict <YYYY-MM-DD HH.MM>).ipynb`). Defaults to
        JUPYTERHUB_USER, else the name of the system user running the server.""",
    )

    @default("user_name")
    def _default_user_name(self) -> str:
        return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()

    @default("files_handler_params")
    def _default_files_handler_params(self) -> dict[str, Any]:
        # /files/ is served through get() (jupyter_server's FilesHandler); its static-file base
        # class still wants a path, which it never reads for our requests.
        return {"path": self.root_dir}

    @default("checkpoints_class")
    def _default_checkpoints_class(self) -> type:
        return SwanCheckpoints

    # -- paths and policy ---------------------------------------------------------------------

    def storage_path(self, path: str) -> str:
        """The storage path for an API path; 400 for `..`, `.` or NUL."""
        with storage_errors():
            return normalize_path(path or "")

    def local_path(self, path: str) -> str | None:
        """The OS path of an API path where the storage is a mounted folder, else None."""
        local = self.storage.local_folder()
        return os.path.join(local.root, self.storage_path(path)) if local else None

    def _hidden(self, path: str) -> bool:
        return any(part.startswith(".") for part in path.split("/") if part)

    _hidden_by_globs: tuple[tuple[str, ...], re.Pattern] | None = None

    def _hide_pattern(self) -> re.Pattern:
        """hide_globs as one regular expression, compiled again only when they change."""
        globs = tuple(self.hide_globs)
        if self._hidden_by_globs is None or self._hidden_by_globs[0] != globs:
            pattern = "|".join(fnmatch.translate(g) for g in globs) or "(?!)"
            self._hidden_by_globs = (globs, re.compile(pattern))
        return self._hidden_by_globs[1]

    def should_list(self, name: str) -> bool:
        """As jupyter_server's (hide_globs), with the globs compiled once, not per entry."""
        return self._hide_pattern().match(name) is None

    def _unlisted_names(self) -> Callable[[str], Any]:
        """What says a name is not listed in a folder (a match, else None): hidden (unless
        allowed) or matched by hide_globs. Made once per listing, one regular expression."""
        globs = self._hide_pattern()
        if self.allow_hidden:
            return globs.match
        return re.compile(rf"\.|(?:{globs.pattern})").match

    def _refuse_hidden(self, path: str) -> None:
        if not self.allow_hidden and self._hidden(path):
            raise HTTPError(404, f"No such file or folder: /{path}")

    # -- sweeping leftovers -------------------------------------------------------------------

    _sweeping = False

    def _start_sweeping(self) -> None:
        """Sweep the storage's leftovers now and every temp_sweep_interval (once per manager,
        on the loop that serves it). The server has started by then: its objects are frozen
        out of the garbage collector's work (`freeze_once`)."""
        if self._sweeping:
            return
        self._sweeping = True
        freeze_once()
        loop = asyncio.get_running_loop()
        loop.call_soon(self._sweep_now, loop)

    def _sweep_now(self, loop: asyncio.AbstractEventLoop) -> None:
        # a worker thread's future, not a task: a server stopped meanwhile just drops it
        sweeping = loop.run_in_executor(None, self.storage.sweep_leftovers)
        sweeping.add_done_callback(functools.partial(self._swept, loop))

    def _swept(self, loop: asyncio.AbstractEventLoop, sweeping: asyncio.Future) -> None:
        error = None if sweeping.cancelled() else sweeping.exception()
        if isinstance(error, (StorageError, OSError)):
            self.log.warning("Could not sweep the storage for leftovers: %s", error)
        elif error is not None:
            self.log.error("Sweeping the storage for leftovers failed", exc_info=error)
        elif not sweeping.cancelled() and sweeping.result():
            self.log.info("Deleted %d leftovers of interrupted saves", sweeping.result())
        if self.temp_sweep_interval > 0 and not loop.is_closed():
            loop.call_later(self.temp_sweep_interval, self._sweep_now, loop)

    # -- models -------------------------------------------------------------------------------

    def _model(self, entry: Entry, type: str | None = None) -> dict[str, Any]:
        """The model (without content) of an entry; `type` forces notebook/file for files."""
        name = entry.name
        kind = entry.kind
        if kind == "directory":
            pass
        elif type in ("notebook", "file"):
            kind = type
        else:
            kind = "notebook" if name.endswith(".ipynb") else "file"
        mtime = entry.mtime
        modified = _utc(mtime)
        return {
            "name": name,
            "path": entry.path,
            "type": kind,
            "last_modified": modified,
            "created": modified if entry.ctime == mtime else _utc(entry.ctime),
            "content": None,
            "format": None,
            "mimetype": mimetype_of(name) if kind == "file" else None,
            "size": None if kind == "directory" else entry.size,
            "writable": entry.writable,
            "hash": None,
            "hash_algorithm": None,
            "etag": entry.etag or None,
            "shareable": entry.shareable,
        }

    def _hash(self, data: bytes) -> dict[str, str]:
        digest = hashlib.new(self.hash_algorithm, data).hexdigest()
        return {"hash": digest, "hash_algorithm": self.hash_algorithm}

    def check_and_sign(self, nb: Any, path: str = "") -> None:
        """The stock call, for callers other than this manager: in the notary's thread."""
        self.trust.run(super().check_and_sign, nb, path).result()

    def mark_trusted_cells(self, nb: Any, path: str = "") -> None:
        """The stock call, for callers other than this manager: in the notary's thread."""
        self.trust.run(super().mark_trusted_cells, nb, path).result()

    async def trust_notebook(self, path: str) -> None:
        """Trust the notebook at ``path`` explicitly (Jupyter's "Trust Notebook")."""
        model = await self.get(path)
        nb = model["content"]
        self.log.warning("Trusting notebook %s", path)
        self.notary.mark_cells(nb, True)
        await self.trust.sign(nb, path)

    async def _notebook_content(self, model: dict[str, Any], data: bytes) -> None:
        path = model["path"]
        validation_error: dict[str, Any] = {}
        try:
            text = data.decode("utf-8")
            nb = await asyncio.to_thread(notebook_json.read_notebook, text, validation_error)
        except Exception as e:
            raise HTTPError(400, f"Unreadable Notebook: /{path} {e!r}") from e
        self.notary.mark_cells(nb, await self.trust.is_trusted(nb, path))
        model["content"] = nb
        model["format"] = "json"
        self.validate_notebook_model(model, validation_error)

    def _file_content(self, model: dict[str, Any], data: bytes, format: str | None) -> None:
        if format in (None, "text"):
            try:
                model["content"] = data.decode("utf-8")
                model["format"] = "text"
            except UnicodeError as e:
                if format == "text":
                    raise HTTPError(
                        400, f"/{model['path']} is not UTF-8 encoded", reason="bad format"
                    ) from e
        if model["format"] is None:
            model["content"] = base64.encodebytes(data).decode("ascii")
            model["format"] = "base64"
        if model["mimetype"] is None:
            model["mimetype"] = (
                "text/plain" if model["format"] == "text" else ("application/octet-stream")
            )

    # -- the ContentsManager API --------------------------------------------------------------

    async def dir_exists(self, path: str) -> bool:
        entry = await self._stat_or_none(path)
        return entry is not None and entry.is_dir

    async def file_exists(self, path: str) -> bool:
        entry = await self._stat_or_none(path)
        return entry is not None and not entry.is_dir

    async def exists(self, path: str) -> bool:
        return await self._stat_or_none(path) is not None

    async def _stat_or_none(self, path: str) -> Entry | None:
        path = self.storage_path(path)
        try:
            return await self.storage.stat(path)
        except (NotFound, NotADirectory):
            return None
        except StorageError as e:
            raise http_error(e) from e

    async def is_hidden(self, path: str) -> bool:
        return self._hidden(self.storage_path(path))

    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> dict[str, Any]:
        """One storage round trip for a directory listing or a typed file read, two otherwise.

        A `hash` without content comes from the checksum the storage keeps of the file where it
        keeps one in `hash_algorithm` (one stat, no read), else from reading the file.
        """
        self._start_sweeping()
        path = self.storage_path(path)
        self._refuse_hidden(path)
        data: bytes | None = None
        listed: list[str] | None = None
        stored_hash_first = require_hash and not content and await self._storage_has_checksums()
        with storage_errors():
            if type in ("file", "notebook") and (content or require_hash) and not stored_hash_first:
                try:
                    entry, data = await self.storage.read(path)
                except IsADirectory:
                    raise HTTPError(
                        400, f"{path} is a directory, not a {type}", reason="bad type"
                    ) from None
            elif content and CHILDREN_AS_JSON.get():
                entry, listed = await self.storage.listing(path, self._child_json())
            else:
                entry = await self.storage.stat(path, children=content)
        if entry.is_dir:
            if type not in (None, "directory"):
                raise HTTPError(400, f"{path} is a directory, not a {type}", reason="bad type")
            model = self._model(entry)
            if content:
                model["content"] = (
                    ChildrenJSON(listed) if listed is not None else await self._child_models(entry)
                )
                model["format"] = "json"
        else:
            if type == "directory":
                raise HTTPError(400, f"{path} is not a directory", reason="bad type")
            model = self._model(entry, type)
            stored_hash = entry.checksum(self.hash_algorithm) if data is None else None
            if data is None and (content or (require_hash and stored_hash is None)):
                with storage_errors():
                    entry, data = await self.storage.read(path, stated=entry)
                model = self._model(entry, type)
            if content:
                if model["type"] == "notebook":
                    await self._notebook_content(model, data)
                else:
                    self._file_content(model, data, format)
            if require_hash and data is not None:
                model.update(self._hash(data))
            elif require_hash:
                model.update({"hash": stored_hash, "hash_algorithm": self.hash_algorithm})
        self.emit(data={"action": "get", "path": path})
        return model

    def _child_json(self) -> ChildRenderer:
        """What renders a child as `_model` makes it, in JSON, or None for a name not listed
        (`_unlisted_names`). Called from the storage's thread: it reads nothing that changes."""
        unlisted = self._unlisted_names()
        text = encode_basestring_ascii
        iso = _iso_times()

        def render(name, path, is_dir, size, mtime, ctime, etag, writable, shareable):  # noqa: ANN001, ANN202
            if unlisted(name) is not None:
                return None
            if is_dir:
                kind, mimetype, size = "directory", None, None
            elif name.endswith(".ipynb"):
                kind, mimetype = "notebook", None
            else:
                kind, mimetype = "file", mimetype_of(name)
            size_text = "null" if size is None else repr(size)
            modified = iso(mtime)
            created = modified if ctime == mtime else iso(ctime)
            return (
                f'{{"name": {text(name)}, "path": {text(path)}, "type": "{kind}", '
                f'"last_modified": "{modified}", "created": "{created}", "content": null, '
                f'"format": null, "mimetype": {"null" if mimetype is None else text(mimetype)}, '
                f'"size": {size_text}, '
                f'"writable": {"true" if writable else "false"}, "hash": null, '
                f'"hash_algorithm": null, "etag": {text(etag) if etag else "null"}, '
                f'"shareable": {_JSON_FLAGS[shareable]}}}'
            )

        return render

    async def _child_models(self, entry: Entry) -> list[dict[str, Any]]:
        """The models of a folder's listed children, made in steps (`in_steps`)."""
        unlisted = self._unlisted_names()
        model = self._model
        models: list[dict[str, Any]] = []
        async for children in in_steps(entry.children or ()):
            with gc_paused():
                models += [model(child) for child in children if unlisted(child.name) is None]
        return models

    async def _storage_has_checksums(self) -> bool:
        """Whether the storage reports checksums of its files (ownCloud, oCIS, CERNBox)."""
        with storage_errors():
            return await self.storage.reports_checksums()

    def _decode_file(self, model: dict[str, Any], path: str) -> bytes:
        format = model.get("format")
        if format not in ("text", "base64"):
            raise HTTPError(400, "Must specify format of file contents as 'text' or 'base64'")
        try:
            if format == "text":
                return model["content"].encode("utf-8")
            # straight from the str: no ASCII copy of a 1.4 MB part first
            return binascii.a2b_base64(model["content"])
        except Exception as e:
            raise HTTPError(400, f"Encoding error saving /{path}: {e}") from e

    async def _encode_notebook(
        self, model: dict[str, Any], path: str
    ) -> tuple[bytes, dict, asyncio.Future]:
        """The notebook's bytes as nbformat writes them (`notebook_json`), its validation error,
        and the storing of its signature in the trust database, which runs meanwhile (await it
        after the write)."""
        validation_error: dict[str, Any] = {}
        try:
            nb = nbformat.from_dict(model["content"])
            signing = self.trust.remember(await self.trust.signature(nb, path), path)
            data = await asyncio.to_thread(notebook_json.notebook_bytes, nb, validation_error)
        except Exception as e:
            raise HTTPError(400, f"Unreadable Notebook content for /{path}: {e!r}") from e
        return data, validation_error, signing

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        """Write a model atomically and return its model without content.

        A save whose model names the `etag` it was based on happens only if the storage still
        holds that version; otherwise it is a 409 carrying the current etag, or, with
        `on_conflict: "copy"`, the content goes to a conflict copy beside the file and its model
        is returned. Without `etag` the last writer wins, as with the stock manager.

        A save with `if_none_match: "*"` creates the file only if nothing of that name exists
        (checked and written in one step where the storage allows); else it is a 409 carrying
        the etag of the file found there, or a conflict copy with `on_conflict: "copy"`.

        A `chunk` field (1..n, -1) is one part of an upload: parts are gathered beside the target
        and published at once by the last one, so a file never exists half-uploaded.
        """
        self._start_sweeping()
        path = self.storage_path(path)
        base_etag, create_only = self._save_condition(model)
        on_conflict = model.get("on_conflict", "fail")
        if on_conflict not in ("fail", "copy"):
            raise HTTPError(400, f'Invalid on_conflict {on_conflict!r}: use "fail" or "copy"')
        chunk = model.get("chunk")
        if chunk is not None:
            if on_conflict == "copy":
                raise HTTPError(
                    400,
                    "An upload in parts cannot go to a conflict copy; send the last part "
                    "again after a 409, with the new etag or none",
                )
            return await self._save_chunk(model, path, chunk, base_etag, create_only)

        self.run_pre_save_hooks(model=model, path=path)
        if "type" not in model:
            raise HTTPError(400, "No file type provided")
        kind = model["type"]
        if "content" not in model and kind != "directory":
            raise HTTPError(400, "No file content provided")
        if not path:
            raise HTTPError(400, "Cannot replace the root folder of the space")

        validation_error: dict[str, Any] = {}
        with storage_errors():
            if kind == "notebook":
                data, validation_error, signing = await self._encode_notebook(model, path)
                try:
                    entry = await self._write(path, data, base_etag, create_only, on_conflict)
                finally:
                    await signing
                await self.record_version_later(entry.path, data)
            elif kind == "file":
                data = self._decode_file(model, path)
                entry = await self._write(path, data, base_etag, create_only, on_conflict)
                await self.record_version_later(entry.path, data)
            elif kind == "directory":
                if create_only:
                    raise HTTPError(400, "if_none_match applies to files, not to folders")
                entry = await self._save_directory(path)
            else:
                raise HTTPError(400, f"Unhandled contents type: {kind}")

        saved = self._model(entry, kind if kind != "directory" else None)
        if kind == "notebook":
            self.validate_notebook_model(saved, validation_error=validation_error)
        self.run_post_save_hooks(model=saved, os_path=self.local_path(entry.path))
        self.emit(data={"action": "save", "path": entry.path})
        return saved

    async def start_upload(
        self, path: str, size: int, *, if_match: str | None = None, create_only: bool = False
    ) -> StreamedUpload:
        """A streamed upload of `size` bytes to `path` (`StreamedUpload`), after the checks a
        save of it would fail (hidden or invalid path, a folder there, a read-only file or
        folder, the condition): none of the body has to arrive for a refusal.

        One upload per path at a time: a second one while the first is under way is a 409
        (both would gather their parts in the same place)."""
        self._start_sweeping()
        path = self.storage_path(path)
        if not self.allow_hidden and self._hidden(path):
            raise HTTPError(400, f"Cannot create file or directory {path!r}")
        self._save_condition({"etag": if_match, "if_none_match": "*" if create_only else None})
        self._refuse_while_uploading(path)
        self._uploading.add(path)
        try:
            existed = await check_upload_target(self, path, if_match, create_only)
            name = split_path(path)[1]
            model = {"type": "file", "format": "base64", "name": name, "path": path}
            self.run_pre_save_hooks(model=model, path=path)
        except BaseException:
            self._uploading.discard(path)
            raise
        return StreamedUpload(
            self,
            path,
            size,
            existed=existed,
            if_match=if_match,
            create_only=create_only,
            done=self._uploading.discard,
        )

    #: paths with a streamed upload under way
    _uploading: set[str]

    def _refuse_while_uploading(self, path: str) -> None:
        """A 409 for a write in parts to a path that a streamed upload is writing: both gather
        their parts in the same place (the storage's spool of that path)."""
        if path in self._uploading:
            raise HTTPError(
                409,
                f"/{path} is being uploaded by another request; try again when it has finished",
            )

    @staticmethod
    def _save_condition(model: dict[str, Any]) -> tuple[str | None, bool]:
        """What a save is conditional on: the version it is based on (the model's `etag`), or
        that no file is there yet (`if_none_match: "*"`), or nothing."""
        base_etag = model.get("etag")
        if base_etag is not None and (not isinstance(base_etag, str) or not base_etag):
            raise HTTPError(400, "The etag of a save must be the non-empty string of a model")
        if_none_match = model.get("if_none_match")
        if if_none_match is not None and if_none_match != "*":
            raise HTTPError(
                400, 'if_none_match must be "*" (save only if no file of that name exists)'
            )
        if if_none_match is not None and base_etag is not None:
            raise HTTPError(
                400,
                "A save either replaces the version it names (etag) or creates a new file "
                "(if_none_match), not both",
            )
        return base_etag, if_none_match is not None

    async def _write(
        self, path: str, data: bytes, base_etag: str | None, create_only: bool, on_conflict: str
    ) -> Entry:
        try:
            return await self.storage.write(path, data, if_match=base_etag, create_only=create_only)
        except Conflict as e:
            if on_conflict != "copy" or not e.copy_beside:
                raise
        except AlreadyExists as e:
            if on_conflict != "copy" or e.current_etag is None or not e.copy_beside:
                raise
        return await self._write_conflict_copy(path, data)

    def conflict_name(self, name: str, attempt: int = 1) -> str:
        """The name of a conflict copy of `name` made now by this user (`kept_copy_name`)."""
        return kept_copy_name(name, f"{self.user_name}'s copy", attempt)

    async def _write_conflict_copy(self, path: str, data: bytes) -> Entry:
        parent, name = split_path(path)
        for attempt in range(1, 100):
            candidate = join_path(parent, self.conflict_name(name, attempt))
            if not await self.storage.exists(candidate):
                return await self.storage.write(candidate, data)
        raise HTTPError(409, f"Too many conflict copies of /{path} this second; try again")

    # -- versions (Jupyter's checkpoints are these) -------------------------------------------

    _local_versions: LocalVersions | None = None

    @property
    def local_versions(self) -> LocalVersions:
        """Snapshots in versions_dir, outside the synced space."""
        if self._local_versions is None:
            os.makedirs(self.versions_dir, mode=0o700, exist_ok=True)
            self._local_versions = LocalVersions(
                PosixStorage(self.versions_dir, durable=False),
                max_count=self.versions_max_count,
                max_age=self.versions_max_age_days * 86400,
            )
        return self._local_versions

    async def storage_keeps_versions(self) -> bool:
        """Whether the storage makes versions of each write itself (Nextcloud, ownCloud)."""
        return await self.storage.versions() is not None

    async def version_sources(self) -> list[VersionSource]:
        sources: list[VersionSource] = [self.local_versions]
        history = await self.storage.versions()
        if history is not None:
            sources.append(ServerVersions(self.storage, history))
        if self.storage.versions_beside_files:
            sources.append(EosVersions(self.storage))
        return sources

    async def list_versions(self, path: str, *, current: bool = False) -> list[Version]:
        """Every version of the file at `path` from every source, newest first; with
        `current`, where the storage keeps versions itself, its current content before them
        (Jupyter's checkpoints, see `SwanCheckpoints`), from the same stat."""
        path = self.storage_path(path)
        self._refuse_hidden(path)
        found: list[Version] = []
        with storage_errors():
            entry = await self.storage.stat(path)
            if entry.is_dir:
                raise HTTPError(400, f"/{path} is a folder; folders have no versions")
            for source in await self.version_sources():
                found += await source.list(path)
            now = current and await self.storage_keeps_versions()
        found.sort(key=lambda v: (v.mtime, v.id), reverse=True)
        return [ServerVersions.current_of(entry), *found] if now else found

    async def current_version(self, path: str) -> Version | None:
        """The current content of the file at `path` as a version, where the storage keeps
        versions itself (`ServerVersions.current`); None elsewhere."""
        history = await self.storage.versions()
        if history is None:
            return None
        return await ServerVersions(self.storage, history).current(path)

    async def _source_of(self, version_id: str) -> VersionSource:
        for source in await self.version_sources():
            if source.owns(version_id):
                return source
        raise HTTPError(404, f"No such version: {version_id}")

    async def record_version(self, path: str, data: bytes) -> Version | None:
        """Keep `data` as a version of `path` where the storage keeps none itself; a failure
        is logged, never raised: it must not fail the save that asked for it."""
        try:
            if await self.storage_keeps_versions():
                return None
            return await self.local_versions.record(path, data)
        except (StorageError, OSError) as e:
            self.log.warning("Could not keep a version of /%s: %s", path, e)
            return None

    async def record_version_later(self, path: str, data: bytes) -> None:
        """As `record_version`, written after the save has answered (LocalVersions.record_later)."""
        try:
            if await self.storage_keeps_versions():
                return
        except StorageError as e:
            self.log.warning("Could not keep a version of /%s: %s", path, e)
            return
        self.local_versions.record_later(path, data, self.log)

    async def read_version(self, path: str, version_id: str) -> bytes:
        """The content of the version `version_id` of the file at `path`."""
        path = self.storage_path(path)
        self._refuse_hidden(path)
        source = await self._source_of(version_id)
        with storage_errors():
            try:
                return await source.read(path, version_id)
            except NotFound as e:
                if e.path == path:
                    raise
                raise self._no_such_version(path, version_id, e) from e

    @staticmethod
    def _no_such_version(path: str, version_id: str, e: NotFound) -> HTTPError:
        why = f" ({e.detail})" if e.detail else ""
        return HTTPError(404, f"No such version of /{path}: {version_id}{why}")

    async def restore_version(self, path: str, version_id: str) -> dict[str, Any]:
        """Make the version `version_id` the current content of `path` and return its model.

        The content it replaces is kept as a version first, and the replacement is conditional
        on it: a file changed meanwhile is a 409, not an overwrite.
        """
        path = self.storage_path(path)
        self._refuse_hidden(path)
        source = await self._source_of(version_id)
        with storage_errors():
            try:
                if isinstance(source, ServerVersions):
                    await source.restore(path, version_id)
                    entry = await self.storage.stat(path)
                else:
                    data = await source.read(path, version_id)
                    current, current_data = await self.storage.read(path)
                    await self.record_version(path, current_data)
                    entry = await self.storage.write(path, data, if_match=current.etag or None)
                    await self.record_version(path, data)
            except NotFound as e:
                if e.path == path:
                    raise
                raise self._no_such_version(path, version_id, e) from e
        self.emit(data={"action": "save", "path": path})
        return self._model(entry)

    async def _save_directory(self, path: str) -> Entry:
        if not self.allow_hidden and self._hidden(path):
            raise HTTPError(400, f"Cannot create hidden directory /{path}")
        try:
            entry = await self.storage.stat(path)
        except NotFound:
            return await self.storage.mkdir(path)
        if not entry.is_dir:
            raise HTTPError(400, f"Not a directory: /{path}")
        return entry

    async def _save_chunk(
        self,
        model: dict[str, Any],
        path: str,
        chunk: Any,
        base_etag: str | None,
        create_only: bool,
    ) -> dict[str, Any]:
        """One part of an upload; the last part publishes the file, only if the storage still
        holds `base_etag` where one is given, or holds no file there with `create_only` (a 409
        keeps the earlier parts)."""
        if not isinstance(chunk, int) or isinstance(chunk, bool) or (chunk < 1 and chunk != -1):
            raise HTTPError(400, f"Invalid chunk number {chunk!r}: use 1, 2, … and -1 for the last")
        self._refuse_while_uploading(path)
        if chunk == 1:
            self.run_pre_save_hooks(model=model, path=path)
        if "type" not in model:
            raise HTTPError(400, "No file type provided")
        if model["type"] != "file":
            raise HTTPError(
                400, f'File type "{model["type"]}" is not supported for large file transfer'
            )
        if "content" not in model:
            raise HTTPError(400, "No file content provided")
        data = self._decode_file(model, path)
        with storage_errors():
            entry = await self.storage.write_chunk(
                path, chunk, data, if_match=base_etag, create_only=create_only
            )
        saved = self._model(entry, "file")
        if chunk == -1:
            self.run_post_save_hooks(model=saved, os_path=self.local_path(path))
        self.emit(data={"action": "save", "path": path})
        return saved

    async def delete_file(self, path: str) -> None:
        """Move a file or folder to the trash: the local trash area on POSIX, the server's
        trash bin on WebDAV (a plain WebDAV server without one deletes for good)."""
        path = self.storage_path(path)
        if not self.allow_hidden and self._hidden(path):
            raise HTTPError(400, f"Cannot delete file or directory /{path}")
        if not path:
            raise HTTPError(400, "Can't delete root")
        with storage_errors():
            if self.local_trash is not None:
                await self.local_trash.put(path, await self.storage.stat(path))
            else:
                await self.storage.delete(path, recursive=True)

    # -- trash --------------------------------------------------------------------------------

    _local_trash: LocalTrash | None = None

    @property
    def local_trash(self) -> LocalTrash | None:
        """The trash area of a POSIX storage; None for storages with a trash of their own."""
        local = self.storage.local_folder()
        if self._local_trash is None and local is not None:
            self._local_trash = LocalTrash(
                local,
                self.trash_dir,
                max_age=self.trash_max_age_days * 86400,
                versions=self.local_versions,
                log=self.log,
            )
        return self._local_trash

    async def has_trash(self) -> bool:
        """Whether a delete goes to a trash the user can restore from (the local trash area,
        or the storage's own trash bin), rather than deleting for good."""
        if self.local_trash is not None:
            return True
        with storage_errors():
            return await self.storage.trash_bin() is not None

    async def list_trash(self) -> dict[str, Any]:
        """`{"supported": bool, "items": [TrashItem, ...]}`, newest first."""
        items: list[TrashItem] = []
        with storage_errors():
            if self.local_trash is not None:
                items = await self.local_trash.list()
            elif (trash := await self.storage.trash_bin()) is not None:
                items = await trash.list_trash()
            else:
                return {"supported": False, "items": []}
        return {"supported": True, "items": sorted(items, key=lambda i: -i.deleted)}

    async def restore_from_trash(self, item_id: str, path: str | None = None) -> dict[str, Any]:
        """Put a deleted entry back where it was (or at `path`) and return its model; 409 if
        something of that name is there now."""
        target = None if path is None else self.storage_path(path)
        with storage_errors():
            if self.local_trash is not None:
                entry = await self.local_trash.restore(item_id, target)
            elif (trash := await self.storage.trash_bin()) is not None:
                entry = await trash.restore_trash(item_id, target)
            else:
                raise HTTPError(404, "This storage has no trash: deleted files are gone")
        self._refuse_hidden(entry.path)
        return self._model(entry)

    async def rename_file(self, old_path: str, new_path: str) -> None:
        old = self.storage_path(old_path)
        new = self.storage_path(new_path)
        if old == new:
            return
        if not self.allow_hidden and (self._hidden(old) or self._hidden(new)):
            raise HTTPError(400, f"Cannot rename file or directory /{old}")
        if not old or not new:
            raise HTTPError(400, "The root folder of the space cannot be renamed or replaced")
        with storage_errors():
            await self.storage.move(old, new)

    async def copy(self, from_path: str, to_path: str | None = None) -> dict[str, Any]:
        """Copy a file or folder inside the storage (no bytes pass through this server).

        As in Jupyter: into a folder, the copy is named `name-Copy1.ext`, `name-Copy2.ext`, …
        Unlike the stock manager, an existing file is never overwritten (409).
        """
        src = self.storage_path(from_path)
        if not src:
            raise HTTPError(400, "The root folder of the space cannot be copied")
        from_dir, from_name = split_path(src)
        with storage_errors():
            source = await self.storage.stat(src)
        destination = from_dir if to_path is None else self.storage_path(to_path)
        if await self.dir_exists(destination):
            name = copy_pat.sub(".", from_name)
            to_name = await self.increment_filename(name, destination, insert="-Copy")
            dst = join_path(destination, to_name)
        elif source.is_dir:
            # as jupyter_server copies a folder: into the folder named, made where missing
            await self._make_folders(destination)
            dst = join_path(destination, copy_pat.sub(".", from_name))
        else:
            parent = split_path(destination)[0]
            if not await self.dir_exists(parent):
                raise HTTPError(404, f"No such parent directory: {parent} to copy file in")
            dst = destination
        with storage_errors():
            entry = await self.storage.copy(src, dst)
        self.emit(data={"action": "copy", "path": dst, "source_path": src})
        return self._model(entry)

    async def _make_folders(self, path: str) -> None:
        """Create the folder ``path`` and each missing folder above it."""
        missing: list[str] = []
        while path and not await self.dir_exists(path):
            missing.append(path)
            path = split_path(path)[0]
        with storage_errors():
            for folder in reversed(missing):
                await self.storage.mkdir(folder)

    async def get_kernel_path(self, path: str, model: dict | None = None) -> str:
        """Kernels start in the notebook's folder (the folder itself for a folder)."""
        path = self.storage_path(path)
        if await self.dir_exists(path):
            return path
        return split_path(path)[0]

    def info_string(self) -> str:
        where = self.storage.location or self.root_dir
        return f"Serving notebooks from the {self.storage.kind} storage at {where}"
