"""The mount guard request by request, in front of a real WsgiDAV (and Apache where present): an
upload over a change the mount never saw keeps that change aside first, one over what the mount
last saw is conditional on it, a race in between is the storage's 412, and nothing outside the
guard's folder is reached."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from harness.dav_servers import ApacheDavServer, WsgiDavServer, apache_available, shared_root
from test_federated_copies import Log, OtherSite
from test_mounts import eventually, read_in_a_process

from swan_hub.mounts import (
    FederatedShare,
    GuardProcess,
    StorageMounts,
    missing_parts,
    mounted_at_or_below,
    start_guard,
    start_rclone,
)

COPY = re.compile(r"^notes \(changed elsewhere, conflict \d{4}-\d\d-\d\d \d\d\.\d\d\)\.txt$")


class WatchedWsgiDav(WsgiDavServer):
    """WsgiDAV noting each request's method, path and conditional headers, and running
    ``after`` (if set) once a request it matches was answered."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.after: tuple[Callable[[dict], bool], Callable[[], None]] | None = None

    def wsgi_app(self, dav_app):
        def app(environ, start_response):
            headers = {
                name: environ[key]
                for name, key in (
                    ("If-Match", "HTTP_IF_MATCH"),
                    ("If-None-Match", "HTTP_IF_NONE_MATCH"),
                    ("Overwrite", "HTTP_OVERWRITE"),
                    ("Depth", "HTTP_DEPTH"),
                )
                if key in environ
            }
            self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], headers))
            if environ["PATH_INFO"].endswith("/elsewhere"):
                start_response("302 Found", [("Location", "http://127.0.0.1:9/stolen")])
                return [b""]
            answer = list(dav_app(environ, start_response))
            if self.after is not None and self.after[0](environ):
                action, self.after = self.after[1], None
                action()
            return answer

        return app


@pytest.fixture(scope="module")
def wsgidav() -> Iterator[WatchedWsgiDav]:
    server = WatchedWsgiDav(shared_root())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def guarded(wsgidav, tmp_path) -> Iterator[tuple[Path, httpx.Client, GuardProcess]]:
    """A new folder of WsgiDAV holding ``notes.txt``, its guard, and a client of the guard
    (what rclone is): (the folder on disk, client, guard)."""
    name = f"alice-{tmp_path.name[-12:]}"
    local, url = wsgidav.folder(name)
    (local / "notes.txt").write_text("first\n")
    guard = start_guard(url, str(tmp_path))
    auth = (wsgidav.username, wsgidav.password)
    with httpx.Client(base_url=guard.url(), auth=auth, timeout=30) as client:
        wsgidav.seen.clear()
        try:
            yield local, client, guard
        finally:
            guard.stop()


def listed(client: httpx.Client) -> None:
    """The mount lists its folder, as rclone does before it opens a file."""
    assert client.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207


def change_elsewhere(local: Path, text: str) -> None:
    time.sleep(1.05)  # WsgiDAV's ETags have 1 s granularity
    (local / "notes.txt").write_text(text)


def copies(local: Path) -> list[str]:
    return sorted(n for n in os.listdir(local) if COPY.match(n))


def test_an_upload_over_a_change_the_mount_never_saw_keeps_that_change_as_a_conflict_copy(
    guarded, wsgidav
):
    local, client, _ = guarded
    listed(client)
    change_elsewhere(local, "from the laptop\n")
    wsgidav.seen.clear()
    r = client.put("notes.txt", content=b"from code\n")
    assert r.status_code == 201
    assert (local / "notes.txt").read_text() == "from code\n"
    [copy] = copies(local)
    assert (local / copy).read_text() == "from the laptop\n"
    methods = [(m, h) for m, _, h in wsgidav.seen]
    assert methods[:3] == [
        ("PROPFIND", {"Depth": "0"}),
        ("MOVE", {"Overwrite": "F"}),
        ("PUT", {"If-None-Match": "*"}),  # create-only: nothing can slip in between
    ]


