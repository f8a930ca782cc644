"""JupyterLab in a real browser for the front-end tests: a JupyterLab server with our contents
manager and labextension on a free port of 127.0.0.1, and Debian's Chromium driven by Playwright
(never a downloaded browser). Screenshots go to $SWAN_SCREENSHOT_DIR when it is set (docs/images/
for the guides), else to the test's temporary folder."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import notebook_body

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

needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)


@dataclass
class Lab:
    url: str
    token: str
    root: Path

    def api(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """A call to the server's REST API (/api/…, /swan/api/…), as another client makes it."""
        return httpx.request(
            method,
            f"{self.url}/{path.lstrip('/')}",
            headers={"Authorization": f"token {self.token}"},
            json=body,
            timeout=30,
        )


def notebook_json(source: str) -> dict[str, Any]:
    """A one-cell notebook naming its kernel (so no "Select Kernel" dialog covers the page)."""
    notebook = notebook_body(source)["content"]
    notebook["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    return notebook


@contextmanager
def running_lab(tmp_path: Path, root: Path, extra_config: dict | None = None) -> Iterator[Lab]:
    """JupyterLab serving ``root`` with SwanContentsManager and the swan_share_ext extension."""
    config = tmp_path / "jupyter_server_config.json"
    config.write_text(
        json.dumps(
            {
                "ServerApp": {
                    "contents_manager_class": "swan_contents.SwanContentsManager",
                    "jpserver_extensions": {"swan_share_ext": True},
                },
                "SwanContentsManager": {"versions_dir": str(tmp_path / "versions")},
                **(extra_config or {}),
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
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),  # its trust database too
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
    }
    log_path = tmp_path / "lab.log"
    log = log_path.open("w")
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
        _wait_until_up(url, token, server, log_path)
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


@contextmanager
def chromium_page(tmp_path: Path, permissions: tuple[str, ...] = ()) -> Iterator[Any]:
    """A page of a fresh headless Chromium profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        if permissions:
            context.grant_permissions(list(permissions))
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """Debian's headless Chromium for tests with several people: each gets a context of their
    own (`person`), with its own cookies, as two people on two machines."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def person(browser: Any, permissions: tuple[str, ...] = ()) -> Any:
    """A page of a fresh context of ``browser`` (close it with ``page.context.close()``); the
    page records the uncaught errors of its scripts in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(UI_TIMEOUT_MS)
    if permissions:
        context.grant_permissions(list(permissions))
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def fill_hub_login(page: Any, name: str, password: str) -> None:
    """Log in on the hub's login form shown on ``page``, as a person types it; the hub then
    sends the page on to where the login was asked for."""
    page.locator("input[name=username]").fill(name)
    page.locator("input[name=password]").fill(password)
    page.locator("#login_submit, [type=submit]").first.click()
    page.wait_for_url(lambda url: "/hub/login" not in url)


def open_lab(browser: Any, swan: Any, name: str, permissions: tuple[str, ...] = ()) -> Any:
    """``name``'s JupyterLab on `swan up` ``swan``, in a browser context of their own, after
    the hub's login form."""
    page = person(browser, permissions=permissions)
    page.goto(f"{swan.url}/user/{name}/lab?reset")
    fill_hub_login(page, name, swan.passwords()[name])
    page.locator(".jp-FileBrowser .jp-DirListing-header").wait_for()
    return page


def add_to_the_cell_and_save(notebook: Any, words: str) -> None:
    """Type ``words`` at the end of the first cell of ``notebook`` and press Ctrl+S, as a
    person does (back in command mode first)."""
    notebook.locator(".jp-Cell .cm-content").first.click()
    keyboard = notebook.page.keyboard
    keyboard.press("End")
    keyboard.type(words)
    keyboard.press("Escape")
    keyboard.press("Control+s")


def context_menu_of(page: Any, name: str, entry: Any = "Copy Open-in-SWAN Link") -> Any:
    """The file browser's context menu of ``name``, open and showing ``entry``. A listing
    redrawn in the moment of the right click (a refresh after navigating) closes the menu it
    opened, so a menu that does not show is asked for again, a few times."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    item = page.locator(".jp-DirListing-item", has_text=name)
    menu = page.locator(".lm-Menu")
    for _ in range(3):
        item.click(button="right")
        try:
            menu.get_by_role("menuitem", name=entry).wait_for(timeout=5_000)
            return menu
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    item.click(button="right")
    menu.get_by_role("menuitem", name=entry).wait_for()
    return menu


def share_dialog_of(page: Any, name: str) -> Any:
    """The share dialog of ``name`` in the file browser, opened from its context menu."""
    context_menu_of(page, name, "Share…").get_by_role("menuitem", name="Share…").click()
    return page.locator(".swan-ShareDialog")


def share_view_only(dialog: Any, typed: str, sharee: str) -> Any:
    """Type ``typed`` in the dialog's search at a person's pace, pick ``sharee`` and share with
    them, view only (the default); their row under "Who has access"."""
    dialog.locator(".swan-ShareDialog-search").press_sequentially(typed, delay=60)
    dialog.locator(".swan-ShareDialog-sharee", has_text=sharee).click()
    dialog.get_by_role("button", name="Share", exact=True).click()
    row = dialog.locator(".swan-ShareDialog-share", has_text=sharee)
    row.wait_for()
    assert row.locator("select").input_value() == "view"
    return row


def create_link(dialog: Any, password: str) -> tuple[Any, str]:
    """Create a public link with ``password``, expiring in 30 days; (its row, the expiry date
    typed)."""
    dialog.get_by_label("Link password").fill(password)
    expiry = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    dialog.get_by_label("Link expiry date").fill(expiry)
    dialog.get_by_role("button", name="Create link").click()
    link = dialog.locator(".swan-ShareDialog-share", has_text="public link")
    link.wait_for()
    return link, expiry


def screenshot_dir(tmp_path: Path) -> Path:
    target = Path(os.environ.get("SWAN_SCREENSHOT_DIR") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def eventually(check: Callable[[], bool], timeout: float = UI_TIMEOUT_MS / 1000) -> None:
    """Wait until ``check()`` holds, for what the page does in the background (requests it sends
    after a click, files it writes)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout:.0f} s: {check.__doc__ or check}")
        time.sleep(0.1)
