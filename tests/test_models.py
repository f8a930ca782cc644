"""The fast paths of model building answer exactly what the slow, general calls answer."""

from __future__ import annotations

import mimetypes

import pytest

from swan_contents.manager import mimetype_of

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
