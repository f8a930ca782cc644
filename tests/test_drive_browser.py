"""The drive's web page and its public links, through `swan up` as people use them: the real hub,
proxy, drive and notebook servers on 127.0.0.1. In Debian's Chromium, alice uploads a notebook on
/services/drive/, downloads it and opens it in SWAN with her server stopped (the hub spawns it)
and running; a public link of the drive, file or folder, opens in another user's SWAN_projects/;
a shared HTML or SVG file opened from the drive page runs nothing in the hub's origin.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from harness.drive import Drive
from harness.lab_browser import (
    chromium_browser,
    fill_hub_login,
    needs_chromium,
    notebook_json,
    person,
    screenshot_dir,
)
from harness.swan import SPAWN_TIMEOUT, SWAN_UP_MARKS, Swan, log_in, start_swan, user_servers
from test_open_in_hub import browser_login, confirm, follow_link

pytestmark = SWAN_UP_MARKS

# The hub shows its spawn progress page at once rather than after 10 s of a slow spawn: a local
# server starts in a few seconds, and the page is what this test wants to see.
ADMIN_CONFIG = "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0}\n"


def notebook_bytes(source: str) -> bytes:
    return (json.dumps(notebook_json(source), indent=1) + "\n").encode()


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    """`swan up` (the drive as storage) with alice and bob, their servers stopped."""
    workdir = tmp_path_factory.mktemp("drive-browser")
    (workdir / "admin_config.py").write_text(ADMIN_CONFIG)
    swan = start_swan(workdir, "-f", str(workdir / "admin_config.py"))
    try:
        for name in ("alice", "bob"):
            log_in(swan, name)
        yield swan
    finally:
        swan.kill_everything()


@pytest.fixture(scope="module")
def drive(swan) -> Drive:
    return Drive(swan)


def public_link(drive: Drive, owner: str, path: str, **more: str) -> str:
    """A public link of ``path`` in ``owner``'s space made over OCS (``more``: password=…)."""
    r = drive.ocs(owner, "POST", "shares", data={"path": path, "shareType": "3", **more})
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]["url"]


def space_of(swan: Swan, name: str) -> Path:
    """``name``'s space on disk, made if no test made it before (tests may run alone)."""
    space = swan.data / "users" / name
    space.mkdir(mode=0o700, parents=True, exist_ok=True)
    return space


def open_link(swan: Swan, name: str, url: str, password: str = "") -> list[dict]:
    """``name`` follows an open-in link of ``url`` (a drive link) like a browser and presses
    "Open", having typed ``password`` into the page's field for one."""
    client = browser_login(swan, name)
    link = "/hub/user-redirect/swan/open?" + urlencode({"url": url})
    page = follow_link(client, link, until="/swan/open")
    assert 'id="open-password"' in page.text
    return confirm(client, page, password)


