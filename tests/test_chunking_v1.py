"""ownCloud's chunked upload (v1) against the drive of `swan up` configured to offer only v1:
pyocclient's chunked `put_file`, WebDAVStorage's uploads in parts, permissions, checksums, cut-off
parts and the sweep of abandoned part sets. Owns no server code."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import owncloud
import pytest
from harness.drive import Drive, ocs_share, parse_xml, running_drive
from test_cut_off_uploads import ANNOUNCED, OLD, put_old, send_and_hang_up
from test_drive_clients import sync

from swan_contents.storage import WebDAVStorage
from swan_contents.storage.ondisk import TEMP_PREFIX
from swan_contents.storage.webdav.capabilities import ServerCapabilities
from swan_contents.storage.webdav.uploads import choose_uploader

pytestmark = pytest.mark.hub

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chunking-v1")
    access_log = workdir / "drive-access.log"
    settings = (
        'c.DriveService.advertised_chunking = "v1"\n'
        f"c.DriveService.access_log = {str(access_log)!r}\n"
    )
    with running_drive(workdir, settings=settings) as drive:
        drive.access_log = access_log  # type: ignore[attr-defined]
        yield drive


def parts_area(drive: Drive, user: str) -> Path:
    return drive.swan.data / "drive" / "uploads" / user


def part_sets(drive: Drive, user: str) -> list[str]:
    area = parts_area(drive, user)
    return sorted(p.name for p in area.iterdir()) if area.exists() else []


def part_url(drive: Drive, user: str, rel: str, transfer: str, count: int, index: int) -> str:
    return f"{drive.base}/remote.php/webdav/{rel}-chunking-{transfer}-{count}-{index}"


def test_the_capabilities_offer_only_chunking_v1(drive):
    caps = drive.client("alice").get(
        f"{drive.base}/ocs/v1.php/cloud/capabilities", params={"format": "json"}
    )
    found = caps.json()["ocs"]["data"]["capabilities"]
    assert found["files"]["bigfilechunking"] is True
    assert "chunking" not in found["dav"]


def test_pyocclient_uploads_25_mib_in_parts_and_reads_back_the_same_bytes(drive, tmp_path):
    local = tmp_path / "big.bin"
    data = os.urandom(25 * MiB)
    local.write_bytes(data)
    client = owncloud.Client(f"{drive.base}/")
    drive.client("alice")
    client.login("alice", drive.swan.tokens["alice"])
    assert client.put_file("big.bin", str(local), chunked=True, chunk_size=10 * MiB)
    stored = drive.space("alice") / "big.bin"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert client.get_file_contents("big.bin") == data
    # the three parts went to the drive's uploads area, not into the space, and are gone
    assert not [p for p in drive.space("alice").iterdir() if "chunking" in p.name]
    assert not [p for p in drive.space("alice").iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert part_sets(drive, "alice") == []
    puts = [
        line
        for line in drive.access_log.read_text().splitlines()  # type: ignore[attr-defined]
        if line.startswith("PUT ") and "big.bin-chunking-" in line
    ]
    assert len(puts) == 3


def test_parts_wait_outside_the_space_and_the_last_part_answers_the_new_etag(drive):
    c = drive.client("alice")
    put_old(drive, "notes.txt")
    headers = {"OC-Chunked": "1"}
    first = c.put(
        part_url(drive, "alice", "notes.txt", "77", 2, 0), content=b"new ", headers=headers
    )
    assert first.status_code == 201 and "OC-ETag" not in first.headers
    assert (drive.space("alice") / "notes.txt").read_bytes() == OLD
    listed = drive.propfind("alice", "")
    assert not [href for href in listed if "chunking" in href or TEMP_PREFIX in href]
    assert len(part_sets(drive, "alice")) == 1
    last = c.put(
        part_url(drive, "alice", "notes.txt", "77", 2, 1), content=b"text", headers=headers
    )
    assert last.status_code == 201, last.text
    assert last.headers["OC-ETag"] and last.headers["OC-FileId"]
    assert (drive.space("alice") / "notes.txt").read_bytes() == b"new text"
    listed = drive.propfind("alice", "notes.txt", depth="0")
    assert next(iter(listed.values()))["{DAV:}getetag"] == last.headers["OC-ETag"]
    assert part_sets(drive, "alice") == []
    # the old content is kept as a version, as after any PUT
    file_id = int(last.headers["OC-FileId"][:8])
    versions = c.request(
        "PROPFIND",
        f"{drive.base}/remote.php/dav/versions/alice/versions/{file_id}",
        headers={"Depth": "1"},
    )
    assert versions.status_code == 207
    assert len(parse_xml(versions.content).findall("{DAV:}response")) == 2  # the folder, 1 version


def test_a_wrong_checksum_publishes_nothing(drive):
    c = drive.client("alice")
    put_old(drive, "summed.txt")
    parts = [b"first half ", b"second half"]
    good = "SHA1:" + hashlib.sha1(b"".join(parts)).hexdigest()  # noqa: S324 - the protocol's
    bad = {"OC-Chunked": "1", "OC-Checksum": "SHA1:" + "0" * 40}
    for i, part in enumerate(parts):
        r = c.put(part_url(drive, "alice", "summed.txt", "5", 2, i), content=part, headers=bad)
    assert r.status_code == 400 and "SHA1 differs" in r.text
    assert (drive.space("alice") / "summed.txt").read_bytes() == OLD
    assert part_sets(drive, "alice") == []
    for i, part in enumerate(parts):
        r = c.put(
            part_url(drive, "alice", "summed.txt", "6", 2, i),
            content=part,
            headers={"OC-Chunked": "1", "OC-Checksum": good},
        )
        assert r.status_code == 201, r.text
    assert (drive.space("alice") / "summed.txt").read_bytes() == b"".join(parts)


def test_a_read_only_share_refuses_the_first_part_before_storing_it(drive):
    drive.dav("alice", "MKCOL", "to-read")
    put_old(drive, "to-read/paper.txt")
    share = ocs_share(
        drive, "alice", path="to-read", shareType="0", shareWith="bob", permissions="1"
    )
    drive.ocs("bob", "POST", f"shares/pending/{share['id']}")
    r = drive.client("bob").put(
        part_url(drive, "bob", "Shared/to-read/paper.txt", "9", 2, 0),
        content=b"x" * 1000,
        headers={"OC-Chunked": "1"},
    )
    assert r.status_code == 403, r.text
    assert part_sets(drive, "bob") == [] and part_sets(drive, "alice") == []
    assert (drive.space("alice") / "to-read" / "paper.txt").read_bytes() == OLD


def test_a_part_cut_off_mid_body_is_not_counted_and_nothing_is_published(drive):
    c = drive.client("alice")
    put_old(drive, "cut.bin")
    headers = {"OC-Chunked": "1"}
    assert (
        c.put(
            part_url(drive, "alice", "cut.bin", "41", 2, 0), content=b"a" * 500, headers=headers
        ).status_code
        == 201
    )
    url = f"{drive.direct}/remote.php/webdav/cut.bin-chunking-41-2-1"
    auth = ("alice", drive.swan.tokens["alice"])
    send_and_hang_up(url, auth, {**headers, "Content-Length": str(ANNOUNCED)}, b"b" * 3000)
    time.sleep(1)
    assert (drive.space("alice") / "cut.bin").read_bytes() == OLD
    (folder,) = part_sets(drive, "alice")
    assert sorted(p.name for p in (parts_area(drive, "alice") / folder).iterdir()) == ["0"]
    # a set left for longer than upload_max_age is swept when the next upload starts
    two_days_ago = time.time() - 2 * 86400
    os.utime(parts_area(drive, "alice") / folder, (two_days_ago, two_days_ago))
    assert (
        c.put(
            part_url(drive, "alice", "other.bin", "42", 2, 0), content=b"c", headers=headers
        ).status_code
        == 201
    )
    assert folder not in part_sets(drive, "alice")
    last = c.put(part_url(drive, "alice", "other.bin", "42", 2, 1), content=b"d", headers=headers)
    assert last.status_code == 201 and part_sets(drive, "alice") == []


def test_webdav_storage_uploads_in_v1_parts_where_the_server_offers_only_v1(drive, tmp_path):
    drive.client("alice")
    password = tmp_path / "password"
    password.write_text(drive.swan.tokens["alice"])

    async def upload() -> tuple[dict, object]:
        storage = WebDAVStorage(
            url=f"{drive.direct}/remote.php/dav/files/alice/",
            username="alice",
            password_file=str(password),
            spool_dir=str(tmp_path / "spool"),
            chunk_size=MiB,
        )
        try:
            caps = await storage.capabilities()
            data = b"".join(os.urandom(MiB) for _ in range(3)) + b"tail"
            await storage.write_chunk("lab-upload.bin", 1, data[: 2 * MiB])
            entry = await storage.write_chunk("lab-upload.bin", -1, data[2 * MiB :])
            return caps, (entry, data)
        finally:
            await storage.close()

    before = len(drive.access_log.read_text().splitlines())  # type: ignore[attr-defined]
    caps, (entry, data) = asyncio.run(upload())
    assert caps.bigfilechunking and not caps.chunking
    assert (drive.space("alice") / "lab-upload.bin").read_bytes() == data
    assert entry.size == len(data)
    lines = drive.access_log.read_text().splitlines()[before:]  # type: ignore[attr-defined]
    parts = [line for line in lines if line.startswith("PUT ") and "-chunking-" in line]
    assert len(parts) == 4  # 3 MiB and 4 bytes in parts of 1 MiB
    assert not [line for line in lines if line.startswith("PUT ") and "-chunking-" not in line]


@pytest.mark.parametrize(
    ("dialect", "capabilities", "expected"),
    [
        ("nextcloud", {"files": {"bigfilechunking": True}, "dav": {"chunking": "1.0"}}, "v2"),
        # ownCloud 10's chunking NG is not Nextcloud's v2: one PUT there
        ("owncloud", {"files": {"bigfilechunking": True}, "dav": {"chunking": "1.0"}}, "none"),
        ("owncloud", {"files": {"bigfilechunking": True}, "dav": {}}, "v1"),
        (
            "owncloud",
            {"files": {"bigfilechunking": False, "tus_support": {"version": "1.0.0"}}},
            "tus",
        ),
        ("owncloud", {"files": {"bigfilechunking": False}, "dav": {}}, "none"),
    ],
)
def test_the_chunked_upload_follows_the_capabilities_as_owncloud_clients_read_them(
    dialect, capabilities, expected
):
    storage = WebDAVStorage(url="http://127.0.0.1:9/dav/", password_env="SWAN_TEST_UNSET")
    caps = ServerCapabilities(dialect=dialect).with_features(capabilities)
    assert choose_uploader(storage, caps).kind == expected
    forced = WebDAVStorage(
        url="http://127.0.0.1:9/dav/", password_env="SWAN_TEST_UNSET", chunked_upload="v1"
    )
    assert choose_uploader(forced, caps).kind == "v1"


def test_owncloudcmd_uploads_a_large_file_in_v1_parts_where_only_v1_is_offered(drive, tmp_path):
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    data = os.urandom(25 * MiB)
    (laptop / "recording.bin").write_bytes(data)
    drive.client("alice")
    before = len(drive.access_log.read_text().splitlines())  # type: ignore[attr-defined]
    sync(drive, "owncloudcmd", "alice", laptop)
    stored = drive.space("alice") / "recording.bin"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(data).digest()
    lines = drive.access_log.read_text().splitlines()[before:]  # type: ignore[attr-defined]
    parts = [
        line for line in lines if line.startswith("PUT ") and "recording.bin-chunking-" in line
    ]
    assert len(parts) >= 3 and all(line.endswith(" 201") for line in parts)
    assert part_sets(drive, "alice") == []


def test_a_locked_file_refuses_v1_parts_without_the_lock_token(drive):
    c = drive.client("alice")
    put_old(drive, "locked.txt")
    body = (
        '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/>'
        "</d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>"
    )
    # WsgiDAV keeps locks by URL: the parts go to the same one
    lock = c.request(
        "LOCK",
        f"{drive.base}/remote.php/webdav/locked.txt",
        content=body,
        headers={"Timeout": "Second-60"},
    )
    assert lock.status_code == 200, lock.text
    token = lock.headers["Lock-Token"]
    r = c.put(
        part_url(drive, "alice", "locked.txt", "3", 1, 0), content=b"x", headers={"OC-Chunked": "1"}
    )
    assert r.status_code == 423
    assert (drive.space("alice") / "locked.txt").read_bytes() == OLD
    assert part_sets(drive, "alice") == []
    r = c.put(
        part_url(drive, "alice", "locked.txt", "4", 1, 0),
        content=b"by the lock holder",
        headers={"OC-Chunked": "1", "If": f"({token})"},
    )
    assert r.status_code == 201, r.text
    assert (drive.space("alice") / "locked.txt").read_bytes() == b"by the lock holder"
