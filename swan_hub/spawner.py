"""Spawners that give each user a Jupyter server whose files are their storage space.

This module owns the SWAN behaviour shared by every spawner (where the space and the versions area
live, which contents manager serves them, the spawn form's choice, storage credentials, spawn
progress) and the local-process spawner for laptops and tests. It must not know about any
particular storage protocol nor reach into upstream spawner internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import pwd
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from jupyterhub.spawner import LocalProcessSpawner
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Dict, Float, Int, Unicode, default
from traitlets import Callable as CallableTrait
from traitlets.config import LoggingConfigurable

from swan_hub.form import Choice, SpawnForm
from swan_hub.mounts import StorageMountMixin
from swan_hub.ownership import hand_over
from swan_hub.singleuser import SINGLEUSER_COMMAND

if TYPE_CHECKING:
    from jupyterhub.spawner import Spawner as _MixinBase
else:
    # Spawner itself refuses subclasses without start/stop/poll; the mixin is a plain
    # configurable whose `super()` calls reach the concrete spawner that follows it in the MRO.
    _MixinBase = LoggingConfigurable

CONTENTS_MANAGER_CLASS = "swan_contents.SwanContentsManager"
WEBDAV_STORAGE_CLASS = "swan_contents.storage.WebDAVStorage"
CREDENTIALS_FILE = "storage.json"
#: The variable the server reads the file's path from (swan_contents.storage.credentials).
CREDENTIALS_ENV = "SWAN_STORAGE_CREDENTIALS"
#: how often a start asks the started server whether it answers, and for how long at most
#: (seconds; never into the last ANSWER_MARGIN of `start_timeout`); then the hub's own wait goes on
ANSWER_POLL_INTERVAL = 0.05
ANSWER_WAIT = 15.0
ANSWER_MARGIN = 5.0


class UnsafeUsernameError(ValueError):
    """A username that cannot be used as a single path component."""


def filesystem_safe_name(name: str) -> str:
    """Return ``name`` for use as one path component, or raise UnsafeUsernameError.

    JupyterHub already lowercases usernames; what is left to prevent is a name that would leave
    the directory it is formatted into. Names are refused rather than escaped so that the
    directory on disk always has the exact name the user logs in with (sync clients and admins
    look for it there).
    """
    if name in ("", ".", ".."):
        raise UnsafeUsernameError(f"username {name!r} cannot name a directory")
    if "/" in name or "\0" in name or (os.sep != "/" and os.sep in name):
        raise UnsafeUsernameError(f"username {name!r} contains a path separator or NUL byte")
    return name


def _resolve(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _make_private_dir(path: str, owner: tuple[int, int] | None) -> None:
    """Create ``path`` (mode 0700, owned by ``owner`` when given) if it does not exist."""
    if os.path.isdir(path):
        return
    os.makedirs(path, mode=0o700, exist_ok=True)
    # makedirs' mode is filtered by the umask; the directory must be private regardless.
    os.chmod(path, 0o700)
    if owner is not None:
        os.chown(path, *owner)


def jupyter_state_env(state_dir: str) -> dict[str, str]:
    """Environment that sends Jupyter's, IPython's, XDG and npm's own files to ``state_dir``.

    Without it they land in the home directory, which is the storage space: hidden state that
    sync clients would upload to every device.
    """
    join = os.path.join
    return {
        "JUPYTER_CONFIG_DIR": join(state_dir, "config"),
        "JUPYTER_DATA_DIR": join(state_dir, "data"),
        "JUPYTER_RUNTIME_DIR": join(state_dir, "runtime"),
        "IPYTHONDIR": join(state_dir, "ipython"),
        "XDG_CONFIG_HOME": join(state_dir, "xdg-config"),
        "XDG_CACHE_HOME": join(state_dir, "xdg-cache"),
        "XDG_DATA_HOME": join(state_dir, "xdg-data"),
        "XDG_STATE_HOME": join(state_dir, "xdg-state"),
        # jupyter-lsp and the extension manager run npm, which logs to ~/.npm by default.
        "npm_config_cache": join(state_dir, "npm"),
    }


def credentials_from_api_token(spawner: Any, auth_state: dict[str, Any] | None) -> dict | None:
    """Storage credentials that are the server's own JupyterHub API token, as app password.

    For a storage that checks tokens with the hub, as the embedded drive does (``swan up``
    sets this hook). The token must carry the storage's access scope
    (``Spawner.server_token_scopes``); it acts with its user's rights only and the hub revokes
    it when the server stops.
    """
    return {"kind": "basic", "username": spawner.user.name, "password": spawner.api_token}


def credentials_from_auth_state(spawner: Any, auth_state: dict[str, Any] | None) -> dict | None:
    """The storage credentials of the default ``storage_credentials`` hook.

    An OAuth/OIDC authenticator (e.g. OAuthenticator against CERNBox, ownCloud, Nextcloud or
    oCIS) keeps the user's ``access_token`` in ``auth_state``; the storage accepts it as a
    bearer token. Without auth state, or without a token in it, there are no credentials.
    """
    token = (auth_state or {}).get("access_token")
    if not token:
        return None
    return {"kind": "bearer", "token": token}


def write_private_file(path: str, data: bytes, owner: tuple[int, int] | None) -> None:
    """Replace ``path`` with ``data`` atomically: a reader (the server, through a bind mount)
    sees the old file or the new one, never half of one, nor a file readable by others."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class SwanSpawnerMixin(_MixinBase):
    """The SWAN part of a spawner: the user's server serves the user's storage space.

    Combine it with a concrete spawner, mixin first::

        class SwanDockerSpawner(SwanSpawnerMixin, DockerSpawner): ...

    The mixin

    - resolves the user's storage space and versions area from templates,
    - creates them on the host before the server starts (or refuses to start when the space is
      missing and ``create_space`` is off),
    - tells the single-user server to use ``swan_contents.SwanContentsManager`` rooted at the
      space, with versions kept outside it, and to open JupyterLab.

    Subclasses whose server sees the host paths under another name (a container mount) override
    :meth:`server_space_path` and :meth:`server_versions_path`; subclasses whose server process
    may run as root override :meth:`server_runs_as_root`.
    """

    space_template = Unicode(
        "swan-data/users/{username}",
        config=True,
        help="""
        Host path of a user's storage space: the directory that becomes the root of their
        Jupyter server and their home directory.

        ``{username}`` is replaced by the JupyterHub username (names that could leave the
        directory, such as ``..`` or names containing ``/``, are refused). A relative path is
        resolved against the hub's working directory; ``swan up`` sets an absolute path under
        its data directory.

        With a sync&share storage mounted on the host (e.g. an EOS FUSE mount), point this at
        the user's directory in the mount, e.g. ``/eos/user/{username}``.
        """,
    )

    versions_template = Unicode(
        "swan-data/versions/{username}",
        config=True,
        help="""
        Host path of a user's versions area: where checkpoints and old versions of files are
        kept. It must lie outside the storage space so that sync clients never upload it.

        ``{username}`` is replaced as in ``space_template``. The directory is created (mode
        0700) when missing. It is passed to the server as ``SwanContentsManager.versions_dir``.
        """,
    )

    create_space = Bool(
        True,
        config=True,
        help="""
        Create the user's storage space (mode 0700) when it does not exist yet.

        Turn this off when spaces are provisioned by the storage itself (e.g. a FUSE mount
        where a missing directory means the user has no storage account): the spawn then
        fails with a message naming the missing directory instead of creating an unsynced
        directory in its place.
        """,
    )

    credentials_template = Unicode(
        "swan-data/credentials/{username}",
        config=True,
        help="""
        Host path of a per-user directory, outside the storage space, where the spawner writes
        the user's storage credentials (``storage.json``, mode 0600) for the server to read.

        The server finds the file through the ``SWAN_STORAGE_CREDENTIALS`` environment
        variable (a path, never the secret itself, so nothing reaches the browser or child
        processes' listings). The file is replaced atomically while the server runs when the
        hub refreshes the user's auth state, and deleted when the server stops. (Kubernetes
        hands the file over as a Secret instead.)
        """,
    )

    storage_credentials = CallableTrait(
        config=True,
        help="""
        A function ``(spawner, auth_state) -> dict | None`` (it may be async) giving the
        storage credentials to hand to the user's server, in the format of the credentials
        file: ``{"kind": "bearer", "token": ...}`` or ``{"kind": "basic", "username": ...,
        "password": ...}``, optionally with ``expires_at`` (seconds since the epoch) and
        ``url`` (the user's WebDAV folder). ``None`` means no credentials: nothing is handed
        over and ``SWAN_STORAGE_CREDENTIALS`` is not set. Credentials the server could not use
        fail the spawn with the reason.

        The default takes ``access_token`` from the authenticator's auth state (OAuth/OIDC
        against the sync&share storage) as a bearer token. docs/admin-docker.md has an
        example for app passwords.
        """,
    )

    credentials_refresh_interval = Float(
        15.0,
        config=True,
        help="""
        Seconds between checks of the user's auth state while the server runs; when the
        storage credentials derived from it changed (JupyterHub refreshed the auth state
        through the authenticator's ``refresh_user``), they are handed over again: the file is
        replaced atomically (Kubernetes: the Secret is updated). A check reads the auth state
        from the hub's database, nothing more. 0 turns the refresh off.
        """,
    )

    webdav_url_template = Unicode(
        "",
        config=True,
        help="""
        WebDAV URL of a user's storage space, e.g.
        ``http://127.0.0.1:8001/services/drive/remote.php/dav/files/{username}/``, with
        ``{username}`` replaced by the (URL-encoded) JupyterHub username. When set, the
        server's contents manager reaches the space over WebDAV
        (``swan_contents.storage.WebDAVStorage``, given the URL and the user name in
        ``SWAN_WEBDAV_URL`` and ``SWAN_WEBDAV_USER``) instead of at the space path, and sharing
        uses the OCS API of the same server with the same credentials (``storage_credentials``;
        for the embedded drive, ``credentials_from_api_token``). The space path stays the
        server's working directory, where kernels start.

        Empty (the default): the server serves the space path directly (POSIX).
        """,
    )

    form_config_file = Unicode(
        "",
        config=True,
        help="""
        Path of the spawn form's config (YAML, or JSON with a ``.json`` name): software
        environments (images and/or software stacks), CPU and memory choices or ranges, and
        whether a GPU may be requested. The same file drives the form, the server-side
        validation of every spawn (form, ``opt-`` URL or REST API) and, on Kubernetes, the
        profiles. See docs/admin-docker.md for the format. Overrides ``form_config``.
        """,
    )

    form_config = Dict(
        config=True,
        help="""
        The spawn form's config inline, with the same keys as ``form_config_file``. Empty (and
        no file) means no form: the spawner's own ``image`` and limits apply and the SWAN
        spawn options are not used.
        """,
    )

    @default("storage_credentials")
    def _storage_credentials_default(self) -> Callable[..., Any]:
        return credentials_from_auth_state

    @cached_property
    def spawn_form(self) -> SpawnForm | None:
        """The spawn form of ``form_config_file`` / ``form_config``, or None without one."""
        if self.form_config_file:
            return SpawnForm.load(self.form_config_file)
        if self.form_config:
            return SpawnForm.from_config(self.form_config)
        return None

    # The SWAN form, when configured, takes over from the concrete spawner's own options form
    # (e.g. KubeSpawner's profile list); without one, the upstream behaviour is unchanged.

    async def get_options_form(self) -> str:
        if self.spawn_form is None:
            return await super().get_options_form()
        # The handler of the spawn page carries its query, whose opt- arguments pre-fill.
        prefill: dict[str, list[str]] = {}
        handler = getattr(self, "handler", None)
        if handler is not None:
            for key, values in handler.request.query_arguments.items():
                if key.startswith("opt-"):
                    prefill[key[4:]] = [v.decode("utf-8", "replace") for v in values]
        return self.spawn_form.render(prefill, limits_note=self.limits_note)

    def run_options_from_form(self, form_data: dict[str, Any]) -> Any:
        if self.spawn_form is None:
            return super().run_options_from_form(form_data)
        # Refuse a bad choice before anything starts; the hub shows the form again with the
        # message.
        options = {k: v for k, v in form_data.items() if k != "_xsrf"}
        return self.spawn_form.validate(options).as_user_options()

    def options_from_query(self, query_data: dict[str, Any]) -> Any:
        if self.spawn_form is None:
            return super().options_from_query(query_data)
        return self.run_options_from_form(query_data)

    @default("default_url")
    def _default_url_default(self) -> str:
        # JupyterLab shows the file browser, the share dialog and the shared-with-me panel of
        # the labextension; Notebook 7 users can still go to /tree from the menu.
        return "/lab"

    def _format_path(self, template: str) -> str:
        return _resolve(template.format(username=filesystem_safe_name(self.user.name)))

    @property
    def server_label(self) -> str:
        """The user's name, and the server's after a colon for a named server: how log lines
        name this server (as JupyterHub's own lines do)."""
        return f"{self.user.name}:{self.name}" if self.name else self.user.name

    @property
    def space_path(self) -> str:
        """Absolute host path of this user's storage space."""
        return self._format_path(self.space_template)

    @property
    def versions_path(self) -> str:
        """Absolute host path of this user's versions area."""
        return self._format_path(self.versions_template)

    def server_space_path(self) -> str:
        """Path of the storage space as the single-user server sees it.

        The host path by default; spawners that mount the space elsewhere override this.
        """
        return self.space_path

    def server_versions_path(self) -> str:
        """Path of the versions area as the single-user server sees it."""
        return self.versions_path

    def webdav_url(self) -> str:
        """The WebDAV URL of this user's space ("" when the server serves the space path)."""
        if not self.webdav_url_template:
            return ""
        name = quote(filesystem_safe_name(self.user.name), safe="")
        return self.webdav_url_template.format(username=name)

    @property
    def credentials_dir(self) -> str:
        """Absolute host path of this user's credentials directory."""
        return self._format_path(self.credentials_template)

    @property
    def credentials_path(self) -> str:
        """Absolute host path of this user's credentials file."""
        return os.path.join(self.credentials_dir, CREDENTIALS_FILE)

    def server_credentials_path(self) -> str:
        """Path of the credentials file as the single-user server sees it."""
        return self.credentials_path

    def server_runs_as_root(self) -> bool:
        """Whether the single-user server process runs as root (it then needs --allow-root)."""
        return False

    def storage_owner(self) -> tuple[int, int] | None:
        """(uid, gid) that directories created for the server must belong to; None keeps the
        hub's own user (the server runs as the hub's user)."""
        return None

    def ensure_storage_dirs(self) -> None:
        """Make sure the space and the versions area exist on the host before the server starts.

        Directories created here are private (0700) and belong to :meth:`storage_owner`.
        Raises RuntimeError naming the missing space when ``create_space`` is off.
        """
        space = self.space_path
        if not os.path.isdir(space) and not self.create_space:
            raise RuntimeError(
                f"The storage space of user {self.user.name!r} does not exist: {space}. "
                "Create it (or enable SwanSpawnerMixin.create_space) and start again."
            )
        _make_private_dir(space, self.storage_owner())
        _make_private_dir(self.versions_path, self.storage_owner())

    # --- the spawn form's choice ---------------------------------------------------------

    choice: Choice | None = None

    #: Said under CPU and memory in the spawn form where this spawner does not enforce them.
    limits_note = ""

    def apply_choice(self, choice: Choice) -> None:
        """Apply a validated spawn form choice to this spawner before it starts.

        Sets the CPU and memory limits; subclasses extend it (the image, a GPU, Kubernetes
        overrides).
        """
        self.cpu_limit = choice.cpu
        self.mem_limit = choice.memory

    # --- storage credentials -------------------------------------------------------------

    #: the credentials last handed over (the credentials file's JSON object), None without
    _credentials: dict[str, Any] | None = None
    _credentials_task: asyncio.Task | None = None
    #: true while start() runs: a poll then may find no process yet, which is no death
    _starting = False
    #: whether the running server was given credentials; kept in the spawner's state, so that
    #: a restarted hub goes on refreshing them. Only the end of the server clears it (stop(), a
    #: poll that finds it gone, a failed start; not clear_state(), which LocalProcessSpawner
    #: calls in the middle of stopping), and takes the credentials away.
    _credentials_handed_over = False
    #: one hand-over or removal at a time (made on first use, in the hub's event loop)
    _credentials_lock_instance: asyncio.Lock | None = None

    @property
    def _credentials_lock(self) -> asyncio.Lock:
        if self._credentials_lock_instance is None:
            self._credentials_lock_instance = asyncio.Lock()
        return self._credentials_lock_instance

    async def current_credentials(self) -> dict[str, Any] | None:
        """The user's storage credentials now, from ``storage_credentials`` and the auth
        state, as the credentials file's JSON object; None when there are none.

        Raises ValueError (with the reason, never the secret) for credentials the server
        could not use: they are checked by the server's own reader of the file.
        """
        auth_state = await self.user.get_auth_state()
        credentials = self.storage_credentials(self, auth_state)
        if inspect.isawaitable(credentials):
            credentials = await credentials
        if credentials is None:
            return None
        # Imported here: the hub imports no single-user server package at import time.
        from swan_contents.storage.credentials import Credentials, InvalidCredentials

        try:
            return Credentials.from_json(credentials).to_json()
        except InvalidCredentials as e:
            raise ValueError(
                f"The storage credentials of {self.user.name!r} (from "
                f"SwanSpawnerMixin.storage_credentials) cannot be used: {e}"
            ) from None

    async def store_credentials(self, credentials: dict[str, Any]) -> None:
        """Hand ``credentials`` to the server: replace the credentials file atomically.

        Spawners whose servers cannot see the hub's files (Kubernetes) override this and
        :meth:`discard_credentials`.
        """
        data = json.dumps(credentials).encode("utf-8")
        owner = self.storage_owner()

        def write() -> None:
            _make_private_dir(self.credentials_dir, owner)
            write_private_file(self.credentials_path, data, owner)

        await asyncio.to_thread(write)

    async def discard_credentials(self) -> None:
        """Take the credentials away from a stopped server: delete the file."""

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.credentials_path)

        await asyncio.to_thread(remove)

    async def hand_over_credentials(self) -> None:
        """Give the server about to start the user's current credentials, if there are any."""
        self._credentials = await self.current_credentials()
        self._credentials_handed_over = False
        if self._credentials:
            await self.store_credentials(self._credentials)
            self._credentials_handed_over = True

    async def refresh_credentials(self) -> bool:
        """Hand the credentials over again if the auth state now gives other ones (a
        refreshed token); returns whether it did. Runs every ``credentials_refresh_interval``
        seconds while the server runs; a hook may also call it at once."""
        if not self._credentials_handed_over:
            return False
        credentials = await self.current_credentials()
        if not credentials or credentials == self._credentials:
            return False
        # Shielded: a stop that cancels the refresh must not find a file half handed over
        # (the write goes on in its thread), so it waits for the lock instead.
        return await asyncio.shield(self._hand_over_again(credentials))

    async def _hand_over_again(self, credentials: dict[str, Any]) -> bool:
        async with self._credentials_lock:
            if not self._credentials_handed_over:
                return False  # the server stopped meanwhile
            self.log.info(
                "Handing refreshed storage credentials to the server of %s", self.server_label
            )
            await self.store_credentials(credentials)
            self._credentials = credentials
            return True

    async def _refresh_credentials_while_running(self) -> None:
        while True:
            await asyncio.sleep(self.credentials_refresh_interval)
            # A server that died (killed, crashed) gets no stop() from JupyterHub: find out
            # here, so the refresh never outlives it (poll() then takes the credentials away).
            if await self.poll() is not None:
                return
            try:
                await self.refresh_credentials()
            except Exception:
                self.log.exception("Refreshing the storage credentials of %s", self.server_label)

    def _keep_credentials_fresh(self) -> None:
        running = self._credentials_task is not None and not self._credentials_task.done()
        if self.credentials_refresh_interval > 0 and not running:
            self._credentials_task = asyncio.ensure_future(
                self._refresh_credentials_while_running()
            )

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self._credentials_handed_over:
            state["swan_credentials"] = True
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._credentials_handed_over = bool(state.get("swan_credentials"))

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is None and self._credentials_handed_over:
            # after a restart of the hub, whose refresh task died with it
            self._keep_credentials_fresh()
        elif status is not None and not self._starting:
            # The server is gone without stop(): JupyterHub calls stop() only for a server
            # its poll finds alive. Whatever ended it, its credentials go with it.
            await self._take_credentials_away(self._end_credentials_refresh())
        return status

    def _end_credentials_refresh(self) -> bool:
        """Stop refreshing the credentials; returns whether any were handed over."""
        handed_over, self._credentials_handed_over = self._credentials_handed_over, False
        task, self._credentials_task = self._credentials_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        return handed_over

    async def _take_credentials_away(self, handed_over: bool) -> None:
        if handed_over:
            async with self._credentials_lock:
                try:
                    await self.discard_credentials()
                except Exception:
                    self.log.exception("Removing the storage credentials of %s", self.server_label)
        self._credentials = None

    # --- spawn progress ------------------------------------------------------------------

    _progress_events: list[dict[str, Any]] | None = None
    _concrete_start_began = False
    _start_began_at: float | None = None
    _start_returned = False

    def report_progress(self, percent: int, message: str) -> None:
        """Add a step to the spawn page's progress bar (JupyterHub's progress API)."""
        if self._progress_events is None:
            self._progress_events = []
        self._progress_events.append({"progress": percent, "message": message})

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        # Our own steps first; once the concrete spawner starts, its events (e.g. Kubernetes'
        # scheduling and image pulls) interleaved with ours, then ours until start returns.
        sent = 0

        def new_events() -> list[dict[str, Any]]:
            nonlocal sent
            events = (self._progress_events or [])[sent:]
            sent += len(events)
            return events

        while not (self._concrete_start_began or self._start_returned):
            for event in new_events():
                yield event
            await asyncio.sleep(0.2)
        async for upstream_event in super().progress():
            for event in new_events():
                yield event
            yield upstream_event
        while True:
            for event in new_events():
                yield event
            if self._start_returned:
                return
            await asyncio.sleep(0.2)

    def get_args(self) -> list[str]:
        args = list(super().get_args())
        args += [
            f"--ServerApp.contents_manager_class={CONTENTS_MANAGER_CLASS}",
            f"--ServerApp.root_dir={self.server_space_path()}",
            f"--SwanContentsManager.versions_dir={self.server_versions_path()}",
        ]
        if self.webdav_url_template:
            args.append(f"--SwanContentsManager.storage_class={WEBDAV_STORAGE_CLASS}")
        if self.server_runs_as_root() and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env["SWAN_SPACE"] = self.server_space_path()
        if self.webdav_url_template:
            env["SWAN_WEBDAV_URL"] = self.webdav_url()
            env["SWAN_WEBDAV_USER"] = self.user.name
        if self.choice is not None:
            env.update(self.choice.environment.env)
        if self._credentials:
            env[CREDENTIALS_ENV] = self.server_credentials_path()
        return env

    async def start(self) -> Any:
        self._progress_events = []
        self._concrete_start_began = self._start_returned = False
        self._start_began_at = time.monotonic()
        self._starting = True
        try:
            if self.spawn_form is not None:
                # The REST API hands user_options over unchecked: validate every spawn here.
                self.choice = self.spawn_form.validate(self.user_options or {})
                self.apply_choice(self.choice)
                self.report_progress(
                    10, f"Software environment: {self.choice.environment.display_name}"
                )
            self.report_progress(20, "Preparing your storage space")
            # in a thread: handing a space over to a container's user walks it once
            await asyncio.to_thread(self.ensure_storage_dirs)
            await self.hand_over_credentials()
            self._concrete_start_began = True
            result = await super().start()
            await self._until_answering(result)
        except BaseException:
            # A failed start leaves no credentials behind for a server that never ran.
            await self._take_credentials_away(self._end_credentials_refresh())
            raise
        finally:
            self._start_returned = True
            self._starting = False
        if self._credentials_handed_over:
            self._keep_credentials_fresh()
        return result

    async def _until_answering(self, where: Any) -> None:
        """Return once the started server answers at ``where`` (the concrete start's ``(ip,
        port)`` or URL) as the hub asks it (its API, any status below 500), once its process is
        gone, or after `ANSWER_WAIT` seconds: a slow start (an image pulled, a pod scheduled)
        keeps `ANSWER_MARGIN` of its `start_timeout` for the hub's own wait.

        The hub's own wait asks with a growing pause (up to 0.2, 0.4, 0.8, 1.6, 3.2 s, ...): a
        server answering 1.3 s after its start was seen 3.5 s after it. Asked here every 50 ms,
        it is found answering at the hub's first question.
        """
        url = self._api_url(where)
        if url is None:
            return
        client = AsyncHTTPClient()
        began = self._start_began_at or time.monotonic()
        deadline = min(time.monotonic() + ANSWER_WAIT, began + self.start_timeout - ANSWER_MARGIN)
        asked = 0
        while (left := deadline - time.monotonic()) > 0:
            request = HTTPRequest(url, follow_redirects=False, request_timeout=min(5.0, left))
            try:
                answer = await client.fetch(request, raise_error=False)
            except (OSError, HTTPClientError):
                pass  # not listening yet (refused), or too slow to answer
            else:
                if answer.code < 500:
                    return
            asked += 1
            if asked % 10 == 0 and await self.poll() is not None:
                return  # the hub's wait finds it gone and says so
            await asyncio.sleep(ANSWER_POLL_INTERVAL)

    def _api_url(self, where: Any) -> str | None:
        if getattr(self, "internal_ssl", False) or self.server is None:
            return None  # the hub's wait, with its certificates
        if isinstance(where, str):
            parts = urlsplit(where)
            origin = f"{parts.scheme}://{parts.netloc}"
        elif isinstance(where, tuple) and len(where) == 2:
            host = where[0] if where[0] not in ("", "0.0.0.0") else "127.0.0.1"
            origin = f"http://{host}:{where[1]}"
        else:
            return None
        return origin + self.server.base_url + "api"

    async def stop(self, now: bool = False) -> Any:
        # Ended first: LocalProcessSpawner polls while it stops, and a poll must not start
        # the refresh again.
        handed_over = self._end_credentials_refresh()
        try:
            return await super().stop(now=now)
        finally:
            await self._take_credentials_away(handed_over)


