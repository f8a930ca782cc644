"""SwanKubeSpawner: each user's server in a Kubernetes pod, with the storage space mounted
from a hostPath, a shared PersistentVolumeClaim or a CSI volume.

This module owns turning the space and versions templates into pod volumes and mounts, and
applying the spawn form's choice to the pod (image, limits, GPU, overrides). It must not talk to
the Kubernetes API itself: KubeSpawner does that.
"""

from __future__ import annotations

import os
from typing import Any

from kubespawner import KubeSpawner
from traitlets import CaselessStrEnum, Dict, Unicode, default

from swan_hub.form import Choice
from swan_hub.spawner import SwanContainerMixin

SPACE_VOLUME = "swan-space"
VERSIONS_VOLUME = "swan-versions"
STORAGE_VOLUME = "swan-storage"


class SwanKubeSpawner(SwanContainerMixin, KubeSpawner):
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

    gpu_resource_name = Unicode(
        "nvidia.com/gpu",
        config=True,
        help="The extended resource requested (one unit) when a user asks for a GPU.",
    )

    @default("cmd")
    def _cmd_default(self) -> list[str]:
        # KubeSpawner drops the arguments (which carry the contents manager's config) when
        # the command is left to the image.
        return ["jupyterhub-singleuser"]

    @default("uid")
    def _uid_default(self) -> int:
        return self.container_uid

    @default("gid")
    def _gid_default(self) -> int:
        return self.container_gid

    @default("fs_gid")
    def _fs_gid_default(self) -> int:
        return self.container_gid

    @default("storage_credentials")
    def _storage_credentials_default(self) -> Any:
        # The hub's file system is not the pod's: credentials files are a Docker/local
        # feature until they are handed over as Kubernetes Secrets.
        return lambda spawner, auth_state: None

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
        for name, path, mount_path, must_exist in (
            (SPACE_VOLUME, self.space_path, self.server_space_path(), not self.create_space),
            (VERSIONS_VOLUME, self.versions_path, self.server_versions_path(), False),
        ):
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

    async def get_pod_manifest(self) -> Any:
        volumes, mounts = self.storage_volumes()
        # KubeSpawner lists volumes from config; ours come first so an admin's extra volumes
        # are kept, and are put back afterwards so a restart does not add them twice.
        admin_volumes, admin_mounts = self.volumes, self.volume_mounts
        self.volumes = [*volumes, *_as_list(admin_volumes)]
        self.volume_mounts = [*mounts, *_as_list(admin_mounts)]
        self.working_dir = self.working_dir or self.server_space_path()
        try:
            return await super().get_pod_manifest()
        finally:
            self.volumes, self.volume_mounts = admin_volumes, admin_mounts

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
                setattr(self, key, {**current, **value})
            else:
                setattr(self, key, value)


def _as_list(value: Any) -> list[Any]:
    # KubeSpawner accepts volumes as a list or as a dict keyed by name (sorted by key).
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    return list(value)
