"""Open Cloud Mesh between two `swan up` sites on one machine (two ports of 127.0.0.1, trusted to
each other): how long a share takes to reach the other site, what reading a shared folder with
its secret costs the other site, what the recipient's JupyterLab pays to list the folder and
open a notebook in it (`Shared/<name>`, through the other site's WebDAV) or a notebook shared on
its own (the file `Shared/<name>`), and the view-only page of the folder at the sender's site
(OCM `webapp`).

Baselines, measured in the same run: a share with a user of the same site (OCS type 0, nothing
leaves the drive), the owner's own PROPFIND of the same folder, the same folder and notebook in
the recipient's own space, and the page of a public link to the same folder (against its
view-only page). The issue's budgets: a share reaches the peer in < 1 s on loopback; opening a
federated notebook is one PROPFIND and one GET to the other site, listing a federated folder one
PROPFIND (counted in site A's access log). Medians of several rounds; the first federated share
(with the peer's discovery) is shown on its own.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from harness.drive import PROPFIND_BODY, answering_drive  # noqa: E402
from harness.swan import log_in, start_server, start_swan, user_api  # noqa: E402

from swan_hub.cli import free_port  # noqa: E402

ROUNDS = 15
ENTRIES = 200


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def main(rounds: int = ROUNDS) -> dict:
    port_a, port_b = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="swan-bench-ocm-") as tmp:
        started = []
        try:
            for name, port, peer in (("a", port_a, port_b), ("b", port_b, port_a)):
                workdir = Path(tmp) / name
                config = workdir / "swan-data" / "drive" / "drive_config.py"
                config.parent.mkdir(parents=True)
                log = workdir / "access.log"
                config.write_text(f"c.DriveService.access_log = {str(log)!r}\n")
                swan = start_swan(workdir, "--ocm-peer", f"127.0.0.1:{peer}", port=port)
                started.append(swan)
            a, b = (answering_drive(s) for s in started)
            return measure(a, b, port_b, rounds)
        finally:
            for swan in started:
                swan.kill_everything()


def measure(a, b, port_b: int, rounds: int) -> dict:
    space = a.space("alice")
    for i in range(2 * rounds + 1):
        assert a.dav("alice", "MKCOL", f"class {i:02d}").status_code == 201
    listed = space / "class 00"
    for i in range(ENTRIES):
        (listed / f"notebook {i:03d}.ipynb").write_text('{"cells": []}')
    (listed / "open me.ipynb").write_bytes(NOTEBOOK)

    def share(i: int, share_type: int, recipient: str) -> dict:
        form = {"path": f"class {i:02d}", "shareType": share_type, "shareWith": recipient}
        r = a.ocs("alice", "POST", "shares", data={**form, "permissions": 1})
        assert r.status_code == 200, r.text
        return r.json()["ocs"]["data"]

    remote = f"bob@127.0.0.1:{port_b}"
    first_ms, _ = timed(lambda: share(0, 6, remote))
    local = [timed(lambda i=i: share(i, 0, "bob"))[0] for i in range(1, rounds + 1)]
    federated = [
        timed(lambda i=i: share(i, 6, remote))[0] for i in range(rounds + 1, 2 * rounds + 1)
    ]
    pending = b.ocs("bob", "GET", "remote_shares/pending").json()["ocs"]["data"]
    assert len(pending) == rounds + 1, len(pending)

    # the other site reads the shared folder of 200 notebooks: one PROPFIND with the secret
    first = min(pending, key=lambda s: s["id"])
    with sqlite3.connect(b.swan.data / "drive" / "drive.sqlite") as db:
        secret = db.execute(
            "SELECT shared_secret FROM received_shares WHERE id = ?", (first["id"],)
        ).fetchone()[0]
    body = {"headers": {"Depth": "1"}, "content": PROPFIND_BODY, "timeout": 60}
    with httpx.Client(headers={"Authorization": f"Bearer {secret}"}) as recipient:
        url = f"{a.base}/public.php/webdav/"
        own_url = f"{a.base}/remote.php/dav/files/alice/class%2000/"
        for _ in range(3):
            recipient.request("PROPFIND", url, **body)
        by_secret = [
            timed(lambda: recipient.request("PROPFIND", url, **body))[0] for _ in range(rounds)
        ]
        owner = a.client("alice")
        for _ in range(3):
            owner.request("PROPFIND", own_url, **body)
        by_owner = [
            timed(lambda: owner.request("PROPFIND", own_url, **body))[0] for _ in range(rounds)
        ]

    # the recipient looks at the same folder on the sender's view-only page (OCM webapp),
    # against a public link's page of it
    link = a.ocs("alice", "POST", "shares", data={"path": "class 00", "shareType": 3})
    assert link.status_code == 200, link.text
    pages = {"link": link.json()["ocs"]["data"]["url"], "webapp": first["webapp_url"]}
    page_ms = {}
    with httpx.Client(timeout=60) as browser:
        for name, page in pages.items():
            for _ in range(3):
                assert browser.get(page).status_code == 200
            page_ms[name] = [timed(lambda p=page: browser.get(p))[0] for _ in range(rounds)]

    results = {
        "share (OCS create)": (statistics.median(local), statistics.median(federated)),
        f"PROPFIND Depth 1, {ENTRIES} entries": (
            statistics.median(by_owner),
            statistics.median(by_secret),
        ),
        f"folder page, {ENTRIES} (link; view-only)": (
            statistics.median(page_ms["link"]),
            statistics.median(page_ms["webapp"]),
        ),
    }
    # a single notebook shared on its own, opened as Shared/open me.ipynb
    form = {"path": "class 00/open me.ipynb", "shareType": 6, "shareWith": remote}
    assert a.ocs("alice", "POST", "shares", data={**form, "permissions": 1}).status_code == 200
    pending = b.ocs("bob", "GET", "remote_shares/pending").json()["ocs"]["data"]
    [single] = [s["id"] for s in pending if s["name"] == "/open me.ipynb"]

    lab, counts = in_jupyterlab(a, b, (first["id"], single), rounds)
    results.update(lab)
    print("\nOpen Cloud Mesh between two swan up sites on loopback (median ms)")
    print(f"  {'operation':<40} {'same site':>10} {'federated':>10} {'ratio':>7}")
    for name, (base, fed) in results.items():
        print(f"  {name:<40} {base:>10.1f} {fed:>10.1f} {fed / base:>6.2f}x")
    print(f"  first federated share (with the peer's discovery): {first_ms:.1f} ms")
    worst = max(first_ms, max(federated))
    print(f"  slowest share to reach the peer {worst:.1f} ms (budget < 1000 ms: "
          f"{'met' if worst < 1000 else 'NOT met'})")  # fmt: skip
    for name, (propfinds, gets) in counts.items():
        print(f"  {name}: {propfinds} PROPFIND + {gets} GET at the other site")
    return {"results_ms": results, "first_ms": first_ms, "slowest_ms": worst, "requests": counts}


NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def secret_requests(a) -> list[str]:
    """The methods of the requests site A's drive served with a share's secret, so far."""
    lines = (a.swan.data.parent / "access.log").read_text().splitlines()
    return [line.split(" ")[0] for line in lines if "/public.php/webdav" in line]


def in_jupyterlab(a, b, received_ids: tuple[int, ...], rounds: int) -> tuple[dict, dict]:
    """bob at site B lists the shared folder and opens a notebook in it, and the notebook
    shared on its own, through his own server, against the same folder and notebook in his
    own space."""
    log_in(b.swan, "bob")
    start_server(b.swan, "bob")

    def get(path: str, **params) -> httpx.Response:
        r = user_api(b.swan, "bob", "GET", f"bob/api/contents/{path}", params=params)
        assert r.status_code == 200, r.text
        return r

    for received_id in received_ids:
        accepted = user_api(
            b.swan, "bob", "POST", f"bob/swan/api/shared-with-me/ocm-{received_id}/accept"
        )
        assert accepted.status_code == 200, accepted.text
    own = b.space("bob") / "own class"
    own.mkdir()
    for i in range(ENTRIES):
        (own / f"notebook {i:03d}.ipynb").write_text('{"cells": []}')
    (own / "open me.ipynb").write_bytes(NOTEBOOK)

    results, counts = {}, {}
    for name, own_path, shared_path, params in (
        (f"list a folder of {ENTRIES} (JupyterLab)", "own class", "Shared/class 00", {}),
        (
            "open a notebook (JupyterLab)",
            "own class/open me.ipynb",
            "Shared/class 00/open me.ipynb",
            {"type": "notebook"},
        ),
        (
            "open a notebook shared alone (JupyterLab)",
            "own class/open me.ipynb",
            "Shared/open me.ipynb",
            {"type": "notebook"},
        ),
    ):
        for path in (own_path, shared_path):
            for _ in range(3):
                get(path, **params)
        before = secret_requests(a)
        get(shared_path, **params)
        made = secret_requests(a)[len(before) :]
        counts[name] = (made.count("PROPFIND"), made.count("GET"))
        mine = [timed(lambda p=own_path, q=params: get(p, **q))[0] for _ in range(rounds)]
        theirs = [timed(lambda p=shared_path, q=params: get(p, **q))[0] for _ in range(rounds)]
        results[name] = (statistics.median(mine), statistics.median(theirs))
    return results, counts


if __name__ == "__main__":
    main()
