"""Conflicts, versions, trash and open-in links in a real browser: Debian's Chromium driven by
Playwright against JupyterLab (and Notebook 7) with our contents manager and labextension.

A "second writer" is another client of the same server's REST API, as a sync client or a second
browser tab would be; the storage is a local folder. Screenshots for docs/storage.md and
docs/open-in.md go to $SWAN_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.lab_browser import (
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


def write_notebook(lab: Lab, path: str, source: str, *more: str) -> None:
    """Save a notebook of a cell of `source` (and one for each of `more`) through the REST API,
    as another client (a second writer) would."""
    content = notebook_json(source)
    first = content["cells"][0]
    content["cells"] += [{**first, "id": f"cell-{i}", "source": s} for i, s in enumerate(more, 2)]
    reply = lab.api("PUT", f"api/contents/{path}", {"type": "notebook", "content": content})
    assert reply.status_code in (200, 201), reply.text


def sources_of(lab: Lab, path: str) -> list[str]:
    """The cells' sources as stored (JupyterLab saves each as a list of lines)."""
    cells = json.loads((lab.root / path).read_text())["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]


def source_of(lab: Lab, path: str) -> str:
    """The first cell's source as stored."""
    return sources_of(lab, path)[0]


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


def is_checkpoint_made(response) -> bool:
    """Whether a response answers the checkpoint JupyterLab makes at the end of each save."""
    return response.request.method == "POST" and response.url.split("?")[0].endswith("/checkpoints")


def visible_cell_text(page, index: int = 0) -> str:
    return page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").nth(index).inner_text()


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

    copies = lambda: list(lab.root.glob("analysis (*conflict *).ipynb"))  # noqa: E731
    eventually(lambda: len(copies()) == 1)
    assert source_of(lab, copies()[0].name) == "x = 1  # mine"
    assert source_of(lab, "analysis.ipynb") == "x = 'theirs'"
    # the copy opens in a new tab; the original's tab now shows theirs
    page.locator(".lm-TabBar-tabLabel", has_text="copy, conflict").wait_for()
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
    assert list(lab.root.glob("reload (*conflict *")) == []


def save_after_a_delete(page, lab: Lab, path: str, source: str):
    """Open a notebook, have another client delete it, edit and save: the dialog that asks."""
    write_notebook(lab, path, source)
    open_notebook(page, lab, path)
    assert lab.api("DELETE", f"api/contents/{path}").status_code == 204
    edit_first_cell_and_save(page, "  # mine")
    return dialog(page, "was deleted or moved elsewhere")


def merge_after_a_change(
    page, lab: Lab, path: str, cells: tuple[str, str], theirs: tuple[str, str]
):
    """Open a two-cell notebook, have another client save `theirs`, add "  # mine" to the first
    cell, save and choose Merge: the dialog that shows the merge."""
    write_notebook(lab, path, *cells)
    open_notebook(page, lab, path)
    write_notebook(lab, path, *theirs)
    edit_first_cell_and_save(page, "  # mine")
    dialog(page, CHANGED).get_by_role("button", name="Merge", exact=True).click()
    return dialog(page, "Merge your changes with theirs")


def test_merge_saves_my_change_and_theirs_to_other_cells_and_the_next_save_is_ordinary(
    page, lab, screenshots
):
    box = merge_after_a_change(
        page, lab, "merge.ipynb", ("a = 1", "b = 1"), ("a = 1", "b = 'theirs'")
    )
    summary = box.locator(".swan-Merge-summary li")
    summary.first.wait_for()
    texts = summary.all_inner_texts()
    assert any(t.startswith("Your changes: cell 1") for t in texts), texts
    assert "Their changes: cell 2" in texts
    assert not any(t.startswith("Conflicts") for t in texts)
    box.screenshot(path=str(screenshots / "conflict-merge.png"))
    with page.expect_response(is_checkpoint_made):
        box.get_by_role("button", name="Save the merge").click()
    assert sources_of(lab, "merge.ipynb") == ["a = 1  # mine", "b = 'theirs'"]
    assert list(lab.root.glob("merge (*conflict *")) == []
    eventually(lambda: visible_cell_text(page, 1) == "b = 'theirs'")  # the tab shows the merge
    # the version now known is the merge's: the next save is an ordinary one
    edit_first_cell_and_save(page, "!")
    eventually(lambda: source_of(lab, "merge.ipynb") == "a = 1  # mine!")
    assert sources_of(lab, "merge.ipynb")[1] == "b = 'theirs'"
    assert page.locator(".jp-Dialog").count() == 0


def test_a_merge_is_not_saved_over_a_third_change_made_meanwhile_but_asks_again(page, lab):
    box = merge_after_a_change(page, lab, "third.ipynb", ("e = 1", "f = 1"), ("e = 1", "f = 2"))
    box.locator(".swan-Merge-summary li").first.wait_for()
    write_notebook(lab, "third.ipynb", "e = 1", "f = 'a third writer'")
    box.get_by_role("button", name="Save the merge").click()
    dialog(page, CHANGED).get_by_role("button", name="Cancel").click()
    assert sources_of(lab, "third.ipynb") == ["e = 1", "f = 'a third writer'"]
    # the tab holds the merge, unsaved
    assert [visible_cell_text(page, i) for i in (0, 1)] == ["e = 1  # mine", "f = 2"]
    page.locator(".lm-TabBar-tab.jp-mod-dirty", has_text="third.ipynb").wait_for()


def test_a_merge_with_a_conflict_opens_unsaved_with_both_versions_marked(page, lab):
    box = merge_after_a_change(
        page, lab, "clash.ipynb", ("c = 1", "d = 1"), ("c = 'theirs'", "d = 1")
    )
    box.locator(".swan-Merge-summary li", has_text="Conflicts: cell 1").wait_for()
    assert "remove the markers, then save" in box.locator(".swan-Merge-outcome").inner_text()
    box.get_by_role("button", name="Open the merge to resolve").click()
    eventually(lambda: visible_cell_text(page).startswith("<<<<<<< local"))
    assert visible_cell_text(page).splitlines() == [
        "<<<<<<< local",
        "c = 1  # mine",
        "=======",
        "c = 'theirs'",
        ">>>>>>> remote",
    ]
    # nothing is saved until the person has resolved it; the tab says it has unsaved changes
    assert sources_of(lab, "clash.ipynb") == ["c = 'theirs'", "d = 1"]
    page.locator(".lm-TabBar-tab.jp-mod-dirty", has_text="clash.ipynb").wait_for()
    assert page.locator(".jp-Dialog").count() == 0
    # a save (or an autosave) while the markers are there asks first
    page.keyboard.press("Control+s")
    dialog(page, "still has conflicts to resolve").get_by_role("button", name="Not yet").click()
    assert sources_of(lab, "clash.ipynb") == ["c = 'theirs'", "d = 1"]
    # resolved, it is saved over theirs as an ordinary save
    page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").first.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("c = 'both'")
    page.keyboard.press("Control+s")
    eventually(lambda: sources_of(lab, "clash.ipynb") == ["c = 'both'", "d = 1"])
    assert page.locator(".jp-Dialog").count() == 0
    assert list(lab.root.glob("clash (*conflict *")) == []


def test_a_file_deleted_meanwhile_can_be_saved_again(page, lab):
    box = save_after_a_delete(page, lab, "deleted.ipynb", "z = 1")
    box.get_by_role("button", name="Save mine again").click()
    eventually(lambda: (lab.root / "deleted.ipynb").exists())
    assert source_of(lab, "deleted.ipynb") == "z = 1  # mine"


def test_saving_again_never_replaces_a_file_made_meanwhile_but_asks_about_it(page, lab):
    box = save_after_a_delete(page, lab, "remade.ipynb", "w = 1")
    # while the dialog is open, someone makes a new file of that name
    write_notebook(lab, "remade.ipynb", "w = 'theirs, new'")
    box.get_by_role("button", name="Save mine again").click()
    dialog(page, CHANGED).get_by_role("button", name=KEEP_BOTH).click()
    copies = lambda: list(lab.root.glob("remade (*conflict *).ipynb"))  # noqa: E731
    eventually(lambda: len(copies()) == 1)
    assert source_of(lab, copies()[0].name) == "w = 1  # mine"
    assert source_of(lab, "remade.ipynb") == "w = 'theirs, new'"


def test_notebook_7_asks_too_and_overwrite_saves_mine_over_theirs(page, lab):
    write_notebook(lab, "classic.ipynb", "a = 1")
    open_notebook(page, lab, "classic.ipynb", app="notebooks")
    write_notebook(lab, "classic.ipynb", "a = 'theirs'")

    edit_first_cell_and_save(page, "  # mine")
    # JupyterLab ignores Ctrl+S while a save of the document runs, and a save runs until its
    # checkpoint is made (after the file is written): the next save waits for that
    with page.expect_response(is_checkpoint_made):
        dialog(page, CHANGED).get_by_role("button", name="Overwrite with mine").click()
    assert source_of(lab, "classic.ipynb") == "a = 1  # mine"
    # the version now known is mine: the next save is an ordinary one
    edit_first_cell_and_save(page, "!")
    eventually(lambda: source_of(lab, "classic.ipynb") == "a = 1  # mine!")
    assert page.locator(".jp-Dialog").count() == 0


# -- versions and trash --------------------------------------------------------------------------


def test_a_version_is_restored_from_the_file_browser(page, lab, screenshots):
    for text in ("v = 1", "v = 2  # a second try", "v = 3  # the one that works, or so I thought"):
        write_notebook(lab, "report.ipynb", text)
        time.sleep(1)  # versions a second apart, as the screenshot shows them
    open_lab(page, lab)
    page.locator(".jp-DirListing-item", has_text="report.ipynb").click(button="right")
    page.get_by_role("menuitem", name="Versions…").click()
    versions = page.locator(".swan-Versions")
    rows = versions.locator(".swan-Versions-version")
    rows.nth(2).wait_for()
    assert rows.count() == 3
    page.locator(".jp-Dialog-content").screenshot(path=str(screenshots / "versions.png"))

    rows.nth(2).get_by_role("button", name="Restore").click()
    versions.locator(".swan-Dialog-status", has_text="Restored the version").wait_for()
    assert source_of(lab, "report.ipynb") == "v = 1"


def test_restoring_a_version_from_the_file_menu_reloads_the_open_notebook(page, lab):
    for text in ("w = 1", "w = 2"):
        write_notebook(lab, "open-report.ipynb", text)
    open_notebook(page, lab, "open-report.ipynb")
    page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").first.click()
    page.keyboard.type("# unsaved ")
    page.get_by_role("menuitem", name="File", exact=True).click()
    page.get_by_role("menuitem", name="Versions…").click()
    oldest = page.locator(".swan-Versions .swan-Versions-version").nth(1)
    oldest.get_by_role("button", name="Restore").click()
    # the open tab has unsaved changes: the dialog asks once more before replacing them
    page.locator(".swan-Dialog-status", has_text="unsaved changes").wait_for()
    oldest.get_by_role("button", name="Restore anyway").click()
    page.locator(".swan-Dialog-status", has_text="Restored the version").wait_for()
    page.get_by_role("button", name="Done").click()
    eventually(lambda: visible_cell_text(page) == "w = 1")
    assert source_of(lab, "open-report.ipynb") == "w = 1"


def test_a_version_is_compared_cell_by_cell_before_restoring(page, lab, screenshots):
    for text in ("total = 1\nprint(total)", "total = 2\nprint(total)"):
        write_notebook(lab, "compare.ipynb", text)
    open_lab(page, lab)
    page.locator(".jp-DirListing-item", has_text="compare.ipynb").click(button="right")
    page.get_by_role("menuitem", name="Versions…").click()
    oldest = page.locator(".swan-Versions .swan-Versions-version").nth(1)
    oldest.get_by_role("button", name="Compare").click()
    changed = page.locator(".swan-Diff-cell[data-status=changed]")
    changed.wait_for()
    lines = changed.locator(".swan-Diff-line")
    # from the current file to the version: what restoring it would change
    texts = [t.strip() for t in lines.all_inner_texts()]
    assert texts == ["− total = 2", "+ total = 1", "print(total)"], texts
    page.locator(".swan-Diff .swan-Dialog-status", has_text="1 cell differs").wait_for()
    page.locator(".jp-Dialog-content").screenshot(path=str(screenshots / "versions-compare.png"))
    assert source_of(lab, "compare.ipynb") == "total = 2\nprint(total)"  # comparing changed nothing


def test_nbdime_serves_only_through_the_contents_manager(lab):
    """nbdime comes as a library: its own server extension (which reads local paths, not the
    user's storage) and its JupyterLab extension are switched off; Compare is the way."""
    assert lab.api("GET", "nbdime/difftool").status_code == 404
    page = lab.api("GET", "lab").text
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S)[1])
    assert "nbdime-jupyterlab" in config["disabledExtensions"]


