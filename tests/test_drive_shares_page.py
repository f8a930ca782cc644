"""The drive page's sharing views, through `swan up` (real hub, proxy and drive on 127.0.0.1):
over HTTP, Shared with me lists what others share (pending, accepted, declined; who and how),
Shared by me lists the user's shares with people and groups, Links lists public links with
their URL, password, expiry and what visitors may do; hostile names are text and another user's
shares are never shown. In Debian's Chromium, bob accepts and declines, alice unshares and
deletes a link, and a share gone meanwhile is said in a sentence.
"""

from __future__ import annotations

import html
import re
import time

import httpx
import pytest
from harness.drive import ocs_share, running_drive
from harness.lab_browser import (
    chromium_browser,
    fill_hub_login,
    needs_chromium,
    person,
    screenshot_dir,
)
from harness.swan import SWAN_UP_MARKS
from test_drive import signed_in

pytestmark = SWAN_UP_MARKS

HOSTILE = "<img src=x onerror=alert(1)>"
#: a choice in a row, and the option chosen in it
CHOICE = re.compile(r"<select.*?<option[^>]* selected>(.*?)</option>.*?</select>")


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with running_drive(tmp_path_factory.mktemp("shares-page")) as drive:
        yield drive


def rows(page: httpx.Response) -> list[list[str]]:
    """The text of each cell of each share row, in the page's order (a choice as the option
    chosen)."""
    found = []
    for row in re.findall(r"<tr data-share='\d+'.*?</tr>", page.text, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        cells = [re.sub(CHOICE, r"\1", cell) for cell in cells]
        found.append([html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells])
    return found


def forget_shares(drive, user: str) -> None:
    for share in drive.ocs(user, "GET", "shares").json()["ocs"]["data"]:
        assert drive.ocs(user, "DELETE", f"shares/{share['id']}").status_code == 200


def test_each_view_lists_its_shares_with_who_and_how(drive):
    forget_shares(drive, "alice")
    assert drive.dav("alice", "MKCOL", "results").status_code == 201
    assert drive.dav("alice", "PUT", "report.txt", content=b"r").is_success
    assert drive.dav("alice", "MKCOL", "inbox").status_code == 201
    to_bob = ocs_share(drive, "alice", path="results", shareType=0, shareWith="bob", permissions=1)
    ocs_share(drive, "alice", path="report.txt", shareType=1, shareWith="class-2026")
    link = ocs_share(
        drive, "alice", path="report.txt", shareType=3, password="s3cret", expireDate="2099-01-02"
    )
    drop = ocs_share(drive, "alice", path="inbox", shareType=3, permissions=4)
    with signed_in(drive, "alice") as (browser, files):
        assert "<a href='/services/drive/shared-by-me'>Shared by me</a>" in files.text
        by_me = browser.get(f"{drive.base}/shared-by-me")
        assert by_me.status_code == 200
        assert "aria-current='page'>Shared by me</a>" in by_me.text
        # newest first
        assert rows(by_me) == [
            ["report.txt", "group class-2026", "can edit", "never", "Unshare"],
            ["results/", "bob", "view only", "never", "Unshare"],
        ]
        links = browser.get(f"{drive.base}/links")
        assert rows(links) == [
            ["inbox/", drop["url"], "no", "never", "upload only", "Edit Delete"],
            ["report.txt", link["url"], "yes", "2099-01-02", "view only", "Edit Delete"],
        ]
        assert f"<a href='{link['url']}'>{link['url']}</a>" in links.text
        assert "s3cret" not in links.text and "scrypt" not in links.text
    with signed_in(drive, "bob") as (browser, _):
        with_me = browser.get(f"{drive.base}/shared-with-me")
        assert rows(with_me) == [
            ["report.txt", "alice (to class-2026)", "can edit", "pending", "Accept Decline"],
            ["results/", "alice", "view only", "pending", "Accept Decline"],
        ]
        assert drive.ocs("bob", "POST", f"shares/pending/{to_bob['id']}").status_code == 200
        with_me = browser.get(f"{drive.base}/shared-with-me")
        assert rows(with_me)[1] == ["results/", "alice", "view only", "accepted", "Decline"]
        assert "href='/services/drive/?dir=Shared%2Fresults'" in with_me.text
        # bob shares nothing: his views say so, and never show alice's
        for view, empty in (
            ("shared-by-me", "You share nothing with other people."),
            ("links", "You have no public links."),
        ):
            page = browser.get(f"{drive.base}/{view}", params={"user": "alice"})
            assert page.status_code == 200 and empty in page.text
            assert rows(page) == [] and link["token"] not in page.text
    anonymous = httpx.get(f"{drive.base}/shared-by-me", timeout=30)
    assert anonymous.status_code == 302 and "/hub/" in anonymous.headers["location"]


def test_a_hostile_name_is_shown_as_text_in_every_view(drive):
    assert drive.dav("alice", "MKCOL", HOSTILE).status_code == 201
    ocs_share(drive, "alice", path=HOSTILE, shareType=0, shareWith="bob")
    ocs_share(drive, "alice", path=HOSTILE, shareType=3)
    for user, view in (("alice", "shared-by-me"), ("alice", "links"), ("bob", "shared-with-me")):
        with signed_in(drive, user) as (browser, _):
            page = browser.get(f"{drive.base}/{view}")
            assert "<img" not in page.text
            assert any(row[0] == HOSTILE + "/" for row in rows(page)), view


def test_bob_cannot_change_alices_shares_through_the_pages_api(drive):
    share = ocs_share(drive, "alice", path="report.txt", shareType=3)
    with signed_in(drive, "bob") as (browser, page):
        token = re.search(r"data-requesttoken='([^']*)'", page.text)[1]
        gone = browser.delete(
            f"{drive.base}/ocs/v2.php/apps/files_sharing/api/v1/shares/{share['id']}",
            params={"format": "json"},
            headers={"requesttoken": token, "OCS-APIRequest": "true"},
        )
        assert gone.status_code == 404
        # without the page's request token, nothing at all
        planted = browser.delete(
            f"{drive.base}/ocs/v2.php/apps/files_sharing/api/v1/shares/{share['id']}",
            headers={"OCS-APIRequest": "true"},
        )
        assert planted.status_code == 403
    assert drive.ocs("alice", "GET", f"shares/{share['id']}").status_code == 200


def marks(page: httpx.Response) -> dict[str, list[str]]:
    """The markers' labels after each name of a folder's table, by name."""
    found = {}
    for name, cell in re.findall(r"<td><a href='[^']*'>([^<]*)</a>(.*?)</td>", page.text, re.S):
        found[html.unescape(name)] = re.findall(r"role='img' aria-label='([^']*)'", cell)
    return found


def test_files_mark_what_is_shared_linked_and_read_only(drive):
    forget_shares(drive, "alice")
    assert drive.dav("alice", "MKCOL", "marked").status_code == 201
    for name in ("both.txt", "linked.txt", "plain.txt"):
        assert drive.dav("alice", "PUT", f"marked/{name}", content=b"x").is_success
    assert drive.dav("alice", "MKCOL", "marked/with bob").status_code == 201
    ocs_share(drive, "alice", path="marked/both.txt", shareType=0, shareWith="bob", permissions=1)
    ocs_share(drive, "alice", path="marked/both.txt", shareType=3)
    ocs_share(drive, "alice", path="marked/linked.txt", shareType=3)
    seen = ocs_share(
        drive, "alice", path="marked/with bob", shareType=0, shareWith="bob", permissions=1
    )
    ocs_share(drive, "alice", path="marked", shareType=1, shareWith="class-2026")
    with signed_in(drive, "alice") as (browser, top):
        assert marks(top)["marked/"] == ["Shared with others"]
        assert "<svg aria-hidden='true'" in top.text
        inside = marks(browser.get(f"{drive.base}/", params={"dir": "marked"}))
        assert inside == {
            "with bob/": ["Shared with others"],
            "both.txt": ["Shared with others", "Has a public link"],
            "linked.txt": ["Has a public link"],
            "plain.txt": [],
        }
    assert drive.ocs("bob", "POST", f"shares/pending/{seen['id']}").status_code == 200
    assert drive.dav("alice", "PUT", "marked/with bob/data.csv", content=b"a").is_success
    with signed_in(drive, "bob") as (browser, _):
        shared = marks(browser.get(f"{drive.base}/", params={"dir": "Shared"}))
        assert shared["with bob/"] == ["Read-only"]
        inside = marks(browser.get(f"{drive.base}/", params={"dir": "Shared/with bob"}))
        assert inside == {"data.csv": ["Read-only"]}
        # bob's own files carry none of alice's marks
        own = marks(browser.get(f"{drive.base}/"))
        assert all(labels == [] for name, labels in own.items() if name != "Shared/")


# -- in a browser -----------------------------------------------------------------------------


@needs_chromium
def test_in_a_browser_shares_are_answered_unshared_and_a_stale_one_said(drive, tmp_path):
    pytest.importorskip("playwright.sync_api")
    forget_shares(drive, "alice")
    assert drive.dav("alice", "MKCOL", "lecture").status_code == 201
    assert drive.dav("alice", "MKCOL", "drafts").status_code == 201
    lecture = ocs_share(drive, "alice", path="lecture", shareType=0, shareWith="bob")
    drafts = ocs_share(drive, "alice", path="drafts", shareType=0, shareWith="bob")
    link = ocs_share(drive, "alice", path="lecture", shareType=3, password="pw")
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/shared-with-me")
        fill_hub_login(page, "bob", drive.swan.passwords()["bob"])
        page.wait_for_url("**/services/drive/shared-with-me")
        status = page.get_by_role("status")
        page.get_by_role("button", name="Accept lecture/").click()
        status.filter(has_text="Accepted “lecture/”: it is in your Shared folder.").wait_for()
        page.get_by_role("button", name="Decline drafts/").click()
        status.filter(has_text="Declined “drafts/”.").wait_for()
        assert page.get_by_role("button", name="Accept drafts/").is_visible()
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-shared-with-me.png"))
        page.get_by_role("link", name="lecture/", exact=True).click()
        page.wait_for_url(re.compile(r"/services/drive/\?dir=Shared%2Flecture$"))
        page.context.clear_cookies()

        page.goto(f"{drive.base}/shared-by-me")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        page.wait_for_url("**/services/drive/shared-by-me")
        status = page.get_by_role("status")
        page.get_by_role("button", name="Unshare drafts/ with bob").click()
        status.filter(has_text="“drafts/” is no longer shared that way.").wait_for()
        assert drive.ocs("alice", "GET", f"shares/{drafts['id']}").status_code == 404
        # unshared meanwhile elsewhere: the page says so and shows the list as it is
        assert drive.ocs("alice", "DELETE", f"shares/{lecture['id']}").status_code == 200
        page.get_by_role("button", name="Unshare lecture/ with bob").click()
        status.filter(
            has_text="The share of “lecture/” is not there any more; the list now shows what is."
        ).wait_for()
        page.get_by_text("You share nothing with other people.").wait_for()

        # the Files view marks the folder with a public link, for eyes and screen readers
        page.get_by_role("link", name="Files", exact=True).click()
        row = page.locator("tr", has=page.get_by_role("link", name="lecture/", exact=True))
        row.get_by_role("img", name="Has a public link").wait_for()
        assert row.get_by_role("img", name="Shared with others").count() == 0
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-marks.png"))

        page.get_by_role("link", name="Links", exact=True).click()
        page.wait_for_url("**/services/drive/links")
        page.get_by_role("link", name=link["url"]).wait_for()
        assert page.get_by_role("cell", name="yes", exact=True).count() == 1
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-links.png"))
        page.get_by_role("button", name="Delete the link of lecture/").click()
        status.filter(has_text="“lecture/” is no longer shared that way.").wait_for()
        page.get_by_text("You have no public links.").wait_for()
        assert drive.ocs("alice", "GET", f"shares/{link['id']}").status_code == 404


def test_share_is_offered_only_on_what_one_owns(drive):
    assert drive.dav("alice", "MKCOL", "offered").status_code == 201
    assert drive.dav("alice", "PUT", "offered/a.txt", content=b"a").is_success
    share = ocs_share(drive, "alice", path="offered", shareType=0, shareWith="bob")
    assert drive.ocs("bob", "POST", f"shares/pending/{share['id']}").status_code == 200
    with signed_in(drive, "alice") as (browser, _):
        own = browser.get(f"{drive.base}/", params={"dir": "offered"})
        assert "aria-label='Share a.txt'" in own.text and "id='share-dialog'" in own.text
    with signed_in(drive, "bob") as (browser, _):
        received = browser.get(f"{drive.base}/", params={"dir": "Shared/offered"})
        assert "a.txt" in received.text
        assert "class='share'" not in received.text and "id='share-dialog'" not in received.text
    # and the API refuses sharing it onward, in words the dialog shows
    onward = drive.ocs("bob", "POST", "shares", data={"path": "Shared/offered", "shareType": 3})
    assert onward.status_code == 403
    assert "resharing is not allowed" in onward.json()["ocs"]["meta"]["message"]


@needs_chromium
def test_in_a_browser_alice_shares_from_the_dialog_and_refusals_are_sentences(drive, tmp_path):
    pytest.importorskip("playwright.sync_api")
    forget_shares(drive, "alice")
    assert drive.dav("alice", "MKCOL", "dialog").status_code == 201
    assert drive.dav("alice", "MKCOL", "dialog/plots").status_code == 201
    assert drive.dav("alice", "PUT", "dialog/notes.txt", content=b"n").is_success

    def shares() -> list[dict]:
        found = drive.ocs("alice", "GET", "shares", params={"path": "dialog/plots"})
        return found.json()["ocs"]["data"]

    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/?dir=dialog")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        status = page.get_by_role("status")
        page.get_by_role("button", name="Share plots/").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("heading", name="Share “plots”").wait_for()
        alert = dialog.get_by_role("alert")
        dialog.get_by_text("Not shared yet.").wait_for()

        # an unknown user: a sentence, nothing made
        dialog.get_by_label("User or group").fill("nobody")
        dialog.get_by_role("button", name="Add").click()
        alert.filter(has_text="There is no user or group named “nobody” here.").wait_for()
        assert shares() == []

        # bob, view only, then can edit
        dialog.get_by_label("User or group").fill("bob")
        dialog.get_by_role("button", name="Add").click()
        status.filter(has_text="Shared “plots” with bob.").wait_for()
        assert [(s["share_with"], s["permissions"]) for s in shares()] == [("bob", 1)]
        dialog.get_by_label("Permission of bob").select_option(label="can edit")
        status.filter(has_text="“plots” is now editable for that share.").wait_for()
        assert [s["permissions"] for s in shares()] == [15]

        # a link: an expiry in the past refused in the drive's words, then a file drop
        dialog.get_by_label("Expires on (optional)").fill("2000-01-01")
        dialog.get_by_role("button", name="Create link").click()
        alert.filter(has_text="Expiration date is in the past. Nothing was changed.").wait_for()
        assert len(shares()) == 1
        dialog.get_by_label("Password (optional)").fill("pw")
        dialog.get_by_label("Expires on (optional)").fill("2099-03-04")
        dialog.get_by_label("Upload only").check()
        dialog.get_by_role("button", name="Create link").click()
        status.filter(has_text="Made a public link to “plots”: ").wait_for()
        link = next(s for s in shares() if s["share_type"] == 3)
        assert link["permissions"] == 4 and link["share_with"] == "***redacted***"
        assert link["expiration"].startswith("2099-03-04")
        dialog.get_by_role("link", name=link["url"]).wait_for()
        assert "(password, expires 2099-03-04, upload only)" in dialog.inner_text()
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-share-dialog.png"))

        # bob's share removed behind the page: Remove says so and shows what is
        bobs = next(s for s in shares() if s["share_type"] == 0)
        assert drive.ocs("alice", "DELETE", f"shares/{bobs['id']}").status_code == 200
        dialog.get_by_role("button", name="Remove the share with bob").click()
        alert.filter(has_text="or that share is gone. Nothing was changed.").wait_for()
        dialog.get_by_role("button", name="Remove the share with bob").wait_for(state="detached")
        dialog.get_by_role("button", name="Remove the public link").click()
        status.filter(has_text="Removed a share of “plots”.").wait_for()
        assert shares() == []
        dialog.get_by_role("button", name="Close").click()
        dialog.wait_for(state="hidden")

        # from the toolbar, for a file: no file drop offered
        page.get_by_role("checkbox", name="Select notes.txt").check()
        page.get_by_role("toolbar").get_by_role("button", name="Share").click()
        dialog.get_by_role("heading", name="Share “notes.txt”").wait_for()
        assert dialog.get_by_label("Upload only").is_hidden()
        dialog.get_by_role("button", name="Create link").click()
        status.filter(has_text="Made a public link to “notes.txt”").wait_for()
        page.keyboard.press("Escape")
        row = page.locator("tr", has=page.get_by_role("link", name="notes.txt", exact=True))
        row.get_by_role("img", name="Has a public link").wait_for()


@needs_chromium
def test_in_a_browser_a_click_that_comes_before_the_pages_script_waits_for_it(drive):
    """On a slow network the page shows its buttons before its script arrives. A click on
    Share then did nothing, and no dialog ever opened; now the buttons take no click until the
    script has run, so the click lands once it has."""
    pytest.importorskip("playwright.sync_api")
    assert drive.dav("alice", "MKCOL", "early").status_code == 201
    assert drive.dav("alice", "MKCOL", "early/plots").status_code == 201

    def late(route):
        time.sleep(2)
        route.continue_()

    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/?dir=early")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        share = page.get_by_role("button", name="Share plots/")
        share.wait_for()
        page.route("**/static/drive.js", late)
        page.reload(wait_until="commit")
        share.click()
        page.get_by_role("dialog").get_by_text("Not shared yet.").wait_for()
        assert page.evaluate("document.body.classList.contains('scripted')")


def test_people_of_other_sites_says_when_the_site_trusts_no_other_site(drive):
    with signed_in(drive, "alice") as (browser, _):
        page = browser.get(f"{drive.base}/people")
        assert page.status_code == 200
        assert "This site trusts no other site" in page.text
        assert "make-invite" not in page.text and "accept-invite" not in page.text
    r = drive.ocs("alice", "POST", "ocm_invites")
    assert r.status_code == 403 and "Federated sharing is off" in r.text, r.text
