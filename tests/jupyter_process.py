"""The old import path of harness.jupyter_process, kept while branches that import it merge."""

from harness.jupyter_process import *  # noqa: F403
