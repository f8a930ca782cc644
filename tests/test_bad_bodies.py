"""A request body that is not UTF-8, not JSON, or JSON of the wrong shape gets a 400 that says
what is wrong, on every route of the user's server that reads one, and changes nothing.

It runs a real jupyter-server with SwanContentsManager on a folder and the swan_share_ext
extension; the share routes answer before any share backend is asked."""

from __future__ import annotations

import json

import pytest
from harness.open_servers import server_config

NOT_UTF8 = '{"path": "caf\xe9.ipynb"}'.encode("latin-1")
NOT_JSON = b"{'path': 'a.ipynb'"

#: (route id, method, URL parts, a body of the wrong shape for that route)
ROUTES = [
    ("open", "POST", ("swan", "api", "open"), [["url", "https://github.com/a/b"]]),
    ("links", "POST", ("swan", "api", "links"), {"path": 7}),
    ("version-restore", "POST", ("swan", "api", "versions", "restore"), {"path": ["a"]}),
    ("trash-restore", "POST", ("swan", "api", "trash", "restore"), {"id": 12}),
    ("share-create", "POST", ("swan", "api", "shares"), ["kind", "user"]),
    ("share-change", "PATCH", ("swan", "api", "shares", "12"), "read"),
    ("merge", "POST", ("swan", "api", "merge"), {"path": "kept.ipynb", "base": 5, "mine": {}}),
    ("contents-put", "PUT", ("api", "contents", "kept.txt"), {"type": "file", "content": 5}),
    ("contents-patch", "PATCH", ("api", "contents", "kept.txt"), ["moved.txt"]),
    ("contents-post", "POST", ("api", "contents", ""), {"type": "notebook", "ext": 1}),
]
BODIES = {"not-utf8": (NOT_UTF8, "UTF-8"), "not-json": (NOT_JSON, "not JSON")}


@pytest.fixture
def jp_server_config(space, tmp_path):
    return server_config(space, tmp_path, allowed_hosts=["github.com"])


@pytest.fixture
def kept(space):
    (space / "kept.txt").write_text("the stored file\n")
    return space / "kept.txt"


def names(space) -> list[str]:
    return sorted(p.name for p in space.iterdir())


@pytest.mark.parametrize(
    ("method", "parts", "wrong_shape"), [r[1:] for r in ROUTES], ids=[r[0] for r in ROUTES]
)
@pytest.mark.parametrize("kind", ["not-utf8", "not-json", "wrong-shape"])
async def test_a_bad_request_body_is_a_400_that_says_why_and_changes_nothing(
    jp_fetch, space, kept, method, parts, wrong_shape, kind
):
    if kind == "wrong-shape":
        body, words = json.dumps(wrong_shape).encode(), "must be"
    else:
        body, words = BODIES[kind]
    r = await jp_fetch(*parts, method=method, body=body, raise_error=False)
    message = json.loads(r.body.decode())["message"]
    assert r.code == 400, message
    assert words in message
    assert kept.read_text() == "the stored file\n"
    assert names(space) == ["kept.txt"]
