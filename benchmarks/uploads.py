"""Uploads the way JupyterLab sends them (1 MiB base64 parts in JSON, `chunk` 1..n then -1) to a
real jupyter-server with SwanContentsManager, on a folder, WsgiDAV and the drive, measured from
outside against a raw write of the same bytes to the same storage in the same run:

- the server's peak RSS growth while uploading (goal <= 32 MiB, whatever the size) and what it
  keeps after (sampled with psutil every 10 ms);
- the time, against one raw PUT of the same bytes to the WebDAV server (on a folder: one
  write of the file, fsynced) (goal <= 2x);
- Jupyter's own floor: the same upload to jupyter_server's stock manager on a local folder, in
  the same run (what receiving, decoding and writing the parts costs with no storage of ours).

The parts are encoded before the clock starts (a browser encodes them while it reads the file),
so the time is the server's and the round trips', not this client's base64.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.dav_servers import DriveDavServer, shared_root  # noqa: E402
from harness.jupyter_process import JupyterProcess  # noqa: E402
from webdav import MIB, STOCK, SWAN, RssSampler, WsgiDavProcess, goal  # noqa: E402


def parts(megabytes: int) -> tuple[bytes, list[bytes]]:
    """One random MiB, and the request bodies that upload it `megabytes` times in a row."""
    block = os.urandom(MIB)
    encoded = json.dumps(base64.b64encode(block).decode("ascii"))
    numbers = [*range(1, megabytes), -1]
    template = '{"type": "file", "format": "base64", "chunk": %d, "content": %s}'
    return block, [(template % (n, encoded)).encode() for n in numbers]


def upload(server: JupyterProcess, name: str, bodies: list[bytes]) -> tuple[float, float, float]:
    """(seconds, peak RSS growth MiB, RSS growth MiB after) of one upload in parts."""
    with httpx.Client(headers=server.headers, timeout=600) as client:
        client.get(f"{server.url}/api/contents/").raise_for_status()  # warm up
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        t0 = time.perf_counter()
        for body in bodies:
            client.put(f"{server.url}/api/contents/{name}", content=body).raise_for_status()
        seconds = time.perf_counter() - t0
        sampler.done.set()
        sampler.join()
    after = psutil.Process(server.proc.pid).memory_info().rss
    return seconds, (sampler.peak - sampler.baseline) / MIB, (after - sampler.baseline) / MIB


def raw_put(url: str, block: bytes, count: int, auth: tuple[str, str] | None) -> float:
    def body() -> Iterator[bytes]:
        for _ in range(count):
            yield block

    t0 = time.perf_counter()
    headers = {"Content-Length": str(len(block) * count)}
    httpx.put(url, content=body(), headers=headers, auth=auth, timeout=600).raise_for_status()
    return time.perf_counter() - t0


def raw_write(path: Path, block: bytes, count: int) -> float:
    t0 = time.perf_counter()
    with path.open("wb") as f:
        for _ in range(count):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t0


@contextmanager
def on_posix(work: Path) -> Iterator[tuple[JupyterProcess, Callable[[bytes, int], float]]]:
    root = work / "space"
    root.mkdir()
    with JupyterProcess(root, work / "state", SWAN) as server:
        yield server, lambda block, count: raw_write(root / "raw.bin", block, count)


def webdav_server(work: Path, url: str, auth: tuple[str, str] | None) -> JupyterProcess:
    (work / "cwd").mkdir(parents=True)
    options = [
        "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
        f"--WebDAVStorage.url={url}",
    ]
    env = {}
    if auth:
        options += [f"--WebDAVStorage.username={auth[0]}", "--WebDAVStorage.password_env=DAV_PW"]
        env["DAV_PW"] = auth[1]
    return JupyterProcess(work / "cwd", work, SWAN, options, env=env)


@contextmanager
def on_wsgidav(work: Path) -> Iterator[tuple[JupyterProcess, Callable[[bytes, int], float]]]:
    folder = shared_root() / "wsgidav"
    folder.mkdir(mode=0o777)
    dav = WsgiDavProcess(folder)
    dav.start()
    try:
        with webdav_server(work, dav.url, None) as server:
            yield server, lambda block, count: raw_put(dav.url + "raw.bin", block, count, None)
    finally:
        dav.stop()
        shutil.rmtree(folder.parent, ignore_errors=True)


@contextmanager
def on_drive(work: Path) -> Iterator[tuple[JupyterProcess, Callable[[bytes, int], float]]]:
    dav = DriveDavServer(work / "swan")
    (work / "swan").mkdir()
    dav.start()
    try:
        _local, url = dav.folder("uploads-bench")
        auth = (dav.username, dav.password)
        with webdav_server(work / "server", url, auth) as server:
            yield server, lambda block, count: raw_put(url + "raw.bin", block, count, auth)
    finally:
        dav.stop()


STORAGES = {"folder": on_posix, "WsgiDAV": on_wsgidav, "drive": on_drive}


def stock_floor(bodies: list[bytes]) -> float:
    """Seconds of the same upload to jupyter_server's stock manager on a local folder."""
    work = Path(tempfile.mkdtemp(prefix="swan-bench-uploads-"))
    try:
        (work / "space").mkdir()
        with JupyterProcess(work / "space", work / "state", STOCK) as server:
            seconds, _peak, _kept = upload(server, "big.bin", bodies)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return seconds


def main(megabytes: int = 200) -> dict:
    print(f"\n== Uploading {megabytes} MiB as JupyterLab does (1 MiB base64 parts)")
    block, bodies = parts(megabytes)
    floor = stock_floor(bodies)
    print(f"  Jupyter's own floor (stock manager, local folder): {floor:.2f} s")
    results = {"stock_floor": {"seconds": floor}}
    for name, storage in STORAGES.items():
        work = Path(tempfile.mkdtemp(prefix="swan-bench-uploads-"))
        try:
            with storage(work) as (server, raw):
                seconds, peak, kept = upload(server, "big.bin", bodies)
                baseline = raw(block, megabytes)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ratio = seconds / baseline
        print(
            f"  {name:>8}: {seconds:.2f} s vs raw {baseline:.2f} s = {ratio:.1f}x "
            f"(goal <= 2x: {goal(ratio <= 2)}); RSS peak +{peak:.1f} MiB (goal <= 32: "
            f"{goal(peak <= 32)}), +{kept:.1f} MiB after; {seconds / floor:.2f}x the stock "
            "manager's floor"
        )
        results[name] = {"seconds": seconds, "raw": baseline, "rss_peak_mib": peak}
    return results


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
