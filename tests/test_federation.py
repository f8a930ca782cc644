"""Two SWAN sites on one machine share over Open Cloud Mesh (OCM 1.1): two real `swan up` (hub,
proxy, drive) on two ports of 127.0.0.1, trusted to each other by `--ocm-peer`. A user of site A
shares a folder with a user of site B through A's OCS API; B's drive receives it pending; accept
and decline reach A; B's side reads and writes A's files over WebDAV with the shared secret;
revoking ends that at once. The unhappy paths: an unknown provider, malformed bodies, a user that
does not exist, a peer that is down, a wrong secret, a peer behind a redirect.

The spec's schemas (cs3org/OCM-API spec.yaml, Discovery and NewShare) cannot be fetched in CI (no
internet): the required fields and their types are written out below from the spec."""

from __future__ import annotations

import base64
import contextlib
import datetime
import email.utils
import html
import http.server
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, unquote

import httpx
import pytest
from harness.drive import DAV, PROPFIND_BODY, Drive, answering_drive, parse_xml
from harness.swan import (
    _processes,
    log_in,
    start_server,
    start_swan,
    user_api,
    write_drive_config,
)
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from test_drive import signed_in
from test_kernel_mount import execute, mount_point, start_kernel, wait_for

from swan_hub.cli import free_port, make_parser
from swan_hub.drive.mesh import Mesh, PeerError
from swan_hub.drive.signing import SiteKey
from swan_hub.mounts import missing_parts

pytestmark = pytest.mark.hub

#: spec.yaml, definitions/Discovery: required, and the types of the fields the drive sends
DISCOVERY_REQUIRED = {"enabled": bool, "apiVersion": str, "endPoint": str, "resourceTypes": list}
DISCOVERY_OPTIONAL = {
    "provider": str,
    "capabilities": list,
    "publicKey": dict,
    "inviteAcceptDialog": str,
}
#: spec.yaml, Discovery.capabilities.items.enum (1.1), and `http-sig` (1.2, RFC 9421 signatures)
#: and `invite-wayf` (1.2, a WAYF page for invite links)
CAPABILITIES = {"/notifications", "/invite-accepted", "/mfa-capable", "http-sig", "invite-wayf"}
#: spec.yaml, Discovery.resourceTypes.items.shareTypes.items.enum
SHARE_TYPES = {"user", "group", "federation"}


class Sites:
    """Site A and site B, each a `swan up` whose drive trusts the other (A also trusts a
    third provider that never runs: a peer that is down)."""

    def __init__(self, a: Drive, b: Drive, port_a: int, port_b: int, dead: int):
        self.a, self.b = a, b
        self.provider_a = f"127.0.0.1:{port_a}"
        self.provider_b = f"127.0.0.1:{port_b}"
        self.dead = f"127.0.0.1:{dead}"
        #: site A's signing key, read from its data directory: tests that speak as site A
        self.key_a = SiteKey(str(a.swan.data / "drive" / "ocm-signing-key.pem"), self.provider_a)

    def database(self, drive: Drive) -> sqlite3.Connection:
        db = sqlite3.connect(drive.swan.data / "drive" / "drive.sqlite")
        db.row_factory = sqlite3.Row
        return db

    def received_rows(self) -> list[sqlite3.Row]:
        with self.database(self.b) as db:
            return db.execute("SELECT * FROM received_shares ORDER BY id").fetchall()

    def federated_rows(self) -> list[sqlite3.Row]:
        with self.database(self.a) as db:
            return db.execute("SELECT * FROM shares WHERE share_type = 6").fetchall()


@contextlib.contextmanager
def two_sites(tmp_path_factory, settings: str = "") -> Iterator[Sites]:
    """Sites A and B (and the dead peer both trust), each drive with ``settings`` (lines of
    `c.DriveService.*`) beside its access log; everything is stopped after."""
    port_a, port_b, dead = free_port(), free_port(), free_port()
    started = []
    try:
        for name, port, peers in (
            ("a", port_a, [f"127.0.0.1:{port_b}", f"127.0.0.1:{dead}"]),
            ("b", port_b, [f"127.0.0.1:{port_a}", f"127.0.0.1:{dead}"]),
        ):
            workdir = tmp_path_factory.mktemp(f"site-{name}")
            # every request a drive serves, one line each (the cost of a federated open)
            log = f"c.DriveService.access_log = {str(workdir / 'access.log')!r}\n"
            write_drive_config(workdir, log + settings)
            args = [arg for peer in peers for arg in ("--ocm-peer", peer)]
            started.append(start_swan(workdir, *args, users="alice,bob,carol", port=port))
        yield Sites(*(answering_drive(s) for s in started), port_a, port_b, dead)
    finally:
        for swan in started:
            swan.kill_everything()


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    with two_sites(tmp_path_factory) as found:
        yield found


def ocm_post(drive: Drive, what: str, *, key: SiteKey | None, **kw) -> httpx.Response:
    """POST to ``drive``'s OCM endpoint ``what``, signed with ``key`` as its site signs (None:
    unsigned); ``kw`` as for `httpx.Request` (``json=``, ``content=``, ``headers=``)."""
    request = httpx.Request("POST", f"{drive.base}/ocm/{what}", **kw)
    if key is not None:
        headers = dict(request.headers)
        key.sign("POST", str(request.url), headers, request.read())
        request.headers.update(headers)
    with httpx.Client(timeout=30) as client:
        return client.send(request)


def new_share(sites: Sites, **changes) -> dict:
    """A valid NewShare from site A to bob at site B (as another OCM server would send it)."""
    document = {
        "shareWith": f"bob@{sites.provider_b}",
        "name": "notes",
        "providerId": "direct-1",
        "owner": f"alice@{sites.provider_a}",
        "sender": f"alice@{sites.provider_a}",
        "shareType": "user",
        "resourceType": "folder",
        "protocol": {
            "name": "multi",
            "webdav": {
                "uri": f"{sites.a.base}/public.php/webdav/",
                "sharedSecret": "not-a-share-of-site-a-0123456789",
                "permissions": ["read"],
            },
        },
    }
    document.update(changes)
    return document


def share_folder(sites: Sites, path: str, recipient: str, permissions: int) -> httpx.Response:
    """alice of site A shares her folder ``path`` with ``recipient`` (OCS share type 6)."""
    form = {"path": path, "shareType": 6, "shareWith": recipient, "permissions": permissions}
    return sites.a.ocs("alice", "POST", "shares", data=form)


def pending_at_b(sites: Sites, user: str = "bob") -> list[dict]:
    r = sites.b.ocs(user, "GET", "remote_shares/pending")
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]


def secret_of(sites: Sites, received_id: int) -> str:
    """The shared secret site B stored (B's own JupyterLab mount will read it there)."""
    with sites.database(sites.b) as db:
        row = db.execute("SELECT shared_secret FROM received_shares WHERE id = ?", (received_id,))
        return row.fetchone()[0]


def as_recipient(sites: Sites, secret: str, method: str, path: str = "", **kw) -> httpx.Response:
    url = f"{sites.a.base}/public.php/webdav/{path}"
    headers = {"Authorization": f"Bearer {secret}", **kw.pop("headers", {})}
    return httpx.request(method, url, headers=headers, timeout=30, **kw)


