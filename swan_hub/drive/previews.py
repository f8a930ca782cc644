"""What the preview page of a file shows, by the file's type: notebooks and markdown rendered
by the renderer process (`render`), images as ``<img>``, the first rows of a CSV file, the
first kilobytes of a text file, and for anything else the file's facts.

It reads files only through descriptors `Spaces.open_file` opened, and returns plain values the
template escapes; it never builds HTML itself.
"""

from __future__ import annotations

import csv
import io
import mimetypes
import os
from dataclasses import dataclass, field
from typing import BinaryIO

#: the first bytes of a text file shown, and of a CSV file read for its first rows
TEXT_BYTES = 64 << 10
CSV_ROWS = 100
CSV_COLUMNS = 50
#: how the page shows each kind of file
NOTEBOOK, MARKDOWN, IMAGE, CSV, PDF, TEXT, OTHER = (
    "notebook",
    "markdown",
    "image",
    "csv",
    "pdf",
    "text",
    "other",
)
RENDERED_KINDS = (NOTEBOOK, MARKDOWN)
EXTENSIONS = {
    ".ipynb": NOTEBOOK,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".csv": CSV,
    ".tsv": CSV,
    ".pdf": PDF,
    **{ext: IMAGE for ext in (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".ico")},
    **dict.fromkeys(
        [
            *(".txt", ".py", ".r", ".jl", ".c", ".h", ".cc", ".cpp", ".hpp", ".java", ".js"),
            *(".ts", ".css", ".html", ".htm", ".xml", ".json", ".yaml", ".yml", ".toml"),
            *(".ini", ".cfg", ".conf", ".sh", ".bash", ".sql", ".tex", ".bib", ".log", ".rst"),
            *(".m", ".f90", ".go", ".rs"),
        ],
        TEXT,
    ),
}


def kind_of(name: str, head: bytes) -> str:
    """The kind of the file ``name`` whose first bytes are ``head``: by its extension, else
    text when those bytes read as UTF-8 text."""
    found = EXTENSIONS.get(os.path.splitext(name)[1].lower())
    if found:
        return found
    if head and b"\0" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start < len(head) - 4:  # not just a character cut at the end
                return OTHER
        return TEXT
    return OTHER


def content_type(name: str) -> str:
    """The media type the file ``name`` is served with to the preview page's ``<img>``."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass
class Excerpt:
    """The first part of a file, shown as text or as a table, and whether there is more."""

    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    more: bool = False


def text_excerpt(f: BinaryIO) -> Excerpt:
    data = f.read(TEXT_BYTES + 1)
    more = len(data) > TEXT_BYTES
    return Excerpt(text=data[:TEXT_BYTES].decode("utf-8", "replace"), more=more)


def csv_excerpt(f: BinaryIO, name: str) -> Excerpt:
    """The first rows of a CSV (or TSV) file as a header and rows of strings."""
    data = f.read(TEXT_BYTES + 1)
    more = len(data) > TEXT_BYTES
    text = data[:TEXT_BYTES].decode("utf-8", "replace")
    if more:  # the last line may be cut in the middle
        text = text.rsplit("\n", 1)[0]
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    try:
        rows = [row[:CSV_COLUMNS] for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
    except csv.Error:
        return Excerpt(text=text, more=more)
    if len(rows) > CSV_ROWS + 1:
        rows, more = rows[: CSV_ROWS + 1], True
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    return Excerpt(header=header, rows=body, more=more)
