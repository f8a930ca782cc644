"""Our notebook writer against nbformat's own: the same text, byte for byte, for every notebook
(a save must never show as a change to sync clients or in a diff). Compared on generated
notebooks full of what JSON escapes or splits lines at, and on the unusual ones handed back to
nbformat."""

from __future__ import annotations

import copy
import math
import random

import nbformat
import pytest
from nbformat import v3, v4

from swan_contents.notebook_json import notebook_bytes, read_notebook

#: characters a writer could get wrong: JSON's escapes, every line break `str.splitlines` knows,
#: the marks the writer joins lines with, non-ASCII of each width
TRICKY = [
    '"',
    "\\",
    "\\n",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\b",
    "\f",
    "\x00",
    "\x01",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x1f",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\uffff",
    "\ufffe",
    "\U0010ffff",
    "é",
    "€",
    "😀",
    "/",
    " ",
    "",
    "x = 1",
    "'swan'",
    "</script>",
    "\\u0041",
]


#: ... and those of texts whose only line break is "\n" (written in one piece)
PLAIN = [c for c in TRICKY if not any(ch < " " or ch in "\x85\u2028\u2029" for ch in c)]


def text(rng: random.Random, lines: int) -> str:
    alphabet = rng.choice([TRICKY, PLAIN])
    return "".join(
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) + rng.choice(["\n", ""])
        for _ in range(lines)
    )


def value(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "bool", "none", "list", "dict", "strings"]
    kind = rng.choice(kinds if depth < 3 else kinds[:5])
    if kind == "str":
        return text(rng, rng.randint(0, 3))
    if kind == "int":
        return rng.choice([0, -1, 7, 2**70, -(2**64)])
    if kind == "float":
        return rng.choice([0.0, -0.0, 0.1, 1e100, -2.5e-300, math.inf, -math.inf, math.nan])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "strings":
        return [text(rng, 1) for _ in range(rng.randint(0, 5))]
    if kind == "list":
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {text(rng, 1): value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def notebook(rng: random.Random) -> nbformat.NotebookNode:
    cells = []
    for _ in range(rng.randint(0, 6)):
        kind = rng.choice(["code", "markdown", "raw"])
        source = text(rng, rng.randint(0, 40))
        if kind == "code":
            cell = v4.new_code_cell(source, execution_count=rng.choice([None, 1, 42]))
            cell.outputs = [
                rng.choice(
                    [
                        lambda: v4.new_output("stream", name="stdout", text=text(rng, 30)),
                        lambda: v4.new_output(
                            "display_data",
                            data={
                                "text/plain": text(rng, 10),
                                "text/html": text(rng, 10),
                                "image/png": "iVBORw0KGgo=\n",
                                "application/json": value(rng),
                                "image/svg+xml": text(rng, 3),
                            },
                            metadata={"needs": value(rng)},
                        ),
                        lambda: v4.new_output(
                            "execute_result", data={"text/plain": text(rng, 2)}, execution_count=3
                        ),
                        lambda: v4.new_output(
                            "error", ename="E", evalue=text(rng, 1), traceback=[text(rng, 1)] * 3
                        ),
                    ]
                )()
                for _ in range(rng.randint(0, 3))
            ]
        elif kind == "markdown":
            cell = v4.new_markdown_cell(source)
            if rng.random() < 0.3:
                cell.attachments = {
                    "a.png": {"image/png": "iVBORw0KGgo=", "text/plain": text(rng, 3)}
                }
        else:
            cell = v4.new_raw_cell(source)
        cell.metadata = {text(rng, 1): value(rng) for _ in range(rng.randint(0, 3))}
        if rng.random() < 0.3:
            cell.metadata["trusted"] = True  # transient: never written
        cells.append(cell)
    nb = v4.new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    )
    nb.metadata["extra"] = value(rng)
    if rng.random() < 0.3:
        nb.metadata["signature"] = "sha256:00"  # transient: never written
    return nbformat.from_dict(nb)


def stock(nb, **options) -> bytes:
    """What jupyter-server's stock manager stores: nbformat.write's text, as UTF-8."""
    return (nbformat.writes(nb, version=nbformat.NO_CONVERT, **options) + "\n").encode("utf-8")


@pytest.mark.parametrize("seed", range(300))
def test_generated_notebooks_are_written_as_nbformat_writes_them(seed):
    nb = notebook(random.Random(seed))  # noqa: S311 - reproducible test data
    before = copy.deepcopy(nb)
    assert notebook_bytes(nb) == stock(nb)
    assert nb == before  # the notebook in memory is left as it was


