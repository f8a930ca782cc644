"""Request bodies of /swan/api/ checked against openapi.yaml (swan_share_ext/request_bodies.py):
one sentence that names the field and what it must be, secrets never quoted back, null text read
as not sent, and the document read once."""

from __future__ import annotations

import pytest
import yaml
from tornado import web

from swan_share_ext import request_bodies
from swan_share_ext.request_bodies import (
    CLONE,
    LINKS,
    NEW_SHARE,
    OPEN,
    SHARE_CHANGES,
    TRASH_RESTORE,
    VERSION_RESTORE,
    check_body,
)

GROUP_SHARE = {"path": "class-2026", "kind": "group", "share_with": "class-2026"}


def refusal(body, pointer, **options) -> str:
    with pytest.raises(web.HTTPError) as refused:
        check_body(body, pointer, **options)
    assert refused.value.status_code == 400
    return refused.value.log_message


@pytest.mark.parametrize(
    "pointer", [NEW_SHARE, SHARE_CHANGES, CLONE, OPEN, LINKS, VERSION_RESTORE, TRASH_RESTORE]
)
def test_every_schema_the_handlers_check_against_is_in_the_document(pointer):
    with open(request_bodies.DOCUMENT, encoding="utf-8") as f:
        node = yaml.safe_load(f)
    for token in pointer.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    assert isinstance(node, dict)


@pytest.mark.parametrize(
    ("body", "pointer", "says"),
    [
        ([1, 2], NEW_SHARE, "The request body must be a JSON object"),
        ({**GROUP_SHARE, "kind": "everyone"}, NEW_SHARE, "kind must be one of user, group"),
        ({**GROUP_SHARE, "permissions": "15"}, NEW_SHARE, "permissions must be a whole number"),
        ({**GROUP_SHARE, "owner": "x", "team": "y"}, NEW_SHARE, "Unknown fields: owner, team"),
        ({"kind": "group"}, NEW_SHARE, "path must be the path of a file or folder in your space"),
        ({}, SHARE_CHANGES, "Nothing to change: send one of expiration, name, password"),
        ({"path": ["a"], "id": "v1"}, VERSION_RESTORE, 'path must be text; got ["a"]'),
        ({"path": "a.txt", "id": ""}, VERSION_RESTORE, "id must be text that is not empty"),
        ({"destination": 3}, CLONE, "destination must be the path of a folder in your space"),
    ],
)
def test_a_body_off_its_schema_gets_one_sentence_naming_the_field(body, pointer, says):
    assert says in refusal(body, pointer)


def test_a_field_that_was_sent_wrong_is_named_before_a_missing_one():
    assert refusal({"path": 7}, VERSION_RESTORE).startswith("path must be text; got 7")


def test_a_password_is_never_quoted_back():
    long_secret = "s3cret" * 50
    said = refusal({"path": "a", "kind": "link", "password": long_secret}, NEW_SHARE)
    assert said == "password must be text of at most 200 characters, on one line"
    assert "s3cret" not in refusal({"url": "https://example.org/a.zip", "password": 5}, OPEN)


def test_a_control_character_in_a_name_is_refused_and_a_long_value_is_quoted_short():
    said = refusal({**GROUP_SHARE, "share_with": "class\n2026" + "x" * 100}, NEW_SHARE)
    assert said.startswith("share_with must be text of at most 255 characters, on one line")
    assert len(said) < 160


def test_text_sent_as_null_counts_as_not_sent_and_other_nulls_do_not():
    body = {"path": "a", "kind": "link", "share_with": None, "expiration": None}
    assert check_body(body, NEW_SHARE) == {"path": "a", "kind": "link"}
    assert "permissions must be" in refusal({**GROUP_SHARE, "permissions": None}, NEW_SHARE)
    # a change may remove a link's password with null: the schema allows it there
    assert check_body({"password": None}, SHARE_CHANGES) == {"password": None}


def test_a_keyword_left_to_the_caller_is_not_checked_here():
    query = {"url": "https://github.com/a/b", "kind": "svn"}
    assert check_body(query, LINKS, left_to_caller=("enum",)) == query
    assert "kind must be one of git, file" in refusal(query, LINKS)


def test_the_document_is_read_once():
    request_bodies._document.cache_clear()
    for _ in range(3):
        check_body(GROUP_SHARE, NEW_SHARE)
        check_body({"id": "x"}, TRASH_RESTORE)
    assert request_bodies._document.cache_info().misses == 1
