"""The old import path of harness.open_servers, kept while branches that import it merge."""

from harness.open_servers import *  # noqa: F403
