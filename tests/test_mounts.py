"""The mounts of swan_hub.mounts on their own, with the real rclone and FUSE against a plain WebDAV
server (WsgiDAV behind a bearer-token gate, no drive): a token the hub renews is followed without a
new mount, no secret leaks into the process table, and nothing is left after a stop or a crash."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import test_credentials_hub
import test_spawner
from harness.dav_servers import DriveDavServer, WsgiDavServer
from test_federated_copies import Log
from traitlets.config import Config

import swan_hub.mounts
from swan_hub.mounts import (
    DIR_CACHE_TIME,
    REMOTE,
    STATUS_FILE,
    MountError,
    MountPlace,
    RefusedUploads,
    StorageMounts,
    missing_parts,
    mounted_at_or_below,
)

pytestmark = pytest.mark.skipif(bool(missing_parts()), reason=f"cannot mount: {missing_parts()}")

BOUND = 30.0
#: a container's user, not the hub's
CONTAINER_UID = 1000
#: the WebDAV server that lets through only `Authorization: Bearer <gate.token>`
gate = test_credentials_hub.gate
#: SwanLocalSpawners of a real JupyterHub user (in-memory database)
db, data, make_spawner = test_spawner.db, test_spawner.data, test_spawner.make_spawner


def write_credentials(path: Path, token: str) -> dict:
    credentials = {"kind": "bearer", "token": token}
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps(credentials))
    path.chmod(0o600)
    return credentials


def eventually(what: str, check):
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"not within {BOUND:g}s: {what}")


def mount_folder_of(
    gate, tmp_path: Path, name: str, files: dict[str, str], runtime: str = "runtime", **options
) -> tuple[StorageMounts, Path, Path]:
    """A new folder ``name`` of the gate holding ``files``, mounted (StorageMounts with
    ``options``) with a bearer token from a credentials file: (mounts, the folder on the
    server's disk, the credentials file)."""
    gate.token = "token-1"
    local, url = gate.folder(f"{name}-{uuid.uuid4().hex[:8]}")
    for path, text in files.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_text(text)
    credentials_file = tmp_path / "credentials" / "storage.json"
    credentials = write_credentials(credentials_file, "token-1")
    mounts = StorageMounts(
        url=url,
        point=str(tmp_path / runtime / "files"),
        work_dir=str(tmp_path / runtime / "rclone"),
        **options,
    )
    mounts.start(credentials, str(credentials_file), timeout=BOUND)
    return mounts, local, credentials_file


@pytest.fixture(params=[False, True], ids=["direct", "through-the-guard"])
def mounted(request, gate, tmp_path) -> Iterator[tuple[StorageMounts, Path, Path]]:
    """The gate's folder ``alice`` mounted with a bearer token from a credentials file, directly
    and through a mount guard: (mounts, the folder on the server's disk, the credentials
    file)."""
    mounts, local, credentials_file = mount_folder_of(
        gate, tmp_path, "alice", {"data.csv": "a,b\n1,2\n"}, guard=request.param
    )
    try:
        yield mounts, local, credentials_file
    finally:
        mounts.stop(upload_wait=0)


def test_a_plain_webdav_storage_is_mounted_with_the_token_of_the_credentials_file(mounted):
    mounts, local, _ = mounted
    assert Path(mounts.point, "data.csv").read_text() == "a,b\n1,2\n"
    config = Path(mounts.work_dir, "rclone.conf")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "token-1" not in config.read_text()
    for pid in [mounts.root.pid, *([mounts.guard.pid] if mounts.guard else [])]:
        assert b"token-1" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"token-1" not in Path(f"/proc/{pid}/environ").read_bytes()


def test_a_token_renewed_in_the_credentials_file_is_followed_without_a_new_mount(mounted, gate):
    mounts, local, credentials_file = mounted
    pid = mounts.root.pid
    gate.token = "token-2"
    write_credentials(credentials_file, "token-2")
    (local / "later.csv").write_text("written after the renewal\n")
    later = Path(mounts.point, "later.csv")
    eventually("later.csv listed by the mount", later.is_file)  # within its listing cache time
    assert later.read_text() == "written after the renewal\n"
    Path(mounts.point, "out.csv").write_text("from code\n")
    eventually("out.csv on the server", lambda: (local / "out.csv").read_text() == "from code\n")
    assert mounts.root.pid == pid


def test_a_stop_uploads_what_code_closed_then_leaves_no_mount_and_no_process(gate, tmp_path):
    gate.token = "token-1"
    local, url = gate.folder(f"bob-{uuid.uuid4().hex[:8]}")
    credentials_file = tmp_path / "credentials" / "storage.json"
    credentials = write_credentials(credentials_file, "token-1")
    point = str(tmp_path / "runtime" / "files")
    mounts = StorageMounts(url=url, point=point, work_dir=str(tmp_path / "runtime" / "rclone"))
    mounts.start(credentials, str(credentials_file), timeout=BOUND)
    pid = mounts.root.pid
    Path(point, "results.csv").write_text("x\n" * 100_000)
    assert mounts.stop(upload_wait=BOUND) == []
    assert (local / "results.csv").read_text() == "x\n" * 100_000
    assert mounted_at_or_below(point) == []
    assert not Path(f"/proc/{pid}").exists()


def test_a_mount_left_by_a_crash_is_cleaned_before_the_next_one(mounted):
    mounts, _, credentials_file = mounted
    for mount in (mounts.shared, mounts.root):
        os.killpg(mount.pid, signal.SIGKILL)
        mount.proc.wait(timeout=BOUND)
    left = [mounts.shared_point, mounts.point]
    assert mounted_at_or_below(mounts.point) == left  # dead, still there
    with pytest.raises(OSError):
        os.listdir(mounts.point)
    again = StorageMounts(url=mounts.url, point=mounts.point, work_dir=mounts.work_dir)
    assert again.clean_stale() == left
    assert mounted_at_or_below(mounts.point) == []
    again.start(json.loads(credentials_file.read_text()), str(credentials_file), timeout=BOUND)
    try:
        assert Path(mounts.point, "data.csv").read_text() == "a,b\n1,2\n"
    finally:
        again.stop(upload_wait=0)


def test_a_restarted_hub_takes_down_the_mounts_of_a_server_that_died_meanwhile(gate, make_spawner):
    gate.token = "token-1"
    gate.folder("carol")
    config = Config()
    config.SwanSpawnerMixin.webdav_url_template = f"{gate.url}{{username}}/"
    config.SwanLocalSpawner.mount_read_cache = True
    before = make_spawner("carol", config=config)
    before._credentials = write_credentials(Path(before.credentials_path), "token-1")
    asyncio.run(before.mount_storage_for_code())
    point = before.mounted_root()
    assert point and mounted_at_or_below(point) == [os.path.join(point, "Shared"), point]
    assert before.get_env()["SWAN_FILES_MOUNTED"] == "1"  # the server tells no notice
    # where the server reads the uploads the storage refuses: none yet
    status = before.get_env()["SWAN_MOUNT_STATUS"]
    assert status == os.path.join(before.mount_area(), "mount-status", STATUS_FILE)
    assert json.loads(Path(status).read_text()) == {"refused": [], "cut": []}
    rclone = before._mounts.root.pid
    guard = before._mounts.guard.pid  # the mount guard (on by default) goes with the mounts
    gone = subprocess.Popen(["true"])
    gone.wait()
    state = {**before.get_state(), "pid": gone.pid}  # the server died while the hub was down

    after = make_spawner("carol", config=config)
    after.load_state(state)
    # the restored mounts have the spawner's options, for the edit shares stacked from now on
    assert after._mounts.read_cache is True and after._mounts.owner is None
    assert asyncio.run(after.poll()) is not None
    assert mounted_at_or_below(point) == []
    assert after.get_env()["SWAN_FILES_MOUNTED"] == "0"  # nothing mounted any more
    assert "SWAN_MOUNT_STATUS" not in after.get_env()
    eventually("rclone gone", lambda: not Path(f"/proc/{rclone}").exists() or _zombie(rclone))
    eventually("the guard gone", lambda: not Path(f"/proc/{guard}").exists() or _zombie(guard))
    before._mounts.root.proc.wait(timeout=BOUND)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("guard", [False, True], ids=["direct", "through-the-guard"])
def test_a_storage_outage_is_an_error_for_code_not_a_hang_and_the_mount_recovers(tmp_path, guard):
    server = WsgiDavServer(tmp_path / "dav")
    (tmp_path / "dav").mkdir()
    server.start()
    local, url = server.folder("dave")
    for name in ("data.csv", "refused.csv", "hung.csv"):
        (local / name).write_text(f"{name}\n")
    mounts = StorageMounts(
        url=url, point=str(tmp_path / "files"), work_dir=str(tmp_path / "rclone"), guard=guard
    )
    credentials = {"kind": "basic", "username": server.username, "password": server.password}
    mounts.start(credentials, "", timeout=BOUND)
    try:
        assert Path(mounts.point, "data.csv").read_text() == "data.csv\n"
        server.stop()
        # Readers of their own, as kernels are: each must get an error, not wait for ever (the
        # bound of read_in_a_process kills it and fails the test if it hangs).
        refused = read_in_a_process(Path(mounts.point, "refused.csv"))
        assert "Input/output error" in refused.stderr, refused.stderr
        with a_server_that_never_answers(server.port):
            hung = read_in_a_process(Path(mounts.point, "hung.csv"))
        assert "Input/output error" in hung.stderr, hung.stderr

        server.start()  # the same port, as a restarted storage
        eventually(
            "hung.csv readable again",
            lambda: read_in_a_process(Path(mounts.point, "hung.csv")).stdout == "hung.csv\n",
        )
        Path(mounts.point, "after.csv").write_text("written after the outage\n")
        eventually("after.csv on the server", lambda: (local / "after.csv").is_file())
        assert mounts.root.proc.poll() is None  # the same mount, never restarted
        assert guard is (mounts.guard is not None and mounts.guard.running())
    finally:
        mounts.stop(upload_wait=BOUND)
        server.stop()
    assert (local / "after.csv").read_text() == "written after the outage\n"


@dataclass
class Outage:
    """What `storage_down` made: the mounts, the folder code uses (the mount point, or a
    bind of it as Docker makes a container's), a process working in a folder there, the
    stopped WsgiDAV server and the folder on its disk."""

    mounts: StorageMounts
    root: Path
    kernel: subprocess.Popen
    server: WsgiDavServer
    local: Path


@contextlib.contextmanager
def storage_down(
    tmp_path: Path,
    cwd: str = "run",
    writable: frozenset[str] = frozenset(),
    docker_bind: bool = False,
) -> Iterator[Outage]:
    """A mount of a WsgiDAV folder holding ``top.csv``, ``run/data.csv`` and the shares
    ``Shared/view/v.csv`` and ``Shared/edit/`` (those named in ``writable`` mounted
    read-write), all listed, and a process working in ``cwd`` (as a kernel beside its
    notebook) that reads the path named in its first line of input; then the storage stops
    and the mount's listing time passes. ``docker_bind``: code reaches the mount through a
    bind of it as Docker makes one (`bound_as_docker_binds`). Everything ends with the
    block."""
    server = WsgiDavServer(tmp_path / "dav")
    (tmp_path / "dav").mkdir()
    server.start()
    local, url = server.folder("erin")
    for path, text in {
        "top.csv": "top\n",
        "run/data.csv": "data\n",
        "Shared/view/v.csv": "view\n",
        "Shared/edit/e.csv": "edit\n",
    }.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_text(text)
    mounts = StorageMounts(
        url=url, point=str(tmp_path / "files"), work_dir=str(tmp_path / "rc"), shared=docker_bind
    )
    credentials = {"kind": "basic", "username": server.username, "password": server.password}
    mounts.start(credentials, "", timeout=BOUND)
    try:
        mounts.match_writable(set(writable), timeout=BOUND)
        with contextlib.ExitStack() as binds:
            root = mounts.point
            if docker_bind:
                root = binds.enter_context(bound_as_docker_binds(mounts.point))
            assert sorted(os.listdir(root)) == ["Shared", "run", "top.csv"]
            code = "import sys; print(open(sys.stdin.readline().strip()).read(), end='')"
            kernel = subprocess.Popen(
                [sys.executable, "-c", code],
                cwd=Path(root, cwd),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            server.stop()
            time.sleep(float(DIR_CACHE_TIME.rstrip("s")) + 1)
            try:
                yield Outage(mounts, Path(root), kernel, server, local)
            finally:
                kernel.kill()
    finally:
        mounts.stop(upload_wait=BOUND)
        server.stop()


def read_by(kernel: subprocess.Popen, path: str) -> str:
    """What ``kernel`` of storage_down says reading ``path``: its error's last line."""
    try:
        out, err = kernel.communicate(path + "\n", timeout=90)
    except subprocess.TimeoutExpired:
        kernel.kill()
        pytest.fail(f"reading {path} through the mount still waits after 90 s")
    return (err.strip().splitlines() or [out])[-1]


def test_an_outage_is_an_error_for_code_working_in_a_folder_after_the_listing_time(tmp_path):
    with storage_down(tmp_path) as down:
        assert "Input/output error" in read_by(down.kernel, "data.csv")


@pytest.mark.parametrize("path", ["top.csv", "run/data.csv"])
def test_an_outage_is_an_error_for_a_path_through_the_top_folder_too(tmp_path, path):
    with storage_down(tmp_path) as down:
        assert "Input/output error" in read_by(down.kernel, str(down.root / path))


@contextlib.contextmanager
def following(mounts: StorageMounts, log: Log, interval: float = 3.0) -> Iterator[None]:
    """The hub's look at the shares (keep_following_shares, every ``interval`` seconds)
    running for ``mounts`` in a thread of its own, as in the hub's event loop."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(
        swan_hub.mounts.keep_following_shares(mounts, lambda: None, interval, BOUND, log)
    )

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(BOUND)


@pytest.mark.parametrize("docker_bind", [False, True], ids=["on-the-host", "in-a-docker-bind"])
def test_shares_an_outage_took_off_are_mounted_again_as_they_were_once_the_storage_answers(
    tmp_path, docker_bind
):
    """The kernel takes the mounts stacked on ``Shared/`` off once a path through it is used
    while the storage is down (it cannot look the folder up), also when the path goes through
    a container's bind of the mount; the hub's look finds them off and mounts them again
    once the storage answers, the view-only shares read-only, in the bind too, and a process
    that worked inside the old mount goes on."""
    said = Log()
    with storage_down(
        tmp_path, cwd="Shared/view", writable=frozenset({"edit"}), docker_bind=docker_bind
    ) as down:
        mounts, root = down.mounts, down.root

        async def edit_share(credentials: object) -> set[str]:
            return {"edit"}  # WsgiDAV has no oc:permissions: what the drive would answer

        mounts.writable_shares = edit_share  # type: ignore[method-assign]
        stacked = [str(root / "Shared" / "edit"), str(root / "Shared"), str(root)]
        inside = mounts.shared.pid  # the mount the process works in
        with following(mounts, said):
            for path in ("top.csv", "Shared/view/v.csv"):
                assert "Input/output error" in read_in_a_process(root / path).stderr
            eventually("the mounts found off", lambda: mounts.restacking)
            assert mounts.writable == {}
            assert mounted_at_or_below(str(root)) == [str(root)]
            # its rclone goes on for the process inside, and is in the state a restarted hub uses
            assert inside in [pid for _, pid in mounts.state()["detached"]]

            down.server.start()
            eventually(
                "the shares mounted again", lambda: mounted_at_or_below(str(root)) == stacked
            )
        assert any("took the mounts of shares off" in line for line in said.lines), said.lines
        assert f"Mounted {mounts.shared_point} again" in said.lines
        with pytest.raises(OSError) as refused:
            (root / "Shared" / "view" / "new.csv").write_text("from code\n")
        assert refused.value.errno == errno.EROFS
        (root / "Shared" / "edit" / "out.csv").write_text("from code\n")
        eventually("out.csv at the storage", (down.local / "Shared" / "edit" / "out.csv").is_file)
        assert read_by(down.kernel, "v.csv") == "view\n"
        assert not (down.local / "Shared" / "view" / "new.csv").exists()
        detached = list(mounts.detached)
    assert mounted_at_or_below(mounts.point) == []
    for mount in detached:
        eventually("the detached mount's rclone ended", lambda m=mount: _gone(m.pid))


def test_in_the_moment_before_the_shares_are_mounted_again_a_path_into_one_finds_nothing(
    tmp_path,
):
    """Once the kernel took the mount of ``Shared/`` off (an outage), the space's read-write
    mount answers for ``Shared/`` until the hub mounts it again. It shows that folder empty,
    so code writing into a view-only share right then gets "No such file or directory"
    instead of its file waiting in the cache for an upload the storage refuses."""
    server = WsgiDavServer(tmp_path / "dav")
    (tmp_path / "dav").mkdir()
    server.start()
    try:
        local, url = server.folder("erin")
        (local / "Shared" / "view").mkdir(parents=True)
        (local / "Shared" / "view" / "v.csv").write_text("view\n")
        mounts = StorageMounts(
            url=url, point=str(tmp_path / "files"), work_dir=str(tmp_path / "rc")
        )
        credentials = {"kind": "basic", "username": server.username, "password": server.password}
        mounts.start(credentials, "", timeout=BOUND)
        root = Path(mounts.point)
        try:
            assert (root / "Shared" / "view" / "v.csv").read_text() == "view\n"
            # as the kernel takes it off when it cannot look the folder up
            subprocess.run(["fusermount3", "-uz", str(root / "Shared")], check=True)
            assert mounted_at_or_below(str(root)) == [str(root)]
            assert os.listdir(root / "Shared") == []
            with pytest.raises(FileNotFoundError):
                (root / "Shared" / "view" / "new.csv").write_text("from code\n")
            with pytest.raises(FileNotFoundError):
                (root / "Shared" / "view" / "v.csv").read_text()
            assert mounts.pending() == []

            log = Log()
            asyncio.run(mounts.mend(BOUND, log))
            assert f"Mounted {mounts.shared_point} again" in log.lines
            assert (root / "Shared" / "view" / "v.csv").read_text() == "view\n"
            with pytest.raises(OSError) as refused:
                (root / "Shared" / "view" / "new.csv").write_text("from code\n")
            assert refused.value.errno == errno.EROFS
            assert not (local / "Shared" / "view" / "new.csv").exists()
        finally:
            mounts.stop(upload_wait=0)
    finally:
        server.stop()


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or _zombie(pid)


def test_a_storage_gets_its_shared_folder_before_the_mount_and_one_with_a_file_there_mounts_nothing(
    gate, tmp_path
):
    mounts, local, _ = mount_folder_of(gate, tmp_path, "gil", {"a.txt": "a\n"})
    try:
        assert (local / "Shared").is_dir() and os.listdir(Path(mounts.point, "Shared")) == []
    finally:
        mounts.stop(upload_wait=0)
    with pytest.raises(MountError, match="Shared is not a folder"):
        mount_folder_of(gate, tmp_path, "hal", {"Shared": "a file\n"}, runtime="other", guard=True)
    assert mounted_at_or_below(str(tmp_path / "other" / "files")) == []
    assert not Path(tmp_path, "other", "rclone", "guard.pid").exists()


class FaultyLink:
    """A TCP relay on 127.0.0.1 in front of a server, to break a storage in the middle of an
    answer: ``cut()`` closes every connection and refuses new ones (a storage gone),
    ``freeze()`` keeps every connection, new ones too, open and silent (a hung storage);
    ``heal()`` undoes either."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.refusing = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                block = source.recv(65536)
                if not block:
                    break
                while self.frozen.is_set():
                    time.sleep(0.05)
                sink.sendall(block)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.refusing.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                    sock.close()
            self._sockets.clear()

    def freeze(self) -> None:
        self.frozen.set()

    def heal(self) -> None:
        self.refusing.clear()
        self.frozen.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


#: Reads 4 MiB of a file, says how far it got, waits for a line on stdin, reads the rest; prints
#: how many bytes it read in all and their SHA-256, then the error that ended the read, if any.
READ_ON_CUE = """
import hashlib, sys
digest, count = hashlib.sha256(), 0
with open(sys.argv[1], 'rb', buffering=0) as f:
    first = f.read(4 << 20)
    digest.update(first); count += len(first)
    print('started', flush=True)
    sys.stdin.readline()
    error = ''
    try:
        while block := f.read(1 << 20):
            digest.update(block); count += len(block)
    except OSError as e:
        error = e.strerror
print(count, digest.hexdigest(), error, flush=True)
"""


#: A read under way when the storage hangs gets EIO after each of the kernel's requests for its
#: pages tried three times (rclone: 10 s without a byte, then twice 20 s without an answer):
#: 170 s measured on a quiet machine; the bound leaves room for a busy one.
HUNG_READ_BOUND = 300


@pytest.mark.parametrize("fault", ["cut", "freeze"])
def test_a_read_under_way_when_the_storage_goes_or_hangs_ends_with_an_error_never_wrong_bytes(
    tmp_path, fault
):
    server = WsgiDavServer(tmp_path / "dav")
    (tmp_path / "dav").mkdir()
    server.start()
    link = FaultyLink(server.port)
    local, _ = server.folder("erin")
    content = os.urandom(96 << 20)  # beyond what rclone reads ahead (16 MiB)
    (local / "big.bin").write_bytes(content)
    mounts = StorageMounts(
        url=f"http://127.0.0.1:{link.port}/erin/",
        point=str(tmp_path / "files"),
        work_dir=str(tmp_path / "rclone"),
    )
    credentials = {"kind": "basic", "username": server.username, "password": server.password}
    mounts.start(credentials, "", timeout=BOUND)
    path = Path(mounts.point, "big.bin")
    reader = subprocess.Popen(
        [sys.executable, "-c", READ_ON_CUE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline() == "started\n"
        getattr(link, fault)()
        try:
            out, err = reader.communicate("go\n", timeout=HUNG_READ_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a read through the mount still waits after the storage's {fault}")
        count, digest, error = (out.split(" ", 2) + [""])[:3]
        assert error.strip() == "Input/output error", (out, err)
        # what was read before the error is the file's own beginning
        assert 4 << 20 <= int(count) < len(content)
        assert digest == hashlib.sha256(content[: int(count)]).hexdigest()

        link.heal()
        eventually(
            "the whole file readable again",
            lambda: hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(content).digest(),
        )
        assert mounts.root.proc.poll() is None  # the same mount, never restarted
    finally:
        reader.kill()
        link.heal()
        mounts.stop(upload_wait=0)
        link.close()
        server.stop()


@contextlib.contextmanager
def a_small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path``, as a hub's runtime disk with little room left."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def cached_files(work_dir: Path) -> list[str]:
    return [p.name for p in (work_dir / "cache" / "vfs").rglob("*") if p.is_file()]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small disk (tmpfs) needs root")
def test_what_code_wrote_leaves_the_mounts_cache_once_uploaded(tmp_path):
    """rclone keeps written files in its cache for an hour unless told otherwise: results
    written one after another would fill the hub's disk (here 48 MiB: the second file of 32 MiB
    would not fit, and rclone would publish the part of it that did)."""
    server = WsgiDavServer(tmp_path / "dav")
    (tmp_path / "dav").mkdir()
    server.start()
    local, url = server.folder("gil")
    with a_small_disk(tmp_path / "runtime", "48m") as runtime:
        work_dir = runtime / "rclone"
        mounts = StorageMounts(url=url, point=str(tmp_path / "files"), work_dir=str(work_dir))
        credentials = {"kind": "basic", "username": server.username, "password": server.password}
        mounts.start(credentials, "", timeout=BOUND)
        try:
            for name in ("first.bin", "second.bin"):
                content = os.urandom(32 << 20)
                Path(mounts.point, name).write_bytes(content)
                eventually(
                    f"{name} on the server", lambda n=name, c=content: (local / n).read_bytes() == c
                )
                eventually(
                    f"{name} out of the cache", lambda n=name: n not in cached_files(work_dir)
                )
        finally:
            mounts.stop(upload_wait=BOUND)
            server.stop()


def git(folder: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Gil", "GIT_AUTHOR_EMAIL": "gil@example.org"}
    env.update(GIT_COMMITTER_NAME="Gil", GIT_COMMITTER_EMAIL="gil@example.org")
    done = subprocess.run(
        ["git", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=BOUND
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_git_sqlite_and_tar_work_in_the_mount_and_links_are_refused(tmp_path):
    """What code runs in a folder (git with its lock files renamed into place, SQLite writing
    in the middle of its file, tar) through the drive's mount: the drive gets every file
    whole and keeps no conflict copy of the tools' own renames. What WebDAV cannot keep is
    refused: a symbolic or hard link is an error and leaves nothing; a mode is not kept."""
    (tmp_path / "drive").mkdir()
    server = DriveDavServer(tmp_path / "drive")
    server.start()
    try:
        local, url = server.folder("space")
        mounts = StorageMounts(url=url, point=str(tmp_path / "files"), work_dir=str(tmp_path / "w"))
        credentials = {"kind": "basic", "username": server.username, "password": server.password}
        mounts.start(credentials, "", timeout=BOUND)
        point = Path(mounts.point)
        try:
            repo = point / "analysis"
            repo.mkdir()
            git(repo, "init", "-q")
            for step in ("first", "second"):
                (repo / "fit.py").write_text(f"# {step} fit\n")
                git(repo, "add", "fit.py")
                git(repo, "commit", "-q", "-m", step)
            db = sqlite3.connect(point / "runs.db")
            db.execute("CREATE TABLE runs (id INTEGER, energy REAL)")
            db.executemany("INSERT INTO runs VALUES (?, ?)", [(i, i * 0.5) for i in range(5000)])
            db.commit()
            db.execute("UPDATE runs SET energy = -1 WHERE id = 2500")  # a page in the middle
            db.commit()
            db.close()
            source = tmp_path / "source"
            (source / "inputs").mkdir(parents=True)
            (source / "inputs" / "events.csv").write_text("1,2\n")
            archive = tmp_path / "inputs.tar"
            subprocess.run(["tar", "-cf", str(archive), "-C", str(source), "inputs"], check=True)
            subprocess.run(["tar", "-xf", str(archive), "-C", str(point)], check=True)
            eventually("every upload done", lambda: mounts.pending() == [])

            assert git(local / "analysis", "log", "--format=%s").split() == ["second", "first"]
            git(local / "analysis", "fsck", "--strict")
            stored = sqlite3.connect(local / "runs.db")
            assert stored.execute("SELECT count(*), min(energy) FROM runs").fetchone() == (5000, -1)
            stored.close()
            assert (local / "inputs" / "events.csv").read_text() == "1,2\n"
            assert not [p for p in local.rglob("*") if "conflict" in p.name]

            with pytest.raises(OSError):
                os.symlink("/etc/passwd", point / "passwords")
            with pytest.raises(PermissionError):
                os.link(point / "runs.db", point / "runs-again.db")
            os.chmod(point / "analysis" / "fit.py", 0o755)  # noqa: S103 - accepted, not kept
            assert stat.S_IMODE(os.stat(point / "analysis" / "fit.py").st_mode) == 0o644
            eventually("every upload done", lambda: mounts.pending() == [])
            assert not (local / "passwords").exists() and not (local / "runs-again.db").exists()
        finally:
            mounts.stop(upload_wait=BOUND)
    finally:
        server.stop()


def test_an_upload_the_storage_refuses_is_said_once_and_forgotten_when_it_went_up(tmp_path):
    """Over the drive's quota, rclone keeps code's file in its cache and tries its upload
    again and again, ever less often, and code never hears of it: the hub says it once, with
    the storage's reason, and lists it for the server (STATUS_FILE) in the storage's own
    words. A file code removes, or one that went up once written again smaller, is forgotten."""
    (tmp_path / "drive").mkdir()
    server = DriveDavServer(tmp_path / "drive", "c.DriveService.quota_bytes = 1 << 20\n")
    server.start()
    try:
        local, url = server.folder("space")
        work_dir = tmp_path / "rclone"
        status = tmp_path / "status"
        mounts = StorageMounts(
            url=url, point=str(tmp_path / "files"), work_dir=str(work_dir), status_dir=str(status)
        )
        credentials = {"kind": "basic", "username": server.username, "password": server.password}
        mounts.start(credentials, "", timeout=BOUND)

        def listed() -> dict[str, str]:
            found = json.loads((status / STATUS_FILE).read_text())["refused"]
            return {item["path"]: item["why"] for item in found}

        assert listed() == {}  # written at the start: nothing an earlier start listed

        def log_text() -> str:
            return (work_dir / "rclone.log").read_text()

        try:
            log = Log()
            Path(mounts.point, "results.bin").write_bytes(os.urandom(2 << 20))
            Path(mounts.point, ".~swan-draft.txt").write_text("x")
            eventually(
                "both uploads tried twice",
                lambda: (work_dir / "rclone.log").read_text().count("failed to upload try #2") == 2,
            )
            mounts.check_uploads(log)
            mounts.check_uploads(log)
            assert len(log.lines) == 2
            [line] = [line for line in log.lines if "results.bin" in line]
            assert line.startswith("The storage refuses results.bin, written by code through ")
            assert ": Not enough space for this upload; nothing was changed: " in line, line
            assert "507" in line
            assert not (local / "results.bin").exists()
            assert listed() == {
                "results.bin": "Not enough space for this upload; nothing was changed (507)",
                ".~swan-draft.txt": (
                    "Names starting with '.~swan-' are reserved: '.~swan-draft.txt' (400)"
                ),
            }
            assert stat.S_IMODE((status / STATUS_FILE).stat().st_mode) == 0o644

            # renamed by code, it is still refused, and listed, under its new name
            os.rename(Path(mounts.point, "results.bin"), Path(mounts.point, "run 1.bin"))
            eventually("the rename in rclone's log", lambda: "renamed in cache" in log_text())
            mounts.check_uploads(log)
            assert list(listed()) == [".~swan-draft.txt", "run 1.bin"]
            assert listed()["run 1.bin"] == (
                "Not enough space for this upload; nothing was changed (507)"
            )

            os.remove(Path(mounts.point, ".~swan-draft.txt"))
            Path(mounts.point, "run 1.bin").write_text("a summary\n")
            eventually(
                "the smaller file on the drive",
                lambda: (
                    (local / "run 1.bin").is_file()
                    and (local / "run 1.bin").read_bytes() == b"a summary\n"
                ),
            )

            def forgotten() -> bool:
                mounts.check_uploads(log)
                return not mounts.refused_uploads.refused

            eventually("the refusals forgotten", forgotten)
            assert len(log.lines) == 2
            assert listed() == {}
        finally:
            mounts.stop(upload_wait=BOUND)
    finally:
        server.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small disk (tmpfs) needs root")
def test_a_file_cut_short_by_a_full_disk_is_said_once_and_forgotten_when_written_whole(tmp_path):
    """A hub's runtime disk (here 32 MiB) fills while code writes a larger file: code's write
    fails (EIO), and rclone uploads the part written before, replacing the stored file. The
    hub says so once and lists the file as cut for the server; a later write that goes up
    whole takes it off the list."""
    (tmp_path / "drive").mkdir()
    server = DriveDavServer(tmp_path / "drive")
    server.start()
    try:
        local, url = server.folder("space")
        (local / "results.bin").write_bytes(b"before" * 500)
        with a_small_disk(tmp_path / "runtime", "32m") as runtime:
            work_dir = runtime / "rclone"
            status = tmp_path / "status"
            mounts = StorageMounts(
                url=url,
                point=str(tmp_path / "files"),
                work_dir=str(work_dir),
                status_dir=str(status),
            )
            credentials = {
                "kind": "basic",
                "username": server.username,
                "password": server.password,
            }
            mounts.start(credentials, "", timeout=BOUND)
            log = Log()

            def cut() -> list[dict]:
                mounts.check_uploads(log)
                return json.loads((status / STATUS_FILE).read_text())["cut"]

            try:
                with pytest.raises(OSError), open(Path(mounts.point, "results.bin"), "wb") as f:
                    for _ in range(48):
                        f.write(os.urandom(1 << 20))
                eventually(
                    "the part written on the drive",
                    lambda: (local / "results.bin").stat().st_size > 3000,
                )
                assert (local / "results.bin").stat().st_size < 32 << 20
                eventually("the cut file listed", lambda: cut() == [{"path": "results.bin"}])
                eventually(
                    "its upload said",
                    lambda: "upload succeeded" in (work_dir / "rclone.log").read_text(),
                )
                assert cut() == [{"path": "results.bin"}]  # that upload was the cut part's
                [line] = log.lines
                assert line.startswith("Only part of results.bin, written by code through ")
                assert "the disk of " in line and "was full" in line

                eventually("room again", lambda: "results.bin" not in cached_files(work_dir))
                Path(mounts.point, "results.bin").write_text("a summary\n")
                eventually(
                    "the whole file on the drive",
                    lambda: (local / "results.bin").read_bytes() == b"a summary\n",
                )
                eventually("the cut file forgotten", lambda: cut() == [])
                assert len(log.lines) == 1
            finally:
                mounts.stop(upload_wait=BOUND)
    finally:
        server.stop()


def test_which_file_a_full_disk_cut_short_is_named_from_the_servers_root():
    """rclone names a file cut short by where its cache stages it (lines as rclone 1.75 wrote
    them on a full tmpfs, for the server's own mount and for a share's); its bookkeeping
    failing to be written cuts nothing."""
    uploads = RefusedUploads("/nonexistent/rclone.log")
    places = {
        7: MountPlace("", "/w/cache"),
        8: MountPlace("Shared/lab", "/w/share-cache/lab", "Shared/lab"),
    }
    cut = "ERROR : IO error: write {}: no space left on device"
    lines = [
        "[7] " + cut.format("/w/cache/vfs/swan{PfvzN}/runs/a.bin"),
        "[8] " + cut.format("/w/share-cache/lab/vfs/swan{APWfW}/Shared/lab/b.bin"),
        "[8] " + cut.format("/w/share-cache/lab/vfs/swan{APWfW}/Shared/lab/b.bin"),
        "[7] ERROR : IO error: cache open with O_TRUNC: failed to truncate: "
        + "write /w/cache/vfsMeta/swan{PfvzN}/c.bin: no space left on device",
        "[9] " + cut.format("/elsewhere/vfs/swan{X}/d.bin"),
        "[8] INFO  : b.bin: vfs cache: upload succeeded try #1",
    ]
    assert uploads.read_lines("\n".join(lines).encode() + b"\n", places) == [
        ("runs/a.bin", None),
        ("Shared/lab/b.bin", None),
        ("d.bin", None),
    ]
    assert uploads.cut == {"runs/a.bin": 1, "Shared/lab/b.bin": 0, "d.bin": 1}
    lines = [
        "[8] INFO  : b.bin: vfs cache: upload succeeded try #1",  # written again, whole
        "[7] INFO  : runs/a.bin: vfs cache: removed cache file as removed",
        # renamed before its upload: what goes up under the new name is the part
        "[7] " + cut.format('/w/cache/vfs/swan{f_Wjj}/res "1".tmp'),
        '[7] INFO  : res "1".tmp: vfs cache: renamed in cache to "rés \\"1\\".bin"',
        '[7] INFO  : rés "1".bin: vfs cache: upload succeeded try #1',
    ]
    assert uploads.read_lines("\n".join(lines).encode() + b"\n", places) == [('res "1".tmp', None)]
    assert uploads.cut == {"d.bin": 1, 'rés "1".bin': 0}


def test_a_refused_file_that_code_renames_stays_listed_under_its_new_name_until_it_went_up():
    """rclone tries a refused upload again under the file's new name (lines as rclone 1.75
    wrote them for a file over the drive's quota, renamed by code, then written smaller)."""
    uploads = RefusedUploads("/nonexistent/rclone.log")
    places = {8: MountPlace("Shared/lab", "/w/share-cache/lab", "Shared/lab")}
    refused = (
        "[8] ERROR : {}: vfs cache: failed to upload try #1, will retry in 10s: vfs cache: "
        "failed to transfer file from cache to remote: unchunked simple update failed: "
        "Not enough space for this upload; nothing was changed: "
        "Sabre\\DAV\\Exception\\InsufficientStorage: 507 Status"
    )
    lines = [
        refused.format("big.tmp"),
        '[8] INFO  : big.tmp: vfs cache: renamed in cache to "run 1/big.bin"',
    ]
    assert uploads.read_lines("\n".join(lines).encode() + b"\n", places) == [
        (
            "Shared/lab/big.tmp",
            "Not enough space for this upload; nothing was changed: "
            "Sabre\\DAV\\Exception\\InsufficientStorage: 507 Status",
        )
    ]
    assert list(uploads.refused) == ["Shared/lab/run 1/big.bin"]
    # refused again under the new name: already said
    lines = [refused.format("run 1/big.bin")]
    assert uploads.read_lines("\n".join(lines).encode() + b"\n", places) == []
    lines = ["[8] INFO  : run 1/big.bin: vfs cache: upload succeeded try #3"]
    assert uploads.read_lines("\n".join(lines).encode() + b"\n", places) == []
    assert uploads.refused == {}


def test_the_hub_watches_room_and_refusals_also_when_it_does_not_follow_the_shares(
    tmp_path, monkeypatch
):
    """With ``mount_refresh_interval`` 0 the shares are not followed, but the room for code's
    writes and the uploads the storage refuses are still watched (every WATCH_INTERVAL)."""
    log = Log()
    mounts = StorageMounts(
        url="http://127.0.0.1:1/", point=str(tmp_path / "f"), work_dir=str(tmp_path)
    )
    monkeypatch.setattr(swan_hub.mounts, "LOW_ROOM_BYTES", shutil.disk_usage(tmp_path).free << 1)
    with following(mounts, log, interval=0):
        eventually("the hub's word", lambda: any(line.startswith("Only ") for line in log.lines))


def test_rclones_log_is_cut_when_it_grew_large_and_rclone_goes_on_logging(tmp_path, monkeypatch):
    """A server running for weeks would grow its mounts' log without end: the hub's watch
    cuts it past MAX_LOG_BYTES (its lines kept in rclone.log.1), and rclone, which appends,
    goes on writing at the start of the emptied log, where the watch still finds refusals."""
    (tmp_path / "dav").mkdir()
    server = WsgiDavServer(tmp_path / "dav")
    server.start()
    try:
        local, url = server.folder("gina")
        work_dir = tmp_path / "rclone"
        mounts = StorageMounts(url=url, point=str(tmp_path / "files"), work_dir=str(work_dir))
        credentials = {"kind": "basic", "username": server.username, "password": server.password}
        mounts.start(credentials, "", timeout=BOUND)
        rclone_log = work_dir / "rclone.log"
        try:
            for i in range(3):
                Path(mounts.point, f"r{i}.csv").write_text(f"{i}\n")
            eventually("the uploads", lambda: all((local / f"r{i}.csv").exists() for i in range(3)))
            eventually("their lines", lambda: rclone_log.read_text().count("upload succeeded") == 3)
            size = rclone_log.stat().st_size
            mounts.watch(Log())
            assert rclone_log.stat().st_size == size  # small enough: as it was
            monkeypatch.setattr(swan_hub.mounts, "MAX_LOG_BYTES", size - 1)
            mounts.watch(Log())
            assert rclone_log.stat().st_size == 0
            assert (work_dir / "rclone.log.1").read_text().count("upload succeeded") == 3
            Path(mounts.point, "r3.csv").write_text("3\n")
            eventually(
                "r3.csv's line",
                lambda: "r3.csv: vfs cache: upload succeeded" in (rclone_log.read_text()),
            )
            assert not rclone_log.read_bytes().startswith(b"\0")  # appended, no hole
        finally:
            mounts.stop(upload_wait=BOUND)
    finally:
        server.stop()


def test_a_restarted_hub_replaces_the_list_of_refused_uploads_an_earlier_one_wrote(tmp_path):
    """After a restart the hub takes the mounts over without starting them (`from_state`), so
    what the list says is not yet what it knows; its first watch lists what it knows."""
    status = tmp_path / "mount-status"
    status.mkdir()
    stale = {"refused": [{"path": "old.bin", "why": "Not enough space (507)"}]}
    (status / STATUS_FILE).write_text(json.dumps(stale))
    state = {"point": str(tmp_path / "files"), "pids": {}}
    mounts = StorageMounts.from_state(
        state, url="http://127.0.0.1:1/", work_dir=str(tmp_path), status_dir=str(status)
    )
    mounts.watch(Log())
    assert json.loads((status / STATUS_FILE).read_text()) == {"refused": [], "cut": []}


def test_the_hub_says_once_when_the_disk_of_codes_writes_runs_short_of_room(tmp_path, monkeypatch):
    log = Log()
    mounts = StorageMounts(
        url="http://127.0.0.1:1/", point=str(tmp_path / "f"), work_dir=str(tmp_path)
    )
    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setattr(swan_hub.mounts, "LOW_ROOM_BYTES", free + (1 << 30))
    for _ in range(3):
        mounts.check_room(log)
    [line] = log.lines
    assert line.startswith("Only ") and str(tmp_path) in line and "docs/storage.md" in line
    monkeypatch.setattr(swan_hub.mounts, "LOW_ROOM_BYTES", 0)  # room again, then short again
    mounts.check_room(log)
    monkeypatch.setattr(swan_hub.mounts, "LOW_ROOM_BYTES", free + (1 << 30))
    mounts.check_room(log)
    assert len(log.lines) == 2


@contextlib.contextmanager
def a_server_that_never_answers(port: int) -> Iterator[None]:
    """A listener on ``port`` whose connections are made by the kernel and then never served,
    as a hung storage's are."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        yield


def read_in_a_process(path: Path, bound: float = 90) -> subprocess.CompletedProcess:
    """Read ``path`` in a new process, as a kernel would; fail the test if it still waits after
    ``bound`` seconds (the caller's stop of the mount then ends the read)."""
    code = "import sys; print(open(sys.argv[1]).read(), end='')"
    reader = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = reader.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path.name} through the mount still waits after {bound:g} s")
    return subprocess.CompletedProcess(reader.args, reader.returncode, out, err)


def test_a_server_whose_files_are_not_mounted_is_told_so_and_one_without_webdav_is_not(
    make_spawner,
):
    config = Config()
    config.SwanSpawnerMixin.webdav_url_template = "http://127.0.0.1:9/{username}/"
    config.SwanLocalSpawner.mount_storage = False
    assert make_spawner("erin", config=config).get_env()["SWAN_FILES_MOUNTED"] == "0"
    assert "SWAN_FILES_MOUNTED" not in make_spawner("frank").get_env()  # a POSIX space is root


def as_user(uid: int, command: str) -> subprocess.CompletedProcess:
    """``command`` (sh) run as ``uid`` with no other group, as code in a container runs."""
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )


@contextlib.contextmanager
def bound_as_docker_binds(point: str) -> Iterator[str]:
    """A recursive bind of ``point`` with rslave propagation, as Docker makes the container's
    (``-v point:/somewhere:rslave``), in a folder every user may pass through."""
    holder = Path(tempfile.mkdtemp(prefix="swan-view-"))
    holder.chmod(0o711)
    view = holder / "home"
    view.mkdir()
    subprocess.run(["mount", "--rbind", point, str(view)], check=True)
    subprocess.run(["mount", "--make-rslave", str(view)], check=True)
    try:
        yield str(view)
    finally:
        subprocess.run(["umount", "-R", "-l", str(view)], check=False)
        shutil.rmtree(holder, ignore_errors=True)


def test_a_mount_for_a_containers_user_lets_only_that_user_in_and_reaches_its_binds(gate, tmp_path):
    files = {"data.csv": "a,b\n", "Shared/lab/notes.txt": "teacher\n"}
    owner = (CONTAINER_UID, CONTAINER_UID)
    mounts, local, _ = mount_folder_of(gate, tmp_path, "erin", files, owner=owner, shared=True)
    try:
        assert "--allow-other" in Path(f"/proc/{mounts.root.pid}/cmdline").read_text()
        with bound_as_docker_binds(mounts.point) as view:
            assert os.stat(view).st_uid == CONTAINER_UID
            assert stat.S_IMODE(os.stat(view).st_mode) == 0o700
            wrote = as_user(CONTAINER_UID, f"cat {view}/data.csv && echo 42 > {view}/out.csv")
            assert wrote.returncode == 0 and wrote.stdout == "a,b\n", wrote.stderr
            eventually("out.csv on the server", lambda: (local / "out.csv").read_text() == "42\n")
            refused = as_user(CONTAINER_UID, f"echo x > {view}/Shared/lab/notes.txt")
            assert "Read-only file system" in refused.stderr
            stranger = as_user(65534, f"ls {view}")  # another user of the host
            assert "Permission denied" in stranger.stderr
            # an edit share stacked on the host later reaches the bind, and leaves it again
            eventually("Shared/lab listed", lambda: os.path.isdir(f"{mounts.shared_point}/lab"))
            mounts.match_writable({"lab"}, timeout=BOUND)
            assert f"{view}/Shared/lab" in mounted_at_or_below(view)
            wrote = as_user(CONTAINER_UID, f"echo student >> {view}/Shared/lab/notes.txt")
            assert wrote.returncode == 0, wrote.stderr
            notes = local / "Shared" / "lab" / "notes.txt"
            eventually("the note at the owner", lambda: "student" in notes.read_text())
            assert notes.read_text() == "teacher\nstudent\n"
            mounts.match_writable(set(), timeout=BOUND)
            assert f"{view}/Shared/lab" not in mounted_at_or_below(view)
    finally:
        mounts.stop(upload_wait=BOUND)
    assert mounted_at_or_below(mounts.point) == []


def test_with_the_read_cache_what_code_reads_is_kept_in_the_mounts_cache(gate, tmp_path):
    for read_cache in (False, True):
        mounts, _, _ = mount_folder_of(
            gate,
            tmp_path,
            "fay",
            {"data.csv": "a,b\n" * 1000},
            runtime=f"runtime-{read_cache}",
            read_cache=read_cache,
        )
        try:
            assert Path(mounts.point, "data.csv").read_text() == "a,b\n" * 1000
            # rclone names the remote's cache folder with a suffix for the mount's own options
            kept = list(Path(mounts.work_dir, "cache", "vfs").glob(f"{REMOTE}*/data.csv"))
            assert bool(kept) is read_cache
        finally:
            mounts.stop(upload_wait=0)
