"""SwanDockerSpawner: each user's server in a container of its own, with the storage space
bind-mounted as its home.

This module owns what differs in a container: where the space, the versions area and the
credentials appear inside it, the container's uid, host networking, and the image and limits of
the spawn form's choice. It must not pull images nor use Docker's bridge network.
"""

from __future__ import annotations

import os
from typing import Any

import docker.errors
from docker.types import DeviceRequest
from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from traitlets import Int, Unicode, default

from swan_hub.form import Choice
from swan_hub.spawner import (
    CREDENTIALS_FILE,
    SwanSpawnerMixin,
    filesystem_safe_name,
    jupyter_state_env,
)


class ImageNotAvailable(RuntimeError):
    """The image of the chosen software environment is not on this Docker host."""


class SwanDockerSpawner(SwanSpawnerMixin, DockerSpawner):
    """Runs each user's server in a Docker container on this host.

    The container sees exactly one user's files: their storage space (``space_template`` on
    the host) bind-mounted at ``container_space_template``, their versions area at
    ``container_versions_path`` and, when there are storage credentials, their credentials
    directory read-only at ``container_credentials_dir``. Nothing else of the host is mounted,
    so other users' spaces are not visible inside.

    Containers use the host's network and listen on 127.0.0.1 at a free port chosen at each
    start (no bridge, no port publishing). They run as ``container_uid``:``container_gid``,
    which owns the directories the spawner creates. Images are never pulled: a missing image
    is a clear spawn error. A container is removed when its server stops or fails to start.
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
        Where the user's credentials directory (``credentials_template`` on the host) is
        mounted, read-only, inside the container. The directory is mounted rather than the
        file so that a refreshed file (written beside and renamed) is seen at once.
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

    @default("image")
    def _image_default(self) -> str:
        return "swan-singleuser:latest"

    @default("network_name")
    def _network_name_default(self) -> str:
        return "host"

    @default("use_internal_ip")
    def _use_internal_ip_default(self) -> bool:
        # With host networking nothing is published: the hub reaches the server directly.
        return True

    @default("ip")
    def _ip_default(self) -> str:
        return "127.0.0.1"

    @default("pull_policy")
    def _pull_policy_default(self) -> str:
        return "never"

    @default("remove")
    def _remove_default(self) -> bool:
        return True

    # --- where things are inside the container -------------------------------------------

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

    @property
    def volume_binds(self) -> dict[str, dict[str, str]]:
        # The SWAN mounts are absolute paths already; they bypass format_volume_name, which
        # would read braces in a host path as a template.
        binds = dict(super().volume_binds)
        binds[self.space_path] = {"bind": self.server_space_path(), "mode": "rw"}
        binds[self.versions_path] = {"bind": self.server_versions_path(), "mode": "rw"}
        if self._credentials:
            binds[self.credentials_dir] = {"bind": self.container_credentials_dir, "mode": "ro"}
        return binds

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env["HOME"] = self.server_space_path()
        env["USER"] = self.user.name
        env.update(jupyter_state_env(self.container_state_dir))
        return env

    # --- the form's choice ---------------------------------------------------------------

    def apply_choice(self, choice: Choice) -> None:
        super().apply_choice(choice)
        if choice.environment.image:
            self.image = choice.environment.image

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Any:
        self.port = random_port()
        try:
            return await super().start()
        except BaseException:
            # No half-started container: a failed start leaves nothing behind.
            if self.object_id:
                await self._remove_failed_container()
            raise

    async def pull_image(self, image: str) -> None:
        self.report_progress(40, f"Starting a container from {image}")
        try:
            await super().pull_image(image)
        except docker.errors.NotFound:
            raise ImageNotAvailable(
                f"The image {image!r} of this software environment is not available on the "
                "server. Choose another environment, or ask the administrators to build or "
                "load the image (images are never pulled automatically here)."
            ) from None

    async def create_object(self) -> dict[str, Any]:
        create_defaults = {
            "user": f"{self.container_uid}:{self.container_gid}",
            "working_dir": self.server_space_path(),
        }
        host_defaults: dict[str, Any] = {}
        if self.choice is not None and self.choice.gpu:
            host_defaults["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
        admin_create, admin_host = self.extra_create_kwargs, self.extra_host_config
        self.extra_create_kwargs = self._under(admin_create, create_defaults, "extra_create_kwargs")
        self.extra_host_config = self._under(admin_host, host_defaults, "extra_host_config")
        try:
            return await super().create_object()
        finally:
            self.extra_create_kwargs, self.extra_host_config = admin_create, admin_host

    def _under(self, admin: Any, defaults: dict[str, Any], trait: str) -> Any:
        # The admin's values win over ours; a callable is the admin's to fill in completely.
        if callable(admin):
            if defaults:
                self.log.warning("%s is a callable: not adding %s", trait, sorted(defaults))
            return admin
        return {**defaults, **admin}

    async def _remove_failed_container(self) -> None:
        try:
            await self.remove_object()
        except docker.errors.NotFound:
            pass
        except Exception:
            self.log.exception("Could not remove the failed container %s", self.object_name)
        self.object_id = ""

    async def get_ip_and_port(self) -> tuple[str, int]:
        return (self.ip, self.port)
