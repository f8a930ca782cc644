"""The old import path of harness.ocis_standin, kept while branches that import it merge."""

from harness.ocis_standin import *  # noqa: F403
