"""The one version number of the distribution."""

__version__ = "0.1.0"
