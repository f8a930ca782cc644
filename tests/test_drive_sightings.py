"""Uploads of a mount of code never silently replace a change the mount did not see: the drive
(`swan up`) notes what each mount (named by its ``X-Swan-Mount`` header, as rclone sends it)
listed, read and wrote, and keeps a file changed elsewhere since as a conflict copy beside the
mount's upload. Requests here are the ones rclone makes (PROPFIND Depth 1 of the folder, a plain
PUT, MOVE); `tests/test_kernel_mount.py` does the same through the real rclone mount."""

from __future__ import annotations

import time

import httpx
import pytest
from harness.drive import ocs_share, running_drive

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with running_drive(tmp_path_factory.mktemp("sightings"), users="alice,bob") as drive:
        yield drive


def as_mount(drive, mount: str, method: str, path: str, *, user: str = "alice", **kw):
    headers = {"X-Swan-Mount": mount, **kw.pop("headers", {})}
    return drive.dav(user, method, path, headers=headers, **kw)


def listed_by(drive, mount: str, folder: str, user: str = "alice") -> None:
    """A listing as rclone asks for it: the folder's path with a last slash."""
    r = as_mount(drive, mount, "PROPFIND", f"{folder}/", user=user, headers={"Depth": "1"})
    assert r.status_code == 207, r.text


def put(drive, path: str, content: bytes, user: str = "alice") -> None:
    """A write of another client (a sync client, the file browser): no mount header."""
    assert drive.dav(user, "PUT", path, content=content).status_code in (201, 204)


def copies(drive, folder: str, stem: str, user: str = "alice") -> dict[str, bytes]:
    found = (drive.space(user) / folder).glob(f"{stem} (changed elsewhere, conflict *")
    return {p.name: p.read_bytes() for p in found}


def test_a_mount_upload_over_a_change_it_never_saw_keeps_that_change_beside_it(drive):
    assert drive.dav("alice", "MKCOL", "run1").status_code == 201
    put(drive, "run1/results.csv", b"a,1\n")
    listed_by(drive, "m1", "run1")
    put(drive, "run1/results.csv", b"a,1\nfrom the laptop\n")
    r = as_mount(drive, "m1", "PUT", "run1/results.csv", content=b"from the kernel\n")
    assert r.status_code == 204, r.text
    assert drive.dav("alice", "GET", "run1/results.csv").content == b"from the kernel\n"
    kept = copies(drive, "run1", "results")
    assert list(kept.values()) == [b"a,1\nfrom the laptop\n"], kept
    (name,) = kept
    assert name.endswith(".csv") and ":" not in name
    # the copy is a file of its own, as any client reaches it
    assert drive.dav("alice", "GET", f"run1/{name}").content == b"a,1\nfrom the laptop\n"


def test_a_mount_writing_again_and_again_makes_no_copy(drive):
    assert drive.dav("alice", "MKCOL", "run2").status_code == 201
    listed_by(drive, "m2", "run2")
    for i in range(6):
        content = f"step {i}\n".encode()
        r = as_mount(drive, "m2", "PUT", "run2/log.txt", content=content)
        assert r.status_code in (201, 204), r.text
        # rclone reads back what it wrote
        as_mount(drive, "m2", "PROPFIND", "run2/log.txt", headers={"Depth": "0"})
    assert drive.dav("alice", "GET", "run2/log.txt").content == b"step 5\n"
    assert copies(drive, "run2", "log") == {}


def test_a_change_the_mount_listed_before_it_wrote_is_replaced_as_by_any_client(drive):
    assert drive.dav("alice", "MKCOL", "run3").status_code == 201
    put(drive, "run3/notes.txt", b"first\n")
    put(drive, "run3/notes.txt", b"second, from the laptop\n")
    time.sleep(0.1)  # well past the margin of the files' ctime
    listed_by(drive, "m3", "run3")
    r = as_mount(drive, "m3", "PUT", "run3/notes.txt", content=b"from the kernel\n")
    assert r.status_code == 204, r.text
    assert copies(drive, "run3", "notes") == {}


def test_a_file_made_elsewhere_after_the_mount_listed_its_folder_is_kept_beside_the_upload(drive):
    assert drive.dav("alice", "MKCOL", "run4").status_code == 201
    listed_by(drive, "m4", "run4")
    put(drive, "run4/plot.png", b"the laptop's plot")
    r = as_mount(drive, "m4", "PUT", "run4/plot.png", content=b"the kernel's plot")
    assert r.status_code == 204, r.text
    assert drive.dav("alice", "GET", "run4/plot.png").content == b"the kernel's plot"
    assert list(copies(drive, "run4", "plot").values()) == [b"the laptop's plot"]


