"""Listing a folder of 1,000 entries through /api/contents: SwanContentsManager against
jupyter_server's stock AsyncLargeFileManager, both real servers on the same folder, and
SwanContentsManager reaching that same folder through the embedded drive over WebDAV (as the
servers of `swan up` do by default), all in one run.

Prints the median time of each, the speed-up, the cost of the drive against the folder on disk,
and the stat-family system calls per listed entry (counted by strace attached to each server's
threads; the server on the drive makes none itself, the drive does).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from drive import running_drive  # noqa: E402
from harness.jupyter_process import TOKEN, JupyterProcess  # noqa: E402

MANAGERS = {
    "stock AsyncLargeFileManager": "jupyter_server.services.contents.largefilemanager."
    "AsyncLargeFileManager",
    "SwanContentsManager": "swan_contents.SwanContentsManager",
}
ON_DRIVE = "SwanContentsManager, drive"
STAT_CALLS = "%%stat,access,faccessat,faccessat2,readlink,readlinkat"


def make_folder(root: Path, entries: int) -> None:
    nb = json.dumps(
        {
            "cells": [],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    for i in range(entries):
        kind = i % 10
        if kind < 6:
            (root / f"notebook {i:04d}.ipynb").write_text(nb)
        elif kind < 9:
            (root / f"data-{i:04d}.csv").write_text("a,b\n1,2\n")
        else:
            (root / f"folder {i:04d}").mkdir()


def start_server(
    cls: str, root: Path, state: Path, options: list[str] = (), env: dict | None = None
) -> tuple[subprocess.Popen, str]:
    server = JupyterProcess(root, state, cls, options, env)
    return server.proc, server.url


def list_once(client: httpx.Client, url: str, entries: int) -> float:
    t0 = time.perf_counter()
    r = client.get(f"{url}/api/contents/")
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    assert len(r.json()["content"]) == entries
    return elapsed


def count_stat_calls(pid: int, client: httpx.Client, url: str, entries: int, n: int) -> float:
    """Stat-family system calls per listed entry, or NaN where strace is not available."""
    if shutil.which("strace") is None:
        return float("nan")
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        tids = [f"-p{t}" for t in os.listdir(f"/proc/{pid}/task")]
        tracer = subprocess.Popen(
            ["strace", "-f", "-c", "-e", f"trace={STAT_CALLS}", "-o", out.name, *tids],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # let strace attach to every thread
        for _ in range(n):
            list_once(client, url, entries)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
        total = 0
        for line in Path(out.name).read_text().splitlines():
            parts = line.split()
            if parts and parts[0] == "------":
                continue
            if len(parts) >= 5 and parts[-1] != "total" and parts[-1] != "syscall":
                try:
                    total += int(parts[3])
                except ValueError:
                    continue
    return total / (n * entries)


def main(entries: int = 1000, rounds: int = 30) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="swan-bench-") as tmp,
        running_drive(Path(tmp)) as (drive_url, token, space),
    ):
        root = space / "listing"
        root.mkdir()
        make_folder(root, entries)
        servers = {}
        try:
            for name, cls in MANAGERS.items():
                state = Path(tmp) / name.split()[0]
                state.mkdir()
                servers[name] = start_server(cls, root, state)
            servers[ON_DRIVE] = start_server(
                MANAGERS["SwanContentsManager"],
                root,
                Path(tmp) / "drive-server",
                [
                    "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
                    f"--WebDAVStorage.url={drive_url}/remote.php/dav/files/alice/listing/",
                ],
                {"SWAN_WEBDAV_USER": "alice", "SWAN_WEBDAV_PASSWORD": token},
            )
            headers = {"Authorization": f"token {TOKEN}"}
            times: dict[str, list[float]] = {name: [] for name in servers}
            stats: dict[str, float] = {}
            with httpx.Client(headers=headers, timeout=60) as client:
                for _, url in servers.values():
                    for _ in range(5):
                        list_once(client, url, entries)
                # alternate the servers so drift on the machine hits all alike
                for _ in range(rounds):
                    for name, (_, url) in servers.items():
                        times[name].append(list_once(client, url, entries))
                for name, (proc, url) in servers.items():
                    stats[name] = count_stat_calls(proc.pid, client, url, entries, 3)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)

    stock, swan = MANAGERS
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    ratio = medians[stock] / medians[swan]
    drive_cost = medians[ON_DRIVE] / medians[swan]
    print(f"\nListing {entries} entries through GET /api/contents ({rounds} rounds, median)")
    print(f"  {'manager, storage':<30} {'median ms':>10} {'stat calls/entry':>17}")
    for name in servers:
        print(f"  {name:<30} {medians[name]:>10.1f} {stats[name]:>17.2f}")
    goal = "met" if ratio >= 5 else "NOT met"
    print(f"  speed-up of SwanContentsManager: {ratio:.1f}x (goal >= 5x: {goal})")
    print(f"  the same listing through the drive (WebDAV) costs {drive_cost:.1f}x the folder's")
    return {
        "medians_ms": medians,
        "stat_calls_per_entry": stats,
        "speedup": ratio,
        "drive_vs_posix": drive_cost,
    }


if __name__ == "__main__":
    main()
