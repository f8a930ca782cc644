"""The class scenario in a real browser, through `swan up` as a teacher and a student use it: the
real hub, proxy, drive and notebook servers on 127.0.0.1, Debian's Chromium driven by Playwright,
one browser context per person, each logged in through the hub's login form. The teacher shares
a class folder with a group and makes a public link; the student accepts, opens a notebook
read-only, clones the folder and works on the clone; the teacher revokes.

Screenshots for docs/sharing.md go to $SWAN_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness.lab_browser import (
    add_to_the_cell_and_save,
    create_link,
    eventually,
    needs_chromium,
    notebook_json,
    screenshot_dir,
    share_dialog_of,
    share_view_only,
)
from harness.lab_browser import open_lab as open_lab_as
from harness.swan import (
    SWAN_UP_MARKS,
    Swan,
    ready_for_browsers,
    start_swan,
    user_api,
    write_drive_config,
)

pytest.importorskip("playwright.sync_api")
pytestmark = [*SWAN_UP_MARKS, needs_chromium]

TEACHER_WROTE = "print('the teacher wrote this')"


def source_of(path: Path) -> str:
    source = json.loads(path.read_text())["cells"][0]["source"]
    return "".join(source) if isinstance(source, list) else source


def drive_requests(swan: Swan, part: str, method: str = "") -> list[str]:
    """The requests the drive served (``method`` ones, or all) whose path holds ``part``."""
    lines = (swan.data.parent / "drive.log").read_text().splitlines()
    found = [line.split(" ") for line in lines if line]
    return [" ".join(f) for f in found if part in f[1] and f[0] == (method or f[0])]


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    """`swan up` (the drive as storage) with teacher alice and student bob, both in the demo
    group class-2026, their servers running. alice's space holds the class folder, as her sync
    client put it there."""
    workdir = tmp_path_factory.mktemp("class-browser")
    write_drive_config(workdir, f"c.DriveService.access_log = {str(workdir / 'drive.log')!r}\n")
    swan = start_swan(workdir)
    try:
        lesson = swan.data / "users" / "alice" / "class-2026"
        lesson.mkdir(parents=True)
        (lesson / "exercise-1.ipynb").write_text(json.dumps(notebook_json(TEACHER_WROTE)))
        (swan.data / "users" / "alice" / "physics-lab").mkdir()
        ready_for_browsers(swan, ("alice", "bob"))
        yield swan
    finally:
        swan.kill_everything()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


def open_lab(browser, swan: Swan, name: str):
    return open_lab_as(browser, swan, name, permissions=("clipboard-read", "clipboard-write"))


def test_a_teacher_shares_a_class_folder_and_a_student_reads_clones_and_loses_it(
    swan, browser, screenshots
):
    alice_space = swan.data / "users" / "alice"
    original = alice_space / "class-2026" / "exercise-1.ipynb"
    stored_before = original.read_bytes()
    # a second, personal share that waits for bob's answer next to the class one
    lab = user_api(
        swan,
        "alice",
        "POST",
        "alice/swan/api/shares",
        json={"path": "physics-lab", "kind": "user", "share_with": "bob", "permissions": 1},
    )
    assert lab.status_code == 201, lab.text

    teacher = open_lab(browser, swan, "alice")
    dialog = share_dialog_of(teacher, "class-2026")
    dialog.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    searched_before = len(drive_requests(swan, "/sharees"))
    share_view_only(dialog, "class", "class-2026")
    # typed at a person's pace: the storage was searched once, when typing paused
    assert len(drive_requests(swan, "/sharees")) - searched_before == 1
    teacher.locator(".jp-Dialog-content").screenshot(path=str(screenshots / "share-dialog.png"))

    link, expiry = create_link(dialog, "Correct-Horse-7")
    assert "password" in link.inner_text() and f"expires {expiry}" in link.inner_text()
    copied = teacher.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"{swan.url}/services/drive/s/")
    # the link asks for its password and serves the folder with it
    assert httpx.get(copied, timeout=30).status_code == 401
    token = copied.rsplit("/", 1)[1]
    webdav = f"{swan.url}/services/drive/public.php/webdav/exercise-1.ipynb"
    assert httpx.get(webdav, auth=(token, "Correct-Horse-7"), timeout=30).content == stored_before
    teacher.locator(".jp-Dialog-content").screenshot(path=str(screenshots / "share-link.png"))
    teacher.evaluate("navigator.clipboard.writeText('')")
    link.get_by_role("button", name="Copy link").click()
    eventually(lambda: teacher.evaluate("navigator.clipboard.readText()") == copied)
    teacher.get_by_role("button", name="Done").click()

    student = open_lab(browser, swan, "bob")
    student.locator('.lm-TabBar-tab[data-id="swan-shared-with-me"]').click()
    panel = student.locator(".swan-SharedWithMe")
    share = panel.locator(".swan-SharedWithMe-share", has_text="class-2026")
    share.get_by_role("button", name="Accept").click()
    share.get_by_role("button", name="Open").wait_for()
    assert "view only" in share.inner_text() and "via group class-2026" in share.inner_text()
    panel.locator(".swan-SharedWithMe-share", has_text="physics-lab").get_by_role(
        "button", name="Accept"
    ).wait_for()
    student.screenshot(path=str(screenshots / "shared-with-me.png"))

    # opened in place: read-only, and a save is refused without losing the student's edit
    share.get_by_role("button", name="Open").click()
    student.locator(".jp-BreadCrumbs", has_text="class-2026").wait_for()
    student.locator(".jp-DirListing-item", has_text="exercise-1.ipynb").dblclick()
    notebook = student.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-Cell", has_text="the teacher wrote this").wait_for()
    notebook.locator('[data-jp-item-name="read-only-indicator"]', has_text="read-only").wait_for()
    add_to_the_cell_and_save(notebook, "  # the student's idea")
    # JupyterLab's own refusal for a file the storage says is not writable (a toast that
    # closes itself after 5 s: waited for whole, never read afterwards)
    refusal = 'Shared/class-2026/exercise-1.ipynb is read-only. Use "Save as'
    student.locator(".jp-toastContainer .jp-toast-message", has_text=refusal).wait_for()
    student.screenshot(path=str(screenshots / "read-only-notebook.png"), animations="disabled")
    # nothing was sent to the storage, the student's edit is still on the page
    assert not drive_requests(swan, "/Shared/class-2026/exercise-1.ipynb", method="PUT")
    assert notebook.locator(".jp-Cell", has_text="the student's idea").is_visible()
    assert original.read_bytes() == stored_before

    # cloned into the student's own space, and edited there
    student.locator('.lm-TabBar-tab[data-id="swan-shared-with-me"]').click()
    share.get_by_role("button", name="Clone").click()
    # said on the panel, then the clone is shown in the file browser (the panel hidden)
    cloned_status = panel.locator(".swan-SharedWithMe-status", has_text="Cloned to /class-2026")
    cloned_status.wait_for(state="attached")
    crumbs = student.locator(".jp-BreadCrumbs")

    def in_the_clone() -> bool:
        """the file browser shows the clone, /class-2026/ of bob's own space"""
        shown = "".join(crumbs.inner_text().split())
        return shown == "/class-2026/"

    eventually(in_the_clone)
    student.locator(".jp-DirListing-item", has_text="exercise-1.ipynb").dblclick()
    clone = student.locator(".jp-NotebookPanel:visible")
    # the read-only notebook of the same name stays open in a tab behind: the clone's tab is in
    # front once the visible notebook is no longer marked read-only
    clone.locator('[data-jp-item-name="read-only-indicator"]').wait_for(state="detached")
    clone.locator(".jp-Cell", has_text="the teacher wrote this").wait_for()
    add_to_the_cell_and_save(clone, "  # the student's clone")
    cloned = swan.data / "users" / "bob" / "class-2026" / "exercise-1.ipynb"
    eventually(lambda: "the student's clone" in source_of(cloned))
    assert original.read_bytes() == stored_before

    # revoked: gone from the student's panel, file browser and API
    group = share_dialog_of(teacher, "class-2026").locator(
        ".swan-ShareDialog-share", has_text="class-2026"
    )
    group.get_by_role("button", name="Revoke").click()
    teacher.locator(".swan-ShareDialog-status", has_text="no longer has access").wait_for()
    group.wait_for(state="detached")  # said first, then the list is asked again

    student.locator('.lm-TabBar-tab[data-id="swan-shared-with-me"]').click()
    panel.get_by_role("button", name="Refresh").click()
    panel.locator(".swan-SharedWithMe-share", has_text="physics-lab").wait_for()
    eventually(lambda: share.count() == 0)
    student.locator('.lm-TabBar-tab[data-id="filebrowser"]').click()
    crumbs.locator(".jp-BreadCrumbs-home").click()
    student.locator(".jp-DirListing-item", has_text="class-2026").wait_for()
    # Shared/ stays, without the share (a listing may be shown from before the revocation
    # until it is asked again)
    student.locator(".jp-DirListing-item", has_text="Shared").dblclick()
    eventually(
        lambda: (
            student.locator(".jp-DirListing-item", has_text="Shared").count() == 0
            and student.locator(".jp-DirListing-item", has_text="class-2026").count() == 0
        )
    )
    gone = user_api(swan, "bob", "GET", "bob/api/contents/Shared/class-2026/exercise-1.ipynb")
    assert gone.status_code == 404
    listed = user_api(swan, "bob", "GET", "bob/swan/api/shared-with-me", params={"state": "all"})
    assert "class-2026" not in [s["path"].strip("/") for s in listed.json()]
    # the clone is the student's own and stays; the teacher's original never changed
    assert "the student's clone" in source_of(cloned)
    assert original.read_bytes() == stored_before
