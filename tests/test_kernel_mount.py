"""Kernels see what the file browser shows: `swan up` (drive storage) mounts each user's space
with the real rclone and FUSE, shares included, and a kernel started next to a shared notebook
reads the data beside it. View-only stays read-only for code; the mount ends with the server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import time
import uuid
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from harness.drive import Drive
from harness.swan import SWAN_UP_MARKS as swan_up_marks
from harness.swan import (
    _processes,
    swan_with_servers,
    user_api,
    user_servers,
    wait_until_stopped,
)
from test_docker_spawner import spawn_through_api
from test_drive_clients import sync
from test_swan_up_drive import accept, contents, swan_api
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from swan_hub.mounts import missing_parts, mounted_at_or_below, pending_uploads

pytestmark = [
    *swan_up_marks,
    pytest.mark.skipif(bool(missing_parts()), reason=f"cannot mount here: {missing_parts()}"),
]

BOUND = 60.0  # seconds: every wait below is bounded by this
EVENTS = "time,energy\n1,10.5\n2,11.25\n"


@pytest.fixture(scope="module")
def swan(tmp_path_factory):
    """`swan up` (drive storage) with alice and bob's servers running and their files
    mounted; the hub polls servers every 2 s so that a killed one is noticed soon."""
    workdir = tmp_path_factory.mktemp("kernel-mount")
    config = workdir / "hub_config.py"
    # answer spawn requests at once, so that the progress stream is watched from the start
    config.write_text(
        "c.Spawner.poll_interval = 2\nc.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0}\n"
    )
    with swan_with_servers(workdir, "-f", str(config)) as swan:
        yield swan
        for user in ("alice", "bob"):
            if user_servers(swan, user):
                stop_server(swan, user)


def mount_point(swan, user: str) -> str:
    return str(swan.data / "runtime" / user / "files")


def rclone_processes(swan, user: str) -> dict[int, str]:
    point = mount_point(swan, user)
    return {
        pid: cmd
        for pid, (_, state, cmd) in _processes().items()
        if os.path.basename(cmd.split(" ", 1)[0]) == "rclone" and point in cmd and state != "Z"
    }


def wait_for(what: str, check, timeout: float = BOUND):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"not within {timeout:g}s: {what}")


def put_text(swan, user: str, path: str, text: str) -> None:
    body = {"type": "file", "format": "text", "content": text}
    r = contents(swan, user, "PUT", path, json=body)
    assert r.status_code in (200, 201), r.text


def start_kernel(swan, user: str, path: str) -> str:
    r = user_api(swan, user, "POST", f"{user}/api/kernels", json={"name": "python3", "path": path})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _execute(url: str, token: str, code: str) -> tuple[str, str]:
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=BOUND)
    ws = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "username": "test",
        "session": uuid.uuid4().hex,
        "version": "5.3",
    }
    content = {"code": code, "silent": False, "store_history": False, "allow_stdin": False}
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    await ws.write_message(json.dumps({**message, "channel": "shell", "buffers": []}))
    out, error, replied, idle = [], "", False, False
    while not (replied and idle):
        raw = await asyncio.wait_for(ws.read_message(), BOUND)
        assert raw is not None, "the kernel's websocket closed"
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            out.append(msg["content"]["text"])
        elif kind == "error":
            error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    ws.close()
    return "".join(out), error


def execute(swan, user: str, kernel: str, code: str) -> tuple[str, str]:
    """Run ``code`` in ``user``'s kernel through the kernel websocket: (stdout, error)."""
    url = f"{swan.url.replace('http', 'ws', 1)}/user/{user}/api/kernels/{kernel}/channels"
    return asyncio.run(_execute(url, swan.tokens[user], code))


@pytest.fixture(scope="module")
def week1(swan) -> str:
    return share_week1(swan)


