"""The one-time notice that code sees only the local folder, in a real browser (Debian's
Chromium driven by Playwright) against JupyterLab with our labextension and a server whose
spawner said it could not mount the storage (SWAN_FILES_MOUNTED=0)."""

from __future__ import annotations

import time

import pytest
from harness.lab_browser import chromium_page, needs_chromium, running_lab

pytest.importorskip("playwright.sync_api")
pytestmark = needs_chromium

NOTICE = "Code sees only this server's local folder"


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