def test_rclones_own_look_at_a_file_before_uploading_it_tells_the_guard_nothing(guarded):
    """rclone looks up (PROPFIND Depth 0) a file code made just before uploading it: another
    device's file found there is still kept aside."""
    local, client, _ = guarded
    listed(client)
    (local / "fit.txt").write_text("the laptop's fit\n")
    looked = client.request("PROPFIND", "fit.txt", headers={"Depth": "0"})
    assert looked.status_code == 207
    assert client.put("fit.txt", content=b"code's fit\n").status_code == 201
    assert (local / "fit.txt").read_text() == "code's fit\n"
    [copy] = [n for n in os.listdir(local) if n.startswith("fit (changed elsewhere")]
    assert (local / copy).read_text() == "the laptop's fit\n"


def test_uploads_of_what_the_mount_last_saw_are_conditional_on_it_and_make_no_copy(
    guarded, wsgidav
):
    local, client, _ = guarded
    listed(client)
    for n in range(3):
        wsgidav.seen.clear()
        r = client.put("notes.txt", content=f"write {n}\n".encode())
        assert r.status_code in (201, 204), r.text
        put = next(h for m, _, h in wsgidav.seen if m == "PUT")
        assert put.get("If-Match", "").startswith('"'), put
        assert [m for m, _, _ in wsgidav.seen if m == "MOVE"] == []
    assert copies(local) == []
    assert (local / "notes.txt").read_text() == "write 2\n"


def test_a_change_between_the_guards_look_and_the_upload_is_the_storages_412_for_rclone(
    guarded, wsgidav
):
    local, client, _ = guarded
    listed(client)

    def the_guards_look(environ: dict) -> bool:
        return environ["REQUEST_METHOD"] == "PROPFIND" and environ.get("HTTP_DEPTH") == "0"

    wsgidav.after = (the_guards_look, lambda: change_elsewhere(local, "just in between\n"))
    r = client.put("notes.txt", content=b"from code\n")
    assert r.status_code == 412
    assert (local / "notes.txt").read_text() == "just in between\n"
    # rclone uploads again: now the change is one the mount never saw, kept aside
    r = client.put("notes.txt", content=b"from code\n")
    assert r.status_code == 201
    [copy] = copies(local)
    assert (local / copy).read_text() == "just in between\n"


def test_a_delete_of_a_change_the_mount_never_saw_keeps_it_aside_and_one_it_saw_is_conditional(
    guarded, wsgidav
):
    local, client, _ = guarded
    listed(client)
    change_elsewhere(local, "from the laptop\n")
    assert client.delete("notes.txt").status_code == 204
    [copy] = copies(local)
    assert (local / copy).read_text() == "from the laptop\n"
    assert not (local / "notes.txt").exists()
    assert client.put("notes.txt", content=b"code's\n").status_code == 201
    wsgidav.seen.clear()
    assert client.delete("notes.txt").status_code == 204
    delete = next(h for m, _, h in wsgidav.seen if m == "DELETE")
    assert delete.get("If-Match", "").startswith('"')
    assert copies(local) == [copy] and not (local / "notes.txt").exists()


def test_a_file_another_client_made_under_a_name_code_then_writes_is_kept_aside(guarded):
    local, client, _ = guarded
    listed(client)  # the mount knows there is no fresh.txt
    (local / "fresh.txt").write_text("the laptop's\n")
    assert client.put("fresh.txt", content=b"code's\n").status_code == 201
    kept = [n for n in os.listdir(local) if n.startswith("fresh (changed elsewhere")]
    assert len(kept) == 1 and (local / kept[0]).read_text() == "the laptop's\n"
    assert (local / "fresh.txt").read_text() == "code's\n"


def test_a_temporary_file_renamed_over_a_file_the_mount_saw_makes_no_copy(guarded, wsgidav):
    local, client, guard = guarded
    listed(client)
    assert client.put("notes.txt.tmp", content=b"new\n").status_code == 201
    destination = guard.url() + "notes.txt"
    r = client.request("MOVE", "notes.txt.tmp", headers={"Destination": destination})
    assert r.status_code == 204
    assert (local / "notes.txt").read_text() == "new\n" and copies(local) == []
    # a rename over a change it never saw keeps the change
    assert client.put("notes.txt.tmp", content=b"newer\n").status_code == 201
    change_elsewhere(local, "from the laptop\n")
    r = client.request("MOVE", "notes.txt.tmp", headers={"Destination": destination})
    assert r.status_code == 201
    [copy] = copies(local)
    assert (local / copy).read_text() == "from the laptop\n"
    assert (local / "notes.txt").read_text() == "newer\n"


