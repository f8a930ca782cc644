"""POST /swan/api/diff: a notebook-aware diff (nbdime's) of a notebook against one of its versions,
another notebook, or content the browser holds, and a cell-by-cell reading of it for people.
POST /swan/api/merge: nbdime's three-way merge of the browser's notebook with the stored one.

Stored notebooks are read through the contents manager, never from a local path, so it works on
every storage; a notebook above `MAX_BYTES` is refused with a sentence. Diffs and merges run in a
thread, off the event loop. Neither changes anything: the browser saves a merge itself.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from typing import Any, NamedTuple

import nbformat
from jupyter_server.auth.decorator import authorized
from tornado import web

from .request_bodies import NOTEBOOK_DIFF, NOTEBOOK_MERGE
from .storage_api import StorageAPIHandler

#: The largest notebook compared here (a diff of two such notebooks takes seconds of CPU).
MAX_BYTES = 20 * 1024 * 1024
#: What a notebook can be compared with, in the request body.
AGAINST = ("version", "other", "content")


def _too_large(what: str, size: int, doing: str = "compare") -> web.HTTPError:
    return web.HTTPError(
        413,
        f"{what} is {size / 2**20:.1f} MiB, too large to {doing} here (the limit is "
        f"{MAX_BYTES // 2**20} MiB); download both and {doing} them on your computer.",
    )


def _not_a_notebook(path: str, doing: str) -> web.HTTPError:
    return web.HTTPError(400, f"/{path} is not a notebook; only notebooks can be {doing}d.")


class Side(NamedTuple):
    """One side of a comparison as read."""

    #: JSON text, or a notebook as a JSON object
    data: Any
    #: what it is called in a refusal ("/a.ipynb", "That version of /a.ipynb")
    what: str
    #: the stored version it was read at, for a stored notebook
    etag: str | None = None


def _notebook(side: Side, doing: str = "compare") -> nbformat.NotebookNode:
    """A side as a version-4 notebook; 400 when it is none (CPU work: in the thread)."""
    data, what = side.data, side.what
    try:
        text = data if isinstance(data, str) else json.dumps(data)
        if len(text) > MAX_BYTES:
            raise _too_large(what, len(text), doing)
        notebook = nbformat.reads(text, as_version=4)
        if not isinstance(notebook.get("cells"), list):
            raise ValueError("no cells")
    except (ValueError, TypeError, AttributeError, KeyError, nbformat.ValidationError) as e:
        raise web.HTTPError(
            400, f"{what} is not a valid notebook, so it cannot be {doing}d."
        ) from e
    return notebook


async def read_notebook(contents_manager: Any, path: str, doing: str = "compare") -> Side:
    """The stored notebook at `path`, its size checked before its content is read."""
    path = path.strip("/")
    if not path.endswith(".ipynb"):
        raise _not_a_notebook(path, doing)
    stat = await contents_manager.get(path, content=False)
    if stat["type"] != "notebook":
        raise _not_a_notebook(path, doing)
    if (stat.get("size") or 0) > MAX_BYTES:
        raise _too_large(f"/{path}", stat["size"], doing)
    # its text: parsed once, with the diff, in the thread (not by the manager, on the loop)
    model = await contents_manager.get(path, content=True, type="file", format="text")
    return Side(model["content"], f"/{path}", model.get("etag"))


async def read_version(contents_manager: Any, path: str, version_id: str) -> Side:
    """The version `version_id` of the notebook at `path`."""
    path = path.strip("/")
    if not path.endswith(".ipynb"):
        raise _not_a_notebook(path, "compare")
    data = await contents_manager.read_version(path, version_id)
    if len(data) > MAX_BYTES:
        raise _too_large(f"That version of /{path}", len(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise web.HTTPError(400, f"That version of /{path} is not a valid notebook.") from e
    return Side(text, f"That version of /{path}")


def _lines(source: Any) -> list[str]:
    text = "".join(source) if isinstance(source, list) else str(source or "")
    return text.splitlines()


def _marked(mark: str, cell: dict[str, Any]) -> list[list[str]]:
    return [[mark, line] for line in _lines(cell.get("source"))]


def _line_diff(before: dict[str, Any], after: dict[str, Any]) -> list[list[str]]:
    """The source lines of a changed cell, each marked " " (kept), "-" (removed), "+" (added)."""
    a, b = _lines(before.get("source")), _lines(after.get("source"))
    marked: list[list[str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            marked += [[" ", line] for line in a[i1:i2]]
            continue
        marked += [["-", line] for line in a[i1:i2]]
        marked += [["+", line] for line in b[j1:j2]]
    return marked


def _cell(status: str, cell: dict[str, Any], lines: list[list[str]], **more: Any) -> dict[str, Any]:
    return {"status": status, "cell_type": cell.get("cell_type", "code"), "lines": lines, **more}


def readable(base: nbformat.NotebookNode, diff: list[Any]) -> dict[str, Any]:
    """nbdime's `diff` of `base` read cell by cell: each cell added, removed, changed (with its
    source lines marked and whether its outputs or metadata changed) or unchanged, in the
    order nbdime matched them; and whether the notebook's own metadata changed."""
    from nbdime import patch

    cells_diff: list[Any] = []
    metadata_changed = False
    for entry in diff:
        if entry["key"] == "cells":
            cells_diff = entry["diff"]
        elif entry["key"] in ("metadata", "nbformat", "nbformat_minor"):
            metadata_changed = True
    cells: list[dict[str, Any]] = []
    old = base["cells"]
    i = 0
    for entry in cells_diff:
        while i < entry["key"]:
            cells.append(_cell("unchanged", old[i], _marked(" ", old[i])))
            i += 1
        if entry["op"] == "addrange":
            cells += [_cell("added", c, _marked("+", c)) for c in entry["valuelist"]]
        elif entry["op"] == "removerange":
            for c in old[i : i + entry["length"]]:
                cells.append(_cell("removed", c, _marked("-", c)))
            i += entry["length"]
        elif entry["op"] == "patch":
            new = patch(old[i], entry["diff"])
            keys = {e["key"] for e in entry["diff"]}
            cells.append(
                _cell(
                    "changed",
                    new,
                    _line_diff(old[i], new),
                    outputs_changed=bool(keys & {"outputs", "execution_count"}),
                    metadata_changed=bool(keys & {"metadata", "attachments", "cell_type"}),
                )
            )
            i += 1
    cells += [_cell("unchanged", c, _marked(" ", c)) for c in old[i:]]
    return {"cells": cells, "metadata_changed": metadata_changed}