def share_week1(swan) -> str:
    """alice shares week1/ (exercise.ipynb, events.csv) view-only with bob, who accepts; the
    share's place in bob's space."""
    assert contents(swan, "alice", "PUT", "week1", json={"type": "directory"}).status_code == 201
    put_text(swan, "alice", "week1/events.csv", EVENTS)
    notebook = {"type": "notebook", "content": {"cells": [], "metadata": {}, "nbformat": 4}}
    notebook["content"]["nbformat_minor"] = 5
    assert contents(swan, "alice", "PUT", "week1/exercise.ipynb", json=notebook).status_code == 201
    body = {"path": "week1", "kind": "user", "share_with": "bob", "permissions": 1}
    r = swan_api(swan, "alice", "POST", "shares", json=body)
    assert r.status_code == 201, r.text
    location = accept(swan, "bob", r.json()["id"])["location"]
    assert location == "Shared/week1"
    return location


def test_the_servers_files_are_mounted_by_rclone_without_a_secret_in_its_command_or_env(swan):
    assert "kernels and terminals see the same files, shares included" in swan.output()
    for user in ("alice", "bob"):
        point = mount_point(swan, user)
        assert point in mounted_at_or_below(point)
        (pid, cmd), *_ = rclone_processes(swan, user).items()
        token = swan.tokens[user]
        credentials = json.loads((swan.data / "credentials" / user / "storage.json").read_text())
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for secret in (credentials["password"], token):
            assert secret not in cmd and secret.encode() not in environ
        config = swan.data / "runtime" / user / "rclone" / "rclone.conf"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert credentials["password"] not in config.read_text()  # obscured


def test_a_kernel_next_to_a_shared_notebook_reads_the_data_beside_it(swan, week1):
    point = mount_point(swan, "bob")
    wait_for("week1 in bob's mount", lambda: os.path.isdir(os.path.join(point, week1)))
    kernel = start_kernel(swan, "bob", f"{week1}/exercise.ipynb")
    out, error = execute(
        swan, "bob", kernel, "import os\nprint(os.getcwd())\nprint(open('events.csv').read())"
    )
    assert not error
    cwd, _, text = out.partition("\n")
    assert cwd == os.path.join(point, "Shared", "week1")
    assert text.rstrip("\n") == EVENTS.rstrip("\n")


async def _terminal(url: str, token: str, lines: list[str], until: str) -> str:
    """Type ``lines`` into a terminal (terminado's websocket) and collect what it shows until
    ``until`` appears."""
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=BOUND)
    ws = await websocket_connect(request)
    shown = ""
    for line in lines:
        await ws.write_message(json.dumps(["stdin", line + "\r"]))
    deadline = time.monotonic() + BOUND
    while until not in shown:
        try:
            raw = await asyncio.wait_for(ws.read_message(), max(deadline - time.monotonic(), 0.1))
        except TimeoutError:
            pytest.fail(f"not within {BOUND:g}s: {until!r} in the terminal, which showed {shown!r}")
        assert raw is not None, f"the terminal's websocket closed; it showed: {shown!r}"
        kind, *rest = json.loads(raw)
        if kind == "stdout":
            shown += rest[0]
    ws.close()
    return shown


def in_a_terminal(swan, user: str, lines: list[str], until: str) -> str:
    """What ``user``'s new terminal shows for ``lines``, up to ``until``; the terminal is
    closed again."""
    r = user_api(swan, user, "POST", f"{user}/api/terminals")
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    url = f"{swan.url.replace('http', 'ws', 1)}/user/{user}/terminals/websocket/{name}"
    try:
        return asyncio.run(_terminal(url, swan.tokens[user], lines, until))
    finally:
        user_api(swan, user, "DELETE", f"{user}/api/terminals/{name}")


def terminal_in_the_class(swan, week1: str) -> str:
    """bob's new terminal reads the view-only share's CSV, is refused a write there, and
    writes from-terminal.txt into his space, which reaches the drive; what it showed, whose
    first line says ``shell=… id=… cwd=… home=…``."""
    shown = in_a_terminal(
        swan,
        "bob",
        [
            'echo "shell=$(basename "${0#-}") id=$(id -u) cwd=$(pwd) home=$HOME"',
            f"cat '{week1}/events.csv'",
            f"echo student > '{week1}/events.csv'; echo rc=$?",
            "echo 42 > from-terminal.txt; echo rc=$?",
            "echo done-$((40 + 2))",  # what the shell prints, not what it echoes of the line
        ],
        until="done-42",
    )
    assert "time,energy\r\n1,10.5\r\n2,11.25" in shown
    assert "Read-only file system" in shown
    assert "rc=1" in shown and "rc=0" in shown
    mine = swan.data / "users" / "bob" / "from-terminal.txt"
    wait_for("the terminal's file on the drive", lambda: mine.is_file())
    assert mine.read_text() == "42\n"
    assert (swan.data / "users" / "alice" / "week1" / "events.csv").read_text() == EVENTS
    return shown