@needs_chromium
def test_a_notebook_uploaded_on_the_drive_page_opens_in_swan_stopped_or_running(swan):
    pytest.importorskip("playwright.sync_api")
    data = notebook_bytes("print('uploaded on the drive page')")
    space = swan.data / "users" / "alice"
    (space / "lectures").mkdir(parents=True)
    (space / "lectures" / "week-1.ipynb").write_bytes(notebook_bytes("print('week one')"))
    assert user_servers(swan, "alice") == {}
    with chromium_browser() as browser:
        page = person(browser)
        visited: list[str] = []
        page.on("framenavigated", lambda frame: visited.append(frame.url))
        page.goto(f"{swan.url}/services/drive/")
        fill_hub_login(page, "alice", swan.passwords()["alice"])
        upload = page.locator("form#upload")
        upload.locator("input[type=file]").set_input_files(
            files=[{"name": "lesson.ipynb", "mimeType": "application/json", "buffer": data}]
        )
        upload.get_by_role("button", name="Upload").click()
        row = page.locator("tr", has=page.get_by_role("link", name="lesson.ipynb", exact=True))
        row.wait_for()
        assert (space / "lesson.ipynb").read_bytes() == data
        # downloaded with the page's own login (its cookies), byte for byte
        href = row.get_by_role("link", name="Download lesson.ipynb").get_attribute("href")
        assert page.request.get(f"{swan.url}{href}").body() == data

        # her server is stopped: the hub starts it, shows its progress, then the notebook opens
        row.get_by_role("link", name="Open in SWAN").click()
        page.wait_for_url("**/user/alice/lab/**", timeout=SPAWN_TIMEOUT * 1000)
        page.locator(".jp-NotebookPanel .jp-Cell", has_text="uploaded on the drive page").wait_for()
        assert any("/hub/spawn-pending/alice" in url for url in visited), visited
        assert user_servers(swan, "alice")[""]["ready"]

        # running now: the same button goes straight to the notebook, and a folder's opens it
        page.goto(f"{swan.url}/services/drive/")
        visited.clear()
        page.locator("tr", has_text="lesson.ipynb").get_by_role("link", name="Open in SWAN").click()
        page.wait_for_url("**/user/alice/lab/**")
        page.locator(".jp-NotebookPanel .jp-Cell", has_text="uploaded on the drive page").wait_for()
        assert not any("/hub/spawn" in url for url in visited), visited
        page.goto(f"{swan.url}/services/drive/")
        page.locator("tr", has_text="lectures/").get_by_role("link", name="Open in SWAN").click()
        page.wait_for_url("**/user/alice/lab/**")
        page.locator(".jp-BreadCrumbs", has_text="lectures").wait_for()
        page.locator(".jp-DirListing-item", has_text="week-1.ipynb").wait_for()
    assert (space / "lesson.ipynb").read_bytes() == data


def test_a_public_file_link_of_the_drive_opens_in_another_users_swan_projects(swan, drive):
    data = notebook_bytes("print('a handout for anyone')")
    (space_of(swan, "alice") / "handout.ipynb").write_bytes(data)
    link = public_link(drive, "alice", "/handout.ipynb")
    assert link.startswith(f"{swan.url}/services/drive/s/")

    events = open_link(swan, "bob", link)
    assert events[-1]["event"] == "done", events
    assert events[-1]["url"] == "/user/bob/lab/tree/SWAN_projects/handout/handout.ipynb"
    opened = swan.data / "users" / "bob" / "SWAN_projects" / "handout" / "handout.ipynb"
    assert opened.read_bytes() == data


def test_a_public_folder_link_of_the_drive_opens_as_a_project_with_all_its_files(swan, drive):
    folder = space_of(swan, "alice") / "course"
    (folder / "data").mkdir(parents=True)
    lesson = notebook_bytes("print('the course')")
    (folder / "lesson.ipynb").write_bytes(lesson)
    (folder / "data" / "points.csv").write_text("x,y\n1,2\n")
    (folder / ".secret").write_text("never shared")
    (folder / "passwords").symlink_to("/etc/passwd")
    link = public_link(drive, "alice", "/course")

    # the drive serves the folder as one zip, as Nextcloud does for a folder link, with what its
    # WebDAV serves: no symbolic link (which could point out of the space)
    zipped = httpx.get(f"{link}/download", timeout=30)
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(zipped.content)).namelist() == [
        "course/",
        "course/.secret",
        "course/data/",
        "course/data/points.csv",
        "course/lesson.ipynb",
    ]

    events = open_link(swan, "bob", link)
    assert events[-1]["event"] == "done", events
    assert events[-1]["url"] == "/user/bob/lab/tree/SWAN_projects/course/lesson.ipynb"
    project = swan.data / "users" / "bob" / "SWAN_projects" / "course"
    assert (project / "lesson.ipynb").read_bytes() == lesson
    assert (project / "data" / "points.csv").read_text() == "x,y\n1,2\n"
    # open-in leaves hidden files out of a project, as for any zip
    assert not (project / ".secret").exists() and not (project / "passwords").exists()


