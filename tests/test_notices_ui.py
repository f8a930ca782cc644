"""What tells a student what is going on, in a real browser: `swan up` with its real hub, proxy,
drive and notebook servers on 127.0.0.1, Debian's Chromium driven by Playwright. Teacher alice
shares with student bob; bob's side bar counts the shares waiting for him, and an open notebook
that alice changes says that a newer version is there, without ever reloading over bob's edits.

Screenshots for docs/ go to $SWAN_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from harness.lab_browser import (
    eventually,
    fill_hub_login,
    needs_chromium,
    notebook_json,
    open_lab,
    person,
    screenshot_dir,
    share_dialog_of,
    share_view_only,
)
from harness.swan import SWAN_UP_MARKS, Swan, ready_for_browsers, start_swan, user_api

pytest.importorskip("playwright.sync_api")
pytestmark = [*SWAN_UP_MARKS, needs_chromium]

FIRST = "print('version one')"
SECOND = "print('version two, corrected by the teacher')"
THIRD = "print('version three')"


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    """`swan up` (the drive as storage) with teacher alice and student bob, their servers
    running; alice's space holds two lesson folders."""
    workdir = tmp_path_factory.mktemp("notices")
    swan = start_swan(workdir, users="alice,bob")
    try:
        for folder in ("lesson-1", "lesson-2", "lesson-3", "lesson-4", "lesson-5"):
            lesson = swan.data / "users" / "alice" / folder
            lesson.mkdir(parents=True)
            (lesson / "exercise.ipynb").write_text(json.dumps(notebook_json(FIRST)))
        ready_for_browsers(swan, ("alice", "bob"))
        yield swan
    finally:
        swan.kill_everything()


def share_with_bob(swan: Swan, path: str, permissions: int = 1) -> str:
    """alice shares her ``path`` with bob, as her share dialog does; the share's id."""
    body = {"path": path, "kind": "user", "share_with": "bob", "permissions": permissions}
    made = user_api(swan, "alice", "POST", "alice/swan/api/shares", json=body)
    assert made.status_code == 201, made.text
    return made.json()["id"]


def accept(swan: Swan, share_id: str) -> None:
    accepted = user_api(swan, "bob", "POST", f"bob/swan/api/shared-with-me/{share_id}/accept")
    assert accepted.status_code == 200, accepted.text


def alice_saves(swan: Swan, path: str, source: str) -> None:
    """alice saves a new version of her notebook at ``path`` from her own JupyterLab."""
    model = {"type": "notebook", "content": notebook_json(source)}
    saved = user_api(swan, "alice", "PUT", f"alice/api/contents/{path}", json=model)
    assert saved.status_code == 200, saved.text


def bobs_lab(browser, swan: Swan, path: str = ""):
    """bob's JupyterLab (at ``path`` when given), after the hub's login form, from an empty
    layout (`reset`): not with the side panel an earlier test's page left open in bob's
    workspace, which JupyterLab saves on the server."""
    page = person(browser)
    page.goto(f"{swan.url}/user/bob/lab" + (f"/tree/{path}" if path else "") + "?reset")
    fill_hub_login(page, "bob", swan.passwords()["bob"])
    page.locator(".jp-FileBrowser .jp-DirListing-header").wait_for()
    return page


def back_to_the_tab(page) -> None:
    """bob comes back to the browser window (as from another application)."""
    page.evaluate("window.dispatchEvent(new Event('focus'))")


def marks_of(page, name: str) -> list[str]:
    """The labels of the marks on the file browser's item ``name``."""
    item = page.locator(".jp-DirListing-item", has_text=name)
    item.wait_for()
    return item.locator(".swan-ItemMark").evaluate_all(
        "marks => marks.map(mark => mark.getAttribute('aria-label'))"
    )


def test_the_side_bar_counts_the_shares_waiting_for_an_answer(swan, browser):
    share_with_bob(swan, "lesson-1")
    share_with_bob(swan, "lesson-2")
    page = bobs_lab(browser, swan)
    tab = page.locator(".jp-SideBar .lm-TabBar-tab[data-id='swan-shared-with-me']")
    # counted once JupyterLab is up, without opening the panel
    page.locator(".jp-SideBar .lm-TabBar-tab[data-pending='2']").wait_for()
    assert "2 shares waiting for your answer" in tab.get_attribute("title")
    tab.click()
    panel = page.locator("#swan-shared-with-me")
    panel.locator(".swan-SharedWithMe-share", has_text="lesson-1").wait_for()

    # an answer counts at once, and the badge is gone at 0
    row = panel.locator(".swan-SharedWithMe-share", has_text="lesson-1")
    row.get_by_role("button", name="Accept").click()
    page.locator(".jp-SideBar .lm-TabBar-tab[data-pending='1']").wait_for()
    assert "1 share waiting for your answer" in tab.get_attribute("title")
    row = panel.locator(".swan-SharedWithMe-share", has_text="lesson-2")
    row.get_by_role("button", name="Decline").click()
    eventually(lambda: tab.get_attribute("data-pending") is None)
    assert tab.get_attribute("title") == "Shared with me"
    assert page.errors == []
    page.context.close()


