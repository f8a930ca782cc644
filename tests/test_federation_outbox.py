"""Notifications to another site that was down reach it later: site A (a real `swan up`) revokes a
share with a user of site B while B is stopped; A keeps the notification in its database, sends
it again with growing pauses (short ones here, `ocm_retry_pause`), also after A itself was
restarted, and B's received share ends once B is back. The newest notification about a share
replaces one not delivered; a site that refuses one (a 4xx) is not asked again; one not
delivered within the time allowed is given up.
"""

from __future__ import annotations

import json
import time

import pytest
from harness.drive import answering_drive
from harness.lab_browser import eventually
from harness.swan import SWAN_UP_MARKS, Swan, start_swan
from test_federation import make_folder, pending_at_b, share_folder, two_sites

from swan_hub.cli import free_port
from swan_hub.drive.mesh import Mesh
from swan_hub.drive.outbox import Outbox, notification_key
from swan_hub.drive.state import DriveState

pytestmark = SWAN_UP_MARKS

RETRY = "c.DriveService.ocm_retry_pause = 0.5\nc.DriveService.ocm_retry_longest_pause = 2\n"


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    with two_sites(tmp_path_factory, RETRY) as found:
        yield found


def restarted(swan: Swan, port: int, *peers: str) -> Swan:
    """``swan`` started again on its port with its data (after `kill_everything`)."""
    args = [arg for peer in peers for arg in ("--ocm-peer", peer)]
    return start_swan(swan.data.parent, *args, users="alice,bob,carol", port=port)


def kept(sites) -> list[dict]:
    with sites.database(sites.a) as db:
        return [json.loads(r["document"]) for r in db.execute("SELECT * FROM ocm_outbox")]


def test_a_revoke_while_the_other_site_is_down_reaches_it_when_it_is_back(sites):
    make_folder(sites.a, "alice", "while-down", {"f.txt": b"1"})
    r = share_folder(sites, "while-down", f"bob@{sites.provider_b}", 1)
    assert r.status_code == 200, r.text
    share_id = r.json()["ocs"]["data"]["id"]
    [pending] = [s for s in pending_at_b(sites) if s["name"] == "/while-down"]
    assert sites.b.ocs("bob", "POST", f"remote_shares/pending/{pending['id']}").is_success
    port_a, port_b = (int(p.rpartition(":")[2]) for p in (sites.provider_a, sites.provider_b))

    sites.b.swan.kill_everything()
    # changed, then revoked: both stand at A at once; only the newest is kept to send
    r = sites.a.ocs("alice", "PUT", f"shares/{share_id}", data={"permissions": 15})
    assert r.status_code == 200, r.text
    assert [d["notificationType"] for d in kept(sites)] == ["SHARE_CHANGE_PERMISSION"]
    assert sites.a.ocs("alice", "DELETE", f"shares/{share_id}").status_code == 200
    assert [d["notificationType"] for d in kept(sites)] == ["SHARE_UNSHARED"]
    assert [r for r in sites.federated_rows() if r["path"] == "while-down"] == []
    tried_again = f"SHARE_UNSHARED to {sites.provider_b} failed (try 2)"
    eventually(lambda: tried_again in sites.a.swan.output())

    # A restarted too: what it keeps is in its database
    sites.a.swan.kill_everything()
    sites.a = answering_drive(restarted(sites.a.swan, port_a, sites.provider_b, sites.dead))
    assert [d["notificationType"] for d in kept(sites)] == ["SHARE_UNSHARED"]
    assert [r["name"] for r in sites.received_rows()] == ["while-down"]  # B, stopped

    sites.b = answering_drive(restarted(sites.b.swan, port_b, sites.provider_a, sites.dead))
    eventually(lambda: sites.received_rows() == [], timeout=30)
    eventually(lambda: kept(sites) == [])
    assert [s for s in sites.b.ocs("bob", "GET", "remote_shares").json()["ocs"]["data"]] == []


def test_pauses_grow_to_the_longest_and_a_notification_is_given_up_in_the_end(tmp_path):
    state = DriveState(str(tmp_path / "drive.sqlite"))
    dead = f"127.0.0.1:{free_port()}"
    mesh = Mesh([f"http://{dead}"], public_url="http://127.0.0.1:1/services/drive")
    outbox = Outbox(state, mesh, first_pause=10, longest_pause=3600, give_up_after=3600)
    assert [outbox.pause(n) for n in (1, 2, 3, 9, 30)] == [10, 20, 40, 2560, 3600]

    document = {"notificationType": "SHARE_UNSHARED", "resourceType": "folder",
                "providerId": "7", "notification": {"sharedSecret": "s3cret"}}  # fmt: skip
    assert outbox.notify(dead, document) is False
    [row] = state._db().execute("SELECT * FROM ocm_outbox").fetchall()
    assert row["attempts"] == 1 and 9 < row["next_try"] - time.time() <= 10
    outbox.send_due()  # not due yet: not tried
    assert state.kept_notification(notification_key(dead, document))["attempts"] == 1

    # due, and past the time allowed: tried once more, then given up
    state._db().execute("UPDATE ocm_outbox SET next_try = 0, first_tried = 0")
    outbox.send_due()
    assert state.kept_notification(notification_key(dead, document)) is None


def test_a_notification_the_other_site_refuses_is_not_sent_again(sites, tmp_path):
    state = DriveState(str(tmp_path / "drive.sqlite"))
    # a site B does not trust: B answers 403, which says the notification will never do
    mesh = Mesh([f"http://{sites.provider_b}"], public_url="http://127.0.0.1:1/services/drive")
    outbox = Outbox(state, mesh)
    document = {"notificationType": "SHARE_UNSHARED", "resourceType": "folder",
                "providerId": "8", "notification": {"sharedSecret": "unknown"}}  # fmt: skip
    assert outbox.notify(sites.provider_b, document) is False
    assert state._db().execute("SELECT count(*) FROM ocm_outbox").fetchone()[0] == 0
