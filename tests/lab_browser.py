"""The old import path of harness.lab_browser, kept while branches that import it merge."""

from harness.lab_browser import *  # noqa: F403
