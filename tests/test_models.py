"""The fast paths of model building answer exactly what the slow, general calls answer."""

from __future__ import annotations

import dataclasses
import json
import mimetypes
from datetime import datetime, timedelta, timezone

import pytest
from jupyter_client.jsonutil import json_default

from swan_contents.manager import SwanContentsManager, mimetype_of
from swan_contents.storage.base import Entry
from swan_share_ext.storage_api import child_json

NAMES = [
    "data.csv",
    "DATA.CSV",
    "notes.txt",
    "archive.tar.gz",
    "archive.tgz",
    "results.v2.tar.gz",
    "plot.svg.gz",
    "a.b.gz",
    "twice.gz.gz",
    "weird.",
    ".hidden",
    ".hidden.csv",
    "no extension",
    "data:not-a-url.csv",
    "unknown.suffix-nobody-has",
    "notebook 0001.ipynb",
]


@pytest.mark.parametrize("name", NAMES)
def test_the_mimetype_remembered_per_ending_is_the_one_mimetypes_gives_for_the_path(name):
    # as the stock manager asks it: of the file's full path on disk
    assert mimetype_of(name) == mimetypes.guess_type(f"/home/user/space/{name}")[0]
    assert mimetype_of(name) == mimetype_of(name)  # and again, from what it remembered


def test_an_entry_made_for_a_listing_is_the_entry_the_constructor_makes():
    fields = dict(name="a.csv", path="x/a.csv", kind="file", size=3, mtime=1.5, ctime=2.5)
    fields |= dict(etag='"e"', writable=True, file_id="1:2")
    listed, made = Entry.listed(**fields), Entry(**fields)
    assert listed == made
    assert repr(listed) == repr(made)
    assert hash(listed) == hash(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        listed.name = "b.csv"  # type: ignore[misc]


UTC_TIME = datetime(2026, 12, 6, 3, 4, 5, 123456, tzinfo=timezone.utc)


def child(**changes) -> dict:
    model = {
        "name": 'ünï "quoted" \\ & <tag>.csv',
        "path": 'big/ünï "quoted" \\ & <tag>.csv',
        "type": "file",
        "last_modified": UTC_TIME,
        "created": UTC_TIME,
        "content": None,
        "format": None,
        "mimetype": "text/csv",
        "size": 12,
        "writable": True,
        "hash": None,
        "hash_algorithm": None,
        "etag": '"1a-2b-c"',
        "shareable": None,
    }
    return model | changes


CHILDREN = {
    "usual": child(),
    "folder": child(type="directory", mimetype=None, size=None, etag=None, shareable=True),
    "notebook, read-only, not shareable": child(type="notebook", writable=False, shareable=False),
    "created apart": child(created=UTC_TIME.replace(microsecond=0, second=1)),
    "on the second": child(last_modified=UTC_TIME.replace(microsecond=0)),
    "another time zone": child(last_modified=UTC_TIME.astimezone(timezone(timedelta(hours=2)))),
    "a float size": child(size=12.0),
    "a bool size": child(size=True),
    "writable as a number": child(writable=1),
    "hash": child(hash="abc", hash_algorithm="sha256"),
    "a time as text": child(created="2026-12-06T03:04:05Z"),
    "a field more": child(extra=[1, 2]),
    "a field less": {k: v for k, v in child().items() if k != "shareable"},
    "fields in another order": dict(reversed(child().items())),
    "a name not text": child(name=7),
}


@pytest.mark.parametrize("name", CHILDREN)
def test_a_childs_json_is_what_json_dumps_writes(name):
    model = CHILDREN[name]
    assert child_json(model) == json.dumps(model, default=json_default)


async def test_a_listings_json_is_what_json_dumps_writes(tmp_path):
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "sub folder").mkdir()
    for name in ["a.csv", "b.ipynb", "no suffix", "ünï & <c>.txt", ".hidden", "x.pyc"]:
        (tmp_path / "big" / name).write_text("1")
    manager = SwanContentsManager(root_dir=str(tmp_path))
    listed = (await manager.get("big"))["content"]
    assert {m["name"] for m in listed} == {"a.csv", "b.ipynb", "no suffix", "ünï & <c>.txt"} | {
        "sub folder"
    }
    for model in listed:
        assert child_json(model) == json.dumps(model, default=json_default)


@pytest.mark.parametrize("allow_hidden", [False, True])
def test_a_listing_hides_the_names_jupyter_server_hides(allow_hidden):
    manager = SwanContentsManager(root_dir="/tmp", allow_hidden=allow_hidden)
    names = ["a.csv", ".hidden", "x.pyc", "__pycache__", "a~", ".ipynb_checkpoints", "b.pyc.txt"]
    unlisted = manager._unlisted_names()
    listed = [name for name in names if unlisted(name) is None]
    hidden = (lambda name: False) if allow_hidden else (lambda name: name.startswith("."))
    assert listed == [n for n in names if not hidden(n) and manager.should_list(n)]