def notebook_diff(left: nbformat.NotebookNode, right: nbformat.NotebookNode) -> dict[str, Any]:
    """nbdime's diff from `left` to `right` and its reading (CPU work: call it in a thread)."""
    from nbdime import diff_notebooks

    diff = diff_notebooks(left, right)
    return {"diff": diff, **readable(left, diff)}


def answer_text(path: str, against: dict[str, Any], left: Side, right: Side) -> str:
    """The JSON answer comparing two sides as read: parsed, diffed and written here, in a
    thread, so that a large notebook does not hold up the event loop."""
    base = _notebook(left)
    other = _notebook(right)
    try:
        answer = notebook_diff(base, other)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:
        raise web.HTTPError(
            400, f"/{path} and the other side could not be compared as notebooks ({e})."
        ) from e
    return json.dumps({"path": path, "against": against, "base": base, **answer}, default=str)


class NotebookDiffHandler(StorageAPIHandler):
    """POST /swan/api/diff {path, version | other | content}: what differs from the stored
    notebook at `path` to the other side (a version of it, another notebook, unsaved content)."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = self.checked_body(NOTEBOOK_DIFF)
        path = body["path"].strip("/")
        named = [key for key in AGAINST if key in body]
        if len(named) != 1:
            raise web.HTTPError(
                400,
                "Say what to compare the notebook with: exactly one of 'version', 'other' or "
                "'content'.",
            )
        cm = self.contents_manager
        left = await read_notebook(cm, path)
        if "version" in body:
            right = await read_version(cm, path, body["version"])
            against = {"version": body["version"]}
        elif "other" in body:
            other = body["other"].strip("/")
            right = await read_notebook(cm, other)
            against = {"other": other}
        else:
            if len(self.request.body) > MAX_BYTES:
                raise _too_large("The notebook sent", len(self.request.body))
            right = Side(body["content"], "The notebook sent")
            against = {"content": True}
        text = await asyncio.to_thread(answer_text, path, against, left, right)
        self.set_header("Content-Type", "application/json")
        self.finish(text)


def _merged_cell(decision: Any) -> int | None:
    """The number (from 1) of the cell of the starting notebook a merge decision is about, or
    before which its cells are inserted; None for the notebook's own metadata."""
    path = tuple(decision.common_path)
    if path[:1] != ("cells",):
        return None
    if len(path) > 1:
        return int(path[1]) + 1
    ops = [*(decision.local_diff or ()), *(decision.remote_diff or ())]
    return min(int(op["key"]) for op in ops) + 1 if ops else None


