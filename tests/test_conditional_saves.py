"""Conditional saves through the REST API: a save based on an old version never overwrites
another writer's edit; it is a 409 with the current etag, or a conflict copy when asked for.

The other writer here is a second client of the API or a program writing the file directly. Its
edits change the file's size: WsgiDAV's ETag is inode-mtime(seconds)-size and it rewrites files
in place, so a same-size edit within the same second is invisible to it (a property of that
server, see docs/storage.md), not something a client can make up for.
"""

from __future__ import annotations

import email.utils
import getpass
import json
import os
import re

import pytest
from conftest import notebook_body, put_with_headers, swan_on_every_storage, text_body

from swan_contents import SwanContentsManager

manager, backend = swan_on_every_storage()


def source(reply) -> str:
    return reply.body["content"]["cells"][0]["source"]


async def test_every_model_carries_the_storage_version(api):
    created = await api("PUT", "nb.ipynb", notebook_body("v1"))
    got = await api("GET", "nb.ipynb")
    listed = await api("GET", "")
    assert created.body["etag"] and created.body["etag"] == got.body["etag"]
    assert listed.body["content"][0]["etag"] == got.body["etag"]
    saved = await api("PUT", "nb.ipynb", notebook_body("v2, longer"))
    assert saved.body["etag"] != created.body["etag"]


async def test_an_edit_of_the_same_size_within_a_second_still_changes_the_version(api, backend):
    if backend == "wsgidav":
        pytest.skip("WsgiDAV's ETag cannot tell same-size contents of one second apart (above)")
    first = await api("PUT", "nb.ipynb", notebook_body("aaaa"))
    second = await api("PUT", "nb.ipynb", notebook_body("bbbb"))
    assert second.body["etag"] != first.body["etag"]
    stale = await api("PUT", "nb.ipynb", {**notebook_body("cccc"), "etag": first.body["etag"]})
    assert stale.code == 409
    assert source(await api("GET", "nb.ipynb")) == "bbbb"


async def test_a_save_based_on_the_current_version_succeeds(api):
    first = await api("PUT", "nb.ipynb", notebook_body("v1"))
    second = await api("PUT", "nb.ipynb", {**notebook_body("v2"), "etag": first.body["etag"]})
    assert second.code == 200
    third = await api("PUT", "nb.ipynb", {**notebook_body("v3"), "etag": second.body["etag"]})
    assert third.code == 200
    assert source(await api("GET", "nb.ipynb")) == "v3"


async def test_a_save_based_on_an_old_version_is_a_409_and_keeps_the_other_edit(api):
    mine = await api("PUT", "nb.ipynb", notebook_body("base"))
    theirs = await api("PUT", "nb.ipynb", notebook_body("their edit"))
    refused = await api("PUT", "nb.ipynb", {**notebook_body("my edit"), "etag": mine.body["etag"]})
    assert refused.code == 409
    assert refused.body["etag"] == theirs.body["etag"]
    assert "changed by someone else" in refused.message
    assert source(await api("GET", "nb.ipynb")) == "their edit"


async def test_a_save_of_a_file_deleted_meanwhile_is_a_409_with_no_etag(api, jp_root_dir, backend):
    if backend == "wsgidav":
        pytest.skip(
            "WsgiDAV 4.4 ignores If-Match when the resource does not exist (RFC 9110 wants "
            "412); the driver cannot tell, so a deleted file is created again there"
        )
    mine = await api("PUT", "nb.ipynb", notebook_body("base"))
    (jp_root_dir / "nb.ipynb").unlink()
    refused = await api("PUT", "nb.ipynb", {**notebook_body("mine"), "etag": mine.body["etag"]})
    assert refused.code == 409
    assert refused.body["etag"] is None and "deleted" in refused.message
    assert not (jp_root_dir / "nb.ipynb").exists()


def put_if_match(jp_fetch, path: str, body: dict, if_match: str):
    """PUT /api/contents/<path> with an If-Match header; never raises on HTTP errors."""
    return put_with_headers(jp_fetch, path, body, {"If-Match": if_match})


async def test_the_version_may_come_in_an_if_match_header(jp_fetch, api):
    first = await api("PUT", "nb.ipynb", notebook_body("v1"))
    await api("PUT", "nb.ipynb", notebook_body("v2 is longer"))

    r = await put_if_match(jp_fetch, "nb.ipynb", notebook_body("mine"), first.body["etag"])
    assert r.code == 409
    current = (await api("GET", "nb.ipynb")).body["etag"]
    assert json.loads(r.body)["etag"] == current
    ok = await put_if_match(jp_fetch, "nb.ipynb", notebook_body("mine"), current)
    assert ok.code == 200