def make_folder(drive: Drive, user: str, folder: str, files: dict[str, bytes]) -> None:
    assert drive.dav(user, "MKCOL", folder).status_code == 201
    for name, content in files.items():
        assert drive.dav(user, "PUT", f"{folder}/{name}", content=content).status_code == 201


# -- discovery ------------------------------------------------------------------------------------


def test_discovery_answers_at_the_sites_root_with_the_specs_required_fields(sites):
    for path in ("/.well-known/ocm", "/ocm-provider"):
        r = httpx.get(sites.a.swan.url + path, timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        found = r.json()
        for name, kind in DISCOVERY_REQUIRED.items():
            assert isinstance(found[name], kind), name
        for name, kind in DISCOVERY_OPTIONAL.items():
            assert name not in found or isinstance(found[name], kind), name
        assert found["enabled"] is True
        assert found["apiVersion"] == "1.1.0"
        assert found["endPoint"] == f"{sites.a.base}/ocm"
        assert set(found["capabilities"]) <= CAPABILITIES
        names = [kind["name"] for kind in found["resourceTypes"]]
        assert "file" in names and len(names) == len(set(names))
        for kind in found["resourceTypes"]:
            assert "user" in kind["shareTypes"] and set(kind["shareTypes"]) <= SHARE_TYPES
            assert kind["protocols"]["webdav"] == "/services/drive/public.php/webdav/"


def test_swan_up_takes_only_a_host_and_port_or_a_sites_url_as_a_peer(capsys):
    args = make_parser().parse_args(["up", "--ocm-peer", "127.0.0.2:8001", "--ocm-peer", "h"])
    assert args.ocm_peer == ["127.0.0.2:8001", "h"]
    for wrong in ("ftp://h", "h:port", "http://h/path", ":80"):
        with pytest.raises(SystemExit):
            make_parser().parse_args(["up", "--ocm-peer", wrong])
        assert "is not HOST:PORT of another site" in capsys.readouterr().err


def test_discovery_is_read_only(sites):
    r = httpx.post(sites.a.swan.url + "/.well-known/ocm", json={}, timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_the_sharee_search_offers_users_of_trusted_sites_only(sites):
    def remotes(search: str) -> list[dict]:
        r = sites.a.ocs("alice", "GET", "sharees", params={"search": search})
        assert r.status_code == 200, r.text
        return r.json()["ocs"]["data"]["exact"]["remotes"]

    [found] = remotes(f"Bob@{sites.provider_b}")
    assert found["value"] == {
        "shareType": 6,
        "shareWith": f"Bob@{sites.provider_b}",
        "server": f"http://{sites.provider_b}",
    }
    assert remotes("bob@evil.example") == [] and remotes("bob") == []


def test_an_expiry_date_travels_with_the_share(sites):
    make_folder(sites.a, "alice", "until", {})
    form = {"expireDate": "2099-12-31"}
    r = sites.a.ocs(
        "alice",
        "POST",
        "shares",
        data={"path": "until", "shareType": 6, "shareWith": f"bob@{sites.provider_b}", **form},
    )
    assert r.status_code == 200, r.text
    [pending] = pending_at_b(sites)
    # the share works through 2099-12-31 (UTC) and stops at the next midnight
    assert pending["expiration"] == 4102444800
    assert sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}").status_code == 200
    assert sites.federated_rows() == []


def test_changed_rights_and_expiry_of_a_sent_share_reach_the_recipients_site(sites):
    make_folder(sites.a, "alice", "changing", {})
    r = share_folder(sites, "changing", f"bob@{sites.provider_b}", 1)
    assert r.status_code == 200, r.text
    share_id = r.json()["ocs"]["data"]["id"]
    [pending] = pending_at_b(sites)
    assert pending["ocm_permissions"] == ["read"] and pending["expiration"] is None
    changes = {"permissions": 15, "expireDate": "2099-12-31"}
    r = sites.a.ocs("alice", "PUT", f"shares/{share_id}", data=changes)
    assert r.status_code == 200, r.text
    [pending] = pending_at_b(sites)
    assert pending["ocm_permissions"] == ["read", "write"]
    assert pending["expiration"] == 4102444800
    r = sites.a.ocs("alice", "PUT", f"shares/{share_id}", data={"permissions": 1, "expireDate": ""})
    assert r.status_code == 200, r.text
    [pending] = pending_at_b(sites)
    assert pending["ocm_permissions"] == ["read"] and pending["expiration"] is None
    # only with the share's secret, and in the known words
    change = {
        "notificationType": "SHARE_CHANGE_PERMISSION",
        "resourceType": "folder",
        "providerId": str(share_id),
        "notification": {"sharedSecret": "a-wrong-secret-0123456789", "permissions": ["write"]},
    }
    r = ocm_post(sites.b, "notifications", key=sites.key_a, json=change)
    assert r.status_code == 403, r.text
    change["notification"]["sharedSecret"] = secret_of(sites, pending["id"])
    change["notification"]["permissions"] = ["delete-everything"]
    r = ocm_post(sites.b, "notifications", key=sites.key_a, json=change)
    assert r.status_code == 400, r.text
    [pending] = pending_at_b(sites)
    assert pending["ocm_permissions"] == ["read"]
    assert sites.a.ocs("alice", "DELETE", f"shares/{share_id}").status_code == 200
    assert pending_at_b(sites) == []


# -- the walk: share, accept, read and write, revoke ---------------------------------------------


def test_a_folder_shared_with_a_user_of_the_other_site_is_read_written_and_revoked(sites):
    make_folder(sites.a, "alice", "class", {"intro.ipynb": b'{"cells": []}'})
    r = share_folder(sites, "class", f"bob@{sites.provider_b}", 15)
    assert r.status_code == 200, r.text
    sent = r.json()["ocs"]["data"]
    assert sent["share_type"] == 6 and sent["share_with"] == f"bob@{sites.provider_b}"
    assert sent["token"] is None  # the secret is the recipient's key, never shown
    assert sent["state"] == 1  # pending until bob answers

    [pending] = pending_at_b(sites)
    assert pending["name"] == "/class" and pending["owner"] == "alice"
    assert pending["owner_address"] == f"alice@{sites.provider_a}"
    assert pending["remote"] == f"http://{sites.provider_a}"
    assert pending["accepted"] == 0 and pending["type"] == "dir"
    assert "share_token" not in pending and "shared_secret" not in pending
    assert sites.b.ocs("carol", "GET", "remote_shares/pending").json()["ocs"]["data"] == []

    r = sites.b.ocs("bob", "POST", f"remote_shares/pending/{pending['id']}")
    assert r.status_code == 200, r.text
    [accepted] = sites.b.ocs("bob", "GET", "remote_shares").json()["ocs"]["data"]
    assert accepted["accepted"] == 1 and accepted["mountpoint"] == "/Shared/class"
    # SHARE_ACCEPTED reached site A
    r = sites.a.ocs("alice", "GET", f"shares/{sent['id']}")
    assert r.json()["ocs"]["data"][0]["state"] == 0

    secret = secret_of(sites, pending["id"])
    [row] = sites.received_rows()
    assert row["webdav_uri"] == f"{sites.a.base}/public.php/webdav/"
    assert row["webdav_auth"] == "bearer" and row["permissions"] == '["read", "write"]'
    r = as_recipient(sites, secret, "PROPFIND", headers={"Depth": "1"}, content=PROPFIND_BODY)
    assert r.status_code == 207, r.text
    hrefs = {h.text for h in parse_xml(r.content).iter(f"{DAV}href")}
    assert any(h.endswith("/intro.ipynb") for h in hrefs)
    assert as_recipient(sites, secret, "GET", "intro.ipynb").content == b'{"cells": []}'
    # legacy access (Nextcloud's): the secret as Basic user name, no password
    legacy = httpx.get(
        f"{sites.a.base}/public.php/webdav/intro.ipynb", auth=(secret, ""), timeout=30
    )
    assert legacy.status_code == 200
    r = as_recipient(sites, secret, "PUT", "answers.ipynb", content=b'{"cells": [1]}')
    assert r.status_code == 201, r.text
    assert (sites.a.space("alice") / "class" / "answers.ipynb").read_bytes() == b'{"cells": [1]}'
    # the secret opens the shared folder and nothing beside it
    assert as_recipient(sites, secret, "GET", "../../remote.php/webdav/").status_code in (
        400,
        401,
        403,
        404,
    )
    assert httpx.get(f"{sites.a.base}/s/{secret}", timeout=30).status_code == 404

    r = sites.a.ocs("alice", "DELETE", f"shares/{sent['id']}")
    assert r.status_code == 200, r.text
    # at once: the secret opens nothing, and site B forgot the share (SHARE_UNSHARED)
    assert as_recipient(sites, secret, "GET", "intro.ipynb").status_code == 401
    assert as_recipient(sites, secret, "PROPFIND", headers={"Depth": "0"}).status_code == 401
    assert sites.b.ocs("bob", "GET", "remote_shares").json()["ocs"]["data"] == []
    assert sites.received_rows() == []
    assert sites.federated_rows() == []


def test_a_read_only_share_refuses_every_write_of_the_recipient(sites):
    make_folder(sites.a, "alice", "readonly", {"data.csv": b"a,b\n"})
    r = share_folder(sites, "readonly", f"bob@{sites.provider_b}", 1)
    assert r.status_code == 200, r.text
    [pending] = pending_at_b(sites)
    assert pending["permissions"] == 1
    secret = secret_of(sites, pending["id"])
    assert as_recipient(sites, secret, "GET", "data.csv").content == b"a,b\n"
    for method, path in (("PUT", "data.csv"), ("PUT", "new.txt")):
        r = as_recipient(sites, secret, method, path, content=b"x")
        assert r.status_code == 403, (method, path, r.status_code)
    assert as_recipient(sites, secret, "MKCOL", "sub").status_code == 403
    assert as_recipient(sites, secret, "DELETE", "data.csv").status_code == 403
    assert (sites.a.space("alice") / "readonly" / "data.csv").read_bytes() == b"a,b\n"
    assert not (sites.a.space("alice") / "readonly" / "new.txt").exists()
    sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}")


