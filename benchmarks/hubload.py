"""Hub load on loopback: 200 simulated users of one `swan up` (local servers), all at once,
calling the hub's REST API, and those with a running server also their server's contents API
through the proxy. Bounded in time and in requests.

The baseline is the same requests made one at a time by a single user in the same run; the
table gives throughput, median and p95 latency under load and the p95's ratio to the baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness.swan import log_in, start_swan  # noqa: E402

USERS = 200
SERVERS = 10
DURATION = 20.0
MAX_REQUESTS = 30_000
BASELINE_REQUESTS = 100


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


async def start_servers(swan, names: list[str]) -> None:
    async with httpx.AsyncClient(base_url=swan.url, timeout=120) as client:

        async def start(name: str) -> None:
            headers = {"Authorization": f"token {swan.tokens[name]}"}
            r = await client.post(f"/hub/api/users/{name}/server", headers=headers)
            r.raise_for_status()
            while True:
                model = (await client.get(f"/hub/api/users/{name}", headers=headers)).json()
                if model["servers"].get("", {}).get("ready"):
                    return
                await asyncio.sleep(0.5)

        await asyncio.gather(*(start(n) for n in names))


def requests_of(name: str, has_server: bool) -> list[tuple[str, str]]:
    calls = [("hub API", "/hub/api/user")]
    if has_server:
        calls.append(("contents API", f"/user/{name}/api/contents/"))
    return calls


async def run_load(swan, names: list[str], with_server: set[str], duration: float) -> dict:
    latencies: dict[str, list[float]] = {"hub API": [], "contents API": []}
    errors = 0
    sent = 0
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=len(names), max_keepalive_connections=len(names))
    async with httpx.AsyncClient(base_url=swan.url, timeout=60, limits=limits) as client:

        async def user(name: str) -> None:
            nonlocal errors, sent
            headers = {"Authorization": f"token {swan.tokens[name]}"}
            calls = requests_of(name, name in with_server)
            while time.monotonic() < deadline and sent < MAX_REQUESTS:
                for kind, path in calls:
                    sent += 1
                    t0 = time.perf_counter()
                    r = await client.get(path, headers=headers)
                    latencies[kind].append(time.perf_counter() - t0)
                    errors += r.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(user(n) for n in names))
        elapsed = time.perf_counter() - t0
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def main(users: int = USERS, servers: int = SERVERS, duration: float = DURATION) -> dict:
    names = [f"u{i:03d}" for i in range(users)]
    with tempfile.TemporaryDirectory(prefix="swan-bench-hubload-") as tmp:
        swan = start_swan(Path(tmp), users=",".join(names))
        try:
            for name in names:
                log_in(swan, name)
            with_server = set(names[:servers])
            asyncio.run(start_servers(swan, sorted(with_server)))
            baseline = asyncio.run(run_baseline(swan, names[0]))
            load = asyncio.run(run_load(swan, names, with_server, duration))
        finally:
            swan.kill_everything()

    print(
        f"\nHub load: {users} users at once for {load['elapsed']:.1f}s "
        f"({servers} of them with a running server), loopback"
    )
    header = ("requests", "count", "req/s", "p50 ms", "p95 ms", "p95 vs 1 user")
    print("  {:<14} {:>7} {:>8} {:>8} {:>8} {:>14}".format(*header))
    results = {}
    for kind, values in load["latencies"].items():
        base = statistics.median(baseline[kind]) * 1000
        row = {
            "count": len(values),
            "per_second": len(values) / load["elapsed"],
            "p50_ms": statistics.median(values) * 1000,
            "p95_ms": p95(values) * 1000,
            "baseline_p50_ms": base,
        }
        results[kind] = row
        print(
            f"  {kind:<14} {row['count']:>7} {row['per_second']:>8.0f} {row['p50_ms']:>8.1f} "
            f"{row['p95_ms']:>8.1f} {row['p95_ms'] / base:>13.1f}x"
        )
    print(
        f"  errors: {load['errors']}; one user alone: "
        + ", ".join(f"{k} p50 {statistics.median(v) * 1000:.1f} ms" for k, v in baseline.items())
    )
    return results


async def run_baseline(swan, name: str) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {"hub API": [], "contents API": []}
    headers = {"Authorization": f"token {swan.tokens[name]}"}
    async with httpx.AsyncClient(base_url=swan.url, timeout=60) as client:
        for _ in range(BASELINE_REQUESTS):
            for kind, path in requests_of(name, True):
                t0 = time.perf_counter()
                (await client.get(path, headers=headers)).raise_for_status()
                latencies[kind].append(time.perf_counter() - t0)
    return latencies


if __name__ == "__main__":
    main()
