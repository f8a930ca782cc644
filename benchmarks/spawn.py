"""Spawn to server ready: `swan up` with local-process servers (the baseline) against
`swan up --docker` with containers of the test image (already built), several runs each.

Each run asks the hub's REST API for alice's server, waits until the hub reports it ready,
then stops it and waits until it is gone. Prints the median and the ratio to the baseline.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness.dockerhost import EngineUnavailable, running_engine, single_user_image  # noqa: E402
from harness.swan import log_in, start_swan, wait_until_ready, wait_until_stopped  # noqa: E402

TIMEOUT = 120.0


def spawn_times(workdir: Path, runs: int, *extra: str) -> list[float]:
    swan = start_swan(workdir, *extra, users="alice")
    try:
        log_in(swan, "alice")
        headers = {"Authorization": f"token {swan.tokens['alice']}"}
        times = []
        for _ in range(runs + 1):  # the first run warms caches and is not counted
            t0 = time.perf_counter()
            r = httpx.post(f"{swan.url}/hub/api/users/alice/server", headers=headers, timeout=60)
            r.raise_for_status()
            wait_until_ready(swan, "alice", timeout=TIMEOUT)
            times.append(time.perf_counter() - t0)
            httpx.delete(f"{swan.url}/hub/api/users/alice/server", headers=headers, timeout=60)
            wait_until_stopped(swan, "alice", timeout=TIMEOUT)
        return times[1:]
    finally:
        swan.kill_everything()


def main(runs: int = 5) -> dict:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="swan-bench-spawn-") as tmp:
        local = Path(tmp) / "local"
        local.mkdir()
        results["local process"] = statistics.median(spawn_times(local, runs))
        try:
            with running_engine(Path(tmp) / "dockerd.log"):
                image = single_user_image()
                form = Path(tmp) / "form.json"
                form.write_text(json.dumps({"environments": [{"id": "test", "image": image}]}))
                docker_dir = Path(tmp) / "docker"
                docker_dir.mkdir()
                times = spawn_times(docker_dir, runs, "--docker", "--form-config", str(form))
                results["Docker container"] = statistics.median(times)
        except EngineUnavailable as e:
            print(f"  (Docker skipped: {e})")
    base = results["local process"]
    print(f"\nSpawn -> server ready through the hub's REST API ({runs} runs, median)")
    print(f"  {'spawner':<20} {'median s':>9} {'vs local':>9}")
    for name, seconds in results.items():
        print(f"  {name:<20} {seconds:>9.2f} {seconds / base:>8.2f}x")
    return results


if __name__ == "__main__":
    main()
