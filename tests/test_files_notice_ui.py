"""The one-time notice that code sees only the local folder, in a real browser (Debian's
Chromium driven by Playwright) against JupyterLab with our labextension and a server whose
spawner said it could not mount the storage (SWAN_FILES_MOUNTED=0)."""

from __future__ import annotations

import json
import time

import pytest
from harness.lab_browser import chromium_page, needs_chromium, running_lab

pytest.importorskip("playwright.sync_api")
pytestmark = needs_chromium

NOTICE = "Code sees only this server's local folder"
#: how often the labextension reads the list of refused uploads (js/src/filesNotice.ts)
REFUSED_UPLOADS_SECONDS = 5


def test_a_server_without_a_mount_tells_the_user_once_that_code_sees_only_the_local_folder(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SWAN_FILES_MOUNTED", "0")
    root = tmp_path / "space"
    root.mkdir()
    with running_lab(tmp_path, root) as lab, chromium_page(tmp_path) as page:
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        notice = page.get_by_text(NOTICE)
        notice.wait_for(state="visible")
        assert "cannot open the file browser's files and shares by path" in notice.inner_text()

        page.reload()
        page.locator(".jp-DirListing-content").wait_for(state="visible")
        time.sleep(3)  # longer than the info request takes when it is made
        assert page.get_by_text(NOTICE).count() == 0  # once: not again in this browser


def details_of(page, notice: str) -> tuple[str, int]:
    """Open the Details of the notice holding the text ``notice`` and close them again: what
    they said, and how many elements of markup were in them."""
    toast = page.locator(".Toastify__toast", has_text=notice)
    toast.locator(".jp-toast-button", has_text="Details").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(state="visible")
    said, markup = dialog.inner_text(), dialog.locator("img, b").count()
    dialog.get_by_role("button", name="OK").click()
    dialog.wait_for(state="detached")
    return said, markup


def test_a_file_the_storage_refuses_or_one_cut_short_is_shown_once_and_taken_back_after(
    tmp_path, monkeypatch
):
    """The hub lists the files code wrote that the storage refuses, and those cut short
    (swan_hub.mounts.StorageMounts.write_status); JupyterLab shows a notice for each, once,
    and takes it back once the file is no longer listed."""
    status = tmp_path / "mount-status" / "status.json"
    status.parent.mkdir()
    status.write_text(json.dumps({"refused": []}))
    monkeypatch.setenv("SWAN_FILES_MOUNTED", "1")
    monkeypatch.setenv("SWAN_MOUNT_STATUS", str(status))
    root = tmp_path / "space"
    root.mkdir()
    quota = {"path": "results.bin", "why": "Not enough space for this upload (507)"}
    # a name and a reason are text, never markup, in the notice and its Details
    name = {
        "path": "Shared/week1/<img src=x onerror=window.__named=1>.csv",
        "why": "Not allowed: <b onmouseover=window.__why=1>why</b> (400)",
    }
    with running_lab(tmp_path, root) as lab, chromium_page(tmp_path) as page:
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        page.locator(".jp-DirListing-content").wait_for(state="visible")
        assert page.get_by_text(NOTICE).count() == 0  # mounted: no word of a local folder
        status.write_text(json.dumps({"refused": [quota]}))
        first = page.get_by_text("The storage refuses results.bin, which code wrote")
        first.wait_for(state="visible", timeout=30_000)
        assert "Not enough space for this upload (507)" in first.inner_text()
        # the notice's Details tell the rest; the notice stays
        page.locator(".jp-toast-button", has_text="Details").first.click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(state="visible")
        assert "Its upload is tried again until the storage takes it" in dialog.inner_text()
        dialog.get_by_role("button", name="OK").click()
        dialog.wait_for(state="detached")
        assert first.count() == 1

        status.write_text(json.dumps({"refused": [quota, name]}))
        second = page.get_by_text("The storage refuses Shared/week1/<img src=x onerror=")
        second.wait_for(state="visible", timeout=30_000)
        said, markup = details_of(page, "Shared/week1/<img")
        assert "<b onmouseover=window.__why=1>why</b> (400)" in said
        assert markup == 0
        assert page.evaluate("[window.__named, window.__why]") == [None, None]
        time.sleep(REFUSED_UPLOADS_SECONDS + 1)  # another look: still one notice for each
        assert first.count() == 1 and second.count() == 1

        status.write_text(json.dumps({"refused": [name]}))  # results.bin went up
        first.wait_for(state="detached", timeout=30_000)
        assert second.count() == 1

        # a file cut short (the disk of the uploads full): its own notice, and Details say
        # where the file as it was is kept
        status.write_text(json.dumps({"refused": [name], "cut": [{"path": "runs.csv"}]}))
        cut = page.get_by_text("Only part of runs.csv, which code wrote, reached the storage")
        cut.wait_for(state="visible", timeout=30_000)
        said, _ = details_of(page, "Only part of runs.csv")
        assert "A file code wrote was cut short" in said
        assert "restore it from its versions" in said
        status.write_text(json.dumps({"refused": [name], "cut": []}))  # written again, whole
        cut.wait_for(state="detached", timeout=30_000)
        assert second.count() == 1
