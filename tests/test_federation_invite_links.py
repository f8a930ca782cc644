"""Invites a person follows by clicking, between two real `swan up` sites trusted to each other
(the `sites` of `test_federation`): the discovery's `inviteAcceptDialog`, the invite link to
site A's WAYF page ("where are you from?"), which sends the browser to site B's accept page, and
that page's Accept form. The unhappy paths: a site outside the mesh (no redirect), a site that
is down or names no accept page (the token and site to type), a hostile dialog URL, a used,
withdrawn or wrong token, a GET that never accepts, a form without the request token.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import httpx
import pytest
from harness.lab_browser import chromium_browser, fill_hub_login, needs_chromium, open_lab, person
from harness.swan import SWAN_UP_MARKS, log_in, start_server, start_swan, user_api
from test_accessibility import failing_violations
from test_drive import signed_in
from test_federation import contacts, two_sites
from test_federation_people import forget_contacts, make_invite, open_invites

from swan_share_ext.sharing.backend import SharingUnavailable
from swan_share_ext.sharing.ocs import OCSShareBackend

pytestmark = SWAN_UP_MARKS


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    with two_sites(tmp_path_factory) as found:
        yield found


def wayf(sites, token: str | None, site: str | None = None) -> httpx.Response:
    """Site A's WAYF page as an anonymous browser asks for it (redirects not followed)."""
    query = {k: v for k, v in (("token", token), ("site", site)) if v is not None}
    return httpx.get(f"{sites.a.base}/ocm/wayf", params=query, timeout=60)


def said(page: httpx.Response) -> str:
    """The page's words as a person reads them."""
    return html.unescape(page.text)


def request_token(page: httpx.Response) -> str:
    return re.search(r"data-requesttoken='([^']*)'", page.text)[1]


def has_accept_button(page: httpx.Response) -> bool:
    return "<form method='post'" in page.text and "<button>Accept</button>" in page.text


@contextmanager
def peer_standin(port: int, discovery: dict) -> Iterator[None]:
    """An OCM server of the mesh on ``port`` (the peer that is otherwise down) whose discovery
    is ``discovery``: an older server, or a hostile one."""
    body = json.dumps(discovery).encode()

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_the_discovery_names_the_accept_page_and_an_invite_answers_its_link(sites):
    found = httpx.get(f"{sites.b.swan.url}/.well-known/ocm", timeout=30).json()
    assert found["inviteAcceptDialog"] == f"{sites.b.base}/ocm/accept-invite"
    assert "invite-wayf" in found["capabilities"]
    invite = make_invite(sites.a, "alice")
    assert invite["link"] == f"{sites.a.base}/ocm/wayf?{urlencode({'token': invite['token']})}"
    listed = sites.a.ocs("alice", "GET", "ocm_invites").json()["ocs"]["data"]
    assert [i["link"] for i in listed if i["token"] == invite["token"]] == [invite["link"]]


def test_the_wayf_page_lists_the_mesh_and_sends_the_browser_to_the_chosen_sites_accept_page(
    sites,
):
    forget_contacts(sites)
    token = make_invite(sites.a, "alice")["token"]
    page = httpx.get(make_invite(sites.a, "alice")["link"], timeout=60)  # no login: public
    assert page.status_code == 200, page.text
    assert "Where are you from?" in page.text and "alice of " + sites.provider_a in page.text
    buttons = re.findall(r"<button name='site' value='([^']*)'>", page.text)
    assert sorted(buttons) == sorted([sites.provider_b, sites.dead])  # not site A itself
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text) and " style=" not in page.text

    # through the proxy too, as swan up routes the drive
    chosen = wayf(sites, token, sites.provider_b)
    assert chosen.status_code == 303, chosen.text
    query = urlencode({"token": token, "providerDomain": sites.provider_a})
    assert chosen.headers["location"] == f"{sites.b.base}/ocm/accept-invite?{query}"
    assert contacts(sites.a, "alice") == [] and contacts(sites.b, "bob") == []


def test_the_wayf_page_redirects_only_to_sites_of_the_mesh(sites):
    token = make_invite(sites.a, "alice")["token"]
    for site in (
        "evil.example",
        f"{sites.provider_b}.evil.example",
        f"evil.example/{sites.provider_b}",
        sites.provider_a,  # this site itself
        "https://evil.example",
        "//evil.example",
    ):
        r = wayf(sites, token, site)
        assert r.status_code == 400 and "is not a site of this mesh" in said(r), (site, r.text)
        assert "location" not in r.headers
        assert sites.provider_b in said(r)  # the list again, to pick from


