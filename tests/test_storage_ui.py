"""Conflicts in a real browser: Debian's Chromium driven by Playwright against JupyterLab (and
Notebook 7) with our contents manager and labextension.

A "second writer" is another client of the same server's REST API, as a sync client or a second
browser tab would be; the storage is a local folder. Screenshots for docs/storage.md go to
$SWAN_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_browser import (
    Lab,
    chromium_page,
    eventually,
    needs_chromium,
    notebook_json,
    running_lab,
    screenshot_dir,
)

pytest.importorskip("playwright.sync_api")
pytestmark = needs_chromium

CHANGED = "was changed elsewhere"
KEEP_BOTH = "Keep both (save mine as a conflict copy)"


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """One JupyterLab for the module; each test works on files of its own."""
    tmp_path = tmp_path_factory.mktemp("lab")
    root = tmp_path / "space"
    root.mkdir()
    with running_lab(tmp_path, root) as served:
        yield served


@pytest.fixture
def page(tmp_path):
    with chromium_page(tmp_path, permissions=("clipboard-read", "clipboard-write")) as opened:
        yield opened


@pytest.fixture
def screenshots(tmp_path) -> Path:
    return screenshot_dir(tmp_path)


def write_notebook(lab: Lab, path: str, source: str) -> None:
    """Save a notebook through the REST API, as another client (a second writer) would."""
    reply = lab.api(
        "PUT", f"api/contents/{path}", {"type": "notebook", "content": notebook_json(source)}
    )
    assert reply.status_code in (200, 201), reply.text


def source_of(lab: Lab, path: str) -> str:
    """The first cell's source as stored (JupyterLab saves it as a list of lines)."""
    source = json.loads((lab.root / path).read_text())["cells"][0]["source"]
    return "".join(source) if isinstance(source, list) else source


def open_lab(page, lab: Lab, at: str = "lab") -> None:
    """Open the app at a URL path; JupyterLab starts from an empty layout (`reset`), not with
    the tabs an earlier test of the module left open."""
    page.goto(f"{lab.url}/{at}?reset&token={lab.token}")


def open_notebook(page, lab: Lab, path: str, app: str = "lab/tree") -> None:
    """Open a notebook and wait until its stored content is shown (a notebook being opened
    shows an empty cell first)."""
    open_lab(page, lab, f"{app}/{path}")
    stored = source_of(lab, path)
    eventually(lambda: visible_cell_text(page) == stored)


def edit_first_cell_and_save(page, text: str) -> None:
    """Type at the end of the first cell of the notebook in view, then press Ctrl+S."""
    page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").first.click()
    page.keyboard.press("End")
    page.keyboard.type(text)
    page.keyboard.press("Control+s")


def dialog(page, title: str):
    box = page.locator(".jp-Dialog-content", has=page.locator(".jp-Dialog-header", has_text=title))
    box.wait_for()
    return box


def visible_cell_text(page) -> str:
    return page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").first.inner_text()


# -- conflicts -----------------------------------------------------------------------------------


def test_keep_both_saves_mine_as_a_conflict_copy_and_shows_theirs(page, lab, screenshots):
    write_notebook(lab, "analysis.ipynb", "x = 1")
    open_notebook(page, lab, "analysis.ipynb")
    write_notebook(lab, "analysis.ipynb", "x = 'theirs'")

    edit_first_cell_and_save(page, "  # mine")
    box = dialog(page, CHANGED)
    assert page.locator(".jp-Dialog-header", has_text="File Changed").count() == 0
    box.screenshot(path=str(screenshots / "conflict-dialog.png"))
    box.get_by_role("button", name=KEEP_BOTH).click()

    copies = lambda: list(lab.root.glob("analysis (conflict *).ipynb"))  # noqa: E731
    eventually(lambda: len(copies()) == 1)
    assert source_of(lab, copies()[0].name) == "x = 1  # mine"
    assert source_of(lab, "analysis.ipynb") == "x = 'theirs'"
    # the copy opens in a new tab; the original's tab now shows theirs
    page.locator(".lm-TabBar-tabLabel", has_text="(conflict").wait_for()
    page.locator(".lm-TabBar-tabLabel", has_text=re.compile(r"^analysis\.ipynb$")).click()
    eventually(lambda: visible_cell_text(page) == "x = 'theirs'")


def test_cancel_keeps_my_edits_unsaved_and_reload_theirs_drops_them(page, lab):
    write_notebook(lab, "reload.ipynb", "y = 1")
    open_notebook(page, lab, "reload.ipynb")
    write_notebook(lab, "reload.ipynb", "y = 'theirs'")

    edit_first_cell_and_save(page, "  # mine")
    dialog(page, CHANGED).get_by_role("button", name="Cancel").click()
    assert visible_cell_text(page) == "y = 1  # mine"
    assert source_of(lab, "reload.ipynb") == "y = 'theirs'"

    page.keyboard.press("Control+s")
    dialog(page, CHANGED).get_by_role("button", name="Reload theirs").click()
    eventually(lambda: visible_cell_text(page) == "y = 'theirs'")
    assert source_of(lab, "reload.ipynb") == "y = 'theirs'"
    assert list(lab.root.glob("reload (conflict *")) == []


def test_a_file_deleted_meanwhile_can_be_saved_again(page, lab):
    write_notebook(lab, "deleted.ipynb", "z = 1")
    open_notebook(page, lab, "deleted.ipynb")
    assert lab.api("DELETE", "api/contents/deleted.ipynb").status_code == 204

    edit_first_cell_and_save(page, "  # mine")
    box = dialog(page, "was deleted or moved elsewhere")
    box.get_by_role("button", name="Save mine again").click()
    eventually(lambda: (lab.root / "deleted.ipynb").exists())
    assert source_of(lab, "deleted.ipynb") == "z = 1  # mine"


def test_notebook_7_asks_too_and_overwrite_saves_mine_over_theirs(page, lab):
    write_notebook(lab, "classic.ipynb", "a = 1")
    open_notebook(page, lab, "classic.ipynb", app="notebooks")
    write_notebook(lab, "classic.ipynb", "a = 'theirs'")

    edit_first_cell_and_save(page, "  # mine")
    dialog(page, CHANGED).get_by_role("button", name="Overwrite with mine").click()
    eventually(lambda: source_of(lab, "classic.ipynb") == "a = 1  # mine")
    # the version now known is mine: the next save is an ordinary one
    edit_first_cell_and_save(page, "!")
    eventually(lambda: source_of(lab, "classic.ipynb") == "a = 1  # mine!")
    assert page.locator(".jp-Dialog").count() == 0
