"""What code pays for reading the storage through the rclone mount (swan_hub.mounts), against
baselines taken in the same run on the same Apache mod_dav server and the same files:

- sequential read of a large file (SWAN_BENCH_MOUNT_MB, default 1024 MB): through the mount vs a
  raw streamed GET (goal: >= 50% of the GET's throughput) vs the local disk;
- listing 10,000 files with every file's size and time (`os.scandir` + stat, as `ls -l` does):
  through the mount, cold (first listing after mounting) and warm, vs one raw PROPFIND Depth 1
  (goal: within 2x) vs the local disk.

Run: `./scripts/bench mount` (or `.venv/bin/python benchmarks/mount.py`). Needs rclone and fuse3.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness.dav_servers import ApacheDavServer, shared_root  # noqa: E402

from swan_hub.mounts import StorageMounts, missing_parts  # noqa: E402

FILES = 10_000
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


def main() -> None:
    missing = missing_parts()
    if missing:
        sys.exit(f"mount benchmark: cannot mount here: {missing}")
    size_mb = int(os.environ.get("SWAN_BENCH_MOUNT_MB", "1024"))
    root = shared_root()
    server = ApacheDavServer(root)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="swan-bench-mount-"))
    mounts = None
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

        mounts = StorageMounts(url=url, point=str(work / "files"), work_dir=str(work / "rclone"))
        mounts.start(None, "", timeout=60)
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
            list_local = min(timed(lambda: list_with_stats(str(many))) for _ in range(3))
            read_raw = timed(raw_get)
            read_mount = timed(lambda: read_file(os.path.join(point, "big.bin")))
            read_local = timed(lambda: read_file(str(big)))

        def mbps(seconds: float) -> float:
            return size_mb / seconds

        def row(name: str, value: str, ratio: float, goal: str = "") -> None:
            print(f"{name:44} {value:>12} {ratio:8.2f}  {goal}")

        print(f"\nmount: rclone mount of Apache mod_dav ({size_mb} MB file, {FILES} files)")
        print(f"{'measure':44} {'value':>12} {'ratio':>8}  goal")
        row("read, raw GET (baseline)", f"{mbps(read_raw):.0f} MB/s", 1)
        row(
            "read, through the mount",
            f"{mbps(read_mount):.0f} MB/s",
            read_raw / read_mount,
            ">= 0.50",
        )
        row("read, local disk", f"{mbps(read_local):.0f} MB/s", read_raw / read_local)
        print("(read ratios: throughput / the GET's; listing ratios: time / the PROPFIND's)")
        row("list+stat, one PROPFIND Depth 1 (baseline)", f"{list_raw * 1000:.0f} ms", 1)
        row(
            "list+stat, mount, first listing",
            f"{list_cold * 1000:.0f} ms",
            list_cold / list_raw,
            "<= 2",
        )
        row("list+stat, mount, cached", f"{list_warm * 1000:.0f} ms", list_warm / list_raw)
        row("list+stat, local disk", f"{list_local * 1000:.0f} ms", list_local / list_raw)
    finally:
        if mounts is not None:
            mounts.stop(upload_wait=0)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