async def test_a_conditional_save_is_answered_with_the_headers_of_a_plain_one(jp_fetch):
    plain = await put_with_headers(jp_fetch, "nb.ipynb", notebook_body("v1"), {})
    etag = json.loads(plain.body)["etag"]
    conditional = await put_if_match(jp_fetch, "nb.ipynb", notebook_body("v2 is longer"), etag)
    created = await put_with_headers(
        jp_fetch, "new.ipynb", notebook_body("new"), {"If-None-Match": "*"}
    )
    assert (plain.code, conditional.code, created.code) == (201, 200, 201)
    for reply, path in ((plain, "nb.ipynb"), (conditional, "nb.ipynb"), (created, "new.ipynb")):
        assert reply.headers["Location"].endswith(f"/api/contents/{path}")
        assert reply.headers["Content-Type"] == "application/json"
        assert email.utils.parsedate_to_datetime(reply.headers["Last-Modified"])
        assert json.loads(reply.body)["path"] == path


async def test_an_if_match_header_that_contradicts_the_model_is_a_400(jp_fetch, api):

    first = await api("PUT", "a.txt", text_body("a"))
    for header in ('"other"', "*", f'{first.body["etag"]}, "x"'):
        body = {**text_body("b"), "etag": first.body["etag"]}
        r = await put_if_match(jp_fetch, "a.txt", body, header)
        assert r.code == 400, header
    assert (await api("GET", "a.txt")).body["content"] == "a"


async def test_a_conflict_copy_keeps_both_edits(api, jp_root_dir):
    mine = await api("PUT", "nb.ipynb", notebook_body("base"))
    await api("PUT", "nb.ipynb", notebook_body("their edit"))
    body = {**notebook_body("my edit"), "etag": mine.body["etag"], "on_conflict": "copy"}
    copied = await api("PUT", "nb.ipynb", body)
    assert copied.code == 200
    name = copied.body["name"]
    stamp = r"\d{4}-\d\d-\d\d \d\d\.\d\d"
    assert re.fullmatch(rf"nb \(\S+'s copy, conflict {stamp}\)\.ipynb", name), name
    assert copied.body["path"] == name and copied.body["type"] == "notebook"
    assert source(await api("GET", "nb.ipynb")) == "their edit"
    assert source(await api("GET", name)) == "my edit"
    again = await api("PUT", "nb.ipynb", body)
    assert again.body["name"] not in ("nb.ipynb", name)


async def test_the_conflict_copy_names_the_user(api):
    mine = await api("PUT", "data.csv", text_body("a"))
    await api("PUT", "data.csv", text_body("bb"))
    body = {**text_body("c"), "etag": mine.body["etag"], "on_conflict": "copy"}
    copied = await api("PUT", "data.csv", body)
    user = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
    assert copied.body["name"].startswith(f"data ({user}'s copy, conflict ")
    assert copied.body["name"].endswith(").csv")


def test_a_conflict_copy_name_holds_no_character_windows_refuses(tmp_path):
    manager = SwanContentsManager(root_dir=str(tmp_path), user_name='a:b/c\\d"e')
    name = manager.conflict_name("week 1.ipynb", attempt=3)
    assert not set('<>:"/\\|?*') & set(name), name
    assert name.startswith("week 1 (a-b-c-d-e's copy, conflict ") and name.endswith(", 3).ipynb")


async def test_a_save_without_a_version_is_last_writer_wins(api):
    await api("PUT", "nb.ipynb", notebook_body("one"))
    await api("PUT", "nb.ipynb", notebook_body("two"))
    assert (await api("PUT", "nb.ipynb", notebook_body("three"))).code == 200
    assert source(await api("GET", "nb.ipynb")) == "three"


@pytest.mark.parametrize("bad", [{"etag": ""}, {"etag": 5}, {"on_conflict": "merge"}])
async def test_a_malformed_version_or_conflict_choice_is_a_400(api, bad):
    await api("PUT", "a.txt", text_body("a"))
    r = await api("PUT", "a.txt", {**text_body("b"), **bad})
    assert r.code == 400
    assert (await api("GET", "a.txt")).body["content"] == "a"
