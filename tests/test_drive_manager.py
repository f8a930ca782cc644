"""The drive's page as a file manager, through `swan up` (real hub, proxy and drive on 127.0.0.1):
over HTTP, its folders sorted by name, size or time across pages, a folder of one's own space
downloaded as a zip without following the links planted in it, hostile names shown escaped, and
a log-out that needs the page's request token; in Debian's Chromium, alice makes a folder,
uploads two files each with its progress, renames, moves and deletes them (into the trash), is
refused a rename onto a taken name, downloads the folder as a zip and logs out.
"""

from __future__ import annotations

import html
import io
import os
import re
import zipfile
from pathlib import Path

import httpx
import pytest
from harness.drive import DAV, NC, PROPFIND_BODY, parse_xml, running_drive
from harness.lab_browser import (
    chromium_browser,
    eventually,
    fill_hub_login,
    needs_chromium,
    person,
    screenshot_dir,
)
from harness.swan import SWAN_UP_MARKS
from markupsafe import escape
from test_drive import listed, signed_in

from swan_hub.drive.web import ROWS_PER_PAGE

pytestmark = SWAN_UP_MARKS

#: names a hostile user gives files: markup, quotes, a per cent sign that looks like an escape
HOSTILE = "<img src=x onerror=alert(1)>.txt"
QUOTED = 'it\'s "50%25" done.txt'


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with running_drive(tmp_path_factory.mktemp("manager")) as drive:
        yield drive


def following_pages(
    browser: httpx.Client, base: str, first: httpx.Response, kept: str
) -> list[str]:
    """The names listed on ``first`` and on each page its Next links lead to, each link
    keeping the order (``kept``: its part of the query)."""
    pages = [first]
    while "rel='next'" in pages[-1].text:
        following = html.unescape(re.search(r"rel='next' href='([^']*)'", pages[-1].text)[1])
        assert kept in following
        pages.append(browser.get(f"{base}/{following}"))
        assert pages[-1].status_code == 200
    return sum((listed(page) for page in pages), [])


def test_a_folder_sorts_by_name_size_or_time_across_its_pages_folders_first(drive):
    folder = drive.space("alice") / "sorting"
    folder.mkdir(parents=True)
    count = ROWS_PER_PAGE + 1  # two pages of files, and two folders
    files = [f"run {i:03d}.csv" for i in range(count)]
    # sizes and times in orders of their own: 13 and 7 share no factor with 501
    for i, name in enumerate(files):
        (folder / name).write_bytes(b"x" * ((13 * i) % count))
        os.utime(folder / name, (1_700_000_000 + (7 * i) % count * 60,) * 2)
    for name, when in (("b-old", 1_600_000_000), ("A-new", 1_800_000_000)):
        (folder / name).mkdir()
        os.utime(folder / name, (when, when))
    by_size = sorted(files, key=lambda n: (13 * files.index(n)) % count)
    by_time = sorted(files, key=lambda n: (7 * files.index(n)) % count)
    expected = {
        ("name", "asc"): ["A-new/", "b-old/", *files],
        ("name", "desc"): ["b-old/", "A-new/", *reversed(files)],
        # a folder has no size of its own: by size, folders stay in name order
        ("size", "asc"): ["A-new/", "b-old/", *by_size],
        ("size", "desc"): ["A-new/", "b-old/", *reversed(by_size)],
        ("modified", "asc"): ["b-old/", "A-new/", *by_time],
        ("modified", "desc"): ["A-new/", "b-old/", *reversed(by_time)],
    }
    with signed_in(drive, "alice") as (browser, _):
        plain = browser.get(f"{drive.base}/", params={"dir": "sorting"})
        assert listed(plain)[:3] == ["A-new/", "b-old/", files[0]]
        current = "<th aria-sort='ascending'><a href='?dir=sorting&amp;sort=name&amp;order=desc'>"
        assert current + "Name</a>" in plain.text
        assert "<th><a href='?dir=sorting&amp;sort=size&amp;order=asc'>Size</a></th>" in plain.text
        for (key, order), names in expected.items():
            first = browser.get(
                f"{drive.base}/", params={"dir": "sorting", "sort": key, "order": order}
            )
            assert first.status_code == 200
            aria = "ascending" if order == "asc" else "descending"
            assert f"<th aria-sort='{aria}'><a href=" in first.text
            assert len(re.findall("aria-sort=", first.text)) == 1
            kept = "" if (key, order) == ("name", "asc") else f"sort={key}&order={order}&"
            assert following_pages(browser, drive.base, first, kept) == names, (key, order)


