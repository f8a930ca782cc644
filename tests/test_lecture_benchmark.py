"""The student of `benchmarks/lecture.py`, one of them, against a real `swan up`: it clicks the
teacher's Open-in-SWAN link, logs in, waits through the spawn, accepts the share, runs the cell
and saves a copy, as a browser does; a student who cannot log in fails with a reason instead of
waiting. Keeps the benchmark from rotting; its timings are the benchmark's business, not here."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.swan import SWAN_UP_MARKS, Swan, start_swan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import lecture  # noqa: E402

pytestmark = SWAN_UP_MARKS


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    swan = start_swan(tmp_path_factory.mktemp("lecture"), users=f"{lecture.TEACHER},s01")
    try:
        yield swan
    finally:
        swan.kill_everything()


@pytest.fixture(scope="module")
def link(swan) -> str:
    return lecture.prepare_class(swan)


def test_a_student_follows_the_class_link_to_an_executed_cell_and_a_saved_copy(swan, link):
    teachers = swan.data / "users" / lecture.TEACHER / lecture.NOTEBOOK
    before = teachers.read_bytes()
    record = asyncio.run(lecture.attend(swan.url, "s01", swan.passwords()["s01"], link))

    assert record.failure is None
    assert list(record.times) == list(lecture.MILESTONES)
    assert sorted(record.times.values()) == list(record.times.values())
    saved = json.loads((swan.data / "users" / "s01" / "exercise.ipynb").read_text())
    (output,) = saved["cells"][0]["outputs"]
    assert "".join(output["text"]) == f"{lecture.PRINTED}\n"
    assert teachers.read_bytes() == before
    # what the benchmark reads of the idle server: its process, its kernel, its mounts
    memory = lecture.idle_memory(swan, ["s01"])
    assert [len(memory[part]) for part in ("server", "kernel", "mount")] == [1, 1, 1]
    assert all(rss > 0 and pss > 0 for rss, pss in memory["all"])


def test_a_student_who_cannot_log_in_fails_at_once_with_the_reason(swan, link):
    record = asyncio.run(lecture.attend(swan.url, "s01", "not-the-password", link))
    assert record.failure == "spawned: the login was refused (403)"
    assert record.times == {}