def test_a_terminal_starts_in_the_mount_sees_the_shares_and_writes_only_where_allowed(swan, week1):
    point = mount_point(swan, "bob")
    wait_for("week1 in bob's mount", lambda: os.path.isdir(os.path.join(point, week1)))
    shown = terminal_in_the_class(swan, week1)
    assert f"cwd={point} home={point}" in shown


def folder_the_mount_does_not_list_yet(swan, user: str, attempts: int = 5) -> str:
    """A folder with data.txt made through the contents API just after the mount listed the
    root, so that the mount's listing (trusted for DIR_CACHE_TIME) does not show it yet. A slow
    machine may take longer than that to make it: then again with another name."""
    point = mount_point(swan, user)
    for _ in range(attempts):
        name = f"fresh-{uuid.uuid4().hex[:8]}"
        os.listdir(point)  # the mount's listing of the root, without the folder
        assert contents(swan, user, "PUT", name, json={"type": "directory"}).status_code == 201
        put_text(swan, user, f"{name}/data.txt", "beside the notebook")
        if not os.path.isdir(os.path.join(point, name)):
            return name
    raise AssertionError(f"the mount listed each of {attempts} new folders at once")


def test_a_kernel_of_a_folder_made_a_moment_ago_starts_in_it(swan):
    name = folder_the_mount_does_not_list_yet(swan, "bob")
    kernel = start_kernel(swan, "bob", f"{name}/analysis.ipynb")
    code = "import os\nprint(os.path.basename(os.getcwd()))\nprint(open('data.txt').read())"
    assert execute(swan, "bob", kernel, code) == (f"{name}\nbeside the notebook\n", "")


def test_a_view_only_share_refuses_writes_from_code_and_the_owner_keeps_the_file(swan, week1):
    point = os.path.join(mount_point(swan, "bob"), week1)
    wait_for("the view-only share in bob's mount", lambda: os.path.isdir(point))
    kernel = start_kernel(swan, "bob", f"{week1}/exercise.ipynb")
    out, error = execute(swan, "bob", kernel, "open('events.csv', 'w').write('student')")
    assert error.startswith("OSError") and "Read-only file system" in error
    out, error = execute(swan, "bob", kernel, "open('new.csv', 'w').write('student')")
    assert "Read-only file system" in error
    time.sleep(3)  # longer than the mount's write-back delay
    owners = swan.data / "users" / "alice" / "week1"
    assert (owners / "events.csv").read_text() == EVENTS
    assert not (owners / "new.csv").exists()


WRITE_UNTIL_REFUSED = """
import errno, json, time
paths, seen = {paths!r}, {{}}
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not all('EROFS' in seen.get(p, ()) for p in paths):
    for p in paths:
        try:
            with open(p, 'w') as f:
                f.write('student')
            outcome = 'written'
        except OSError as e:
            outcome = errno.errorcode.get(e.errno, str(e.errno))
        seen.setdefault(p, set()).add(outcome)
    time.sleep(0.1)
print(json.dumps({{p: sorted(s) for p, s in seen.items()}}))
"""