def test_the_conflict_dialog_compares_theirs_with_my_unsaved_notebook(page, lab):
    write_notebook(lab, "both.ipynb", "a = 1")
    open_notebook(page, lab, "both.ipynb")
    write_notebook(lab, "both.ipynb", "a = 'theirs'")
    edit_first_cell_and_save(page, "  # mine")
    box = dialog(page, CHANGED)
    box.get_by_role("button", name="Compare theirs with mine").click()
    changed = box.locator(".swan-Diff-cell[data-status=changed]")
    changed.wait_for()
    assert changed.locator(".swan-Diff-removed").inner_text().endswith("a = 'theirs'")
    assert changed.locator(".swan-Diff-added").inner_text().endswith("a = 1  # mine")
    # the choices are still there, and comparing saved nothing
    box.get_by_role("button", name=KEEP_BOTH).click()
    eventually(lambda: len(list(lab.root.glob("both (*conflict *).ipynb"))) == 1)
    assert source_of(lab, "both.ipynb") == "a = 'theirs'"


def test_a_deleted_file_comes_back_from_the_trash(page, lab, screenshots):
    write_notebook(lab, "old-results.ipynb", "r = 1")
    assert lab.api("DELETE", "api/contents/old-results.ipynb").status_code == 204
    open_lab(page, lab)
    page.locator(".jp-DirListing-content").first.wait_for()
    page.get_by_role("menuitem", name="File", exact=True).click()
    page.get_by_role("menuitem", name="Trash…").click()
    item = page.locator(".swan-Trash-item", has_text="old-results.ipynb")
    item.wait_for()
    page.locator(".jp-Dialog-content").screenshot(path=str(screenshots / "trash.png"))

    item.get_by_role("button", name="Restore").click()
    page.locator(".swan-Dialog-status", has_text="Restored /old-results.ipynb").wait_for()
    assert source_of(lab, "old-results.ipynb") == "r = 1"
    page.get_by_role("button", name="Done").click()
    page.locator(".jp-DirListing-item", has_text="old-results.ipynb").wait_for()


