"""Real clients against the drive as `swan up` runs it: the ownCloud and Nextcloud desktop sync
clients (owncloudcmd, nextcloudcmd) both ways, a notebook server saving into the same space, a
conflicting edit on both sides, and litmus, the WebDAV compliance suite."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from harness.drive import Drive, running_drive
from harness.swan import log_in, start_server, user_api

pytestmark = pytest.mark.hub

CLIENTS = {"nextcloudcmd": "nextcloud-desktop-cmd", "owncloudcmd": "owncloud-client-cmd"}


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("drive-clients")
    with running_drive(workdir) as drive:
        yield drive


def sync(drive: Drive, client: str, user: str, folder: Path) -> str:
    """One sync run of ``client`` for ``user`` between ``folder`` and the user's space."""
    if shutil.which(client) is None:
        pytest.skip(f"{client} is not installed (Debian package {CLIENTS[client]})")
    args = [client, "--non-interactive", "-u", user, "-p", drive.swan.tokens[user]]
    if client == "owncloudcmd":
        exclude = folder.parent / "exclude.lst"
        exclude.touch()
        args += ["--exclude", str(exclude)]
    done = subprocess.run(
        [*args, str(folder), f"{drive.base}/"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture
def laptop(tmp_path) -> Path:
    """An empty local folder to sync."""
    folder = tmp_path / "laptop"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_desktop_client_syncs_both_ways(drive, client, laptop):
    user, folder = "alice", laptop
    log_in(drive.swan, user)
    (folder / f"from-{client}.txt").write_text("written on the laptop")
    (folder / "sub").mkdir()
    (folder / "sub" / "data.csv").write_text("x,y\n1,2\n")
    drive.dav(user, "PUT", f"from-server-{client}.txt", content=b"written on the server")

    sync(drive, client, user, folder)
    space = drive.space(user)
    assert (space / f"from-{client}.txt").read_text() == "written on the laptop"
    assert (space / "sub" / "data.csv").read_text() == "x,y\n1,2\n"
    assert (folder / f"from-server-{client}.txt").read_text() == "written on the server"

    # a change on each side travels on the next run; a deletion too
    (folder / f"from-{client}.txt").write_text("edited on the laptop")
    drive.dav(user, "PUT", f"from-server-{client}.txt", content=b"edited on the server")
    drive.dav(user, "DELETE", "sub/data.csv")
    sync(drive, client, user, folder)
    assert (space / f"from-{client}.txt").read_text() == "edited on the laptop"
    assert (folder / f"from-server-{client}.txt").read_text() == "edited on the server"
    assert not (folder / "sub" / "data.csv").exists()


@pytest.fixture(scope="module")
def bobs_server(drive):
    """bob's notebook server, started by the hub on his space."""
    log_in(drive.swan, "bob")
    start_server(drive.swan, "bob")
    return "bob"


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_notebook_saved_in_jupyter_arrives_on_the_next_sync(drive, bobs_server, client, laptop):
    user, folder = bobs_server, laptop
    sync(drive, client, user, folder)
    name = f"saved-by-jupyter-{client}.ipynb"
    notebook = {
        "type": "notebook",
        "format": "json",
        "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
    }
    r = user_api(drive.swan, user, "PUT", f"{user}/api/contents/{name}", json=notebook)
    assert r.status_code in (200, 201), r.text
    sync(drive, client, user, folder)
    assert '"nbformat": 4' in (folder / name).read_text()


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_conflicting_edit_keeps_both_sides(drive, client, laptop):
    user, folder = "alice", laptop
    log_in(drive.swan, user)
    name = f"shared-notes-{client}.txt"
    drive.dav(user, "PUT", name, content=b"original")
    sync(drive, client, user, folder)
    assert (folder / name).read_text() == "original"

    time.sleep(1.1)  # a new mtime second on both sides
    # sizes differ: with equal size and mtime the clients take both sides for the same file
    (folder / name).write_text("the laptop's longer edit")
    drive.dav(user, "PUT", name, content=b"the server's edit")
    sync(drive, client, user, folder)

    texts = {p.name: p.read_text() for p in folder.iterdir() if p.name.startswith(name[:-4])}
    conflicts = [n for n in texts if re.search(r"conflict", n, re.IGNORECASE)]
    assert conflicts, texts
    assert "the laptop's longer edit" in texts.values()
    assert "the server's edit" in texts.values()
    assert (drive.space(user) / name).read_text() == "the server's edit"


def test_litmus_passes_every_suite(drive, tmp_path):
    if shutil.which("litmus") is None:
        pytest.skip("litmus is not installed (Debian package litmus)")
    user = "alice"
    log_in(drive.swan, user)
    drive.dav(user, "MKCOL", "litmus")
    url = f"{drive.base}/remote.php/dav/files/{user}/litmus/"
    results = {}
    for suite in ("basic", "copymove", "props", "locks", "http"):
        done = subprocess.run(
            ["litmus", url, user, drive.swan.tokens[user]],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            env={"TESTS": suite, "PATH": "/usr/bin:/bin"},
        )
        found = re.search(r"of (\d+) tests run: (\d+) passed", done.stdout)
        assert found, done.stdout[-3000:] + done.stderr[-3000:]
        results[suite] = (int(found.group(1)), int(found.group(2)), done.stdout)
    print("litmus:", "; ".join(f"{s}: {p}/{n}" for s, (n, p, _) in results.items()))
    for run, passed, output in results.values():
        assert passed == run, output[-4000:]
        assert "skipped" not in output, output[-4000:]
