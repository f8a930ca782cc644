"""The process of SwanKubeSpawner's FUSE sidecar (`python -m swan_hub.mounts sidecar`, its probe
`mounted` and its preStop `unmount`), run here as the pod would run them, with the real rclone and
FUSE against a plain WebDAV server behind a bearer-token gate. Only Kubernetes is missing: the
pod that starts these commands is tested as a manifest in test_kube_spawner.py."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_credentials_hub
from test_mounts import BOUND, CONTAINER_UID, eventually, write_credentials

from swan_hub.mounts import SHARES_FOLDER, STATUS_FILE, missing_parts, mounted_at_or_below

pytestmark = pytest.mark.skipif(bool(missing_parts()), reason=f"cannot mount: {missing_parts()}")

gate = test_credentials_hub.gate


def mounts_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "swan_hub.mounts", *args]


def probe(point: Path) -> int:
    return subprocess.run(mounts_command("mounted", str(point)), timeout=BOUND).returncode


def rclone_pids_of(point: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"rclone" and any(
            a.startswith(os.fsencode(point)) for a in argv
        ):
            found.append(int(pid))
    return found


class Sidecar:
    """One run of the sidecar's command for a folder of the gate, as in the pod: the space at
    ``point`` inside the shared volume, rclone's files in ``work_dir``."""

    def __init__(self, url: str, tmp_path: Path, credentials_file: Path) -> None:
        self.point = tmp_path / "home" / "alice"
        self.work_dir = tmp_path / "mount-work"
        #: the volume the server's container mounts read-only to read the refused uploads
        self.status_dir = tmp_path / "mount-status"
        self.point.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            mounts_command(
                "sidecar",
                f"--url={url}",
                f"--point={self.point}",
                f"--work-dir={self.work_dir}",
                f"--uid={CONTAINER_UID}",
                f"--gid={CONTAINER_UID}",
                "--interval=1",
                f"--timeout={BOUND:g}",
                f"--upload-wait={BOUND:g}",
                f"--credentials={credentials_file}",
                "--guard",  # as SwanKubeSpawner starts it (mount_guard is on by default)
                f"--status-dir={self.status_dir}",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def pre_stop(self) -> subprocess.CompletedProcess:
        command = mounts_command(
            "unmount", str(self.point), f"--work-dir={self.work_dir}", f"--upload-wait={BOUND:g}"
        )
        return subprocess.run(command, capture_output=True, text=True, timeout=2 * BOUND)

    def end(self) -> None:
        """What the kubelet does at the end: the preStop hook, then SIGTERM."""
        self.pre_stop()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=2 * BOUND)


@pytest.fixture
def storage(gate, tmp_path) -> Iterator[tuple[str, Path, Path]]:
    """A folder of the gate with a data file, and a credentials file with the gate's token:
    (its URL, the folder on the server's disk, the credentials file)."""
    gate.token = "token-1"
    local, url = gate.folder(f"sidecar-{uuid.uuid4().hex[:8]}")
    (local / "events.csv").write_text("run,energy\n1,13.6\n")
    credentials_file = tmp_path / "credentials" / "storage.json"
    write_credentials(credentials_file, "token-1")
    yield url, local, credentials_file
    for pid in rclone_pids_of(tmp_path):
        os.kill(pid, signal.SIGKILL)
    for point in mounted_at_or_below(str(tmp_path)):
        subprocess.run(["fusermount3", "-u", "-z", point], check=False, timeout=BOUND)


def test_the_sidecar_mounts_the_space_and_its_prestop_uploads_then_unmounts(storage, tmp_path):
    url, local, credentials_file = storage
    sidecar = Sidecar(url, tmp_path, credentials_file)
    try:
        eventually("the startup probe passes", lambda: probe(sidecar.point) == 0)
        assert (sidecar.point / "events.csv").read_text() == "run,energy\n1,13.6\n"
        assert sorted(mounted_at_or_below(str(sidecar.point))) == [
            str(sidecar.point),
            str(sidecar.point / SHARES_FOLDER),
        ]
        # the list of refused uploads, for the server's JupyterLab: none, readable by the server
        status = sidecar.status_dir / STATUS_FILE
        assert json.loads(status.read_text()) == {"refused": [], "cut": []}
        assert stat.S_IMODE(status.stat().st_mode) == 0o644
        # the files are the server container's user's, and the secret is in no process
        assert (sidecar.point / "events.csv").stat().st_uid == CONTAINER_UID
        for pid in [sidecar.proc.pid, *rclone_pids_of(tmp_path)]:
            assert b"token-1" not in Path(f"/proc/{pid}/cmdline").read_bytes()
            assert b"token-1" not in Path(f"/proc/{pid}/environ").read_bytes()
        # a view-only Shared/ for code, as on a local server
        with pytest.raises(OSError):
            (sidecar.point / SHARES_FOLDER / "mine.txt").write_text("no")

        (sidecar.point / "results.csv").write_text("x\n" * 100_000)
        done = sidecar.pre_stop()
        assert done.returncode == 0, done.stderr
        assert (local / "results.csv").read_text() == "x\n" * 100_000
        assert mounted_at_or_below(str(sidecar.point)) == []
        assert probe(sidecar.point) == 1
        sidecar.proc.send_signal(signal.SIGTERM)
        assert sidecar.proc.wait(timeout=BOUND) == 0
        eventually("no rclone process left", lambda: rclone_pids_of(tmp_path) == [])
    finally:
        if sidecar.proc.poll() is None:
            sidecar.end()


def test_a_killed_sidecars_dead_mounts_are_cleaned_by_the_next_one(storage, tmp_path):
    url, _, credentials_file = storage
    first = Sidecar(url, tmp_path, credentials_file)
    eventually("the first sidecar's mounts", lambda: probe(first.point) == 0)
    # a container killed at once: its process and rclone's die, the mounts stay behind
    first.proc.kill()
    first.proc.wait(timeout=BOUND)
    for pid in rclone_pids_of(tmp_path):
        os.kill(pid, signal.SIGKILL)
    eventually("rclone gone", lambda: rclone_pids_of(tmp_path) == [])
    assert mounted_at_or_below(str(first.point))
    with pytest.raises(OSError):
        os.listdir(first.point)
    # still listed, but dead: the probe must not let a server start on them
    assert probe(first.point) == 1

    again = Sidecar(url, tmp_path, credentials_file)
    try:
        eventually("the restarted sidecar's mounts", lambda: probe(again.point) == 0)
        assert (again.point / "events.csv").is_file()
    finally:
        again.end()
    assert mounted_at_or_below(str(again.point)) == []


def test_a_sidecar_that_cannot_mount_exits_with_an_error_and_leaves_nothing(gate, tmp_path):
    gate.token = "token-1"
    _, url = gate.folder(f"sidecar-{uuid.uuid4().hex[:8]}")
    credentials_file = tmp_path / "credentials" / "storage.json"
    write_credentials(credentials_file, "a-token-the-storage-refuses")
    sidecar = Sidecar(url, tmp_path, credentials_file)
    try:
        assert sidecar.proc.wait(timeout=2 * BOUND) == 1
    finally:
        if sidecar.proc.poll() is None:
            sidecar.end()
    said = sidecar.proc.stderr.read()
    assert b"failed" in said and b"401 Unauthorized" in said, said
    log = Path(sidecar.work_dir, "rclone.log")
    for text in (said, log.read_bytes() if log.exists() else b""):
        assert b"a-token-the-storage-refuses" not in text
    assert mounted_at_or_below(str(sidecar.point)) == []
    assert rclone_pids_of(tmp_path) == []
