"""An anonymous visitor opens a teacher's public link cold, walked in Debian's Chromium through
`swan up` (the real hub, proxy, drive and notebook servers on 127.0.0.1), in a browser context
that never saw the hub: the password page (a wrong password gets a sentence; the right one is
asked once), the folder, a notebook's preview whose scripts never run, a CSV, a markdown file
and an image previewed, a download, then "Open in SWAN": the hub's login, and the copy in the
visitor's `SWAN_projects/` opened in JupyterLab. A file-drop link offers an upload and shows
none of its files.

Screenshots (phone width, as the drive's docs show its pages) go to $SWAN_SCREENSHOT_DIR.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness.drive import Drive, answering_drive, ocs_share
from harness.lab_browser import (
    eventually,
    fill_hub_login,
    needs_chromium,
    person,
    screenshot_dir,
)
from harness.swan import SPAWN_TIMEOUT, SWAN_UP_MARKS, ready_for_browsers, start_swan
from test_drive_browser import PLANTED, hostile_notebook
from test_journey_scientist import assert_a_page_of_ours

pytest.importorskip("playwright.sync_api")
pytestmark = [*SWAN_UP_MARKS, needs_chromium]

PASSWORD = "Field-Trip-7"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
RUNS = "run,energy\n1,13.6\n2,7.2\n"


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> Iterator[Drive]:
    """`swan up` (the drive as storage): alice's field trip folder and an empty hand-in folder;
    bob, who will open the link in SWAN, has his server running."""
    swan = start_swan(tmp_path_factory.mktemp("journey-visitor"))
    try:
        trip = swan.data / "users" / "alice" / "field-trip"
        trip.mkdir(parents=True)
        (trip / "lake.ipynb").write_bytes(hostile_notebook())
        (trip / "runs.csv").write_text(RUNS)
        (trip / "README.md").write_text("# Field trip\n\nBring *boots*.\n")
        (trip / "lake.png").write_bytes(PNG)
        (swan.data / "users" / "alice" / "hand-in").mkdir()
        (swan.data / "users" / "alice" / "hand-in" / "carol-essay.txt").write_text("carol's")
        ready_for_browsers(swan, ("alice", "bob"))
        yield answering_drive(swan)
    finally:
        swan.kill_everything()


def visitor(browser, planted: list[str], dialogs: list[str]):
    """A page of a browser context that never saw the hub, watching what scripts would do."""
    page = person(browser)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: PLANTED in request.url and planted.append(request.url))
    return page


def test_a_visitor_opens_a_password_link_cold_and_takes_a_copy_into_swan(drive, browser, tmp_path):
    shots = screenshot_dir(tmp_path)
    link = ocs_share(drive, "alice", path="/field-trip", shareType=3, password=PASSWORD)["url"]
    planted: list[str] = []
    dialogs: list[str] = []
    page = visitor(browser, planted, dialogs)
    page.set_viewport_size({"width": 390, "height": 844})

    # the password page; a wrong password is said in a sentence
    page.goto(link)
    page.get_by_role("heading", name="Protected link").wait_for()
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Open").click()
    page.get_by_role("alert").filter(has_text="That password is not right.").wait_for()
    assert_a_page_of_ours(page)
    page.screenshot(path=str(shots / "journey-visitor-password-phone.png"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Open").click()

    # the folder, fitting a phone's width
    page.get_by_role("heading", name="field-trip").wait_for()
    for name in ("lake.ipynb", "runs.csv", "README.md", "lake.png"):
        page.get_by_role("link", name=name, exact=True).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(shots / "journey-visitor-folder-phone.png"))

    # the notebook's preview: its outputs shown, its script never run
    page.get_by_role("link", name="lake.ipynb", exact=True).click()
    page.get_by_role("heading", name="lake.ipynb").wait_for()
    rendered = page.frame_locator("iframe.rendered")
    rendered.get_by_text("the answer is 42").first.wait_for()
    rendered.get_by_text("bold table").wait_for()
    page.wait_for_timeout(1500)  # a script would have run by now
    assert dialogs == [] and planted == []
    assert page.get_by_role("heading", name="Protected link").count() == 0
    page.screenshot(path=str(shots / "journey-visitor-notebook-phone.png"))

    # back in the folder (the password is not asked again): a CSV, markdown and an image
    page.get_by_role("link", name="field-trip").first.click()
    page.get_by_role("link", name="runs.csv", exact=True).click()
    page.get_by_role("columnheader", name="energy").wait_for()
    page.get_by_role("cell", name="13.6").wait_for()
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download", exact=True).click()
    assert Path(downloading.value.path()).read_text() == RUNS
    page.go_back()
    page.get_by_role("link", name="field-trip").first.click()
    page.get_by_role("link", name="README.md", exact=True).click()
    page.frame_locator("iframe.rendered").get_by_role("heading", name="Field trip").wait_for()
    page.get_by_role("link", name="field-trip").first.click()
    page.get_by_role("link", name="lake.png", exact=True).click()
    image = page.locator("main img")
    image.wait_for()
    eventually(lambda: image.evaluate("img => img.complete && img.naturalWidth") == 1)
    assert page.get_by_role("heading", name="Protected link").count() == 0

    # Open in SWAN: the hub's login, then the copy in SWAN_projects/ opens in JupyterLab
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="field-trip").first.click()
    page.get_by_role("link", name="lake.ipynb", exact=True).click()
    page.get_by_role("link", name="Open in SWAN").click()
    fill_hub_login(page, "bob", drive.swan.passwords()["bob"])
    page.wait_for_selector("#open-confirm", timeout=SPAWN_TIMEOUT * 1000)
    page.locator("#open-password").fill(PASSWORD)
    page.click("#open-confirm")
    page.wait_for_url("**/user/bob/lab/tree/SWAN_projects/field-trip/lake.ipynb")
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-Cell", has_text="the answer is 42").first.wait_for()
    page.locator(".jp-FileBrowser .jp-DirListing-header").wait_for()
    page.wait_for_timeout(1500)  # a "Path Not Found" dialog follows the first listing
    assert page.locator(".jp-Dialog", has_text="Path Not Found").count() == 0
    project = drive.space("bob") / "SWAN_projects" / "field-trip"
    assert (project / "runs.csv").read_text() == RUNS
    assert (project / "lake.png").read_bytes() == PNG
    # JupyterLab shows the untrusted output's image (a plain GET of its src); no script ran
    assert dialogs == [] and not [url for url in planted if f"{PLANTED}?" in url]
    assert page.errors == []


def test_a_file_drop_link_offers_an_upload_and_shows_none_of_the_files(drive, browser, tmp_path):
    made = ocs_share(
        drive, "alice", path="/hand-in", shareType=3, permissions=4, password="Hand-in-3"
    )
    hand_in = drive.space("alice") / "hand-in"
    page = visitor(browser, [], [])
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(made["url"])
    page.get_by_label("Password").fill("Hand-in-3")
    page.get_by_role("button", name="Open").click()
    page.get_by_role("heading", name="hand-in").wait_for()
    assert_a_page_of_ours(page)
    assert "carol" not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # two essays added from the page; a taken name is said so and the file there stays
    status = page.get_by_role("status")
    sent = page.get_by_role("list", name="Sent files")
    essays = [
        {"name": "bob-essay.txt", "mimeType": "text/plain", "buffer": b"bob's essay"},
        {"name": "carol-essay.txt", "mimeType": "text/plain", "buffer": b"not carol's"},
    ]
    page.get_by_label("Choose files").set_input_files(files=essays)
    page.get_by_role("button", name="Upload").click()
    status.filter(has_text="Done: 2 files sent.").wait_for()
    assert sent.get_by_role("listitem").all_inner_texts() == [
        "Added “bob-essay.txt”.",
        "A file named “carol-essay.txt” is there already; rename yours and send it again.",
    ]
    assert (hand_in / "bob-essay.txt").read_bytes() == b"bob's essay"
    assert (hand_in / "carol-essay.txt").read_text() == "carol's"
    assert "carol's" not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-file-drop-phone.png"))
    assert page.errors == []

    # names that would climb out of the folder: refused, or a file of that odd name in it
    token = made["url"].rsplit("/", 1)[1]
    before = set((drive.swan.data / "users").rglob("*"))
    for name in ("..", ".", "%2e%2e", "..%2fescaped.txt", "a%2fb.txt", "%00.txt"):
        sent = page.request.put(f"{made['url']}/drop/{name}", data=b"climbing")
        assert sent.status < 500, (name, sent.status, sent.text())
    added = set((drive.swan.data / "users").rglob("*")) - before
    assert added and {p.parent for p in added} == {hand_in}
    assert all(p.read_bytes() == b"climbing" for p in added)

    # without the link's cookie (another browser, another site's request) nothing is added
    forged = httpx.put(f"{drive.base}/s/{token}/drop/forged.txt", content=b"forged", timeout=30)
    assert forged.status_code == 401 and "password" in forged.text
    assert "WWW-Authenticate" not in forged.headers
    unknown = httpx.put(f"{drive.base}/s/{'x' * 32}/drop/forged.txt", content=b"x", timeout=30)
    assert unknown.status_code == 404 and "does not exist" in unknown.text
    assert not (hand_in / "forged.txt").exists()
    # a link to view a folder adds nothing through a drop's address
    viewed = ocs_share(drive, "alice", path="/field-trip", shareType=3)["url"]
    refused = httpx.put(f"{viewed}/drop/added.txt", content=b"added", timeout=30)
    assert refused.status_code == 404 and "file drop" in refused.text
    assert not (drive.space("alice") / "field-trip" / "added.txt").exists()
