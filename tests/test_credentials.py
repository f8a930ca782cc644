"""The storage-credentials contract on the server's side: what the hub's JSON file may hold and how
the rest is refused, re-reading the file when the hub replaces it, the order of the sources, the
share backend reading the same file, and a real jupyter-server on a real WebDAV server (WsgiDAV
behind a gate that lets through only the current bearer token) that picks up a rotated token
without a restart, names a missing or broken file in a 503, and never shows a token in its log
or in its /swan/api/info answer."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from conftest import notebook_body
from harness.dav_servers import shared_root
from harness.jupyter_process import JupyterProcess
from harness.ocs_replay import OCSReplay
from test_webdav_storage import BearerDavServer

from swan_contents.storage import CredentialsUnavailable, PermissionDenied, WebDAVStorage
from swan_contents.storage.credentials import (
    Credentials,
    InvalidCredentials,
    StorageAuth,
    WatchedFile,
    parse_credentials_file,
)
from swan_hub.spawner import write_private_file
from swan_share_ext.sharing.ocs import OCSShareBackend

SWAN = "swan_contents.SwanContentsManager"
SECRET = "s3cr3t-Value-0f-the-test"


def write_credentials(path: Path, credentials: dict) -> None:
    """Replace the file as the hub does (written beside, renamed)."""
    write_private_file(str(path), json.dumps(credentials).encode(), None)


@pytest.fixture
def private_root():
    root = shared_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def gate(private_root):
    """A WebDAV server that accepts only `Authorization: Bearer <gate.token>`."""
    server = BearerDavServer(private_root)
    server.token = "token-one"
    server.start()
    yield server
    server.stop()


# -- the contract ---------------------------------------------------------------------------


def test_a_bearer_and_a_basic_credentials_file_read_as_the_contract_says():
    bearer = parse_credentials_file(
        json.dumps(
            {
                "kind": "bearer",
                "token": "abc.def-ghi",
                "expires_at": 1767225600,
                "url": "https://cloud.example.org/remote.php/dav/files/alice/",
            }
        )
    )
    assert (bearer.kind, bearer.expires_at) == ("bearer", 1767225600)
    assert bearer.authorization("ignored") == "Bearer abc.def-ghi"
    assert bearer.url.endswith("/files/alice/")
    basic = parse_credentials_file('{"kind": "basic", "username": "alice", "password": "p w"}')
    assert basic.authorization("someone-else") == "Basic YWxpY2U6cCB3"
    unnamed = parse_credentials_file('{"kind": "basic", "password": "p w"}')
    assert unnamed.authorization("alice") == "Basic YWxpY2U6cCB3"
    # what the hub writes is what the server reads back
    assert Credentials.from_json(bearer.to_json()) == bearer
    assert Credentials.from_json(basic.to_json()) == basic


def test_a_basic_header_carries_names_and_passwords_beyond_ascii_as_utf8():
    # RFC 7617's UTF-8 charset, as ownCloud and Nextcloud decode it; a colon may be in the password
    credentials = Credentials(kind="basic", username="jörg", secret="pässwort:1")
    scheme, _, encoded = credentials.authorization("ignored").partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode("utf-8") == "jörg:pässwort:1"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([SECRET], "JSON object"),
        ({"token": SECRET}, '"kind"'),
        ({"kind": "oauth", "token": SECRET}, '"kind"'),
        ({"kind": "bearer", "token": ""}, '"token"'),
        ({"kind": "bearer", "password": SECRET}, '"token"'),
        ({"kind": "bearer", "token": SECRET + "\r\nX-Evil: 1"}, '"token"'),
        ({"kind": "basic", "username": "alice"}, '"password"'),
        ({"kind": "basic", "username": "a:b", "password": SECRET}, '"username"'),
        ({"kind": "bearer", "token": SECRET, "expires_at": "tomorrow"}, '"expires_at"'),
        ({"kind": "bearer", "token": SECRET, "url": "file:///etc/"}, '"url"'),
        ({"kind": "bearer", "token": SECRET, "url": f"https://u:{SECRET}@x.org/"}, '"url"'),
    ],
)
def test_credentials_that_break_the_contract_are_refused_by_field_never_by_value(document, field):
    with pytest.raises(InvalidCredentials) as refused:
        Credentials.from_json(document)
    assert field in str(refused.value)
    assert SECRET not in str(refused.value)


def test_a_file_that_is_not_json_is_refused_without_quoting_it():
    with pytest.raises(InvalidCredentials, match="not JSON") as refused:
        parse_credentials_file(f'{{"kind": "bearer", "token": "{SECRET}"')
    assert SECRET not in str(refused.value)


def test_the_secret_never_appears_in_a_repr():
    credentials = Credentials(kind="bearer", secret=SECRET)
    assert SECRET not in repr(credentials)
    assert SECRET not in str([credentials])


# -- reading the file -----------------------------------------------------------------------


class CountingFile(WatchedFile):
    """A watched file that counts its looks at the disk and its parses."""

    def __init__(self, path, parse=parse_credentials_file, **kwargs):
        self.looks = 0
        self.parses = 0

        def counting_parse(text):
            self.parses += 1
            return parse(text)

        super().__init__(str(path), counting_parse, **kwargs)

    def read_now(self):
        self.looks += 1
        return super().read_now()


async def test_a_burst_of_requests_looks_at_the_file_once(tmp_path):
    path = tmp_path / "storage.json"
    write_credentials(path, {"kind": "bearer", "token": "one"})
    watched = CountingFile(path)
    values = await asyncio.gather(*(watched.value() for _ in range(50)))
    assert {v.secret for v in values} == {"one"}
    assert (watched.looks, watched.parses) == (1, 1)


async def test_a_replaced_file_is_read_again_and_an_unchanged_one_is_not(tmp_path):
    path = tmp_path / "storage.json"
    write_credentials(path, {"kind": "bearer", "token": "one"})
    watched = CountingFile(path, recheck_every=0.0)
    assert (await watched.value()).secret == "one"
    assert (await watched.value()).secret == "one"
    assert (watched.looks, watched.parses) == (2, 1)
    write_credentials(path, {"kind": "bearer", "token": "two"})
    assert (await watched.value()).secret == "two"
    assert watched.parses == 2


async def test_a_file_changed_in_place_is_read_again(tmp_path):
    path = tmp_path / "token"
    path.write_text("token-one\n")
    watched = CountingFile(path, parse=lambda text: text.strip(), recheck_every=0.0)
    assert await watched.value() == "token-one"
    path.write_text("token-two\n")  # same size, same inode
    os.utime(path, ns=(1, 1))
    assert await watched.value() == "token-two"


async def test_a_missing_or_broken_file_is_an_error_that_names_it(tmp_path):
    path = tmp_path / "storage.json"
    auth = StorageAuth(credentials_file=str(path))
    with pytest.raises(CredentialsUnavailable, match=f"cannot read {path}: No such file"):
        await auth.credentials()
    path.write_text(f'{{"kind": "bearer", "tokn": "{SECRET}"}}')
    with pytest.raises(CredentialsUnavailable) as broken:
        await auth.credentials()
    assert f"{path} is not valid" in broken.value.detail
    assert SECRET not in broken.value.detail
    path.write_bytes(b"x" * (70 * 1024))
    with pytest.raises(CredentialsUnavailable, match="larger than 64 KiB"):
        await auth.credentials()
    write_credentials(path, {"kind": "bearer", "token": "good"})
    assert (await auth.credentials()).secret == "good"


async def test_sources_are_used_in_the_documented_order(tmp_path, monkeypatch):
    token_file, password_file, credentials_file = (
        tmp_path / "token",
        tmp_path / "password",
        tmp_path / "storage.json",
    )
    token_file.write_text("from-token-file\n")
    password_file.write_text("from-password-file\n")
    write_credentials(credentials_file, {"kind": "bearer", "token": "from-credentials-file"})
    monkeypatch.setenv("T_TOKEN", "from-token-env")
    monkeypatch.setenv("T_PASSWORD", "from-password-env")
    every_source = {
        "token_file": str(token_file),
        "password_file": str(password_file),
        "credentials_file": str(credentials_file),
        "token_env": "T_TOKEN",
        "password_env": "T_PASSWORD",
    }
    order = [
        "from-token-file",
        "from-password-file",
        "from-credentials-file",
        "from-token-env",
        "from-password-env",
    ]
    for name, expected in zip(list(every_source), order, strict=True):
        auth = StorageAuth(username="alice", **every_source)
        assert (await auth.credentials()).secret == expected, name
        del every_source[name]
    assert await StorageAuth(username="alice").credentials() is None


async def test_a_source_that_fails_does_not_fall_through_to_the_next(tmp_path, monkeypatch):
    monkeypatch.setenv("T_TOKEN", "from-token-env")
    auth = StorageAuth(credentials_file=str(tmp_path / "gone.json"), token_env="T_TOKEN")
    with pytest.raises(CredentialsUnavailable, match="gone.json"):
        await auth.credentials()


async def test_an_app_password_without_a_user_name_is_refused_clearly(tmp_path):
    path = tmp_path / "storage.json"
    write_credentials(path, {"kind": "basic", "password": SECRET})
    storage = WebDAVStorage(url="http://127.0.0.1:9/space/", credentials_file=str(path))
    try:
        with pytest.raises(CredentialsUnavailable, match="needs a user name") as refused:
            await storage.stat("")
        assert SECRET not in str(refused.value)
        assert storage.requests == {"PROPFIND": 1}  # counted, but never sent
    finally:
        await storage.close()


# -- the WebDAV driver and the share backend read the same file ------------------------------


async def test_a_token_replaced_by_the_hub_is_used_at_once_without_a_restart(gate, tmp_path):
    path = tmp_path / "storage.json"
    write_credentials(path, {"kind": "bearer", "token": "token-one"})
    storage = WebDAVStorage(url=gate.folder("space")[1], credentials_file=str(path))
    try:
        await storage.write("a.txt", b"1")
        gate.token = "token-two"
        write_credentials(path, {"kind": "bearer", "token": "token-two"})
        # within the recheck window the old token goes out first: the 401 makes the driver look
        # at the file at once and send the request again with the new token
        before = len(gate.requests())
        assert (await storage.stat("a.txt")).size == 1
        assert len(gate.requests()) - before == 1  # the refused request never reached WsgiDAV
        assert (await storage.read("a.txt"))[1] == b"1"
    finally:
        await storage.close()


async def test_a_refused_streamed_upload_fails_cleanly_and_the_next_request_recovers(
    gate, tmp_path
):
    path = tmp_path / "storage.json"
    write_credentials(path, {"kind": "bearer", "token": "token-one"})
    storage = WebDAVStorage(
        url=gate.folder("space")[1], credentials_file=str(path), spool_dir=str(tmp_path / "spool")
    )
    try:
        await storage.write_chunk("big.bin", 1, b"a" * 1000)
        gate.token = "token-two"
        with pytest.raises(PermissionDenied, match="log in again"):
            # the last part goes out as a stream, which cannot be sent twice
            await storage.write_chunk("big.bin", -1, b"b" * 1000)
        write_credentials(path, {"kind": "bearer", "token": "token-two"})
        assert await storage.write("big.bin", b"c") is not None
    finally:
        await storage.close()


async def test_the_share_backend_reads_url_and_token_from_the_hubs_file(tmp_path, monkeypatch):
    replay = OCSReplay.load("reva").start()
    try:
        path = tmp_path / "storage.json"
        token = replay.recording["credentials"]["token"]
        url = f"{replay.url}remote.php/dav/files/teacher/"
        write_credentials(path, {"kind": "bearer", "token": token, "url": url})
        for name in ("SWAN_WEBDAV_URL", "SWAN_WEBDAV_TOKEN", "SWAN_WEBDAV_PASSWORD"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SWAN_STORAGE_CREDENTIALS", str(path))
        backend = OCSShareBackend(dialect="reva")
        try:
            assert (backend.url, backend.username) == (replay.url, "teacher")
            assert await backend.search_sharees("alice")
            assert replay.requests()[0].headers["authorization"] == f"Bearer {token}"
            path.unlink()
            from swan_share_ext.sharing.backend import SharingUnavailable

            await asyncio.sleep(1.1)  # past the recheck window
            with pytest.raises(SharingUnavailable, match=f"cannot read {path}"):
                await backend.search_sharees("alice")
        finally:
            await backend.close()
    finally:
        replay.stop()


# -- a real jupyter-server --------------------------------------------------------------------


def webdav_server_process(tmp_path: Path, url: str, credentials: Path, log: Path):
    return JupyterProcess(
        tmp_path / "unused-root",
        tmp_path / "state",
        SWAN,
        [
            "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
            f"--WebDAVStorage.url={url}",
        ],
        env={"SWAN_STORAGE_CREDENTIALS": str(credentials)},
        log=log,
        log_level="DEBUG",
    )


def contents(server: JupyterProcess, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(
        method, f"{server.url}/api/contents/{path}", headers=server.headers, timeout=30, **kwargs
    )


def test_a_running_server_picks_up_a_rotated_token_and_never_shows_one(gate, tmp_path):
    credentials = tmp_path / "credentials" / "storage.json"
    credentials.parent.mkdir()
    expired = time.time() - 60
    write_credentials(credentials, {"kind": "bearer", "token": "token-one"})
    (tmp_path / "unused-root").mkdir()
    log = tmp_path / "server.log"
    with webdav_server_process(tmp_path, gate.folder("space")[1], credentials, log) as server:
        pid = server.proc.pid
        assert contents(server, "PUT", "nb.ipynb", json=notebook_body("one")).status_code == 201

        # the identity provider rotates the token; the hub replaces the file
        gate.token = "token-two"
        write_credentials(credentials, {"kind": "bearer", "token": "token-two"})
        got = contents(server, "GET", "nb.ipynb")
        assert got.status_code == 200, got.text
        assert got.json()["content"]["cells"][0]["source"] == "one"
        assert server.proc.pid == pid and server.proc.poll() is None

        # a token the storage no longer takes: a 403 that says what to do, a warning for
        # the admin that names the file and the expiry, and the token nowhere
        gate.token = "token-four"
        write_credentials(
            credentials, {"kind": "bearer", "token": "token-three", "expires_at": expired}
        )
        refused = contents(server, "GET", "nb.ipynb")
        assert refused.status_code == 403 and "log in again" in refused.json()["message"]
        info = httpx.get(f"{server.url}/swan/api/info", headers=server.headers, timeout=30)
        assert info.status_code == 200 and info.json()["storage"]["kind"] == "webdav"
        shown = refused.text + info.text
    logged = log.read_text()
    assert f"refused the credentials from the credentials file {credentials}" in logged
    assert "which expired at" in logged
    assert f"credentials from the credentials file {credentials}" in logged
    for token in ("token-one", "token-two", "token-three", "token-four"):
        assert token not in logged
        assert token not in shown


def test_a_missing_or_broken_credentials_file_is_a_503_naming_it_until_the_hub_fixes_it(
    gate, tmp_path
):
    credentials = tmp_path / "storage.json"
    (tmp_path / "unused-root").mkdir()
    with webdav_server_process(
        tmp_path, gate.folder("space")[1], credentials, tmp_path / "server.log"
    ) as server:
        missing = contents(server, "GET", "")
        assert missing.status_code == 503
        assert f"cannot use its storage credentials (cannot read {credentials}" in missing.text
        assert "Log out and in again" in missing.json()["message"]

        credentials.write_text('{"kind": "bearer"}')
        broken = contents(server, "GET", "")
        assert broken.status_code == 503
        assert f"{credentials} is not valid" in broken.json()["message"]

        write_credentials(credentials, {"kind": "bearer", "token": "token-one"})
        assert contents(server, "GET", "").status_code == 200
        assert server.proc.poll() is None