def test_the_wayf_page_refuses_missing_malformed_and_closed_tokens(sites):
    withdrawn = make_invite(sites.a, "alice")["token"]
    assert sites.a.ocs("alice", "DELETE", f"ocm_invites/{withdrawn}").status_code == 200
    cases = (
        (None, 400, "holds no invite"),
        ("", 400, "holds no invite"),
        ("a\ttoken", 400, "not an invite's token"),
        ("x" * 300, 400, "not an invite's token"),
        ("no-such-token", 404, "not open any more"),
        (withdrawn, 404, "not open any more"),
    )
    for token, status, words in cases:
        r = wayf(sites, token, sites.provider_b)
        assert r.status_code == status and words in said(r), (token, r.text)
        assert "location" not in r.headers and "<button name='site'" not in said(r)


def test_a_site_that_is_down_or_names_no_accept_page_gets_the_token_and_site_to_type(sites):
    token = make_invite(sites.a, "alice")["token"]
    r = wayf(sites, token, sites.dead)
    assert r.status_code == 503 and "cannot be reached right now" in said(r), r.text
    assert "location" not in r.headers
    assert f"<code class='token'>{token}</code>" in said(r)
    assert f"<code class='site'>{sites.provider_a}</code>" in said(r)

    port = int(sites.dead.rsplit(":", 1)[1])
    older = {"enabled": True, "apiVersion": "1.1.0", "endPoint": f"http://{sites.dead}/ocm",
             "resourceTypes": []}  # fmt: skip
    with peer_standin(port, older):
        r = wayf(sites, token, sites.dead)
    assert r.status_code == 200 and "has no page that takes an invite link" in said(r), r.text
    assert "location" not in r.headers and f"<code class='token'>{token}</code>" in said(r)


def test_a_dialog_named_off_the_mesh_is_never_a_target(sites):
    """A site of the mesh that names its accept page on another host sends nobody there."""
    from swan_hub.drive.mesh import Mesh

    mesh = Mesh(["http://127.0.0.1:8001"], public_url="http://127.0.0.1:8000/services/drive")
    peer = mesh.trusted("127.0.0.1:8001")
    site = "http://127.0.0.1:8001"
    named = {
        "http://evil.example/accept": "",
        "//evil.example/accept": "",
        "javascript:alert(1)": "",
        "https://127.0.0.1:8001/accept": "",  # another scheme than the site's
        "http://127.0.0.1:8000/accept": "",  # this site, not the peer's
        "/apps/sciencemesh/accept": f"{site}/apps/sciencemesh/accept",  # the spec's path form
        f"{site}/ocm/accept-invite#x": f"{site}/ocm/accept-invite",
        7: "",
    }
    for dialog, expected in named.items():
        assert mesh._invite_dialog(peer, {"inviteAcceptDialog": dialog}) == expected, dialog


def test_the_accept_page_accepts_only_a_posted_form_with_the_request_token(sites):
    forget_contacts(sites)
    token = make_invite(sites.a, "alice")["token"]
    page_url = f"{sites.b.base}/ocm/accept-invite"
    query = {"token": token, "providerDomain": sites.provider_a}
    # not signed in: a GET logs in first, a POST is refused
    r = httpx.get(page_url, params=query, timeout=60)
    assert r.status_code == 302 and "/hub/" in r.headers["location"]
    r = httpx.post(page_url, data=query, timeout=60)
    assert r.status_code == 403 and "Log in first" in said(r)
    with signed_in(sites.b, "bob") as (browser, _):
        for _ in range(2):
            page = browser.get(page_url, params=query)
            assert page.status_code == 200 and has_accept_button(page), page.text
            assert sites.provider_a in page.text
        assert contacts(sites.b, "bob") == [] and contacts(sites.a, "alice") == []  # GET: none
        for form in (query, {**query, "requesttoken": "not-the-token"}):
            r = browser.post(page_url, data=form)
            assert r.status_code == 403 and "came from another page" in said(r), r.text
        assert contacts(sites.b, "bob") == [] and contacts(sites.a, "alice") == []

        form = {**query, "requesttoken": request_token(page)}
        r = browser.post(page_url, data=form)
        assert r.status_code == 200, r.text
        assert f"<b>alice@{sites.provider_a}</b> is now one of your contacts" in said(r)
        assert "<a href='/services/drive/people'>People of other sites</a>" in r.text
        assert contacts(sites.b, "bob") == [f"alice@{sites.provider_a}"]
        assert contacts(sites.a, "alice") == [f"bob@{sites.provider_b}"]

        # the same form again: the other site's sentence, nothing more stored
        r = browser.post(page_url, data=form)
        assert r.status_code == 409 and "accepted already" in said(r), r.text
        assert contacts(sites.b, "bob") == [f"alice@{sites.provider_a}"]


