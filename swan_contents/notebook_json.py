"""`notebook_bytes(nb)`: a notebook's file exactly as the stock contents manager writes it
(`nbformat.writes(nb, version=NO_CONVERT)`, a final newline, UTF-8), in a fraction of the time
for notebooks with long cells or outputs.

nbformat stores multi-line strings as lists of lines, indented one space per level, and only
Python's pure-Python JSON encoder indents: it splits each long text into one string per line and
handles each line with several Python calls, which for a 1 MB cell of code is most of a save's
own work (10 MB: 100-180 ms). Here a text nbformat would split is written in a few calls over the
whole text instead: as UTF-8, its backslashes and quotes escaped, and each line break replaced by
the break's escape plus what nbformat puts between two lines. That is only right for a text whose
one line break is `\\n` and which holds no other character JSON escapes; any other text, and any
list of strings already in the notebook, goes through the C escaper a list at a time (its lines
joined by a character that occurs in none of them). Everything else (dicts, numbers, short
values) is written by a small walk with nbformat's layout.

What is written must not change by a byte (a save would otherwise show as a change to every sync
client and in every diff): the tests compare this with nbformat on generated notebooks full of
what JSON escapes or `str.splitlines` breaks at; anything unusual (keys that are not strings,
values JSON has no type for, a notebook of another major version) is written by nbformat itself.

`read_notebook(text)` is `nbformat.reads(text, as_version=4)` without its walk over every value
of the file (`from_dict`, a Python call per line of every cell, 5 ms a MB): JSON objects become
`NotebookNode`s as they are decoded, and lines are then joined by nbformat's own
`rejoin_lines`.
"""

from __future__ import annotations

import copy
import math
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import rwbase
from nbformat.v4.rwbase import rejoin_lines, strip_transient
from traitlets.log import get_logger

# Characters `encode_basestring` leaves unchanged; one not in a list's lines marks where they
# join (the ASCII escaper would escape all three).
_MARKS = ("\x7f", "\uffff", "\U0010ffff")
# What JSON escapes, but the line break: bytes a text written in one piece must not hold.
_ESCAPED_BUT_NEWLINE = bytes(c for c in range(0x20) if c != 0x0A)
# Media types nbformat splits into lines besides text/* (a private name of nbformat's; its value
# in nbformat 5.11 should the name go).
_SPLIT_MIMES = getattr(rwbase, "_non_text_split_mimes", {"application/javascript", "image/svg+xml"})
# Line breaks of `str.splitlines` beyond `\n` and the control characters above.
_OTHER_BREAKS = ("\x85", "\u2028", "\u2029")


class _Unusual(Exception):
    """Something nbformat's encoder may write otherwise than this one: let nbformat write it."""