def test_declining_tells_the_sender_whose_share_and_secret_end_at_once(sites):
    make_folder(sites.a, "alice", "declined", {"f.txt": b"1"})
    r = share_folder(sites, "declined", f"bob@{sites.provider_b}", 1)
    assert r.status_code == 200, r.text
    [pending] = pending_at_b(sites)
    secret = secret_of(sites, pending["id"])
    assert as_recipient(sites, secret, "GET", "f.txt").status_code == 200
    r = sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}")
    assert r.status_code == 200, r.text
    assert pending_at_b(sites) == [] and sites.received_rows() == []
    assert sites.federated_rows() == []
    assert as_recipient(sites, secret, "GET", "f.txt").status_code == 401


def test_the_recipients_drive_page_lists_a_share_of_the_other_site_to_accept_and_leave(sites):
    """Shared with me on the drive's page holds shares of other sites too; its buttons go to
    the OCS endpoints of received remote shares, with the page's request token."""
    make_folder(sites.a, "alice", "handouts", {"f.txt": b"1"})
    assert share_folder(sites, "handouts", f"bob@{sites.provider_b}", 1).status_code == 200
    [pending] = [s for s in pending_at_b(sites) if s["name"] == "/handouts"]
    ocs = f"{sites.b.base}/ocs/v2.php/apps/files_sharing/api/v1"
    with signed_in(sites.b, "bob") as (browser, first):
        token = re.search(r"data-requesttoken='([^']*)'", first.text)[1]
        headers = {"requesttoken": token, "OCS-APIRequest": "true"}

        def row() -> str:
            page = browser.get(f"{sites.b.base}/shared-with-me")
            assert page.status_code == 200
            [found] = re.findall(
                r"<tr data-share=[^>]*data-name='handouts/'.*?</tr>", page.text, re.S
            )
            return html.unescape(found)

        shown = row()
        assert f"alice@{sites.provider_a}" in shown and "view only" in shown and "pending" in shown
        accept = re.search(r"data-accept='([^']*)'", shown)[1]
        assert accept == f"/remote_shares/pending/{pending['id']}"
        assert browser.post(ocs + accept, params={"format": "json"}).status_code == 403
        assert browser.post(ocs + accept, params={"format": "json"}, headers=headers).is_success
        shown = row()
        assert "accepted" in shown and "data-accept" not in shown
        leave = re.search(r"data-decline='([^']*)'", shown)[1]
        assert leave == f"/remote_shares/{pending['id']}"
        assert browser.delete(ocs + leave, params={"format": "json"}, headers=headers).is_success
        assert "handouts/" not in browser.get(f"{sites.b.base}/shared-with-me").text
    assert [r for r in sites.federated_rows() if r["path"] == "handouts"] == []


# -- refusals at the sender ----------------------------------------------------------------------


def test_sharing_with_a_user_that_does_not_exist_is_refused_and_leaves_nothing(sites):
    make_folder(sites.a, "alice", "nobody", {})
    r = share_folder(sites, "nobody", f"nobody@{sites.provider_b}", 1)
    assert r.status_code == 400, r.text
    message = r.json()["ocs"]["meta"]["message"]
    assert "nobody is not a user of this site" in message and "Nothing was shared" in message
    assert sites.federated_rows() == [] and sites.received_rows() == []


def test_a_peer_that_is_down_gives_a_clear_error_and_leaves_nothing(sites):
    make_folder(sites.a, "alice", "to-dead", {})
    r = share_folder(sites, "to-dead", f"bob@{sites.dead}", 1)
    assert r.status_code == 503, r.text
    message = r.json()["ocs"]["meta"]["message"]
    assert f"could not be sent to {sites.dead}" in message and "Nothing was shared" in message
    assert sites.federated_rows() == []
    assert sites.a.ocs("alice", "GET", "shares").json()["ocs"]["data"] == []


def test_sharing_with_a_provider_the_site_does_not_trust_is_refused(sites):
    make_folder(sites.a, "alice", "untrusted", {})
    for recipient in ("bob@evil.example", "bob@127.0.0.1", "bob", f"@{sites.provider_b}"):
        r = share_folder(sites, "untrusted", recipient, 1)
        assert r.status_code in (400, 403), (recipient, r.text)
    r = share_folder(sites, "untrusted", "bob@evil.example", 1)
    assert "evil.example is not a trusted provider" in r.json()["ocs"]["meta"]["message"]
    assert sites.federated_rows() == []


