"""A scientist's first hour, walked in Debian's Chromium through `swan up` (the real hub, proxy,
drive and notebook servers on 127.0.0.1): she signs in to the hub, finds the drive in its
Services menu, makes a folder and uploads a CSV and a notebook into it, previews the notebook,
opens it in SWAN, runs a cell that reads the CSV beside it, edits and saves, gets the earlier
version back from the drive's Versions view and downloads the folder as a zip. Every step
asserts what she sees; no step meets an uncaught page error or a "Path Not Found".

Screenshots for docs/ go to $SWAN_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.lab_browser import (
    add_to_the_cell_and_save,
    eventually,
    fill_hub_login,
    needs_chromium,
    notebook_json,
    person,
    screenshot_dir,
)
from harness.swan import SWAN_UP_MARKS, Swan, ready_for_browsers, start_swan

from swan_hub.mounts import missing_parts

pytest.importorskip("playwright.sync_api")
pytestmark = [
    *SWAN_UP_MARKS,
    needs_chromium,
    pytest.mark.skipif(bool(missing_parts()), reason=f"kernels cannot mount: {missing_parts()}"),
]

RUNS = "run,energy\n1,13.5\n2,7.25\n3,9.25\n"
#: reads the CSV beside the notebook, as the kernel starts in the notebook's folder
READS_THE_CSV = (
    "import csv\n"
    "rows = list(csv.DictReader(open('runs.csv')))\n"
    "print('total energy', sum(float(r['energy']) for r in rows))"
)
NOTEBOOK = (json.dumps(notebook_json(READS_THE_CSV), indent=1) + "\n").encode()


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    """`swan up` (the drive as storage) with the scientist alice, her server running."""
    swan = start_swan(tmp_path_factory.mktemp("journey-scientist"), users="alice")
    try:
        ready_for_browsers(swan, ("alice",))
        yield swan
    finally:
        swan.kill_everything()


def assert_a_page_of_ours(page) -> None:
    """A page of the drive (not a browser's own error page), and no stack trace shown."""
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and "This site can" not in text
    assert page.locator("main").count() == 1


def new_folder(page, name: str) -> None:
    """Make the folder ``name`` with the drive page's New folder, as the page says it did."""
    page.get_by_role("button", name="New folder").click()
    page.get_by_role("dialog", name="New folder").get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create").click()
    page.get_by_role("status").filter(has_text=f"Made the folder “{name}”.").wait_for()


def test_a_scientist_uploads_runs_edits_restores_and_downloads_her_work(swan, browser, tmp_path):
    shots = screenshot_dir(tmp_path)
    space = swan.data / "users" / "alice"
    page = person(browser)

    # signed in to the hub, the drive is one of its services
    page.goto(f"{swan.url}/hub/home")
    fill_hub_login(page, "alice", swan.passwords()["alice"])
    page.locator(".navbar").get_by_text("Services").click()
    page.get_by_role("link", name="drive", exact=True).click()
    page.wait_for_url(f"{swan.url}/services/drive/")
    page.get_by_role("heading", name="SWAN drive").wait_for()
    page.get_by_role("link", name="Shared with me").wait_for()
    assert_a_page_of_ours(page)

    # a new folder, then into it
    new_folder(page, "higgs-search")
    page.get_by_role("link", name="higgs-search/", exact=True).click()
    page.wait_for_url("**/services/drive/?dir=higgs-search")
    page.get_by_role("navigation", name="Folder").get_by_text("higgs-search").wait_for()

    # the CSV and the notebook uploaded at once, each said done
    page.get_by_label("Choose files").set_input_files(
        files=[
            {"name": "runs.csv", "mimeType": "text/csv", "buffer": RUNS.encode()},
            {"name": "analysis.ipynb", "mimeType": "application/json", "buffer": NOTEBOOK},
        ]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    for name in ("runs.csv", "analysis.ipynb"):
        page.get_by_role("link", name=name, exact=True).wait_for()
    assert (space / "higgs-search" / "runs.csv").read_text() == RUNS
    assert (space / "higgs-search" / "analysis.ipynb").read_bytes() == NOTEBOOK
    page.screenshot(path=str(shots / "journey-scientist-uploaded.png"))

    # the notebook's preview shows its code, rendered
    page.get_by_role("link", name="analysis.ipynb", exact=True).click()
    page.get_by_role("heading", name="analysis.ipynb").wait_for()
    page.frame_locator("iframe.rendered").get_by_text("csv.DictReader").wait_for()
    assert_a_page_of_ours(page)

    # Open in SWAN: JupyterLab opens the notebook, and its kernel reads the CSV beside it
    page.get_by_role("link", name="Open in SWAN").click()
    page.wait_for_url("**/user/alice/lab/tree/higgs-search/analysis.ipynb")
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-Cell", has_text="csv.DictReader").wait_for()
    # run once the notebook's session has its kernel: the toolbar's indicator says idle before
    # that, and a cell run then runs nothing
    page.locator("#jp-main-statusbar", has_text="(ipykernel) | Idle").wait_for(timeout=90_000)
    notebook.locator(".jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")
    output = notebook.locator(".jp-OutputArea-output", has_text="total energy 30.0")
    try:
        output.wait_for(timeout=90_000)
    except Exception as e:  # say what the cell gave instead
        shown = notebook.locator(".jp-OutputArea-output").all_inner_texts()
        raise AssertionError(f"the cell gave {shown!r}") from e

    # edited and saved: the drive holds the edit
    time.sleep(1.1)  # the drive names versions by their second
    add_to_the_cell_and_save(notebook, "  # checked by alice")
    saved = space / "higgs-search" / "analysis.ipynb"
    eventually(lambda: "checked by alice" in saved.read_text())
    assert page.locator(".jp-Dialog", has_text="Path Not Found").count() == 0

    # the drive's Versions view lists the uploaded version and restores it, losing nothing
    page.goto(f"{swan.url}/services/drive/?dir=higgs-search")
    page.get_by_role("checkbox", name="Select analysis.ipynb").check()
    page.get_by_role("button", name="Versions").click()
    page.wait_for_url("**/services/drive/versions?path=higgs-search%2Fanalysis.ipynb")
    page.get_by_role("heading", name="Versions of analysis.ipynb").wait_for()
    assert "nothing is lost" in page.get_by_role("main").inner_text()
    assert_a_page_of_ours(page)
    restore = page.get_by_role("button", name=re.compile("^Restore the version of "))
    assert restore.count() == 1
    restore.click()
    status = page.get_by_role("status")
    status.filter(has_text="What the file held before is now among its versions.").wait_for()
    assert saved.read_bytes() == NOTEBOOK

    def the_edit_is_a_version() -> bool:
        """the version list, shown again, holds the content the restore replaced"""
        hrefs = page.locator("a.download").evaluate_all("a => a.map(l => l.href)")
        return any(b"checked by alice" in page.request.get(h).body() for h in hrefs)

    eventually(the_edit_is_a_version)

    # the folder downloaded as one zip, with both files
    page.get_by_role("link", name="Files", exact=True).click()
    row = page.locator("tr", has=page.get_by_role("link", name="higgs-search/", exact=True))
    with page.expect_download() as downloading:
        row.get_by_role("link", name="Download higgs-search/").click()
    download = downloading.value
    assert download.suggested_filename == "higgs-search.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
        names = sorted(n.rsplit("/", 1)[-1] for n in archive.namelist() if not n.endswith("/"))
        assert names == ["analysis.ipynb", "runs.csv"]
        assert archive.read(next(n for n in archive.namelist() if n.endswith("runs.csv"))) == (
            RUNS.encode()
        )
    assert page.errors == []
