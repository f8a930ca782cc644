"""Start-up times: `swan --help`, the drive (`python -m swan_hub.drive`) until it answers, and
`swan up` until its banner (the login page answering through the proxy), with and without the
idle culler, each the median of a few runs. Baselines measured in the same run: a bare
`python -c pass` for the first two, a bare JupyterHub with configurable-http-proxy (login page
answering) for `swan up`.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TIMEOUT = 180.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO))


def run_to_end(command: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, env=env(), stdout=subprocess.DEVNULL, check=True, timeout=TIMEOUT)
    return time.perf_counter() - t0


def run_until(command: list[str], cwd: Path, ready: Callable[[Path], bool]) -> float:
    """Seconds from starting ``command`` until ``ready(log)``; the process group is then
    stopped with SIGTERM (as Ctrl-C would) and waited for."""
    log = cwd / "out.log"
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not ready(log):
            if proc.poll() is not None or time.perf_counter() - t0 > TIMEOUT:
                raise RuntimeError(f"{command[:3]} did not get ready:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        return time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=TIMEOUT)


def answers(url: str) -> Callable[[Path], bool]:
    def check(_log: Path) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return check


def printed(text: str) -> Callable[[Path], bool]:
    return lambda log: text in log.read_text(errors="replace")


def drive_start(tmp: Path) -> float:
    port = free_port()
    command = [sys.executable, "-m", "swan_hub.drive", f"--data-dir={tmp}", f"--port={port}"]
    return run_until(command, tmp, answers(f"http://127.0.0.1:{port}/status.php"))


def bare_hub_start(tmp: Path) -> float:
    port = free_port()
    command = [str(BIN / "jupyterhub"), "--ip=127.0.0.1", f"--port={port}"]
    command += [f"--JupyterHub.hub_port={free_port()}", "--Authenticator.allow_all=True"]
    command += [f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}"]
    return run_until(command, tmp, answers(f"http://127.0.0.1:{port}/hub/login"))


def swan_up_start(tmp: Path, *flags: str) -> float:
    command = [str(BIN / "swan"), "up", f"--port={free_port()}", f"--data-dir={tmp / 'data'}"]
    return run_until([*command, *flags], tmp, printed("SWAN is running at"))


def median_of(runs: int, measure: Callable[[Path], float]) -> float:
    times = []
    for _ in range(runs + 1):  # the first run warms the file cache and is not counted
        with tempfile.TemporaryDirectory(prefix="swan-bench-startup-") as tmp:
            times.append(measure(Path(tmp)))
    return statistics.median(times[1:])


def main(runs: int = 3) -> dict:
    python = median_of(runs, lambda _: run_to_end([sys.executable, "-c", "pass"]))
    results = {
        "swan --help": (
            median_of(runs, lambda _: run_to_end([str(BIN / "swan"), "--help"])),
            python,
        ),
        "drive answering": (median_of(runs, drive_start), python),
    }
    bare = median_of(runs, bare_hub_start)
    results["swan up ready"] = (median_of(runs, swan_up_start), bare)
    # what the idle culler (a third service, waited for until it calls the hub) adds
    no_cull = median_of(runs, lambda tmp: swan_up_start(tmp, "--no-cull"))
    results["  --no-cull"] = (no_cull, bare)
    print(f"\nStart-up times ({runs} runs, median)")
    print(f"  python -c pass:                 {python:6.2f} s")
    print(f"  bare JupyterHub + proxy, login: {bare:6.2f} s")
    print(f"  {'what':<20} {'median s':>9} {'vs baseline':>12}")
    for name, (seconds, base) in results.items():
        print(f"  {name:<20} {seconds:>9.2f} {seconds / base:>11.2f}x")
    return {name: seconds for name, (seconds, _) in results.items()}


if __name__ == "__main__":
    main()
