"""Jupyter contents on a sync&share storage: `SwanContentsManager` over one async `Storage`."""

from ._version import __version__
from .manager import SwanContentsManager

__all__ = ["SwanContentsManager", "__version__"]
