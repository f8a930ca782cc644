"""The Helm chart helm/swan, linted and rendered by Helm's own engine (helm-python-sdk wraps
Helm's Go SDK) for the default values and every documented example, each manifest validated
against the Kubernetes schemas; and the hub configuration it renders, loaded by JupyterHub's
config loader, gives a SwanKubeSpawner whose pod mounts the configured storage."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml
from test_kube_spawner import (  # noqa: F401 (dummy_kubeconfig: an autouse fixture)
    KubernetesAPIStandIn,
    User,
    dummy_kubeconfig,
    manifest,
)
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

CHART = Path(__file__).resolve().parent.parent / "helm" / "swan"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
# The oldest Kubernetes the chart declares support for is checked too.
KUBERNETES_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]


def values_of(example: Path | None) -> dict:
    return yaml.safe_load(example.read_text()) if example else {}


def render(values: dict) -> list[dict]:
    """Every manifest the chart renders for ``values``, as dicts."""
    chart = helm_python.Chart.load(str(CHART))
    try:
        files = chart.render(values, name="swan", namespace="swan")
    finally:
        chart.close()
    manifests = []
    for text in files.values():
        manifests += [doc for doc in yaml.safe_load_all(text) if doc]
    return manifests


def by_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


CASES = [None, *EXAMPLES]
IDS = ["default values", *[e.stem for e in EXAMPLES]]


def test_there_are_documented_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("example", CASES, ids=IDS)
def test_the_chart_lints_without_errors(example):
    result = helm_python.lint(str(CHART), values_of(example), strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []


@pytest.mark.parametrize("example", CASES, ids=IDS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_manifest_is_valid_kubernetes(example, version):
    manifests = render(values_of(example))
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "Role", "RoleBinding"} <= kinds
    for m in manifests:
        kubernetes_validate.validate(m, version, strict=True)


def test_default_values_keep_the_hub_database_on_a_claim_and_run_the_culler():
    manifests = render({})
    claim = by_kind(manifests, "PersistentVolumeClaim")["swan-hub-db"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    hub = by_kind(manifests, "Deployment")["swan-hub"]["spec"]["template"]["spec"]
    data = [v for v in hub["volumes"] if v["name"] == "data"][0]
    assert data["persistentVolumeClaim"]["claimName"] == "swan-hub-db"
    assert "Ingress" not in {m["kind"] for m in manifests}
    assert "NetworkPolicy" not in {m["kind"] for m in manifests}


def test_the_rbac_lets_the_hub_manage_pods_but_nothing_cluster_wide():
    manifests = render({})
    role = by_kind(manifests, "Role")["swan-hub"]
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"pods", "persistentvolumeclaims", "events"} <= resources
    secrets = {v for rule in role["rules"] if "secrets" in rule["resources"] for v in rule["verbs"]}
    # the users' credentials Secrets: created, updated while servers run, deleted at stop
    assert {"create", "patch", "delete"} <= secrets
    assert "ClusterRole" not in {m["kind"] for m in manifests}
    assert render({"rbac": {"create": False}}) and "Role" not in {
        m["kind"] for m in render({"rbac": {"create": False}})
    }


def test_secrets_never_reach_the_config_map():
    values = values_of(CHART / "examples" / "external-db-csi.yaml")
    values["proxy"] = {"secretToken": "proxy-token-value"}
    values["hub"]["cookieSecret"] = "cookie-secret-value"
    values["hub"]["cryptKey"] = "crypt-key-value"
    manifests = render(values)
    config = yaml.safe_dump(by_kind(manifests, "ConfigMap"))
    for secret in ("change-me", "proxy-token-value", "cookie-secret-value", "crypt-key-value"):
        assert secret not in config


def test_ingress_and_network_policies_follow_the_values():
    manifests = render(values_of(CHART / "examples" / "nfs-claim-ingress.yaml"))
    ingress = by_kind(manifests, "Ingress")["swan"]
    assert ingress["spec"]["rules"][0]["host"] == "swan.example.org"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "swan-proxy-public"
    assert set(by_kind(manifests, "NetworkPolicy")) == {
        "swan-hub",
        "swan-proxy",
        "swan-singleuser",
    }


def hub_config(manifests: list[dict], tmp_path: Path, monkeypatch) -> Config:
    """Load the rendered jupyterhub_config.py as the hub pod would, with its environment."""
    data = by_kind(manifests, "ConfigMap")["swan-hub"]["data"]
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    env = {
        "SWAN_VALUES_FILE": str(tmp_path / "values.json"),
        "SWAN_HUB_SERVICE": "http://swan-hub:8081",
        "SWAN_PROXY_API_URL": "http://swan-proxy-api:8001",
        "SWAN_RELEASE": "swan",
        "POD_NAMESPACE": "swan",
        "SWAN_COOKIE_SECRET": "x" * 64,
        "SWAN_CRYPT_KEY": "y" * 64,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()


async def test_the_rendered_hub_config_spawns_pods_with_the_storage_of_the_values(
    tmp_path, monkeypatch
):
    from swan_hub import SwanKubeSpawner

    example = CHART / "examples" / "eos-fuse-hostpath.yaml"
    config = hub_config(render(values_of(example)), tmp_path, monkeypatch)
    assert config.JupyterHub.spawner_class == "swan_hub.SwanKubeSpawner"
    assert config.JupyterHub.db_url == "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
    assert config.JupyterHub.authenticator_class == "generic-oauth"
    assert "jupyterhub_idle_culler" in config.JupyterHub.services[0]["command"]

    spawner = SwanKubeSpawner(_mock=True, user=User("alice"), config=config)
    pod = await manifest(spawner, {"environment": "ml", "gpu": True})
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["swan-space"]["hostPath"] == {"path": "/eos/user/a/alice", "type": "Directory"}
    server = pod["spec"]["containers"][0]
    assert server["image"] == "registry.example.org/swan/ml:2026.11"
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "singleuser-server"

    spawner = SwanKubeSpawner(_mock=True, user=User("bob"), config=config)
    pod = await manifest(spawner, {"environment": "python"})
    assert pod["spec"]["containers"][0]["image"] == "registry.example.org/swan/singleuser:2026.11"


def test_an_external_database_url_is_used_with_the_password_from_the_secret(tmp_path, monkeypatch):
    manifests = render(values_of(CHART / "examples" / "external-db-csi.yaml"))
    hub = by_kind(manifests, "Deployment")["swan-hub"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in hub["containers"][0]["env"]}
    assert env["SWAN_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "db-password"
    monkeypatch.setenv("SWAN_DB_PASSWORD", "change-me")
    config = hub_config(manifests, tmp_path, monkeypatch)
    assert config.JupyterHub.db_url.startswith("postgresql+psycopg2://swan@postgres")
    assert "change-me" not in config.JupyterHub.db_url
    assert "--cull-users" in config.JupyterHub.services[0]["command"]


def test_auth_state_is_kept_encrypted_with_a_key_from_the_hubs_secret(tmp_path, monkeypatch):
    manifests = render({"hub": {"cryptKey": "crypt-key-value"}})
    hub = by_kind(manifests, "Deployment")["swan-hub"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in hub["containers"][0]["env"]}
    assert env["SWAN_CRYPT_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "crypt-key"
    secret = by_kind(manifests, "Secret")["swan-hub"]
    assert "crypt-key" in secret["data"]
    config = hub_config(manifests, tmp_path, monkeypatch)
    assert config.Authenticator.enable_auth_state is True
    assert [len(key) for key in config.CryptKeeper["keys"]] == [32]


class UserWithToken(User):
    """A user whose authenticator keeps an OIDC access token in auth state."""

    async def get_auth_state(self) -> dict:
        return {"access_token": "eyJ.token-of-alice.sig", "refresh_token": "r"}


async def test_the_webdav_example_hands_each_server_its_token_in_a_secret(tmp_path, monkeypatch):
    from swan_hub import SwanKubeSpawner

    example = CHART / "examples" / "oidc-webdav.yaml"
    config = hub_config(render(values_of(example)), tmp_path, monkeypatch)
    spawner = SwanKubeSpawner(_mock=True, user=UserWithToken("first.last"), config=config)
    api = spawner.api = KubernetesAPIStandIn()
    await spawner.hand_over_credentials()
    secret = api.secrets[spawner.credentials_secret_name]
    stored = json.loads(base64.b64decode(secret["data"]["storage.json"]))
    assert stored == {"kind": "bearer", "token": "eyJ.token-of-alice.sig"}
    pod = await manifest(spawner, {})
    server = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["SWAN_WEBDAV_URL"] == "https://cloud.example.org/remote.php/dav/files/first.last/"
    assert env["SWAN_STORAGE_CREDENTIALS"] == "/run/swan/credentials/storage.json"
    assert (
        "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage"
        in (server["args"])
    )
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    source = volumes["swan-credentials"]["projected"]["sources"][0]["secret"]
    assert source["name"] == spawner.credentials_secret_name
    assert "token-of-alice" not in str(pod)


async def test_the_webdav_example_mounts_the_storage_for_code_with_a_valid_sidecar_pod(
    tmp_path, monkeypatch
):
    from swan_hub import SwanKubeSpawner

    config = hub_config(
        render(values_of(CHART / "examples" / "oidc-webdav.yaml")), tmp_path, monkeypatch
    )
    spawner = SwanKubeSpawner(_mock=True, user=UserWithToken("first.last"), config=config)
    spawner.api = KubernetesAPIStandIn()
    await spawner.hand_over_credentials()
    pod = await manifest(spawner, {})
    (sidecar,) = pod["spec"]["initContainers"]
    assert sidecar["image"] == "registry.example.org/swan/storage-mount:2026.11"
    assert "--url=https://cloud.example.org/remote.php/dav/files/first.last/" in sidecar["command"]
    assert "--point=/home/first.last" in sidecar["command"]
    assert sidecar["securityContext"]["privileged"] is True
    assert not pod["spec"]["containers"][0]["securityContext"].get("privileged")
    assert "token-of-alice" not in str(pod)
    pod = {"apiVersion": "v1", "kind": "Pod", **pod}
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


async def test_by_default_the_chart_mounts_nothing_for_code(tmp_path, monkeypatch):
    from swan_hub import SwanKubeSpawner

    values = values_of(CHART / "examples" / "oidc-webdav.yaml")
    del values["singleuser"]["storageMount"]
    config = hub_config(render(values), tmp_path, monkeypatch)
    spawner = SwanKubeSpawner(_mock=True, user=UserWithToken("first.last"), config=config)
    spawner.api = KubernetesAPIStandIn()
    await spawner.hand_over_credentials()
    pod = await manifest(spawner, {})
    assert not pod["spec"].get("initContainers")
    server = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["SWAN_FILES_MOUNTED"] == "0"
    assert env["SWAN_WEBDAV_URL"] == "https://cloud.example.org/remote.php/dav/files/first.last/"
