"""OCM's `webapp` protocol between two real `swan up` sites (as tests/test_federation.py runs them):
a share sent to another site carries a view-only page at the sender's site, besides its WebDAV
secret; the page shows the shared notebook rendered and the shared folder's listing, nothing
outside it, and ends with the share. The recipient's site keeps only a page on the sender's own
host, lists it in Shared with me, and opens `owner=alice@<site A>` links through the share.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import http.server
import json
import os
import re
import threading
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from harness.lab_browser import chromium_browser, needs_chromium, person
from test_accessibility import failing_violations
from test_drive import signed_in
from test_federation import (
    Sites,
    lab,
    make_folder,
    notebook,
    ocm_post,
    pending_at_b,
    received_in_lab,
    secret_of,
    share_folder,
    two_sites,
)

from swan_hub.drive.ocm import RELATIVE_PATH

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    with two_sites(tmp_path_factory) as found:
        yield found


@pytest.fixture(scope="module")
def lab_b(sites):
    """bob's JupyterLab server at site B, through B's proxy."""
    from harness.swan import log_in, start_server

    log_in(sites.b.swan, "bob")
    start_server(sites.b.swan, "bob")
    return sites.b.swan


def webapp_row(sites: Sites, name: str) -> str | None:
    with sites.database(sites.b) as db:
        row = db.execute("SELECT webapp_uri FROM received_shares WHERE name = ?", (name,))
        return row.fetchone()[0]


def shared_with_view(sites: Sites, folder: str, files: dict[str, bytes]) -> tuple[dict, dict]:
    """alice at A shares ``folder`` (made with ``files``) with bob at B, read only: (A's share,
    B's pending remote share)."""
    make_folder(sites.a, "alice", folder, files)
    r = share_folder(sites, folder, f"bob@{sites.provider_b}", 1)
    assert r.status_code == 200, r.text
    [pending] = [s for s in pending_at_b(sites) if s["name"] == f"/{folder}"]
    return r.json()["ocs"]["data"], pending


def get(url: str, **kw) -> httpx.Response:
    return httpx.get(url, timeout=30, follow_redirects=False, **kw)


def test_discovery_lists_the_webapp_protocol_for_files_and_folders(sites):
    found = httpx.get(f"{sites.a.swan.url}/.well-known/ocm", timeout=30).json()
    for kind in found["resourceTypes"]:
        assert kind["protocols"]["webapp"] == "/services/drive/ocm/app/"
        assert kind["protocols"]["webdav"] == "/services/drive/public.php/webdav/"


def test_a_sent_share_carries_a_view_only_page_that_shows_the_folder_and_the_notebook(sites):
    files = {"nb.ipynb": notebook("print('seen at site A')"), "notes.txt": b"plain words"}
    sent, pending = shared_with_view(sites, "viewed", files)
    assert sites.a.dav("alice", "MKCOL", "viewed/sub").status_code == 201
    assert sites.a.dav("alice", "PUT", "viewed/sub/deep.txt", content=b"deep").status_code == 201
    secret = secret_of(sites, pending["id"])

    template = webapp_row(sites, "viewed")
    assert template.startswith(f"{sites.a.base}/ocm/app/")
    assert template.endswith(f"/{RELATIVE_PATH}")
    assert secret not in template  # the WebDAV secret is in no URL
    app_id = template.split("/ocm/app/")[1].split("/")[0]
    assert app_id != secret and len(app_id) >= 32
    view = pending["webapp_url"]
    assert view == template.replace(RELATIVE_PATH, "")

    r = get(view)
    assert r.status_code == 200, r.text
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in r.headers["X-Robots-Tag"]
    assert "script-src" not in r.headers["Content-Security-Policy"]
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "<script>" not in r.text and "style=" not in r.text
    assert f"Shared by alice@{sites.provider_a} with bob@{sites.provider_b}" in r.text
    for name in ("nb.ipynb", "notes.txt", "sub/"):
        assert f">{name}<" in r.text
    # view only: nothing to download, upload or delete
    for word in ("download", "upload", "delete", "zip", "webdav"):
        assert word not in r.text.lower(), word

    r = get(view + "nb.ipynb")
    assert r.status_code == 200, r.text
    assert "Download" not in r.text and "View only" in r.text
    assert "?view=render" in r.text
    rendered = get(view + "nb.ipynb?view=render")
    assert rendered.status_code == 200
    assert "seen at site A" in rendered.text
    assert "sandbox" in rendered.headers["Content-Security-Policy"]
    assert get(view + "sub").status_code == 200 and ">deep.txt<" in get(view + "sub").text
    assert "plain words" in get(view + "notes.txt").text
    # no way around view-only: the bytes of a notebook or a text file are not given out
    for sub in ("nb.ipynb?view=raw", "notes.txt?view=raw", "nb.ipynb?view=download", "?view=raw"):
        assert get(view + sub).status_code == 404, sub

    # exactly within the shared folder
    outside = sites.a.space("alice") / "private.txt"
    outside.write_text("not shared")
    os.symlink(outside, sites.a.space("alice") / "viewed" / "escape.txt")
    os.symlink(sites.a.space("alice"), sites.a.space("alice") / "viewed" / "home")
    for path in ("escape.txt", "home", "home/private.txt", "missing.txt"):
        r = get(view + path)
        assert r.status_code == 404, path
        assert "not shared" not in r.text
    assert ">escape.txt<" not in get(view).text
    with httpx.Client(timeout=30) as client:
        for raw in ("%2E%2E/private.txt", "sub/%2e%2e/%2e%2e/private.txt", "..%2Fprivate.txt"):
            r = client.send(client.build_request("GET", view + raw))
            assert r.status_code in (400, 404), raw
            assert "not shared" not in r.text

    # the id is the page only; the secret opens no page, the id no WebDAV
    base = template.split("/ocm/app/")[0]
    assert get(f"{base}/ocm/app/{secret}/").status_code == 404
    assert get(f"{base}/ocm/app/{secret}/nb.ipynb?view=render").status_code == 404
    dav = f"{sites.a.base}/public.php/webdav/nb.ipynb"
    assert get(dav, headers={"Authorization": f"Bearer {app_id}"}).status_code == 401
    assert get(f"{sites.a.base}/s/{app_id}").status_code == 404

    # it ends with the share, at once
    assert sites.a.ocs("alice", "DELETE", f"shares/{sent['id']}").status_code == 200
    for path in ("", "nb.ipynb", "nb.ipynb?view=render", "sub"):
        assert get(view + path).status_code == 404, path


def test_a_shared_file_has_its_own_page_and_a_declined_share_ends_it(sites):
    assert sites.a.dav(
        "alice", "PUT", "single.ipynb", content=notebook("print('seven')")
    ).is_success
    form = {"path": "single.ipynb", "shareType": 6, "permissions": 1}
    form["shareWith"] = f"bob@{sites.provider_b}"
    r = sites.a.ocs("alice", "POST", "shares", data=form)
    assert r.status_code == 200, r.text
    [pending] = [s for s in pending_at_b(sites) if s["name"] == "/single.ipynb"]
    view = pending["webapp_url"]
    r = get(view)
    assert r.status_code == 200 and "single.ipynb" in r.text
    assert "seven" in get(view + "?view=render").text
    assert get(view + "anything").status_code == 404
    assert sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}").is_success
    assert get(view).status_code == 404