def test_an_unknown_sort_or_order_is_refused_with_what_is_allowed(drive):
    with signed_in(drive, "alice") as (browser, _):
        for bad in ({"sort": "owner"}, {"order": "up"}, {"sort": "Size"}, {"order": "descending"}):
            refused = browser.get(f"{drive.base}/", params=bad)
            assert refused.status_code == 400, bad
            assert "Sort by name, size or modified" in refused.text
            assert "asc or desc" in refused.text


def test_a_folder_of_ones_space_downloads_as_a_zip_without_following_links(drive):
    project = drive.space("alice") / "project"
    (project / "data").mkdir(parents=True)
    (project / "lesson.ipynb").write_text("{}")
    (project / "data" / "points.csv").write_text("x,y\n1,2\n")
    bob = drive.space("bob")
    bob.mkdir(parents=True, exist_ok=True)
    (bob / "diary.txt").write_text("bob only")
    # links planted in the folder and beside it: to a file and a folder of another space
    (project / "passwd").symlink_to("/etc/passwd")
    (project / "bobs").symlink_to(bob)
    (drive.space("alice") / "to-bob").symlink_to(bob)

    with signed_in(drive, "alice") as (browser, page):
        link = "/services/drive/zip?path=project"
        assert f"href='{link}' download aria-label='Download project/'" in page.text
        zipped = browser.get(drive.swan.url + link)
        assert zipped.status_code == 200, zipped.text
        assert zipped.headers["content-type"] == "application/zip"
        assert zipped.headers["content-disposition"].startswith("attachment")
        archive = zipfile.ZipFile(io.BytesIO(zipped.content))
        assert archive.namelist() == [
            "project/",
            "project/data/",
            "project/data/points.csv",
            "project/lesson.ipynb",
        ]
        assert archive.read("project/data/points.csv") == b"x,y\n1,2\n"

        # a folder reached through a link is no folder of the space, nor is the space itself
        for path in ("to-bob", "project/bobs", "project/passwd", "nothing-here", ""):
            refused = browser.get(f"{drive.base}/zip", params={"path": path})
            assert refused.status_code == 404, path
            assert "bob only" not in refused.text
        # another user's space is not below one's own
        refused = browser.get(f"{drive.base}/zip", params={"path": "../bob"})
        assert refused.status_code in (400, 404) and b"bob only" not in refused.content

    # without the drive's session, the hub's login
    anonymous = httpx.get(f"{drive.base}/zip?path=project", timeout=30)
    assert anonymous.status_code == 302 and "/hub/" in anonymous.headers["location"]


def test_hostile_names_are_shown_escaped_and_their_links_work(drive):
    assert drive.dav("alice", "MKCOL", "names").status_code == 201
    assert drive.dav("alice", "MKCOL", f"names/{HOSTILE}.d").status_code == 201
    for name, body in ((HOSTILE, b"markup"), (QUOTED, b"quotes")):
        assert drive.dav("alice", "PUT", f"names/{name}", content=body).is_success
    with signed_in(drive, "alice") as (browser, _):
        page = browser.get(f"{drive.base}/", params={"dir": "names"})
        assert "<img" not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;.txt" in page.text
        # the rows carry their paths for the page's actions, escaped for an attribute
        paths = [html.unescape(p) for p in re.findall(r"<tr data-path='([^']*)'>", page.text)]
        assert sorted(paths) == sorted(
            [f"names/{HOSTILE}.d", f"names/{HOSTILE}", f"names/{QUOTED}"]
        )
        for name, body in ((HOSTILE, b"markup"), (QUOTED, b"quotes")):
            href = re.search(
                r"href='([^']*)' download aria-label='Download "
                + re.escape(str(escape(name)))
                + "'",
                page.text,
            )[1]
            assert browser.get(drive.swan.url + html.unescape(href)).content == body
        href = re.search(r"href='(/services/drive/zip[^']*)'", page.text)[1]
        zipped = browser.get(drive.swan.url + html.unescape(href))
        assert zipfile.ZipFile(io.BytesIO(zipped.content)).namelist() == [f"{HOSTILE}.d/"]


