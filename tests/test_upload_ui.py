"""Uploads from the file browser in a real browser (Debian's Chromium driven by Playwright)
against JupyterLab and Notebook 7 with our labextension: a file of several MiB chosen with the
upload button goes in one streamed PUT /swan/api/upload (none of JupyterLab's base64 parts),
arrives byte for byte, and JupyterLab's progress and overwrite question are still there."""

from __future__ import annotations

import os
import time

import pytest
from harness.lab_browser import chromium_page, eventually, needs_chromium, running_lab

pytest.importorskip("playwright.sync_api")
pytestmark = needs_chromium

MIB = 1024 * 1024
#: seconds an upload of a few MiB throttled to 2 MiB/s may take on a busy machine, at most
UPLOAD_BOUND = 120


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab for the module; each test uploads files of its own."""
    tmp_path = tmp_path_factory.mktemp("upload-lab")
    (tmp_path / "space").mkdir()
    with running_lab(tmp_path, tmp_path / "space") as found:
        yield found


@pytest.fixture
def page(tmp_path):
    with chromium_page(tmp_path) as found:
        yield found


class Requests:
    """The writes of files a page sends: the URL path of each PUT to the contents API or the
    upload route (not the workspace saves), and how each ended (its status, or the browser's
    error), for a test to say what happened when an upload never ends."""

    def __init__(self, page) -> None:
        self.puts: list[str] = []
        self.ended: list[str] = []
        page.on("request", self._seen)
        page.on("requestfinished", lambda r: self._ended(r, "answered"))
        page.on("requestfailed", lambda r: self._ended(r, f"failed: {r.failure}"))

    @staticmethod
    def _write(request) -> str | None:
        path = request.url.split("?")[0].split("://", 1)[1].split("/", 1)[1]
        if request.method == "PUT" and path.startswith(("api/contents/", "swan/api/upload/")):
            return path
        return None

    def _seen(self, request) -> None:
        path = self._write(request)
        if path is not None:
            self.puts.append(path)

    def _ended(self, request, how: str) -> None:
        path = self._write(request)
        if path is not None:
            self.ended.append(f"{path}: {how}")


def choose_file(page, source) -> None:
    """Click the file browser's upload button and choose `source` in the file chooser."""
    with page.expect_file_chooser() as chooser:
        page.locator(".jp-FileBrowser-toolbar, .jp-FileBrowser").get_by_title(
            "Upload Files"
        ).first.click()
    chooser.value.set_files(str(source))


def slow_uploads(page, bytes_per_second: int) -> None:
    """Throttle what the page sends, so an upload on loopback takes seconds, as on a network."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def test_jupyterlab_streams_an_upload_and_shows_its_progress(lab, page, tmp_path):
    data = os.urandom(6 * MIB + 123)
    source = tmp_path / "measurements.bin"
    source.write_bytes(data)
    requests = Requests(page)
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.locator(".jp-DirListing-content").wait_for(state="visible")
    slow_uploads(page, 2 * MIB)

    choose_file(page, source)
    status = page.locator(".jp-StatusBar-Widget", has_text="Uploading…")
    status.wait_for(state="visible")
    bar = page.locator(".jp-Statusbar-ProgressBar-progress-bar")
    shown: set[float] = set()
    deadline = time.monotonic() + UPLOAD_BOUND
    while status.is_visible():
        shown.update(float(b.get_attribute("aria-valuenow") or 0) for b in bar.all())
        if time.monotonic() > deadline:
            arrived = lab.root / "measurements.bin"
            pytest.fail(
                f"still uploading after {UPLOAD_BOUND:g} s (3 s of it at the throttled rate):"
                f" progress shown {sorted(shown)}, requests {requests.puts}, ended"
                f" {requests.ended}, on the server"
                f" {arrived.stat().st_size if arrived.exists() else 'nothing'} of {len(data)}"
                " bytes"
            )
        page.wait_for_timeout(200)
    page.locator(".jp-StatusBar-Widget", has_text="Complete!").wait_for(state="visible")
    page.locator(".jp-DirListing-item", has_text="measurements.bin").wait_for()

    assert (lab.root / "measurements.bin").read_bytes() == data
    assert requests.puts == ["swan/api/upload/measurements.bin"]
    assert len(shown - {0.0}) >= 3, f"the progress bar did not move: {sorted(shown)}"


def test_an_upload_over_a_file_asks_first_and_replaces_it(lab, page, tmp_path):
    (lab.root / "data.csv").write_bytes(b"old,content\n")
    data = os.urandom(3 * MIB)
    source = tmp_path / "data.csv"
    source.write_bytes(data)
    requests = Requests(page)
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.locator(".jp-DirListing-item", has_text="data.csv").wait_for()

    choose_file(page, source)
    dialog = page.locator(".jp-Dialog", has_text="Overwrite file?")
    dialog.get_by_role("button", name="Overwrite").click()
    eventually(lambda: (lab.root / "data.csv").read_bytes() == data)
    page.wait_for_timeout(200)  # Playwright hands over the page's events while it waits
    assert requests.puts == ["swan/api/upload/data.csv"]


def test_an_upload_whose_file_changed_after_the_question_is_refused_and_shown(lab, page, tmp_path):
    (lab.root / "notes.txt").write_bytes(b"v1\n")
    source = tmp_path / "notes.txt"
    source.write_bytes(b"mine\n")
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.locator(".jp-DirListing-item", has_text="notes.txt").wait_for()

    choose_file(page, source)
    dialog = page.locator(".jp-Dialog", has_text="Overwrite file?")
    dialog.wait_for()
    # a sync client writes the file while the question is open
    lab.api("PUT", "api/contents/notes.txt", {"type": "file", "format": "text", "content": "v2"})
    dialog.get_by_role("button", name="Overwrite").click()
    error = page.locator(".jp-Dialog", has_text="Upload Error")
    error.wait_for()
    assert "changed by someone else" in error.inner_text()
    assert (lab.root / "notes.txt").read_bytes() == b"v2"


def test_notebook_7_streams_uploads_too(lab, page, tmp_path):
    data = os.urandom(5 * MIB)
    source = tmp_path / "results.bin"
    source.write_bytes(data)
    requests = Requests(page)
    page.goto(f"{lab.url}/tree?token={lab.token}")
    page.locator(".jp-DirListing-content").wait_for(state="visible")

    with page.expect_file_chooser() as chooser:
        page.get_by_title("Upload Files").first.click()
    chooser.value.set_files(str(source))
    page.locator(".jp-DirListing-item", has_text="results.bin").wait_for()
    eventually(lambda: (lab.root / "results.bin").exists())
    assert (lab.root / "results.bin").read_bytes() == data
    assert requests.puts == ["swan/api/upload/results.bin"]
