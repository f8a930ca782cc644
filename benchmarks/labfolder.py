"""JupyterLab's file browser on big folders, in Debian's Chromium, with our contents manager
on a local folder: JupyterLab with the labextension (which draws at most 1,000 entries of a
folder) against JupyterLab with the labextension turned off, in the same run.

Per folder (10 entries, SWAN_BENCH_LAB_ENTRIES = 20,000 and 100,000 by default): the listing
shown (from the navigation to the folder's first entry drawn), a click until the entry is
selected, a double-click until its tab opens, and the longest task on the page's main thread in
the 12 s after it (JupyterLab lists the folder again every 10 s). Medians of ROUNDS with the
labextension; one round without it, and without it only up to SWAN_BENCH_LAB_ALONE_MAX entries
(default 20,000: a bigger folder freezes that page for minutes).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from drivepage import make_folder  # noqa: E402
from harness.lab_browser import chromium_page, running_lab  # noqa: E402

ROUNDS = 3
SMALL = 10
IDLE_SECONDS = 12

LONG_TASKS = """() => {
  window.__longTasks = [];
  new PerformanceObserver(list => {
    for (const task of list.getEntries()) window.__longTasks.push(task.duration);
  }).observe({ type: 'longtask' });
}"""


def one_round(page, url: str, token: str, name: str) -> dict[str, float]:
    """Milliseconds of each step in folder ``name``."""
    started = time.perf_counter()
    page.goto(f"{url}/lab/tree/{name}?reset&token={token}")
    page.locator(".jp-DirListing-itemText", has_text="run-000000.csv").wait_for()
    shown = time.perf_counter() - started
    started = time.perf_counter()
    page.locator(".jp-DirListing-itemText", has_text="run-000003.csv").click()
    page.locator(".jp-DirListing-item.jp-mod-selected", has_text="run-000003.csv").wait_for()
    selected = time.perf_counter() - started
    started = time.perf_counter()
    page.locator(".jp-DirListing-itemText", has_text="run-000005.csv").dblclick()
    page.locator(".lm-TabBar-tab", has_text="run-000005.csv").wait_for()
    opened = time.perf_counter() - started
    page.evaluate(LONG_TASKS)
    page.wait_for_timeout(IDLE_SECONDS * 1000)
    longest = max(page.evaluate("() => window.__longTasks"), default=0.0)
    return {
        "shown": shown * 1000,
        "selected": selected * 1000,
        "opened": opened * 1000,
        "longest": longest,
    }


def measure(sizes: list[int], rounds: int, labextension: bool) -> dict[int, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = tmp / "space"
        for size in sizes:
            make_folder(root / f"f{size}", size)
        if not labextension:
            labconfig = tmp / "config" / "labconfig"
            labconfig.mkdir(parents=True)
            (labconfig / "page_config.json").write_text(
                json.dumps({"disabledExtensions": {"@swan-suite/labextension": True}})
            )
        results = {}
        with running_lab(tmp, root) as lab, chromium_page(tmp) as page:
            page.set_default_timeout(600_000)
            one_round(page, lab.url, lab.token, f"f{SMALL}")  # warm: the page's code, fonts
            for size in sizes:
                runs = [one_round(page, lab.url, lab.token, f"f{size}") for _ in range(rounds)]
                results[size] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        return results


def main(rounds: int = ROUNDS) -> dict:
    big = [int(n) for n in os.environ.get("SWAN_BENCH_LAB_ENTRIES", "20000,100000").split(",")]
    alone_max = int(os.environ.get("SWAN_BENCH_LAB_ALONE_MAX", "20000"))
    ours = measure([SMALL, *big], rounds, labextension=True)
    alone = measure([SMALL, *(n for n in big if n <= alone_max)], 1, labextension=False)
    labels = {
        "shown": "listing shown",
        "selected": "click -> selected",
        "opened": "double-click -> tab",
        "longest": f"longest task in {IDLE_SECONDS} s after",
    }
    print(f"\nJupyterLab's file browser on big folders (Chromium; ms; ours: medians of {rounds})")
    for size in [SMALL, *big]:
        print(
            f"\n{size:,} entries{'':<22}{'ours':>9}{'alone':>9}{'ours/alone':>12}"
            f"{'ours/10 entries':>17}"
        )
        for key, label in labels.items():
            mine = ours[size][key]
            theirs = alone.get(size, {}).get(key)
            versus = f"{mine / theirs:>11.2f}x" if theirs else f"{'':>12}"
            base = ours[SMALL][key]
            against_small = f"{mine / base:>16.2f}x" if base else f"{'':>17}"
            shown_alone = f"{theirs:>9.0f}" if theirs is not None else f"{'-':>9}"
            print(f"  {label:<32}{mine:>9.0f}{shown_alone}{versus}{against_small}")
    return {"ours": ours, "alone": alone}


if __name__ == "__main__":
    main()