# -- refusals at the recipient -------------------------------------------------------------------


def test_a_share_from_an_unknown_provider_is_refused_with_403_and_nothing_stored(sites):
    for field in ("sender", "owner"):
        r = ocm_post(
            sites.b, "shares", key=sites.key_a, json=new_share(sites, **{field: "eve@evil.example"})
        )
        assert r.status_code == 403, r.text
        assert "evil.example is not a trusted provider" in r.json()["message"]
    # a trusted provider on another port is another provider
    r = ocm_post(
        sites.b, "shares", key=sites.key_a, json=new_share(sites, sender="alice@127.0.0.1:1")
    )
    assert r.status_code == 403
    assert sites.received_rows() == [] and pending_at_b(sites) == []


def test_malformed_share_bodies_are_answered_400_with_the_fields_named(sites):
    def refused(status: int, **kw) -> dict:
        r = ocm_post(sites.b, "shares", key=sites.key_a, **kw)
        assert r.status_code == status, r.text
        assert r.json()["message"]
        return r.json()

    refused(400, content=b"{not json", headers={"Content-Type": "application/json"})
    refused(400, content=b"\xff\xfe", headers={"Content-Type": "application/json"})
    refused(400, json=["a", "list"])
    found = refused(400, json={"name": "x"})
    named = {e["name"] for e in found["validationErrors"]}
    assert named == {"shareWith", "providerId", "owner", "sender", "shareType", "resourceType",
                     "protocol"}  # fmt: skip
    found = refused(400, json=new_share(sites, protocol="webdav"))
    assert found["validationErrors"] == [{"name": "protocol", "message": "INVALID_TYPE"}]
    refused(400, json=new_share(sites, protocol={"name": "multi", "webdav": {"uri": "x"}}))
    bad_perms = {"name": "multi", "webdav": {"uri": "u", "sharedSecret": "s", "permissions": "rw"}}
    refused(400, json=new_share(sites, protocol=bad_perms))
    for uri in ("http://169.254.169.254/latest/", "file:///etc/passwd", "http://127.0.0.1:1/"):
        elsewhere = {"name": "multi", "webdav": {"uri": uri, "sharedSecret": "s"}}
        found = refused(400, json=new_share(sites, protocol=elsewhere))
        assert found["validationErrors"][0]["name"] == "protocol.webdav.uri"
    refused(400, json=new_share(sites, name=".."))
    refused(400, json=new_share(sites, providerId="has space"))
    refused(400, json=new_share(sites, expiration="tomorrow"))
    refused(400, json=new_share(sites, sender="no-at-sign"))
    # what the spec calls unsupported: 501
    refused(501, json=new_share(sites, shareType="group"))
    refused(501, json=new_share(sites, resourceType="calendar"))
    refused(400, json=new_share(sites, protocol={"name": "webdav", "options": {}}))
    refused(501, json=new_share(sites, protocol={"name": "datatx", "datatx": {}}))
    mfa = {"name": "multi", "webdav": {"uri": "u", "sharedSecret": "s", "requirements": ["x"]}}
    refused(501, json=new_share(sites, protocol=mfa))
    assert httpx.get(f"{sites.b.base}/ocm/shares", timeout=30).status_code == 405
    assert sites.received_rows() == []


def test_the_ocm_1_0_form_that_nextcloud_sends_is_reached_at_the_senders_webdav(sites):
    legacy = {
        "name": "webdav",
        "options": {
            "sharedSecret": "legacy-secret-0123456789",
            "permissions": "{http://open-cloud-mesh.org/ns}share-permissions",
        },
    }
    shared = new_share(sites, protocol=legacy, providerId="legacy-1", resourceType="file")
    r = ocm_post(sites.b, "shares", key=sites.key_a, json=shared)
    assert r.status_code == 201, r.text
    [row] = sites.received_rows()
    # the WebDAV path of site A's discovery, reached with the secret as Basic user name
    assert row["webdav_uri"] == f"{sites.a.base}/public.php/webdav/"
    assert row["webdav_auth"] == "basic" and row["permissions"] == '["read"]'
    [pending] = pending_at_b(sites)
    assert sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}").status_code == 200
    assert sites.received_rows() == []


def test_a_share_for_a_user_that_does_not_exist_is_refused(sites):
    for recipient in ("nobody", "ALICE"):
        shared = new_share(sites, shareWith=f"{recipient}@{sites.provider_b}")
        r = ocm_post(sites.b, "shares", key=sites.key_a, json=shared)
        assert r.status_code == 400, r.text
        assert r.json()["validationErrors"] == [{"name": "shareWith", "message": "NOT_FOUND"}]
    # bob, but of another provider
    r = ocm_post(
        sites.b,
        "shares",
        key=sites.key_a,
        json=new_share(sites, shareWith=f"bob@{sites.provider_a}"),
    )
    assert r.status_code == 400
    assert sites.received_rows() == []


def test_a_share_sent_twice_is_stored_once_and_unshared_only_with_its_secret(sites):
    for _ in range(2):
        r = ocm_post(sites.b, "shares", key=sites.key_a, json=new_share(sites))
        assert r.status_code == 201, r.text
        assert r.json() == {"recipientDisplayName": "bob"}
    [pending] = pending_at_b(sites)
    unshare = {
        "notificationType": "SHARE_UNSHARED",
        "resourceType": "folder",
        "providerId": "direct-1",
        "notification": {"sharedSecret": "a-wrong-secret-0123456789"},
    }
    r = ocm_post(sites.b, "notifications", key=sites.key_a, json=unshare)
    assert r.status_code == 403 and "nothing changed" in r.json()["message"]
    r = ocm_post(sites.b, "notifications", key=sites.key_a, json={**unshare, "notification": {}})
    assert r.status_code == 400
    r = ocm_post(
        sites.b, "notifications", key=sites.key_a, json={"notificationType": "SHARE_UNSHARED"}
    )
    assert r.status_code == 400
    assert {e["name"] for e in r.json()["validationErrors"]} == {"resourceType", "providerId"}
    assert [s["id"] for s in pending_at_b(sites)] == [pending["id"]]
    right = {"sharedSecret": "not-a-share-of-site-a-0123456789"}
    r = ocm_post(sites.b, "notifications", key=sites.key_a, json={**unshare, "notification": right})
    assert r.status_code == 201, r.text
    assert pending_at_b(sites) == [] and sites.received_rows() == []


# -- request signatures (RFC 9421) ---------------------------------------------------------------


def test_each_site_publishes_its_signing_key_and_says_it_signs(sites, tmp_path):
    for site, provider in ((sites.a, sites.provider_a), (sites.b, sites.provider_b)):
        assert "http-sig" in httpx.get(f"{site.swan.url}/.well-known/ocm").json()["capabilities"]
        r = httpx.get(f"{site.swan.url}/.well-known/jwks.json", timeout=30)
        assert r.status_code == 200, r.text
        [key] = r.json()["keys"]
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
        assert key["kid"] == f"{provider}#key1" and "d" not in key  # the public half only
        key_file = site.swan.data / "drive" / "ocm-signing-key.pem"
        assert key_file.stat().st_mode & 0o777 == 0o600
    assert (
        sites.key_a.jwks()["keys"]
        == httpx.get(f"{sites.a.swan.url}/.well-known/jwks.json").json()["keys"]
    )


