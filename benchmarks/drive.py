"""The ownCloud layer of the drive against plain WsgiDAV on the same files, in one run: PROPFIND
Depth 1 of a folder of 1,000 entries, and a 100 MB PUT and GET.

The drive runs as `swan up` starts it (real hub for the token check, cached after the first
request) and is called on its own port, so the proxy's cost is not counted; plain WsgiDAV serves
the same space with its FilesystemProvider on cheroot. Prints medians and the drive's ratio.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ENTRIES = 1000
BIG = 100 * 1024 * 1024
PROPFIND = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    "<d:prop><d:resourcetype/><d:getlastmodified/><d:getcontentlength/><d:getetag/>"
    "<oc:fileid/><oc:id/><oc:permissions/><oc:size/></d:prop></d:propfind>"
)
PLAIN_WSGIDAV = textwrap.dedent(
    """
    import sys
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp
    app = WsgiDAVApp({
        "provider_mapping": {"/": sys.argv[1]},
        "simple_dc": {"user_mapping": {"*": True}},
        "http_authenticator": {"domain_controller": None},
        "verbose": 0, "logging": {"enable": False},
        "dir_browser": {"enable": False}, "lock_storage": True,
    })
    server = wsgi.Server(("127.0.0.1", int(sys.argv[2])), app, numthreads=16)
    server.max_request_body_size = 0
    server.start()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, **kw) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.request("OPTIONS", url, timeout=2, **kw).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def stop_leftovers(marker: str) -> None:
    """Stop processes the hub started for this run that outlived it (the drive service)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and int(pid) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)


def make_folder(root: Path) -> None:
    root.mkdir(parents=True)
    for i in range(ENTRIES):
        if i % 10 == 9:
            (root / f"folder {i:04d}").mkdir()
        else:
            (root / f"notebook {i:04d}.ipynb").write_text('{"cells": []}')


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(client: httpx.Client, base: str, rounds: int) -> dict[str, float]:
    def propfind() -> None:
        r = client.request("PROPFIND", f"{base}/listing/", headers={"Depth": "1"}, content=PROPFIND)
        assert r.status_code == 207 and r.text.count("<ns0:response>") == ENTRIES + 1, r.status_code

    payload = os.urandom(1024 * 1024) * (BIG // (1024 * 1024))

    def put() -> None:
        assert client.put(f"{base}/big.bin", content=payload).status_code in (201, 204)

    def get() -> None:
        with client.stream("GET", f"{base}/big.bin") as r:
            assert sum(len(c) for c in r.iter_bytes(1 << 20)) == BIG

    for _ in range(3):
        propfind()
    results = {"PROPFIND Depth 1, 1,000 entries": [timed(propfind) for _ in range(rounds)]}
    results["PUT 100 MB"] = [timed(put) for _ in range(3)]
    results["GET 100 MB"] = [timed(get) for _ in range(3)]
    return {name: statistics.median(times) * 1000 for name, times in results.items()}


@contextlib.contextmanager
def running_hub(
    tmp: Path, users: tuple[str, ...] = ("alice",), drive_config: str = ""
) -> Iterator[tuple[str, dict[str, str], Path]]:
    """`swan up` with ``users`` in ``tmp`` (the drive configured by ``drive_config``): (the
    drive's own URL http://127.0.0.1:<port>/services/drive, each user's hub token, the users'
    spaces folder); stopped after."""
    repo = Path(__file__).resolve().parent.parent
    swan = Path(sys.executable).with_name("swan")
    data = tmp / "data"
    log = tmp / "swan.log"
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(repo))
    (data / "drive").mkdir(parents=True, exist_ok=True)
    (data / "drive" / "drive_config.py").write_text(drive_config)
    with open(log, "wb") as out:
        hub = subprocess.Popen(
            [str(swan), "up", "--port", str(port), "--data-dir", str(data)]
            + ["--users", ",".join(users)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not re.search(r"SWAN drive on (http://\S+?)/ ", log.read_text()):
            if time.monotonic() > deadline or hub.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:])
            time.sleep(0.3)
        drive_url = re.search(r"SWAN drive on (http://\S+?)/ ", log.read_text())[1]
        while httpx.get(f"http://127.0.0.1:{port}/hub/api", timeout=5).status_code != 200:
            time.sleep(0.3)
        passwords = (data / "hub" / "demo-passwords.txt").read_text()
        tokens = {}
        for user in users:
            password = passwords.split(f"{user} ")[1].split()[0]
            tokens[user] = httpx.post(
                f"http://127.0.0.1:{port}/hub/api/users/{user}/tokens",
                json={"auth": {"username": user, "password": password}},
                timeout=30,
            ).json()["token"]
        first = users[0]
        wait_for(f"{drive_url}/remote.php/dav/files/{first}/", hub, auth=(first, tokens[first]))
        yield drive_url, tokens, data / "users"
    finally:
        os.killpg(hub.pid, signal.SIGTERM)
        hub.wait(timeout=60)
        stop_leftovers(str(data))


@contextlib.contextmanager
def running_drive(tmp: Path) -> Iterator[tuple[str, str, Path]]:
    """`swan up` with the one user alice, in ``tmp``: (the drive's own URL
    http://127.0.0.1:<port>/services/drive, alice's hub token, alice's space); stopped after."""
    with running_hub(tmp) as (drive_url, tokens, spaces):
        yield drive_url, tokens["alice"], spaces / "alice"


def main(rounds: int = 15) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="swan-bench-drive-") as tmp,
        running_drive(Path(tmp)) as (drive_url, token, space),
    ):
        drive_base = f"{drive_url}/remote.php/dav/files/alice"
        make_folder(space / "listing")
        plain_port = free_port()
        plain = subprocess.Popen(
            [sys.executable, "-c", PLAIN_WSGIDAV, str(space), str(plain_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            plain_base = f"http://127.0.0.1:{plain_port}"
            wait_for(plain_base + "/", plain)
            with httpx.Client(timeout=300) as anonymous:
                baseline = measure(anonymous, plain_base, rounds)
            with httpx.Client(timeout=300, auth=("alice", token)) as client:
                drive = measure(client, drive_base, rounds)
        finally:
            plain.terminate()
            plain.wait(timeout=30)

    print("\nDrive (ownCloud layer) vs plain WsgiDAV on the same files (median ms)")
    print(f"  {'operation':<34} {'WsgiDAV':>9} {'drive':>9} {'ratio':>7}")
    ratios = {}
    for name in baseline:
        ratios[name] = drive[name] / baseline[name]
        print(f"  {name:<34} {baseline[name]:>9.1f} {drive[name]:>9.1f} {ratios[name]:>6.2f}x")
    worst = max(ratios.values())
    print(f"  worst ratio {worst:.2f}x (goal <= 1.5x: {'met' if worst <= 1.5 else 'NOT met'})")
    return {"wsgidav_ms": baseline, "drive_ms": drive, "ratios": ratios}


if __name__ == "__main__":
    main()
