"""The old import path of harness.dockerhost, kept while branches that import it merge."""

from harness.dockerhost import *  # noqa: F403