def test_rclones_own_look_at_a_file_before_uploading_it_is_no_sighting(drive):
    """rclone looks up (PROPFIND Depth 0) a file code made just before uploading it: what that
    look finds, another device's file, is not what code saw."""
    assert drive.dav("alice", "MKCOL", "run4b").status_code == 201
    listed_by(drive, "m4b", "run4b")
    put(drive, "run4b/fit.txt", b"the laptop's fit")
    time.sleep(0.1)  # well past the margin of the files' ctime
    looked = as_mount(drive, "m4b", "PROPFIND", "run4b/fit.txt", headers={"Depth": "0"})
    assert looked.status_code == 207
    assert as_mount(drive, "m4b", "PUT", "run4b/fit.txt", content=b"code's fit").status_code == 204
    assert list(copies(drive, "run4b", "fit").values()) == [b"the laptop's fit"]


def test_what_a_mount_never_looked_at_or_another_mount_saw_is_replaced_as_by_any_client(drive):
    assert drive.dav("alice", "MKCOL", "run5").status_code == 201
    put(drive, "run5/a.txt", b"one")
    listed_by(drive, "m5-other", "run5")
    put(drive, "run5/a.txt", b"two, from the laptop")
    # m5 never listed run5; what m5-other saw is not m5's
    assert as_mount(drive, "m5", "PUT", "run5/a.txt", content=b"three").status_code == 204
    # nor is what alice's mount saw bob's, even under the same mount id
    listed_by(drive, "m5-other", "", user="bob")
    assert drive.dav("bob", "PUT", "b.txt", content=b"bob").status_code == 201
    r = as_mount(drive, "m5-other", "PUT", "b.txt", user="bob", content=b"bob's kernel")
    assert r.status_code == 204
    assert copies(drive, "run5", "a") == {}
    # a header that is no id of ours changes nothing either
    r = as_mount(drive, "x" * 500, "PUT", "run5/a.txt", content=b"four")
    assert r.status_code == 204
    assert copies(drive, "run5", "a") == {}


def test_a_file_the_mount_moved_into_place_is_its_own(drive):
    assert drive.dav("alice", "MKCOL", "run6").status_code == 201
    listed_by(drive, "m6", "run6")
    assert as_mount(drive, "m6", "PUT", "run6/.tmp", content=b"partial").status_code == 201
    target = f"{drive.base}/remote.php/dav/files/alice/run6/final.csv"
    r = as_mount(drive, "m6", "MOVE", "run6/.tmp", headers={"Destination": target})
    assert r.status_code in (201, 204), r.text
    assert as_mount(drive, "m6", "PUT", "run6/final.csv", content=b"done").status_code == 204
    assert copies(drive, "run6", "final") == {}
    assert drive.dav("alice", "GET", "run6/final.csv").content == b"done"


def test_a_mount_of_a_share_opened_by_its_secret_keeps_a_change_it_never_saw_beside_it(drive):
    """As a mount of another site reaches a folder shared with one of its users (Open Cloud
    Mesh): through the public WebDAV, with the share's secret; here a public link's, which
    opens the folder the same way."""
    assert drive.dav("alice", "MKCOL", "lab").status_code == 201
    put(drive, "lab/runs.csv", b"r,1\n")
    link = ocs_share(drive, "alice", path="lab", shareType="3", permissions="15")
    webdav, secret = f"{drive.base}/public.php/webdav", (link["token"], "")

    def through_link(method: str, path: str, **kw):
        headers = {"X-Swan-Mount": "site-b-mount", **kw.pop("headers", {})}
        return httpx.request(method, f"{webdav}/{path}", auth=secret, headers=headers, **kw)

    assert through_link("PROPFIND", "", headers={"Depth": "1"}).status_code == 207
    put(drive, "lab/runs.csv", b"r,1\nfrom alice\n")
    assert through_link("PUT", "runs.csv", content=b"from site B\n").status_code == 204
    assert drive.dav("alice", "GET", "lab/runs.csv").content == b"from site B\n"
    assert list(copies(drive, "lab", "runs").values()) == [b"r,1\nfrom alice\n"]
    # what the mount listed and then wrote again is its own: no more copies
    assert through_link("PUT", "runs.csv", content=b"again\n").status_code == 204
    assert len(copies(drive, "lab", "runs")) == 1
