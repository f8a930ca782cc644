"""Links into someone else's space, opened through the shares the user received: a real
jupyter-server whose share backend talks OCS to the recorded Reva, ownCloud 10 and Nextcloud
answers replayed on 127.0.0.1 (tests/harness/ocs_replay.py; each recording names where its
shapes come from). The replayed storage authenticates the recording's own user; which user clicks
does not change what it answers.

A share appears in the recipient's space where the storage mounts it (``file_target``): the tests
create those folders in the space, as the storage would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from harness.ocs_replay import OCSReplay
from harness.open_servers import server_config

API_VERSIONS = {"nextcloud": "2", "owncloud10": "1", "reva": "1"}


@pytest.fixture
def recording() -> str:
    return "reva"


@pytest.fixture
def replay(recording) -> Iterator[OCSReplay]:
    served = OCSReplay.load(recording).start()
    yield served
    served.stop()


@pytest.fixture
def jp_server_config(space, tmp_path, replay, recording):
    config = server_config(space, tmp_path)
    credentials = replay.recording["credentials"]
    secret = tmp_path / "app-password"
    secret.write_text(credentials["password"])
    config["OCSShareBackend"] = {
        "url": replay.url,
        "api_version": API_VERSIONS[recording],
        "username": credentials["user"],
        "password_file": str(secret),
    }
    if "token" in credentials:
        token = tmp_path / "token"
        token.write_text(credentials["token"])
        config["OCSShareBackend"]["token_file"] = str(token)
    return config


async def open_page(jp_fetch, **params: str):
    return await jp_fetch("swan", "open", params=params, follow_redirects=False, raise_error=False)


async def test_a_link_to_a_file_in_a_folder_shared_with_the_user_opens_where_the_share_is(
    jp_fetch, space, replay
):
    # Reva: teacher's class-2026, accepted, mounted at /Shares/class-2026
    (space / "Shares/class-2026").mkdir(parents=True)
    (space / "Shares/class-2026/exercise-1.ipynb").write_text("{}")
    r = await open_page(jp_fetch, path="class-2026/exercise-1.ipynb", owner="teacher")
    assert r.code == 302, r.body.decode()
    assert r.headers["Location"].endswith("/lab/tree/Shares/class-2026/exercise-1.ipynb")
    assert [s.query.get("state") for s in replay.requests("GET", "/shares")] == ["all"]
    assert replay.unmatched == []


async def test_the_share_may_lie_deeper_in_the_owners_space_than_the_links_first_folder(
    jp_fetch, space
):
    (space / "Shares/class-2026/week-1").mkdir(parents=True)
    (space / "Shares/class-2026/week-1/notes.md").write_text("notes")
    r = await open_page(jp_fetch, path="teaching/2026/class-2026/week-1/notes.md", owner="teacher")
    assert r.code == 302, r.body.decode()
    assert r.headers["Location"].endswith("/lab/tree/Shares/class-2026/week-1/notes.md")


async def test_the_api_answers_the_same_path_in_its_done_event(jp_fetch, space):
    (space / "Shares/class-2026").mkdir(parents=True)
    r = await jp_fetch(
        "swan",
        "api",
        "open",
        method="POST",
        body=json.dumps({"path": "class-2026", "owner": "teacher"}),
    )
    done = [json.loads(line) for line in r.body.decode().splitlines()][-1]
    assert (done["event"], done["path"]) == ("done", "Shares/class-2026")
    assert done["url"].endswith("/lab/tree/Shares/class-2026")


async def test_a_declined_share_gives_no_way_in(jp_fetch, space):
    # Reva lists teacher's old-course as declined (state 2)
    (space / "Shares/old-course").mkdir(parents=True)
    r = await open_page(jp_fetch, path="old-course/a.ipynb", owner="teacher")
    assert r.code == 403
    assert "Ask teacher to share it with you" in r.body.decode()


async def test_a_path_outside_every_share_of_its_owner_asks_to_have_it_shared(jp_fetch, space):
    r = await open_page(jp_fetch, path="private/thesis.ipynb", owner="teacher")
    assert r.code == 403
    assert "Ask teacher to share it with you" in r.body.decode()
    other = await open_page(jp_fetch, path="class-2026/exercise-1.ipynb", owner="zoe")
    assert other.code == 403
    assert "Ask zoe to share it with you" in other.body.decode()


async def test_a_shared_folder_without_the_linked_file_says_the_file_is_missing(jp_fetch, space):
    (space / "Shares/class-2026").mkdir(parents=True)
    r = await open_page(jp_fetch, path="class-2026/gone.ipynb", owner="teacher")
    assert r.code == 404
    assert "There is no /Shares/class-2026/gone.ipynb in your space" in r.body.decode()


@pytest.mark.parametrize("recording", ["owncloud10"])
async def test_a_share_waiting_for_an_answer_says_to_accept_it_first(jp_fetch, space, replay):
    # ownCloud 10 lists teacher's class-2026 as pending (state 1)
    r = await open_page(jp_fetch, path="class-2026/exercise-1.ipynb", owner="teacher")
    page = r.body.decode()
    assert r.code == 409
    assert "you have not accepted the share yet" in page
    assert "Shared with me" in page
    assert replay.unmatched == []


@pytest.mark.parametrize("recording", ["nextcloud"])
async def test_nextcloud_shares_accepted_and_pending_are_both_consulted(jp_fetch, space, replay):
    # Nextcloud lists accepted and pending shares apart: class-2026 accepted at /class-2026
    (space / "class-2026").mkdir()
    (space / "class-2026/exercise-1.ipynb").write_text("{}")
    r = await open_page(jp_fetch, path="class-2026/exercise-1.ipynb", owner="teacher")
    assert r.code == 302
    assert r.headers["Location"].endswith("/lab/tree/class-2026/exercise-1.ipynb")
    pending = await open_page(jp_fetch, path="physics-lab/lab.ipynb", owner="teacher")
    assert pending.code == 409
    assert len(replay.requests("GET", "/shares/pending")) == 2
    assert replay.unmatched == []


async def test_a_storage_that_cannot_list_shares_is_a_clear_refusal(jp_fetch, replay):
    replay.stop()
    r = await open_page(jp_fetch, path="class-2026/exercise-1.ipynb", owner="teacher")
    assert r.code == 503
    assert "could not say which shares you have" in r.body.decode()


async def test_accept_and_open_is_only_for_links_into_someone_elses_space(jp_fetch, replay):
    r = await jp_fetch(
        "swan",
        "open",
        method="POST",
        body="path=notes.md",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
        raise_error=False,
    )
    assert r.code == 400
    assert "has a share to accept" in r.body.decode()
    assert replay.requests("POST", "/shares/pending") == []
