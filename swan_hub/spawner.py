"""Spawners that give each user a Jupyter server whose files are their storage space.

This module owns the SWAN behaviour shared by every spawner (where the space and the versions area
live, which contents manager serves them) and the local-process spawner for laptops and tests.
It must not know about any particular storage protocol nor reach into upstream spawner internals.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Bool, Unicode, default
from traitlets.config import LoggingConfigurable

if TYPE_CHECKING:
    from jupyterhub.spawner import Spawner as _MixinBase
else:
    # Spawner itself refuses subclasses without start/stop/poll; the mixin is a plain
    # configurable whose `super()` calls reach the concrete spawner that follows it in the MRO.
    _MixinBase = LoggingConfigurable

CONTENTS_MANAGER_CLASS = "swan_contents.SwanContentsManager"


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

    @default("default_url")
    def _default_url_default(self) -> str:
        # JupyterLab shows the file browser, the share dialog and the shared-with-me panel of
        # the labextension; Notebook 7 users can still go to /tree from the menu.
        return "/lab"

    def _format_path(self, template: str) -> str:
        return _resolve(template.format(username=filesystem_safe_name(self.user.name)))

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

    def server_runs_as_root(self) -> bool:
        """Whether the single-user server process runs as root (it then needs --allow-root)."""
        return False

    def ensure_storage_dirs(self) -> None:
        """Make sure the space and the versions area exist on the host before the server starts.

        Raises RuntimeError naming the missing space when ``create_space`` is off.
        """
        space = self.space_path
        if not os.path.isdir(space):
            if not self.create_space:
                raise RuntimeError(
                    f"The storage space of user {self.user.name!r} does not exist: {space}. "
                    "Create it (or enable SwanSpawnerMixin.create_space) and start again."
                )
            os.makedirs(space, mode=0o700, exist_ok=True)
            # makedirs' mode is filtered by the umask; the space must be private regardless.
            os.chmod(space, 0o700)
        versions = self.versions_path
        if not os.path.isdir(versions):
            os.makedirs(versions, mode=0o700, exist_ok=True)
            os.chmod(versions, 0o700)

    def get_args(self) -> list[str]:
        args = list(super().get_args())
        args += [
            f"--ServerApp.contents_manager_class={CONTENTS_MANAGER_CLASS}",
            f"--ServerApp.root_dir={self.server_space_path()}",
            f"--SwanContentsManager.versions_dir={self.server_versions_path()}",
        ]
        if self.server_runs_as_root() and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env["SWAN_SPACE"] = self.server_space_path()
        return env

    async def start(self) -> Any:
        self.ensure_storage_dirs()
        return await super().start()


def _singleuser_command() -> list[str]:
    # Prefer the script installed next to the hub's interpreter: `swan up` often runs from a
    # virtualenv that is not on PATH. Not `python -m`, which would put the space (the server's
    # working directory) first on sys.path, so a user's `json.py` could shadow the stdlib.
    script = os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")
    if os.access(script, os.X_OK):
        return [script]
    return ["jupyterhub-singleuser"]


def _login_shell() -> str:
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        # Containers often run with a uid that has no passwd entry.
        shell = ""
    return shell or shutil.which("bash") or "/bin/sh"


class SwanLocalSpawner(SwanSpawnerMixin, LocalProcessSpawner):
    """Runs each user's server as a local process of the hub's own OS user.

    For laptops, demos and tests: the users of ``swan up`` are demo accounts, not OS accounts.
    All servers run as one OS user, so users are separated at the API level only (each server
    serves only its owner's space and only its owner's token is accepted), not by the OS: code
    in one user's notebook can read every space on the machine. Real isolation comes from the
    Docker spawner, which runs each server in its own container with only its space mounted.

    The server's HOME is the storage space, so ``~`` in a terminal or notebook is the storage.
    Jupyter's own config, data and runtime files, IPython's profile and XDG caches go to a
    per-user directory outside the space (``jupyter_dir_template``) so no hidden state is synced.

    Based on LocalProcessSpawner rather than SimpleLocalProcessSpawner: the latter adds a
    ``home_dir_template`` trait that would compete with ``space_template`` and a preexec step
    that creates the home with mode 0755; here the only differences from LocalProcessSpawner
    are spelled out (no setuid, HOME and cwd from the space, no certificate chown).
    """

    jupyter_dir_template = Unicode(
        "swan-data/runtime/{username}",
        config=True,
        help="""
        Host path of a per-user directory, outside the storage space, that holds Jupyter's
        config, data and runtime files (JUPYTER_CONFIG_DIR, JUPYTER_DATA_DIR,
        JUPYTER_RUNTIME_DIR), the IPython profile (IPYTHONDIR), the XDG config/cache/data/state
        directories and npm's cache. Keeping them out of the space keeps hidden state out of
        the sync.

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

    def ensure_storage_dirs(self) -> None:
        super().ensure_storage_dirs()
        jupyter_dir = self.jupyter_dir_path
        if not os.path.isdir(jupyter_dir):
            os.makedirs(jupyter_dir, mode=0o700, exist_ok=True)
            os.chmod(jupyter_dir, 0o700)

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        space = self.space_path

        def preexec() -> None:
            # No setuid: demo users have no OS account. Start where `~` is.
            os.chdir(space)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        state = self.jupyter_dir_path
        env["USER"] = self.user.name
        env["HOME"] = self.space_path
        env["SHELL"] = _login_shell()
        env["JUPYTER_CONFIG_DIR"] = os.path.join(state, "config")
        env["JUPYTER_DATA_DIR"] = os.path.join(state, "data")
        env["JUPYTER_RUNTIME_DIR"] = os.path.join(state, "runtime")
        env["IPYTHONDIR"] = os.path.join(state, "ipython")
        env["XDG_CONFIG_HOME"] = os.path.join(state, "xdg-config")
        env["XDG_CACHE_HOME"] = os.path.join(state, "xdg-cache")
        env["XDG_DATA_HOME"] = os.path.join(state, "xdg-data")
        env["XDG_STATE_HOME"] = os.path.join(state, "xdg-state")
        # jupyter-lsp and the extension manager run npm, which logs to ~/.npm by default.
        env["npm_config_cache"] = os.path.join(state, "npm")
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        # Internal SSL: the server runs as the hub's user, who can already read the certs.
        return paths
