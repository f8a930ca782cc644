"""The copies for code of single files other sites share (`swan_hub.federated_copies`), against
a real WsgiDAV server on 127.0.0.1 standing in for the other site's WebDAV (anonymous, so it
takes the share's secret as any header): fetched whole, not fetched again while unchanged
(a conditional GET answered 304), replaced when changed, kept while the site is down, removed
when the site refuses the share or the share ends, never copied beyond the size limit, and never
visible half fetched. The whole path through two sites and a mount is in
test_federated_files.py."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from harness.dav_servers import WsgiDavServer

from swan_hub import federated_copies
from swan_hub.federated_copies import FederatedFileCopies
from swan_hub.mounts import FederatedShare


class OtherSite(WsgiDavServer):
    name = "wsgidav (anonymous)"
    username = None
    password = None


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str, *args) -> None:
        self.lines.append(text % args)

    info = exception = warning


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    server = OtherSite(root)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def copies(tmp_path):
    folder = tmp_path / "points"
    folder.mkdir()
    found = FederatedFileCopies(str(folder), str(tmp_path / "work"), refresh=0)
    yield found
    found.stop()


def share(site, name: str = "table.csv", secret: str = "s3cret") -> FederatedShare:  # noqa: S107
    return FederatedShare(id="7", name=name, url=f"{site.url}{name}", secret=secret, kind="file")


def gets(site) -> int:
    return sum(1 for method, _ in site.requests() if method == "GET")


def test_a_file_is_copied_once_kept_while_unchanged_and_replaced_when_changed(site, copies):
    (site.root / "table.csv").write_bytes(b"y\n2\n")
    os.utime(site.root / "table.csv", (1_700_000_000, 1_700_000_000))
    files = {"table.csv": share(site)}
    copies.round(files)
    copy = os.path.join(copies.folder, "table.csv")
    assert Path(copy).read_bytes() == b"y\n2\n"
    assert os.stat(copy).st_mtime == 1_700_000_000  # the other site's time
    inode = os.stat(copy).st_ino

    copies.round(files)
    copies.round(files)
    assert gets(site) == 3 and os.stat(copy).st_ino == inode  # asked, 304, not written again

    (site.root / "table.csv").write_bytes(b"y\n2\n3\n")
    copies.round(files)
    assert Path(copy).read_bytes() == b"y\n2\n3\n"
    assert os.listdir(copies.fetching) == []  # nothing half fetched left behind


def test_the_copy_is_kept_while_the_site_is_down_and_removed_when_it_refuses(site, copies):
    (site.root / "table.csv").write_bytes(b"kept")
    files = {"table.csv": share(site)}
    copies.round(files)
    site.stop()
    log = Log()
    copies.round(files, log)
    copies.round(files, log)
    copy = os.path.join(copies.folder, "table.csv")
    assert Path(copy).read_bytes() == b"kept"
    [line] = log.lines  # said once, not at every look
    assert "cannot be reached" in line and "s3cret" not in line

    site.start()
    (site.root / "table.csv").unlink()  # revoked at the other site: 404
    copies.round(files, log)
    assert not os.path.exists(copy)
    assert "refuses it (404)" in log.lines[-1]


def test_a_share_that_ends_loses_its_copy_and_another_secret_fetches_afresh(site, copies):
    (site.root / "a.csv").write_bytes(b"a")
    (site.root / "b.csv").write_bytes(b"b")
    copies.round({"a.csv": share(site, "a.csv"), "b.csv": share(site, "b.csv")})
    assert sorted(os.listdir(copies.folder)) == ["a.csv", "b.csv"]
    copies.round({"b.csv": share(site, "b.csv")})
    assert os.listdir(copies.folder) == ["b.csv"]
    before = gets(site)
    copies.round({"b.csv": share(site, "b.csv", secret="another")})
    assert gets(site) == before + 1 and Path(copies.folder, "b.csv").read_text() == "b"


def test_a_copy_left_from_before_a_restart_of_the_hub_goes_when_its_share_is_not_listed(
    site, copies
):
    (site.root / "kept.csv").write_bytes(b"k")
    Path(copies.folder, "ended.csv").write_bytes(b"a share that ended while the hub was down")
    Path(copies.folder, "course").mkdir()  # the point of a folder's mount stays
    copies.round({"kept.csv": share(site, "kept.csv")})
    assert sorted(os.listdir(copies.folder)) == ["course", "kept.csv"]


def test_a_file_beyond_the_limit_is_not_copied(site, copies, monkeypatch):
    monkeypatch.setattr(federated_copies, "MAX_BYTES", 1000)
    (site.root / "big.bin").write_bytes(b"x" * 1001)
    log = Log()
    copies.round({"big.bin": share(site, "big.bin")}, log)
    assert os.listdir(copies.folder) == [] and os.listdir(copies.fetching) == []
    assert "more than 1000" in log.lines[-1]


def test_follow_runs_one_round_at_a_time_in_a_thread_and_stop_ends_them(site, copies):
    (site.root / "t.csv").write_bytes(b"t")
    main = threading.current_thread()
    seen = []
    round_ = copies.round
    copies.round = lambda files, log=None: (seen.append(threading.current_thread()), round_(files))
    copies.follow({"t.csv": share(site, "t.csv")})
    copies.follow({"t.csv": share(site, "t.csv")})  # the first still runs, or it is done
    copies._round.join(10)
    assert seen and main not in seen
    assert Path(copies.folder, "t.csv").read_text() == "t"
    copies.stop()
    count = len(seen)
    copies.follow({"t.csv": share(site, "t.csv")})
    assert len(seen) == count  # no round after the stop


def test_a_server_without_files_of_other_sites_costs_one_look_for_leftovers_then_nothing(
    site, copies
):
    copies.follow({})
    first = copies._round
    first.join(10)
    for _ in range(3):
        copies.follow({})
    assert copies._round is first and site.requests() == []  # no thread, no request