def test_the_accept_page_says_why_for_wrong_tokens_and_sites_and_stores_nothing(sites):
    forget_contacts(sites)
    withdrawn = make_invite(sites.a, "alice")["token"]
    assert sites.a.ocs("alice", "DELETE", f"ocm_invites/{withdrawn}").status_code == 200
    page_url = f"{sites.b.base}/ocm/accept-invite"
    with signed_in(sites.b, "bob") as (browser, first):
        requesttoken = request_token(first)
        shown = (
            ({"token": "t0ken", "providerDomain": "evil.example"}, 403, "not a trusted provider"),
            ({"providerDomain": sites.provider_a}, 400, "Give the invite's token"),
            ({"token": "a\ttoken", "providerDomain": sites.provider_a}, 400, "not an invite's"),
            ({"token": "t0ken"}, 400, "Give the invite's token"),
        )
        for query, status, words in shown:
            for method in ("GET", "POST"):
                if method == "GET":
                    r = browser.get(page_url, params=query)
                else:
                    r = browser.post(page_url, data={**query, "requesttoken": requesttoken})
                assert r.status_code == status and words in said(r), (method, query, r.text)
                assert not has_accept_button(r) and "Nothing was stored." in said(r)
        # a token the other site refuses: its own sentence
        refused = (
            (withdrawn, 400, "does not exist"),
            ("never-made-token", 400, "does not exist"),
        )
        for token, status, words in refused:
            form = {"token": token, "providerDomain": sites.provider_a}
            assert has_accept_button(browser.get(page_url, params=form))
            r = browser.post(page_url, data={**form, "requesttoken": requesttoken})
            assert r.status_code == status and words in said(r), (token, r.text)
            assert "Traceback" not in said(r)
        form = {"token": "t0ken", "providerDomain": sites.dead, "requesttoken": requesttoken}
        r = browser.post(page_url, data=form)
        assert r.status_code == 503 and "could not be accepted" in said(r), r.text
    assert contacts(sites.b, "bob") == [] and contacts(sites.a, "alice") == []


# -- JupyterLab and the whole way in a browser ----------------------------------------------------


NO_NEWS = {"raw": json.dumps({"fetchNews": "false"})}


def palette_offers(page, typed: str, label: str) -> bool:
    """Whether JupyterLab's command palette offers the command ``label`` for ``typed``. The
    palette closes when it loses the focus, which a page still settling may take: it is opened
    again until it stays."""
    from playwright.sync_api import TimeoutError as NotShown

    palette = page.locator("#command-palette")
    for _ in range(5):
        page.locator("#jp-main-dock-panel").click()
        page.keyboard.press("Control+Shift+C")
        try:
            palette.locator("input").fill(typed, timeout=3000)
            palette.locator(".lm-CommandPalette-item", has_text=label).wait_for(timeout=3000)
        except NotShown:
            continue  # closed again, or not filtered yet: open it anew
        page.keyboard.press("Escape")
        return True
    return False