def test_logging_out_needs_the_pages_request_token(drive):
    with signed_in(drive, "alice") as (browser, page):
        token = re.search(r"data-requesttoken='([^']*)'", page.text)[1]
        assert "href='/hub/user-redirect/lab'>JupyterLab</a>" in page.text
        # another site's form has no token: the session stays
        assert browser.post(f"{drive.base}/logout").status_code == 403
        assert browser.get(f"{drive.base}/", follow_redirects=False).status_code == 200
        assert browser.post(f"{drive.base}/logout", headers={"requesttoken": token}).is_success
        again = browser.get(f"{drive.base}/", follow_redirects=False)
        assert again.status_code == 302 and "/hub/" in again.headers["location"]


# -- in a browser -----------------------------------------------------------------------------


def trash_locations(drive) -> list[str]:
    """The original locations of what is in alice's trash, read through the drive's WebDAV."""
    r = drive.client("alice").request(
        "PROPFIND",
        f"{drive.base}/remote.php/dav/trashbin/alice/trash/",
        headers={"Depth": "1"},
        content=PROPFIND_BODY,
    )
    assert r.status_code == 207, r.text
    return [
        response.findtext(f".//{NC}trashbin-original-location")
        for response in parse_xml(r.content).iter(f"{DAV}response")
        if response.find(f".//{NC}trashbin-original-location") is not None
    ]


