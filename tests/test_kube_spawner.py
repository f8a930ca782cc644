"""SwanKubeSpawner's pod, rendered by KubeSpawner's own manifest code without a cluster
(Kubernetes cannot run here; KubeSpawner's `_mock` mode and a dummy kubeconfig build the same
pod it would create): volumes and mounts of each storage kind, environment, limits, and the
spawn form's choice standing in for profiles."""

from __future__ import annotations

import pytest
from traitlets.config import Config

FORM = {
    "environments": [
        {"id": "py", "display_name": "Python", "image": "registry.example.org/swan/py:1"},
        {
            "id": "ml",
            "display_name": "ML with GPU",
            "image": "registry.example.org/swan/ml:1",
            "env": {"SWAN_STACK": "ml-2026"},
            "kubespawner_override": {
                "node_selector": {"gpu": "true"},
                "extra_labels": {"swan/stack": "ml"},
            },
        },
    ],
    "cpu": {"choices": [1, 2, 4], "default": 1},
    "memory": {"choices": ["2G", "8G"], "default": "2G"},
    "gpu": {"available": True},
}

DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: dummy
  cluster:
    server: https://127.0.0.1:1
users:
- name: dummy
  user:
    token: dummy
contexts:
- name: dummy
  context:
    cluster: dummy
    user: dummy
    namespace: swan
current-context: dummy
"""


class User:
    """The few attributes of a JupyterHub user that KubeSpawner reads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.id = 7
        self.url = f"/user/{name}/"

    async def get_auth_state(self) -> None:
        return None


@pytest.fixture(autouse=True)
def dummy_kubeconfig(tmp_path, monkeypatch):
    # Read when kubernetes_asyncio is first imported (KubeSpawner's own tests do the same).
    path = tmp_path / "kubeconfig"
    path.write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))


def make_spawner(name: str = "alice", **config):
    from swan_hub import SwanKubeSpawner

    c = Config()
    c.SwanSpawnerMixin.space_template = "/eos/user/{username[0]}/{username}"
    c.SwanSpawnerMixin.versions_template = "/eos/swan-versions/{username}"
    c.SwanSpawnerMixin.form_config = FORM
    for key, value in config.items():
        section, _, trait = key.partition("__")
        c[section][trait] = value
    return SwanKubeSpawner(_mock=True, user=User(name), config=c)


async def manifest(spawner, user_options=None):
    """The pod manifest after the spawn form's choice is validated and applied, as in start."""
    spawner.user_options = user_options or {}
    spawner.choice = spawner.spawn_form.validate(spawner.user_options)
    spawner.apply_choice(spawner.choice)
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    # The JSON that KubeSpawner would send to the API server.
    from kubernetes_asyncio.client import ApiClient

    return ApiClient().sanitize_for_serialization(pod)


def container(pod):
    return pod["spec"]["containers"][0]


def env_of(pod) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(pod)["env"] if "value" in e}


def volumes_of(pod) -> dict[str, dict]:
    return {v["name"]: v for v in pod["spec"]["volumes"]}


def mounts_of(pod) -> dict[str, dict]:
    return {m["name"]: m for m in container(pod)["volumeMounts"]}


async def test_a_host_path_space_is_mounted_at_the_same_path_as_the_users_home():
    pod = await manifest(make_spawner())
    volumes = volumes_of(pod)
    assert volumes["swan-space"]["hostPath"] == {
        "path": "/eos/user/a/alice",
        "type": "DirectoryOrCreate",
    }
    assert volumes["swan-versions"]["hostPath"]["path"] == "/eos/swan-versions/alice"
    mounts = mounts_of(pod)
    assert mounts["swan-space"]["mountPath"] == "/eos/user/a/alice"
    assert mounts["swan-versions"]["mountPath"] == "/var/lib/swan/versions"
    assert env_of(pod)["HOME"] == "/eos/user/a/alice"
    assert container(pod)["workingDir"] == "/eos/user/a/alice"
    args = container(pod)["args"]
    assert args[0] == "swan-singleuser"
    assert "--ServerApp.root_dir=/eos/user/a/alice" in args
    assert "--ServerApp.contents_manager_class=swan_contents.SwanContentsManager" in args


