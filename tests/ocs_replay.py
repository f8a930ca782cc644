"""The old import path of harness.ocs_replay, kept while branches that import it merge."""

from harness.ocs_replay import *  # noqa: F403
