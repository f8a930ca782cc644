"""User files the drive serves cannot script the hub's origin, in Debian's Chromium through `swan
up` (real hub, proxy and drive on 127.0.0.1): alice shares an HTML and an SVG file that try to mint
an API token for whoever opens them; bob opens them from his drive page, and nothing runs there.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from lab_browser import chromium_browser, fill_hub_login, needs_chromium, person
from test_drive import Drive
from test_swan_up import Swan, log_in, start_swan
from test_swan_up import pytestmark as SWAN_UP_MARKS

pytestmark = SWAN_UP_MARKS

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


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    workdir = tmp_path_factory.mktemp("drive-xss")
    swan = start_swan(workdir)
    try:
        for name in ("alice", "bob"):
            log_in(swan, name)
        yield swan
    finally:
        swan.kill_everything()


def token_notes(swan: Swan, name: str) -> list[str]:
    r = httpx.get(
        f"{swan.url}/hub/api/users/{name}/tokens",
        headers={"Authorization": f"token {swan.tokens[name]}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return sorted(t.get("note") or "" for t in r.json()["api_tokens"])


@needs_chromium
def test_a_shared_html_or_svg_file_opened_on_the_drive_page_runs_nothing_in_the_origin(swan):
    pytest.importorskip("playwright.sync_api")
    drive = Drive(swan)
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
            link = page.get_by_role("link", name=name, exact=True)
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
        page.goto(folder)
        assert page.evaluate("localStorage.getItem('scripted')") is None
    # the drive page's own login adds a token of the hub's OAuth; none is the files'
    minted = [note for note in token_notes(swan, "bob") if "minted" in note]
    assert minted == [] and not [n for n in tokens_before if "minted" in n]