class SwanContainerMixin(SwanSpawnerMixin):
    """The SWAN part of spawners whose servers run in containers (Docker, Kubernetes).

    Adds where the space, the versions area and the credentials appear inside the container,
    the uid it runs as, and a container-local directory for Jupyter's own state. Combine it
    with a container spawner, mixin first, like :class:`SwanSpawnerMixin`.
    """

    container_space_template = Unicode(
        "",
        config=True,
        help="""
        Path of the storage space inside the container. Empty (the default) mounts it at the
        same path as on the host, so paths in notebooks mean the same thing inside and outside
        (e.g. ``/eos/user/a/alice``). Set e.g. ``/home/{username}`` to give every user a
        short home path instead. ``{username}`` and ``{username[0]}`` are replaced as in
        ``space_template``.
        """,
    )

    container_versions_path = Unicode(
        "/var/lib/swan/versions",
        config=True,
        help="""
        Where the user's versions area (``versions_template`` on the host) is mounted inside
        the container; outside the space so sync clients never see it.
        """,
    )

    container_credentials_dir = Unicode(
        "/run/swan/credentials",
        config=True,
        help="""
        Where the user's storage credentials appear, read-only, inside the container: on
        Docker the credentials directory (``credentials_template`` on the host), on Kubernetes
        the user's credentials Secret. A directory rather than the file is mounted so that a
        replaced file is seen at once (a file bind mount would keep the old one).
        """,
    )

    container_state_dir = Unicode(
        "/tmp/swan-state",  # noqa: S108 (inside the container, private to it)
        config=True,
        help="""
        Directory inside the container for Jupyter's own config, runtime and cache files (and
        IPython's, XDG's and npm's), so that no hidden state is written into the storage
        space. It lives and dies with the container.
        """,
    )

    container_uid = Int(
        1000,
        config=True,
        help="""
        User id the container runs as; directories the spawner creates for it (space,
        versions area, credentials) are owned by it. With a storage whose files belong to
        each user's own uid (an EOS or NFS mount), set this per user in a ``pre_spawn_hook``.
        """,
    )

    container_gid = Int(
        1000,
        config=True,
        help="Group id the container runs as and of the directories created for it.",
    )

    def server_space_path(self) -> str:
        if not self.container_space_template:
            return self.space_path
        name = filesystem_safe_name(self.user.name)
        return os.path.normpath(self.container_space_template.format(username=name))

    def server_versions_path(self) -> str:
        return self.container_versions_path

    def server_credentials_path(self) -> str:
        return os.path.join(self.container_credentials_dir, CREDENTIALS_FILE)

    def storage_owner(self) -> tuple[int, int]:
        return (self.container_uid, self.container_gid)

    def ensure_storage_dirs(self) -> None:
        super().ensure_storage_dirs()
        # A space the hub's side made before the first server (the drive, for a sync client
        # or the web page) belongs to the hub's user: it and what that user made in it pass
        # to the container's user, once.
        if os.stat(self.space_path).st_uid == os.geteuid() != self.container_uid:
            hand_over(self.space_path, self.storage_owner(), tree=True, only_from=os.geteuid())

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env["HOME"] = self.server_space_path()
        env["USER"] = self.user.name
        env.update(jupyter_state_env(self.container_state_dir))
        return env


