"""A folder of 20,000 entries in JupyterLab's file browser, in a real browser (Debian's Chromium
driven by Playwright) against JupyterLab with our contents manager and labextension. JupyterLab
alone draws every entry and redraws them all on each click and refresh (half a minute for the
folder, seconds per click, measured by `./scripts/bench labfolder`); with the labextension the
browser draws the first 1,000 in the order the person chose, says how many there are, and stays
usable: a click selects, a double-click opens, sorting by date shows the newest of the whole
folder, a new file shows (and is named in place) wherever it sorts, and the browser's filter
finds any entry by name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from harness.lab_browser import Lab, chromium_page, eventually, needs_chromium, running_lab

pytest.importorskip("playwright.sync_api")
pytestmark = needs_chromium

ENTRIES = 20_000
SHOWN = 1000  # js/src/bigFolders.ts: SHOWN_AT_MOST


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """JupyterLab on a space whose `runs/` holds a folder and 20,000 CSV files, the later the
    name the newer the file."""
    tmp_path = tmp_path_factory.mktemp("big-folder")
    runs = tmp_path / "space" / "runs"
    (runs / "calibration").mkdir(parents=True)
    (runs / "calibration" / "notes.txt").write_text("a folder among the files\n")
    first = time.time() - 30 * 86400
    for i in range(ENTRIES):
        path = runs / f"run-{i:06d}.csv"
        path.write_bytes(b"t,e\n1,2\n")
        os.utime(path, (first + i * 60, first + i * 60))
    with running_lab(tmp_path, tmp_path / "space") as served:
        yield served


def names_shown(page) -> list[str]:
    return page.locator(".jp-DirListing-item .jp-DirListing-itemText").all_inner_texts()


def test_a_folder_of_20000_entries_shows_its_first_1000_and_stays_usable(lab, tmp_path):
    with chromium_page(tmp_path) as page:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{lab.url}/lab/tree/runs?reset&token={lab.token}")
        page.locator(".jp-DirListing-itemText", has_text="run-000000.csv").wait_for()

        shown = names_shown(page)
        assert len(shown) == SHOWN
        # in JupyterLab's order: folders first, then by name
        assert shown[:3] == ["calibration", "run-000000.csv", "run-000001.csv"]
        assert shown[-1] == f"run-{SHOWN - 2:06d}.csv"
        notice = page.locator(".swan-BigFolderNotice")
        assert notice.is_visible()
        assert "Showing 1,000 of 20,001 entries." in notice.inner_text()

        page.locator(".jp-DirListing-itemText", has_text="run-000003.csv").click()
        assert (
            page.locator(".jp-DirListing-item.jp-mod-selected")
            .inner_text()
            .startswith("run-000003.csv")
        )
        page.locator(".jp-DirListing-itemText", has_text="run-000005.csv").dblclick()
        page.locator(".lm-TabBar-tab", has_text="run-000005.csv").wait_for()

        # "Last Modified" sorts the whole folder: the newest file is far beyond the first 1,000
        page.locator(".jp-DirListing-headerItem.jp-id-modified").click()
        eventually(lambda: names_shown(page)[1] == "run-019999.csv")
        shown = names_shown(page)
        assert shown[:3] == ["calibration", "run-019999.csv", "run-019998.csv"]
        # and the file open in a tab, which sorts far from them now
        assert len(shown) == SHOWN + 1 and shown[-1] == "run-000005.csv"
        # again: the oldest first
        page.locator(".jp-DirListing-headerItem.jp-id-modified").click()
        eventually(lambda: names_shown(page)[1] == "run-000000.csv")

        # a new file shows, and is named in place, though it sorts far beyond the first 1,000
        page.locator(".jp-DirListing-itemText", has_text="run-000010.csv").click(button="right")
        page.locator(".lm-Menu-itemLabel", has_text="New File").first.click()
        editor = page.locator(".jp-DirListing-editor")
        editor.wait_for()
        editor.fill("fresh-notes.txt")
        editor.press("Enter")
        page.locator(".jp-DirListing-itemText", has_text="fresh-notes.txt").wait_for()
        eventually(lambda: (lab.root / "runs" / "fresh-notes.txt").exists())
        assert page.locator(".jp-Dialog").count() == 0  # no "Item does not exist"
        assert "Showing 1,001 of 20,002 entries." in notice.inner_text()

        # the browser's filter looks through all 20,002 entries
        notice.get_by_role("button", name="Find by name").click()
        search = page.locator(".jp-FileBrowser-filterBox input")
        search.wait_for(state="visible")
        eventually(
            lambda: page.evaluate(
                "() => !!document.activeElement?.closest('.jp-FileBrowser-filterBox')"
            )
        )
        page.keyboard.type("run-012345")
        found = page.locator(".jp-DirListing-item", has_text="run-012345.csv")
        found.wait_for()
        assert notice.is_hidden()
        found.dblclick()
        page.locator(".lm-TabBar-tab", has_text="run-012345.csv").wait_for()
        assert errors == []


def test_a_folder_below_the_limit_is_drawn_whole_without_a_notice(lab, tmp_path):
    with chromium_page(tmp_path) as page:
        page.goto(f"{lab.url}/lab/tree/runs/calibration?reset&token={lab.token}")
        page.locator(".jp-DirListing-itemText", has_text="notes.txt").wait_for()
        assert names_shown(page) == ["notes.txt"]
        assert page.locator(".swan-BigFolderNotice").is_hidden()
