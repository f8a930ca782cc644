"""The student's path through JupyterLab, walked in a real browser: `swan up` with its real hub,
proxy, drive and notebook servers on 127.0.0.1, Debian's Chromium driven by Playwright. Teacher
alice shares with student bob; bob clicks an Open-in-SWAN link cold, accepts, reads a view-only
notebook, copies it, and never meets a dead end (no "Path Not Found", no dialog that fails, no
uncaught page error).

Screenshots for docs/ go to $SWAN_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from harness.lab_browser import (
    context_menu_of,
    eventually,
    fill_hub_login,
    needs_chromium,
    notebook_json,
    person,
    screenshot_dir,
    share_dialog_of,
)
from harness.swan import SWAN_UP_MARKS, Swan, ready_for_browsers, start_swan, user_api

pytest.importorskip("playwright.sync_api")
pytestmark = [*SWAN_UP_MARKS, needs_chromium]

TEACHER_WROTE = "print('the teacher wrote this')"


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    """`swan up` (the drive as storage) with teacher alice and students bob and carol, their
    servers running. alice's space holds class folders, as her sync client put them there."""
    workdir = tmp_path_factory.mktemp("student-journey")
    swan = start_swan(workdir, users="alice,bob,carol")
    try:
        for folder in ("class-2026", "week-2", "week-3"):
            lesson = swan.data / "users" / "alice" / folder
            lesson.mkdir(parents=True)
            (lesson / "exercise-1.ipynb").write_text(json.dumps(notebook_json(TEACHER_WROTE)))
        ready_for_browsers(swan, ("alice", "bob", "carol"))
        yield swan
    finally:
        swan.kill_everything()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where the screenshots for docs/ go ($SWAN_SCREENSHOT_DIR, else the test's folder)."""
    return screenshot_dir(tmp_path)


def share(swan: Swan, path: str, kind: str, share_with: str, permissions: int = 1) -> dict:
    """alice shares her ``path`` through her server's API, as her share dialog does."""
    body = {"path": path, "kind": kind, "share_with": share_with, "permissions": permissions}
    made = user_api(swan, "alice", "POST", "alice/swan/api/shares", json=body)
    assert made.status_code == 201, made.text
    return made.json()


def received(swan: Swan, name: str) -> list[dict]:
    listed = user_api(swan, name, "GET", f"{name}/swan/api/shared-with-me", params={"state": "all"})
    assert listed.status_code == 200, listed.text
    return listed.json()


def logged_in_page(browser, swan: Swan, name: str, url: str):
    """A browser of ``name``'s own at ``url`` (a hub URL), through the hub's login form."""
    page = person(browser, permissions=("clipboard-read", "clipboard-write"))
    page.goto(url)
    fill_hub_login(page, name, swan.passwords()[name])
    return page


def assert_no_path_not_found(page) -> None:
    """JupyterLab is shown, its file browser listed, and no "Path Not Found" dialog came up
    (it follows the first listing by a moment)."""
    page.locator(".jp-FileBrowser .jp-DirListing-header").wait_for()
    time.sleep(1.5)
    assert page.locator(".jp-Dialog", has_text="Path Not Found").count() == 0


def test_a_link_to_a_share_not_yet_accepted_offers_to_accept_and_open_it(
    swan, browser, screenshots
):
    share(swan, "class-2026", "user", "bob")
    query = urlencode({"path": "class-2026/exercise-1.ipynb", "owner": "alice"})
    link = f"{swan.url}/hub/user-redirect/swan/open?{query}"
    page = logged_in_page(browser, swan, "bob", link)
    page.locator("#open-reason", has_text="you have not accepted the share yet").wait_for()
    home = page.get_by_role("link", name="Go to your files")
    assert home.get_attribute("href") == "/user/bob/lab"
    page.screenshot(path=str(screenshots / "open-in-accept.png"))

    # "Go to your files" lands in JupyterLab's file browser, not on a missing path
    home.click()
    page.wait_for_url(f"{swan.url}/user/bob/lab")
    assert_no_path_not_found(page)
    assert [s["state"] for s in received(swan, "bob")] == ["pending"]

    # a form posted from elsewhere, without the page's XSRF token, accepts nothing
    forged = page.request.post(
        f"{swan.url}/user/bob/swan/open",
        form={"path": "class-2026/exercise-1.ipynb", "owner": "alice"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert [s["state"] for s in received(swan, "bob")] == ["pending"]

    # back on the link: one click accepts the share and opens the notebook
    page.goto(link)
    page.get_by_role("button", name="Accept and open").click()
    page.wait_for_url(f"{swan.url}/user/bob/lab/tree/Shared/class-2026/exercise-1.ipynb")
    page.locator(".jp-NotebookPanel .jp-Cell", has_text="the teacher wrote this").wait_for()
    assert [s["state"] for s in received(swan, "bob")] == ["accepted"]
    assert page.errors == []


def test_the_confirmation_pages_cancel_leads_to_the_files_that_exist(swan, browser):
    made = user_api(
        swan,
        "alice",
        "POST",
        "alice/swan/api/shares",
        json={"path": "week-3", "kind": "link", "permissions": 1},
    )
    assert made.status_code == 201, made.text
    query = urlencode({"url": made.json()["url"]})
    page = logged_in_page(browser, swan, "carol", f"{swan.url}/hub/user-redirect/swan/open?{query}")
    cancel = page.get_by_role("link", name="Cancel")
    assert cancel.get_attribute("href") == "/user/carol/lab"
    cancel.click()
    page.wait_for_url(f"{swan.url}/user/carol/lab")
    assert_no_path_not_found(page)
    assert page.errors == []


def accept(swan: Swan, name: str, share_id: str) -> None:
    accepted = user_api(swan, name, "POST", f"{name}/swan/api/shared-with-me/{share_id}/accept")
    assert accepted.status_code == 200, accepted.text


def open_notebook(page, swan: Swan, name: str, path: str):
    """``path`` opened in ``name``'s JupyterLab; its panel, once the cell is shown."""
    page.goto(f"{swan.url}/user/{name}/lab/tree/{path}")
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-Cell", has_text="the teacher wrote this").wait_for()
    return notebook


def type_in_first_cell(notebook, words: str) -> None:
    notebook.locator(".jp-Cell .cm-content").first.click()
    notebook.page.keyboard.press("End")
    notebook.page.keyboard.type(words)
    notebook.page.keyboard.press("Escape")


def cell_source(path: Path) -> str:
    source = json.loads(path.read_text())["cells"][0]["source"]
    return "".join(source) if isinstance(source, list) else source


def test_a_view_only_notebook_says_so_and_is_copied_or_saved_into_the_students_own_files(
    swan, browser, screenshots
):
    accept(swan, "bob", share(swan, "week-2", "user", "bob")["id"])
    bob_space = swan.data / "users" / "bob"
    original = swan.data / "users" / "alice" / "week-2" / "exercise-1.ipynb"
    stored_before = original.read_bytes()
    page = logged_in_page(browser, swan, "bob", f"{swan.url}/user/bob/lab")
    notebook = open_notebook(page, swan, "bob", "Shared/week-2/exercise-1.ipynb")
    banner = notebook.locator(".swan-ViewOnly")
    banner.wait_for()
    assert "View only" in banner.inner_text()
    page.screenshot(path=str(screenshots / "view-only-banner.png"), animations="disabled")

    # Save As proposes the student's own space, under a free name, and opens what it saved
    type_in_first_cell(notebook, "  # saved as mine")
    page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
    page.get_by_role("menuitem", name=re.compile(r"Save Notebook As")).click()
    proposed = page.locator(".jp-Dialog input")
    eventually(lambda: proposed.input_value() == "exercise-1.ipynb")
    page.locator(".jp-Dialog").get_by_role("button", name="Save").click()
    page.locator(".jp-Dialog").wait_for(state="detached")
    saved_as = bob_space / "exercise-1.ipynb"
    eventually(saved_as.exists)
    assert "saved as mine" in cell_source(saved_as)
    page.locator(".jp-mod-current .lm-TabBar-tabLabel", has_text="exercise-1.ipynb").wait_for()

    # one click copies it, with the edits on the page, beside the first copy and opens it
    notebook = open_notebook(page, swan, "bob", "Shared/week-2/exercise-1.ipynb")
    type_in_first_cell(notebook, "  # copied with my edit")
    notebook.get_by_role("button", name="Copy to my files").click()
    copy = bob_space / "exercise-1-Copy1.ipynb"
    eventually(copy.exists)
    # the copy opens once the edits are saved into it: on a busy machine that takes a while
    opened = page.locator(".jp-mod-current .lm-TabBar-tabLabel", has_text=copy.name)
    opened.wait_for(timeout=90_000)
    mine = page.locator(".jp-NotebookPanel:visible")
    mine.locator(".swan-ViewOnly").wait_for(state="detached")
    mine.locator(".jp-Cell", has_text="copied with my edit").wait_for()
    assert "copied with my edit" in cell_source(copy)
    assert "saved as mine" in cell_source(saved_as)
    assert original.read_bytes() == stored_before
    assert page.errors == []


def test_share_is_offered_only_on_what_the_student_can_share(swan, browser):
    # an edit share without re-share rights, and a notebook of carol's own
    accept(swan, "carol", share(swan, "week-3", "user", "carol", permissions=15)["id"])
    own = {"type": "notebook", "content": notebook_json(TEACHER_WROTE)}
    assert user_api(swan, "carol", "PUT", "carol/api/contents/mine.ipynb", json=own).is_success
    page = logged_in_page(browser, swan, "carol", f"{swan.url}/user/carol/lab")

    notebook = open_notebook(page, swan, "carol", "Shared/week-3/exercise-1.ipynb")
    notebook.get_by_role("button", name="Run this cell and advance").wait_for()
    time.sleep(1)  # the toolbar is complete once the document is ready
    assert notebook.locator(".swan-ShareButton").count() == 0
    page.locator(".jp-BreadCrumbs", has_text="week-3").wait_for()
    menu = context_menu_of(page, "exercise-1.ipynb")
    assert menu.get_by_role("menuitem", name="Share…").count() == 0
    page.keyboard.press("Escape")

    mine = open_notebook(page, swan, "carol", "mine.ipynb")
    mine.locator(".swan-ShareButton").click()
    dialog = page.locator(".swan-ShareDialog")
    dialog.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    page.get_by_role("button", name="Done").click()
    page.locator(".jp-BreadCrumbs-home").click()
    menu = context_menu_of(page, "mine.ipynb")
    menu.get_by_role("menuitem", name="Share…").wait_for()
    page.keyboard.press("Escape")
    assert page.errors == []


def test_a_group_share_and_a_direct_share_of_one_folder_are_one_entry_in_jupyterlab(swan):
    (swan.data / "users" / "alice" / "week-4").mkdir()
    share(swan, "week-4", "group", "class-2026")
    share(swan, "week-4", "user", "bob", permissions=15)
    (waiting,) = [s for s in received(swan, "bob") if s["path"].endswith("week-4")]
    assert (waiting["state"], waiting["permissions"]) == ("pending", 15)
    accept(swan, "bob", waiting["id"])
    (entry,) = [s for s in received(swan, "bob") if s["path"].endswith("week-4")]
    assert (entry["state"], entry["location"]) == ("accepted", "Shared/week-4")
    listed = user_api(swan, "bob", "GET", "bob/api/contents/Shared").json()["content"]
    assert [m["name"] for m in listed if m["name"].startswith("week-4")] == ["week-4"]
    assert [m["writable"] for m in listed if m["name"] == "week-4"] == [True]


def test_the_hub_lists_the_link_generator_and_deletes_say_they_go_to_the_trash(swan, browser):
    page = logged_in_page(browser, swan, "bob", f"{swan.url}/hub/home")
    page.locator(".navbar", has_text="Services").get_by_text("Services").click()
    generator = page.get_by_role("link", name="swan-links")
    generator.wait_for()
    assert generator.get_attribute("href").endswith("/services/swan-links/")

    note = {"type": "file", "format": "text", "content": "scratch"}
    assert user_api(swan, "bob", "PUT", "bob/api/contents/scratch.txt", json=note).is_success
    page.goto(f"{swan.url}/user/bob/lab?reset")
    page.locator(".jp-BreadCrumbs-home").click()
    move = re.compile(r"^Move to Trash")
    context_menu_of(page, "scratch.txt", move).get_by_role("menuitem", name=move).click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-Dialog-body", has_text="want to move to trash: scratch.txt").wait_for()
    assert "permanently" not in dialog.inner_text()
    dialog.get_by_role("button", name="Move to Trash").click()
    dialog.wait_for(state="detached")
    eventually(lambda: not (swan.data / "users" / "bob" / "scratch.txt").exists())
    trash = user_api(swan, "bob", "GET", "bob/swan/api/trash").json()
    assert "scratch.txt" in json.dumps(trash)
    assert page.errors == []


def test_a_teacher_makes_an_upload_only_link_and_sees_its_address(swan, browser):
    (swan.data / "users" / "alice" / "hand-in").mkdir()
    page = logged_in_page(browser, swan, "alice", f"{swan.url}/user/alice/lab")
    dialog = share_dialog_of(page, "hand-in")
    dialog.get_by_label("Link rights").select_option("upload")
    dialog.get_by_role("button", name="Create link").click()
    row = dialog.locator(".swan-ShareDialog-share", has_text="public link")
    row.wait_for()
    assert "upload only" in row.inner_text()
    (link,) = user_api(
        swan, "alice", "GET", "alice/swan/api/shares", params={"path": "hand-in"}
    ).json()
    assert link["permissions"] == 4
    address = row.locator(".swan-ShareDialog-url")
    assert address.input_value() == link["url"]
    assert address.get_attribute("readonly") is not None
    # what the link promises: a visitor drops a file in, and sees nothing of the folder
    token = link["url"].rsplit("/", 1)[1]
    dropped = httpx.put(
        f"{swan.url}/services/drive/public.php/webdav/essay.txt",
        auth=(token, ""),
        content=b"my essay",
        timeout=30,
    )
    assert dropped.status_code == 201, dropped.text
    assert (swan.data / "users" / "alice" / "hand-in" / "essay.txt").read_bytes() == b"my essay"
    listed = httpx.request(
        "PROPFIND",
        f"{swan.url}/services/drive/public.php/webdav/",
        auth=(token, ""),
        headers={"Depth": "1"},
        timeout=30,
    )
    assert listed.status_code in (401, 403), listed.text
    page.get_by_role("button", name="Done").click()
    assert page.errors == []


def test_a_password_link_asks_plainly_once_and_is_remembered(swan, browser):
    (swan.data / "users" / "alice" / "quiz.ipynb").write_text(
        json.dumps(notebook_json(TEACHER_WROTE))
    )
    made = user_api(
        swan,
        "alice",
        "POST",
        "alice/swan/api/shares",
        json={"path": "quiz.ipynb", "kind": "link", "permissions": 1, "password": "Quiz-7"},
    )
    assert made.status_code == 201, made.text
    link = f"{swan.url}/hub/user-redirect/swan/open?" + urlencode({"url": made.json()["url"]})
    page = logged_in_page(browser, swan, "carol", link)
    page.get_by_role("button", name="Open").click()
    status = page.locator("#open-status")
    status.filter(has_text="This link asks for a password").wait_for()
    assert "cannot be opened" not in page.locator("main").inner_text()
    assert page.locator("#open-log .error").count() == 0
    assert page.evaluate("document.activeElement.id") == "open-password"

    page.locator("#open-password").fill("Quiz-7")
    page.get_by_role("button", name="Open").click()
    page.wait_for_url("**/user/carol/lab/tree/SWAN_projects/quiz/quiz.ipynb")
    # the same link again: the password is not asked for a second time
    page.goto(link)
    assert page.locator("#open-password").input_value() == "Quiz-7"
    page.get_by_role("button", name="Open").click()
    page.wait_for_url("**/user/carol/lab/tree/SWAN_projects/quiz/quiz.ipynb")
    assert page.errors == []
