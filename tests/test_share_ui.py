"""The share dialog and the Shared with me panel in a real browser: Debian's Chromium driven by
Playwright against a real JupyterLab server with the labextension installed, its share backend
pointed at the recorded Nextcloud answers replayed on 127.0.0.1.

Screenshots go to $SWAN_SCREENSHOT_DIR when it is set (docs/images/ for the teacher's guide), else
to the test's temporary folder.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import notebook_body
from ocs_replay import OCSReplay

from swan_hub.cli import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 90.0
UI_TIMEOUT_MS = 30_000

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)


@dataclass
class Lab:
    url: str
    token: str
    root: Path


@pytest.fixture
def replay() -> Iterator[OCSReplay]:
    served = OCSReplay.load("nextcloud").start()
    yield served
    served.stop()


@pytest.fixture
def lab(tmp_path, replay) -> Iterator[Lab]:
    """JupyterLab on a free port of 127.0.0.1 serving a teacher's space (SwanContentsManager)."""
    root = tmp_path / "space"
    (root / "class-2026").mkdir(parents=True)
    notebook = notebook_body()["content"]
    # a kernel named in the notebook: no "Select Kernel" dialog over the page
    notebook["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    (root / "class-2026" / "exercise-1.ipynb").write_text(json.dumps(notebook))
    (root / "physics-lab").mkdir()
    secret = tmp_path / "app-password"
    secret.write_text(replay.recording["credentials"]["password"])
    config = tmp_path / "jupyter_server_config.json"
    config.write_text(
        json.dumps(
            {
                "ServerApp": {
                    "contents_manager_class": "swan_contents.SwanContentsManager",
                    "jpserver_extensions": {"swan_share_ext": True},
                },
                "SwanContentsManager": {"versions_dir": str(tmp_path / "versions")},
                "OCSShareBackend": {
                    "url": replay.url,
                    "api_version": "2",
                    "username": "teacher",
                    "password_file": str(secret),
                },
            }
        )
    )
    # no "Jupyter news?" toast over the screenshots
    notification = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = free_port(), "browser-test-token"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
    }
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--config={config}",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, token, server, tmp_path / "lab.log")
        yield Lab(url, token, root)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_until_up(url: str, token: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited early:\n{log.read_text()[-3000:]}")
        try:
            if (
                httpx.get(f"{url}/api/status", params={"token": token}, timeout=2).status_code
                == 200
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"JupyterLab did not start in {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def page(tmp_path):
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    target = Path(os.environ.get("SWAN_SCREENSHOT_DIR") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _open_lab(page, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator(".jp-DirListing-item", has_text="class-2026").wait_for()


def _share_dialog_of(page, lab: Lab, name: str):
    """Open the share dialog of an item of the file browser from its context menu."""
    _open_lab(page, lab)
    page.locator(".jp-DirListing-item", has_text=name).click(button="right")
    page.get_by_role("menuitem", name="Share…").click()
    return page.locator(".swan-ShareDialog")


def test_a_teacher_shares_a_folder_from_the_context_menu_and_revokes_it(
    page, lab, replay, screenshots
):
    dialog = _share_dialog_of(page, lab, "class-2026")
    dialog.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()

    # typed at a person's pace: the storage is searched once, when typing pauses
    dialog.locator(".swan-ShareDialog-search").press_sequentially("class", delay=60)
    dialog.locator(".swan-ShareDialog-sharee", has_text="Class of 2026").click()
    dialog.get_by_role("button", name="Share", exact=True).click()
    shared = dialog.locator(".swan-ShareDialog-share", has_text="Class of 2026")
    shared.wait_for()
    assert shared.locator("select").input_value() == "view"
    page.locator(".jp-Dialog-content").screenshot(path=str(screenshots / "share-dialog.png"))

    shared.get_by_role("button", name="Revoke").click()
    dialog.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    assert "no longer has access" in dialog.locator(".swan-ShareDialog-status").inner_text()

    assert len(replay.requests("GET", "/sharees")) == 1
    assert [s.form for s in replay.requests("POST", "/shares")] == [
        {"path": "/class-2026", "shareType": "1", "shareWith": "class-2026", "permissions": "1"}
    ]
    assert len(replay.requests("DELETE", "/shares/7")) == 1
    assert replay.unmatched == []


def test_a_teacher_gives_students_a_public_link_with_a_password_and_an_expiry_date(
    page, lab, replay, screenshots
):
    dialog = _share_dialog_of(page, lab, "class-2026")
    dialog.get_by_label("Link password").fill("Correct-Horse-7")
    expiry = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    dialog.get_by_label("Link expiry date").fill(expiry)
    dialog.get_by_role("button", name="Create link").click()
    link = dialog.locator(".swan-ShareDialog-share", has_text="public link")
    link.wait_for()
    assert "password" in link.inner_text() and "expires 2026-12-31" in link.inner_text()
    assert link.get_by_role("button", name="Copy link").is_visible()
    page.locator(".jp-Dialog-content").screenshot(path=str(screenshots / "share-link.png"))

    (sent,) = replay.requests("POST", "/shares")
    assert sent.form["expireDate"] == expiry and sent.form["password"] == "Correct-Horse-7"
    link.get_by_role("button", name="Revoke").click()
    dialog.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    assert replay.unmatched == []


def test_a_notebook_toolbar_has_a_share_button(page, lab, replay):
    page.goto(f"{lab.url}/lab/tree/class-2026/exercise-1.ipynb?token={lab.token}")
    page.locator(".swan-ShareButton").click()
    page.locator(".jp-Dialog-header", has_text="Share exercise-1.ipynb").wait_for()
    page.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    assert replay.unmatched == []


def test_notebook_7_offers_the_same_share_dialog_in_its_file_browser(page, lab, replay):
    page.goto(f"{lab.url}/tree?token={lab.token}")
    page.locator(".jp-DirListing-item", has_text="class-2026").click(button="right")
    page.get_by_role("menuitem", name="Share…").click()
    page.locator(".jp-Dialog-header", has_text="Share class-2026").wait_for()
    page.locator(".swan-ShareDialog-empty", has_text="Only you have access").wait_for()
    assert replay.unmatched == []


def test_the_shared_with_me_panel_offers_open_clone_and_accept(page, lab, replay, screenshots):
    _open_lab(page, lab)
    page.locator('.lm-TabBar-tab[data-id="swan-shared-with-me"]').click()
    panel = page.locator(".swan-SharedWithMe")
    accepted = panel.locator('.swan-SharedWithMe-share[data-share-id="21"]')
    pending = panel.locator('.swan-SharedWithMe-share[data-share-id="22"]')
    accepted.wait_for()
    assert "view only" in accepted.inner_text()
    assert {"Open", "Clone", "Leave"} <= set(accepted.locator("button").all_inner_texts())
    assert {"Accept", "Decline"} <= set(pending.locator("button").all_inner_texts())
    page.screenshot(path=str(screenshots / "shared-with-me.png"))

    pending.get_by_role("button", name="Accept").click()
    panel.locator(".swan-SharedWithMe-share").first.wait_for()
    assert len(replay.requests("POST", "/shares/pending/22")) == 1

    # the clone is the student's own folder: the file browser opens it
    accepted.get_by_role("button", name="Clone").click()
    page.locator(".jp-BreadCrumbs", has_text="class-2026-Copy1").wait_for()
    copy = lab.root / "class-2026-Copy1" / "exercise-1.ipynb"
    assert copy.read_text() == (lab.root / "class-2026" / "exercise-1.ipynb").read_text()
    shutil.rmtree(lab.root / "class-2026-Copy1")