class _Lines:
    """A text nbformat writes as the list of its lines (`text.splitlines(True)`)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def notebook_bytes(nb: Any, capture_validation_error: dict[str, Any] | None = None) -> bytes:
    """What the stock manager stores for `nb`: `nbformat.writes(nb, version=NO_CONVERT,
    capture_validation_error=...)` ending in a newline, as UTF-8."""
    version, _ = nbformat.reader.get_version(nb)
    if version != 4:
        text = nbformat.writes(
            nb, version=nbformat.NO_CONVERT, capture_validation_error=capture_validation_error
        )
        return _file(text)
    _validate(nb, capture_validation_error)
    # what nbformat's v4 writer does before its json.dumps (its copy keeps `nb` as it was)
    stored = strip_transient(_mark_lines(copy.deepcopy(nb)))
    out: list[bytes] = []
    try:
        _write(stored, 0, out)
    except _Unusual:
        return _file(nbformat.v4.writes(nb))
    out.append(b"\n")
    return b"".join(out)


def read_notebook(text: str, capture_validation_error: dict[str, Any] | None = None) -> Any:
    """`nbformat.reads(text, as_version=4, capture_validation_error=...)`."""
    nb = nbformat.reader.parse_json(text, object_hook=NotebookNode)
    major, _ = nbformat.reader.get_version(nb)
    if major != 4:
        return nbformat.reads(text, as_version=4, capture_validation_error=capture_validation_error)
    try:  # what nbformat's v4 reader does after its from_dict
        nb = strip_transient(rejoin_lines(nb))
    except AttributeError as e:
        raise nbformat.ValidationError(
            f"The notebook is invalid and is missing an expected key: {e}"
        ) from None
    _validate(nb, capture_validation_error)
    return nb


def _validate(nb: Any, capture_validation_error: dict[str, Any] | None) -> None:
    """nbformat's validation as its `reads` and `writes` do it: an invalid notebook is logged,
    its error kept in `capture_validation_error`, and it is read or written all the same."""
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        get_logger().error("Notebook JSON is invalid: %s", e)
        if isinstance(capture_validation_error, dict):
            capture_validation_error["ValidationError"] = e


def _file(text: str) -> bytes:
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def _mark_lines(nb: Any) -> Any:
    """`nbformat.v4.rwbase.split_lines(nb)`, the same texts marked instead of split."""
    for cell in nb.cells:
        source = cell.get("source", None)
        if isinstance(source, str):
            cell["source"] = _Lines(source)
        attachments = cell.get("attachments", {})
        for attachment in attachments.values():
            _mark_bundle(attachment)
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.output_type in {"execute_result", "display_data"}:
                    _mark_bundle(output.get("data", {}))
                elif output.output_type == "stream" and isinstance(output.text, str):
                    output.text = _Lines(output.text)
    return nb


def _mark_bundle(data: dict[str, Any]) -> None:
    """`nbformat.v4.rwbase._split_mimebundle(data)`, marking."""
    for key, value in list(data.items()):
        if isinstance(value, str) and (key.startswith("text/") or key in _SPLIT_MIMES):
            data[key] = _Lines(value)


def _escaped(text: str) -> str:
    """`text` as a JSON string, as nbformat writes it (non-ASCII characters kept)."""
    # for ASCII text without DEL (which only the ASCII escaper escapes) both give the same, and
    # the ASCII one is faster
    if text.isascii() and "\x7f" not in text:
        return encode_basestring_ascii(text)
    return encode_basestring(text)


def _write(value: Any, depth: int, out: list[bytes]) -> None:
    if isinstance(value, str):
        out.append(_escaped(value).encode("utf-8"))
    elif isinstance(value, dict):
        if not value:
            out.append(b"{}")
            return
        inner = b"\n" + b" " * (depth + 1)
        separator = b"{" + inner
        try:
            keys = sorted(value)
        except TypeError:  # keys that do not compare
            raise _Unusual from None
        for key in keys:
            if not isinstance(key, str):
                raise _Unusual
            out.append(separator + _escaped(key).encode("utf-8") + b": ")
            separator = b"," + inner
            _write(value[key], depth + 1, out)
        out.append(b"\n" + b" " * depth + b"}")
    elif type(value) is _Lines:
        if not _write_text(value.text, depth, out):
            _write(value.text.splitlines(True), depth, out)
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append(b"[]")
            return
        inner = "\n" + " " * (depth + 1)
        lines = _lines(value, "," + inner)
        if lines is not None:
            out.append(f"[{inner}{lines}\n{' ' * depth}]".encode())
            return
        separator, between = ("[" + inner).encode(), ("," + inner).encode()
        for item in value:
            out.append(separator)
            separator = between
            _write(item, depth + 1, out)
        out.append(b"\n" + b" " * depth + b"]")
    elif value is None or value is True or value is False:
        out.append(b"null" if value is None else b"true" if value else b"false")
    elif isinstance(value, int):
        out.append(int.__repr__(value).encode())
    elif isinstance(value, float):
        out.append(_float(value).encode())
    else:
        raise _Unusual


def _write_text(text: str, depth: int, out: list[bytes]) -> bool:
    """Write `text` as the list of its lines in one piece, if it is a text that can be (its one
    line break `\\n`, nothing else JSON escapes but backslashes and quotes); else False."""
    if not text or (not text.isascii() and any(b in text for b in _OTHER_BREAKS)):
        return False
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (refused below, as UTF-8 has none)
        return False
    if len(data.translate(None, _ESCAPED_BUT_NEWLINE)) != len(data):
        return False
    inner = b"\n" + b" " * (depth + 1)
    last_break = data.endswith(b"\n")
    if last_break:
        data = data[:-1]
    data = (
        data.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b'\\n",' + inner + b'"')
    )
    out.extend(
        (b"[", inner, b'"', data, b'\\n"' if last_break else b'"', b"\n", b" " * depth, b"]")
    )
    return True


def _float(value: float) -> str:
    """As Python's JSON encoder writes a float (nbformat allows NaN and infinities)."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _lines(items: list[Any] | tuple[Any, ...], separator: str) -> str | None:
    """A list of strings as its JSON items joined by `separator`, escaped in one call; None for
    a list holding anything else, or each mark among its strings."""
    for mark in _MARKS:
        try:
            joined = mark.join(items)
        except TypeError:  # not all strings
            return None
        if joined.count(mark) == len(items) - 1:
            return encode_basestring(joined).replace(mark, '"' + separator + '"')
    return None