def test_an_unsigned_share_from_a_site_that_signs_is_refused_and_nothing_stored(sites):
    r = ocm_post(sites.b, "shares", key=None, json=new_share(sites))
    assert r.status_code == 401, r.text
    assert "not signed" in r.json()["message"] and "nothing was changed" in r.json()["message"]
    assert sites.received_rows() == []


def test_a_forged_or_altered_signature_is_refused_and_nothing_stored(sites, tmp_path):
    forger = SiteKey(str(tmp_path / "forged.pem"), sites.provider_a)  # A's kid, another key
    r = ocm_post(sites.b, "shares", key=forger, json=new_share(sites))
    assert r.status_code == 401, r.text
    assert "does not verify" in r.json()["message"]
    # a request signed by site A, its body changed on the way
    request = httpx.Request("POST", f"{sites.b.base}/ocm/shares", json=new_share(sites))
    headers = dict(request.headers)
    sites.key_a.sign("POST", str(request.url), headers, request.read())
    altered = json.dumps(new_share(sites, shareWith=f"carol@{sites.provider_b}")).encode()
    headers["Content-Length"] = str(len(altered))
    r = httpx.post(str(request.url), content=altered, headers=headers, timeout=30)
    assert r.status_code == 401, r.text
    # signature headers that are no ocm signature at all
    for value in ("garbage((", 'proxy=("@method");keyid="x"', 'ocm=("@method")'):
        headers = {"Signature-Input": value, "Signature": "ocm=:AAAA:"}
        r = ocm_post(sites.b, "shares", key=None, json=new_share(sites), headers=headers)
        assert r.status_code == 401 and "no ocm signature" in r.text, r.text
    # signed for another endpoint (the notifications), sent to the shares
    headers = {"Content-Type": "application/json"}
    body = json.dumps(new_share(sites)).encode()
    sites.key_a.sign("POST", f"{sites.b.base}/ocm/notifications", headers, body)
    r = httpx.post(f"{sites.b.base}/ocm/shares", content=body, headers=headers, timeout=30)
    assert r.status_code == 401, r.text
    assert sites.received_rows() == []


def test_a_replayed_or_stale_signed_request_is_refused(sites):
    request = httpx.Request("POST", f"{sites.b.base}/ocm/shares", json=new_share(sites))
    headers = dict(request.headers)
    sites.key_a.sign("POST", str(request.url), headers, request.read())
    first = httpx.post(str(request.url), content=request.read(), headers=headers, timeout=30)
    assert first.status_code == 201, first.text
    [row] = sites.received_rows()
    again = httpx.post(str(request.url), content=request.read(), headers=headers, timeout=30)
    assert again.status_code == 401 and "replay" in again.json()["message"]
    assert sites.received_rows() == [row]  # not touched (a retry would replace its fields)
    # a request signed two minutes ago
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=120)
    headers = {"Content-Type": "application/json", "Date": email.utils.format_datetime(old)}
    body = json.dumps(new_share(sites, providerId="stale-1")).encode()
    headers["Content-Length"] = str(len(body))
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={}, private_keys={sites.key_a.kid: sites.key_a.private}
        ),
    )
    message = httpx.Request("POST", f"{sites.b.base}/ocm/shares", headers=headers, content=body)
    signer.sign(message, key_id=sites.key_a.kid, created=old, label="ocm", body=body,
                covered_component_ids=("@method", "@target-uri", "content-digest",
                                       "content-length", "date"))  # fmt: skip
    r = httpx.post(str(message.url), content=body, headers=dict(message.headers), timeout=30)
    assert r.status_code == 401 and "age" in r.json()["message"], r.text
    pending = pending_at_b(sites)
    assert [p["remote_id"] for p in pending] == ["direct-1"]
    assert (
        sites.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending[0]['id']}").status_code == 200
    )


def test_a_signature_of_an_unknown_provider_or_for_another_provider_is_refused(sites, tmp_path):
    stranger = SiteKey(str(tmp_path / "evil.pem"), "evil.example")
    r = ocm_post(sites.b, "shares", key=stranger, json=new_share(sites))
    assert r.status_code == 403, r.text
    assert "evil.example, which is not a trusted provider" in r.json()["message"]
    # site A's valid signature on a share that claims to come from another trusted site
    claimed = f"dave@{sites.dead}"
    r = ocm_post(sites.b, "shares", key=sites.key_a, json=new_share(sites, sender=claimed))
    assert r.status_code == 403 and "speaks for" in r.json()["message"], r.text
    assert sites.received_rows() == []


def test_an_unsigned_notification_about_a_share_with_a_signing_site_changes_nothing(sites):
    assert ocm_post(sites.b, "shares", key=sites.key_a, json=new_share(sites)).status_code == 201
    unshare = {
        "notificationType": "SHARE_UNSHARED",
        "resourceType": "folder",
        "providerId": "direct-1",
        "notification": {"sharedSecret": "not-a-share-of-site-a-0123456789"},
    }
    r = ocm_post(sites.b, "notifications", key=None, json=unshare)
    assert r.status_code == 401, r.text
    assert len(sites.received_rows()) == 1
    r = ocm_post(sites.b, "notifications", key=sites.key_a, json=unshare)
    assert r.status_code == 201, r.text
    assert sites.received_rows() == []


# -- the invite flow -----------------------------------------------------------------------------


def invite_of(drive: Drive, user: str) -> str:
    r = drive.ocs(user, "POST", "ocm_invites")
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]["invite"]


def accept_invite(drive: Drive, user: str, invite: str) -> httpx.Response:
    return drive.ocs(user, "POST", "ocm_invites/accept", data={"invite": invite})


def contacts(drive: Drive, user: str) -> list[str]:
    r = drive.ocs(user, "GET", "ocm_contacts")
    assert r.status_code == 200, r.text
    return [c["address"] for c in r.json()["ocs"]["data"]]


def sharees(drive: Drive, user: str, search: str) -> list[str]:
    r = drive.ocs(user, "GET", "sharees", params={"search": search})
    assert r.status_code == 200, r.text
    data = r.json()["ocs"]["data"]
    return [m["value"]["shareWith"] for m in data["exact"]["remotes"] + data["remotes"]]


def test_an_accepted_invite_makes_both_users_contacts_offered_by_the_sharee_search(sites):
    invite = invite_of(sites.a, "alice")
    token, _, provider = base64.b64decode(invite).decode().rpartition("@")
    assert provider == sites.provider_a and len(token) >= 32
    r = accept_invite(sites.b, "bob", invite)
    assert r.status_code == 200, r.text
    assert r.json()["ocs"]["data"]["address"] == f"alice@{sites.provider_a}"
    assert contacts(sites.a, "alice") == [f"bob@{sites.provider_b}"]
    assert contacts(sites.b, "bob") == [f"alice@{sites.provider_a}"]
    # each finds the other by a part of the name, as a person on another site
    assert sharees(sites.a, "alice", "bo") == [f"bob@{sites.provider_b}"]
    assert sharees(sites.b, "bob", "ali") == [f"alice@{sites.provider_a}"]
    assert sharees(sites.a, "carol", "bo") == [] and contacts(sites.a, "carol") == []
    # an invite is used once: by the same user or another
    for user in ("bob", "carol"):
        r = accept_invite(sites.b, user, invite)
        assert r.status_code == 409 and "accepted already" in r.text, r.text
    assert contacts(sites.b, "carol") == []


