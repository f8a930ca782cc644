"""Streamed uploads (PUT /swan/api/upload/<path>) from hostile and broken clients, spoken with
raw sockets to a real jupyter-server in its own process, on a folder and on WsgiDAV: a body cut
off or shorter than announced leaves the old file and no temp file; a refusal (no length, too
large, a stale version, no credentials, a second upload of the same file) is answered before
any of the body is sent."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from harness.dav_servers import WsgiDavServer
from harness.jupyter_process import TOKEN, JupyterProcess

from swan_contents.storage.posix import TEMP_PREFIX
from swan_contents.uploads import PART_SIZE

SWAN = "swan_contents.SwanContentsManager"
OLD = b"the good old content\n" * 500
MIB = 1024 * 1024
MAX_SIZE = 64 * MIB


class Space:
    """A server and the folder where its storage keeps the files of one test (`prefix` in the
    user's space), and, on WebDAV, the local folder where the server's uploads gather."""

    def __init__(self, server: JupyterProcess, folder: Path, spool: Path | None, prefix: str = ""):
        self.server = server
        self.folder = folder
        self.spool = spool
        self.prefix = prefix

    def path(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def url(self, name: str) -> str:
        return f"{self.server.url}/swan/api/upload/{quote(self.path(name))}"

    def leftovers(self) -> list[str]:
        """Temp files in the folder and spools on the server's disk."""
        left = [p.name for p in self.folder.iterdir() if p.name.startswith(TEMP_PREFIX)]
        if self.spool is not None and self.spool.exists():
            left += [p.name for p in self.spool.iterdir()]
        return left


@contextmanager
def posix_server(tmp_path: Path) -> Iterator[tuple[JupyterProcess, Path, Path | None]]:
    folder = tmp_path / "space"
    folder.mkdir()
    options = [f"--SwanUpload.max_size={MAX_SIZE}"]
    with JupyterProcess(folder, tmp_path / "state", SWAN, options) as server:
        yield server, folder, None


@contextmanager
def wsgidav_server(tmp_path: Path) -> Iterator[tuple[JupyterProcess, Path, Path | None]]:
    root = tmp_path / "dav"
    root.mkdir()
    dav = WsgiDavServer(root)
    dav.start()
    (tmp_path / "cwd").mkdir()
    spool = tmp_path / "spool"
    options = [
        f"--SwanUpload.max_size={MAX_SIZE}",
        "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
        f"--WebDAVStorage.url={dav.url}",
        f"--WebDAVStorage.username={dav.username}",
        "--WebDAVStorage.password_env=DAV_PASSWORD",
        f"--WebDAVStorage.spool_dir={spool}",
    ]
    env = {"DAV_PASSWORD": dav.password}
    try:
        with JupyterProcess(tmp_path / "cwd", tmp_path / "state", SWAN, options, env=env) as server:
            yield server, root, spool
    finally:
        dav.stop()


@pytest.fixture(scope="module", params=["posix", "wsgidav"])
def served(request, tmp_path_factory):
    """One server per storage for the module: (server, the space's folder, the spool folder)."""
    start = {"posix": posix_server, "wsgidav": wsgidav_server}[request.param]
    with start(tmp_path_factory.mktemp(f"streamed-{request.param}")) as found:
        yield found


_folders = itertools.count()


@pytest.fixture
def space(served) -> Space:
    """A fresh folder of the shared server's space for one test."""
    server, root, spool = served
    prefix = f"t{next(_folders)}"
    (root / prefix).mkdir()
    return Space(server, root / prefix, spool, prefix)


def head(space: Space, path: str, headers: dict[str, str], *, auth: bool = True) -> bytes:
    """The request line and headers of a raw PUT to the upload route."""
    lines = [
        f"PUT /swan/api/upload/{quote(space.path(path))} HTTP/1.1",
        f"Host: 127.0.0.1:{space.server.port}",
        *([f"Authorization: token {TOKEN}"] if auth else []),
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(space: Space) -> socket.socket:
    return socket.create_connection(("127.0.0.1", space.server.port), timeout=30)


def answer_of(sock: socket.socket) -> tuple[int, bytes]:
    """The status and everything the server sent until it closed or paused."""
    data = b""
    sock.settimeout(10)
    try:
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and data.endswith(b"}"):
                break
    except (TimeoutError, ConnectionResetError):
        pass
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0
    return status, data


def put_old(space: Space, path: str) -> str:
    r = httpx.put(space.url(path), content=OLD, headers=space.server.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()["etag"]


def wait_until_clean(space: Space, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := space.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def assert_untouched(space: Space, name: str) -> None:
    assert wait_until_clean(space) == []
    assert (space.folder / name).read_bytes() == OLD
    r = httpx.get(f"{space.server.url}/api/contents/{space.prefix}", headers=space.server.headers)
    assert [m["name"] for m in r.json()["content"]] == [name]


def test_a_client_that_hangs_up_after_several_parts_leaves_the_old_file(space):
    put_old(space, "nb.ipynb")
    announced = 5 * PART_SIZE
    with connect(space) as sock:
        sock.sendall(head(space, "nb.ipynb", {"Content-Length": str(announced)}))
        sock.sendall(os.urandom(3 * PART_SIZE + 1000))
        time.sleep(1)  # the server writes the parts it has
    assert_untouched(space, "nb.ipynb")


def test_a_body_shorter_than_announced_is_not_published(space):
    put_old(space, "data.csv")
    with connect(space) as sock:
        sock.sendall(head(space, "data.csv", {"Content-Length": str(2 * PART_SIZE)}))
        sock.sendall(os.urandom(PART_SIZE + 5))
        sock.shutdown(socket.SHUT_WR)  # the body ends here
        answer_of(sock)
    assert_untouched(space, "data.csv")


def test_an_upload_still_works_after_one_was_cut_off(space):
    with connect(space) as sock:
        sock.sendall(head(space, "again.bin", {"Content-Length": str(3 * PART_SIZE)}))
        sock.sendall(os.urandom(2 * PART_SIZE))
    data = os.urandom(2 * PART_SIZE + 3)
    deadline = time.monotonic() + 15
    while True:  # the server may still be dropping the first one: a 409 says so
        r = httpx.put(space.url("again.bin"), content=data, headers=space.server.headers)
        if r.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 201, r.text
    assert (space.folder / "again.bin").read_bytes() == data
    assert wait_until_clean(space) == []


def refused_before_the_body(space: Space, path: str, headers: dict, *, auth: bool = True) -> int:
    """Send only the headers of an upload, asking to continue as curl does; the status the
    server answers without the body (and without inviting it: no 100 Continue)."""
    with connect(space) as sock:
        sock.sendall(head(space, path, {**headers, "Expect": "100-continue"}, auth=auth))
        status, answer = answer_of(sock)
    assert b" 100 " not in answer.split(b"\r\n", 1)[0], answer
    return status


def test_a_client_that_asks_to_continue_is_invited_to_send_the_body(space):
    with connect(space) as sock:
        headers = {"Content-Length": "5", "Expect": "100-continue"}
        sock.sendall(head(space, "ok.txt", headers))
        sock.settimeout(10)
        assert sock.recv(100).startswith(b"HTTP/1.1 100")
        sock.sendall(b"hello")
        status, _ = answer_of(sock)
    assert status == 201
    assert (space.folder / "ok.txt").read_bytes() == b"hello"


def test_an_upload_without_a_length_is_a_411(space):
    headers = {"Transfer-Encoding": "chunked"}
    assert refused_before_the_body(space, "x.bin", headers) == 411
    assert not (space.folder / "x.bin").exists()


def test_an_upload_over_the_limit_is_a_413_before_its_body(space):
    headers = {"Content-Length": str(MAX_SIZE + 1)}
    assert refused_before_the_body(space, "huge.bin", headers) == 413
    assert not (space.folder / "huge.bin").exists()


def test_a_stale_version_is_a_409_before_the_body(space):
    put_old(space, "nb.ipynb")
    headers = {"Content-Length": str(PART_SIZE), "If-Match": '"not-the-stored-one"'}
    assert refused_before_the_body(space, "nb.ipynb", headers) == 409
    assert_untouched(space, "nb.ipynb")


def test_an_upload_without_credentials_is_a_403_before_its_body(space):
    headers = {"Content-Length": str(PART_SIZE)}
    assert refused_before_the_body(space, "x.bin", headers, auth=False) == 403
    assert not (space.folder / "x.bin").exists()


def test_a_second_upload_of_a_file_being_uploaded_is_a_409(space):
    put_old(space, "shared.bin")
    with connect(space) as first:
        first.sendall(head(space, "shared.bin", {"Content-Length": str(3 * PART_SIZE)}))
        first.sendall(os.urandom(PART_SIZE + 7))
        time.sleep(0.5)
        r = httpx.put(space.url("shared.bin"), content=b"second", headers=space.server.headers)
        assert r.status_code == 409
        assert "being uploaded" in r.json()["message"]
        # nor may JupyterLab's upload in parts mix its parts in
        part = {"type": "file", "format": "base64", "chunk": 1, "content": "eA=="}
        url = f"{space.server.url}/api/contents/{space.path('shared.bin')}"
        r = httpx.put(url, json=part, headers=space.server.headers)
        assert r.status_code == 409
    assert_untouched(space, "shared.bin")


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 6 MiB tmpfs, to fill the disk mid-upload; skipped where it cannot be mounted."""
    point = tmp_path / "small"
    point.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(point)]
    r = subprocess.run(mount, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.parametrize(
    ("disk", "code", "said"),
    [("full", 507, b"Not enough space"), ("read-only", 403, b"read-only")],
)
def test_a_disk_that_refuses_the_body_is_answered_at_once_and_keeps_the_old_file(
    tmp_path, small_disk, disk, code, said
):
    (small_disk / "nb.ipynb").write_bytes(OLD)
    if disk == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with JupyterProcess(small_disk, tmp_path / "state", SWAN) as server:
        space = Space(server, small_disk, None)
        announced = 10 * PART_SIZE
        sent = 0
        with connect(space) as sock:
            sock.sendall(head(space, "nb.ipynb", {"Content-Length": str(announced)}))
            with contextlib.suppress(OSError):  # the server stops reading once it answered
                while sent < announced:
                    sock.sendall(os.urandom(MIB))
                    sent += MIB
            status, answer = answer_of(sock)
        assert status == code, answer
        assert said in answer
        assert sent < announced, "the answer came only after the whole body"
        assert_untouched(space, "nb.ipynb")


def test_a_browser_session_needs_the_xsrf_token_as_for_any_change(space):
    """Logged in by cookie (as in a browser, not with a token header), an upload without the
    `_xsrf` token is a 403 before its body; with it, it goes through."""
    with httpx.Client(base_url=space.server.url, follow_redirects=True, timeout=30) as browser:
        browser.get(f"/api/contents/{space.prefix}", params={"token": TOKEN}).raise_for_status()
        browser.get("/login")  # the page that sets the _xsrf cookie, as every page does
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf and browser.cookies, "no session cookies"
        path = f"/swan/api/upload/{quote(space.path('form.txt'))}"
        refused = browser.put(path, content=b"forged")
        assert refused.status_code == 403
        assert refused.headers["Connection"] == "close"  # the body was not read
        assert not (space.folder / "form.txt").exists()
        r = browser.put(path, content=b"mine", headers={"X-XSRFToken": xsrf})
        assert r.status_code == 201, r.text
    assert (space.folder / "form.txt").read_bytes() == b"mine"
