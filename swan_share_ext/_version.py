"""The extension's version is the distribution's."""

from swan_contents._version import __version__

__all__ = ["__version__"]