def test_an_open_notebook_says_when_the_teacher_saved_a_newer_version(swan, browser, tmp_path):
    accept(swan, share_with_bob(swan, "lesson-3", permissions=15))
    page = bobs_lab(browser, swan, "Shared/lesson-3/exercise.ipynb")
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-Cell", has_text="version one").wait_for()
    # the kernel's start writes its name and language into the notebook: bob saves that
    page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle").wait_for()
    page.wait_for_timeout(500)
    page.keyboard.press("Control+s")
    page.locator(".lm-DockPanel-tabBar .jp-mod-dirty").wait_for(state="detached")
    notice = page.locator(".jp-toastContainer .Toastify__toast", has_text="A newer version")

    # nothing changed: nothing said
    back_to_the_tab(page)
    page.wait_for_timeout(1500)
    assert notice.count() == 0

    alice_saves(swan, "lesson-3/exercise.ipynb", SECOND)
    back_to_the_tab(page)
    notice.wait_for()
    assert "A newer version of exercise.ipynb is available." in notice.inner_text()
    assert notebook.locator(".jp-Cell", has_text="version two").count() == 0  # not by itself
    # the file browser beside it marks the shares bob received
    page.locator(".jp-BreadCrumbs-item", has_text="Shared").click()
    eventually(lambda: marks_of(page, "lesson-3") == ["shared"])
    page.wait_for_timeout(1000)  # the notice has slid in
    page.screenshot(path=str(screenshot_dir(tmp_path) / "newer-version-notice.png"))
    notice.get_by_role("button", name="Reload").click()
    notebook.locator(".jp-Cell", has_text="version two, corrected by the teacher").wait_for()
    eventually(lambda: notice.count() == 0)

    # with unsaved edits: the notice says so, and Reload asks before dropping them
    notebook.locator(".jp-Cell .cm-content").first.click()
    page.keyboard.press("End")
    page.keyboard.type("  # my answer")
    page.keyboard.press("Escape")
    alice_saves(swan, "lesson-3/exercise.ipynb", THIRD)
    back_to_the_tab(page)
    notice.wait_for()
    assert "unsaved edits" in notice.inner_text()
    notice.get_by_role("button", name="Reload").click()
    dialog = page.locator(".jp-Dialog", has_text="Replace your unsaved edits?")
    dialog.get_by_role("button", name="Keep my edits").click()
    dialog.wait_for(state="detached")
    notebook.locator(".jp-Cell", has_text="# my answer").wait_for()
    assert notebook.locator(".jp-Cell", has_text="version three").count() == 0
    stored = user_api(swan, "alice", "GET", "alice/api/contents/lesson-3/exercise.ipynb")
    assert "version three" in json.dumps(stored.json()["content"])

    # kept: the same version is not announced again (the next save asks what to do)
    back_to_the_tab(page)
    page.wait_for_timeout(1500)
    assert notice.count() == 0
    assert page.errors == []
    page.context.close()


def test_the_file_browser_marks_shared_and_view_only_items(swan, browser):
    accept(swan, share_with_bob(swan, "lesson-4"))
    teacher = open_lab(browser, swan, "alice")
    eventually(lambda: marks_of(teacher, "lesson-4") == ["shared"])
    assert marks_of(teacher, "lesson-5") == []
    # shared from the dialog: marked once it closes, without a reload
    dialog = share_dialog_of(teacher, "lesson-5")
    share_view_only(dialog, "bob", "bob")
    dialog.page.get_by_role("button", name="Done").click()
    eventually(lambda: marks_of(teacher, "lesson-5") == ["shared"])
    mark = teacher.locator(".jp-DirListing-item", has_text="lesson-5").locator(".swan-ItemMark")
    assert mark.get_attribute("title") == "shared"
    teacher.context.close()

    student = bobs_lab(browser, swan, "Shared")
    eventually(lambda: marks_of(student, "lesson-4") == ["shared", "view only"])
    student.locator(".jp-DirListing-item", has_text="lesson-4").dblclick()
    student.locator(".jp-BreadCrumbs", has_text="lesson-4").wait_for()
    eventually(lambda: marks_of(student, "exercise.ipynb") == ["view only"])
    assert student.errors == []
    student.context.close()
