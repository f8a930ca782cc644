"""Uploads to a real jupyter-server with SwanContentsManager, on a folder, WsgiDAV and the drive,
two ways: as JupyterLab's stock file browser sends them (1 MiB base64 parts in JSON, `chunk`
1..n then -1, to /api/contents), and as the suite's file browser does (the raw bytes streamed in
one `PUT /swan/api/upload/<path>`). Each is measured from outside against a raw write of the
same bytes to the same storage in the same run:

- the server's peak RSS growth while uploading (goal <= 32 MiB, whatever the size) and what it
  keeps after (sampled with psutil every 10 ms);
- the time, against one raw PUT of the same bytes to the WebDAV server (on a folder: to a
  plain tornado server that streams the body into the folder and fsyncs it, `serve_put_sink`;
  a write of the file without HTTP is printed beside it) (goal <= 2x); the streamed upload and
  the raw PUT are each the best of five;
- Jupyter's own floor: the same upload to jupyter_server's stock manager on a local folder, in
  the same run (what receiving, decoding and writing the parts costs with no storage of ours).

The parts are encoded before the clock starts (a browser encodes them while it reads the file),
so the time is the server's and the round trips', not this client's base64.

`uploads.py --page [MiB]` measures the drive page's own uploads in Debian's Chromium through
`swan up`: one file sent in 8 MiB parts (chunking v2) and as one PUT from the page, each against a
raw PUT of the same bytes to the same drive from this process, in the same run (best of three;
the page's times include its name check and the listing it reloads after).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
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

from harness.dav_servers import DriveDavServer, free_port, shared_root  # noqa: E402
from harness.jupyter_process import JupyterProcess  # noqa: E402
from webdav import MIB, STOCK, SWAN, RssSampler, WsgiDavProcess, goal  # noqa: E402

from swan_hub.cli import DRIVE_SERVER_ARGS  # noqa: E402


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


def streamed_put(
    url: str,
    block: bytes,
    count: int,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> float:
    """Seconds of one PUT of `count` times `block`, streamed with its Content-Length (as a
    browser sends a File)."""

    def body() -> Iterator[bytes]:
        for _ in range(count):
            yield block

    t0 = time.perf_counter()
    headers = {**(headers or {}), "Content-Length": str(len(block) * count)}
    httpx.put(url, content=body(), headers=headers, auth=auth, timeout=600).raise_for_status()
    return time.perf_counter() - t0


def raw_put(url: str, block: bytes, count: int, auth: tuple[str, str] | None) -> float:
    return streamed_put(url, block, count, auth)


def upload_streamed(server: JupyterProcess, name: str, block: bytes, count: int) -> tuple:
    """(seconds, peak RSS growth MiB, RSS growth MiB after) of one streamed upload of a new
    file, sent as the suite's file browser sends it (If-None-Match: * where nothing is listed
    at the name)."""
    httpx.get(f"{server.url}/api/contents/", headers=server.headers).raise_for_status()
    sampler = RssSampler(server.proc.pid)
    sampler.start()
    url = f"{server.url}/swan/api/upload/{name}"
    headers = {**server.headers, "If-None-Match": "*"}
    seconds = streamed_put(url, block, count, headers=headers)
    sampler.done.set()
    sampler.join()
    after = psutil.Process(server.proc.pid).memory_info().rss
    return seconds, (sampler.peak - sampler.baseline) / MIB, (after - sampler.baseline) / MIB


def raw_write(path: Path, block: bytes, count: int) -> float:
    t0 = time.perf_counter()
    with path.open("wb") as f:
        for _ in range(count):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t0


def serve_put_sink(folder: str, port: int) -> None:
    """A plain HTTP server (tornado, in its own process) whose PUT /<name> streams the body
    into `folder`/<name> and fsyncs it: the least an upload over HTTP into a folder costs, the
    "raw PUT" of a folder. Reads the body in pieces of 1 MiB, as the upload route does."""
    import asyncio

    import tornado.httpserver
    import tornado.web

    @tornado.web.stream_request_body
    class Sink(tornado.web.RequestHandler):
        def prepare(self) -> None:
            self.request.connection.set_max_body_size(1 << 40)
            self.file = open(os.path.join(folder, self.path_args[0]), "wb")  # noqa: SIM115

        def data_received(self, chunk: bytes) -> None:
            self.file.write(chunk)

        def put(self, name: str) -> None:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()

    async def serve() -> None:
        app = tornado.web.Application([("/(.+)", Sink)])
        tornado.httpserver.HTTPServer(app, chunk_size=MIB).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


@contextmanager
def put_sink(folder: Path) -> Iterator[str]:
    """The URL of a `serve_put_sink` process for `folder`, stopped after the block."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--put-sink", str(folder), str(port)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait()


@contextmanager
def on_posix(work: Path) -> Iterator[tuple[JupyterProcess, Callable[[bytes, int], float]]]:
    """On a folder the raw PUT goes to `put_sink`; a write of the file without HTTP is
    printed beside it."""
    root = work / "space"
    root.mkdir()
    with JupyterProcess(root, work / "state", SWAN) as server, put_sink(root) as url:
        yield server, lambda block, count: raw_put(url + "raw.bin", block, count, None)