def test_long_cells_and_outputs_split_into_lines_as_nbformat_splits_them():
    plain = "x = 'swan' * 8  # \"a\" line of code é 😀 \\n\n"
    tricky = "x = 'swan' * 8  # \"a\" line\tof code é\\n\r\n"
    nb = v4.new_notebook(
        cells=[
            v4.new_code_cell(
                text * 5000,
                outputs=[v4.new_output("stream", name="stdout", text="step 1\n" * 5000)],
            )
            for text in (plain, tricky, plain + "no break at the end")
        ]
    )
    assert notebook_bytes(nb) == stock(nb)


def test_a_mark_inside_the_lines_is_no_mark():
    for marks in (["\x7f"], ["\x7f", "\uffff"], ["\x7f", "\uffff", "\U0010ffff"]):
        nb = v4.new_notebook(cells=[v4.new_code_cell("".join(m + "\n" for m in marks) * 3)])
        assert notebook_bytes(nb) == stock(nb)


def test_an_invalid_notebook_is_written_and_its_error_captured_as_nbformat_does():
    nb = v4.new_notebook(cells=[v4.new_code_cell("1")])
    nb.cells[0]["unknown"] = "field"
    ours: dict = {}
    theirs: dict = {}
    assert notebook_bytes(nb, capture_validation_error=ours) == stock(
        nb, capture_validation_error=theirs
    )
    assert str(ours["ValidationError"]) == str(theirs["ValidationError"])


def test_what_json_writes_otherwise_goes_to_nbformat():
    nb = v4.new_notebook(cells=[v4.new_code_cell("a\nb")])
    nb.metadata["numbered"] = {1: "one", 2.5: "two and a half", False: "no"}
    nb.metadata["nothing"] = {None: "none"}
    nb.metadata["pair"] = ("a", 1)
    assert notebook_bytes(nb) == stock(nb)
    nb.metadata["mixed"] = {None: "none", "a": 1}
    with pytest.raises(TypeError):
        stock(nb)
    with pytest.raises(TypeError):
        notebook_bytes(nb)


def test_a_notebook_of_another_major_version_is_written_by_nbformat():
    nb = v3.new_notebook(worksheets=[v3.new_worksheet(cells=[v3.new_code_cell("a\nb")])])
    assert notebook_bytes(nb) == stock(nb)


def same_nodes(a, b) -> bool:
    """Equal, and NotebookNodes where the other has them."""
    if isinstance(a, dict):
        return (
            type(a) is type(b) and a.keys() == b.keys() and all(same_nodes(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return type(b) is list and len(a) == len(b) and all(map(same_nodes, a, b))
    return type(a) is type(b) and (a == b or (a != a and b != b))  # NaN is NaN here


@pytest.mark.parametrize("seed", range(100))
def test_notebooks_are_read_as_nbformat_reads_them(seed):
    text = stock(notebook(random.Random(seed))).decode()  # noqa: S311 - reproducible test data
    ours: dict = {}
    theirs: dict = {}
    assert same_nodes(
        read_notebook(text, capture_validation_error=ours),
        nbformat.reads(text, as_version=4, capture_validation_error=theirs),
    )
    assert str(ours.get("ValidationError")) == str(theirs.get("ValidationError"))


def test_what_nbformat_refuses_to_read_is_refused_alike():
    v3_text = nbformat.writes(
        v3.new_notebook(worksheets=[v3.new_worksheet(cells=[v3.new_code_cell("a\nb")])])
    )
    upgraded = [read_notebook(v3_text), nbformat.reads(v3_text, as_version=4)]
    for nb in upgraded:  # the upgrade gives cells random ids
        for cell in nb.cells:
            del cell["id"]
    assert same_nodes(*upgraded)
    for text in ("not json at all, but long enough to be cut short in the message", "[]", "{}"):
        with pytest.raises(Exception) as theirs:
            nbformat.reads(text, as_version=4)
        with pytest.raises(Exception) as ours:
            read_notebook(text)
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value) == str(theirs.value)
    invalid = stock(v4.new_notebook(cells=[v4.new_code_cell("1")])).decode()
    invalid = invalid.replace('"cell_type": "code",', '"cell_type": "code", "unknown": 1,')
    ours_error: dict = {}
    theirs_error: dict = {}
    read_notebook(invalid, capture_validation_error=ours_error)
    nbformat.reads(invalid, as_version=4, capture_validation_error=theirs_error)
    assert str(ours_error["ValidationError"]) == str(theirs_error["ValidationError"])
