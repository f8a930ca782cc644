"""The drive page's Trash and Versions views, through `swan up` (real hub, proxy and drive on
127.0.0.1): over HTTP, what a user deleted listed newest first with where it was, hostile names
escaped, another user's trash never shown, a long trash in pages, a file's versions listed and
downloaded and what has none refused with a sentence; in Debian's Chromium, alice deletes a file
and restores it, is asked before one comes back beside a file that took its place, deletes one
forever, and restores a file's first version from the Files page's Versions.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import httpx
import pytest
from harness.drive import DAV, NC, PROPFIND_BODY, parse_xml, running_drive
from harness.lab_browser import (
    chromium_browser,
    fill_hub_login,
    needs_chromium,
    person,
    screenshot_dir,
)
from harness.swan import SWAN_UP_MARKS
from test_drive import signed_in

from swan_hub.drive.web import ROWS_PER_PAGE

pytestmark = SWAN_UP_MARKS

HOSTILE = "<img src=x onerror=alert(1)>.txt"


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with running_drive(tmp_path_factory.mktemp("trash-page")) as drive:
        yield drive


def trash_rows(page: httpx.Response) -> list[tuple[str, str]]:
    """(name, original location) of each item the trash page lists, in its order."""
    rows = re.findall(r"<tr data-item='[^']*'.*?<td>([^<]*)</td><td>([^<]*)</td>", page.text)
    return [(html.unescape(name), html.unescape(where)) for name, where in rows]


def trashbin(drive, user: str) -> list[str]:
    """The original locations of what is in ``user``'s trash, read through the drive's WebDAV."""
    r = drive.client(user).request(
        "PROPFIND",
        f"{drive.base}/remote.php/dav/trashbin/{user}/trash/",
        headers={"Depth": "1"},
        content=PROPFIND_BODY,
    )
    assert r.status_code == 207, r.text
    found = (
        response.findtext(f".//{NC}trashbin-original-location")
        for response in parse_xml(r.content).iter(f"{DAV}response")
    )
    return [location for location in found if location]  # the trash folder itself has none


def empty_trash(drive, user: str) -> None:
    r = drive.client(user).request("DELETE", f"{drive.base}/remote.php/dav/trashbin/{user}/trash/")
    assert r.status_code == 204, r.text


def test_deleted_files_and_folders_are_listed_newest_first_with_where_they_were(drive):
    empty_trash(drive, "alice")
    assert drive.dav("alice", "MKCOL", "reports").status_code == 201
    assert drive.dav("alice", "PUT", "reports/q1.txt", content=b"q1").is_success
    assert drive.dav("alice", "MKCOL", "old plots").status_code == 201
    assert drive.dav("alice", "PUT", "old plots/a.png", content=b"png").is_success
    assert drive.dav("alice", "PUT", "notes.txt", content=b"notes").is_success
    for path in ("reports/q1.txt", "old plots", "notes.txt"):
        assert drive.dav("alice", "DELETE", path).status_code == 204
        time.sleep(0.01)
    with signed_in(drive, "alice") as (browser, files):
        assert "<a href='/services/drive/trash'>Trash</a>" in files.text
        page = browser.get(f"{drive.base}/trash")
        assert page.status_code == 200
        assert trash_rows(page) == [
            ("notes.txt", "the top of your space"),
            ("old plots/", "the top of your space"),
            ("q1.txt", "reports"),
        ]
        assert "<a href='/services/drive/'>Files</a>" in page.text
        assert "aria-current='page'>Trash</a>" in page.text
        # each row names the item the trashbin's WebDAV lists, for Restore and Delete forever
        items = re.findall(r"<tr data-item='([^']*)'", page.text)
        assert [i.rsplit(".d", 1)[0] for i in items] == ["notes.txt", "old plots", "q1.txt"]
        assert "Select old plots/" in page.text and "Restore q1.txt" in page.text
        assert "Delete notes.txt forever" in page.text

        empty_trash(drive, "alice")
        assert "The trash is empty." in browser.get(f"{drive.base}/trash").text


def test_a_hostile_name_in_the_trash_is_shown_as_text(drive):
    assert drive.dav("alice", "PUT", HOSTILE, content=b"markup").is_success
    assert drive.dav("alice", "DELETE", HOSTILE).status_code == 204
    with signed_in(drive, "alice") as (browser, _):
        page = browser.get(f"{drive.base}/trash")
        assert "<img" not in page.text
        assert "<td>&lt;img src=x onerror=alert(1)&gt;.txt</td>" in page.text
        assert (HOSTILE, "the top of your space") in trash_rows(page)
    empty_trash(drive, "alice")


def test_another_users_trash_is_never_shown(drive):
    assert drive.dav("bob", "PUT", "bobs diary.txt", content=b"bob only").is_success
    assert drive.dav("bob", "DELETE", "bobs diary.txt").status_code == 204
    with signed_in(drive, "alice") as (browser, _):
        for query in ("", "?user=bob", "?page=1&user=bob"):
            page = browser.get(f"{drive.base}/trash{query}")
            assert page.status_code == 200 and "bobs diary" not in page.text
    with signed_in(drive, "bob") as (browser, _):
        assert ("bobs diary.txt", "the top of your space") in trash_rows(
            browser.get(f"{drive.base}/trash")
        )
    # without the drive's session, the hub's login
    anonymous = httpx.get(f"{drive.base}/trash", timeout=30)
    assert anonymous.status_code == 302 and "/hub/" in anonymous.headers["location"]


def version_rows(page: httpx.Response) -> list[tuple[str, str]]:
    """(version's name in the WebDAV, its download link) of each row, in the page's order."""
    rows = re.findall(r"<tr data-version='([^']*)'.*?href='([^']*)'", page.text)
    return [(name, html.unescape(href)) for name, href in rows]


def test_a_files_versions_are_listed_newest_first_and_download_under_its_name(drive):
    assert drive.dav("alice", "MKCOL", "drafts").status_code == 201
    # recent times, a minute apart: the drive thins out older versions
    first, second = int(time.time()) - 120, int(time.time()) - 60
    for when, body in ((first, b"one"), (second, b"two!"), (None, b"three")):
        headers = {"X-OC-Mtime": str(when)} if when else {}
        assert drive.dav("alice", "PUT", "drafts/essay.txt", content=body, headers=headers)
    with signed_in(drive, "alice") as (browser, files):
        assert "<button type='button' id='versions' disabled>Versions</button>" in files.text
        page = browser.get(f"{drive.base}/versions", params={"path": "drafts/essay.txt"})
        assert page.status_code == 200
        assert "Versions of essay.txt" in page.text
        assert "nothing is lost" in page.text
        rows = version_rows(page)
        assert [name for name, _ in rows] == [str(second), str(first)]  # newest first
        assert [browser.get(drive.swan.url + href).content for _, href in rows] == [b"two!", b"one"]
        got = browser.get(drive.swan.url + rows[0][1])
        assert "essay.txt" in got.headers.get("content-disposition", "essay.txt")
        assert got.headers["x-content-type-options"] == "nosniff"
        # the same versions the WebDAV lists, where the page's script restores them
        dav = re.search(r"data-versions-dav='([^']*)'", page.text)[1]
        listing = drive.client("alice").request(
            "PROPFIND", drive.swan.url + dav, headers={"Depth": "1"}
        )
        assert listing.status_code == 207
        assert all(f"{dav}{name}" in listing.text for name, _ in rows)


def test_the_versions_page_refuses_what_has_no_versions_of_ones_own_with_a_sentence(drive):
    assert drive.dav("alice", "MKCOL", "folder with files").status_code == 201
    assert drive.dav("bob", "PUT", "x", content=b"bob only").is_success
    (drive.space("alice") / "to-bob").symlink_to(drive.space("bob") / "x")
    with signed_in(drive, "alice") as (browser, _):
        for path, status, sentence in (
            (
                "folder with files",
                400,
                "“folder with files” is a folder; only files have versions.",
            ),
            ("no such.txt", 404, "There is no file “no such.txt” in your space."),
            ("to-bob", 404, ""),
            ("../bob/x", 400, "not a valid file name"),
            ("", 400, "Say which file"),
        ):
            refused = browser.get(f"{drive.base}/versions", params={"path": path})
            assert refused.status_code == status, (path, refused.text)
            assert sentence in html.unescape(refused.text)
            assert "bob only" not in refused.text and "<tr data-version" not in refused.text
        missing = browser.get(
            f"{drive.base}/versions/download", params={"path": "drafts/essay.txt", "version": "1"}
        )
        assert missing.status_code == 404


def test_a_long_trash_shows_in_pages(drive):
    empty_trash(drive, "alice")
    folder = drive.space("alice") / "many"
    folder.mkdir()
    names = [f"run {i:03d}.csv" for i in range(ROWS_PER_PAGE + 1)]
    for name in names:
        (folder / name).write_text("a,b\n")
    for name in names:
        assert drive.dav("alice", "DELETE", f"many/{name}").status_code == 204
    with signed_in(drive, "alice") as (browser, _):
        first = browser.get(f"{drive.base}/trash")
        assert f"1-{ROWS_PER_PAGE} of {len(names)} (page 1 of 2)" in first.text
        following = html.unescape(re.search(r"rel='next' href='([^']*)'", first.text)[1])
        second = browser.get(f"{drive.base}/trash{following}")
        shown = [name for name, _ in trash_rows(first) + trash_rows(second)]
        assert shown == names[::-1]  # newest first
        assert browser.get(f"{drive.base}/trash", params={"page": "two"}).status_code == 400
    empty_trash(drive, "alice")


# -- in a browser -----------------------------------------------------------------------------


@needs_chromium
def test_in_a_browser_alice_restores_and_deletes_forever_from_the_trash(drive, tmp_path):
    pytest.importorskip("playwright.sync_api")
    empty_trash(drive, "alice")
    space = drive.space("alice") / "browser-trash"
    space.mkdir(parents=True)
    (space / "summary.txt").write_bytes(b"first")
    with chromium_browser() as browser:
        page = person(browser)
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{drive.base}/?dir=browser-trash")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        status = page.get_by_role("status")

        # deleted on the Files page, restored from the Trash: back where it was
        page.get_by_role("checkbox", name="Select summary.txt").check()
        page.get_by_role("button", name="Delete").click()
        page.get_by_role("dialog").get_by_role("button", name="Move to the trash").click()
        status.filter(has_text="Moved 1 item to the trash.").wait_for()
        page.get_by_role("link", name="Trash", exact=True).click()
        page.wait_for_url("**/services/drive/trash")
        assert page.get_by_role("cell", name="browser-trash", exact=True).count() == 1
        page.get_by_role("button", name="Restore summary.txt", exact=True).click()
        status.filter(has_text="Restored “summary.txt” to “browser-trash”.").wait_for()
        page.get_by_text("The trash is empty.").wait_for()
        assert (space / "summary.txt").read_bytes() == b"first"

        # deleted again and a new file of its name made: the page asks before it comes back
        assert drive.dav("alice", "DELETE", "browser-trash/summary.txt").status_code == 204
        assert drive.dav("alice", "PUT", "browser-trash/summary.txt", content=b"new").is_success
        page.reload()
        page.get_by_role("button", name="Restore summary.txt", exact=True).click()
        status.filter(
            has_text="There is already a file or folder named “summary.txt” at “browser-trash”; "
            "restore it under another name?"
        ).wait_for()
        assert (space / "summary.txt").read_bytes() == b"new"
        page.get_by_role("button", name="Restore under another name").click()
        status.filter(has_text="as “summary (restored).txt” at “browser-trash”").wait_for()
        assert (space / "summary.txt").read_bytes() == b"new"
        assert (space / "summary (restored).txt").read_bytes() == b"first"
        assert page.get_by_role("button", name="Restore under another name").is_hidden()

        # delete forever, after a question that says it cannot be undone; Escape keeps it
        for name, body in (("scratch.txt", b"scratch"), (HOSTILE, b"markup")):
            assert drive.dav("alice", "PUT", f"browser-trash/{name}", content=body).is_success
            assert drive.dav("alice", "DELETE", f"browser-trash/{name}").status_code == 204
        page.reload()
        page.get_by_role("button", name="Delete scratch.txt forever").click()
        question = page.get_by_role("dialog")
        assert "Delete “scratch.txt” forever? This cannot be undone." in question.inner_text()
        page.keyboard.press("Escape")
        question.wait_for(state="hidden")
        assert "browser-trash/scratch.txt" in trashbin(drive, "alice")
        page.get_by_role("button", name="Delete scratch.txt forever").click()
        question.get_by_role("button", name="Delete forever").click()
        status.filter(has_text="Deleted “scratch.txt” forever.").wait_for()
        assert trashbin(drive, "alice") == [f"browser-trash/{HOSTILE}"]
        page.get_by_role("cell", name=HOSTILE, exact=True).wait_for()
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-trash.png"))

        # a selection, restored from the toolbar
        page.get_by_role("checkbox", name="Select all").check()
        page.get_by_role("toolbar").get_by_role("button", name="Restore").click()
        status.filter(has_text=f"Restored “{HOSTILE}” to “browser-trash”.").wait_for()
        assert (space / HOSTILE).read_bytes() == b"markup"
        assert trashbin(drive, "alice") == []

        # a file overwritten twice: Versions from the Files page, the first one restored
        for body in (b"version 1", b"version 2", b"version 3"):
            assert drive.dav("alice", "PUT", "browser-trash/plan.txt", content=body).is_success
            time.sleep(1.1)  # versions are named by their second
        page.get_by_role("link", name="Files", exact=True).click()
        page.get_by_role("link", name="browser-trash/", exact=True).click()
        versions = page.get_by_role("button", name="Versions")
        page.get_by_role("checkbox", name="Select plan.txt").check()
        page.get_by_role("checkbox", name="Select summary.txt").check()
        assert versions.is_disabled()  # one file at a time
        page.get_by_role("checkbox", name="Select summary.txt").uncheck()
        versions.click()
        page.wait_for_url("**/services/drive/versions?path=browser-trash%2Fplan.txt")
        assert "nothing is lost" in page.get_by_role("main").inner_text()
        restore = page.get_by_role("button", name=re.compile("^Restore the version of "))
        assert restore.count() == 2
        restore.last.focus()  # the oldest, from the keyboard
        page.keyboard.press("Enter")
        status.filter(has_text="What the file held before is now among its versions.").wait_for()
        assert (space / "plan.txt").read_bytes() == b"version 1"
        restore.nth(1).wait_for()
        with page.expect_download() as downloading:
            page.get_by_role("link", name=re.compile("^Download the version of ")).first.click()
        assert Path(downloading.value.path()).read_bytes() in (b"version 2", b"version 3")
        kept = sorted(
            page.request.get(drive.swan.url + href).body()
            for href in page.locator("a.download").evaluate_all(
                "links => links.map(a => a.getAttribute('href'))"
            )
        )
        assert kept == [b"version 2", b"version 3"]  # what the restore replaced is kept
        assert dialogs == []
