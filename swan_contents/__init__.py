"""Jupyter contents on a sync&share storage: `SwanContentsManager` over one async `Storage`.

Lazy: importing a submodule (e.g. `swan_contents.storage.ondisk` from the drive) must not load
the manager and with it jupyter_server and nbformat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .manager import SwanContentsManager

__all__ = ["SwanContentsManager", "__version__"]


def __getattr__(name: str) -> Any:
    # `swan_contents.SwanContentsManager` stays a class path for traitlets' import_item.
    if name == "SwanContentsManager":
        from .manager import SwanContentsManager

        return SwanContentsManager
    raise AttributeError(f"module 'swan_contents' has no attribute {name!r}")