def test_a_view_only_share_accepted_while_the_server_runs_is_read_only_from_its_first_instant(
    swan,
):
    assert contents(swan, "alice", "PUT", "week3", json={"type": "directory"}).status_code == 201
    put_text(swan, "alice", "week3/data.csv", EVENTS)
    put_text(swan, "alice", "answers.csv", "1,2\n")
    kernel = start_kernel(swan, "bob", "scratch.ipynb")
    shares = []
    for path in ("week3", "answers.csv"):
        body = {"path": path, "kind": "user", "share_with": "bob", "permissions": 1}
        r = swan_api(swan, "alice", "POST", "shares", json=body)
        assert r.status_code == 201, r.text
        shares.append(r.json()["id"])
    folder = accept(swan, "bob", shares[0])["location"]
    single = accept(swan, "bob", shares[1])["location"]
    # at once: the kernel writes until every write was refused as read-only
    paths = [f"{folder}/data.csv", f"{folder}/new.csv", single]
    out, error = execute(swan, "bob", kernel, WRITE_UNTIL_REFUSED.format(paths=paths))
    assert not error
    seen = json.loads(out)
    for path in paths:
        # ENOENT until the mount lists the new share, then EROFS; never written
        assert "EROFS" in seen[path] and set(seen[path]) <= {"ENOENT", "EROFS"}, seen
    time.sleep(3)  # longer than the mount's write-back delay
    owners = swan.data / "users" / "alice"
    assert (owners / "week3" / "data.csv").read_text() == EVENTS
    assert not (owners / "week3" / "new.csv").exists()
    assert (owners / "answers.csv").read_text() == "1,2\n"
    # nothing waits in a cache for an upload the storage would refuse, so a stop does not wait
    runtime = swan.data / "runtime" / "bob" / "rclone"
    caches = [runtime / "cache", *(runtime / "share-cache").glob("*")]
    assert [p for cache in caches for p in pending_uploads(str(cache))] == []


def test_a_kernel_writes_results_into_the_own_space_and_the_drive_has_them_whole(swan):
    kernel = start_kernel(swan, "bob", "analysis.ipynb")
    rows = "".join(f"{i},{i * i}\n" for i in range(20000))
    code = f"rows = {rows!r}\nwith open('results.csv', 'w') as f:\n    f.write(rows)\nprint('ok')"
    out, error = execute(swan, "bob", kernel, code)
    assert (out, error) == ("ok\n", "")
    drive = Drive(swan)

    def uploaded() -> bool:
        listing = drive.propfind("bob", "", depth="1")
        sizes = [p.get("{DAV:}getcontentlength") for h, p in listing.items()]
        return str(len(rows)) in sizes and any(h.endswith("/results.csv") for h in listing)

    wait_for("results.csv on the drive", uploaded)
    r = drive.dav("bob", "GET", "results.csv")
    assert r.status_code == 200 and r.text == rows


#: Names code may write that the drive refuses (400, as ownCloud and Nextcloud do): a
#: backslash, a tab, a DEL, a Latin-1 byte that is no UTF-8. Given as bytes, hex-encoded, so
#: that the kernel's source holds no escape to get wrong.
REFUSED_NAMES = [b"run\\1.csv", b"tab\tx.csv", b"del\x7f.csv", b"caf\xe9.csv"]


