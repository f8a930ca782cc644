"""Uploads that break off half way (a short body, a dropped connection, a client killed with
SIGKILL) against the drive of `swan up` and through the storage drivers: the old file must stay
byte for byte, and no temp file may be left in a listing or on disk. Owns no server code."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from harness.drive import Drive, ocs_share, running_drive
from harness.swan import drive_url, start_swan

from swan_contents.storage import PosixStorage, StorageUnavailable, WebDAVStorage
from swan_contents.storage.ondisk import TEMP_PREFIX

pytestmark = pytest.mark.hub

OLD = b"the good old content\n" * 500
#: what the cut-off uploads announce: far more than they send
ANNOUNCED = 1_000_000
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cut-off")
    with running_drive(workdir) as drive:
        yield drive


def request_head(method: str, url: str, auth: tuple[str, str], headers: dict[str, str]) -> bytes:
    """The request line and headers of a raw HTTP/1.1 request to `url`."""
    parts = urlsplit(url)
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    lines = [
        f"{method} {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Authorization: Basic {token}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send_and_hang_up(url: str, auth: tuple[str, str], headers: dict[str, str], body: bytes) -> None:
    """Send the headers and `body` on a fresh connection, then close it without more."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request_head("PUT", url, auth, headers) + body)
        time.sleep(0.3)  # let the server read what came before it sees the end


def wait_until_no_temp_files(folder: Path, timeout: float = 30) -> list[str]:
    """Wait until the server is done with the broken request (its temp file gone); the names
    of temp files still there after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def assert_untouched(drive: Drive, user: str, rel: str, folder: Path) -> None:
    # the server handles the broken request in its own time: give it a moment first
    assert wait_until_no_temp_files(folder) == []
    time.sleep(0.5)
    assert (folder / rel.rsplit("/", 1)[-1]).read_bytes() == OLD
    assert drive.dav(user, "GET", rel).content == OLD
    listed = drive.propfind(user, rel.rpartition("/")[0])
    assert not [href for href in listed if TEMP_PREFIX in href or "~swan" in href]


def put_old(drive: Drive, rel: str) -> None:
    r = drive.dav("alice", "PUT", rel, content=OLD)
    assert r.status_code in (201, 204), r.text


def files_url(drive: Drive, user: str, rel: str, *, direct: bool = True) -> str:
    base = drive.direct if direct else drive.base  # type: ignore[attr-defined]
    return f"{base}/remote.php/dav/files/{user}/{quote(rel)}"


@pytest.mark.parametrize("route", ["direct", "through the hub's proxy"])
def test_a_put_whose_body_stops_short_of_its_content_length_leaves_the_old_file(drive, route):
    rel = f"short-{route[:6]}.ipynb"
    put_old(drive, rel)
    url = files_url(drive, "alice", rel, direct=route == "direct")
    auth = ("alice", drive.swan.tokens["alice"])
    send_and_hang_up(url, auth, {"Content-Length": str(ANNOUNCED)}, b"{" + b"x" * 40_000)
    assert_untouched(drive, "alice", rel, drive.space("alice"))


def send_and_read_answer(url: str, auth: tuple[str, str], headers: dict, body: bytes) -> bytes:
    """Send the headers and `body`, end the request side there, and read the whole answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request_head("PUT", url, auth, headers) + body)
        sock.shutdown(socket.SHUT_WR)  # the body ends here, the answer can still come back
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("headers", "body", "said"),
    [
        ({"Content-Length": "100"}, b"y" * 60, b"after 60 of 100 bytes"),
        ({"Transfer-Encoding": "chunked"}, b"a\r\n0123456789\r\n20\r\nhalf", b"broke off"),
    ],
    ids=["content-length", "chunked"],
)
def test_a_body_that_ends_early_is_answered_400_and_changes_nothing(drive, headers, body, said):
    rel = "answered.txt"
    put_old(drive, rel)
    auth = ("alice", drive.swan.tokens["alice"])
    answer = send_and_read_answer(files_url(drive, "alice", rel), auth, headers, body)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert said in answer
    assert_untouched(drive, "alice", rel, drive.space("alice"))


def test_a_chunked_body_cut_off_before_its_last_chunk_leaves_the_old_file(drive):
    rel = "chunked.txt"
    put_old(drive, rel)
    chunk = b"z" * 20_000
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3 + b"%x\r\nhalf" % len(chunk)
    auth = ("alice", drive.swan.tokens["alice"])
    send_and_hang_up(files_url(drive, "alice", rel), auth, {"Transfer-Encoding": "chunked"}, body)
    assert_untouched(drive, "alice", rel, drive.space("alice"))


def test_a_client_killed_mid_body_leaves_the_old_file(drive):
    rel = "killed.ipynb"
    put_old(drive, rel)
    url = files_url(drive, "alice", rel)
    head = request_head(
        "PUT", url, ("alice", drive.swan.tokens["alice"]), {"Content-Length": "10000000"}
    )
    parts = urlsplit(url)
    script = textwrap.dedent(
        f"""
        import socket, sys, time
        sock = socket.create_connection(({parts.hostname!r}, {parts.port}))
        sock.sendall({head!r} + b"k" * 3_000_000)
        print("sent", flush=True)
        time.sleep(120)
        """
    )
    client = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == b"sent"
        # the drive is now holding a temp file with part of the body
        os.kill(client.pid, signal.SIGKILL)
    finally:
        client.kill()
        client.wait(timeout=30)
    assert_untouched(drive, "alice", rel, drive.space("alice"))


