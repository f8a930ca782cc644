"""The share REST API of /swan/api/ through a real jupyter-server, with its backend pointed at the
recorded Nextcloud answers replayed over HTTP: a teacher shares, changes and revokes; a student
accepts and clones; bad input is refused with a clear 4xx before the storage is asked."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Reply, notebook_body
from harness.ocs_replay import OCSReplay
from jsonschema import Draft202012Validator

OPENAPI = Path(__file__).resolve().parent.parent / "swan_share_ext" / "openapi.yaml"


def conforms(payload: Any, schema: str) -> bool:
    """Whether an answer matches a schema of the OpenAPI document (raises with the reason)."""
    components = yaml.safe_load(OPENAPI.read_text())["components"]
    ref = {"$ref": f"#/components/schemas/{schema}", "components": components}
    Draft202012Validator(ref).validate(payload)
    return True


@pytest.fixture
def replay():
    served = OCSReplay.load("nextcloud").start()
    yield served
    served.stop()


@pytest.fixture
def share_config(replay, tmp_path) -> dict[str, Any]:
    secret = tmp_path / "app-password"
    secret.write_text(replay.recording["credentials"]["password"])
    return {
        "url": replay.url,
        "api_version": "2",
        "username": replay.recording["credentials"]["user"],
        "password_file": str(secret),
    }


@pytest.fixture
def jp_server_config(share_config):
    return {
        "ServerApp": {
            "contents_manager_class": "swan_contents.SwanContentsManager",
            "jpserver_extensions": {"swan_share_ext": True},
        },
        "OCSShareBackend": share_config,
    }


@pytest.fixture
def space(jp_root_dir):
    """The user's space: a class folder with a notebook, and a folder of their own."""
    (jp_root_dir / "class-2026").mkdir()
    (jp_root_dir / "class-2026" / "exercise-1.ipynb").write_text(
        json.dumps(notebook_body("print('teacher')")["content"])
    )
    (jp_root_dir / "physics-lab").mkdir()
    (jp_root_dir / "my-work").mkdir()
    return jp_root_dir


@pytest.fixture
def swan(jp_fetch):
    """`await swan(method, "shares/7", body, **query)` on /swan/api/; never raises on errors."""

    async def call(method: str, endpoint: str, body: Any = None, **params: str) -> Reply:
        data = None if body is None else json.dumps(body)
        if data is None and method in ("POST", "PATCH"):
            data = ""
        r = await jp_fetch(
            "swan",
            "api",
            *endpoint.split("/"),
            method=method,
            body=data,
            params=params,
            raise_error=False,
        )
        return Reply.of(r)

    return call


GROUP_SHARE = {"path": "class-2026", "kind": "group", "share_with": "class-2026", "permissions": 1}


async def test_a_teacher_shares_a_folder_with_a_group_changes_it_and_revokes_it(
    swan, space, replay
):
    assert (await swan("GET", "shares", path="class-2026")).body == []

    created = await swan("POST", "shares", GROUP_SHARE)
    assert created.code == 201
    assert created.body["id"] == "7"
    assert created.body["share_with_name"] == "Class of 2026"

    assert conforms(created.body, "Share")
    listed = await swan("GET", "shares", path="class-2026")
    assert [s["id"] for s in listed.body] == ["7"]
    assert (await swan("GET", "shares/7")).body["permissions"] == 1

    changed = await swan("PATCH", "shares/7", {"permissions": 15})
    assert (changed.code, changed.body["permissions"]) == (200, 15)

    assert (await swan("DELETE", "shares/7")).code == 204
    assert (await swan("GET", "shares", path="class-2026")).body == []
    assert replay.unmatched == []


async def test_a_public_link_with_password_and_expiry_is_returned_without_the_password(swan, space):
    link = await swan(
        "POST",
        "shares",
        {
            "path": "class-2026",
            "kind": "link",
            "permissions": 1,
            "password": "Correct-Horse-7",
            "expiration": "2026-12-31",
            "name": "Students",
        },
    )
    assert link.code == 201, link.body
    assert link.body["url"] == "https://cloud.example.org/s/Kq8ZrD3bXf6yN2p"
    assert link.body["password_protected"] is True
    assert conforms(link.body, "Share")
    assert "Correct-Horse" not in json.dumps(link.body) and "$2y$" not in json.dumps(link.body)