def test_the_page_of_an_expired_share_is_gone_and_names_of_any_script_are_shown(sites):
    files = {"données é.txt": "ça va".encode(), "a&b <c>.txt": b"x"}
    sent, pending = shared_with_view(sites, "expiring", files)
    view = pending["webapp_url"]
    listing = get(view).text
    assert ">a&amp;b &lt;c&gt;.txt<" in listing and "<c>" not in listing
    assert f"href='{urlsplit(view).path}{quote('données é.txt')}'" in listing
    r = get(view + quote("données é.txt"))
    assert r.status_code == 200 and "ça va" in r.text
    assert httpx.head(view, timeout=30).status_code == 200
    # its last day was yesterday: the page ends as the secret does
    yesterday = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    with sites.database(sites.a) as db:
        db.execute("UPDATE shares SET expiration = ? WHERE id = ?", (yesterday, sent["id"]))
    assert get(view).status_code == 404
    assert get(view + quote("données é.txt")).status_code == 404


def test_the_recipients_drive_page_links_to_the_view_only_page(sites):
    _, pending = shared_with_view(sites, "linked", {"f.txt": b"1"})
    with signed_in(sites.b, "bob") as (browser, _):
        page = browser.get(f"{sites.b.base}/shared-with-me")
        assert page.status_code == 200
        [row] = re.findall(r"<tr data-share=[^>]*data-name='linked/'.*?</tr>", page.text, re.S)
    [link] = re.findall(r"<a class='view' [^>]*>[^<]*</a>", row)
    assert f"href='{pending['webapp_url']}'" in link
    assert "target='_blank' rel='noopener noreferrer'" in link
    assert f">View at {sites.provider_a}</a>" in link
    assert sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}").is_success