def test_a_cut_off_upload_through_a_public_link_leaves_the_old_file(drive):
    drive.dav("alice", "MKCOL", "dropbox")
    put_old(drive, "dropbox/form.txt")
    link = ocs_share(drive, "alice", path="dropbox", shareType="3", publicUpload="true")
    url = f"{drive.direct}/public.php/webdav/form.txt"
    send_and_hang_up(url, (link["token"], ""), {"Content-Length": str(ANNOUNCED)}, b"w" * 5000)
    assert_untouched(drive, "alice", "dropbox/form.txt", drive.space("alice") / "dropbox")


def test_a_part_of_a_chunked_upload_that_arrived_short_is_not_assembled(drive):
    c = drive.client("alice")
    upload = f"{drive.base}/remote.php/dav/uploads/alice/cut-1"
    assert c.request("MKCOL", upload).status_code == 201
    assert c.put(f"{upload}/00001", content=b"a" * 1000).status_code == 201
    auth = ("alice", drive.swan.tokens["alice"])
    part_url = f"{drive.direct}/remote.php/dav/uploads/alice/cut-1/00002"
    send_and_hang_up(part_url, auth, {"Content-Length": "1000"}, b"b" * 400)
    area = drive.swan.data / "drive" / "uploads" / "alice" / "cut-1"
    assert wait_until_no_temp_files(area) == []
    assert sorted(p.name for p in area.iterdir()) == ["00001"]
    put_old(drive, "assembled.bin")
    dest = f"{drive.base}/remote.php/dav/files/alice/assembled.bin"
    r = c.request(
        "MOVE", f"{upload}/.file", headers={"Destination": dest, "OC-Total-Length": "2000"}
    )
    assert r.status_code == 400
    assert (drive.space("alice") / "assembled.bin").read_bytes() == OLD


