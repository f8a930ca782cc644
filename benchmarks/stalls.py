"""Does a user's server stay responsive while it works hard? A real jupyter-server with
SwanContentsManager on the drive and on Apache mod_dav, and, as the baseline in the same run,
jupyter_server's stock manager on a local folder, each under the same load at once:

- a loop listing a folder of 1,000 entries, and another listing one of 10,000 (GET /api/contents);
- a 200 MiB upload as JupyterLab sends it (1 MiB base64 parts in JSON), the load lasting until
  it is done and each loop has listed its folder twice;
- GET /api/status every 10 ms, whose latency is what every other request of the user waits too.

Prints per setup the quiet listing times (no load, to see that the fix did not slow them), the
/api/status p50/p99/max under load (goal p99 < 50 ms) and its ratio to the baseline's p99, and
the event loop's stalls over 20 ms, how many of them were the loop's own work (its thread's CPU
time, not waiting for a CPU on a loaded machine) and the stack of the one with the most, found
by a watchdog inside the server (`stall_watch.py`; goal: none over 20 ms of work).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from harness.dav_servers import ApacheDavServer, DriveDavServer, shared_root  # noqa: E402
from harness.jupyter_process import JupyterProcess  # noqa: E402
from uploads import parts  # noqa: E402
from webdav import STOCK, SWAN, fill, goal  # noqa: E402

FOLDERS = {"list-1k": 1_000, "list-10k": 10_000}
UPLOAD_MIB = 200
POLL = 0.010
#: jupyter-server options that load the watchdog (from this folder, on PYTHONPATH)
WATCHED = ["--ServerApp.jpserver_extensions=stall_watch=True"]


def watched_env() -> dict[str, str]:
    paths = (str(HERE), os.environ.get("PYTHONPATH"))
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def fill_space(space: Path) -> None:
    for name, entries in FOLDERS.items():
        (space / name).mkdir()
        fill(space / name, entries)
    (space / "upload").mkdir()
    os.chmod(space / "upload", 0o777)  # noqa: S103 - Apache's user writes here


def webdav_options(url: str, auth: tuple[str, str] | None) -> tuple[list[str], dict[str, str]]:
    options = [
        "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
        f"--WebDAVStorage.url={url}",
        "--ServerApp.jpserver_extensions=swan_share_ext=True",
    ]
    env = watched_env()
    if auth:
        options += [f"--WebDAVStorage.username={auth[0]}", "--WebDAVStorage.password_env=DAV_PW"]
        env["DAV_PW"] = auth[1]
    return options, env


@contextlib.contextmanager
def on_stock(work: Path) -> Iterator[JupyterProcess]:
    space = work / "space"
    space.mkdir()
    fill_space(space)
    with JupyterProcess(space, work / "state", STOCK, WATCHED, env=watched_env()) as server:
        yield server


@contextlib.contextmanager
def on_apache(work: Path) -> Iterator[JupyterProcess]:
    root = shared_root()
    dav = ApacheDavServer(root)
    dav.start()
    try:
        space, url = dav.folder("space")
        fill_space(space)
        options, env = webdav_options(url, None)
        (work / "cwd").mkdir()
        with JupyterProcess(work / "cwd", work, SWAN, [*options, *WATCHED], env=env) as server:
            yield server
    finally:
        dav.stop()
        dav.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def on_drive(work: Path) -> Iterator[JupyterProcess]:
    (work / "swan").mkdir()
    dav = DriveDavServer(work / "swan")
    dav.start()
    try:
        space, url = dav.folder("space")
        fill_space(space)
        options, env = webdav_options(url, (dav.username, dav.password))
        (work / "cwd").mkdir()
        with JupyterProcess(work / "cwd", work, SWAN, [*options, *WATCHED], env=env) as server:
            yield server
    finally:
        dav.stop()


SETUPS: dict[str, Callable[[Path], contextlib.AbstractContextManager[JupyterProcess]]] = {
    "stock manager, local folder (baseline)": on_stock,
    "SwanContentsManager, drive": on_drive,
    "SwanContentsManager, Apache": on_apache,
}


def quiet_listing_ms(client: httpx.Client, url: str, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        client.get(url).raise_for_status()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


class Loop(threading.Thread):
    """Runs `step` with its own client until told to stop; keeps each step's seconds."""

    def __init__(self, server: JupyterProcess, step: Callable[[httpx.Client], None]):
        super().__init__(daemon=True)
        self.server, self.step = server, step
        self.times: list[float] = []
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(headers=self.server.headers, timeout=300) as client:
                while not self.done.is_set():
                    t0 = time.perf_counter()
                    self.step(client)
                    self.times.append(time.perf_counter() - t0)
        except BaseException as e:  # reported by the caller
            self.error = e