def test_files_of_a_folder_the_mount_renamed_are_still_its_own(guarded, wsgidav):
    local, client, guard = guarded
    (local / "week1").mkdir()
    (local / "week1" / "a.txt").write_text("a\n")
    assert client.request("PROPFIND", "week1/", headers={"Depth": "1"}).status_code == 207
    destination = {"Destination": guard.url() + "week2/"}
    assert client.request("MOVE", "week1/", headers=destination).status_code == 201
    assert client.put("week2/a.txt", content=b"b\n").status_code == 204
    assert os.listdir(local / "week2") == ["a.txt"]


def test_requests_outside_the_guards_folder_and_redirects_are_not_followed(guarded, wsgidav):
    local, client, guard = guarded
    root = guard.url().rsplit("/", 2)[0] + "/"
    for path in (root + "other/notes.txt", guard.url() + "../other/x", guard.url() + "%2e%2e/x"):
        r = client.get(path)
        assert r.status_code == 403 and "inside" in r.text, (path, r.text)
    outside = {"Destination": root + "other/notes.txt"}
    r = client.request("MOVE", "notes.txt", headers=outside)
    assert r.status_code == 403 and "outside" in r.text
    another = {"Destination": "http://example.org" + urlsplit(guard.url()).path + "x"}
    assert client.request("COPY", "notes.txt", headers=another).status_code == 403
    assert (local / "notes.txt").read_text() == "first\n"
    wsgidav.seen.clear()
    r = client.get("elsewhere")
    assert r.status_code == 302 and r.headers["Location"] == "http://127.0.0.1:9/stolen"
    assert len(wsgidav.seen) == 1


def test_a_guard_of_a_view_only_share_of_another_site_passes_on_reads_alone_and_no_redirect(
    wsgidav, tmp_path
):
    local, url = wsgidav.folder(f"view-{tmp_path.name[-12:]}")
    (local / "notes.txt").write_text("first\n")
    guard = start_guard(url, str(tmp_path), redirects=False, read_only=True)
    auth = (wsgidav.username, wsgidav.password)
    try:
        with httpx.Client(base_url=guard.url(), auth=auth, timeout=30) as client:
            read = client.get("notes.txt")
            assert read.text == "first\n"
            # "not modified" names no other address: passed on
            unchanged = {"If-None-Match": read.headers["ETag"]}
            assert client.get("notes.txt", headers=unchanged).status_code == 304
            assert client.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207
            wsgidav.seen.clear()
            r = client.get("elsewhere")
            assert r.status_code == 502 and "Location" not in r.headers
            assert "answered with a redirect (302)" in r.text and "not followed" in r.text
            assert len(wsgidav.seen) == 1
            wsgidav.seen.clear()
            moved = {"Destination": guard.url() + "moved.txt"}
            for method, path, headers in (
                ("PUT", "notes.txt", {}),
                ("PUT", "new.txt", {}),
                ("DELETE", "notes.txt", {}),
                ("MOVE", "notes.txt", moved),
                ("MKCOL", "folder", {}),
                ("PROPPATCH", "notes.txt", {}),
            ):
                r = client.request(method, path, headers=headers, content=b"x")
                assert r.status_code == 403 and "view-only" in r.text, (method, r.text)
            assert wsgidav.seen == []
        assert sorted(os.listdir(local)) == ["notes.txt"]
        assert (local / "notes.txt").read_text() == "first\n"
    finally:
        guard.stop()


def test_a_storage_that_is_down_is_a_502_with_a_reason_and_nothing_is_written(tmp_path):
    guard = start_guard("http://127.0.0.1:9/alice/", str(tmp_path))
    try:
        r = httpx.put(guard.url() + "notes.txt", content=b"x")
        assert r.status_code == 502 and "did not answer" in r.text
    finally:
        guard.stop()
    assert not guard.running()