class CuttingRelay:
    """A TCP relay on 127.0.0.1 in front of the drive that, on the first connection to carry
    more than `after` request bytes, stops there: `drop` closes both sides at once (a storage
    or network that drops the connection), `stall` forwards nothing more until the client goes
    away (so the client can be killed mid-body), then closes the drive's side."""

    def __init__(self, target: str, after: int, mode: str = "drop"):
        parts = urlsplit(target)
        self.upstream = (parts.hostname, parts.port)
        self.after, self.mode = after, mode
        self.cut = threading.Event()
        self.stalled = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}{parts.path}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump_up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(server, client), daemon=True).start()

    def _pump_up(self, client: socket.socket, server: socket.socket) -> None:
        sent = 0
        armed = not self.cut.is_set()
        try:
            while data := client.recv(65536):
                if armed and sent + len(data) > self.after:
                    server.sendall(data[: self.after - sent])
                    self.cut.set()
                    if self.mode == "stall":
                        self.stalled.set()
                        while client.recv(65536):
                            pass  # the client may still send: swallowed, never forwarded
                    break
                server.sendall(data)
                sent += len(data)
            else:
                server.shutdown(socket.SHUT_WR)
                return
        except OSError:
            pass
        for s in (client, server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    @staticmethod
    def _pump_down(server: socket.socket, client: socket.socket) -> None:
        try:
            while data := server.recv(65536):
                client.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._stop = True
        self.listener.close()


def storage_for(drive: Drive, url: str, tmp_path: Path, **traits) -> WebDAVStorage:
    drive.client("alice")
    password = tmp_path / "password"
    password.write_text(drive.swan.tokens["alice"])
    return WebDAVStorage(
        url=url,
        username="alice",
        password_file=str(password),
        spool_dir=str(tmp_path / "spool"),
        **traits,
    )


@pytest.mark.parametrize("chunked_upload", ["none", "v2", "v1"])
def test_webdav_storage_whose_connection_drops_mid_upload_leaves_the_old_file(
    drive, tmp_path, chunked_upload
):
    rel = f"dropped-{chunked_upload}.bin"
    put_old(drive, rel)
    relay = CuttingRelay(f"{drive.direct}/remote.php/dav/files/alice/", after=int(1.5 * MiB))
    storage = storage_for(drive, relay.url, tmp_path, chunk_size=MiB, chunked_upload=chunked_upload)

    async def upload() -> None:
        try:
            await storage.write_chunk(rel, 1, os.urandom(2 * MiB))
            await storage.write_chunk(rel, -1, os.urandom(MiB))
        finally:
            await storage.close()

    try:
        with pytest.raises(StorageUnavailable):
            asyncio.run(upload())
    finally:
        relay.close()
    assert relay.cut.is_set()
    assert_untouched(drive, "alice", rel, drive.space("alice"))


def test_a_user_server_killed_mid_save_leaves_the_old_file(drive, tmp_path):
    rel = "saved-when-killed.ipynb"
    put_old(drive, rel)
    relay = CuttingRelay(f"{drive.direct}/remote.php/dav/files/alice/", after=2 * MiB, mode="stall")
    storage_for(drive, relay.url, tmp_path)  # writes the password file
    script = textwrap.dedent(
        f"""
        import asyncio
        from swan_contents.storage import WebDAVStorage
        storage = WebDAVStorage(url={relay.url!r}, username="alice",
                                password_file={str(tmp_path / "password")!r})
        asyncio.run(storage.write({rel!r}, b"{{" + b"n" * 12_000_000))
        """
    )
    server = subprocess.Popen([sys.executable, "-c", script])
    try:
        assert relay.stalled.wait(60), "the save never reached the drive"
        os.kill(server.pid, signal.SIGKILL)  # as a user server dies: no cleanup of any kind
        server.wait(timeout=30)
    finally:
        server.kill()
        relay.close()
    assert_untouched(drive, "alice", rel, drive.space("alice"))


def test_a_posix_save_killed_at_any_moment_leaves_the_old_or_the_whole_new_file(tmp_path):
    space = tmp_path / "space"
    space.mkdir()
    journal = tmp_path / "journal"
    new = b"n" * (40 * MiB)
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from swan_contents.storage.posix import PosixStorage
        storage = PosixStorage({str(space)!r}, journal={str(journal)!r})
        print("ready", flush=True)
        sys.stdin.readline()
        asyncio.run(storage.write("nb.ipynb", b"n" * {len(new)}))
        print("saved", flush=True)
        """
    )
    for delay in (0.01, 0.1, 0.3):
        (space / "nb.ipynb").write_bytes(OLD)
        server = subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            assert server.stdout is not None and server.stdin is not None
            assert server.stdout.readline().strip() == b"ready"
            server.stdin.write(b"go\n")
            server.stdin.flush()
            time.sleep(delay)
            os.kill(server.pid, signal.SIGKILL)
        finally:
            server.kill()
            server.wait(timeout=30)
        stored = (space / "nb.ipynb").read_bytes()
        assert stored in (OLD, new), f"killed after {delay}s: {len(stored)} bytes"
    # what the killed saves left is hidden, and the next server's sweep removes it
    restarted = PosixStorage(str(space), journal=str(journal))
    restarted.spool_max_age = 0
    restarted.sweep_leftovers()
    assert sorted(p.name for p in space.iterdir()) == ["nb.ipynb"]


def test_a_share_request_cut_off_mid_form_creates_no_share(drive):
    drive.dav("alice", "MKCOL", "secret")
    form = b"path=%2Fsecret&shareType=0&shareWith=bob&permissions=31"
    url = f"{drive.direct}/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json"
    auth = ("alice", drive.swan.tokens["alice"])
    headers = {
        "OCS-APIRequest": "true",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(form) + 20),  # the rest never comes
    }
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request_head("POST", url, auth, headers) + form)
        sock.shutdown(socket.SHUT_WR)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    found = drive.ocs("alice", "GET", "shares", params={"path": "/secret"})
    assert found.json()["ocs"]["data"] == []


def _drive_pid(swan) -> int:
    from harness.swan import _processes

    found = [
        pid
        for pid, (_, state, cmd) in _processes().items()
        if state != "Z" and "swan_hub.drive" in cmd and str(swan.data) in cmd
    ]
    assert len(found) == 1, found
    return found[0]


def test_a_drive_killed_mid_put_leaves_no_temp_file_once_it_is_back(tmp_path):
    # SIGKILL gives the drive no chance to delete the temp file of the upload it was reading:
    # the drive started again (the hub restarts a managed service that died) must find it
    config = tmp_path / "fast_poll.py"
    config.write_text("c.Spawner.poll_interval = 1\n")
    swan = start_swan(tmp_path, "-f", str(config), users="alice")
    try:
        drive = Drive(swan)
        folder = drive.space("alice") / "deep" / "er"
        folder.mkdir(parents=True)
        rel = "deep/er/kept.ipynb"
        put_old(drive, rel)
        # a notebook server's temp file in the same folder is not the drive's to delete
        theirs = folder / f"{TEMP_PREFIX}0123456789abcdef.part"
        theirs.write_text("a save of a server beside the drive")
        url = files_url(drive, "alice", rel)
        head = request_head(
            "PUT", url, ("alice", swan.tokens["alice"]), {"Content-Length": str(ANNOUNCED)}
        )
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(head + b"n" * (ANNOUNCED // 2))
            deadline = time.monotonic() + 30
            while True:
                ours = [
                    p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX) and p != theirs
                ]
                if ours or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert len(ours) == 1, "the drive is writing the upload to a temp file"
            old_pid = _drive_pid(swan)
            os.kill(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError):
                if _drive_pid(swan) != old_pid:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the hub did not start the drive again")
        drive_url(swan)
        deadline = time.monotonic() + 30
        while ours[0].exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not ours[0].exists()
        assert theirs.exists()
        assert (folder / "kept.ipynb").read_bytes() == OLD
        assert drive.dav("alice", "GET", rel).content == OLD
    finally:
        swan.kill_everything()