def webdav_server(
    work: Path, url: str, auth: tuple[str, str] | None, options: list[str] | None = None
) -> JupyterProcess:
    (work / "cwd").mkdir(parents=True)
    options = [
        "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
        f"--WebDAVStorage.url={url}",
        *(options or []),
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
        options = list(DRIVE_SERVER_ARGS)  # as `swan up` starts the servers of the drive
        with webdav_server(work / "server", url, auth, options) as server:
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


def report(way: str, seconds: float, baseline: float, peak: float, kept: float) -> str:
    ratio = seconds / baseline
    return (
        f"{way}: {seconds:.2f} s vs raw {baseline:.2f} s = {ratio:.1f}x (goal <= 2x: "
        f"{goal(ratio <= 2)}); RSS peak +{peak:.1f} MiB (goal <= 32: {goal(peak <= 32)}), "
        f"+{kept:.1f} MiB after"
    )


def main(megabytes: int = 200) -> dict:
    print(f"\n== Uploading {megabytes} MiB: JupyterLab's 1 MiB base64 parts, and streamed")
    block, bodies = parts(megabytes)
    floor = stock_floor(bodies)
    print(f"  Jupyter's own floor (stock manager, local folder, parts): {floor:.2f} s")
    results: dict = {"stock_floor": {"seconds": floor}}
    for name, storage in STORAGES.items():
        work = Path(tempfile.mkdtemp(prefix="swan-bench-uploads-"))
        try:
            with storage(work) as (server, raw):
                seconds, peak, kept = upload(server, "big.bin", bodies)
                # the best of five, alternating, for the two quick ones: less noise from
                # whatever else the machine does
                runs = [
                    (
                        upload_streamed(server, f"big-{run}.bin", block, megabytes),
                        raw(block, megabytes),
                    )
                    for run in range(5)
                ]
                streamed, s_peak, s_kept = min(run[0] for run in runs)
                s_peak = max(run[0][1] for run in runs)
                baseline = min(run[1] for run in runs)
                local = raw_write(work / "local.bin", block, megabytes)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"  {name:>8}:")
        print(
            f"    {report('parts   ', seconds, baseline, peak, kept)}; "
            f"{seconds / floor:.2f}x the stock manager's floor"
        )
        print(f"    {report('streamed', streamed, baseline, s_peak, s_kept)}")
        print(f"    (a write of the same bytes on this machine, no HTTP: {local:.2f} s)")
        results[name] = {
            "seconds": seconds,
            "streamed": streamed,
            "raw": baseline,
            "rss_peak_mib": peak,
            "streamed_rss_peak_mib": s_peak,
        }
    return results


def page_uploads(megabytes: int = 200) -> dict:
    """The drive page's upload in parts and as one PUT, against a raw PUT of the same bytes."""
    from harness.drive import running_drive
    from harness.lab_browser import chromium_browser, fill_hub_login, person

    print(f"\n== The drive page uploading {megabytes} MiB in Chromium, in parts and as one PUT")
    work = Path(tempfile.mkdtemp(prefix="swan-bench-page-uploads-"))
    block = os.urandom(MIB)
    source = work / "source.bin"
    with source.open("wb") as out:
        for _ in range(megabytes):
            out.write(block)
    timings: dict[str, list[float]] = {"parts": [], "one PUT": [], "raw": []}
    try:
        (work / "swan").mkdir()
        with running_drive(work / "swan") as drive, chromium_browser() as browser:
            page = person(browser)
            page.goto(f"{drive.base}/")
            fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
            status = page.get_by_role("status")
            url = f"{drive.base}/remote.php/dav/files/alice/raw-%d.bin"
            for run in range(3):
                for way, above in (("parts", 0), ("one PUT", 1 << 62)):
                    name = work / f"{way.replace(' ', '-')}-{run}.bin"
                    os.link(source, name)
                    # the threshold the page reads before each upload; 0 keeps its own
                    page.evaluate(
                        "above => { const root = document.getElementById('drive');"
                        " if (above) root.dataset.partsAbove = above;"
                        " else delete root.dataset.partsAbove; }",
                        above,
                    )
                    page.get_by_label("Choose files").set_input_files(str(name))
                    start = time.perf_counter()
                    page.get_by_role("button", name="Upload", exact=True).click()
                    status.filter(has_text="Uploaded 1 file.").wait_for(timeout=600_000)
                    timings[way].append(time.perf_counter() - start)
                auth = drive.client("alice").auth
                timings["raw"].append(raw_put(url % run, block, megabytes, auth))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = min(timings["raw"])
    print(f"  raw PUT from this process: {raw:.2f} s")
    for way in ("parts", "one PUT"):
        best = min(timings[way])
        print(f"  the page, {way:>7}: {best:.2f} s = {best / raw:.2f}x the raw PUT")
    return {way: min(times) for way, times in timings.items()}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--put-sink"]:
        serve_put_sink(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["--page"]:
        page_uploads(int(sys.argv[2]) if len(sys.argv) > 2 else 200)
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
