"""JupyterHub configuration of the SWAN Helm chart.

Reads the chart's values (values.json of the hub's ConfigMap) and the secrets from the
environment (the hub's Secret). Holds no site settings of its own: everything comes from values.
"""

import hashlib
import json
import os
import sys

c = get_config()  # noqa: F821 (provided by JupyterHub's config loader)

with open(os.environ["SWAN_VALUES_FILE"], encoding="utf-8") as f:
    values = json.load(f)
hub, singleuser, cull = values["hub"], values["singleuser"], values["cull"]

# --- hub, proxy, database -----------------------------------------------------------------
c.JupyterHub.hub_bind_url = "http://:8081"
c.JupyterHub.hub_connect_url = os.environ["SWAN_HUB_SERVICE"]
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = os.environ["SWAN_PROXY_API_URL"]
# User pods outlive a hub restart (an upgrade); the hub finds them again in its database.
c.JupyterHub.cleanup_servers = False
# Any length of secret becomes the 32 bytes JupyterHub wants.
c.JupyterHub.cookie_secret = hashlib.sha256(os.environ["SWAN_COOKIE_SECRET"].encode()).digest()
# Auth state keeps an OAuth authenticator's tokens, which SwanKubeSpawner hands to the user's
# server as storage credentials (a Secret per user); it is encrypted with the chart's key.
c.Authenticator.enable_auth_state = True
c.CryptKeeper.keys = [hashlib.sha256(os.environ["SWAN_CRYPT_KEY"].encode()).digest()]

db = hub["db"]
if db["type"] == "sqlite-pvc":
    c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
elif db["type"] == "sqlite-memory":
    c.JupyterHub.db_url = "sqlite://"
else:
    if not db["url"]:
        sys.exit("hub.db.type is 'other' but hub.db.url is empty")
    c.JupyterHub.db_url = db["url"]
    if os.environ.get("SWAN_DB_PASSWORD"):
        # libpq and the MySQL client read these, so the password stays out of the URL.
        os.environ.setdefault("PGPASSWORD", os.environ["SWAN_DB_PASSWORD"])
        os.environ.setdefault("MYSQL_PWD", os.environ["SWAN_DB_PASSWORD"])

# --- user servers ---------------------------------------------------------------------------
image = f"{singleuser['image']['name']}:{singleuser['image']['tag']}"
storage = singleuser["storage"]
c.JupyterHub.spawner_class = "swan_hub.SwanKubeSpawner"
c.KubeSpawner.namespace = os.environ["POD_NAMESPACE"]
c.KubeSpawner.image = image
c.KubeSpawner.image_pull_policy = singleuser["image"]["pullPolicy"]
c.KubeSpawner.start_timeout = singleuser["startTimeout"]
c.KubeSpawner.cpu_guarantee = float(singleuser["cpu"]["guarantee"])
c.KubeSpawner.mem_guarantee = str(singleuser["memory"]["guarantee"])
c.KubeSpawner.extra_labels = {
    "app.kubernetes.io/component": "singleuser-server",
    "app.kubernetes.io/instance": os.environ["SWAN_RELEASE"],
}
c.SwanContainerMixin.container_uid = int(singleuser["uid"])
c.SwanContainerMixin.container_gid = int(singleuser["fsGid"])
c.SwanContainerMixin.container_space_template = storage["mountPath"]
c.SwanSpawnerMixin.space_template = storage["spaceTemplate"]
c.SwanSpawnerMixin.versions_template = storage["versionsTemplate"]
c.SwanSpawnerMixin.create_space = bool(storage["createSpace"])
c.SwanKubeSpawner.storage_kind = storage["kind"]
c.SwanKubeSpawner.storage_root = storage["root"]
c.SwanKubeSpawner.storage_claim_name = storage["claimName"]
c.SwanKubeSpawner.storage_csi = storage["csi"]
if storage["webdavUrl"]:
    c.SwanSpawnerMixin.webdav_url_template = storage["webdavUrl"]
mount = singleuser["storageMount"]
c.SwanKubeSpawner.mount_storage = bool(mount["enabled"])
if mount["image"]["name"]:
    c.SwanKubeSpawner.mount_image = f"{mount['image']['name']}:{mount['image']['tag']}"
c.SwanKubeSpawner.mount_read_cache = bool(mount["readCache"])
c.SwanKubeSpawner.mount_upload_wait = float(mount["uploadWait"])

form = dict(singleuser["form"])
form["environments"] = [{"image": image, **env} for env in form["environments"]]
c.SwanSpawnerMixin.form_config = form

# --- idle culler ----------------------------------------------------------------------------
if cull["enabled"]:
    command = [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        f"--timeout={int(cull['timeout'])}",
        f"--cull-every={int(cull['every'])}",
        f"--concurrency={int(cull['concurrency'])}",
        f"--max-age={int(cull['maxAge'])}",
    ]
    scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    if cull["users"]:
        command.append("--cull-users")
        scopes.append("admin:users")
    c.JupyterHub.services = [{"name": "idle-culler", "command": command}]
    c.JupyterHub.load_roles = [
        {"name": "idle-culler", "scopes": scopes, "services": ["idle-culler"]}
    ]

# --- the admin's own settings, last ---------------------------------------------------------
for section, traits in hub["config"].items():
    for name, value in traits.items():
        c[section][name] = value

for name in sorted(hub["extraConfig"]):
    exec(compile(hub["extraConfig"][name], f"hub.extraConfig.{name}", "exec"), {"c": c})  # noqa: S102