@needs_chromium
def test_the_view_only_pages_have_no_serious_accessibility_violation(sites):
    """axe-core in Chromium, as tests/test_accessibility.py audits the public link pages."""
    files = {"week1.ipynb": notebook("print('audited')"), "data.csv": b"x,y\n1,2\n"}
    _, pending = shared_with_view(sites, "audited", files)
    with chromium_browser() as browser:
        page = person(browser)  # nobody signed in at site A
        for sub in ("", "week1.ipynb", "data.csv"):
            page.goto(pending["webapp_url"] + sub)
            page.locator("main").wait_for()
            assert failing_violations(page) == [], sub
    assert sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}").is_success


@pytest.mark.parametrize(
    "template",
    [
        "javascript:alert(document.domain)//{relative-path-to-shared-resource}",
        "http://evil.example/ocm/app/x/{relative-path-to-shared-resource}",
        "http://127.0.0.1:1/ocm/app/x/{relative-path-to-shared-resource}",
        "/services/drive/ocm/app/x/{relative-path-to-shared-resource}",
        "http://user:pw@{provider_a}/ocm/app/x/",
        "http://{provider_a}/a page/'><script>",
    ],
)
def test_a_webapp_link_to_another_host_is_dropped_and_the_share_still_taken(sites, template):
    from test_federation import new_share

    template = template.replace("{provider_a}", sites.provider_a)
    document = new_share(sites, name="hostile", providerId=f"hostile-{abs(hash(template))}")
    document["protocol"]["webapp"] = {"uriTemplate": template, "viewMode": "view"}
    r = ocm_post(sites.b, "shares", key=sites.key_a, json=document)
    assert r.status_code == 201, r.text
    [pending] = [s for s in pending_at_b(sites) if s["remote_id"] == document["providerId"]]
    assert pending["webapp_url"] is None
    assert webapp_row(sites, "hostile") is None
    assert sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}").is_success


# -- at site B: Shared with me and Open in SWAN ----------------------------------------------------