def test_a_password_link_of_the_drive_opens_with_its_password_and_no_other(swan, drive):
    data = notebook_bytes("print('exam')")
    (space_of(swan, "alice") / "exam.ipynb").write_bytes(data)
    protected = public_link(drive, "alice", "/exam.ipynb", password="Correct-Horse-7")
    projects = swan.data / "users" / "bob" / "SWAN_projects"
    events = open_link(swan, "bob", protected)
    assert events[-1]["event"] == "error" and "asks for a password" in events[-1]["message"]
    events = open_link(swan, "bob", protected, password="wrong-horse")
    assert "is not right" in events[-1]["message"], events
    assert not (projects / "exam").exists()
    events = open_link(swan, "bob", protected, password="Correct-Horse-7")
    assert events[-1]["event"] == "done", events
    assert (projects / "exam" / "exam.ipynb").read_bytes() == data


def test_an_unknown_drive_link_is_refused_and_writes_nothing(swan, drive):
    events = open_link(swan, "bob", f"{swan.url}/services/drive/s/NoSuchToken123")
    assert events[-1]["event"] == "error" and "404" in events[-1]["message"], events
    assert not (swan.data / "users" / "bob" / "SWAN_projects" / "NoSuchToken123").exists()


@needs_chromium
def test_in_a_browser_a_password_link_asks_for_its_password_on_the_drive_and_in_swan(swan, drive):
    pytest.importorskip("playwright.sync_api")
    data = notebook_bytes("print('quiz')")
    (space_of(swan, "alice") / "quiz.ipynb").write_bytes(data)
    link = public_link(drive, "alice", "/quiz.ipynb", password="Quiz-Pass-9")
    with chromium_browser() as browser:
        page = person(browser)
        # the drive's own page asks, then shows the file
        page.goto(link)
        page.fill("input[name=password]", "Quiz-Pass-9")
        page.get_by_role("button", name="Open").click()
        page.get_by_role("link", name="Download").wait_for()

        # as an open-in link: a wrong password is said so and may be typed again
        page.goto(f"{swan.url}/hub/user-redirect/swan/open?" + urlencode({"url": link}))
        fill_hub_login(page, "bob", swan.passwords()["bob"])
        page.wait_for_selector("#open-password", timeout=SPAWN_TIMEOUT * 1000)
        page.fill("#open-password", "not-it")
        page.click("#open-confirm")
        page.locator("#open-status", has_text="That password is not right").wait_for()
        page.fill("#open-password", "Quiz-Pass-9")
        page.click("#open-confirm")
        page.wait_for_url("**/user/bob/lab/tree/SWAN_projects/quiz/quiz.ipynb")
    assert (space_of(swan, "bob") / "SWAN_projects" / "quiz" / "quiz.ipynb").read_bytes() == data


#: what a hostile file does once it runs in the hub's origin: leave a mark in the origin's
#: storage and title, then ask the hub for an API token of the viewer (with the page's XSRF
#: token read from a hub page, as any script of the origin can)
ATTACK = """
localStorage.setItem("scripted", "WHAT");
document.title = "scripted";
fetch("/hub/home", {credentials: "include"}).then(r => r.text()).then(page => {
  const found = page.match(/xsrf_token:\\s*"([^"]+)"/)
    || page.match(/name="_xsrf" value="([^"]+)"/) || [];
  const xsrf = found[1];
  return fetch("/hub/api/users/bob/tokens", {
    method: "POST", credentials: "include",
    headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf || ""},
    body: JSON.stringify({note: "minted by WHAT"}),
  });
});
"""
FILES = {
    "notes.html": f"<!doctype html><title>notes</title><script>{ATTACK}</script>".replace(
        "WHAT", "html"
    ),
    "diagram.svg": (
        "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'>"
        f"<script><![CDATA[{ATTACK}]]></script></svg>"
    ).replace("WHAT", "svg"),
}


