"""The drive's web page on a big folder, in Debian's Chromium: the Files view of a folder of
SWAN_BENCH_PAGE_ENTRIES entries (default 10,000) against the same view of a folder of 10, in one
run of `swan up`. Measured per load (medians of ROUNDS): the page's HTML answered (navigation
timing's responseEnd), its first contentful paint, and the rows shown (the first row of the
listing in the document). The goal (issue 16): the big folder's first paint under 1 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness.drive import running_drive  # noqa: E402
from harness.lab_browser import chromium_browser, fill_hub_login, person  # noqa: E402

ROUNDS = 7
SMALL = 10

TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return { html: nav.responseEnd, paint: paint ? paint.startTime : null };
}"""


def make_folder(root: Path, count: int) -> None:
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"run-{i:06d}.csv").write_bytes(b"t,e\n1,2\n")


def load(page, url: str) -> dict[str, float]:
    """One load of ``url``: milliseconds from the start of the navigation."""
    started = time.perf_counter()
    page.goto(url)
    page.locator("tr[data-path]").first.wait_for()
    shown = (time.perf_counter() - started) * 1000
    timing = page.evaluate(TIMING)
    return {"html": timing["html"], "paint": timing["paint"] or shown, "rows": shown}


def main(rounds: int = ROUNDS) -> dict:
    entries = int(os.environ.get("SWAN_BENCH_PAGE_ENTRIES", "10000"))
    with tempfile.TemporaryDirectory() as tmp, running_drive(Path(tmp), users="alice") as drive:
        space = drive.space("alice")
        make_folder(space / "small", SMALL)
        make_folder(space / "big", entries)
        results: dict[str, dict[str, float]] = {}
        with chromium_browser() as browser:
            page = person(browser)
            page.goto(f"{drive.base}/?dir=small")
            fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
            page.locator("tr[data-path]").first.wait_for()
            for name in ("small", "big"):
                load(page, f"{drive.base}/?dir={name}")  # warm: the folder cache, the fonts
                loads = [load(page, f"{drive.base}/?dir={name}") for _ in range(rounds)]
                results[name] = {k: statistics.median(x[k] for x in loads) for k in loads[0]}
            rows = page.locator("tr[data-path]").count()
    print(f"\ndrive page, Files view (Chromium, medians of {rounds}; ms from navigation start)")
    print(f"{'measure':<34}{SMALL:>9} entries{entries:>9} entries{'ratio':>8}  goal")
    labels = {"html": "page answered", "paint": "first contentful paint", "rows": "rows shown"}
    for key, label in labels.items():
        small, big = results["small"][key], results["big"][key]
        goal = "< 1000 ms" if key == "paint" else ""
        print(f"{label:<34}{small:>9.0f}        {big:>9.0f}        {big / small:>7.2f}x  {goal}")
    print(f"(rows in the big folder's first page: {rows})")
    return {"entries": entries, "rows_on_page": rows, **results}


if __name__ == "__main__":
    main()
