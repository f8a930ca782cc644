"""Shares changed in place, through `swan up` (real hub, proxy and drive on 127.0.0.1): the OCS
API checks a whole change of a link (password, expiry, what visitors may do) before it writes
any of it and refuses in words; nobody but a link's owner changes it; a user with many links
pages through them newest first. In Debian's Chromium, alice changes a link's password (a
visitor in a fresh browser then needs the new one), its expiry (one in the past refused in a
sentence, the link unchanged), clears its password, makes it a file drop, changes it from the
share dialog, and makes bob an editor from Shared by me.
"""

from __future__ import annotations

import re

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
from test_drive_shares_page import rows

pytestmark = SWAN_UP_MARKS


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with running_drive(tmp_path_factory.mktemp("share-edits"), users="alice,bob,carol") as drive:
        yield drive


def share_of(drive, user: str, share_id: str) -> dict:
    found = drive.ocs(user, "GET", f"shares/{share_id}")
    assert found.status_code == 200, found.text
    return found.json()["ocs"]["data"][0]


def change(drive, user: str, share_id: str, **form: str | int) -> httpx.Response:
    return drive.ocs(user, "PUT", f"shares/{share_id}", data=form)


def message(reply: httpx.Response) -> str:
    return reply.json()["ocs"]["meta"]["message"]


def opens(drive, token: str, password: str) -> bool:
    """Whether a program opens the link with ``password`` (Basic auth, the token as user)."""
    reply = httpx.request(
        "PROPFIND",
        f"{drive.base}/public.php/webdav/",
        headers={"Depth": "0"},
        auth=(token, password),
        timeout=30,
    )
    assert reply.status_code in (207, 401), reply.text
    return reply.status_code == 207


def test_a_link_change_is_checked_whole_and_a_refused_one_changes_nothing(drive):
    assert drive.dav("alice", "MKCOL", "checked").status_code == 201
    assert drive.dav("alice", "PUT", "checked/a.txt", content=b"a").is_success
    link = ocs_share(
        drive, "alice", path="checked", shareType=3, password="old-pass", expireDate="2099-01-01"
    )
    before = share_of(drive, "alice", link["id"])

    past = change(drive, "alice", link["id"], password="new-pass", expireDate="2000-01-01")
    assert past.status_code == 400 and message(past) == "Expiration date is in the past"
    long = change(drive, "alice", link["id"], password="x" * 257, permissions=15)
    assert long.status_code == 400
    assert message(long) == "A link password may have at most 256 characters; choose a shorter one"
    bad = change(drive, "alice", link["id"], expireDate="soon", password="new-pass")
    assert bad.status_code == 400 and "use YYYY-MM-DD" in message(bad)
    assert share_of(drive, "alice", link["id"]) == before
    assert opens(drive, link["token"], "old-pass") and not opens(drive, link["token"], "new-pass")

    # one request changes several things at once; then the password and the expiry are cleared
    changed = change(
        drive, "alice", link["id"], password="new-pass", expireDate="2099-02-03", permissions=4
    ).json()["ocs"]["data"]
    assert changed["expiration"].startswith("2099-02-03") and changed["permissions"] == 4
    assert changed["share_with"] == "***redacted***" and "new-pass" not in str(changed)
    assert opens(drive, link["token"], "new-pass") and not opens(drive, link["token"], "old-pass")
    cleared = change(drive, "alice", link["id"], password="", expireDate="").json()["ocs"]["data"]
    assert cleared["share_with"] is None and cleared["expiration"] is None
    assert opens(drive, link["token"], "")
    # still a file drop: its page shows none of its files, and nothing in it is served
    for shown in ("", "?path=a.txt"):
        page = httpx.get(link["url"] + shown, timeout=30)
        assert page.status_code == 200 and "as a file drop" in page.text
        assert "a.txt" not in page.text.replace(shown, "")
    for sub in ("download", "raw?path=a.txt", "render?path=a.txt"):
        assert httpx.get(f"{link['url']}/{sub}", timeout=30).status_code == 404, sub

    # a file's link can be made editable, never a folder's upload rights
    file_link = ocs_share(drive, "alice", path="checked/a.txt", shareType=3)
    upload = change(drive, "alice", file_link["id"], publicUpload="true")
    assert upload.json()["ocs"]["data"]["permissions"] == 3
    # a share with a person must let them read, as when it is made
    to_bob = ocs_share(drive, "alice", path="checked", shareType=0, shareWith="bob", permissions=1)
    blind = change(drive, "alice", to_bob["id"], permissions=4)
    assert blind.status_code == 400 and message(blind) == "A share must at least allow reading"
    assert share_of(drive, "alice", to_bob["id"])["permissions"] == 1


