"""The documentation is complete and current: the configuration reference is what the code says,
and every page is reachable from the index."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
GENERATOR = DOCS.parent / "scripts" / "config_reference.py"


def test_the_configuration_reference_matches_the_code():
    generated = subprocess.run(
        [sys.executable, str(GENERATOR)], capture_output=True, text=True, check=True
    ).stdout
    assert (DOCS / "configuration.md").read_text() == generated, (
        "docs/configuration.md is stale: run "
        "`.venv/bin/python scripts/config_reference.py > docs/configuration.md`"
    )


def test_every_page_is_linked_from_the_index_and_every_link_resolves():
    index = (DOCS / "index.md").read_text()
    linked = set(re.findall(r"\]\(([^)#]+\.md)\)", index))
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert pages - linked == set(), "pages missing from docs/index.md"
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
