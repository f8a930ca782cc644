"""People of other sites, between two real `swan up` sites trusted to each other (the `sites` of
`test_federation`): invites made, listed, withdrawn and accepted (by the invite string, or by
its token and the site's address), contacts removed, through the drive's OCS API and on the
drive's page in Debian's Chromium. The unhappy paths: a wrong, expired or withdrawn token, an
invite of someone else, a contact that is not one; each is a sentence and stores nothing.
"""

from __future__ import annotations

import re

import pytest
from harness.lab_browser import chromium_browser, fill_hub_login, needs_chromium, person
from harness.swan import SWAN_UP_MARKS
from test_drive import signed_in
from test_federation import (
    accept_invite,
    contacts,
    make_folder,
    ocm_post,
    sharees,
    two_sites,
)

from swan_hub.drive.signing import SiteKey

pytestmark = SWAN_UP_MARKS


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    with two_sites(tmp_path_factory) as found:
        yield found


def open_invites(drive, user: str) -> list[dict]:
    r = drive.ocs(user, "GET", "ocm_invites")
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]


def make_invite(drive, user: str) -> dict:
    r = drive.ocs(user, "POST", "ocm_invites")
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]


def accept_by_token(drive, user: str, token: str, provider: str):
    form = {"token": token, "provider": provider}
    return drive.ocs(user, "POST", "ocm_invites/accept", data=form)


def forget_contacts(sites) -> None:
    for drive in (sites.a, sites.b):
        with sites.database(drive) as db:
            db.execute("DELETE FROM ocm_contacts")
            db.execute("DELETE FROM ocm_invites")


def test_open_invites_are_listed_and_a_withdrawn_one_cannot_be_accepted(sites):
    forget_contacts(sites)
    first, second = make_invite(sites.a, "alice"), make_invite(sites.a, "alice")
    listed = open_invites(sites.a, "alice")
    assert {i["token"] for i in listed} == {first["token"], second["token"]}
    assert all(i["provider"] == sites.provider_a for i in listed)
    assert open_invites(sites.a, "carol") == []

    # only its maker withdraws it; "accept" is no token
    for user, token in (("carol", first["token"]), ("alice", "no-such-token")):
        r = sites.a.ocs(user, "DELETE", f"ocm_invites/{token}")
        assert r.status_code == 404 and "no open invite" in r.text, r.text
    assert len(open_invites(sites.a, "alice")) == 2
    r = sites.a.ocs("alice", "DELETE", f"ocm_invites/{first['token']}")
    assert r.status_code == 200, r.text
    assert [i["token"] for i in open_invites(sites.a, "alice")] == [second["token"]]

    r = accept_by_token(sites.b, "bob", first["token"], sites.provider_a)
    assert r.status_code == 400 and "does not exist" in r.text, r.text
    assert contacts(sites.b, "bob") == [] and contacts(sites.a, "alice") == []

    # the open one, by its token and the site's address as a person types it
    r = accept_by_token(sites.b, "bob", f" {second['token']} ", f"{sites.provider_a}/ ")
    assert r.status_code == 200, r.text
    assert contacts(sites.b, "bob") == [f"alice@{sites.provider_a}"]
    assert contacts(sites.a, "alice") == [f"bob@{sites.provider_b}"]
    assert open_invites(sites.a, "alice") == []  # used: no longer open, nor withdrawable
    r = sites.a.ocs("alice", "DELETE", f"ocm_invites/{second['token']}")
    assert r.status_code == 404, r.text


def test_a_removed_contact_is_no_longer_offered_and_only_ones_own_can_be_removed(sites):
    forget_contacts(sites)
    assert accept_invite(sites.b, "bob", make_invite(sites.a, "alice")["invite"]).is_success
    bob = f"bob@{sites.provider_b}"
    assert sharees(sites.a, "alice", "bob") == [bob]
    r = sites.a.ocs("carol", "DELETE", f"ocm_contacts/{bob}")
    assert r.status_code == 404 and "is not one of your contacts" in r.text, r.text
    r = sites.a.ocs("alice", "DELETE", f"ocm_contacts/{bob}")
    assert r.status_code == 200, r.text
    assert contacts(sites.a, "alice") == [] and sharees(sites.a, "alice", "bo") == []
    # the other side keeps its own list
    assert contacts(sites.b, "bob") == [f"alice@{sites.provider_a}"]
    r = sites.a.ocs("alice", "DELETE", f"ocm_contacts/{bob}")
    assert r.status_code == 404, r.text


def test_wrong_expired_or_hostile_tokens_are_sentences_and_store_nothing(sites):
    forget_contacts(sites)
    invite = make_invite(sites.a, "alice")
    with sites.database(sites.a) as db:
        db.execute("UPDATE ocm_invites SET expires = 1 WHERE token = ?", (invite["token"],))
    assert open_invites(sites.a, "alice") == []  # expired: not offered to withdraw either
    cases = (
        (invite["token"], sites.provider_a, 400, "expired"),
        ("not-the-token", sites.provider_a, 400, "does not exist"),
        ("x" * 300, sites.provider_a, 400, "not an invite's token"),
        ("a\ttoken", sites.provider_a, 400, "not an invite's token"),
        ("", sites.provider_a, 400, "Give the invite's token"),
        (invite["token"], "", 400, "Give the invite's token"),
        (invite["token"], "evil.example", 403, "not a trusted provider"),
        (invite["token"], sites.dead, 503, "could not be accepted"),
    )
    for token, provider, status, said in cases:
        r = accept_by_token(sites.b, "bob", token, provider)
        assert r.status_code == status and said in r.text, (token[:20], provider, r.text)
        assert "Traceback" not in r.text
    assert contacts(sites.b, "bob") == [] and contacts(sites.a, "alice") == []


