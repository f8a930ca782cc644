"""Open in SWAN: link click -> notebook URL for a 1 MB notebook served on loopback, through the
real hub, proxy and drive of `swan up` (the drive as the servers' storage, its default), with the
user's server running and with it stopped (spawn included), and for a public link of the drive
itself. Median of several runs each.

Baseline, measured in the same run: what the same user would do by hand with the server running
(download the notebook, upload it through /api/contents, open the notebook page).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from harness.drive import Drive  # noqa: E402
from harness.open_servers import SourceServer, reply  # noqa: E402
from harness.swan import log_in, start_swan  # noqa: E402
from test_open_in_hub import (  # noqa: E402
    ADMIN_CONFIG,
    SERVER_CONFIG,
    SOURCE,
    browser_login,
    confirm,
    follow_link,
    notebook,
)

RUNS_RUNNING = 9
RUNS_STOPPED = 3
NOTEBOOK_BYTES = 1024 * 1024


def one_megabyte_notebook(i: int) -> bytes:
    # A valid notebook of 1 MiB: one cell whose metadata carries the padding.
    return notebook(f"print({i})", padding=NOTEBOOK_BYTES - 250).encode()


def click(client: httpx.Client, url: str) -> float:
    """Seconds from the click on an open-in link to the notebook page being served."""
    start = time.perf_counter()
    page = follow_link(
        client, "/hub/user-redirect/swan/open?" + urlencode({"url": url}), "/swan/open"
    )
    done = confirm(client, page)[-1]
    assert done["event"] == "done", done
    assert client.get(done["url"]).status_code == 200
    return time.perf_counter() - start


def by_hand(client: httpx.Client, url: str, name: str) -> float:
    start = time.perf_counter()
    data = httpx.get(url, timeout=60).content
    xsrf = client.cookies.get("_xsrf", path="/user/alice/") or ""
    r = client.put(
        f"/user/alice/api/contents/{name}",
        json={"type": "notebook", "format": "json", "content": json.loads(data)},
        headers={"X-XSRFToken": xsrf},
    )
    assert r.status_code in (200, 201), r.text
    assert client.get(f"/user/alice/lab/tree/{name}").status_code == 200
    return time.perf_counter() - start


def drive_link(swan, i: int) -> str:
    """A public link of a new 1 MB notebook in alice's space on the drive."""
    name = f"shared-{i}.ipynb"
    (swan.data / "users" / "alice" / name).write_bytes(one_megabyte_notebook(i))
    r = Drive(swan).ocs("alice", "POST", "shares", data={"path": f"/{name}", "shareType": "3"})
    r.raise_for_status()
    return r.json()["ocs"]["data"]["url"]


def stop_server(swan, name: str) -> None:
    headers = {"Authorization": f"token {swan.tokens[name]}"}
    httpx.delete(f"{swan.url}/hub/api/users/{name}/server", headers=headers, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        model = httpx.get(f"{swan.url}/hub/api/users/{name}", headers=headers, timeout=10).json()
        if not model["servers"]:
            return
        time.sleep(0.2)
    raise RuntimeError("the server did not stop")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="swan-bench-openin-") as tmp:
        workdir = Path(tmp)
        config_dir = workdir / "server-config"
        config_dir.mkdir()
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
        (workdir / "admin_config.py").write_text(ADMIN_CONFIG.format(config_dir=str(config_dir)))
        source = SourceServer(SOURCE)
        for i in range(RUNS_RUNNING + RUNS_STOPPED + 2):
            source.routes[f"/nb{i}.ipynb"] = reply(200, one_megabyte_notebook(i))
        swan = start_swan(workdir, "-f", str(workdir / "admin_config.py"))
        try:
            log_in(swan, "alice")
            client = browser_login(swan, "alice")
            # Warm up: the first click spawns the server; not counted.
            click(client, source.url("/nb0.ipynb"))
            running = [
                click(client, source.url(f"/nb{i}.ipynb")) for i in range(1, 1 + RUNS_RUNNING)
            ]
            hand = [
                by_hand(client, source.url(f"/nb{i}.ipynb"), f"by-hand-{i}.ipynb")
                for i in range(1, 1 + RUNS_RUNNING)
            ]
            drive_links = [click(client, drive_link(swan, i)) for i in range(1, 1 + RUNS_RUNNING)]
            stopped = []
            for i in range(1 + RUNS_RUNNING, 1 + RUNS_RUNNING + RUNS_STOPPED):
                stop_server(swan, "alice")
                stopped.append(click(client, source.url(f"/nb{i}.ipynb")))
        finally:
            swan.kill_everything()
            source.stop()

    size = len(one_megabyte_notebook(1)) / 1024 / 1024
    base = statistics.median(hand)
    print(f"\nOpen in SWAN, link click -> notebook page, {size:.2f} MB notebook on loopback")
    print(f"{'case':<44}{'median':>10}{'runs':>6}{'vs by hand':>12}")
    rows = [
        ("by hand: download + upload + open (baseline)", hand),
        ("open-in link, server running", running),
        ("open-in drive public link, server running", drive_links),
        ("open-in link, server stopped (spawn incl.)", stopped),
    ]
    for label, times in rows:
        median = statistics.median(times)
        print(f"{label:<44}{median:>9.3f}s{len(times):>6}{median / base:>11.2f}x")
    goal = statistics.median(running)
    print(f"goal <= 0.5 s with the server running: {'met' if goal <= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
