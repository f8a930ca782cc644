"""Folder ETags and sizes of the drive's cache (swan_hub.drive.tree) against changes made beside
it on a real file system, watched by the real Linux inotify: after every change the cached
summary equals one computed from scratch, and only the folders on the changed path are read
again."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from swan_hub.drive.tree import SubtreeCache, TreeSummary

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="inotify is a Linux interface"
)


def walked(root: Path, folder: Path) -> tuple[bytes, int]:
    """The summary of ``folder`` computed from scratch, by a cache that keeps nothing."""
    cache = SubtreeCache(str(root), watch=False)
    return cache.summary(str(folder), {})


def cached(cache: SubtreeCache, folder: Path) -> tuple[bytes, int]:
    return TreeSummary(cache).summary(str(folder))


@pytest.fixture
def space(tmp_path) -> Path:
    """A small space: notebooks at the top, data two folders deep, an empty folder."""
    root = tmp_path / "users"
    space = root / "alice"
    (space / "project" / "data").mkdir(parents=True)
    (space / "empty").mkdir()
    (space / "analysis.ipynb").write_text('{"cells": []}')
    (space / "project" / "notes.md").write_text("# notes\n")
    (space / "project" / "data" / "table.csv").write_text("x,y\n1,2\n")
    return space


@pytest.fixture
def cache(space) -> SubtreeCache:
    cache = SubtreeCache(str(space.parent))
    assert cache.watching
    yield cache
    cache.close()


def agrees(cache: SubtreeCache, space: Path, *folders: Path) -> None:
    for folder in (space, *folders):
        assert cached(cache, folder) == walked(space.parent, folder), folder


def test_a_summary_is_read_once_and_then_served_from_the_cache(cache, space):
    first = cached(cache, space)
    assert cache.folders_read == 4
    assert cached(cache, space) == first
    assert cached(cache, space / "project" / "data") == walked(
        space.parent, space / "project" / "data"
    )
    assert cache.folders_read == 4
    assert first[1] == sum(p.stat().st_size for p in space.rglob("*") if p.is_file())


def test_a_write_in_place_deep_inside_changes_the_etags_up_to_the_root_and_reads_only_that_path(
    cache, space
):
    before = cached(cache, space)
    untouched = cached(cache, space / "empty")
    read = cache.folders_read
    with open(space / "project" / "data" / "table.csv", "r+b") as f:  # same size, new bytes
        f.write(b"a,b")
    after = cached(cache, space)
    assert after[0] != before[0]
    assert cache.folders_read - read == 3  # data, project and the space; not "empty"
    assert cached(cache, space / "empty") == untouched
    agrees(cache, space, space / "project", space / "project" / "data")


def test_an_append_from_a_shell_changes_the_size_and_the_etag(cache, space):
    before = cached(cache, space)
    subprocess.run(["sh", "-c", "echo more >> notes.md"], cwd=space / "project", check=True)
    after = cached(cache, space)
    assert after[0] != before[0] and after[1] == before[1] + len("more\n")
    agrees(cache, space, space / "project")


def test_renames_made_beside_the_cache_are_seen(cache, space):
    before = cached(cache, space)
    (space / "project" / "notes.md").rename(space / "project" / "README.md")
    renamed = cached(cache, space)
    assert renamed[0] != before[0]
    agrees(cache, space, space / "project")
    # a folder moved elsewhere keeps being watched at its new place
    (space / "project" / "data").rename(space / "empty" / "data")
    agrees(cache, space, space / "project", space / "empty", space / "empty" / "data")
    moved = cached(cache, space)
    (space / "empty" / "data" / "table.csv").write_text("changed after the move\n")
    assert cached(cache, space)[0] != moved[0]
    agrees(cache, space, space / "empty", space / "empty" / "data")


def test_folders_created_and_deleted_beside_the_cache_are_seen(cache, space):
    cached(cache, space)
    deep = space / "new" / "deeper" / "deepest"
    deep.mkdir(parents=True)
    agrees(cache, space, space / "new", deep)
    (deep / "result.txt").write_text("42")
    agrees(cache, space, space / "new", deep)
    subprocess.run(["rm", "-r", str(space / "new")], check=True)
    agrees(cache, space)
    # the same name again, a different folder: its files count, not the old watch's
    deep.mkdir(parents=True)
    (deep / "other.txt").write_text("other")
    agrees(cache, space, deep)


def test_a_touch_that_only_changes_the_mtime_changes_the_etag(cache, space):
    before = cached(cache, space)
    os.utime(space / "analysis.ipynb", (1_000_000, 1_000_000))
    assert cached(cache, space)[0] != before[0]
    agrees(cache, space)


def test_upload_temp_files_do_not_change_the_etag(cache, space):
    before = cached(cache, space)
    read = cache.folders_read
    temp = space / "project" / ".~swan-0123456789abcdef.part"
    temp.write_bytes(b"x" * 1000)
    temp.unlink()
    assert cached(cache, space) == before
    assert cache.folders_read == read


def test_lost_events_drop_the_whole_cache_and_the_answers_stay_right(cache, space):
    """More changes than the kernel queues (fs.inotify.max_queued_events) between two
    requests: the queue overflows, and everything is read again."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    many = space / "many"
    many.mkdir()
    cached(cache, space)
    for i in range(limit + 100):
        (many / f"f{i}").touch()
    overflows = cache.overflows
    agrees(cache, space, many)
    assert cache.overflows == overflows + 1


def test_folders_beyond_the_watch_limit_are_walked_on_every_request(space):
    cache = SubtreeCache(str(space.parent), max_watches=2)
    try:
        first = cached(cache, space)
        read = cache.folders_read
        assert cached(cache, space) == first
        assert cache.folders_read > read  # could not keep the space's summary
        (space / "project" / "data" / "table.csv").write_text("changed")
        agrees(cache, space, space / "project", space / "project" / "data")
    finally:
        cache.close()


def test_without_watching_every_request_walks(space):
    cache = SubtreeCache(str(space.parent), watch=False)
    cached(cache, space)
    cached(cache, space)
    assert cache.folders_read == 8


def test_answers_stay_right_while_another_writer_keeps_changing_files(cache, space):
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            folder = space / "project" / f"run{i % 5}"
            folder.mkdir(exist_ok=True)
            (folder / f"out{i % 7}.txt").write_text(str(i))
            if i % 11 == 0:
                (space / "project" / "data" / "table.csv").write_text(f"{i}\n")
            i += 1

    readers_failed = []

    def reader() -> None:
        try:
            while not stop.is_set():
                cached(cache, space)
                cached(cache, space / "project")
        except Exception as e:  # noqa: BLE001 - reported by the test
            readers_failed.append(e)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join()
    assert not readers_failed
    agrees(cache, space, space / "project", space / "project" / "data")
