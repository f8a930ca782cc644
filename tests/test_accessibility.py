"""The pages this project serves, audited with axe-core (Deque's accessibility rules, run in
Debian's Chromium through Playwright) on a real `swan up`: the drive's page (with a share waiting,
a dialog open, its Trash and a file's Versions; Shared by me, Shared with me, and Links with
its link editor open), a notebook's preview, a public folder link, a public file link, a
password link's form and a file drop as an anonymous visitor sees them, the link generator,
and the Open-in-SWAN page of a share not accepted yet. None may have a violation axe rates
serious or critical.

JupyterLab's own pages and the hub's (JupyterHub's templates) are upstream's and not audited;
the rendered notebook inside a preview is a sandboxed frame in which no script, axe's included,
runs (its structure is nbconvert's).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from harness.drive import Drive, ocs_share, running_drive
from harness.lab_browser import chromium_browser, fill_hub_login, needs_chromium, person
from harness.swan import SWAN_UP_MARKS

from swan_hub.cli import free_port

pytestmark = [*SWAN_UP_MARKS, needs_chromium]

#: axe's impact levels that fail a page
FAILING = ("serious", "critical")


def notebook(source: str) -> bytes:
    return json.dumps(
        {
            "cells": [{"cell_type": "markdown", "metadata": {}, "source": source}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    ).encode()


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> Iterator[Drive]:
    """alice's space: a folder with a notebook (saved twice: it has a version) and a CSV file, a
    file in the trash, a share of a folder with a notebook from bob waiting for her, a public
    folder link, a public file link, a password link and a file drop of hers, and her share of
    the folder with bob."""
    # another site trusted (never running): the page of people of other sites has its forms
    with running_drive(
        tmp_path_factory.mktemp("a11y"), "--ocm-peer", f"127.0.0.1:{free_port()}"
    ) as drive:
        assert drive.dav("alice", "MKCOL", "course").status_code == 201
        drive.dav("alice", "PUT", "course/week1.ipynb", content=notebook("# Week 1\n\n*Hello*"))
        drive.dav("alice", "PUT", "course/data.csv", content=b"x,y\n1,2\n")
        drive.dav("alice", "PUT", "course/week1.ipynb", content=notebook("# Week 1\n\n*Hi*"))
        drive.dav("alice", "PUT", "old.txt", content=b"gone\n")
        assert drive.dav("alice", "DELETE", "old.txt").status_code == 204
        assert drive.dav("bob", "MKCOL", "from-bob").status_code == 201
        drive.dav("bob", "PUT", "from-bob/task.ipynb", content=notebook("# Task"))
        ocs_share(drive, "bob", path="from-bob", shareType="0", shareWith="alice")
        drive.links = {  # type: ignore[attr-defined]
            "folder": ocs_share(drive, "alice", path="course", shareType="3")["url"],
            "file": ocs_share(drive, "alice", path="course/week1.ipynb", shareType="3")["url"],
            "password": ocs_share(
                drive, "alice", path="course/data.csv", shareType="3", password="Pass-4-audit"
            )["url"],
            "drop": ocs_share(drive, "alice", path="course", shareType="3", permissions="4")["url"],
        }
        ocs_share(drive, "alice", path="course", shareType="0", shareWith="bob")
        yield drive


def failing_violations(page, context: str | None = None) -> list[str]:
    """axe's serious and critical violations on ``page`` (within ``context``, a CSS selector),
    one line each: the rule, what it asks, and the elements it found."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"])
        for v in results.response["violations"]
        if v["impact"] in FAILING
    ]


def test_the_drive_page_has_no_serious_violation(drive):
    """Its Files view with a share waiting, a folder, a dialog open, its Trash and a file's
    Versions."""
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        page.get_by_role("button", name="Accept").wait_for()
        assert failing_violations(page) == []
        page.goto(f"{drive.base}/?dir=course")
        page.get_by_role("link", name="week1.ipynb", exact=True).wait_for()
        assert failing_violations(page) == []
        page.get_by_role("button", name="New folder").click()
        page.get_by_role("dialog").wait_for()
        assert failing_violations(page) == []
        page.goto(f"{drive.base}/trash")
        page.get_by_text("old.txt").first.wait_for()
        assert failing_violations(page) == []
        page.goto(f"{drive.base}/versions?" + urlencode({"path": "course/week1.ipynb"}))
        page.get_by_role("button", name="Restore").first.wait_for()
        assert failing_violations(page) == []


def test_the_sharing_views_and_the_link_editor_have_no_serious_violation(drive):
    """Shared by me with its permission choice, Links with its editor open, Shared with me."""
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/shared-by-me")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        page.get_by_label("Permission of course/ for bob").wait_for()
        assert failing_violations(page) == []
        page.goto(f"{drive.base}/links")
        page.get_by_role("button", name="Edit the link of course/").first.click()
        page.get_by_role("dialog").wait_for()
        assert failing_violations(page) == []
        page.keyboard.press("Escape")
        page.goto(f"{drive.base}/shared-with-me")
        page.get_by_role("button", name="Accept from-bob/").wait_for()
        assert failing_violations(page) == []


def test_the_people_of_other_sites_view_has_no_serious_violation(drive):
    """With a contact, an invite just made and listed, and an invite refused."""
    with sqlite3.connect(drive.swan.data / "drive" / "drive.sqlite") as db:
        db.execute(
            "INSERT OR IGNORE INTO ocm_contacts (user, address, name, added) VALUES (?, ?, ?, ?)",
            ("alice", "dora@swan.example.org", "Dora", int(time.time())),
        )
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/people")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        page.get_by_role("cell", name="dora@swan.example.org", exact=True).wait_for()
        page.get_by_role("button", name="Make an invite").click()
        page.get_by_role("status").filter(has_text="Made an invite").wait_for()
        assert failing_violations(page) == []
        page.get_by_label("Token").fill("a-token-nobody-made")
        page.get_by_label("Their site").fill("not-trusted.example")
        page.get_by_role("button", name="Accept the invite").click()
        page.get_by_role("status").filter(has_text="not a trusted provider").wait_for()
        assert failing_violations(page) == []


def test_a_preview_and_the_link_generator_have_no_serious_violation(drive):
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/preview?" + urlencode({"path": "course/week1.ipynb"}))
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        page.get_by_role("link", name="Open in SWAN").wait_for()
        assert failing_violations(page) == []
        page.goto(f"{drive.swan.url}/services/swan-links/")
        page.locator("form").first.wait_for()
        assert failing_violations(page) == []


def test_public_link_pages_have_no_serious_violation(drive):
    with chromium_browser() as browser:
        page = person(browser)  # an anonymous visitor: nobody signed in
        for kind in ("folder", "file", "password", "drop"):
            page.goto(drive.links[kind])
            page.locator("main").wait_for()
            assert failing_violations(page) == [], kind


def test_the_open_in_swan_page_has_no_serious_violation(drive):
    """The page of a link to a share alice has not accepted yet, with Accept and open."""
    link = "/hub/user-redirect/swan/open?" + urlencode(
        {"owner": "bob", "path": "from-bob/task.ipynb"}
    )
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(drive.swan.url + link)
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        page.wait_for_url("**/swan/open?**", timeout=180_000)
        page.get_by_role("button", name="Accept and open").wait_for()
        assert failing_violations(page) == []