def merge_summary(decisions: list[Any]) -> list[dict[str, Any]]:
    """nbdime's merge decisions read for people: per cell of the starting notebook (`cell`,
    numbered from 1; null for the notebook's metadata), whose changes it takes (`by`: mine,
    theirs or both) and whether both changed it differently (`conflict`), in notebook order."""
    touched: dict[int | None, dict[str, Any]] = {}
    for decision in decisions:
        sides = {"mine"} if decision.local_diff else set()
        sides |= {"theirs"} if decision.remote_diff else set()
        entry = touched.setdefault(_merged_cell(decision), {"sides": set(), "conflict": False})
        entry["sides"] |= sides
        entry["conflict"] = entry["conflict"] or bool(decision.conflict)
    return [
        {
            "cell": cell,
            "by": "both" if len(entry["sides"]) != 1 else next(iter(entry["sides"])),
            "conflict": entry["conflict"],
        }
        for cell, entry in sorted(touched.items(), key=lambda item: (item[0] is None, item[0] or 0))
    ]


def merge_text(path: str, base: Side, mine: Side, theirs: Side) -> str:
    """The JSON answer merging `mine` and `theirs` from `base` with nbdime's inline strategy
    (a conflicting source gets <<<<<<< local (mine) / ======= / >>>>>>> remote (theirs)
    markers; conflicting inserted cells are set between marker cells): parsed, merged and
    written here, in a thread, so that a large notebook does not hold up the event loop."""
    from nbdime.merging import merge_notebooks

    notebooks = [_notebook(side, "merge") for side in (base, mine, theirs)]
    try:
        merged, decisions = merge_notebooks(*notebooks)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:
        raise web.HTTPError(
            400, f"Your notebook and /{path} could not be merged as notebooks ({e})."
        ) from e
    return json.dumps(
        {
            "path": path,
            "merged": merged,
            "conflicts": sum(1 for d in decisions if d.conflict),
            "etag": theirs.etag,
            "cells": merge_summary(decisions),
        },
        default=str,
    )


class NotebookMergeHandler(StorageAPIHandler):
    """POST /swan/api/merge {path, base, mine}: the notebook `mine` merged with the stored one at
    `path` (theirs), both changed from `base`; the stored version it merged with, to save over."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = self.checked_body(NOTEBOOK_MERGE)
        path = body["path"].strip("/")
        if len(self.request.body) > 2 * MAX_BYTES:
            raise web.HTTPError(
                413,
                f"The notebooks sent are {len(self.request.body) / 2**20:.1f} MiB together, too "
                f"large to merge here (the limit is {MAX_BYTES // 2**20} MiB each); keep both "
                "and merge them on your computer.",
            )
        theirs = await read_notebook(self.contents_manager, path, "merge")
        base = Side(body["base"], "The notebook both sides started from")
        mine = Side(body["mine"], "Your notebook")
        text = await asyncio.to_thread(merge_text, path, base, mine, theirs)
        self.set_header("Content-Type", "application/json")
        self.finish(text)