def test_unknown_expired_forged_or_foreign_invites_are_refused_and_change_nothing(sites):
    def accepted(token: str, key: SiteKey | None = None, **changes) -> httpx.Response:
        document = {"recipientProvider": sites.provider_b, "token": token, "userID": "carol",
                    "email": "", "name": "Carol", **changes}  # fmt: skip
        return ocm_post(sites.a, "invite-accepted", key=key, json=document)

    key_b = SiteKey(str(sites.b.swan.data / "drive" / "ocm-signing-key.pem"), sites.provider_b)
    r = accepted("no-such-token", key_b)
    assert r.status_code == 400 and "does not exist" in r.json()["message"], r.text
    token = base64.b64decode(invite_of(sites.a, "carol")).decode().rpartition("@")[0]
    r = accepted(token)  # unsigned, while site B signs
    assert r.status_code == 401, r.text
    r = accepted(token, key_b, recipientProvider="evil.example")
    assert r.status_code == 403, r.text
    r = accepted(token, sites.key_a)  # site A's signature speaking for site B
    assert r.status_code == 403, r.text
    r = accepted(token, key_b, userID=["carol"])
    assert r.status_code == 400, r.text
    with sites.database(sites.a) as db:
        db.execute("UPDATE ocm_invites SET expires = 1 WHERE token = ?", (token,))
    r = accepted(token, key_b)
    assert r.status_code == 400 and "expired" in r.json()["message"], r.text
    # at the accepting side: not an invite, an invite of a site not in the mesh
    assert accept_invite(sites.b, "carol", "not base64!").status_code == 400
    foreign = base64.b64encode(b"some-token@evil.example").decode()
    r = accept_invite(sites.b, "carol", foreign)
    assert r.status_code == 403 and "not a trusted provider" in r.text, r.text
    unknown = base64.b64encode(f"no-such-token@{sites.provider_a}".encode()).decode()
    r = accept_invite(sites.b, "carol", unknown)
    assert r.status_code == 400 and "does not exist" in r.text, r.text
    assert contacts(sites.b, "carol") == [] and contacts(sites.a, "carol") == []


# -- the outgoing calls follow the open-in rules -------------------------------------------------


class Misbehaving(http.server.BaseHTTPRequestHandler):
    """A peer that redirects its discovery, answers it too slowly or with too much; or
    (``plain``) a peer that answers a discovery without signatures, and nothing else."""

    def do_GET(self):  # noqa: N802 - the standard library's name
        if self.server.mode == "slow":
            time.sleep(3)
        if self.server.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/.well-known/ocm")
            body = b""
        elif self.server.mode == "plain":
            self.send_response(200)
            port = self.server.server_address[1]
            body = json.dumps({"enabled": True, "endPoint": f"http://127.0.0.1:{port}/ocm"})
            body = body.encode()
        else:
            self.send_response(200)
            body = b'{"enabled": true, "pad": "' + b"x" * (1024 * 1024) + b'"}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def peer_server(port: int = 0, mode: str = ""):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Misbehaving)
    server.daemon_threads = True
    server.mode = mode
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def misbehaving():
    with peer_server() as server:
        yield server


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("redirect", "redirect"),
        ("slow", "did not answer within 1 s"),
        ("big", "answered more than the 256.0 KiB allowed"),
    ],
)
def test_calls_to_peers_follow_no_redirect_and_stop_at_the_time_and_size_limits(
    misbehaving, mode, problem
):
    misbehaving.mode = mode
    peer = f"127.0.0.1:{misbehaving.server_address[1]}"
    mesh = Mesh([f"http://{peer}"], public_url="http://127.0.0.1:9/services/drive", timeout=1)
    started = time.monotonic()
    with pytest.raises(PeerError, match=problem):
        mesh.discover(peer)
    assert time.monotonic() - started < 2.5


def test_calls_reach_only_trusted_providers_at_checked_addresses(misbehaving):
    port = misbehaving.server_address[1]
    # a peer named by a host name that resolves to loopback is not reached without an allowed
    # network, as "Open in SWAN" refuses it
    mesh = Mesh([f"http://localhost:{port}"], public_url="http://127.0.0.1:9/services/drive")
    with pytest.raises(PeerError, match="loopback"):
        mesh.discover(f"localhost:{port}")
    for other in ("127.0.0.1:1", f"127.0.0.1:{port}", "evil.example"):
        with pytest.raises(PeerError, match="not a trusted provider"):
            mesh.discover(other)


# -- in JupyterLab: Shared with me, and the shares of other sites under Shared/ -------------------


def notebook(source: str) -> bytes:
    cell = {"cell_type": "code", "source": source, "metadata": {}, "outputs": []}
    cell["execution_count"] = None
    document = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document).encode()


@pytest.fixture(scope="module")
def lab_b(sites):
    """bob's JupyterLab server at site B, through B's proxy."""
    log_in(sites.b.swan, "bob")
    start_server(sites.b.swan, "bob")
    return sites.b.swan


def lab(swan, method: str, path: str, **kw) -> httpx.Response:
    """A request to bob's server at site B (``path`` below /user/bob/)."""
    return user_api(swan, "bob", method, f"bob/{path}", **kw)


def contents(swan, path: str, **kw) -> httpx.Response:
    return lab(swan, "GET", f"api/contents/{quote(path)}", **kw)


def save(swan, path: str, source: str, **fields) -> httpx.Response:
    model = {"type": "notebook", "format": "json", "content": json.loads(notebook(source))}
    return lab(swan, "PUT", f"api/contents/{quote(path)}", json={**model, **fields})


def received_in_lab(swan, state: str = "all") -> list[dict]:
    r = lab(swan, "GET", "swan/api/shared-with-me", params={"state": state})
    assert r.status_code == 200, r.text
    return r.json()


def accept_in_lab(sites: Sites, swan, folder: str) -> dict:
    """bob accepts alice's share of ``folder`` in his Shared with me (the panel's calls)."""
    [pending] = [s for s in received_in_lab(swan, "pending") if s["name"] == folder]
    r = lab(swan, "POST", f"swan/api/shared-with-me/{pending['id']}/accept")
    assert r.status_code == 200, r.text
    return r.json()


def answered_at_a(sites: Sites) -> list[tuple[str, str, str]]:
    """(method, path, status) of each request site A's drive served so far."""
    log = sites.a.swan.data.parent / "access.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(m, unquote(p), status) for m, p, status in (line.split(" ") for line in lines if line)]


def requests_at_a(sites: Sites) -> list[tuple[str, str]]:
    """(method, path) of each request site A's drive served so far."""
    return [(m, p) for m, p, _ in answered_at_a(sites)]


def secret_requests_since(sites: Sites, mark: int, *, unchanged: bool = True) -> list[str]:
    """The methods of the requests that reached A's drive with a share's secret since ``mark``;
    without those answered "304 Not Modified" (the hub's looks at a file it keeps a copy of
    for code, every 10 s) unless ``unchanged``."""
    found = answered_at_a(sites)[mark:]
    return [m for m, p, s in found if "/public.php/webdav" in p and (unchanged or s != "304")]