def under_load(server: JupyterProcess, bodies: list[bytes]) -> dict:
    """The load at once: both listing loops and the status poller while one upload runs."""
    base = f"{server.url}/api/contents"

    def poll(client: httpx.Client) -> None:
        client.get(f"{server.url}/api/status").raise_for_status()
        time.sleep(POLL)

    loops = {
        "status": Loop(server, poll),
        **{
            name: Loop(server, lambda c, n=name: c.get(f"{base}/{n}").raise_for_status())
            for name in FOLDERS
        },
    }
    with httpx.Client(headers=server.headers, timeout=300) as client:
        client.get(f"{server.url}/stall-watch").raise_for_status()  # forget the warm-up's
        for loop in loops.values():
            loop.start()
        t0 = time.perf_counter()
        for body in bodies:
            client.put(f"{base}/upload/big.bin", content=body).raise_for_status()
        upload = time.perf_counter() - t0
        # a slow setup (the baseline lists 10,000 entries in seconds) still lists under load
        while any(len(loops[name].times) < 2 and loops[name].is_alive() for name in FOLDERS):
            time.sleep(0.1)
        for loop in loops.values():
            loop.done.set()
        for loop in loops.values():
            loop.join()
            if loop.error:
                raise loop.error
        stalls = client.get(f"{server.url}/stall-watch").json()
    status = sorted(t - POLL for t in loops["status"].times)  # the poll's own sleep is not latency
    return {
        "upload_s": upload,
        "p50": statistics.median(status) * 1000,
        "p99": status[int(len(status) * 0.99) - 1] * 1000,
        "max": status[-1] * 1000,
        "polls": len(status),
        "listings": {name: len(loops[name].times) for name in FOLDERS},
        "stalls": stalls,
    }


def measure(setup: Callable, bodies: list[bytes]) -> dict:
    work = Path(tempfile.mkdtemp(prefix="swan-bench-stalls-"))
    try:
        with setup(work) as server, httpx.Client(headers=server.headers, timeout=300) as client:
            quiet = {
                name: quiet_listing_ms(client, f"{server.url}/api/contents/{name}")
                for name in FOLDERS
            }
            return {"quiet": quiet, **under_load(server, bodies)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def short_stack(stack: list[list]) -> str:
    """The innermost frames of a sampled stack, one line each, innermost last."""
    lines = []
    for filename, lineno, name in reversed(stack):
        shown = filename.split("site-packages/")[-1]
        shown = shown.split(str(HERE.parent) + "/")[-1]
        lines.append(f"        {shown}:{lineno} {name}")
    return "\n".join(lines)


def main(megabytes: int = UPLOAD_MIB) -> dict:
    print(
        f"\n== Event-loop stalls: listings of {', '.join(f'{n:,}' for n in FOLDERS.values())} "
        f"entries in loops and a {megabytes} MiB upload at once, /api/status every "
        f"{POLL * 1000:.0f} ms"
    )
    _block, bodies = parts(megabytes)
    results = {name: measure(setup, bodies) for name, setup in SETUPS.items()}
    baseline = next(iter(results.values()))["p99"]
    for name, r in results.items():
        quiet = ", ".join(f"{folder} {ms:.0f} ms" for folder, ms in r["quiet"].items())
        listed = ", ".join(f"{folder} x{n}" for folder, n in r["listings"].items())
        stalls = r["stalls"]
        print(f"  {name}")
        print(f"    quiet listings: {quiet}")
        print(
            f"    /api/status under load: p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms "
            f"({r['p99'] / baseline:.2f}x the baseline; goal < 50 ms: {goal(r['p99'] < 50)}), "
            f"max {r['max']:.1f} ms over {r['polls']} polls; upload {r['upload_s']:.1f} s, "
            f"listed {listed}"
        )
        over = {ms: sum(1 for s in stalls["seconds"] if s * 1000 > ms) for ms in (50, 100)}
        work = sum(1 for w in stalls["cpu_seconds"] if w > 0.020)
        print(
            f"    event-loop stalls > 20 ms: {stalls['count']} (> 50 ms: {over[50]}, > 100 ms: "
            f"{over[100]}), of which with > 20 ms of the loop's own CPU work: {work} (goal 0: "
            f"{goal(work == 0)})"
        )
        if stalls["longest"]:
            top = stalls["longest"][0]
            print(
                f"    the most work in one stall: {top['cpu_ms']:.0f} ms of {top['ms']:.0f} ms, at:"
            )
            print(short_stack(top["stack"]))
    return results


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else UPLOAD_MIB)
