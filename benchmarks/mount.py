"""What code pays for reading the storage through the rclone mount (swan_hub.mounts), against
baselines taken in the same run on the same Apache mod_dav server and the same files:

- sequential read of a large file (SWAN_BENCH_MOUNT_MB, default 1024 MB): through the mount vs a
  raw streamed GET (goal: >= 50% of the GET's throughput) vs the local disk;
- listing 10,000 files with every file's size and time (`os.scandir` + stat, as `ls -l` does):
  through the mount, cold (first listing after mounting) and warm, vs one raw PROPFIND Depth 1
  (goal: within 2x) vs the local disk;
- `pandas.read_csv` of a CSV of SWAN_BENCH_CSV_MB (default 100 MB) through the mount vs the
  local disk (goal: within 1.5x): a first read, and the median of three more;
- the same reads through a mount with the read cache on (StorageMountMixin.mount_read_cache);
- where the floors lie: `rclone cat` of the large file and `rclone lsl` of the 10,000 files
  (rclone's own WebDAV client, no FUSE) against the same GET and PROPFIND;
- the same read and listing through a mount behind its mount guard (StorageMountMixin.
  mount_guard, swan_hub.mount_guard), and code writing WRITES small files (closed, then waited
  for on the storage) through both mounts; the guard's start time and memory (RSS) idle and at
  its peak.

Run: `./scripts/bench mount` (or `.venv/bin/python benchmarks/mount.py`). Needs rclone and fuse3,
and pandas (the `bench` extra) for the CSV read.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness.dav_servers import ApacheDavServer, shared_root  # noqa: E402

from swan_hub.mounts import (  # noqa: E402
    RCLONE,
    REMOTE,
    StorageMounts,
    missing_parts,
    start_guard,
)

FILES = 10_000
WRITES = 20
BLOCK = 1024 * 1024


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def read_file(path: str) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(BLOCK):
            pass


def list_with_stats(path: str) -> int:
    count = 0
    with os.scandir(path) as entries:
        for entry in entries:
            entry.stat()
            count += 1
    assert count == FILES, count
    return count


def write_csv(path: Path, size_mb: int) -> None:
    """A CSV of about ``size_mb`` MB: an id, two measurements and a label per row."""
    rows = "".join(f"{i},{i * 0.37:.4f},{(i % 97) * 1.5:.2f},run{i % 13}\n" for i in range(100_000))
    with open(path, "w") as f:
        f.write("id,energy,angle,label\n")
        while f.tell() < size_mb * 1024 * 1024:
            f.write(rows)


def read_csv_seconds(path: str) -> tuple[float, float] | None:
    """Seconds of a first ``pandas.read_csv`` of ``path`` and the median of three more; None
    without pandas."""
    try:
        import pandas
    except ImportError:
        return None
    first = timed(lambda: pandas.read_csv(path))
    return first, statistics.median(timed(lambda: pandas.read_csv(path)) for _ in range(3))


def write_files(point: str, local: Path, prefix: str) -> None:
    """Code writes WRITES small files through a mount; returns once the storage has them all."""
    for i in range(WRITES):
        Path(point, f"{prefix}-{i}.txt").write_text(f"result {i}\n")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all((local / f"{prefix}-{i}.txt").exists() for i in range(WRITES)):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the {prefix} writes did not reach the storage")


def memory_kb(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status in kB (VmRSS now, VmHWM the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def rclone(work_dir: str, *args: str) -> None:
    """rclone itself (no FUSE) with the mounts' config, its output thrown away."""
    config = os.path.join(work_dir, "rclone.conf")
    with open(os.devnull, "wb") as sink:
        subprocess.run([RCLONE, "--config", config, *args], stdout=sink, check=True)


def mounted(
    url: str, work: Path, name: str, *, read_cache: bool, guard: bool = False
) -> StorageMounts:
    mounts = StorageMounts(
        url=url,
        point=str(work / name / "files"),
        work_dir=str(work / name / "rclone"),
        read_cache=read_cache,
        guard=guard,
    )
    mounts.start(None, "", timeout=60)
    return mounts


