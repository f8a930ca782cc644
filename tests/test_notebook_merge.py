"""POST /swan/api/merge through a real jupyter-server on a folder and on real WebDAV servers: the
browser's notebook merged with the stored one from the notebook both started from (nbdime's
three-way merge), conflicts marked in the merged notebook, and every refusal a status and a
sentence. The stored notebook is read through the contents manager; the merge saves nothing.
"""

from __future__ import annotations

import json

from conftest import swan_on_every_storage, text_body
from test_notebook_diff import body, cell, notebook

from swan_share_ext import notebook_diff

manager, backend = swan_on_every_storage()

BASE = (cell("a", "x = 1"), cell("b", "y = 2"))


async def stored_sources(api, path: str) -> list[str]:
    stored = await api("GET", path)
    return ["".join(c["source"]) for c in stored.body["content"]["cells"]]


async def test_edits_of_different_cells_merge_without_conflicts(api, swan_api, backend):
    await api("PUT", "nb.ipynb", body(*BASE))
    theirs = await api("PUT", "nb.ipynb", body(cell("a", "x = 1"), cell("b", "y = 'theirs'")))
    mine = notebook(cell("a", "x = 'mine'"), cell("b", "y = 2"))
    request = {"path": "nb.ipynb", "base": notebook(*BASE), "mine": mine}
    code, merge = await swan_api("POST", "merge", request)
    assert code == 200, merge
    assert merge["conflicts"] == 0
    assert [c["source"] for c in merge["merged"]["cells"]] == ["x = 'mine'", "y = 'theirs'"]
    assert merge["cells"] == [
        {"cell": 1, "by": "mine", "conflict": False},
        {"cell": 2, "by": "theirs", "conflict": False},
    ]
    # the version merged with, to save over; the merge itself saved nothing
    assert merge["etag"] == theirs.body["etag"]
    assert await stored_sources(api, "nb.ipynb") == ["x = 1", "y = 'theirs'"]
    saved = await api(
        "PUT", "nb.ipynb", {"type": "notebook", "content": merge["merged"], "etag": merge["etag"]}
    )
    assert saved.code == 200, saved.body
    assert await stored_sources(api, "nb.ipynb") == ["x = 'mine'", "y = 'theirs'"]


async def test_the_same_cell_changed_on_both_sides_is_one_conflict_marked_in_its_source(
    api, swan_api
):
    await api("PUT", "nb.ipynb", body(*BASE))
    await api("PUT", "nb.ipynb", body(cell("a", "x = 'theirs'"), cell("b", "y = 2")))
    mine = notebook(cell("a", "x = 'mine'"), cell("b", "y = 2"))
    request = {"path": "nb.ipynb", "base": notebook(*BASE), "mine": mine}
    code, merge = await swan_api("POST", "merge", request)
    assert code == 200, merge
    assert merge["conflicts"] == 1
    assert merge["cells"] == [{"cell": 1, "by": "both", "conflict": True}]
    first, second = merge["merged"]["cells"]
    assert first["source"] == "<<<<<<< local\nx = 'mine'\n=======\nx = 'theirs'\n>>>>>>> remote"
    assert second["source"] == "y = 2"
    assert await stored_sources(api, "nb.ipynb") == ["x = 'theirs'", "y = 2"]


async def test_cells_both_sides_insert_at_one_place_come_between_marker_cells(api, swan_api):
    await api("PUT", "nb.ipynb", body(*BASE))
    await api("PUT", "nb.ipynb", body(BASE[0], cell("t", "theirs = 1"), BASE[1]))
    mine = notebook(BASE[0], cell("m", "mine = 1"), BASE[1])
    request = {"path": "nb.ipynb", "base": notebook(*BASE), "mine": mine}
    code, merge = await swan_api("POST", "merge", request)
    assert code == 200, merge
    assert merge["conflicts"] == 1
    assert merge["cells"] == [{"cell": 2, "by": "both", "conflict": True}]
    kinds = [(c["cell_type"], c["source"]) for c in merge["merged"]["cells"]]
    assert kinds[0] == ("code", "x = 1") and kinds[-1] == ("code", "y = 2")
    assert ("code", "mine = 1") in kinds and ("code", "theirs = 1") in kinds
    assert [k for k, _ in kinds].count("markdown") == 3


