"""The old import path of harness.dav_servers, kept while branches that import it merge."""

from harness.dav_servers import *  # noqa: F403
