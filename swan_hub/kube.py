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
import os
from typing import Any

from kubernetes_asyncio.client import V1ObjectMeta, V1Secret
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.slugs import is_valid_label, safe_slug
from kubespawner.utils import recursive_update
from traitlets import CaselessStrEnum, Dict, Unicode, default

from swan_hub.form import Choice
from swan_hub.spawner import CREDENTIALS_FILE, SwanContainerMixin

SPACE_VOLUME = "swan-space"
VERSIONS_VOLUME = "swan-versions"
STORAGE_VOLUME = "swan-storage"
CREDENTIALS_VOLUME = "swan-credentials"
CREDENTIALS_COMPONENT = "swan-storage-credentials"
#: Read-only for the pod's user through its group: the kubelet gives the files to the pod's
#: fsGroup (SwanKubeSpawner sets it to container_gid).
CREDENTIALS_MODE = 0o440


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

    Storage credentials (see ``storage_credentials``) go into a Secret of the user's own,
    ``<pod name>-swan-credentials``, created before the pod, mounted read-only at
    ``container_credentials_dir`` as a projected volume (which the kubelet updates in place
    when the Secret changes), updated while the server runs, owned by the pod once it runs
    (Kubernetes deletes it with the pod) and deleted when the server stops.
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

    async def get_pod_manifest(self) -> Any:
        volumes, mounts = self.storage_volumes()
        credential_volumes, credential_mounts = self.credentials_volumes()
        volumes += credential_volumes
        mounts += credential_mounts
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
