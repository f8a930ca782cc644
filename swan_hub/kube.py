"""SwanKubeSpawner: each user's server in a Kubernetes pod, with the storage space mounted
from a hostPath, a shared PersistentVolumeClaim or a CSI volume, and the storage credentials in
a per-user Secret.

This module owns turning the space and versions templates into pod volumes and mounts, the
credentials Secret (its manifest, and creating, updating and deleting it through KubeSpawner's
API client), and applying the spawn form's choice to the pod (image, limits, GPU, overrides).
Pods themselves are KubeSpawner's to create and delete.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import math
import os
from typing import Any

from kubernetes_asyncio.client import V1ObjectMeta, V1Secret
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.slugs import is_valid_label, safe_slug
from kubespawner.utils import recursive_update
from traitlets import CaselessStrEnum, Dict, Unicode, default

from swan_hub.form import Choice
from swan_hub.mounts import (
    CONTAINER_MOUNT_STATUS,
    CONTAINER_STATUS_FILE,
    MOUNT_STATUS_ENV,
    StorageMountConfig,
)
from swan_hub.singleuser import SINGLEUSER_COMMAND
from swan_hub.spawner import CREDENTIALS_FILE, SwanContainerMixin

SPACE_VOLUME = "swan-space"
VERSIONS_VOLUME = "swan-versions"
STORAGE_VOLUME = "swan-storage"
CREDENTIALS_VOLUME = "swan-credentials"
CREDENTIALS_COMPONENT = "swan-storage-credentials"
#: Read-only for the pod's user through its group: the kubelet gives the files to the pod's
#: fsGroup (SwanKubeSpawner sets it to container_gid).
CREDENTIALS_MODE = 0o440
#: The FUSE sidecar (mount_storage): its container, the volume it shares with the server's
#: container (the mounts propagate through it), and its private working folder (rclone's
#: config, write caches and log: never seen by the server's container).
MOUNT_CONTAINER = "swan-storage-mount"
FILES_VOLUME = "swan-files"
MOUNT_WORK_VOLUME = "swan-mount-work"
MOUNT_WORK_DIR = "/var/lib/swan/mount"
#: the sidecar's list of uploads the storage refuses, read by the server (read-only there)
MOUNT_STATUS_VOLUME = "swan-mount-status"
#: Seconds between two looks of the sidecar's readiness probe at its mounts.
MOUNT_READINESS_PERIOD = 10


class SwanKubeSpawner(SwanContainerMixin, StorageMountConfig, KubeSpawner):
    """Runs each user's server in a pod, with their storage space mounted as its home.

    ``space_template`` and ``versions_template`` name paths in the storage; ``storage_kind``
    says what holds them:

    - ``hostPath``: the paths on the node (e.g. an EOS or CephFS FUSE mount present on every
      node). With ``create_space`` off, a missing space makes the pod fail to start instead of
      being created empty.
    - ``pvc``: one shared ReadWriteMany claim (``storage_claim_name``) whose root is the path
      ``storage_root``; each user's directory is mounted with ``subPath``.
    - ``csi``: an inline CSI volume (``storage_csi``, e.g. the EOS or CVMFS CSI drivers) whose
      root is ``storage_root``, mounted with ``subPath`` like a claim.

    Only the user's own space and versions area are mounted. The pod runs as
    ``container_uid``/``container_gid`` (``fs_gid`` too, unless configured). The spawn form
    replaces KubeSpawner's ``profile_list``: each environment may carry a
    ``kubespawner_override`` applied like a profile's.

    Storage credentials (see ``storage_credentials``) go into a Secret of the user's own,
    ``<pod name>-swan-credentials``, created before the pod, mounted read-only at
    ``container_credentials_dir`` as a projected volume (which the kubelet updates in place
    when the Secret changes), updated while the server runs, owned by the pod once it runs
    (Kubernetes deletes it with the pod) and deleted when the server stops.

    With a WebDAV storage and ``mount_storage`` on, a privileged sidecar (``mount_image``,
    a native sidecar: Kubernetes 1.29+) makes in the pod the mounts StorageMountMixin makes on
    the hub's machine for local servers, with the same code and rclone options, into a volume
    shared with the server's container (``Bidirectional`` propagation there,
    ``HostToContainer`` here); the server starts once they are up and the sidecar unmounts
    them when the pod ends.
    """

    storage_kind = CaselessStrEnum(
        ["hostPath", "pvc", "csi"],
        default_value="hostPath",
        config=True,
        help="""
        What holds the users' spaces: ``hostPath`` (a path on every node), ``pvc`` (a shared
        ReadWriteMany PersistentVolumeClaim) or ``csi`` (an inline CSI volume).
        """,
    )

    storage_root = Unicode(
        "/",
        config=True,
        help="""
        For ``pvc`` and ``csi`` storage: the path, in the terms of ``space_template``, that is
        the root of the volume. With ``space_template = "/eos/user/{username[0]}/{username}"``
        and ``storage_root = "/eos"`` alice's space is mounted with ``subPath:
        user/a/alice``.
        """,
    )

    storage_claim_name = Unicode(
        "swan-storage",
        config=True,
        help="For ``pvc`` storage: the name of the shared PersistentVolumeClaim.",
    )

    storage_csi = Dict(
        config=True,
        help="""
        For ``csi`` storage: the ``csi`` block of the volume, e.g.
        ``{"driver": "eos.csi.cern.ch", "volumeAttributes": {...}}``.
        """,
    )

    mount_image = Unicode(
        "",
        config=True,
        help="""
        Image of the sidecar that mounts the storage for kernels and terminals
        (``mount_storage``): this project (with the rclone it installs) and Debian's ``fuse3``
        (``docker/build-image --target storage-mount``). Empty: the server's image, which must
        then hold them.
        """,
    )

    gpu_resource_name = Unicode(
        "nvidia.com/gpu",
        config=True,
        help="The extended resource requested (one unit) when a user asks for a GPU.",
    )

    @default("mount_storage")
    def _mount_storage_default(self) -> bool:
        # The sidecar is privileged: an administrator turns it on knowingly.
        return False

    @default("delete_grace_period")
    def _delete_grace_period_default(self) -> int:
        # Time for the sidecar's preStop to upload what code closed last, then unmount.
        return math.ceil(self.mount_upload_wait) + 10 if self.mounts_in_sidecar() else 1

    @default("cmd")
    def _cmd_default(self) -> list[str]:
        # KubeSpawner drops the arguments (which carry the contents manager's config) when
        # the command is left to the image.
        return [SINGLEUSER_COMMAND]

    @default("uid")
    def _uid_default(self) -> int:
        return self.container_uid

    @default("gid")
    def _gid_default(self) -> int:
        return self.container_gid

    @default("fs_gid")
    def _fs_gid_default(self) -> int:
        return self.container_gid

    def ensure_storage_dirs(self) -> None:
        # The hub cannot reach the nodes' or the volume's file system: the kubelet creates
        # (hostPath DirectoryOrCreate) or refuses (Directory) the space when the pod starts.
        pass

    def _storage_volume(self, name: str, path: str, must_exist: bool) -> tuple[dict, str]:
        """A pod volume holding ``path`` and the subPath of ``path`` inside it."""
        if self.storage_kind == "hostPath":
            kind = "Directory" if must_exist else "DirectoryOrCreate"
            return {"name": name, "hostPath": {"path": path, "type": kind}}, ""
        root = os.path.normpath(self.storage_root)
        sub_path = os.path.relpath(path, root)
        if sub_path == ".." or sub_path.startswith("../"):
            raise ValueError(f"{path} is not inside storage_root {root}")
        if self.storage_kind == "pvc":
            source = {"persistentVolumeClaim": {"claimName": self.storage_claim_name}}
        else:
            source = {"csi": dict(self.storage_csi)}
        return {"name": name, **source}, "" if sub_path == "." else sub_path

    def storage_volumes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The pod volumes and container mounts of the user's space and versions area.

        hostPath storage gets one volume per directory; a claim or CSI volume is one shared
        volume mounted twice with different subPaths.
        """
        shared = self.storage_kind != "hostPath"
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        areas = [
            (SPACE_VOLUME, self.space_path, self.server_space_path(), not self.create_space),
            (VERSIONS_VOLUME, self.versions_path, self.server_versions_path(), False),
        ]
        if self.mounts_in_sidecar():
            areas.pop(0)  # the space is the sidecar's mount (mount_volumes)
        for name, path, mount_path, must_exist in areas:
            volume, sub_path = self._storage_volume(
                STORAGE_VOLUME if shared else name, path, must_exist
            )
            if volume not in volumes:
                volumes.append(volume)
            mount = {"name": volume["name"], "mountPath": mount_path}
            if sub_path:
                mount["subPath"] = sub_path
            mounts.append(mount)
        return volumes, mounts

    def credentials_volumes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The pod volume and container mount of the credentials Secret (none without
        credentials)."""
        if not self._credentials:
            return [], []
        source = {
            "name": self.credentials_secret_name,
            "items": [{"key": CREDENTIALS_FILE, "path": CREDENTIALS_FILE}],
        }
        volume = {
            "name": CREDENTIALS_VOLUME,
            "projected": {"defaultMode": CREDENTIALS_MODE, "sources": [{"secret": source}]},
        }
        mount = {
            "name": CREDENTIALS_VOLUME,
            "mountPath": self.container_credentials_dir,
            "readOnly": True,
        }
        return [volume], [mount]

    # --- the FUSE sidecar (mount_storage) --------------------------------------------------

    def mounts_in_sidecar(self) -> bool:
        """Whether the pod gets the sidecar that mounts the WebDAV storage for code."""
        return bool(self.mount_storage and self.webdav_url())

    def files_volume_path(self) -> str:
        """Where the volume shared with the sidecar is, in both containers: the folder that
        holds the space's path, so that the sidecar's mount is at the space's path."""
        parent = os.path.dirname(self.server_space_path())
        if parent == "/":
            raise ValueError(
                f"The space's path in the pod ({self.server_space_path()}) must be inside a "
                "folder of its own (e.g. /home/{username}) to be mounted by the sidecar"
            )
        return parent

    def mount_volumes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The pod volumes of the sidecar (the shared one and its private working folder),
        and the server container's mount of the shared one, which sees the sidecar's mounts
        (HostToContainer) but cannot make any."""
        volumes = [
            {"name": FILES_VOLUME, "emptyDir": {}},
            {"name": MOUNT_WORK_VOLUME, "emptyDir": {}},
            {"name": MOUNT_STATUS_VOLUME, "emptyDir": {}},
        ]
        mount = {
            "name": FILES_VOLUME,
            "mountPath": self.files_volume_path(),
            "mountPropagation": "HostToContainer",
        }
        status = {
            "name": MOUNT_STATUS_VOLUME,
            "mountPath": CONTAINER_MOUNT_STATUS,
            "readOnly": True,
        }
        return volumes, [mount, status]

    def _mounts_command(self, *args: str) -> list[str]:
        return ["python3", "-m", "swan_hub.mounts", *args]

    def mount_sidecar(self) -> dict[str, Any]:
        """The sidecar container: ``python -m swan_hub.mounts sidecar`` (StorageMounts, as for
        a local server) as root, privileged for FUSE and Bidirectional propagation. A native
        sidecar (an init container that keeps running): the server's container starts once
        its startup probe sees the mounts, and it ends after the server's."""
        point = self.server_space_path()
        command = self._mounts_command(
            "sidecar",
            f"--url={self.webdav_url()}",
            f"--point={point}",
            f"--work-dir={MOUNT_WORK_DIR}",
            f"--uid={self.container_uid}",
            f"--gid={self.container_gid}",
            f"--interval={self.mount_refresh_interval:g}",
            f"--timeout={self.mount_timeout:g}",
            f"--upload-wait={self.mount_upload_wait:g}",
            f"--status-dir={CONTAINER_MOUNT_STATUS}",
        )
        if self._credentials:
            command.append(f"--credentials={self.server_credentials_path()}")
        if self.mount_read_cache:
            command.append("--read-cache")
        if self.mount_guard:
            command.append("--guard")
        mounts = [
            {
                "name": FILES_VOLUME,
                "mountPath": self.files_volume_path(),
                "mountPropagation": "Bidirectional",
            },
            {"name": MOUNT_WORK_VOLUME, "mountPath": MOUNT_WORK_DIR},
            {"name": MOUNT_STATUS_VOLUME, "mountPath": CONTAINER_MOUNT_STATUS},
        ]
        # Only the credentials file: the token command reads it whenever the storage
        # answers 401, so a renewed token is used without a restart.
        mounts += self.credentials_volumes()[1]
        probe = self._mounts_command("mounted", point)
        unmount = self._mounts_command(
            "unmount",
            point,
            f"--work-dir={MOUNT_WORK_DIR}",
            f"--upload-wait={self.mount_upload_wait:g}",
        )
        sidecar: dict[str, Any] = {
            "name": MOUNT_CONTAINER,
            "image": self.mount_image or self.image,
            "restartPolicy": "Always",
            "command": command,
            "securityContext": {"privileged": True, "runAsUser": 0, "runAsGroup": 0},
            "volumeMounts": mounts,
            "startupProbe": {
                "exec": {"command": probe},
                "periodSeconds": 1,
                "failureThreshold": math.ceil(self.mount_timeout) + 10,
            },
            "readinessProbe": {
                "exec": {"command": probe},
                "periodSeconds": MOUNT_READINESS_PERIOD,
            },
            "lifecycle": {"preStop": {"exec": {"command": unmount}}},
        }
        if self.image_pull_policy:
            sidecar["imagePullPolicy"] = self.image_pull_policy
        return sidecar

    async def get_pod_manifest(self) -> Any:
        volumes, mounts = self.storage_volumes()
        credential_volumes, credential_mounts = self.credentials_volumes()
        volumes += credential_volumes
        mounts += credential_mounts
        sidecars = []
        if self.mounts_in_sidecar():
            files_volumes, files_mounts = self.mount_volumes()
            volumes += files_volumes
            mounts = files_mounts + mounts
            sidecars.append(self.mount_sidecar())
        # KubeSpawner lists volumes and init containers from config; ours come first so an
        # admin's are kept, and are put back afterwards so a restart does not add them twice.
        admin_volumes, admin_mounts = self.volumes, self.volume_mounts
        admin_init_containers = self.init_containers
        self.volumes = [*volumes, *_as_list(admin_volumes)]
        self.volume_mounts = [*mounts, *_as_list(admin_mounts)]
        self.init_containers = [*sidecars, *_as_list(admin_init_containers)]
        self.working_dir = self.working_dir or self.server_space_path()
        try:
            return await super().get_pod_manifest()
        finally:
            self.volumes, self.volume_mounts = admin_volumes, admin_mounts
            self.init_containers = admin_init_containers

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        if self.webdav_url():
            # The server tells the user once when code sees only the local folder.
            env["SWAN_FILES_MOUNTED"] = "1" if self.mounts_in_sidecar() else "0"
            if self.mounts_in_sidecar():
                env[MOUNT_STATUS_ENV] = CONTAINER_STATUS_FILE
        return env

    # --- the credentials Secret ----------------------------------------------------------

    @property
    def credentials_secret_name(self) -> str:
        """The name of the user's credentials Secret (the pod's name is kept in the
        spawner's state, so a restarted hub finds the same Secret)."""
        return f"{self.pod_name}-swan-credentials"

    def get_credentials_secret_manifest(self, credentials: dict[str, Any]) -> V1Secret:
        """The Secret holding the credentials file's JSON under the key ``storage.json``."""
        labels = {
            **self.common_labels,
            "app.kubernetes.io/component": CREDENTIALS_COMPONENT,
            "component": CREDENTIALS_COMPONENT,
            "hub.jupyter.org/username": safe_slug(self.user.name, is_valid=is_valid_label),
        }
        return V1Secret(
            api_version="v1",
            kind="Secret",
            type="Opaque",
            metadata=V1ObjectMeta(
                name=self.credentials_secret_name,
                labels=labels,
                annotations={"hub.jupyter.org/username": self.user.name},
            ),
            data={CREDENTIALS_FILE: _base64_json(credentials)},
        )

    async def _kubernetes(self, call: Any) -> Any:
        return await asyncio.wait_for(call, self.k8s_api_request_timeout)

    async def store_credentials(self, credentials: dict[str, Any]) -> None:
        """Create the credentials Secret, or update the data of the existing one (a refresh,
        or one left by a server that was not stopped cleanly)."""
        secret = self.get_credentials_secret_manifest(credentials)
        try:
            await self._kubernetes(self.api.create_namespaced_secret(self.namespace, secret))
        except ApiException as e:
            if e.status != 409:
                raise
            await self._kubernetes(
                self.api.patch_namespaced_secret(
                    self.credentials_secret_name, self.namespace, {"data": secret.data}
                )
            )

    async def _let_the_pod_own_the_credentials(self) -> None:
        """Make the running pod the owner of the Secret, so that Kubernetes deletes the Secret
        with the pod even if the hub never stops the server."""
        pod = await self._kubernetes(self.api.read_namespaced_pod(self.pod_name, self.namespace))
        owner = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": self.pod_name,
            "uid": pod.metadata.uid,
        }
        await self._kubernetes(
            self.api.patch_namespaced_secret(
                self.credentials_secret_name,
                self.namespace,
                {"metadata": {"ownerReferences": [owner]}},
            )
        )

    async def discard_credentials(self) -> None:
        try:
            await self._kubernetes(
                self.api.delete_namespaced_secret(self.credentials_secret_name, self.namespace)
            )
        except ApiException as e:
            if e.status != 404:
                raise

    async def start(self) -> Any:
        result = await super().start()
        if self._credentials:
            try:
                await self._let_the_pod_own_the_credentials()
            except Exception:
                # stop() still deletes the Secret; only a hub that dies first leaves it
                self.log.exception(
                    "Could not make the pod of %s own its credentials Secret", self.server_label
                )
        return result

    def apply_choice(self, choice: Choice) -> None:
        super().apply_choice(choice)
        if self.mem_guarantee and self.mem_guarantee > choice.memory:
            self.mem_guarantee = choice.memory
        if self.cpu_guarantee and self.cpu_guarantee > choice.cpu:
            self.cpu_guarantee = choice.cpu
        if choice.environment.image:
            self.image = choice.environment.image
        if choice.gpu:
            self.extra_resource_limits = {**self.extra_resource_limits, self.gpu_resource_name: "1"}
        for key, value in choice.environment.kubespawner_override.items():
            current = getattr(self, key)
            if isinstance(value, dict) and isinstance(current, dict):
                # Merged at every depth, a None removing a key, as KubeSpawner merges a
                # profile's override; into copies, so neither the admin's config nor the
                # form's (shared by every spawn) is changed.
                merged = copy.deepcopy(current)
                recursive_update(merged, copy.deepcopy(value))
                setattr(self, key, merged)
            else:
                setattr(self, key, value)


def _as_list(value: Any) -> list[Any]:
    # KubeSpawner accepts volumes as a list or as a dict keyed by name (sorted by key).
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    return list(value)


def _base64_json(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode("utf-8")).decode("ascii")
