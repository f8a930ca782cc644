"""Uploads that break off half way (a short body, a dropped connection, a client killed with
SIGKILL) against the drive of `swan up` and through the storage drivers: the old file must stay
byte for byte, and no temp file may be left in a listing or on disk. Owns no server code."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from test_drive import Drive, _share
from test_swan_up import drive_url, start_swan

from swan_contents.storage.posix import TEMP_PREFIX

pytestmark = pytest.mark.hub

OLD = b"the good old content\n" * 500
#: what the cut-off uploads announce: far more than they send
ANNOUNCED = 1_000_000


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cut-off")
    swan = start_swan(workdir, "--users", "alice,bob")
    try:
        found = Drive(swan)
        found.direct = drive_url(swan)  # type: ignore[attr-defined]
        yield found
    finally:
        swan.kill_everything()


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


def test_a_short_body_is_answered_400_with_what_arrived(drive):
    rel = "answered.txt"
    put_old(drive, rel)
    url = files_url(drive, "alice", rel)
    auth = ("alice", drive.swan.tokens["alice"])
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request_head("PUT", url, auth, {"Content-Length": "100"}) + b"y" * 60)
        sock.shutdown(socket.SHUT_WR)  # the body ends here, the answer can still come back
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"after 60 of 100 bytes" in answer
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
    link = _share(drive, "alice", path="dropbox", shareType="3", publicUpload="true")
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
