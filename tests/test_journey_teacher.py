"""A teacher prepares a class on the drive's web page, walked in Debian's Chromium through
`swan up` (the real hub, proxy, drive and notebook servers on 127.0.0.1): she makes
`class-2026/week1`, shares it with her class's group from the page's share dialog, makes a
public link with a password and an expiry, finds it under Links with its URL and moves its
expiry there, finds the share under Shared by me, and, once a student accepted and saved his own
copy, finds that copy nowhere in her files. JupyterLab's side of the class is walked in
test_class_browser.py.

Screenshots for docs/ go to $SWAN_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import pytest
from harness.lab_browser import (
    fill_hub_login,
    needs_chromium,
    notebook_json,
    person,
    screenshot_dir,
)
from harness.swan import SWAN_UP_MARKS, Swan, ready_for_browsers, start_swan, user_api
from test_journey_scientist import assert_a_page_of_ours, new_folder

pytest.importorskip("playwright.sync_api")
pytestmark = [*SWAN_UP_MARKS, needs_chromium]

IN_30_DAYS = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
IN_60_DAYS = (datetime.date.today() + datetime.timedelta(days=60)).isoformat()


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    """`swan up` (the drive as storage) with teacher alice and student bob, both in the demo
    group class-2026; bob's server runs."""
    swan = start_swan(tmp_path_factory.mktemp("journey-teacher"))
    try:
        ready_for_browsers(swan, ("bob",))
        yield swan
    finally:
        swan.kill_everything()


def test_a_teacher_shares_a_week_of_her_class_from_the_drive_page(swan, browser, tmp_path):
    shots = screenshot_dir(tmp_path)
    space = swan.data / "users" / "alice"
    page = person(browser)
    page.goto(f"{swan.url}/services/drive/")
    fill_hub_login(page, "alice", swan.passwords()["alice"])
    status = page.get_by_role("status")

    # class-2026/week1, made on the page, with the week's notebook uploaded into it
    for folder in ("class-2026", "week1"):
        new_folder(page, folder)
        page.get_by_role("link", name=f"{folder}/", exact=True).click()
    folder = page.get_by_role("navigation", name="Folder")
    folder.get_by_role("link", name="week1", exact=True).wait_for()
    exercise = notebook_json("print('week one')")
    page.get_by_label("Choose files").set_input_files(
        files=[
            {
                "name": "exercise.ipynb",
                "mimeType": "application/json",
                "buffer": json.dumps(exercise).encode(),
            }
        ]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_role("link", name="exercise.ipynb", exact=True).wait_for()

    # shared with the class's group, view only, from the share dialog
    page.get_by_role("link", name="class-2026", exact=True).click()
    page.get_by_role("button", name="Share week1/").click()
    dialog = page.get_by_role("dialog", name="Share “week1”")
    dialog.get_by_text("Not shared yet.").wait_for()
    dialog.get_by_label("User or group").fill("class-2026")
    dialog.get_by_label("Permission").select_option("view")
    dialog.get_by_role("button", name="Add").click()
    status.filter(has_text="Shared “week1” with class-2026.").wait_for()
    dialog.get_by_role("combobox", name="Permission of group class-2026").wait_for()

    # a public link with a password and an expiry: its URL is shown in the dialog
    dialog.get_by_label("Password (optional)").fill("Week-1-pass")
    dialog.get_by_label("Expires on (optional)").fill(IN_30_DAYS)
    dialog.get_by_role("button", name="Create link").click()
    status.filter(has_text="Made a public link to “week1”: ").wait_for()
    url = status.inner_text().rsplit(": ", 1)[1]
    assert url.startswith(f"{swan.url}/services/drive/s/")
    listed = dialog.get_by_role("listitem").filter(has_text="Public link")
    assert f"(password, expires {IN_30_DAYS}, view only)" in listed.inner_text()
    assert listed.get_by_role("link").inner_text() == url
    page.screenshot(path=str(shots / "journey-teacher-share-dialog.png"))
    dialog.get_by_role("button", name="Close").click()
    marks = page.locator("tr", has=page.get_by_role("link", name="week1/", exact=True))
    marks.get_by_role("img", name="Has a public link").wait_for()
    marks.get_by_role("img", name="Shared with others").wait_for()

    # under Links, with its URL in full; its expiry moved in place
    page.get_by_role("link", name="Links", exact=True).click()
    row = page.locator("tr", has=page.get_by_role("link", name=url, exact=True))
    assert row.get_by_role("cell").nth(2).inner_text() == "yes"
    assert IN_30_DAYS in row.inner_text()
    row.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("dialog")
    editor.get_by_text("The link has a password (it is never shown).").wait_for()
    assert editor.get_by_label("Expires on (empty: never)").input_value() == IN_30_DAYS
    editor.get_by_label("Expires on (empty: never)").fill(IN_60_DAYS)
    editor.get_by_role("button", name="Save").click()
    status.filter(has_text=f"(password, expires {IN_60_DAYS}, view only).").wait_for()
    row.filter(has_text=IN_60_DAYS).wait_for()
    assert IN_30_DAYS not in row.inner_text()
    assert_a_page_of_ours(page)

    # under Shared by me: the group, view only
    page.get_by_role("link", name="Shared by me", exact=True).click()
    share = page.locator("tr[data-share]", has_text="class-2026")
    share.wait_for()
    assert "week1" in share.inner_text()
    assert share.get_by_role("combobox").input_value() == "view"
    assert_a_page_of_ours(page)

    # a student accepts and saves his own copy: it is his, in none of her files
    (waiting,) = user_api(
        swan, "bob", "GET", "bob/swan/api/shared-with-me", params={"state": "all"}
    ).json()
    accepted = user_api(swan, "bob", "POST", f"bob/swan/api/shared-with-me/{waiting['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    copied = user_api(
        swan, "bob", "POST", "bob/api/contents", json={"copy_from": "Shared/week1/exercise.ipynb"}
    )
    assert copied.status_code == 201, copied.text
    into_hers = user_api(
        swan,
        "bob",
        "PUT",
        "bob/api/contents/Shared/week1/mine.ipynb",
        json={"type": "notebook", "content": exercise},
    )
    assert into_hers.status_code == 403, into_hers.text
    assert (swan.data / "users" / "bob" / copied.json()["path"]).is_file()
    page.get_by_role("link", name="Files", exact=True).click()
    page.get_by_role("link", name="class-2026/", exact=True).click()
    page.get_by_role("link", name="week1/", exact=True).click()
    names = page.locator("tbody tr[data-path] td:nth-child(2) a").all_inner_texts()
    assert names == ["exercise.ipynb"]
    everything = sorted(p.relative_to(space).as_posix() for p in space.rglob("*"))
    assert everything == ["class-2026", "class-2026/week1", "class-2026/week1/exercise.ipynb"]
    assert page.errors == []