def _singleuser_command() -> list[str]:
    # Prefer the script installed next to the hub's interpreter: `swan up` often runs from a
    # virtualenv that is not on PATH. Not `python -m`, which would put the space (the server's
    # working directory) first on sys.path, so a user's `json.py` could shadow the stdlib.
    script = os.path.join(os.path.dirname(sys.executable), SINGLEUSER_COMMAND)
    if os.access(script, os.X_OK):
        return [script]
    return [SINGLEUSER_COMMAND]


def _login_shell() -> str:
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        # Containers often run with a uid that has no passwd entry.
        shell = ""
    return shell or shutil.which("bash") or "/bin/sh"


class SwanLocalSpawner(SwanSpawnerMixin, StorageMountMixin, LocalProcessSpawner):
    """Runs each user's server as a local process of the hub's own OS user.

    For laptops, demos and tests: the users of ``swan up`` are demo accounts, not OS accounts.
    All servers run as one OS user, so users are separated at the API level only (each server
    serves only its owner's space and only its owner's token is accepted), not by the OS: code
    in one user's notebook can read every space on the machine. Real isolation comes from the
    Docker spawner, which runs each server in its own container with only its space mounted.

    The server's HOME is the storage space, so ``~`` in a terminal or notebook is the storage.
    With a WebDAV storage the space is mounted for code (StorageMountMixin), and the mount is
    the server's root, working directory and HOME.
    Jupyter's own config, data and runtime files, IPython's profile and XDG caches go to a
    per-user directory outside the space (``jupyter_dir_template``) so no hidden state is synced.

    Based on LocalProcessSpawner rather than SimpleLocalProcessSpawner: the latter adds a
    ``home_dir_template`` trait that would compete with ``space_template`` and a preexec step
    that creates the home with mode 0755; here the only differences from LocalProcessSpawner
    are spelled out (no setuid, HOME and cwd from the space, no certificate chown).
    """

    # A local process shares the machine: nothing here caps its CPU or memory (containers
    # and pods are capped by their engine), so the form says so rather than promise it.
    limits_note = (
        "CPU and memory are limits for servers in containers. This server runs as a process "
        "on the hub's machine and shares its CPU and memory: the values above are not enforced."
    )

    jupyter_dir_template = Unicode(
        "swan-data/runtime/{username}",
        config=True,
        help="""
        Host path of a per-user directory, outside the storage space, that holds Jupyter's
        config, data and runtime files (JUPYTER_CONFIG_DIR, JUPYTER_DATA_DIR,
        JUPYTER_RUNTIME_DIR), the IPython profile (IPYTHONDIR), the XDG config/cache/data/state
        directories and npm's cache. Keeping them out of the space keeps hidden state out of
        the sync. With a WebDAV storage it also holds the mount kernels and terminals work in
        (``files/``), rclone's private config, write cache and log (``rclone/``) and the list
        of uploads the storage refuses, which the server reads (``mount-status/``).

        ``{username}`` is replaced as in ``space_template``. Created (mode 0700) when missing.
        """,
    )

    @default("cmd")
    def _cmd_default(self) -> list[str]:
        return _singleuser_command()

    @property
    def jupyter_dir_path(self) -> str:
        """Absolute host path of this user's Jupyter state directory."""
        return self._format_path(self.jupyter_dir_template)

    def server_runs_as_root(self) -> bool:
        return os.geteuid() == 0

    def server_space_path(self) -> str:
        return self.mounted_root() or self.space_path

    def ensure_storage_dirs(self) -> None:
        super().ensure_storage_dirs()
        _make_private_dir(self.jupyter_dir_path, None)

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        space = self.server_space_path()

        def preexec() -> None:
            # No setuid: demo users have no OS account. Start where `~` is.
            os.chdir(space)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.user.name
        env["HOME"] = self.server_space_path()
        env["SHELL"] = _login_shell()
        env.update(jupyter_state_env(self.jupyter_dir_path))
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        # Internal SSL: the server runs as the hub's user, who can already read the certs.
        return paths