def token_notes(swan: Swan, name: str) -> list[str]:
    r = httpx.get(
        f"{swan.url}/hub/api/users/{name}/tokens",
        headers={"Authorization": f"token {swan.tokens[name]}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return sorted(t.get("note") or "" for t in r.json()["api_tokens"])


@needs_chromium
def test_a_shared_html_or_svg_file_opened_on_the_drive_page_runs_nothing_in_the_origin(swan, drive):
    """The drive shares the hub's origin: a file that could script it could act as its viewer."""
    pytest.importorskip("playwright.sync_api")
    assert drive.dav("alice", "MKCOL", "handouts").status_code == 201
    for name, body in FILES.items():
        assert drive.dav("alice", "PUT", f"handouts/{name}", content=body.encode()).is_success
    share = {"path": "handouts", "shareType": "0", "shareWith": "bob"}
    r = drive.ocs("alice", "POST", "shares", data=share)
    assert r.status_code == 200, r.text
    share_id = r.json()["ocs"]["data"]["id"]
    assert drive.ocs("bob", "POST", f"shares/pending/{share_id}").status_code == 200
    tokens_before = token_notes(swan, "bob")

    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{swan.url}/services/drive/")
        fill_hub_login(page, "bob", swan.passwords()["bob"])
        downloads: list = []
        page.on("download", lambda download: downloads.append(download))
        folder = f"{swan.url}/services/drive/?dir=Shared/handouts"
        for name in FILES:
            page.goto(folder)
            link = page.get_by_role("link", name=f"Download {name}")
            href = link.get_attribute("href")
            served = page.request.get(f"{swan.url}{href}")
            assert served.ok, served.status
            assert "sandbox" in served.headers["content-security-policy"]
            assert served.headers["x-content-type-options"] == "nosniff"
            assert served.headers["content-disposition"].startswith("attachment")
            link.click()
            # what a script of the file would have done needs a moment: give it one
            page.wait_for_timeout(2000)
            assert page.title() != "scripted", name
            assert [d.suggested_filename for d in downloads][-1:] == [name]
            # its name opens its preview: the HTML as text, the SVG as an image
            page.goto(folder)
            page.get_by_role("link", name=name, exact=True).click()
            page.get_by_role("heading", name=name).wait_for()
            page.wait_for_timeout(1000)
            assert page.title() != "scripted", name
        page.goto(folder)
        assert page.evaluate("localStorage.getItem('scripted')") is None
    # the drive page's own login adds a token of the hub's OAuth; none is the files'
    minted = [note for note in token_notes(swan, "bob") if "minted" in note]
    assert minted == [] and not [n for n in tokens_before if "minted" in n]


#: what a hostile notebook's scripts would do: a dialog, and a request to a planted URL
PLANTED = "planted-by-a-notebook"
SCRIPT = f"alert('scripted'); new Image().src = '/{PLANTED}?' + document.cookie"


def hostile_notebook() -> bytes:
    notebook = notebook_json("print('the answer is', 42)")
    notebook["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "the answer is 42\n"},
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"text/html": f"<b>bold table</b><script>{SCRIPT}</script>"},
        },
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"text/html": f"<img src='/{PLANTED}.png' onerror=\"{SCRIPT}\">"},
        },
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"application/javascript": SCRIPT, "text/plain": "<js output>"},
        },
    ]
    notebook["cells"].insert(
        0,
        {"cell_type": "markdown", "metadata": {}, "source": f"# Week 1\n<script>{SCRIPT}</script>"},
    )
    return (json.dumps(notebook) + "\n").encode()


