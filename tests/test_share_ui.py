"""The share dialog and the Shared with me panel in a real browser: Debian's Chromium driven by
Playwright against a real JupyterLab server with the labextension installed, its share backend
pointed at the recorded Nextcloud answers replayed on 127.0.0.1. (The teacher's guide shows the
same dialog and panel from the real flow through `swan up`: tests/test_class_browser.py.)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from harness.lab_browser import (
    Lab,
    chromium_page,
    create_link,
    eventually,
    needs_chromium,
    notebook_json,
    running_lab,
    share_dialog_of,
    share_view_only,
)
from harness.ocs_replay import OCSReplay

pytest.importorskip("playwright.sync_api")
pytestmark = needs_chromium


@pytest.fixture
def replay() -> Iterator[OCSReplay]:
    served = OCSReplay.load("nextcloud").start()
    yield served
    served.stop()


@pytest.fixture
def lab(tmp_path, replay) -> Iterator[Lab]:
    """JupyterLab on a free port of 127.0.0.1 serving a teacher's space (SwanContentsManager)."""
    root = tmp_path / "space"
    (root / "class-2026").mkdir(parents=True)
    notebook = notebook_json("print('hi')")
    (root / "class-2026" / "exercise-1.ipynb").write_text(json.dumps(notebook))
    (root / "physics-lab").mkdir()
    secret = tmp_path / "app-password"
    secret.write_text(replay.recording["credentials"]["password"])
    sharing = {
        "OCSShareBackend": {
            "url": replay.url,
            "api_version": "2",
            "username": "teacher",
            "password_file": str(secret),
        }
    }
    with running_lab(tmp_path, root, sharing) as served:
        yield served


@pytest.fixture
def page(tmp_path):
    with chromium_page(tmp_path) as opened:
        yield opened


def _open_lab(page, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.locator(".jp-DirListing-item", has_text="class-2026").wait_for()


def _share_dialog_of(page, lab: Lab, name: str):
    """Open the share dialog of an item of the file browser from its context menu."""
    _open_lab(page, lab)
    return share_dialog_of(page, name)


def test_a_teacher_shares_a_folder_from_the_context_menu_and_revokes_it(page, lab, replay):
    dialog = _share_dialog_of(page, lab, "class-2026")
    dialog.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()

    # typed at a person's pace: the storage is searched once, when typing pauses
    shared = share_view_only(dialog, "class", "Class of 2026")

    shared.get_by_role("button", name="Revoke").click()
    dialog.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    assert "no longer has access" in dialog.locator(".swan-ShareDialog-status").inner_text()

    assert len(replay.requests("GET", "/sharees")) == 1
    assert [s.form for s in replay.requests("POST", "/shares")] == [
        {"path": "/class-2026", "shareType": "1", "shareWith": "class-2026", "permissions": "1"}
    ]
    assert len(replay.requests("DELETE", "/shares/7")) == 1
    assert replay.unmatched == []


def test_a_teacher_gives_students_a_public_link_with_a_password_and_an_expiry_date(
    page, lab, replay
):
    dialog = _share_dialog_of(page, lab, "class-2026")
    link, expiry = create_link(dialog, "Correct-Horse-7")
    assert "password" in link.inner_text() and "expires 2026-12-31" in link.inner_text()
    assert link.get_by_role("button", name="Copy link").is_visible()

    (sent,) = replay.requests("POST", "/shares")
    assert sent.form["expireDate"] == expiry and sent.form["password"] == "Correct-Horse-7"
    link.get_by_role("button", name="Revoke").click()
    dialog.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    assert replay.unmatched == []


def test_a_notebook_toolbar_has_a_share_button(page, lab, replay):
    page.goto(f"{lab.url}/lab/tree/class-2026/exercise-1.ipynb?token={lab.token}")
    page.locator(".swan-ShareButton").click()
    page.locator(".jp-Dialog-header", has_text="Share exercise-1.ipynb").wait_for()
    page.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    assert replay.unmatched == []


def test_notebook_7_offers_the_same_share_dialog_in_its_file_browser(page, lab, replay):
    page.goto(f"{lab.url}/tree?token={lab.token}")
    page.locator(".jp-DirListing-item", has_text="class-2026").click(button="right")
    page.get_by_role("menuitem", name="Share…").click()
    page.locator(".jp-Dialog-header", has_text="Share class-2026").wait_for()
    page.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    assert replay.unmatched == []


def test_the_shared_with_me_panel_offers_open_clone_and_accept(page, lab, replay):
    _open_lab(page, lab)
    page.locator('.lm-TabBar-tab[data-id="swan-shared-with-me"]').click()
    panel = page.locator(".swan-SharedWithMe")
    accepted = panel.locator('.swan-SharedWithMe-share[data-share-id="21"]')
    pending = panel.locator('.swan-SharedWithMe-share[data-share-id="22"]')
    accepted.wait_for()
    assert "view only" in accepted.inner_text()
    assert {"Open", "Clone", "Leave"} <= set(accepted.locator("button").all_inner_texts())
    assert {"Accept", "Decline"} <= set(pending.locator("button").all_inner_texts())

    pending.get_by_role("button", name="Accept").click()
    eventually(lambda: len(replay.requests("POST", "/shares/pending/22")) == 1)

    # the clone is the student's own folder: the file browser opens it
    accepted.get_by_role("button", name="Clone").click()
    page.locator(".jp-BreadCrumbs", has_text="class-2026-Copy1").wait_for()
    copy = lab.root / "class-2026-Copy1" / "exercise-1.ipynb"
    assert copy.read_text() == (lab.root / "class-2026" / "exercise-1.ipynb").read_text()
    shutil.rmtree(lab.root / "class-2026-Copy1")