def revoke_then_save(sites: Sites, swan, share_id: int, path: str) -> None:
    """alice revokes her share at site A: bob's next save of ``path`` in it is a 404 that says
    so at once."""
    assert sites.a.ocs("alice", "DELETE", f"shares/{share_id}").status_code == 200
    r = save(swan, path, "print('after')")
    assert r.status_code == 404, r.text
    assert "this share was removed by alice@" in r.json()["message"]
    assert "Traceback" not in r.text


def test_a_share_of_another_site_is_accepted_in_shared_with_me_and_edited_in_jupyterlab(
    sites, lab_b
):
    make_folder(sites.a, "alice", "course", {"intro.ipynb": notebook("print('from alice')")})
    r = share_folder(sites, "course", f"bob@{sites.provider_b}", 15)
    assert r.status_code == 200, r.text
    sent = r.json()["ocs"]["data"]

    [pending] = [s for s in received_in_lab(lab_b, "pending") if s["name"] == "course"]
    assert pending["kind"] == "federated" and pending["id"].startswith("ocm-")
    assert pending["owner"] == f"alice@{sites.provider_a}" and pending["location"] is None
    assert "secret" not in json.dumps(pending).lower()
    assert contents(lab_b, "Shared/course").status_code == 404  # nothing before bob consents

    accepted = accept_in_lab(sites, lab_b, "course")
    assert accepted["state"] == "accepted" and accepted["location"] == "Shared/course"
    assert (
        sites.a.ocs("alice", "GET", f"shares/{sent['id']}").json()["ocs"]["data"][0]["state"] == 0
    )

    r = contents(lab_b, "Shared")
    assert r.status_code == 200, r.text
    [course] = [m for m in r.json()["content"] if m["name"] == "course"]
    assert course["type"] == "directory" and course["path"] == "Shared/course"
    assert course["writable"] is True

    mark = len(requests_at_a(sites))
    r = contents(lab_b, "Shared/course")
    assert r.status_code == 200, r.text
    assert [m["path"] for m in r.json()["content"]] == ["Shared/course/intro.ipynb"]
    assert secret_requests_since(sites, mark) == ["PROPFIND"]  # listing: one PROPFIND

    mark = len(requests_at_a(sites))
    r = contents(lab_b, "Shared/course/intro.ipynb", params={"type": "notebook"})
    assert r.status_code == 200, r.text
    opened = r.json()
    assert opened["content"]["cells"][0]["source"] == "print('from alice')"
    assert opened["writable"] is True and opened["etag"]
    assert sorted(secret_requests_since(sites, mark)) == ["GET", "PROPFIND"]  # open: one each

    r = save(lab_b, "Shared/course/intro.ipynb", "print('answer of bob')", etag=opened["etag"])
    assert r.status_code == 200, r.text
    stored = (sites.a.space("alice") / "course" / "intro.ipynb").read_text()
    assert "answer of bob" in stored  # the teacher sees it at site A

    # alice changes it meanwhile: bob's save on his old version is a conflict, not an overwrite
    assert sites.a.dav(
        "alice", "PUT", "course/intro.ipynb", content=notebook("v2")
    ).status_code in (
        200,
        201,
        204,
    )
    r = save(lab_b, "Shared/course/intro.ipynb", "print('late')", etag=r.json()["etag"])
    assert r.status_code == 409, r.text
    assert "changed by someone else" in r.json()["message"] and r.json()["etag"]
    assert json.loads((sites.a.space("alice") / "course" / "intro.ipynb").read_bytes()) == (
        json.loads(notebook("v2"))
    )
    r = save(
        lab_b, "Shared/course/intro.ipynb", "print('late')", etag=opened["etag"], on_conflict="copy"
    )
    assert r.status_code == 200, r.text
    copy = r.json()["path"]
    assert copy.startswith("Shared/course/intro (bob's copy, conflict ")
    assert (sites.a.space("alice") / "course" / copy.rpartition("/")[2]).exists()

    # revoked at site A: the open notebook's next save says so, and the folder goes
    revoke_then_save(sites, lab_b, sent["id"], "Shared/course/intro.ipynb")
    assert contents(lab_b, "Shared/course").status_code == 404
    assert "after" not in (sites.a.space("alice") / "course" / "intro.ipynb").read_text()
    assert "course" not in [s["name"] for s in received_in_lab(lab_b)]


def test_a_read_only_share_of_another_site_refuses_saves_as_a_local_one_does(sites, lab_b):
    make_folder(sites.a, "alice", "handout", {"sheet.ipynb": notebook("print(1)")})
    assert share_folder(sites, "handout", f"bob@{sites.provider_b}", 1).status_code == 200
    accept_in_lab(sites, lab_b, "handout")
    # the same at site B: carol's folder shared read-only with bob
    make_folder(sites.b, "carol", "local-handout", {"sheet.ipynb": notebook("print(1)")})
    form = {"path": "local-handout", "shareType": 0, "shareWith": "bob", "permissions": 1}
    local = sites.b.ocs("carol", "POST", "shares", data=form).json()["ocs"]["data"]
    assert lab(lab_b, "POST", f"swan/api/shared-with-me/{local['id']}/accept").status_code == 200

    listing = {m["name"]: m for m in contents(lab_b, "Shared").json()["content"]}
    assert listing["handout"]["writable"] is False
    opened = contents(lab_b, "Shared/handout/sheet.ipynb").json()
    assert opened["writable"] is False
    refused = save(lab_b, "Shared/handout/sheet.ipynb", "print(2)", etag=opened["etag"])
    refused_here = save(lab_b, "Shared/local-handout/sheet.ipynb", "print(2)")
    assert refused.status_code == refused_here.status_code == 403, refused.text
    said = refused.json()["message"].replace("Shared/handout", "Shared/X")
    assert said == refused_here.json()["message"].replace("Shared/local-handout", "Shared/X")
    assert "print(2)" not in (sites.a.space("alice") / "handout" / "sheet.ipynb").read_text()

    # cloned into bob's own space at site B (creating only), and his to change there
    [shared] = [s for s in received_in_lab(lab_b, "accepted") if s["name"] == "handout"]
    r = lab(lab_b, "POST", f"swan/api/shared-with-me/{shared['id']}/clone", json={})
    assert r.status_code == 201, r.text
    assert r.json()["path"] == "handout"
    clone = sites.b.space("bob") / "handout" / "sheet.ipynb"
    assert json.loads(clone.read_bytes()) == json.loads(notebook("print(1)"))
    assert save(lab_b, "handout/sheet.ipynb", "print(3)").status_code == 200
    # a move between the share and the own space is refused, nothing moved
    moved = lab(
        lab_b,
        "PATCH",
        f"api/contents/{quote('Shared/handout/sheet.ipynb')}",
        json={"path": "sheet.ipynb"},
    )
    assert moved.status_code == 403 and "copy it" in moved.json()["message"]
    assert (sites.a.space("alice") / "handout" / "sheet.ipynb").exists()