@pytest.mark.skipif(not apache_available(), reason="Apache (apache2) is not installed")
def test_on_apache_a_large_upload_and_download_stream_through_and_young_etags_match(tmp_path):
    server = ApacheDavServer(shared_root())
    server.start()
    try:
        local, url = server.folder("bob")
        guard = start_guard(url, str(tmp_path))
        size = 256 << 20
        chunk = os.urandom(1 << 20)

        def body() -> Iterator[bytes]:
            for _ in range(size // len(chunk)):
                yield chunk

        with httpx.Client(base_url=guard.url(), timeout=120) as client:
            headers = {"Content-Length": str(size)}
            assert client.put("big.bin", content=body(), headers=headers).status_code == 201
            with client.stream("GET", "big.bin") as r:
                got = sum(len(part) for part in r.iter_raw())
            assert got == size
            # a file younger than a second has a weak ETag on Apache: still the mount's own
            for n in range(3):
                assert client.put("notes.txt", content=f"{n}\n".encode()).status_code < 300
            assert [n for n in os.listdir(local) if "conflict" in n] == []
        peak = Path(f"/proc/{guard.pid}/status").read_text()
        high_water_kb = int(re.search(r"VmHWM:\s+(\d+)", peak)[1])
        assert high_water_kb < 120_000, f"the guard held {high_water_kb} kB: a body was buffered"
        guard.stop()
        assert (local / "big.bin").stat().st_size == size
    finally:
        server.stop()
        server.cleanup()


# -- through a real rclone mount ------------------------------------------------------------

BOUND = 30.0
mountable = pytest.mark.skipif(bool(missing_parts()), reason=f"cannot mount: {missing_parts()}")


@pytest.fixture(params=["wsgidav", "apache"])
def storage(request, wsgidav) -> Iterator[WsgiDavServer | ApacheDavServer]:
    if request.param == "wsgidav":
        yield wsgidav
        return
    if not apache_available():
        pytest.skip("Apache (apache2) is not installed")
    server = ApacheDavServer(shared_root())
    server.start()
    yield server
    server.stop()
    server.cleanup()


def guarded_mount(server, tmp_path: Path, files: dict[str, str]) -> tuple[StorageMounts, Path]:
    """A new folder of ``server`` holding ``files``, mounted through a guard."""
    local, url = server.folder(f"code-{uuid.uuid4().hex[:8]}")
    for name, text in files.items():
        (local / name).write_text(text)
        os.chmod(local / name, 0o666)  # noqa: S103 - Apache's user replaces it
    mounts = StorageMounts(
        url=url, point=str(tmp_path / "files"), work_dir=str(tmp_path / "rclone"), guard=True
    )
    credentials = (
        {"kind": "basic", "username": server.username, "password": server.password}
        if server.username
        else None
    )
    mounts.start(credentials, "", timeout=BOUND)
    return mounts, local


def other_client_puts(server, local: Path, name: str, text: str) -> None:
    """Another device uploads ``name`` (curl, with its own connection and credentials)."""
    time.sleep(1.05)  # a new ETag on servers whose ETags have 1 s granularity
    url = server.url + quote(f"{local.name}/{name}")
    auth = ["-u", f"{server.username}:{server.password}"] if server.username else []
    done = subprocess.run(
        ["curl", "-sS", "-f", "-T", "-", *auth, url], input=text.encode(), capture_output=True
    )
    assert done.returncode == 0, done.stderr


class Writer:
    """A process that opens a file of the mount for writing, then writes and closes it when
    told: as a kernel holding a file open."""

    CODE = (
        "import sys\n"
        "f = open(sys.argv[1], 'w')\n"
        "print('open', flush=True)\n"
        "text = sys.stdin.readline()\n"
        "f.write(text)\n"
        "f.close()\n"
        "print('closed', flush=True)\n"
    )

    def __init__(self, path: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.CODE, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline() == "open\n"

    def close_with(self, text: str) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "closed\n"
        self.proc.wait(timeout=BOUND)


def kept(local: Path, stem: str) -> list[str]:
    return sorted(n for n in os.listdir(local) if n.startswith(f"{stem} (changed elsewhere"))


@mountable
def test_code_closing_a_file_another_device_changed_meanwhile_keeps_that_change_aside(
    storage, tmp_path
):
    mounts, local = guarded_mount(storage, tmp_path, {"notes.txt": "first\n"})
    try:
        notes = Path(mounts.point, "notes.txt")
        assert notes.read_text() == "first\n"
        writer = Writer(notes)
        other_client_puts(storage, local, "notes.txt", "from the laptop\n")
        writer.close_with("from code\n")
        eventually(
            "the code's notes.txt", lambda: (local / "notes.txt").read_text() == "from code\n"
        )
        [copy] = eventually("a conflict copy", lambda: kept(local, "notes"))
        assert (local / copy).read_text() == "from the laptop\n"
        # three more writes of the code's own file make no copy
        for n in range(3):
            notes.write_text(f"again {n}\n")
            eventually(
                f"write {n} up", lambda n=n: (local / "notes.txt").read_text() == f"again {n}\n"
            )
        # nor a temporary file renamed into place
        Path(mounts.point, "notes.txt.tmp").write_text("renamed into place\n")
        os.replace(Path(mounts.point, "notes.txt.tmp"), notes)
        eventually(
            "the renamed file up",
            lambda: (local / "notes.txt").read_text() == "renamed into place\n",
        )
        time.sleep(2)
        assert kept(local, "notes") == [copy]
        # a file another device made under a name code then writes
        writer = Writer(Path(mounts.point, "fresh.txt"))
        other_client_puts(storage, local, "fresh.txt", "the laptop's\n")
        writer.close_with("code's\n")
        [fresh] = eventually("fresh.txt kept aside", lambda: kept(local, "fresh"))
        assert (local / fresh).read_text() == "the laptop's\n"
        eventually("code's fresh.txt", lambda: (local / "fresh.txt").read_text() == "code's\n")
        eventually("nothing left to upload", lambda: mounts.pending() == [])
    finally:
        mounts.stop(upload_wait=BOUND)
    assert not mounts.alive()


@mountable
def test_rclone_uploads_again_after_the_412_of_a_change_just_between(wsgidav, tmp_path):
    mounts, local = guarded_mount(wsgidav, tmp_path, {"notes.txt": "first\n"})
    try:
        notes = Path(mounts.point, "notes.txt")
        assert notes.read_text() == "first\n"

        def the_guards_look(environ: dict) -> bool:
            return (
                environ["REQUEST_METHOD"] == "PROPFIND"
                and environ.get("HTTP_DEPTH") == "0"
                and environ["PATH_INFO"].endswith("/notes.txt")
            )

        def in_between() -> None:
            time.sleep(1.05)
            (local / "notes.txt").write_text("just in between\n")

        wsgidav.seen.clear()
        wsgidav.after = (the_guards_look, in_between)
        notes.write_text("from code\n")
        eventually(
            "the code's notes.txt", lambda: (local / "notes.txt").read_text() == "from code\n"
        )
        [copy] = kept(local, "notes")
        assert (local / copy).read_text() == "just in between\n"
        puts = [h for m, p, h in wsgidav.seen if m == "PUT" and p.endswith("/notes.txt")]
        assert "If-Match" in puts[0] and puts[-1] == {"If-None-Match": "*"}, puts
        # rclone answered the 412 by deleting "the failed upload" and uploading again: the
        # guard kept the change aside instead of letting it be deleted
        log = Path(mounts.work_dir, "rclone.log")
        eventually(  # rclone logs the try's success just after the file is at the storage
            "rclone's second try in its log",
            lambda: "upload succeeded try #2" in log.read_text(),
        )
        assert "412 Precondition Failed" in log.read_text()
    finally:
        mounts.stop(upload_wait=BOUND)


@mountable
def test_a_dead_guard_fails_the_mounts_io_and_nothing_bypasses_it(wsgidav, tmp_path):
    mounts, local = guarded_mount(wsgidav, tmp_path, {"data.csv": "a\n", "unread.csv": "b\n"})
    try:
        assert Path(mounts.point, "data.csv").read_text() == "a\n"
        os.killpg(mounts.guard.pid, signal.SIGKILL)
        mounts.guard.proc.wait(timeout=BOUND)
        reader = read_in_a_process(Path(mounts.point, "unread.csv"))
        assert "Input/output error" in reader.stderr, reader.stderr
        Path(mounts.point, "results.csv").write_text("from code\n")
        time.sleep(5)
        assert not (local / "results.csv").exists()  # not published behind the guard's back
        assert [p for p in mounts.pending() if p.endswith("/results.csv")]  # waits in the cache
    finally:
        mounts.stop(upload_wait=0)
    assert not mounts.alive()


@mountable
def test_a_guard_that_ended_is_started_again_on_its_port_and_the_mounts_go_on(wsgidav, tmp_path):
    mounts, local = guarded_mount(wsgidav, tmp_path, {"data.csv": "a\n", "unread.csv": "b\n"})
    try:
        notes = Path(mounts.point, "notes.txt")
        notes.write_text("first\n")
        eventually("notes.txt up", lambda: (local / "notes.txt").exists())
        ended = mounts.guard
        os.killpg(ended.pid, signal.SIGKILL)
        ended.proc.wait(timeout=BOUND)
        assert "Input/output error" in read_in_a_process(Path(mounts.point, "unread.csv")).stderr
        said = Log()
        # the follower's look (every 0.25 s while the server runs)
        asyncio.run(mounts.mend(BOUND, said))
        assert mounts.guard.running() and mounts.guard.pid != ended.pid
        assert mounts.guard.port == ended.port  # the address in the mounts' config
        assert said.lines == [f"The mount guard of {mounts.point} had ended: started again"]
        assert Path(mounts.point, "unread.csv").read_text() == "b\n"
        assert StorageMounts.from_state(mounts.state(), url=mounts.url, work_dir="").guard == (
            mounts.guard
        )
        # and it guards as before: a change the mount never saw is kept aside
        writer = Writer(notes)
        other_client_puts(wsgidav, local, "notes.txt", "from the laptop\n")
        writer.close_with("from code\n")
        [copy] = eventually("a conflict copy", lambda: kept(local, "notes"))
        assert (local / copy).read_text() == "from the laptop\n"
        eventually("code's notes.txt", lambda: (local / "notes.txt").read_text() == "from code\n")
        # a guard that runs is left alone
        asyncio.run(mounts.mend(BOUND, said))
        assert len(said.lines) == 1
    finally:
        mounts.stop(upload_wait=BOUND)
    assert not mounts.alive()


@contextlib.contextmanager
def folder_of_another_site(
    tmp_path: Path, name: str, files: dict[str, str]
) -> Iterator[tuple[Path, str]]:
    """A folder ``name`` holding ``files`` at another site (WsgiDAV): its place on disk and
    its address."""
    (tmp_path / "site").mkdir()
    site = OtherSite(tmp_path / "site")
    site.start()
    try:
        there, url = site.folder(name)
        for file, text in files.items():
            (there / file).write_text(text)
        yield there, url
    finally:
        site.stop()


@mountable
def test_a_share_of_another_site_an_earlier_hub_mounted_without_a_guard_gets_one(wsgidav, tmp_path):
    """Earlier versions mounted a view-only share of another site straight from that site: a
    hub that takes such a mount over (after its restart) mounts the share again through a
    guard, which follows none of that site's redirects."""
    with folder_of_another_site(tmp_path, "tables", {"t.csv": "x\n"}) as (there, url):
        mounts, _ = guarded_mount(wsgidav, tmp_path, {})
        view = FederatedShare(id="2", name="tables", url=url, secret="s3cret")
        try:

            def guarded() -> bool:
                mounts.match_federated({"tables": view}, BOUND)
                return "tables" in mounts.federated and "tables" in mounts.federated_guards

            eventually("mounted through a guard", guarded)
            # as an earlier hub left it: straight from the site, and taken over from a state
            mounts.federated.pop("tables").stop()
            mounts.federated_guards.pop("tables").stop()
            config = mounts._federated_file("config", "tables.conf")
            Path(config).write_text(view.config())
            old = start_rclone(
                remote_path="",
                point=os.path.join(mounts.shared_point, "tables"),
                work_dir=mounts.work_dir,
                read_only=True,
                cache_dir=mounts._federated_file("cache", "tables"),
                stacked=True,
                config=config,
                timeout=BOUND,
            )
            mounts.federated["tables"] = old
            mounts._federated_shares["tables"] = None
            assert Path(mounts.shared_point, "tables", "t.csv").read_text() == "x\n"

            eventually("mounted again through a guard", guarded)
            assert mounts.federated["tables"].pid != old.pid
            guard = mounts.federated_guards["tables"]
            assert guard.running() and f"127.0.0.1:{guard.port}/" in Path(config).read_text()
            assert Path(mounts.shared_point, "tables", "t.csv").read_text() == "x\n"
        finally:
            mounts.stop(upload_wait=BOUND)


@mountable
def test_a_guard_left_by_a_crash_is_ended_before_the_next_mounts(wsgidav, tmp_path):
    mounts, _ = guarded_mount(wsgidav, tmp_path, {"data.csv": "a\n"})
    left = mounts.guard
    for mount in (mounts.shared, mounts.root):
        os.killpg(mount.pid, signal.SIGKILL)  # the mounts die, their guard stays
        mount.proc.wait(timeout=BOUND)
    assert left.running()
    again = StorageMounts(url=mounts.url, point=mounts.point, work_dir=mounts.work_dir)
    again.clean_stale()
    assert not left.running() and left.proc.wait(timeout=BOUND) is not None
    assert mounted_at_or_below(mounts.point) == []


@mountable
def test_a_writable_folder_of_another_site_is_mounted_through_a_guard_of_its_own(wsgidav, tmp_path):
    """A folder another site shares with the right to write: code's upload over a change
    there the mount never saw keeps that change as a conflict copy at that site, as in the
    own space; the guard goes with the share, is started anew with its mount when it ended,
    and a restarted hub ends one a crash left."""
    with folder_of_another_site(tmp_path, "week1", {"notes.txt": "first\n"}) as (there, url):
        mounts, local = guarded_mount(wsgidav, tmp_path, {})
        share = FederatedShare(id="1", name="week1", url=url, secret="s3cret", writable=True)
        viewed = FederatedShare(id="2", name="view", url=url, secret="s3cret")
        try:

            def mounted() -> bool:
                mounts.match_federated({"week1": share, "view": viewed}, BOUND)
                return {"week1", "view"} <= set(mounts.federated)

            eventually("both shares mounted", mounted)
            assert set(mounts.federated_guards) == {"week1", "view"}
            guard = mounts.federated_guards["week1"]
            notes = Path(mounts.shared_point, "week1", "notes.txt")
            assert notes.read_text() == "first\n"
            writer = Writer(notes)
            time.sleep(1.05)  # a new ETag on WsgiDAV, whose ETags have 1 s granularity
            (there / "notes.txt").write_text("from the laptop\n")
            writer.close_with("from code\n")
            [copy] = eventually("a conflict copy at the other site", lambda: kept(there, "notes"))
            assert (there / copy).read_text() == "from the laptop\n"
            eventually("code's notes", lambda: (there / "notes.txt").read_text() == "from code\n")
            assert (
                "s3cret"
                not in Path(mounts.work_dir, "federated-guard", "week1", "guard.log").read_text()
            )

            # a guard that ended: the share is mounted anew, through a new guard
            os.killpg(guard.pid, signal.SIGKILL)
            guard.proc.wait(timeout=BOUND)
            eventually(
                "mounted anew",
                lambda: mounted() and mounts.federated_guards["week1"].pid != guard.pid,
            )
            assert mounts.federated_guards["week1"].running()
            assert Path(mounts.shared_point, "week1", "notes.txt").read_text() == "from code\n"

            # the share ends: its mount and its guard go
            ended = mounts.federated_guards["week1"]
            mounts.match_federated({"view": viewed}, BOUND)
            assert "week1" not in mounts.federated and set(mounts.federated_guards) == {"view"}
            assert not ended.running()
            assert not Path(mounts.work_dir, "federated-guard", "week1").exists()

            # a hub restarted after a crash ends the guard the share's mount left
            eventually("mounted again", mounted)
            left = mounts.federated_guards["week1"]
            for mount in mounts._mounts():
                os.killpg(mount.pid, signal.SIGKILL)
                mount.proc.wait(timeout=BOUND)
            again = StorageMounts(url=mounts.url, point=mounts.point, work_dir=mounts.work_dir)
            again.clean_stale()
            assert not left.running()
        finally:
            mounts.stop(upload_wait=BOUND)
        assert not mounts.alive()


class HostileSite(http.server.BaseHTTPRequestHandler):
    """Another site's WebDAV share at ``/share/`` whose listing also names entries outside it
    (``..`` encoded or plain, a subfolder's file) and one by a URL of another host, and which
    answers a GET of ``away.txt`` with a redirect; it records each request's method and
    path."""

    LISTED = (
        "..%2F..%2F..%2F..%2F..%2F..%2Ftmp%2Fescaped.txt",
        "%2E%2E%2Fup.txt",
        "../beside.txt",
        "sub%2Finner.txt",
        "http://127.0.0.1:1/share/elsewhere.txt",
        "away.txt",
        "ok.txt",
    )

    def entry(self, href: str, folder: bool = False) -> str:
        kind = "<d:collection/>" if folder else ""
        return (
            f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>"
            f"<d:resourcetype>{kind}</d:resourcetype><d:getcontentlength>5</d:getcontentlength>"
            "<d:getlastmodified>Mon, 07 Dec 2026 10:00:00 GMT</d:getlastmodified>"
            '<d:getetag>"e1"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status>'
            "</d:propstat></d:response>"
        )

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_PROPFIND(self):  # noqa: N802 - the standard library's name
        self.server.seen.append(("PROPFIND", self.path))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        entries = [self.entry("/share/", folder=True)]
        if self.path.rstrip("/") != "/share":
            if self.path not in ("/share/ok.txt", "/share/away.txt", "/share/elsewhere.txt"):
                self.answer(404)
                return
            entries = [self.entry(self.path)]
        elif self.headers.get("Depth") != "0":
            entries += [
                self.entry(href if "/" in href else "/share/" + href) for href in self.LISTED
            ]
        body = '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">' + "".join(entries)
        body += "</d:multistatus>"
        self.answer(207, body.encode(), **{"Content-Type": "application/xml"})

    def do_GET(self):  # noqa: N802
        self.server.seen.append(("GET", self.path))
        if self.path.endswith("/away.txt"):
            port = self.server.server_address[1]
            self.answer(302, Location=f"http://127.0.0.1:{port}/secret")
        else:
            self.answer(200, b"hello")

    def do_PUT(self):  # noqa: N802
        self.server.seen.append(("PUT", self.path))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer(201)

    def log_message(self, *args):
        pass


@mountable
def test_a_share_of_another_site_is_reached_at_its_address_alone_whatever_its_answers(
    wsgidav, tmp_path
):
    """A hostile site's shares, view-only and writable, mounted as any (`match_federated`):
    code sees only the entries inside the share, reads and writes there alone, and a redirect
    of that site (which rclone would follow to any address, with the share's secret when the
    host is the same) is an error for code, not a read of what the hub's host reaches."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileSite)
    server.daemon_threads = True
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/share/"
    edit = FederatedShare(id="1", name="lab", url=url, secret="s3cret", writable=True)
    view = FederatedShare(id="2", name="view", url=url, secret="s3cret")
    mounts, _ = guarded_mount(wsgidav, tmp_path, {})
    try:

        def mounted() -> bool:
            mounts.match_federated({"lab": edit, "view": view}, BOUND)
            return {"lab", "view"} <= set(mounts.federated)

        eventually("both shares mounted", mounted)
        for name in ("lab", "view"):
            folder = Path(mounts.shared_point, name)
            # an entry named by a URL of another host is read from the share's own
            assert sorted(os.listdir(folder)) == ["away.txt", "elsewhere.txt", "ok.txt"]
            assert (folder / "ok.txt").read_text() == "hello"
            assert (folder / "elsewhere.txt").read_text() == "hello"
            with pytest.raises(OSError) as refused:
                (folder / "away.txt").read_text()
            assert refused.value.errno == errno.EIO
        with pytest.raises(OSError) as refused:
            Path(mounts.shared_point, "view", "new.txt").write_text("mine")
        assert refused.value.errno == errno.EROFS
        Path(mounts.shared_point, "lab", "new.txt").write_text("mine")
        eventually("the upload", lambda: ("PUT", "/share/new.txt") in server.seen)
        assert ("GET", "/share/away.txt") in server.seen
        assert ("GET", "/secret") not in server.seen, server.seen
        assert all(path.startswith("/share/") for _, path in server.seen), server.seen
    finally:
        mounts.stop(upload_wait=BOUND)
        server.shutdown()
        server.server_close()
    assert not Path("/tmp/escaped.txt").exists()  # noqa: S108
    outside = [p for p in tmp_path.rglob("*") if p.name in ("escaped.txt", "up.txt", "beside.txt")]
    assert outside == []
