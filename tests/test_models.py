"""The fast paths of model building answer exactly what the slow, general calls answer."""

from __future__ import annotations

import dataclasses
import functools
import json
import mimetypes
import random

import pytest
from jupyter_client.jsonutil import json_default

from swan_contents.manager import (
    CHILDREN_AS_JSON,
    ChildrenJSON,
    SwanContentsManager,
    _iso_times,
    _utc,
    mimetype_of,
)
from swan_contents.storage.base import Entry, Storage

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


def entry(**changes) -> Entry:
    fields = dict(name='ünï "quoted" \\ & <tag>.csv', path='big/ünï "quoted" \\ & <tag>.csv')
    fields |= dict(kind="file", size=12, mtime=1796526245.123456, ctime=1796526245.123456)
    fields |= dict(etag='"1a-2b-c"', writable=True)
    return Entry.listed(**(fields | changes))


ENTRIES = {
    "usual": entry(),
    "folder": entry(kind="directory", size=4096, etag="", shareable=True),
    "notebook, read-only, not shareable": entry(
        name="n.ipynb", path="n.ipynb", writable=False, shareable=False
    ),
    "created apart": entry(ctime=1796526246.0),
    "on the second": entry(mtime=1796526245.0, ctime=1796526245.0),
    "before 1970": entry(mtime=-86400.5),
    "beyond what a date holds": entry(mtime=1e20),
    "no size": entry(size=None),
    "no suffix": entry(name="README", path="README"),
    "a gzipped tar": entry(name="a.tar.gz", path="a.tar.gz"),
}


@pytest.mark.parametrize("name", ENTRIES)
def test_a_childs_json_is_what_json_dumps_writes_of_its_model(name):
    manager = SwanContentsManager(root_dir="/tmp")
    c = ENTRIES[name]
    fields = (c.name, c.path, c.is_dir, c.size, c.mtime, c.ctime, c.etag, c.writable, c.shareable)
    written = manager._child_json()(*fields)
    assert written == json.dumps(manager._model(c), default=json_default)


@pytest.mark.parametrize("driver", ["posix", "any storage"])
async def test_a_listings_json_is_what_json_dumps_writes_of_the_models_get_lists(tmp_path, driver):
    space = tmp_path / "space"
    (space / "big" / "sub folder").mkdir(parents=True)
    for name in ["a.csv", "b.ipynb", "no suffix", "ünï & <c>.txt", ".hidden", "x.pyc"]:
        (space / "big" / name).write_text("1")
    (space / "big" / "read-only.txt").write_text("1")
    (space / "big" / "read-only.txt").chmod(0o444)
    (space / "big" / "link inside.csv").symlink_to(space / "big" / "a.csv")
    (tmp_path / "outside.csv").write_text("secret")
    (space / "big" / "link outside.csv").symlink_to(tmp_path / "outside.csv")
    manager = SwanContentsManager(root_dir=str(space))
    if driver == "any storage":  # the default of the Storage interface, from `stat`
        manager.storage.listing = functools.partial(Storage.listing, manager.storage)
    model = await manager.get("big")
    as_json = CHILDREN_AS_JSON.set(True)
    try:
        listed = await manager.get("big")
        file = await manager.get("big/a.csv")
    finally:
        CHILDREN_AS_JSON.reset(as_json)
    children = listed.pop("content")
    assert type(children) is ChildrenJSON
    assert listed == {k: v for k, v in model.items() if k != "content"}
    assert [json.loads(c) for c in children] == json.loads(
        json.dumps(model["content"], default=json_default)
    )
    names = {json.loads(c)["name"] for c in children}
    assert names == {"a.csv", "b.ipynb", "no suffix", "ünï & <c>.txt", "sub folder"} | {
        "read-only.txt",
        "link inside.csv",
    }
    assert file == await manager.get("big/a.csv")  # a file is answered as without it


@pytest.mark.parametrize("allow_hidden", [False, True])
def test_a_listing_hides_the_names_jupyter_server_hides(allow_hidden):
    manager = SwanContentsManager(root_dir="/tmp", allow_hidden=allow_hidden)
    names = ["a.csv", ".hidden", "x.pyc", "__pycache__", "a~", ".ipynb_checkpoints", "b.pyc.txt"]
    unlisted = manager._unlisted_names()
    listed = [name for name in names if unlisted(name) is None]
    hidden = (lambda name: False) if allow_hidden else (lambda name: name.startswith("."))
    assert listed == [n for n in names if not hidden(n) and manager.should_list(n)]


def test_a_listings_times_are_written_as_json_default_writes_them():
    iso = _iso_times()
    edges = [0.0, 0.5, 1e9 + 0.9999995, 1e9 + 0.0000005, 1e9 + 0.0000015, 1796526245.9999999]
    edges += [1796526245.0, 253402300798.9999999, -0.5, -86400.5, 1e20, float("nan")]
    rng = random.Random(17)  # noqa: S311 - test data, not secrets
    spread = [rng.uniform(0, 4e9) for _ in range(20000)]
    close = [1796526245 + rng.randrange(10**6) / 1e6 for _ in range(20000)]  # shared seconds
    for timestamp in edges + spread + close:
        assert iso(timestamp) == json_default(_utc(timestamp)), timestamp