def test_a_kernels_file_under_a_name_the_drive_refuses_arrives_under_a_look_alike_name(
    swan, tmp_path
):
    """Before the mounts encoded such names, rclone's upload of the file was refused and
    tried again and again: the file never reached the storage, and code got no error."""
    kernel = start_kernel(swan, "bob", "naming.ipynb")
    hexes = [n.hex() for n in REFUSED_NAMES]
    code = (
        f"import os\nos.mkdir('naming')\nfor h in {hexes!r}:\n"
        "    with open(os.path.join(b'naming', bytes.fromhex(h)), 'w') as f:\n"
        "        f.write(h)\nprint('ok')"
    )
    assert execute(swan, "bob", kernel, code) == ("ok\n", "")
    drive = Drive(swan)

    def arrived() -> list[str]:
        listing = drive.propfind("bob", "naming/", depth="1")
        files = [h for h, p in listing.items() if p.get("{DAV:}getcontentlength")]
        return files if len(files) == len(REFUSED_NAMES) else []

    stored = [unquote(h.rsplit("/", 1)[1]) for h in wait_for("the files on the drive", arrived)]
    # as look-alike characters (a backslash as a full-width one, a tab as the tab's symbol)
    assert "run\uff3c1.csv" in stored and "tab\u2409x.csv" in stored, stored
    for name in stored:
        assert drive.dav("bob", "GET", f"naming/{name}").text in hexes
    # and so they reach a laptop through a desktop sync client (Nextcloud's)
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    sync(drive, "nextcloudcmd", "bob", laptop)
    synced = {p.name: p.read_text() for p in (laptop / "naming").iterdir()}
    assert sorted(synced) == sorted(stored) and sorted(synced.values()) == sorted(hexes)
    runtime = swan.data / "runtime" / "bob" / "rclone"
    wait_for("no upload left", lambda: pending_uploads(str(runtime / "cache")) == [])
    # past the mount's listing time, code lists them from the storage: a backslash and a
    # byte that is no UTF-8 under the names it gave, a control character as its symbol
    # (as the file browser shows it)
    code = (
        "import os, time\ntime.sleep(6)\n"
        "print(sorted((n.hex(), open(os.path.join(b'naming', n)).read()) "
        "for n in os.listdir(b'naming')))"
    )
    listed = [(b"del\xe2\x90\xa1.csv", b"del\x7f.csv"), (b"tab\xe2\x90\x89x.csv", b"tab\tx.csv")]
    listed += [(n, n) for n in REFUSED_NAMES if b"\\" in n or b"\xe9" in n]
    expected = sorted((shown.hex(), written.hex()) for shown, written in listed)
    assert execute(swan, "bob", kernel, code) == (f"{expected}\n", "")


def refused_uploads(swan, user: str) -> dict[str, str]:
    """What the user's server lists of the files code wrote that the storage refuses."""
    r = swan_api(swan, user, "GET", "refused-uploads")
    assert r.status_code == 200, r.text
    return {item["path"]: item["why"] for item in r.json()["refused"]}


def test_a_file_from_code_the_drive_refuses_to_take_is_said_once_in_the_hubs_log(swan):
    """The drive keeps names starting with `.~swan-` for itself: code's file under such a name
    stays in the mount's cache, its upload refused again and again; the hub says so once, and
    the server lists it for JupyterLab's notice until code removes it."""
    info = swan_api(swan, "bob", "GET", "info").json()
    assert info["files_for_code"]["refused_uploads"] is True
    kernel = start_kernel(swan, "bob", "naming.ipynb")
    code = "with open('.~swan-notes.txt', 'w') as f:\n    f.write('x')\nprint('ok')"
    assert execute(swan, "bob", kernel, code) == ("ok\n", "")
    said = "The storage refuses .~swan-notes.txt, written by code through "
    wait_for("the hub's word", lambda: said in swan.output())
    line = next(line for line in swan.output().splitlines() if said in line)
    assert "Names starting with '.~swan-' are reserved" in line and "400" in line, line
    wait_for("the server's list", lambda: ".~swan-notes.txt" in refused_uploads(swan, "bob"))
    why = refused_uploads(swan, "bob")[".~swan-notes.txt"]
    assert why == "Names starting with '.~swan-' are reserved: '.~swan-notes.txt' (400)"
    rclone_log = swan.data / "runtime" / "bob" / "rclone" / "rclone.log"
    wait_for(
        "a third try",
        lambda: (
            "notes.txt: vfs cache: failed to upload try #3"
            in rclone_log.read_text(errors="replace")
        ),
    )
    time.sleep(4)  # a look of the hub's after it
    assert swan.output().count(said) == 1
    # removed by code, the file waits for no upload any more
    code = "import os\nos.remove('.~swan-notes.txt')\nprint('ok')"
    assert execute(swan, "bob", kernel, code) == ("ok\n", "")
    cache = swan.data / "runtime" / "bob" / "rclone" / "cache"
    wait_for("no upload left", lambda: pending_uploads(str(cache)) == [])
    wait_for("off the server's list", lambda: refused_uploads(swan, "bob") == {})