@needs_chromium
def test_alice_invites_in_jupyterlab_and_bob_follows_the_link_to_his_site_and_accepts(sites):
    pytest.importorskip("playwright.sync_api")
    forget_contacts(sites)
    log_in(sites.a.swan, "alice")
    start_server(sites.a.swan, "alice")
    settings = "alice/lab/api/settings/@jupyterlab/apputils-extension:notification"
    assert user_api(sites.a.swan, "alice", "PUT", settings, json=NO_NEWS).status_code == 204
    info = user_api(sites.a.swan, "alice", "GET", "alice/swan/api/info").json()
    assert info["invites"] is True
    with chromium_browser() as browser:
        alice = open_lab(browser, sites.a.swan, "alice")
        alice.locator('.lm-TabBar-tab[data-id="swan-shared-with-me"]').click()
        panel = alice.locator(".swan-SharedWithMe")
        panel.get_by_role("button", name="Invite someone of another site…").click()
        dialog = alice.get_by_role("dialog")
        link = dialog.get_by_label("Link", exact=True).input_value()
        token = dialog.get_by_label("Token", exact=True).input_value()
        assert dialog.get_by_label("Your site", exact=True).input_value() == sites.provider_a
        assert link == f"{sites.a.base}/ocm/wayf?token={token}"
        assert "Valid for 7 days" in dialog.locator(".swan-Invite-valid").inner_text()
        dialog.get_by_role("button", name="Copy", exact=True).first.click()  # the link's
        dialog.get_by_text("Link copied to the clipboard.").wait_for()
        dialog.get_by_role("button", name="Done").click()
        assert [i["token"] for i in open_invites(sites.a, "alice")] == [token]
        # the browser's session alone makes none: another site's page cannot
        status = alice.evaluate(
            "fetch('/user/alice/swan/api/invites', {method: 'POST', credentials: 'include'})"
            ".then(r => r.status)"
        )
        assert status == 403 and len(open_invites(sites.a, "alice")) == 1
        # the command palette offers it too
        assert palette_offers(alice, "Invite someone", "Invite someone of another site…")

        bob = person(browser)
        bob.goto(link)
        bob.get_by_role("heading", name="Where are you from?").wait_for()
        bob.get_by_text(f"alice of {sites.provider_a} invites you").wait_for()
        assert failing_violations(bob) == []
        bob.get_by_role("button", name=sites.provider_b, exact=True).click()
        fill_hub_login(bob, "bob", sites.b.swan.passwords()["bob"])
        bob.get_by_role("heading", name="Accept an invite").wait_for()
        assert bob.url.startswith(f"{sites.b.base}/ocm/accept-invite?")
        bob.get_by_text(f"A person of {sites.provider_a}").wait_for()
        assert contacts(sites.b, "bob") == []  # seeing the page accepts nothing
        assert failing_violations(bob) == []
        bob.get_by_role("button", name="Accept", exact=True).click()
        bob.get_by_text(f"alice@{sites.provider_a} is now one of your contacts").wait_for()
        bob.get_by_role("link", name="People of other sites").last.click()
        bob.get_by_role("cell", name=f"alice@{sites.provider_a}", exact=True).wait_for()
        assert bob.errors == [] and alice.errors == []
    assert contacts(sites.b, "bob") == [f"alice@{sites.provider_a}"]
    assert contacts(sites.a, "alice") == [f"bob@{sites.provider_b}"]
    assert open_invites(sites.a, "alice") == []


def test_a_site_that_trusts_nobody_offers_no_invite_and_says_why_when_asked(tmp_path_factory):
    lonely = start_swan(tmp_path_factory.mktemp("lonely"), users="alice")
    try:
        log_in(lonely, "alice")
        start_server(lonely, "alice")
        info = user_api(lonely, "alice", "GET", "alice/swan/api/info").json()
        assert info["invites"] is False
        r = user_api(lonely, "alice", "POST", "alice/swan/api/invites")
        assert r.status_code == 403, r.text
        assert "this site trusts no other site" in r.json()["message"]
        found = httpx.get(f"{lonely.url}/.well-known/ocm", timeout=30).json()
        assert "inviteAcceptDialog" not in found and "invite-wayf" not in found["capabilities"]
        r = httpx.get(f"{lonely.url}/services/drive/ocm/wayf", params={"token": "t"}, timeout=30)
        assert r.status_code == 404 and "trusts no other site" in said(r)
    finally:
        lonely.kill_everything()


def test_a_storage_that_cannot_be_reached_makes_no_invite():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call
    backend = OCSShareBackend(url=f"http://127.0.0.1:{port}/", dialect="owncloud")

    async def invite() -> None:
        try:
            await backend.create_invite()
        finally:
            await backend.close()

    with pytest.raises(SharingUnavailable, match="cannot be reached"):
        asyncio.run(invite())
