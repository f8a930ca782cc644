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
    assert args[0] == "jupyterhub-singleuser"
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
    assert 'name="environment"' in await spawner.get_options_form()

    from swan_hub import SwanKubeSpawner

    c = Config()
    c.KubeSpawner.profile_list = [{"display_name": "Upstream profile", "slug": "up"}]
    upstream = SwanKubeSpawner(_mock=True, user=User("alice"), config=c)
    assert upstream.spawn_form is None
    assert "Upstream profile" in await upstream.get_options_form()
    assert upstream.run_options_from_form({"profile": ["up"]}) == {"profile": "up"}