def test_a_kernel_write_in_an_edit_share_shows_up_at_the_owner_and_in_her_sync_client(
    swan, tmp_path
):
    assert contents(swan, "alice", "PUT", "lab", json={"type": "directory"}).status_code == 201
    put_text(swan, "alice", "lab/notes.txt", "teacher\n")
    body = {"path": "lab", "kind": "user", "share_with": "bob", "permissions": 15}
    r = swan_api(swan, "alice", "POST", "shares", json=body)
    assert r.status_code == 201, r.text
    location = accept(swan, "bob", r.json()["id"])["location"]
    folder = os.path.join(mount_point(swan, "bob"), location)
    # read-only for code until the hub has stacked a writable mount over it
    wait_for("the edit share mounted writable", lambda: folder in mounted_at_or_below(folder))
    kernel = start_kernel(swan, "bob", f"{location}/work.ipynb")
    code = (
        "open('notes.txt', 'a').write('student\\n')\n"
        "open('answer.csv', 'w').write('42\\n')\n"
        "open('.~swan-draft.txt', 'w').write('x')\nprint('ok')"
    )
    assert execute(swan, "bob", kernel, code) == ("ok\n", "")
    # a file the drive refuses there is listed under the share's folder, as the browser names it
    draft = f"{location}/.~swan-draft.txt"
    wait_for("the refused draft listed", lambda: draft in refused_uploads(swan, "bob"))
    owners = swan.data / "users" / "alice" / "lab"
    wait_for("answer.csv at alice", lambda: (owners / "answer.csv").is_file())
    assert (owners / "answer.csv").read_text() == "42\n"
    wait_for("notes.txt changed at alice", lambda: "student" in (owners / "notes.txt").read_text())
    assert (owners / "notes.txt").read_text() == "teacher\nstudent\n"
    # the teacher's desktop sync client (Nextcloud's) brings both to her laptop
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    Drive(swan).client("alice")  # her app password for the client
    sync(Drive(swan), "nextcloudcmd", "alice", laptop)
    assert (laptop / "lab" / "answer.csv").read_text() == "42\n"
    assert (laptop / "lab" / "notes.txt").read_text() == "teacher\nstudent\n"
    assert not (laptop / "lab" / ".~swan-draft.txt").exists()
    code = "import os\nos.remove('.~swan-draft.txt')\nprint('ok')"
    assert execute(swan, "bob", kernel, code) == ("ok\n", "")
    wait_for("the draft off the list", lambda: draft not in refused_uploads(swan, "bob"))


def test_a_revoked_share_is_gone_for_code_within_seconds(swan):
    assert contents(swan, "alice", "PUT", "week2", json={"type": "directory"}).status_code == 201
    put_text(swan, "alice", "week2/data.csv", EVENTS)
    body = {"path": "week2", "kind": "user", "share_with": "bob", "permissions": 1}
    share = swan_api(swan, "alice", "POST", "shares", json=body).json()
    accept(swan, "bob", share["id"])
    folder = os.path.join(mount_point(swan, "bob"), "Shared", "week2")
    wait_for("the share in bob's mount", lambda: os.path.isfile(os.path.join(folder, "data.csv")))
    assert Path(folder, "data.csv").read_text() == EVENTS

    assert swan_api(swan, "alice", "DELETE", f"shares/{share['id']}").status_code == 204
    wait_for("the share gone", lambda: not os.path.exists(folder), timeout=30)
    assert mounted_at_or_below(folder) == []


def test_a_file_another_device_replaces_while_a_kernel_reads_it_is_read_whole_then_new(swan):
    old, new = "old,1\n" * 5000, "new,22\n" * 6000
    put_text(swan, "bob", "readings.csv", old)
    path = os.path.join(mount_point(swan, "bob"), "readings.csv")
    wait_for("readings.csv in bob's mount", lambda: os.path.isfile(path))
    kernel = start_kernel(swan, "bob", "reader.ipynb")
    out, error = execute(swan, "bob", kernel, "f = open('readings.csv')\nhead = f.read(6)")
    assert not error
    assert Drive(swan).dav("bob", "PUT", "readings.csv", content=new.encode()).status_code == 204
    # the open file goes on being the version it was opened as, whole
    out, error = execute(swan, "bob", kernel, "print(len(head + f.read()))\nf.close()")
    assert (out, error) == (f"{len(old)}\n", "")
    # and a new open sees the other device's version within the listing cache time
    fresh = "import time\nfor _ in range(60):\n    if open('readings.csv').read() == {new!r}:\n"
    fresh += "        print('new')\n        break\n    time.sleep(0.5)\n"
    assert execute(swan, "bob", kernel, fresh.format(new=new)) == ("new\n", "")