def test_nobody_but_its_owner_changes_a_link_or_a_share(drive):
    assert drive.dav("alice", "MKCOL", "mine").status_code == 201
    link = ocs_share(drive, "alice", path="mine", shareType=3, password="alices")
    to_bob = ocs_share(drive, "alice", path="mine", shareType=0, shareWith="bob", permissions=1)
    assert drive.ocs("bob", "POST", f"shares/pending/{to_bob['id']}").status_code == 200
    before = share_of(drive, "alice", link["id"])
    for user in ("bob", "carol"):
        taken = change(
            drive, user, link["id"], password="", expireDate="2099-01-01", permissions=15
        )
        assert taken.status_code == 404, taken.text
    # bob receives the share: he may leave it, not change it
    raised = change(drive, "bob", to_bob["id"], permissions=15)
    assert raised.status_code == 403
    assert message(raised) == "Only the owner of a share can change it"
    assert share_of(drive, "alice", link["id"]) == before
    assert share_of(drive, "alice", to_bob["id"])["permissions"] == 1
    assert opens(drive, link["token"], "alices") and not opens(drive, link["token"], "")


def pager_text(page: httpx.Response) -> str:
    found = re.search(r"<nav class='pages'>.*?<span>([^<]*)</span>", page.text, re.S)
    return found[1] if found else ""


def test_a_user_with_120_links_pages_through_them_newest_first(drive):
    assert drive.dav("carol", "PUT", "flyer.txt", content=b"f").is_success
    urls = [ocs_share(drive, "carol", path="flyer.txt", shareType=3)["url"] for _ in range(120)]
    newest_first = urls[::-1]
    with signed_in(drive, "carol") as (browser, _):
        first = browser.get(f"{drive.base}/links")
        assert [row[1] for row in rows(first)] == newest_first[:50]
        assert pager_text(first) == "1-50 of 120 (page 1 of 3)"
        assert "<a rel='next' href='?page=2'>Next</a> <a href='?page=3'>Last</a>" in first.text
        last = browser.get(f"{drive.base}/links", params={"page": "3"})
        assert [row[1] for row in rows(last)] == newest_first[100:]
        assert pager_text(last) == "101-120 of 120 (page 3 of 3)"
        assert "<a href='?page=1'>First</a> <a rel='prev' href='?page=2'>Previous</a>" in last.text
        # past the end: the last page; not a page number: a sentence
        beyond = browser.get(f"{drive.base}/links", params={"page": "9"})
        assert pager_text(beyond) == pager_text(last)
        wrong = browser.get(f"{drive.base}/links", params={"page": "two"})
        assert wrong.status_code == 400
        assert "The page number must be a whole number from 1 up." in wrong.text
        # a view with few entries shows no pager
        assert pager_text(browser.get(f"{drive.base}/shared-by-me")) == ""


def test_shares_given_and_received_page_the_same_way(drive):
    names = [f"hand-out {n:02}.txt" for n in range(51)]
    for name in names:
        assert drive.dav("carol", "PUT", name, content=b"h").is_success
        ocs_share(drive, "carol", path=name, shareType=0, shareWith="bob", permissions=1)
    with signed_in(drive, "carol") as (browser, _):
        first = browser.get(f"{drive.base}/shared-by-me")
        assert [row[0] for row in rows(first)] == names[::-1][:50]
        assert pager_text(first) == "1-50 of 51 (page 1 of 2)"
        last = browser.get(f"{drive.base}/shared-by-me", params={"page": "2"})
        assert [row[0] for row in rows(last)] == [names[0]]
    with signed_in(drive, "bob") as (browser, _):
        # bob may have received a few from alice before: carol's are in the same order
        pages = [browser.get(f"{drive.base}/shared-with-me", params={"page": n}) for n in (1, 2)]
        assert pager_text(pages[1]).endswith("(page 2 of 2)")
        from_carol = [row for page in pages for row in rows(page) if row[1] == "carol"]
        assert [row[0] for row in from_carol] == names[::-1]
        assert from_carol[-1][2:4] == ["view only", "pending"]


# -- in a browser -----------------------------------------------------------------------------


def visitor_sees(browser, url: str, password: str | None) -> str:
    """What an anonymous visitor in a fresh browser sees of the link: its page's text after the
    password (if one is asked for and given)."""
    page = person(browser)
    try:
        page.goto(url)
        if password is not None:
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Open").click()
        page.locator("main").wait_for()
        return page.locator("main").inner_text()
    finally:
        page.context.close()