@needs_chromium
def test_in_a_browser_a_notebook_opens_rendered_from_the_drive_page_and_runs_nothing(
    swan, tmp_path
):
    pytest.importorskip("playwright.sync_api")
    space = space_of(swan, "alice") / "previews"
    space.mkdir()
    (space / "week1.ipynb").write_bytes(hostile_notebook())
    (space / "broken.ipynb").write_text('{"cells": [ this is not JSON')
    (space_of(swan, "bob") / "diary.ipynb").write_bytes(notebook_bytes("print('bob only')"))
    (space / "linked.ipynb").symlink_to(space_of(swan, "bob") / "diary.ipynb")
    with chromium_browser() as browser:
        page = person(browser)
        dialogs: list[str] = []
        planted: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("request", lambda request: PLANTED in request.url and planted.append(request.url))
        page.goto(f"{swan.url}/services/drive/?dir=previews")
        fill_hub_login(page, "alice", swan.passwords()["alice"])
        page.get_by_role("link", name="week1.ipynb", exact=True).click()
        page.wait_for_url("**/services/drive/preview?path=previews%2Fweek1.ipynb")
        rendered = page.frame_locator("iframe.rendered")
        rendered.get_by_text("the answer is 42").wait_for()
        rendered.get_by_role("heading", name="Week 1").wait_for()
        rendered.get_by_text("bold table").wait_for()
        rendered.get_by_text("<js output>").wait_for()
        opener = page.get_by_role("link", name="Open in SWAN")
        assert opener.get_attribute("href").endswith("swan/open?path=previews/week1.ipynb")
        page.get_by_role("link", name="Download").wait_for()
        page.wait_for_timeout(1500)  # a script would have run by now
        assert dialogs == [] and planted == []

        # at a phone's width the page fits without sideways scrolling
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        page.frame_locator("iframe.rendered").get_by_text("the answer is 42").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-preview-phone.png"))
        page.set_viewport_size({"width": 1280, "height": 800})

        page.goto(f"{swan.url}/services/drive/?dir=previews")
        page.get_by_role("link", name="broken.ipynb", exact=True).click()
        message = page.frame_locator("iframe.rendered").get_by_role("alert")
        message.wait_for()
        assert "could not be read" in message.inner_text()

        # a link planted in the space is neither listed nor previewed
        page.goto(f"{swan.url}/services/drive/?dir=previews")
        assert page.get_by_role("link", name="linked.ipynb").count() == 0
        answer = page.goto(f"{swan.url}/services/drive/preview?path=previews/linked.ipynb")
        assert answer.status == 404 and "bob only" not in page.content()
        assert dialogs == [] and planted == []


@needs_chromium
def test_in_a_browser_an_anonymous_visitor_previews_a_public_folder_notebook_and_opens_it(
    swan, drive, tmp_path
):
    pytest.importorskip("playwright.sync_api")
    folder = space_of(swan, "alice") / "summer-school"
    (folder / "data").mkdir(parents=True)
    lesson = notebook_bytes("print('welcome to the summer school')")
    (folder / "intro.ipynb").write_bytes(lesson)
    # with two notebooks, the one that opens is the one the visitor looked at
    (folder / "exercises.ipynb").write_bytes(notebook_bytes("print('exercises')"))
    (folder / "data" / "runs.csv").write_text("run,energy\n1,13.6\n2,<b>7</b>\n")
    link = public_link(drive, "alice", "/summer-school")
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(link)
        page.get_by_role("link", name="intro.ipynb", exact=True).click()
        page.get_by_role("heading", name="intro.ipynb").wait_for()
        page.frame_locator("iframe.rendered").get_by_text(
            "welcome to the summer school"
        ).first.wait_for()
        page.screenshot(path=str(screenshot_dir(tmp_path) / "public-link-preview.png"))

        page.get_by_role("link", name="summer-school").click()
        page.get_by_role("link", name="data/", exact=True).click()
        page.get_by_role("link", name="runs.csv", exact=True).click()
        page.get_by_role("columnheader", name="energy").wait_for()
        page.get_by_role("cell", name="<b>7</b>").wait_for()

        # "Open in SWAN": the visitor logs in, the folder is copied to their SWAN_projects/ and
        # the notebook they looked at opens
        page.goto(link + "?path=intro.ipynb")
        page.get_by_role("link", name="Open in SWAN").click()
        fill_hub_login(page, "bob", swan.passwords()["bob"])
        page.wait_for_selector("#open-confirm", timeout=SPAWN_TIMEOUT * 1000)
        page.click("#open-confirm")
        page.wait_for_url(
            "**/user/bob/lab/tree/SWAN_projects/summer-school/intro.ipynb",
            timeout=SPAWN_TIMEOUT * 1000,
        )
    project = space_of(swan, "bob") / "SWAN_projects" / "summer-school"
    assert (project / "intro.ipynb").read_bytes() == lesson
    assert (project / "data" / "runs.csv").is_file()
