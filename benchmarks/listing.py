"""Listing a folder of 1,000 entries through /api/contents: SwanContentsManager against
jupyter_server's stock AsyncLargeFileManager, both real servers on the same folder in one run.

Prints the median time of each, the speed-up, and the stat-family system calls per listed entry
(counted by strace attached to each server's threads).
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
from jupyter_process import TOKEN, JupyterProcess  # noqa: E402

MANAGERS = {
    "stock AsyncLargeFileManager": "jupyter_server.services.contents.largefilemanager."
    "AsyncLargeFileManager",
    "SwanContentsManager": "swan_contents.SwanContentsManager",
}
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


def start_server(cls: str, root: Path, state: Path) -> tuple[subprocess.Popen, str]:
    server = JupyterProcess(root, state, cls)
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
    with tempfile.TemporaryDirectory(prefix="swan-bench-") as tmp:
        root = Path(tmp) / "space"
        root.mkdir()
        make_folder(root, entries)
        servers = {}
        try:
            for name, cls in MANAGERS.items():
                state = Path(tmp) / name.split()[0]
                state.mkdir()
                servers[name] = start_server(cls, root, state)
            headers = {"Authorization": f"token {TOKEN}"}
            times: dict[str, list[float]] = {name: [] for name in servers}
            stats: dict[str, float] = {}
            with httpx.Client(headers=headers, timeout=60) as client:
                for _, url in servers.values():
                    for _ in range(5):
                        list_once(client, url, entries)
                # alternate the two so drift on the machine hits both alike
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
    print(f"\nListing {entries} entries through GET /api/contents ({rounds} rounds, median)")
    print(f"  {'manager':<30} {'median ms':>10} {'stat calls/entry':>17}")
    for name in MANAGERS:
        print(f"  {name:<30} {medians[name]:>10.1f} {stats[name]:>17.2f}")
    goal = "met" if ratio >= 5 else "NOT met"
    print(f"  speed-up of SwanContentsManager: {ratio:.1f}x (goal >= 5x: {goal})")
    return {"medians_ms": medians, "stat_calls_per_entry": stats, "speedup": ratio}


if __name__ == "__main__":
    main()