def test_a_trashed_file_whose_name_is_taken_is_restored_under_another_name(page, lab):
    (lab.root / "notes.txt").write_text("first notes\n")
    assert lab.api("DELETE", "api/contents/notes.txt").status_code == 204
    (lab.root / "notes.txt").write_text("new notes\n")
    open_lab(page, lab)
    page.locator(".jp-DirListing-item", has_text="notes.txt").click(button="right")
    page.get_by_role("menuitem", name="Trash…").click()
    item = page.locator(".swan-Trash-item", has_text="notes.txt")
    item.get_by_role("button", name="Restore").click()
    page.locator(".swan-Dialog-status.swan-mod-error").wait_for()
    assert item.get_by_label("Restore notes.txt as").input_value() == "notes (restored).txt"
    item.get_by_role("button", name="Restore as").click()
    page.locator(".swan-Dialog-status", has_text="Restored /notes (restored).txt").wait_for()
    assert (lab.root / "notes (restored).txt").read_text() == "first notes\n"
    assert (lab.root / "notes.txt").read_text() == "new notes\n"


# -- open-in links -------------------------------------------------------------------------------


def test_the_open_in_link_of_a_file_is_copied_with_its_badge_markdown(page, lab, screenshots):
    write_notebook(lab, "share me.ipynb", "s = 1")
    open_lab(page, lab)
    page.locator(".jp-DirListing-item", has_text="share me.ipynb").click(button="right")
    page.get_by_role("menuitem", name="Copy Open-in-SWAN Link").click()
    box = page.locator(".swan-OpenLink")
    link = box.get_by_label("Link", exact=True).input_value()
    assert "/hub/user-redirect/swan/open?path=share+me.ipynb&owner=" in link
    assert page.evaluate("navigator.clipboard.readText()") == link
    markdown = box.get_by_label("Badge for a README (Markdown)").input_value()
    assert markdown.startswith("[![Open in SWAN](") and markdown.endswith(f"]({link})")
    page.locator(".jp-Dialog-content").screenshot(path=str(screenshots / "open-in-link.png"))

    box.get_by_role("button", name="Copy").nth(1).click()
    box.locator(".swan-Dialog-status", has_text="copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == markdown
