"""Folder ETags and the quota on large spaces: the drive walking every folder a request needs
(``watch_folders = False``, what it did before) against its inotify-kept cache, in one run.

Two users' spaces of 10,000 and 100,000 files (in 111 and 1,101 folders: projects of 10
subfolders each). For each, with the drive as `swan up` starts it (called on its own port,
quota on): PROPFIND Depth 0 and Depth 1 of the space's root, a 1 KB PUT (which checks the
quota), and in the cached mode also the first request (which reads everything) and a Depth 0
right after a file deep inside was changed beside the drive. Prints medians and the ratio of
cached to walked.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drive import running_hub  # noqa: E402
from webdav import median_ms  # noqa: E402

SIZES = {"alice": 10_000, "bob": 100_000}
PROPFIND = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    "<d:prop><d:resourcetype/><d:getlastmodified/><d:getcontentlength/><d:getetag/>"
    "<oc:fileid/><oc:permissions/><oc:size/></d:prop></d:propfind>"
)
CONFIG = "c.DriveService.quota_bytes = 10 * 1024**3\nc.DriveService.watch_folders = {watch}\n"


def folders_of(files: int) -> list[str]:
    """One project of 10 subfolders per 1,000 files."""
    return [
        f"project {p:03d}/part {s:02d}" if s < 10 else f"project {p:03d}"
        for p in range(files // 1000)
        for s in range(11)
    ]


def make_space(space: Path, files: int) -> Path:
    """``files`` files spread evenly over the folders of `folders_of`; returns a deep one."""
    folders = folders_of(files)
    for i, name in enumerate(folders):
        folder = space / name
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(files * (i + 1) // len(folders) - files * i // len(folders)):
            (folder / f"data {f:04d}.csv").write_bytes(b"x,y\n1,2\n")
    return space / "project 003" / "part 07" / "data 0001.csv"


def measure(base: str, client: httpx.Client, deep_file: Path, watch: bool) -> dict[str, float]:
    def propfind(depth: str) -> None:
        r = client.request("PROPFIND", f"{base}/", headers={"Depth": depth}, content=PROPFIND)
        assert r.status_code == 207, r.status_code

    def put() -> None:
        assert client.put(f"{base}/small.txt", content=b"z" * 1024).status_code in (201, 204)

    results = {}
    if watch:
        t0 = time.perf_counter()
        propfind("0")
        results["first request (reads everything)"] = (time.perf_counter() - t0) * 1000
    else:
        propfind("0")
    rounds = 5 if not watch else 25
    results["PROPFIND Depth 0 of the root"] = median_ms(lambda: propfind("0"), rounds)
    results["PROPFIND Depth 1 of the root"] = median_ms(lambda: propfind("1"), rounds)
    results["PUT 1 KB (quota checked)"] = median_ms(put, rounds)
    if watch:
        times = []
        for i in range(rounds):
            subprocess.run(["sh", "-c", f"echo {i} >> '{deep_file}'"], check=True)
            t0 = time.perf_counter()
            propfind("0")
            times.append(time.perf_counter() - t0)
        results["Depth 0 after a change beside the drive"] = statistics.median(times) * 1000
    return results


def run_mode(tmp: Path, watch: bool, deep: dict[str, Path]) -> dict[str, dict[str, float]]:
    config = CONFIG.format(watch=watch)
    with running_hub(tmp, tuple(SIZES), config) as (drive_url, tokens, spaces):
        if not deep:
            for user, files in SIZES.items():
                deep[user] = make_space(spaces / user, files)
        found = {}
        for user in SIZES:
            base = f"{drive_url}/remote.php/dav/files/{user}"
            with httpx.Client(timeout=600, auth=(user, tokens[user])) as client:
                found[user] = measure(base, client, deep[user], watch)
        return found


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="swan-bench-folders-") as tmp:
        deep: dict[str, Path] = {}
        walked = run_mode(Path(tmp), False, deep)
        kept = run_mode(Path(tmp), True, deep)

    print("\nFolder ETags and quota: walking each request vs the inotify-kept cache (median ms)")
    ratios = {}
    for user, files in SIZES.items():
        print(f"  {files:,} files in {len(folders_of(files)) + 1:,} folders")
        print(f"    {'operation':<42} {'walked':>9} {'cached':>9} {'ratio':>8}")
        for name, value in kept[user].items():
            before = walked[user].get(name)
            if before is None:
                print(f"    {name:<42} {'':>9} {value:>9.1f}")
                continue
            ratios[f"{files} {name}"] = value / before
            print(f"    {name:<42} {before:>9.1f} {value:>9.1f} {value / before:>7.3f}x")
    return {"walked_ms": walked, "cached_ms": kept, "ratios": ratios}


if __name__ == "__main__":
    main()