async def test_the_same_change_on_both_sides_is_no_conflict(api, swan_api):
    await api("PUT", "nb.ipynb", body(*BASE))
    same = (cell("a", "x = 3"), BASE[1])
    await api("PUT", "nb.ipynb", body(*same))
    request = {"path": "nb.ipynb", "base": notebook(*BASE), "mine": notebook(*same)}
    code, merge = await swan_api("POST", "merge", request)
    assert code == 200, merge
    assert merge["conflicts"] == 0
    assert [c["source"] for c in merge["merged"]["cells"]] == ["x = 3", "y = 2"]
    assert merge["cells"] == [{"cell": 1, "by": "both", "conflict": False}]


async def test_what_cannot_be_merged_is_refused_with_a_sentence(api, swan_api, jp_fetch):
    await api("PUT", "nb.ipynb", body(*BASE))
    await api("PUT", "a.txt", text_body("text"))
    await api("PUT", "d.ipynb", {"type": "directory"})
    good = notebook(*BASE)

    async def refused(request: dict) -> tuple[int, str]:
        code, answer = await swan_api("POST", "merge", request)
        assert answer and answer["message"], (code, answer)
        return code, answer["message"]

    code, message = await refused({"path": "nb.ipynb", "mine": good})
    assert code == 400 and "base must be the notebook both sides started from" in message
    code, message = await refused({"path": "nb.ipynb", "base": good})
    assert code == 400 and "mine must be your notebook" in message
    code, message = await refused({"path": "nb.ipynb", "base": "x", "mine": good})
    assert code == 400 and "base must be" in message
    code, message = await refused({"path": "a.txt", "base": good, "mine": good})
    assert code == 400 and "only notebooks can be merged" in message
    code, message = await refused({"path": "d.ipynb", "base": good, "mine": good})
    assert code == 400 and "only notebooks can be merged" in message
    code, message = await refused({"path": "missing.ipynb", "base": good, "mine": good})
    assert code == 404
    code, message = await refused({"path": "../outside.ipynb", "base": good, "mine": good})
    assert code in (400, 404)
    code, message = await refused({"path": "nb.ipynb", "base": {"cells": "x"}, "mine": good})
    assert code == 400 and "both sides started from is not a valid notebook" in message
    code, message = await refused({"path": "nb.ipynb", "base": good, "mine": {"nbformat": 9}})
    assert code == 400 and "Your notebook is not a valid notebook" in message
    r = await jp_fetch("swan", "api", "merge", method="POST", body="{not json", raise_error=False)
    assert r.code == 400 and json.loads(r.body)["message"]
    assert await stored_sources(api, "nb.ipynb") == ["x = 1", "y = 2"]  # nothing lost


async def test_a_notebook_too_large_is_refused(api, swan_api, monkeypatch):
    await api("PUT", "small.ipynb", body(*BASE))
    await api("PUT", "big.ipynb", body(cell("a", "x = 1" + " " * 4000)))
    monkeypatch.setattr(notebook_diff, "MAX_BYTES", 2000)
    small, big = notebook(*BASE), notebook(cell("a", "y" * 2500))
    code, answer = await swan_api(
        "POST", "merge", {"path": "big.ipynb", "base": small, "mine": small}
    )
    assert code == 413 and "/big.ipynb" in answer["message"]
    assert "too large to merge" in answer["message"]
    code, answer = await swan_api(
        "POST", "merge", {"path": "small.ipynb", "base": small, "mine": big}
    )
    assert code == 413 and answer["message"].startswith("Your notebook is")
    huge = notebook(cell("a", "y" * 8000))
    code, answer = await swan_api(
        "POST", "merge", {"path": "small.ipynb", "base": huge, "mine": huge}
    )
    assert code == 413 and "together" in answer["message"]