def main() -> None:
    missing = missing_parts()
    if missing:
        sys.exit(f"mount benchmark: cannot mount here: {missing}")
    size_mb = int(os.environ.get("SWAN_BENCH_MOUNT_MB", "1024"))
    csv_mb = int(os.environ.get("SWAN_BENCH_CSV_MB", "100"))
    root = shared_root()
    server = ApacheDavServer(root)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="swan-bench-mount-"))
    started: list[StorageMounts] = []
    try:
        local, url = server.folder("space")
        big = local / "big.bin"
        with open(big, "wb") as f:
            chunk = os.urandom(BLOCK)
            for _ in range(size_mb):
                f.write(chunk)
        many = local / "many"
        many.mkdir()
        for i in range(FILES):
            (many / f"f{i:05d}.csv").write_text(f"{i}\n")
        write_csv(local / "events.csv", csv_mb)

        mounts = mounted(url, work, "streamed", read_cache=False)
        started.append(mounts)
        point = mounts.point

        with httpx.Client(timeout=600) as client:

            def raw_get() -> None:
                with client.stream("GET", f"{url}big.bin") as r:
                    for _ in r.iter_raw(BLOCK):
                        pass

            def raw_propfind() -> None:
                r = client.request("PROPFIND", f"{url}many/", headers={"Depth": "1"})
                assert r.status_code == 207

            list_cold = timed(lambda: list_with_stats(os.path.join(point, "many")))
            list_warm = timed(lambda: list_with_stats(os.path.join(point, "many")))
            list_raw = min(timed(raw_propfind) for _ in range(3))
            list_rclone = min(
                timed(lambda: rclone(mounts.work_dir, "lsl", f"{REMOTE}:many")) for _ in range(3)
            )
            list_local = min(timed(lambda: list_with_stats(str(many))) for _ in range(3))
            read_raw = timed(raw_get)
            read_mount = timed(lambda: read_file(os.path.join(point, "big.bin")))
            read_local = timed(lambda: read_file(str(big)))
            read_rclone = timed(lambda: rclone(mounts.work_dir, "cat", f"{REMOTE}:big.bin"))
        csv_local = read_csv_seconds(str(local / "events.csv"))
        csv_mount = read_csv_seconds(os.path.join(point, "events.csv"))

        cached = mounted(url, work, "read-cache", read_cache=True)
        started.append(cached)
        read_cached = [
            timed(lambda: read_file(os.path.join(cached.point, "big.bin"))) for _ in "12"
        ]
        csv_cached = read_csv_seconds(os.path.join(cached.point, "events.csv"))

        guarded = mounted(url, work, "guarded", read_cache=False, guard=True)
        started.append(guarded)
        idle_kb = memory_kb(guarded.guard.pid, "VmRSS")
        g_list_cold = timed(lambda: list_with_stats(os.path.join(guarded.point, "many")))
        g_list_warm = timed(lambda: list_with_stats(os.path.join(guarded.point, "many")))
        g_read = timed(lambda: read_file(os.path.join(guarded.point, "big.bin")))
        write_plain = timed(lambda: write_files(point, local, "plain"))
        write_guarded = timed(lambda: write_files(guarded.point, local, "guarded"))
        peak_kb = memory_kb(guarded.guard.pid, "VmHWM")
        guard_dir = work / "guard-start"
        guard_dir.mkdir()
        starts = []
        for _ in range(3):
            begun = time.perf_counter()
            guard = start_guard(url, str(guard_dir))
            starts.append(time.perf_counter() - begun)
            guard.stop()

        def mbps(seconds: float) -> float:
            return size_mb / seconds

        def row(name: str, value: str, ratio: float, goal: str = "") -> None:
            print(f"{name:48} {value:>12} {ratio:8.2f}  {goal}")

        print(f"\nmount: rclone mount of Apache mod_dav ({size_mb} MB file, {FILES} files)")
        print(f"{'measure':48} {'value':>12} {'ratio':>8}  goal")
        print("(read ratios: throughput / the GET's)")
        row("read, raw GET (baseline)", f"{mbps(read_raw):.0f} MB/s", 1)
        row("read, mount", f"{mbps(read_mount):.0f} MB/s", read_raw / read_mount, ">= 0.50")
        for label, seconds in zip(("first", "again"), read_cached, strict=True):
            row(
                f"read, mount with read cache, {label}",
                f"{mbps(seconds):.0f} MB/s",
                read_raw / seconds,
                ">= 0.50",
            )
        row("read, rclone cat (no FUSE)", f"{mbps(read_rclone):.0f} MB/s", read_raw / read_rclone)
        row("read, local disk", f"{mbps(read_local):.0f} MB/s", read_raw / read_local)
        print("(listing ratios: time / the PROPFIND's)")
        row("list+stat, one PROPFIND Depth 1 (baseline)", f"{list_raw * 1000:.0f} ms", 1)
        row(
            "list+stat, mount, first listing",
            f"{list_cold * 1000:.0f} ms",
            list_cold / list_raw,
            "<= 2",
        )
        row("list+stat, mount, cached", f"{list_warm * 1000:.0f} ms", list_warm / list_raw)
        row("list, rclone lsl (no FUSE)", f"{list_rclone * 1000:.0f} ms", list_rclone / list_raw)
        row("list+stat, local disk", f"{list_local * 1000:.0f} ms", list_local / list_raw)
        print("(behind the mount guard; read: throughput / the GET's, list: time / PROPFIND's)")
        row("read, guarded mount", f"{mbps(g_read):.0f} MB/s", read_raw / g_read, ">= 0.50")
        row(
            "list+stat, guarded mount, first listing",
            f"{g_list_cold * 1000:.0f} ms",
            g_list_cold / list_raw,
            "<= 2",
        )
        row(
            "list+stat, guarded mount, cached",
            f"{g_list_warm * 1000:.0f} ms",
            g_list_warm / list_raw,
        )
        print(f"(writes: {WRITES} small files closed until all are on the storage; / the mount's)")
        row("write, mount (baseline)", f"{write_plain * 1000:.0f} ms", 1)
        row("write, guarded mount", f"{write_guarded * 1000:.0f} ms", write_guarded / write_plain)
        print(
            f"mount guard: start {statistics.median(starts) * 1000:.0f} ms (median of 3), "
            f"RSS idle {idle_kb / 1024:.0f} MB, peak {peak_kb / 1024:.0f} MB"
        )
        if csv_local is None or csv_mount is None or csv_cached is None:
            print("pandas.read_csv: not measured (install the bench extra: pandas)")
            return
        print(f"(pandas ratios: time / the local disk's; {csv_mb} MB CSV; again: median of 3)")
        baseline = csv_local[1]
        row("pandas.read_csv, local disk (baseline)", f"{baseline * 1000:.0f} ms", 1)
        for label, pair in (("mount", csv_mount), ("mount with read cache", csv_cached)):
            for when, seconds in zip(("first", "again"), pair, strict=True):
                row(
                    f"pandas.read_csv, {label}, {when}",
                    f"{seconds * 1000:.0f} ms",
                    seconds / baseline,
                    "<= 1.5",
                )
    finally:
        for mounts in started:
            mounts.stop(upload_wait=0)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