@needs_chromium
def test_in_a_browser_alice_changes_a_link_and_a_share_in_place(drive, tmp_path):
    pytest.importorskip("playwright.sync_api")
    assert drive.dav("alice", "MKCOL", "trip").status_code == 201
    assert drive.dav("alice", "PUT", "trip/photos.txt", content=b"p").is_success
    link = ocs_share(drive, "alice", path="trip", shareType=3, password="old-pass")
    to_bob = ocs_share(drive, "alice", path="trip", shareType=0, shareWith="bob", permissions=1)

    def links_row() -> list[str]:
        """The cells of the link's row in the Links view as it shows now."""
        row = page.locator("tr", has=page.get_by_role("link", name=url, exact=True))
        return [cell.strip() for cell in row.locator("td").all_inner_texts()]

    url = link["url"]
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/links")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        page.wait_for_url("**/services/drive/links")
        status = page.get_by_role("status")
        dialog = page.get_by_role("dialog")
        alert = dialog.get_by_role("alert")

        # a new password: the old one no longer opens the link, the new one does
        page.get_by_role("button", name="Edit the link of trip/").click()
        dialog.get_by_role("heading", name="Edit the link of “trip/”").wait_for()
        assert "old-pass" not in dialog.inner_text()
        dialog.get_by_label("New password").fill("new-pass")
        dialog.get_by_role("button", name="Save").click()
        status.filter(
            has_text="Changed the link of “trip/” (password, no expiry, view only)."
        ).wait_for()
        assert "That password is not right." in visitor_sees(browser, url, "old-pass")
        assert "photos.txt" in visitor_sees(browser, url, "new-pass")

        # an expiry in the past: refused in a sentence, the dialog keeps what was typed
        page.get_by_role("button", name="Edit the link of trip/").click()
        dialog.get_by_label("Expires on").fill("2000-01-01")
        dialog.get_by_role("button", name="Save").click()
        alert.filter(has_text="Expiration date is in the past. Nothing was changed.").wait_for()
        assert dialog.get_by_label("Expires on").input_value() == "2000-01-01"
        page.screenshot(path=str(screenshot_dir(tmp_path) / "drive-link-editor.png"))
        assert share_of(drive, "alice", link["id"])["expiration"] is None
        dialog.get_by_label("Expires on").fill("2099-05-06")
        dialog.get_by_role("button", name="Save").click()
        status.filter(has_text="(password, expires 2099-05-06, view only).").wait_for()
        assert links_row()[2:5] == ["yes", "2099-05-06", "view only"]

        # no password any more, and a file drop
        page.get_by_role("button", name="Edit the link of trip/").click()
        assert dialog.get_by_label("Expires on").input_value() == "2099-05-06"
        dialog.get_by_label("Remove the password").check()
        assert dialog.get_by_label("New password").is_disabled()
        dialog.get_by_label("Visitors may").select_option(label="only upload (a file drop)")
        dialog.get_by_role("button", name="Save").click()
        status.filter(has_text="(no password, expires 2099-05-06, upload only).").wait_for()
        assert links_row()[2:5] == ["no", "2099-05-06", "upload only"]
        assert share_of(drive, "alice", link["id"])["permissions"] == 4
        assert "photos.txt" not in visitor_sees(browser, url, None)

        # Shared by me: bob made an editor in place
        page.get_by_role("link", name="Shared by me", exact=True).click()
        page.get_by_label("Permission of trip/ for bob").select_option(label="can edit")
        status.filter(has_text="“trip/” is now editable for bob.").wait_for()
        assert share_of(drive, "alice", to_bob["id"])["permissions"] == 15
        assert page.get_by_label("Permission of trip/ for bob").input_value() == "edit"

        # the share dialog's Edit: the same editor, its list then as the link is
        page.get_by_role("link", name="Files", exact=True).click()
        page.get_by_role("button", name="Share trip/").click()
        share_dialog = page.get_by_role("dialog")
        share_dialog.get_by_role("button", name="Edit the public link").click()
        editor = page.locator("#link-dialog")
        editor.get_by_label("Expires on").fill("")
        editor.get_by_label("Visitors may").select_option(label="edit")
        editor.get_by_role("button", name="Save").click()
        status.filter(has_text="(no password, no expiry, can edit).").wait_for()
        share_dialog.get_by_text("(no password, no expiry, can edit)").wait_for()
        assert share_of(drive, "alice", link["id"])["permissions"] == 15