YESTERDAY = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({**GROUP_SHARE, "kind": "everyone"}, "kind must be one of"),
        ({**GROUP_SHARE, "permissions": 0}, "permissions must be a whole number from 1 to 31"),
        ({**GROUP_SHARE, "permissions": 32}, "permissions must be a whole number from 1 to 31"),
        ({**GROUP_SHARE, "permissions": "15"}, "permissions must be a whole number"),
        ({**GROUP_SHARE, "permissions": True}, "permissions must be a whole number"),
        ({**GROUP_SHARE, "permissions": 4}, "must include read (1)"),
        (
            {**GROUP_SHARE, "kind": "link", "share_with": None, "expiration": "31/12/2026"},
            "YYYY-MM-DD",
        ),
        (
            {**GROUP_SHARE, "kind": "link", "share_with": None, "expiration": "2026-02-30"},
            "YYYY-MM-DD",
        ),
        (
            {**GROUP_SHARE, "kind": "link", "share_with": None, "expiration": YESTERDAY},
            "today or later",
        ),
        ({**GROUP_SHARE, "path": "../other-user/secret"}, "must not contain a '..' segment"),
        ({**GROUP_SHARE, "path": ""}, "the whole space cannot be"),
        ({**GROUP_SHARE, "share_with": ""}, "share_with must name the group"),
        ({**GROUP_SHARE, "share_with": "class\n2026"}, "share_with must be text"),
        ({**GROUP_SHARE, "kind": "link"}, "A public link is shared with nobody"),
        ({**GROUP_SHARE, "password": "secret"}, "Only a public link has a password"),
        ({**GROUP_SHARE, "kind": "federated", "share_with": "alice"}, "user@server"),
        ({**GROUP_SHARE, "owner": "someone-else"}, "Unknown fields: owner"),
    ],
)
async def test_malformed_shares_get_a_clear_400_and_the_storage_is_not_asked(
    swan, space, replay, body, says
):
    refused = await swan("POST", "shares", body)
    assert refused.code == 400
    assert says in refused.message
    assert replay.requests() == []


async def test_a_body_that_is_not_a_json_object_is_refused(swan, space, replay):
    for body in ([1, 2], "text"):
        refused = await swan("POST", "shares", body)
        assert (refused.code, refused.message) == (400, "The request body must be a JSON object")
    assert replay.requests() == []


async def test_an_oversized_body_is_refused_unread(swan, space, replay):
    refused = await swan("POST", "shares", {**GROUP_SHARE, "name": "x" * 70_000})
    assert (refused.code, refused.message) == (413, "The request body is larger than 65536 bytes")
    assert replay.requests() == []


async def test_sharing_a_path_missing_from_the_space_is_404_before_the_storage_is_asked(
    swan, space, replay
):
    refused = await swan("POST", "shares", {**GROUP_SHARE, "path": "not-here"})
    assert (refused.code, refused.message) == (404, "No such file or folder: /not-here")
    assert replay.requests() == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            {"path": "class-2026", "kind": "user", "share_with": "nobody"},
            "The storage refused: Please specify a valid user",
        ),
        (
            {"path": "physics-lab", "kind": "user", "share_with": "student2", "permissions": 15},
            "The storage refused: Cannot increase permissions of /physics-lab",
        ),
        (
            {"path": "class-2026", "kind": "link", "expiration": "2099-01-01"},
            "The storage refused: Cannot set expiration date more than 7 days in the future",
        ),
    ],
)
async def test_what_the_storage_refuses_reaches_the_user_in_its_words(swan, space, body, says):
    refused = await swan("POST", "shares", body)
    assert refused.code == 404
    assert refused.message == says


async def test_changing_a_share_checks_the_fields_and_an_unknown_share_is_404(swan, space):
    assert (await swan("PATCH", "shares/7", {"password": "x"})).message.startswith(
        "Cannot change password of a group share"
    )
    assert (await swan("PATCH", "shares/7", {})).code == 400
    assert (await swan("PATCH", "shares/7", {"permissions": 64})).code == 400
    missing = await swan("GET", "shares/999")
    assert (missing.code, missing.message) == (
        404,
        "The storage refused: Wrong share ID, share doesn't exist",
    )


