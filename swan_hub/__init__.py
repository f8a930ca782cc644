"""JupyterHub side of SWAN: spawners that serve each user's storage space, the `swan` CLI.

This package owns what runs in the hub process. It must not import the single-user server's
packages (`swan_contents`, `swan_share_ext`) at import time: the hub may run without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swan_hub.docker import SwanDockerSpawner
    from swan_hub.kube import SwanKubeSpawner
    from swan_hub.spawner import SwanLocalSpawner, SwanSpawnerMixin

__all__ = ["SwanDockerSpawner", "SwanKubeSpawner", "SwanLocalSpawner", "SwanSpawnerMixin"]

# Where each public name lives; the Docker and Kubernetes spawners import their upstream
# spawner (an optional dependency) only when asked for.
_MODULES = {
    "SwanDockerSpawner": "swan_hub.docker",
    "SwanKubeSpawner": "swan_hub.kube",
    "SwanLocalSpawner": "swan_hub.spawner",
    "SwanSpawnerMixin": "swan_hub.spawner",
}


def __getattr__(name: str) -> Any:
    # Lazy, so `import swan_hub` (e.g. for the CLI's --help) does not import JupyterHub.
    if name in _MODULES:
        import importlib

        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module 'swan_hub' has no attribute {name!r}")
