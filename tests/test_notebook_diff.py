"""POST /swan/api/diff through a real jupyter-server on a folder and on real WebDAV servers: a
notebook compared with one of its versions, with its conflict copy and with unsaved content, and
every refusal a status and a sentence. Both sides are read through the contents manager.
"""

from __future__ import annotations

import pytest
from conftest import SERVER_HISTORY, swan_on_every_storage, text_body

from swan_share_ext import notebook_diff

manager, backend = swan_on_every_storage()


def cell(cell_id: str, source: str, outputs: list | None = None) -> dict:
    return {
        "id": cell_id,
        "cell_type": "code",
        "source": source,
        "metadata": {},
        "outputs": outputs or [],
        "execution_count": 1 if outputs else None,
    }


def notebook(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def body(*cells: dict) -> dict:
    return {"type": "notebook", "format": "json", "content": notebook(*cells)}


def stream(text: str) -> list:
    return [{"output_type": "stream", "name": "stdout", "text": text}]


FIRST = (
    cell("a", "import math\nx = 1\nprint(x)", stream("1\n")),
    cell("b", "# a cell the later version drops"),
    cell("c", "y = 2"),
)
SECOND = (
    cell("a", "import math\nx = 2\nprint(x)", stream("2\n")),
    cell("c", "y = 2"),
    cell("d", "z = math.pi"),
)


async def test_a_version_is_compared_cell_by_cell_with_the_current_notebook(api, swan_api, backend):
    await api("PUT", "ex.ipynb", body(*FIRST))
    await api("PUT", "ex.ipynb", body(*SECOND))
    code, listed = await swan_api("GET", "versions", path="ex.ipynb")
    oldest = listed["versions"][-1]["id"]  # the first content, on every storage
    code, diff = await swan_api("POST", "diff", {"path": "ex.ipynb", "version": oldest})
    assert code == 200, diff
    assert diff["against"] == {"version": oldest} and diff["diff"]  # nbdime's own diff too
    assert [c["source"] for c in diff["base"]["cells"]] == [c["source"] for c in SECOND]
    # from the current notebook to the version: a restore would bring b back and drop d
    statuses = [(c["status"], c["lines"][0][1]) for c in diff["cells"]]
    assert statuses == [
        ("changed", "import math"),
        ("added", "# a cell the later version drops"),
        ("unchanged", "y = 2"),
        ("removed", "z = math.pi"),
    ]
    changed = diff["cells"][0]
    assert changed["lines"] == [
        [" ", "import math"],
        ["-", "x = 2"],
        ["+", "x = 1"],
        [" ", "print(x)"],
    ]
    assert changed["outputs_changed"] is True and changed["metadata_changed"] is False


async def test_a_notebook_is_compared_with_its_conflict_copy(api, swan_api):
    mine = await api("PUT", "nb.ipynb", body(cell("a", "x = 1")))
    await api("PUT", "nb.ipynb", body(cell("a", "x = 'theirs'")))
    copy = await api(
        "PUT",
        "nb.ipynb",
        {**body(cell("a", "x = 'mine'")), "etag": mine.body["etag"], "on_conflict": "copy"},
    )
    code, diff = await swan_api("POST", "diff", {"path": "nb.ipynb", "other": copy.body["path"]})
    assert code == 200, diff
    assert diff["against"] == {"other": copy.body["path"]}
    [changed] = diff["cells"]
    assert changed["lines"] == [["-", "x = 'theirs'"], ["+", "x = 'mine'"]]


async def test_unsaved_content_is_compared_with_the_stored_notebook(api, swan_api):
    await api("PUT", "nb.ipynb", body(cell("a", "x = 1")))
    unsaved = notebook(cell("a", "x = 1"), cell("b", "more = True"))
    code, diff = await swan_api("POST", "diff", {"path": "nb.ipynb", "content": unsaved})
    assert code == 200, diff
    assert [c["status"] for c in diff["cells"]] == ["unchanged", "added"]
    code, same = await swan_api("POST", "diff", {"path": "nb.ipynb", "content": unsaved})
    assert same["diff"] == diff["diff"]  # it changed nothing


async def test_what_cannot_be_compared_is_refused_with_a_sentence(api, swan_api):
    await api("PUT", "nb.ipynb", body(cell("a", "x = 1")))
    await api("PUT", "a.txt", text_body("text"))
    await api("PUT", "d.ipynb", {"type": "directory"})

    async def refused(request: dict) -> tuple[int, str]:
        code, answer = await swan_api("POST", "diff", request)
        assert answer and answer["message"], (code, answer)
        return code, answer["message"]

    code, message = await refused({"path": "nb.ipynb", "version": "swan-nope"})
    assert code == 404 and "version" in message
    code, message = await refused({"path": "missing.ipynb", "other": "nb.ipynb"})
    assert code == 404
    code, message = await refused({"path": "nb.ipynb", "other": "a.txt"})
    assert code == 400 and "not a notebook" in message
    code, message = await refused({"path": "a.txt", "content": notebook()})
    assert code == 400 and "not a notebook" in message
    code, message = await refused({"path": "nb.ipynb", "other": "d.ipynb"})
    assert code == 400 and "not a notebook" in message
    code, message = await refused({"path": "../outside.ipynb", "other": "nb.ipynb"})
    assert code in (400, 404)
    code, message = await refused({"path": "nb.ipynb", "other": "../../etc/x.ipynb"})
    assert code in (400, 404)
    code, message = await refused({"path": "nb.ipynb", "content": {"cells": "nope"}})
    assert code == 400 and "not a valid notebook" in message
    code, message = await refused({"path": "nb.ipynb"})
    assert code == 400 and "exactly one" in message
    code, message = await refused({"path": "nb.ipynb", "other": "nb.ipynb", "version": "x"})
    assert code == 400 and "exactly one" in message
    assert (await swan_api("POST", "diff", ["nb.ipynb"]))[0] == 400


async def test_a_notebook_too_large_is_refused_before_it_is_read(
    api, swan_api, monkeypatch, backend
):
    await api("PUT", "small.ipynb", body(cell("a", "x = 1")))
    await api("PUT", "big.ipynb", body(cell("a", "x = 1" + " " * 4000)))
    monkeypatch.setattr(notebook_diff, "MAX_BYTES", 2000)
    code, answer = await swan_api("POST", "diff", {"path": "big.ipynb", "other": "small.ipynb"})
    assert code == 413 and "too large to compare" in answer["message"]
    code, answer = await swan_api("POST", "diff", {"path": "small.ipynb", "other": "big.ipynb"})
    assert code == 413 and "/big.ipynb" in answer["message"]
    unsaved = notebook(cell("a", "y" * 4000))
    code, answer = await swan_api("POST", "diff", {"path": "small.ipynb", "content": unsaved})
    assert code == 413 and "The notebook sent" in answer["message"]
    if backend not in SERVER_HISTORY:
        await api("PUT", "small.ipynb", body(cell("a", "y" * 4000)))
        await api("PUT", "small.ipynb", body(cell("a", "x = 2")))
        code, listed = await swan_api("GET", "versions", path="small.ipynb")
        big = listed["versions"][1]["id"]
        code, answer = await swan_api("POST", "diff", {"path": "small.ipynb", "version": big})
        assert code == 413 and "That version" in answer["message"]


@pytest.mark.parametrize("token", [None, "wrong"])
@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("diff", '{"path": "nb.ipynb", "other": "x.ipynb"}'),
        ("merge", '{"path": "nb.ipynb", "base": {}, "mine": {}}'),  # tests/test_notebook_merge.py
    ],
)
async def test_a_request_without_the_users_token_is_refused(
    http_server_client, jp_base_url, token, endpoint, body
):
    headers = {"Authorization": f"token {token}"} if token else {}
    r = await http_server_client.fetch(
        jp_base_url.rstrip("/") + f"/swan/api/{endpoint}",
        method="POST",
        body=body,
        headers=headers,
        raise_error=False,
    )
    assert r.code in (401, 403)