@contextlib.contextmanager
def listening() -> http.server.ThreadingHTTPServer:
    """A server on 127.0.0.1 that answers nothing useful and counts what reaches it."""

    class Counting(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            self.server.seen.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def open_link(swan, **params: str) -> httpx.Response:
    return lab(swan, "GET", "swan/open", params=params)


def test_shared_with_me_lists_the_page_and_an_owner_link_opens_the_file_through_the_share(
    sites, lab_b
):
    files = {"nb.ipynb": notebook("print('course')")}
    _, pending = shared_with_view(sites, "course", files)
    [listed] = [s for s in received_in_lab(lab_b, "pending") if s["name"] == "course"]
    assert listed["view_url"] == pending["webapp_url"]
    assert urlsplit(listed["view_url"]).netloc == sites.provider_a

    owner = f"alice@{sites.provider_a}"
    # the page at site A offers "Open in your SWAN": bob's own site's Open in SWAN page
    for page, path in (("", "course"), ("nb.ipynb", "course/nb.ipynb")):
        shown = get(listed["view_url"] + page).text
        [target] = re.findall(r"<a class='open' href='([^']*)'>Open in your SWAN</a>", shown)
        target = urlsplit(html.unescape(target))
        assert f"{target.scheme}://{target.netloc}" == sites.b.swan.url
        assert target.path == "/hub/user-redirect/swan/open"
        assert parse_qs(target.query) == {"path": [path], "owner": [owner]}
    # waiting for bob: the page offers "Accept and open"
    r = open_link(lab_b, path="course/nb.ipynb", owner=owner)
    assert r.status_code == 409, r.text
    assert "Accept and open" in r.text and "not accepted the share yet" in r.text
    form = {"path": "course/nb.ipynb", "owner": owner}
    r = lab(lab_b, "POST", "swan/open", data=form)
    assert r.status_code == 302, r.text
    assert r.headers["Location"].endswith("/lab/tree/Shared/course/nb.ipynb")
    # site A heard of the acceptance
    [sent] = [s for s in sites.federated_rows() if s["path"] == "course"]
    r = sites.a.ocs("alice", "GET", f"shares/{sent['id']}")
    assert r.json()["ocs"]["data"][0]["state"] == 0

    # accepted: the link opens the file where the share is, wherever it lies in alice's space
    r = open_link(lab_b, path="teaching/course/nb.ipynb", owner=owner)
    assert r.status_code == 302, r.text
    assert r.headers["Location"].endswith("/lab/tree/Shared/course/nb.ipynb")
    r = lab(lab_b, "GET", f"api/contents/{quote('Shared/course/nb.ipynb')}")
    assert r.status_code == 200 and "course" in json.dumps(r.json()["content"])

    # "Copy Open-in-SWAN link" of the file at site B names it by its owner's address
    r = lab(lab_b, "POST", "swan/api/links", json={"path": "Shared/course/nb.ipynb"})
    assert r.status_code == 200, r.text
    query = parse_qs(urlsplit(r.json()["link"]).query)
    assert query == {"path": ["course/nb.ipynb"], "owner": [owner]}
    r = lab(lab_b, "POST", "swan/api/links", json={"path": "own.ipynb"})
    assert parse_qs(urlsplit(r.json()["link"]).query)["owner"] == ["bob"]

    # someone else of site A, or a path the share does not hold: the ask page
    for params in (
        {"path": "course/nb.ipynb", "owner": f"carol@{sites.provider_a}"},
        {"path": "other/nb.ipynb", "owner": owner},
    ):
        r = open_link(lab_b, **params)
        assert r.status_code == 403, r.text
        assert "it is not shared with you" in r.text


def test_an_owner_of_a_site_outside_the_mesh_gets_the_ask_page_and_no_request(sites, lab_b):
    with listening() as stranger:
        port = stranger.server_address[1]
        for owner in (
            f"alice@127.0.0.1:{port}",
            f"alice@localhost:{port}",
            "alice@",
            "@127.0.0.1",
            "alice@@evil.example",
        ):
            r = open_link(lab_b, path="course/nb.ipynb", owner=owner)
            assert r.status_code == 403, (owner, r.text)
            assert "it is not shared with you" in r.text
        assert stranger.seen == []


def test_a_link_to_a_single_file_of_another_site_accepts_and_opens_it_and_its_page_shows_it(
    sites, lab_b
):
    """A file of another site is placed in Shared/ once accepted: a link to it offers to
    accept and opens it, and Shared with me links to its page."""
    assert sites.a.dav("alice", "PUT", "sheet.ipynb", content=notebook("print(1)")).is_success
    form = {"path": "sheet.ipynb", "shareType": 6, "permissions": 1}
    form["shareWith"] = f"bob@{sites.provider_b}"
    assert sites.a.ocs("alice", "POST", "shares", data=form).status_code == 200
    [listed] = [s for s in received_in_lab(lab_b, "pending") if s["name"] == "sheet.ipynb"]
    assert get(listed["view_url"]).status_code == 200
    owner = f"alice@{sites.provider_a}"
    r = open_link(lab_b, path="sheet.ipynb", owner=owner)
    assert r.status_code == 409, r.text
    assert "Accept and open" in r.text
    r = lab(lab_b, "POST", "swan/open", data={"path": "sheet.ipynb", "owner": owner})
    assert r.status_code == 302, r.text
    assert r.headers["Location"].endswith("/lab/tree/Shared/sheet.ipynb")
    r = open_link(lab_b, path="sheet.ipynb", owner=owner)
    assert r.status_code == 302, r.text
    assert r.headers["Location"].endswith("/lab/tree/Shared/sheet.ipynb")
    r = lab(lab_b, "GET", "api/contents/Shared/sheet.ipynb")
    assert r.status_code == 200 and "print(1)" in json.dumps(r.json()["content"])