def test_a_share_of_another_site_named_as_a_local_one_gets_a_name_of_its_own(sites, lab_b):
    make_folder(sites.b, "carol", "lab", {})
    form = {"path": "lab", "shareType": 0, "shareWith": "bob", "permissions": 1}
    local = sites.b.ocs("carol", "POST", "shares", data=form).json()["ocs"]["data"]
    assert lab(lab_b, "POST", f"swan/api/shared-with-me/{local['id']}/accept").status_code == 200
    make_folder(sites.a, "alice", "lab", {"a.txt": b"from site A"})
    assert share_folder(sites, "lab", f"bob@{sites.provider_b}", 1).status_code == 200
    accepted = accept_in_lab(sites, lab_b, "lab")
    assert accepted["location"] == "Shared/lab (2)"
    names = [m["name"] for m in contents(lab_b, "Shared").json()["content"]]
    assert names.count("lab") == 1 and "lab (2)" in names
    r = contents(lab_b, "Shared/lab (2)/a.txt")
    assert r.status_code == 200 and r.json()["content"] == "from site A"
    assert contents(lab_b, "Shared/lab").json()["content"] == []  # carol's, empty


def share_of_a_site_that_is_down(sites: Sites, name: str, resource_type: str = "folder") -> None:
    """dave of the site that is down shares ``name`` (to read and write) with bob of site B,
    sent while his site was up for a moment (it does not sign its requests)."""
    dead = sites.dead
    document = new_share(
        sites,
        name=name,
        providerId=f"dead-{name}",
        owner=f"dave@{dead}",
        sender=f"dave@{dead}",
        resourceType=resource_type,
        protocol={
            "name": "multi",
            "webdav": {
                "uri": f"http://{dead}/services/drive/public.php/webdav/",
                "sharedSecret": f"a-secret-of-a-site-that-is-down-{name}-0123",
                "permissions": ["read", "write"],
            },
        },
    )
    with peer_server(int(dead.rpartition(":")[2]), "plain"):
        assert ocm_post(sites.b, "shares", key=None, json=document).status_code == 201


def test_a_share_whose_site_is_down_answers_503_and_changes_nothing(sites, lab_b):
    dead = sites.dead
    share_of_a_site_that_is_down(sites, "away")
    accepted = accept_in_lab(sites, lab_b, "away")  # telling dave's site fails: logged only
    assert accepted["location"] == "Shared/away"

    listing = contents(lab_b, "Shared")
    assert listing.status_code == 200 and "away" in [m["name"] for m in listing.json()["content"]]
    for r in (contents(lab_b, "Shared/away"), save(lab_b, "Shared/away/new.ipynb", "1")):
        assert r.status_code == 503, r.text
        message = r.json()["message"]
        assert f"the site of dave@{dead}, who shares this folder, cannot be reached" in message
        assert "Traceback" not in r.text
    assert not (sites.b.space("bob") / "Shared").exists()  # nothing made in bob's own space


def test_the_drive_gives_a_shares_secret_only_to_its_recipients_token(sites, lab_b):
    mounts = sites.b.ocs("bob", "GET", "remote_shares/mounts").json()["ocs"]["data"]
    assert mounts and all(m["shared_secret"] and m["webdav_uri"] for m in mounts)
    assert sites.b.ocs("carol", "GET", "remote_shares/mounts").json()["ocs"]["data"] == []
    listed = sites.b.ocs("bob", "GET", "remote_shares").json()["ocs"]["data"]
    assert all("shared_secret" not in s for s in listed)


# -- kernels and terminals ------------------------------------------------------------------------


@pytest.mark.skipif(bool(missing_parts()), reason=f"cannot mount here: {missing_parts()}")
def test_kernels_see_folders_of_another_site_and_write_as_each_share_allows(sites, lab_b):
    csv = b"time,energy\n1,10.5\n"
    make_folder(sites.a, "alice", "physics", {"events.csv": csv, "run.ipynb": notebook("1")})
    assert share_folder(sites, "physics", f"bob@{sites.provider_b}", 15).status_code == 200
    make_folder(sites.a, "alice", "tables", {"table.csv": b"x\n1\n"})
    assert share_folder(sites, "tables", f"bob@{sites.provider_b}", 1).status_code == 200
    accept_in_lab(sites, lab_b, "physics")
    accept_in_lab(sites, lab_b, "tables")
    shared = os.path.join(mount_point(lab_b, "bob"), "Shared")
    for name in ("physics/events.csv", "tables/table.csv"):
        wait_for(f"{name} for code", lambda n=name: os.path.isfile(os.path.join(shared, n)))

    # a kernel next to the notebook of the other site reads the data beside it ...
    kernel = start_kernel(lab_b, "bob", "Shared/physics/run.ipynb")
    code = "import os\nprint(os.path.basename(os.getcwd()))\nprint(open('events.csv').read())"
    assert execute(lab_b, "bob", kernel, code) == (f"physics\n{csv.decode()}\n", "")
    # ... writes into the edit share, and alice has it at site A ...
    code = "open('result.txt', 'w').write('from bob at site B')"
    assert execute(lab_b, "bob", kernel, code)[1] == ""
    at_a = sites.a.space("alice") / "physics" / "result.txt"
    wait_for("result.txt at site A", lambda: at_a.is_file() and at_a.read_text().endswith("B"))
    # ... and over a change at site A it never saw, keeps that change as a conflict copy there
    code = "f = open('events.csv', 'r+')\nprint(f.read(4))"
    assert execute(lab_b, "bob", kernel, code) == ("time\n", "")
    at_site_a = b"time,energy\n1,10.5\n2,11.0\n"
    assert sites.a.dav("alice", "PUT", "physics/events.csv", content=at_site_a).status_code == 204
    code = "f.seek(0)\nf.write('from the kernel\\n')\nf.truncate()\nf.close()"
    assert execute(lab_b, "bob", kernel, code) == ("", "")
    physics = sites.a.space("alice") / "physics"
    wait_for(
        "the kernel's events.csv at site A",
        lambda: (physics / "events.csv").read_bytes() == b"from the kernel\n",
    )
    kept = list(physics.glob("events (changed elsewhere, conflict *).csv"))
    assert [p.read_bytes() for p in kept] == [at_site_a]
    # ... and cannot write into the view-only one: nothing reaches site A
    out, error = execute(lab_b, "bob", kernel, "open('../tables/mine.txt', 'w').write('no')")
    assert error.startswith(("OSError", "PermissionError")), (out, error)
    assert not (sites.a.space("alice") / "tables" / "mine.txt").exists()
    # the mounts hold the share's secret in a private file only, never in a command line
    secrets_seen = [m["shared_secret"] for m in mounts_of(sites, "bob")]
    for pid, (_, _, command) in _processes().items():
        assert not any(secret in command for secret in secrets_seen), pid

    # revoked at site A: gone for code within seconds
    [sent] = [
        s
        for s in sites.a.ocs("alice", "GET", "shares").json()["ocs"]["data"]
        if s["path"].strip("/") == "physics"
    ]
    assert sites.a.ocs("alice", "DELETE", f"shares/{sent['id']}").status_code == 200
    events = os.path.join(shared, "physics", "events.csv")
    wait_for("the revoked share gone for code", lambda: not os.path.exists(events), timeout=30)


def mounts_of(sites: Sites, user: str) -> list[dict]:
    r = sites.b.ocs(user, "GET", "remote_shares/mounts")
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]