@needs_chromium
def test_in_a_browser_alice_manages_her_files_on_the_drive_page(drive, tmp_path):
    pytest.importorskip("playwright.sync_api")
    space: Path = drive.space("alice") / "browser"
    space.mkdir(parents=True)
    big = os.urandom(3 << 20)  # big enough for progress events on the way
    with chromium_browser() as browser:
        page = person(browser)
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{drive.base}/?dir=browser")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        status = page.get_by_role("status")
        lab = page.get_by_role("link", name="JupyterLab")
        assert lab.get_attribute("href") == "/hub/user-redirect/lab"

        # a new folder, from the keyboard; Escape closes a dialog and makes nothing
        page.get_by_role("button", name="New folder").click()
        page.get_by_role("textbox", name="Name", exact=True).fill("never made")
        page.keyboard.press("Escape")
        page.get_by_role("dialog").wait_for(state="hidden")
        page.get_by_role("button", name="New folder").click()
        page.get_by_role("textbox", name="Name", exact=True).fill("reports")
        page.keyboard.press("Enter")
        page.get_by_role("link", name="reports/", exact=True).wait_for()
        assert (space / "reports").is_dir() and not (space / "never made").exists()

        # two files at once, each with its own progress bar
        page.get_by_label("Choose files").set_input_files(
            files=[
                {"name": HOSTILE, "mimeType": "text/plain", "buffer": big},
                {"name": QUOTED, "mimeType": "text/plain", "buffer": b"quoted"},
            ]
        )
        page.get_by_role("button", name="Upload").click()
        status.filter(has_text="Uploaded 2 files.").wait_for()
        for name in (HOSTILE, QUOTED):
            bar = page.get_by_role("progressbar", name=f"Upload of {name}")
            assert bar.evaluate("bar => bar.value === bar.max && bar.max > 0"), name
            page.get_by_role("link", name=name, exact=True).wait_for()
        assert (space / HOSTILE).read_bytes() == big and (space / QUOTED).read_bytes() == b"quoted"
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-page.png"))

        # rename one; then a rename onto a taken name is refused and changes nothing
        page.get_by_role("checkbox", name=f"Select {QUOTED}").check()
        page.get_by_role("button", name="Rename").click()
        page.get_by_role("textbox", name="New name").fill("notes 100%.txt")
        page.get_by_role("dialog").get_by_role("button", name="Rename").click()
        page.get_by_role("link", name="notes 100%.txt", exact=True).wait_for()
        assert (space / "notes 100%.txt").read_bytes() == b"quoted"
        assert not (space / QUOTED).exists()

        page.get_by_role("checkbox", name="Select notes 100%.txt").check()
        page.get_by_role("button", name="Rename").click()
        page.get_by_role("textbox", name="New name").fill(HOSTILE)
        page.keyboard.press("Enter")
        status.filter(has_text=f"There is already a file or folder named “{HOSTILE}”").wait_for()
        assert (space / "notes 100%.txt").read_bytes() == b"quoted"
        assert (space / HOSTILE).read_bytes() == big

        # select both files and move them into the folder
        page.get_by_role("checkbox", name=f"Select {HOSTILE}").check()
        assert page.get_by_role("checkbox", name="Select notes 100%.txt").is_checked()
        page.get_by_role("button", name="Move to…").click()
        page.get_by_role("textbox", name="Folder").fill("browser/reports")
        page.keyboard.press("Enter")
        status.filter(has_text="Moved 2 items").wait_for()
        assert page.get_by_role("link", name=HOSTILE, exact=True).count() == 0
        assert (space / "reports" / HOSTILE).read_bytes() == big
        assert (space / "reports" / "notes 100%.txt").read_bytes() == b"quoted"

        # delete one: the dialog speaks of the trash, and the file is in it
        page.get_by_role("link", name="reports/", exact=True).click()
        page.wait_for_url("**/services/drive/?dir=browser/reports")
        page.get_by_role("checkbox", name="Select all").check()
        page.get_by_role("checkbox", name=f"Select {HOSTILE}").uncheck()
        page.get_by_role("button", name="Delete").click()
        question = page.get_by_role("dialog")
        assert "Move 1 item to the trash?" in question.inner_text()
        assert "permanent" not in question.inner_text().lower()
        question.get_by_role("button", name="Move to the trash").click()
        status.filter(has_text="Moved 1 item to the trash.").wait_for()
        assert not (space / "reports" / "notes 100%.txt").exists()
        assert "browser/reports/notes 100%.txt" in trash_locations(drive)

        # the folder downloads as a zip from its row one level up
        page.get_by_role("link", name="browser", exact=True).click()
        with page.expect_download() as downloading:
            page.get_by_role("link", name="Download reports/").click()
        saved = downloading.value
        assert saved.suggested_filename == "reports.zip"
        archive = zipfile.ZipFile(saved.path())
        assert archive.namelist() == ["reports/", f"reports/{HOSTILE}"]
        assert archive.read(f"reports/{HOSTILE}") == big

        # a file the drive refuses (a folder has its name) says why; the other one is uploaded
        page.get_by_label("Choose files").set_input_files(
            files=[
                {"name": "reports", "mimeType": "text/plain", "buffer": b"in the way"},
                {"name": "extra.txt", "mimeType": "text/plain", "buffer": b"extra"},
            ]
        )
        page.get_by_role("button", name="Upload").click()
        status.filter(has_text="Uploaded 1 of 2 files").wait_for()
        refused = page.get_by_role("listitem").filter(has_text="not uploaded")
        assert "There is already a file or folder named “reports”" in refused.inner_text()
        page.get_by_role("link", name="extra.txt", exact=True).wait_for()
        assert (space / "extra.txt").read_bytes() == b"extra" and (space / "reports").is_dir()

        # sorted by size, the column says so
        page.get_by_role("link", name="Size", exact=True).click()
        page.locator("th[aria-sort=ascending]", has_text="Size").wait_for()

        # at a phone's width the page fits without sideways scrolling
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_role("link", name="reports/", exact=True).click()
        page.get_by_role("link", name=HOSTILE, exact=True).wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-page-phone.png"))
        page.set_viewport_size({"width": 1280, "height": 800})
        assert dialogs == []

        # log out: the drive's session ends, then the hub's
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(lambda url: "/hub/login" in url or "/hub/logout" in url)
        eventually(lambda: "/hub/login" in page.url or "Log in" in page.content())