def test_a_kernel_write_over_another_devices_change_keeps_that_change_as_a_conflict_copy(swan):
    put_text(swan, "bob", "notes.txt", "first\n")
    path = os.path.join(mount_point(swan, "bob"), "notes.txt")
    wait_for("notes.txt in bob's mount", lambda: os.path.isfile(path))
    kernel = start_kernel(swan, "bob", "writer.ipynb")
    out, error = execute(swan, "bob", kernel, "f = open('notes.txt', 'r+')\nprint(f.read())")
    assert (out, error) == ("first\n\n", "")
    drive = Drive(swan)
    laptop = b"from the laptop, longer\n"
    assert drive.dav("bob", "PUT", "notes.txt", content=laptop).status_code == 204
    code = "f.seek(0)\nf.write('from the kernel\\n')\nf.truncate()\nf.close()"
    assert execute(swan, "bob", kernel, code) == ("", "")
    # the kernel's file takes the name (code goes on reading what it wrote) ...
    wait_for(
        "the kernel's upload",
        lambda: drive.dav("bob", "GET", "notes.txt").text.startswith("from the kernel"),
    )
    # ... and the laptop's change, which the kernel never saw, is a conflict copy beside it
    kept = list(drive.space("bob").glob("notes (changed elsewhere, conflict *).txt"))
    assert [p.read_bytes() for p in kept] == [laptop]
    # a kernel writing the same file again and again makes no more copies
    again = "for i in range(3):\n    open('notes.txt', 'w').write(f'run {i}\\n')\n"
    again += "    import time; time.sleep(1.5)\n"
    assert execute(swan, "bob", kernel, again) == ("", "")
    wait_for("the last run", lambda: drive.dav("bob", "GET", "notes.txt").text == "run 2\n")
    assert len(list(drive.space("bob").glob("notes (*conflict*"))) == 1


def stop_server(swan, user: str) -> None:
    headers = {"Authorization": f"token {swan.tokens[user]}"}
    r = httpx.delete(f"{swan.url}/hub/api/users/{user}/server", headers=headers, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_until_stopped(swan, user)


def test_a_stopped_server_leaves_no_mount_and_a_new_one_reports_its_mount_in_the_progress(swan):
    stop_server(swan, "alice")
    point = mount_point(swan, "alice")
    assert mounted_at_or_below(point) == []
    assert rclone_processes(swan, "alice") == {}

    events = spawn_through_api(swan, "alice")
    assert events[-1].get("ready"), events
    messages = [e.get("message", "") for e in events]
    assert "Mounting your files for kernels and terminals" in messages
    assert "Your files are mounted for kernels and terminals" in messages
    assert point in mounted_at_or_below(point)


def server_pid(swan, user: str) -> int:
    for pid, (_, _, cmd) in _processes().items():
        if "swan-singleuser" not in cmd:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        # this run's server of the user, not another swan up's on the same machine
        mine = any(v.startswith(b"SWAN_SPACE=" + bytes(swan.data)) for v in environ)
        if f"JUPYTERHUB_USER={user}".encode() in environ and mine:
            return pid
    pytest.fail(f"no server process of {user}")


def test_a_killed_server_has_its_mount_and_rclone_cleaned_by_the_hubs_poll(swan, week1):
    point = mount_point(swan, "bob")
    shares = os.path.join(point, "Shared")
    wait_for("bob's shares mounted", lambda: shares in mounted_at_or_below(point))
    os.kill(server_pid(swan, "bob"), signal.SIGKILL)
    wait_for("no mount left", lambda: mounted_at_or_below(point) == [])
    wait_for("no rclone left", lambda: rclone_processes(swan, "bob") == {})