def test_the_page_shows_hostile_names_as_text_and_its_changes_need_the_request_token(sites):
    forget_contacts(sites)
    hostile = "<img src=x onerror=alert(1)>'\""
    token = make_invite(sites.a, "alice")["token"]
    key_b = SiteKey(str(sites.b.swan.data / "drive" / "ocm-signing-key.pem"), sites.provider_b)
    document = {"recipientProvider": sites.provider_b, "token": token, "userID": "bob",
                "email": "", "name": hostile}  # fmt: skip
    assert ocm_post(sites.a, "invite-accepted", key=key_b, json=document).status_code == 200
    ocs = f"{sites.a.base}/ocs/v2.php/apps/files_sharing/api/v1"
    with signed_in(sites.a, "alice") as (browser, first):
        page = browser.get(f"{sites.a.base}/people")
        assert page.status_code == 200
        assert "<img" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        request_token = re.search(r"data-requesttoken='([^']*)'", first.text)[1]
        json = {"format": "json"}
        # the session alone changes nothing: another site's page cannot make or remove
        remove = f"/ocm_contacts/bob@{sites.provider_b}"
        for method, path in (("POST", "/ocm_invites"), ("DELETE", remove)):
            assert browser.request(method, ocs + path, params=json).status_code == 403
        assert len(contacts(sites.a, "alice")) == 1 and open_invites(sites.a, "alice") == []
        headers = {"requesttoken": request_token, "OCS-APIRequest": "true"}
        r = browser.post(ocs + "/ocm_invites", params=json, headers=headers)
        assert r.status_code == 200, r.text


@needs_chromium
def test_in_a_browser_alice_invites_bob_of_the_other_site_and_then_shares_with_him(sites):
    pytest.importorskip("playwright.sync_api")
    forget_contacts(sites)
    make_folder(sites.a, "alice", "invited", {"a.txt": b"1"})
    bob_address = f"bob@{sites.provider_b}"
    with chromium_browser() as browser:
        alice = person(browser, permissions=("clipboard-read", "clipboard-write"))
        alice.goto(f"{sites.a.base}/people")
        fill_hub_login(alice, "alice", sites.a.swan.passwords()["alice"])
        alice.get_by_role("heading", name="People of other sites").wait_for()
        alice.get_by_text("No contacts yet").wait_for()
        alice.get_by_role("button", name="Make an invite").click()
        status = alice.get_by_role("status")
        status.filter(has_text="Made an invite").wait_for()
        token = alice.locator("#new-invite .token").inner_text()
        site = alice.locator("#new-invite .site").inner_text()
        assert site == sites.provider_a and len(token) >= 32
        assert "Valid for 7 days" in alice.locator("#new-invite .valid").inner_text()
        alice.get_by_role("button", name="Withdraw the invite " + token).wait_for()
        alice.get_by_role("button", name="Copy").click()
        status.filter(has_text="Copied the invite's link, token and site").wait_for()
        copied = alice.evaluate("navigator.clipboard.readText()")
        link = alice.locator("#new-invite .link").inner_text()
        assert link == f"{sites.a.base}/ocm/wayf?token={token}"
        assert token in copied and site in copied and link in copied

        bob = person(browser)
        bob.goto(f"{sites.b.base}/people")
        fill_hub_login(bob, "bob", sites.b.swan.passwords()["bob"])
        told = bob.get_by_role("status")
        # a wrong token first: a sentence, nothing stored
        bob.get_by_label("Token").fill("not-" + token)
        bob.get_by_label("Their site").fill(site)
        bob.get_by_role("button", name="Accept the invite").click()
        told.filter(has_text="This invite does not exist").wait_for()
        assert contacts(sites.b, "bob") == [] and contacts(sites.a, "alice") == []
        bob.get_by_label("Token").fill(token)
        bob.get_by_role("button", name="Accept the invite").click()
        told.filter(has_text=f"alice@{sites.provider_a} is now one of your contacts").wait_for()
        bob.get_by_role("cell", name=f"alice@{sites.provider_a}", exact=True).wait_for()

        alice.reload()
        alice.get_by_role("cell", name=bob_address, exact=True).wait_for()
        assert alice.get_by_text("No open invites.").is_visible()

        # alice's share dialog offers bob of the other site when she types "bob"
        alice.goto(f"{sites.a.base}/")
        alice.get_by_role("button", name="Share invited/").click()
        dialog = alice.get_by_role("dialog")
        dialog.get_by_label("User or group").press_sequentially("bob", delay=30)
        offered = dialog.locator(f"#sharees option[value='{bob_address}']")
        offered.wait_for(state="attached")
        assert offered.evaluate("option => option.label") == "another site"

        # withdrawn invites and removed contacts, in the page
        alice.goto(f"{sites.a.base}/people")
        alice.get_by_role("button", name="Make an invite").click()
        status.filter(has_text="Made an invite").wait_for()
        second = alice.locator("#new-invite .token").inner_text()
        alice.get_by_role("button", name="Withdraw the invite " + second).click()
        status.filter(has_text="Withdrew the invite").wait_for()
        assert alice.get_by_text("No open invites.").is_visible()
        assert alice.locator("#new-invite").is_hidden()
        bob.get_by_label("Token").fill(second)
        bob.get_by_label("Their site").fill(site)
        bob.get_by_role("button", name="Accept the invite").click()
        told.filter(has_text="does not exist (mistyped, or withdrawn)").wait_for()
        alice.get_by_role("button", name=f"Remove {bob_address} from your contacts").click()
        status.filter(has_text=f"{bob_address} is no longer one of your contacts").wait_for()
        alice.get_by_text("No contacts yet").wait_for()
        assert contacts(sites.a, "alice") == []
        assert contacts(sites.b, "bob") == [f"alice@{sites.provider_a}"]
