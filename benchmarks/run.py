"""Run every benchmark in this folder, one after the other, and print their tables.

Each benchmark measures its baseline in the same run and prints ratios against it; none of them
is a pass/fail test.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bigfolder  # noqa: E402
import drive  # noqa: E402
import drivepage  # noqa: E402
import federation  # noqa: E402
import folders  # noqa: E402
import hubload  # noqa: E402
import labfolder  # noqa: E402
import layers  # noqa: E402
import lecture  # noqa: E402
import listing  # noqa: E402
import mount  # noqa: E402
import openin  # noqa: E402
import preview  # noqa: E402
import signatures  # noqa: E402
import spawn  # noqa: E402
import stalls  # noqa: E402
import startup  # noqa: E402
import uploads  # noqa: E402
import webdav  # noqa: E402

BENCHMARKS = {
    "listing": listing.main,
    "webdav": webdav.main,
    "drive": drive.main,
    "openin": openin.main,
    "spawn": spawn.main,
    "startup": startup.main,
    "hubload": hubload.main,
    "layers": layers.main,
    "folders": folders.main,
    "uploads": uploads.main,
    "mount": mount.main,
    "federation": federation.main,
    "stalls": stalls.main,
    "bigfolder": bigfolder.main,
    "preview": preview.main,
    "drivepage": drivepage.main,
    "labfolder": labfolder.main,
    "lecture": lecture.main,
    "signatures": signatures.main,
}

#: Smaller runs of the longest benchmarks when every benchmark runs; named, they run in full
#: (`./scripts/bench lecture`: a class of 30).
IN_A_RUN_OF_ALL = {"lecture": {"students": 10}}


def main(argv: list[str]) -> None:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names:
        BENCHMARKS[name](**(IN_A_RUN_OF_ALL.get(name, {}) if not argv else {}))


if __name__ == "__main__":
    main(sys.argv[1:])
