"""An upload keeps the user's server small: its RSS, sampled from outside while 64 MiB arrive,
grows by at most 32 MiB, on a folder and on WebDAV servers; in 1 MiB base64 parts as
JupyterLab's stock file browser sends them, and streamed in one request body as the suite's
file browser sends them (PUT /swan/api/upload). Memory only: the time is measured in
benchmarks/uploads.py.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path

import httpx
import psutil
import pytest
from harness.dav_servers import WsgiDavServer
from harness.jupyter_process import JupyterProcess

SWAN = "swan_contents.SwanContentsManager"
MIB = 1024 * 1024
UPLOAD_MIB = 64
BOUND_MIB = 32


class PeakRss(threading.Thread):
    """The highest RSS of a process, sampled every 10 ms until `stop()`."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.baseline = self.peak = self.process.memory_info().rss
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> float:
        """The growth over the baseline, in MiB."""
        self._done.set()
        self.join()
        return (self.peak - self.baseline) / MIB


def upload_growth(server: JupyterProcess) -> tuple[float, bytes]:
    """Upload UPLOAD_MIB parts of one random MiB; (peak RSS growth in MiB, that MiB)."""
    block = os.urandom(MIB)
    content = base64.b64encode(block).decode("ascii")
    with httpx.Client(headers=server.headers, timeout=120) as client:
        client.get(f"{server.url}/api/contents/").raise_for_status()
        sampler = PeakRss(server.proc.pid)
        sampler.start()
        for number in [*range(1, UPLOAD_MIB), -1]:
            body = {"type": "file", "format": "base64", "chunk": number, "content": content}
            r = client.put(f"{server.url}/api/contents/big.bin", content=json.dumps(body))
            r.raise_for_status()
        return sampler.stop(), block


def streamed_growth(server: JupyterProcess) -> tuple[float, bytes]:
    """Stream UPLOAD_MIB times one random MiB in one PUT; (peak RSS growth in MiB, that MiB)."""
    block = os.urandom(MIB)

    def body():
        for _ in range(UPLOAD_MIB):
            yield block

    headers = {**server.headers, "Content-Length": str(UPLOAD_MIB * MIB)}
    httpx.get(f"{server.url}/api/contents/", headers=server.headers).raise_for_status()
    sampler = PeakRss(server.proc.pid)
    sampler.start()
    url = f"{server.url}/swan/api/upload/big.bin"
    httpx.put(url, content=body(), headers=headers, timeout=120).raise_for_status()
    return sampler.stop(), block


UPLOADS = {"in parts": upload_growth, "streamed": streamed_growth}


def assert_stored(path: Path, block: bytes) -> None:
    assert path.stat().st_size == UPLOAD_MIB * MIB
    with path.open("rb") as f:
        assert f.read(MIB) == block
        f.seek(-MIB, os.SEEK_END)
        assert f.read() == block


@pytest.mark.parametrize("way", UPLOADS)
def test_an_upload_to_a_folder_grows_the_server_by_a_bounded_amount(tmp_path, way):
    space = tmp_path / "space"
    space.mkdir()
    with JupyterProcess(space, tmp_path / "state", SWAN) as server:
        growth, block = UPLOADS[way](server)
    assert growth <= BOUND_MIB, f"RSS grew by {growth:.1f} MiB"
    assert_stored(space / "big.bin", block)


@pytest.fixture
def wsgidav(tmp_path):
    root = tmp_path / "dav"
    root.mkdir()
    server = WsgiDavServer(root)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("way", UPLOADS)
def test_an_upload_to_webdav_grows_the_server_by_a_bounded_amount(tmp_path, wsgidav, way):
    (tmp_path / "cwd").mkdir()
    options = [
        "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
        f"--WebDAVStorage.url={wsgidav.url}",
        f"--WebDAVStorage.username={wsgidav.username}",
        "--WebDAVStorage.password_env=DAV_PASSWORD",
    ]
    env = {"DAV_PASSWORD": wsgidav.password}
    with JupyterProcess(tmp_path / "cwd", tmp_path / "state", SWAN, options, env=env) as server:
        growth, block = UPLOADS[way](server)
    assert growth <= BOUND_MIB, f"RSS grew by {growth:.1f} MiB"
    assert_stored(wsgidav.root / "big.bin", block)