async def test_a_missing_host_path_space_fails_the_pod_when_creation_is_off():
    pod = await manifest(make_spawner(SwanSpawnerMixin__create_space=False))
    assert volumes_of(pod)["swan-space"]["hostPath"]["type"] == "Directory"


async def test_a_shared_claim_mounts_each_users_directory_with_a_sub_path():
    spawner = make_spawner(
        "bob",
        SwanKubeSpawner__storage_kind="pvc",
        SwanKubeSpawner__storage_root="/eos",
        SwanKubeSpawner__storage_claim_name="eos-home",
        SwanContainerMixin__container_space_template="/home/{username}",
    )
    pod = await manifest(spawner)
    claims = [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert [v["persistentVolumeClaim"]["claimName"] for v in claims] == ["eos-home"]
    mounts = {
        m["mountPath"]: m["subPath"] for m in container(pod)["volumeMounts"] if "subPath" in m
    }
    assert mounts == {"/home/bob": "user/b/bob", "/var/lib/swan/versions": "swan-versions/bob"}


async def test_a_csi_volume_carries_the_driver_config():
    spawner = make_spawner(
        SwanKubeSpawner__storage_kind="csi",
        SwanKubeSpawner__storage_root="/eos",
        SwanKubeSpawner__storage_csi={"driver": "eos.csi.cern.ch", "readOnly": False},
    )
    pod = await manifest(spawner)
    csi = [v["csi"] for v in pod["spec"]["volumes"] if "csi" in v]
    assert csi == [{"driver": "eos.csi.cern.ch", "readOnly": False}]


async def test_a_space_outside_the_storage_root_is_refused():
    spawner = make_spawner(
        SwanKubeSpawner__storage_kind="pvc", SwanKubeSpawner__storage_root="/cephfs"
    )
    with pytest.raises(ValueError, match="not inside storage_root"):
        await manifest(spawner)


async def test_the_form_choice_sets_image_limits_gpu_and_the_environments_overrides():
    pod = await manifest(
        make_spawner(), {"environment": "ml", "cpu": "4", "memory": "8G", "gpu": "yes"}
    )
    c = container(pod)
    assert c["image"] == "registry.example.org/swan/ml:1"
    assert int(c["resources"]["limits"]["memory"]) == 8 * 1024**3
    assert float(c["resources"]["limits"]["cpu"]) == 4
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["nodeSelector"] == {"gpu": "true"}
    assert pod["metadata"]["labels"]["swan/stack"] == "ml"
    assert env_of(pod)["SWAN_STACK"] == "ml-2026"


NESTED_OVERRIDE = {
    "id": "gpu-node",
    "display_name": "On a GPU node",
    "kubespawner_override": {
        "node_selector": {"zone": None, "gpu": "true"},
        "extra_resource_limits": {"ephemeral-storage": "20Gi"},
        "extra_container_config": {
            "lifecycle": {"postStart": {"exec": {"command": ["swan-warm-cache"]}}}
        },
    },
}


def with_nested_override(**config):
    form = {**FORM, "environments": [*FORM["environments"], NESTED_OVERRIDE]}
    return make_spawner(
        SwanSpawnerMixin__form_config=form,
        KubeSpawner__node_selector={"zone": "a", "disk": "ssd"},
        KubeSpawner__extra_container_config={
            "lifecycle": {"preStop": {"exec": {"command": ["swan-flush"]}}}
        },
        **config,
    )


async def test_an_environments_override_is_merged_at_every_depth_like_a_profiles():
    import kubernetes_validate

    pod = await manifest(with_nested_override(), {"environment": "gpu-node", "gpu": "yes"})
    # a None removes the admin's key; the others are kept beside the override's
    assert pod["spec"]["nodeSelector"] == {"disk": "ssd", "gpu": "true"}
    limits = container(pod)["resources"]["limits"]
    assert (limits["nvidia.com/gpu"], limits["ephemeral-storage"]) == ("1", "20Gi")
    assert container(pod)["lifecycle"] == {
        "preStop": {"exec": {"command": ["swan-flush"]}},
        "postStart": {"exec": {"command": ["swan-warm-cache"]}},
    }
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    kubernetes_validate.validate(pod, "1.30", strict=True)


async def test_an_override_changes_neither_the_admins_config_nor_the_next_spawn():
    spawner = with_nested_override()
    await manifest(spawner, {"environment": "gpu-node"})
    assert spawner.config.KubeSpawner.node_selector == {"zone": "a", "disk": "ssd"}
    assert NESTED_OVERRIDE["kubespawner_override"]["node_selector"] == {"zone": None, "gpu": "true"}
    pod = await manifest(with_nested_override(), {"environment": "py"})
    assert pod["spec"]["nodeSelector"] == {"zone": "a", "disk": "ssd"}
    assert "postStart" not in container(pod)["lifecycle"]


async def test_the_pod_runs_as_the_container_uid_not_root():
    pod = await manifest(make_spawner(SwanContainerMixin__container_uid=1234))
    assert container(pod)["securityContext"]["runAsUser"] == 1234
    assert pod["spec"]["securityContext"]["fsGroup"] == 1000


async def test_a_guarantee_above_the_chosen_limit_is_lowered_to_it():
    pod = await manifest(make_spawner(KubeSpawner__mem_guarantee="4G"), {"memory": "2G"})
    assert int(container(pod)["resources"]["requests"]["memory"]) == 2 * 1024**3


async def test_tampered_options_are_refused_before_any_pod_is_built():
    from swan_hub.form import InvalidChoice

    with pytest.raises(InvalidChoice, match="Unknown spawn option"):
        await manifest(make_spawner(), {"profile": "admin-only"})


async def test_the_pod_manifest_is_valid_for_kubernetes():
    import kubernetes_validate

    pod = await manifest(make_spawner(), {"environment": "ml", "gpu": True})
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    kubernetes_validate.validate(pod, "1.30", strict=True)


async def test_the_swan_form_replaces_the_profile_list_only_when_configured():
    spawner = make_spawner()
    form = await spawner.get_options_form()
    assert 'name="environment"' in form
    # a pod's CPU and memory are capped by Kubernetes: no "not enforced" note
    assert "swan-limits-note" not in form

    from swan_hub import SwanKubeSpawner

    c = Config()
    c.KubeSpawner.profile_list = [{"display_name": "Upstream profile", "slug": "up"}]
    upstream = SwanKubeSpawner(_mock=True, user=User("alice"), config=c)
    assert upstream.spawn_form is None
    assert "Upstream profile" in await upstream.get_options_form()
    assert upstream.run_options_from_form({"profile": ["up"]}) == {"profile": "up"}


# -- storage credentials: a Secret per user ---------------------------------------------------

BEARER = {"kind": "bearer", "token": "eyJ.access-token-of-alice.sig"}


def with_credentials(credentials: dict | None = BEARER, **config):
    return make_spawner(
        SwanSpawnerMixin__storage_credentials=lambda spawner, auth_state: credentials, **config
    )


async def credentials_pod(spawner) -> dict:
    """The pod manifest after the credentials were handed over, as in start."""
    spawner.api = KubernetesAPIStandIn()
    await spawner.hand_over_credentials()
    return await manifest(spawner)


def serialized(obj) -> dict:
    from kubernetes_asyncio.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


async def test_the_credentials_secret_holds_the_file_the_server_reads():
    import base64
    import json

    import kubernetes_validate

    spawner = with_credentials()
    credentials = await spawner.current_credentials()
    secret = serialized(spawner.get_credentials_secret_manifest(credentials))
    assert secret["metadata"]["name"] == f"{spawner.pod_name}-swan-credentials"
    assert secret["type"] == "Opaque"
    assert json.loads(base64.b64decode(secret["data"]["storage.json"])) == BEARER
    labels = secret["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "swan-storage-credentials"
    assert labels["hub.jupyter.org/username"] == "alice"
    kubernetes_validate.validate(secret, "1.30", strict=True)


async def test_the_pod_mounts_the_secret_read_only_where_the_server_looks():
    import json

    import kubernetes_validate

    pod = await credentials_pod(with_credentials())
    volume = volumes_of(pod)["swan-credentials"]
    assert volume["projected"] == {
        "defaultMode": 0o440,
        "sources": [
            {
                "secret": {
                    "name": f"{pod['metadata']['name']}-swan-credentials",
                    "items": [{"key": "storage.json", "path": "storage.json"}],
                }
            }
        ],
    }
    mount = mounts_of(pod)["swan-credentials"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/run/swan/credentials", True)
    assert "subPath" not in mount  # a subPath mount would never see an updated Secret
    assert env_of(pod)["SWAN_STORAGE_CREDENTIALS"] == "/run/swan/credentials/storage.json"
    # the pod's group can read the file: the kubelet gives it to the pod's fsGroup
    assert (
        pod["spec"]["securityContext"]["fsGroup"] == container(pod)["securityContext"]["runAsGroup"]
    )
    assert BEARER["token"] not in json.dumps(pod)
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    kubernetes_validate.validate(pod, "1.30", strict=True)


async def test_without_credentials_the_pod_gets_no_secret_and_no_variable():
    pod = await credentials_pod(with_credentials(None))
    assert "swan-credentials" not in volumes_of(pod)
    assert "swan-credentials" not in mounts_of(pod)
    assert "SWAN_STORAGE_CREDENTIALS" not in env_of(pod)


class KubernetesAPIStandIn:
    """Stands in for KubeSpawner's CoreV1Api client, since no Kubernetes API server can run
    here: it keeps Secrets in a dict and answers as the API server does (409 AlreadyExists on a
    second create, 404 NotFound for a missing object, a strategic merge for a patch of maps).
    Each call must bind to the signature of the real client's method."""

    def __init__(self, pod_uid: str = "6f1c0c56-2d8e-4c1e-9a57-0b8d52c1f0aa"):
        self.pod_uid = pod_uid
        self.secrets: dict[str, dict] = {}
        self.calls: list[str] = []

    def _call(self, method: str, *args, **kwargs) -> None:
        import inspect

        from kubernetes_asyncio.client import CoreV1Api

        inspect.signature(getattr(CoreV1Api, method)).bind(None, *args, **kwargs)
        self.calls.append(method)

    @staticmethod
    def _missing(kind: str, name: str):
        from kubernetes_asyncio.client.rest import ApiException

        return ApiException(status=404, reason=f'{kind} "{name}" not found')

    async def create_namespaced_secret(self, namespace, body, **kwargs):
        from kubernetes_asyncio.client.rest import ApiException

        self._call("create_namespaced_secret", namespace, body, **kwargs)
        secret = serialized(body)
        if secret["metadata"]["name"] in self.secrets:
            raise ApiException(status=409, reason="AlreadyExists")
        self.secrets[secret["metadata"]["name"]] = secret
        return body

    async def patch_namespaced_secret(self, name, namespace, body, **kwargs):
        self._call("patch_namespaced_secret", name, namespace, body, **kwargs)
        if name not in self.secrets:
            raise self._missing("secrets", name)
        secret = self.secrets[name]
        secret["data"] = {**secret.get("data", {}), **body.get("data", {})}
        secret["metadata"].update(body.get("metadata", {}))
        return secret

    async def delete_namespaced_secret(self, name, namespace, **kwargs):
        self._call("delete_namespaced_secret", name, namespace, **kwargs)
        if self.secrets.pop(name, None) is None:
            raise self._missing("secrets", name)

    async def read_namespaced_pod(self, name, namespace, **kwargs):
        from kubernetes_asyncio.client import V1ObjectMeta, V1Pod

        self._call("read_namespaced_pod", name, namespace, **kwargs)
        return V1Pod(metadata=V1ObjectMeta(name=name, namespace=namespace, uid=self.pod_uid))


async def test_the_secret_is_created_refreshed_owned_by_the_pod_and_deleted():
    import base64
    import json

    import kubernetes_validate

    state = {"token": "first-token"}
    spawner = make_spawner(
        SwanSpawnerMixin__storage_credentials=lambda spawner, auth_state: {
            "kind": "bearer",
            "token": state["token"],
        }
    )
    api = spawner.api = KubernetesAPIStandIn()
    name = spawner.credentials_secret_name

    def stored_token() -> str:
        return json.loads(base64.b64decode(api.secrets[name]["data"]["storage.json"]))["token"]

    await spawner.hand_over_credentials()
    await spawner._let_the_pod_own_the_credentials()
    owner = api.secrets[name]["metadata"]["ownerReferences"]
    assert owner == [
        {"apiVersion": "v1", "kind": "Pod", "name": spawner.pod_name, "uid": api.pod_uid}
    ]
    kubernetes_validate.validate(api.secrets[name], "1.30", strict=True)

    assert await spawner.refresh_credentials() is False  # unchanged: no call
    state["token"] = "refreshed-token"
    assert await spawner.refresh_credentials() is True
    assert stored_token() == "refreshed-token"
    assert api.secrets[name]["metadata"]["ownerReferences"] == owner

    await spawner.discard_credentials()
    assert name not in api.secrets
    await spawner.discard_credentials()  # already gone: nothing to do
    assert api.calls == [
        "create_namespaced_secret",
        "read_namespaced_pod",
        "patch_namespaced_secret",
        "create_namespaced_secret",
        "patch_namespaced_secret",
        "delete_namespaced_secret",
        "delete_namespaced_secret",
    ]


async def test_a_secret_left_by_an_earlier_server_is_updated_not_duplicated():
    spawner = with_credentials()
    api = spawner.api = KubernetesAPIStandIn()
    await spawner.store_credentials({"kind": "bearer", "token": "old"})
    await spawner.store_credentials(BEARER)
    assert len(api.secrets) == 1
    assert api.calls[-2:] == ["create_namespaced_secret", "patch_namespaced_secret"]


# -- the FUSE sidecar: the WebDAV storage mounted for kernels and terminals ------------------

WEBDAV = "https://cloud.example.org/remote.php/dav/files/{username}/"


def with_mount(**config):
    defaults = {
        "SwanSpawnerMixin__webdav_url_template": WEBDAV,
        "SwanContainerMixin__container_space_template": "/home/{username}",
        "SwanKubeSpawner__mount_storage": True,
    }
    return with_credentials(**{**defaults, **config})


def sidecar_of(pod) -> dict:
    (sidecar,) = [c for c in pod["spec"].get("initContainers", []) if c["name"] == MOUNT_SIDECAR]
    return sidecar


MOUNT_SIDECAR = "swan-storage-mount"


async def test_the_sidecar_mounts_the_space_where_the_server_sees_it():
    pod = await credentials_pod(with_mount())
    sidecar = sidecar_of(pod)
    # a native sidecar: started before the server, kept running, ended after it
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["command"][:4] == ["python3", "-m", "swan_hub.mounts", "sidecar"]
    assert "--url=https://cloud.example.org/remote.php/dav/files/alice/" in sidecar["command"]
    assert "--point=/home/alice" in sidecar["command"]
    assert "--uid=1000" in sidecar["command"] and "--gid=1000" in sidecar["command"]
    assert "--credentials=/run/swan/credentials/storage.json" in sidecar["command"]
    assert volumes_of(pod)["swan-files"] == {"name": "swan-files", "emptyDir": {}}
    shared = {m["name"]: m for m in sidecar["volumeMounts"]}["swan-files"]
    assert (shared["mountPath"], shared["mountPropagation"]) == ("/home", "Bidirectional")
    seen = mounts_of(pod)["swan-files"]
    assert (seen["mountPath"], seen["mountPropagation"]) == ("/home", "HostToContainer")
    # the server works in the mount: no other volume holds its space
    assert "swan-space" not in volumes_of(pod) and "swan-space" not in mounts_of(pod)
    assert container(pod)["workingDir"] == "/home/alice"
    assert "--ServerApp.root_dir=/home/alice" in container(pod)["args"]
    assert env_of(pod)["SWAN_FILES_MOUNTED"] == "1"
    # the sidecar lists the uploads the storage refuses where the server reads them
    assert "--status-dir=/run/swan-mount-status" in sidecar["command"]
    status = {m["name"]: m for m in sidecar["volumeMounts"]}["swan-mount-status"]
    assert status["mountPath"] == "/run/swan-mount-status" and not status.get("readOnly")
    assert mounts_of(pod)["swan-mount-status"] == {
        "name": "swan-mount-status",
        "mountPath": "/run/swan-mount-status",
        "readOnly": True,
    }
    assert env_of(pod)["SWAN_MOUNT_STATUS"] == "/run/swan-mount-status/status.json"


async def test_only_the_sidecar_is_privileged_and_it_holds_no_secret():
    spawner = with_mount()
    pod = await credentials_pod(spawner)
    sidecar = sidecar_of(pod)
    assert sidecar["securityContext"] == {"privileged": True, "runAsUser": 0, "runAsGroup": 0}
    server = container(pod)["securityContext"]
    assert not server.get("privileged") and server["allowPrivilegeEscalation"] is False
    assert server["runAsUser"] == 1000
    # the credentials reach the sidecar as the renewed file, read-only; rclone's private
    # working folder is the sidecar's alone
    mounts = {m["name"]: m for m in sidecar["volumeMounts"]}
    assert mounts["swan-credentials"] == {
        "name": "swan-credentials",
        "mountPath": "/run/swan/credentials",
        "readOnly": True,
    }
    assert mounts["swan-mount-work"]["mountPath"] == "/var/lib/swan/mount"
    assert "swan-mount-work" not in mounts_of(pod)
    assert "env" not in sidecar and "envFrom" not in sidecar
    assert "access-token-of-alice" not in str(pod)


async def test_the_server_starts_once_the_mounts_answer_and_the_end_unmounts_them():
    spawner = with_mount(StorageMountConfig__mount_timeout=20.0)
    pod = await credentials_pod(spawner)
    sidecar = sidecar_of(pod)
    probe = ["python3", "-m", "swan_hub.mounts", "mounted", "/home/alice"]
    assert sidecar["startupProbe"]["exec"]["command"] == probe
    assert (
        sidecar["startupProbe"]["periodSeconds"] * sidecar["startupProbe"]["failureThreshold"] >= 20
    )
    assert sidecar["readinessProbe"]["exec"]["command"] == probe
    pre_stop = sidecar["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[:5] == ["python3", "-m", "swan_hub.mounts", "unmount", "/home/alice"]
    assert "--upload-wait=30" in pre_stop
    # the pod is given the time to upload what code closed last before it is killed
    assert spawner.delete_grace_period >= 30


async def test_the_sidecar_pod_is_valid_kubernetes_with_native_sidecars():
    import kubernetes_validate

    pod = await credentials_pod(
        with_mount(
            KubeSpawner__init_containers=[{"name": "setup", "image": "busybox"}],
            SwanKubeSpawner__mount_image="registry.example.org/swan/storage-mount:1",
            SwanKubeSpawner__mount_read_cache=True,
        )
    )
    assert [c["name"] for c in pod["spec"]["initContainers"]] == [MOUNT_SIDECAR, "setup"]
    assert sidecar_of(pod)["image"] == "registry.example.org/swan/storage-mount:1"
    assert "--read-cache" in sidecar_of(pod)["command"]
    assert "--guard" in sidecar_of(pod)["command"]  # mount_guard is on by default
    pod = {"apiVersion": "v1", "kind": "Pod", **pod}
    # Native sidecars (restartPolicy in an init container) came with Kubernetes 1.29.
    kubernetes_validate.validate(pod, "1.29.0", strict=True)
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


async def test_without_a_webdav_storage_or_with_the_mount_off_there_is_no_sidecar():
    for spawner in (
        make_spawner(SwanKubeSpawner__mount_storage=True),
        with_credentials(SwanSpawnerMixin__webdav_url_template=WEBDAV),
    ):
        pod = await credentials_pod(spawner)
        assert "initContainers" not in pod["spec"] or not pod["spec"]["initContainers"]
        assert "swan-files" not in volumes_of(pod)
        assert spawner.delete_grace_period == 1
    assert env_of(pod)["SWAN_FILES_MOUNTED"] == "0"


async def test_a_space_path_without_a_folder_of_its_own_is_refused_clearly():
    spawner = with_mount(SwanContainerMixin__container_space_template="/{username}")
    with pytest.raises(ValueError, match="folder of its own"):
        await credentials_pod(spawner)