async def test_shared_with_me_lists_accepted_and_pending_shares(swan, space):
    everything = await swan("GET", "shared-with-me")
    assert [(s["id"], s["state"], s["location"]) for s in everything.body] == [
        ("21", "accepted", "class-2026"),
        ("22", "pending", "physics-lab"),
    ]
    assert all(conforms(s, "Share") for s in everything.body)
    pending = await swan("GET", "shared-with-me", state="pending")
    assert [s["id"] for s in pending.body] == ["22"]
    wrong = await swan("GET", "shared-with-me", state="maybe")
    assert wrong.code == 400 and "state must be one of" in wrong.message


async def test_a_student_accepts_then_clones_a_share_inside_the_storage(swan, space, replay):
    accepted = await swan("POST", "shared-with-me/22/accept")
    assert (accepted.code, accepted.body["state"]) == (200, "accepted")

    clone = await swan("POST", "shared-with-me/21/clone", {"destination": "my-work"})
    assert clone.code == 201, clone.body
    assert clone.body["path"] == "my-work/class-2026"
    copied = space / "my-work" / "class-2026" / "exercise-1.ipynb"
    original = space / "class-2026" / "exercise-1.ipynb"
    assert copied.read_text() == original.read_text()

    again = await swan("POST", "shared-with-me/21/clone", {"destination": "my-work"})
    assert again.body["path"] == "my-work/class-2026-Copy1"  # never over the first clone
    assert replay.unmatched == []


async def test_only_an_accepted_share_the_user_still_has_can_be_cloned(swan, space):
    pending = await swan("POST", "shared-with-me/22/clone", {"destination": "my-work"})
    assert (pending.code, pending.message) == (409, "Accept the share 22 before you clone it")
    revoked = await swan("POST", "shared-with-me/7/clone", {})
    assert revoked.code == 404 and "may have been revoked" in revoked.message
    nowhere = await swan("POST", "shared-with-me/21/clone", {"destination": "no-such-folder"})
    assert (nowhere.code, nowhere.message) == (404, "No such folder to clone into: /no-such-folder")
    escape = await swan("POST", "shared-with-me/21/clone", {"destination": "../elsewhere"})
    assert escape.code == 400


async def test_declining_a_share_asks_the_storage_to_drop_it(swan, space, replay):
    assert (await swan("POST", "shared-with-me/21/decline")).code == 204
    assert [(s.method, s.path.rsplit("/api/v1", 1)[1]) for s in replay.requests()] == [
        ("DELETE", "/shares/21")
    ]


async def test_sharee_search_answers_people_and_groups(swan, space, replay):
    found = await swan("GET", "sharees", search="class", item_type="folder")
    assert [(s["kind"], s["share_with"]) for s in found.body] == [
        ("group", "class-2026"),
        ("user", "student1"),
        ("group", "class-2025"),
    ]
    assert all(conforms(s, "Sharee") for s in found.body)
    assert (await swan("GET", "sharees", search="  ")).body == []
    assert (await swan("GET", "sharees", search="x", item_type="disk")).code == 400
    assert len(replay.requests()) == 1


async def test_a_share_id_is_one_path_segment_all_the_way_to_the_storage(raw_fetch, space, replay):
    reply = await raw_fetch("GET", "/swan/api/shares/..%2F..%2F..%2Fcloud%2Fusers")
    assert reply.code == 503
    (seen,) = replay.requests()
    assert seen.path.endswith("/api/v1/shares/..%2F..%2F..%2Fcloud%2Fusers")


async def test_the_api_answers_only_requests_carrying_the_servers_token(
    http_server_client, jp_base_url, space, replay
):
    for method, body in (("GET", None), ("POST", json.dumps(GROUP_SHARE))):
        r = await http_server_client.fetch(
            jp_base_url.rstrip("/") + "/swan/api/shares",
            method=method,
            body=body,
            raise_error=False,
        )
        assert r.code == 403
    assert replay.requests() == []


class TestWithoutASharingService:
    @pytest.fixture
    def share_config(self, replay):
        return {"url": ""}

    async def test_the_share_api_says_sharing_is_not_set_up(self, swan, space):
        reply = await swan("GET", "shares")
        assert reply.code == 503
        assert "Sharing is not set up on this server" in reply.message


class TestWithTheStorageDown:
    @pytest.fixture
    def share_config(self, replay):
        replay.stop()
        return {"url": replay.url, "dialect": "nextcloud", "timeout": 5.0}

    async def test_an_unreachable_storage_is_a_503_that_says_nothing_changed(self, swan, space):
        reply = await swan("POST", "shares", GROUP_SHARE)
        assert reply.code == 503
        assert "cannot be reached" in reply.message and "nothing was changed" in reply.message
