"""SwanDockerSpawner: each user's server in a container of its own, with the storage space
bind-mounted as its home.

This module owns what differs in a container: where the space, the versions area and the
credentials appear inside it, the container's uid, host networking, the bind of the host's
storage mount (swan_hub.mounts) into it, and the image and limits of the spawn form's choice. It
must not pull images nor use Docker's bridge network, nor give a container FUSE or capabilities.
"""

from __future__ import annotations

from typing import Any

import docker.errors
from docker.types import DeviceRequest
from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from traitlets import Unicode, default

from swan_hub.form import Choice
from swan_hub.mounts import CONTAINER_MOUNT_STATUS, CONTAINER_STATUS_FILE, StorageMountMixin
from swan_hub.spawner import SwanContainerMixin


class ImageNotAvailable(RuntimeError):
    """The image of the chosen software environment is not on this Docker host."""


class GpuNotAvailable(RuntimeError):
    """A GPU was chosen in the form, and the Docker engine has no GPU runtime to give one."""


class SwanDockerSpawner(SwanContainerMixin, StorageMountMixin, DockerSpawner):
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

    With a WebDAV storage, the hub mounts the user's space on the host as for a local server
    (StorageMountMixin, in ``runtime_template``) and binds that mount, instead of the space's
    folder, at the space's path in the container, with ``rslave`` propagation: the shares the
    hub stacks over it later (edit shares accepted while the server runs) appear inside too.
    """

    runtime_template = Unicode(
        "swan-data/runtime/{username}",
        config=True,
        help="""
        Host path of a per-user private folder (mode 0700, the hub's user's) that holds, with
        a WebDAV storage, the mount of the user's space that is bound into the container
        (``files/``), rclone's config, write cache and log (``rclone/``) and the list of
        uploads the storage refuses (``mount-status/``). The container sees the mount, and
        that list read-only. ``{username}`` is replaced as in
        ``space_template``.
        """,
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

    def mount_area(self) -> str:
        return self._format_path(self.runtime_template)

    def mount_for_container(self) -> bool:
        return True

    def mount_status_for_server(self) -> str:
        return CONTAINER_STATUS_FILE

    @property
    def volume_binds(self) -> dict[str, dict[str, str]]:
        # The SWAN mounts are absolute paths already; they bypass format_volume_name, which
        # would read braces in a host path as a template.
        binds = dict(super().volume_binds)
        mounted = self.mounted_root()
        if mounted:
            # The storage as the hub mounted it; rslave: what is mounted under it on the host
            # later (a share's writable mount) or unmounted (a revoked one) follows inside.
            binds[mounted] = {
                "bind": self.server_space_path(),
                "mode": "rw",
                "propagation": "rslave",
            }
            # what the hub says of the mounts (refused uploads), for the server to show
            binds[self.mount_status_dir()] = {"bind": CONTAINER_MOUNT_STATUS, "mode": "ro"}
        else:
            binds[self.space_path] = {"bind": self.server_space_path(), "mode": "rw"}
        binds[self.versions_path] = {"bind": self.server_versions_path(), "mode": "rw"}
        if self._credentials:
            binds[self.credentials_dir] = {"bind": self.container_credentials_dir, "mode": "ro"}
        return binds

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
        except BaseException as e:
            # No half-started container: a failed start leaves nothing behind.
            if self.object_id:
                await self._remove_failed_container()
            if self._gpu_missing(e):
                raise GpuNotAvailable(
                    "A GPU was requested, but this server's Docker engine has none to give "
                    "(no GPU runtime such as the NVIDIA container toolkit). Start without a "
                    "GPU, or ask the administrators."
                ) from None
            raise

    def _gpu_missing(self, error: BaseException) -> bool:
        """Whether Docker refused the start for the GPU the form asked for."""
        return (
            self.choice is not None
            and self.choice.gpu
            and isinstance(error, docker.errors.APIError)
            and "device driver" in str(error)
        )

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
