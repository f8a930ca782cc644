"""JupyterHub side of SWAN: spawners that serve each user's storage space, the `swan` CLI.

This package owns what runs in the hub process. It must not import the single-user server's
packages (`swan_contents`, `swan_share_ext`) at import time: the hub may run without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swan_hub.spawner import SwanLocalSpawner, SwanSpawnerMixin

__all__ = ["SwanLocalSpawner", "SwanSpawnerMixin"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import swan_hub` (e.g. for the CLI's --help) does not import JupyterHub.
    if name in __all__:
        from swan_hub import spawner

        return getattr(spawner, name)
    raise AttributeError(f"module 'swan_hub' has no attribute {name!r}")
