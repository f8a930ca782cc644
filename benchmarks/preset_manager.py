"""A contents manager that keeps nothing, for measuring what jupyter-server itself costs per
request: the benchmarks run it beside ours so that each ratio says what it measures.

Never for real use: a listing answers a model read from a file, a save does to the notebook
exactly what every contents manager must (sign, validate, serialize: with our serializer, so that
what the storage adds is what the difference shows) and then drops the bytes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import nbformat
from jupyter_server.services.contents.manager import AsyncContentsManager
from traitlets import Unicode

from swan_contents.notebook_json import notebook_bytes


def _with_datetimes(model: dict[str, Any]) -> dict[str, Any]:
    """A model as a manager returns it: times as datetimes, which Jupyter's handler encodes."""
    for key in ("last_modified", "created"):
        model[key] = datetime.fromisoformat(model[key].replace("Z", "+00:00"))
    if model["type"] == "directory":
        for child in model["content"] or ():
            _with_datetimes(child)
    return model


class PresetContentsManager(AsyncContentsManager):
    """GET answers the directory model saved in `listing_file`; PUT encodes and drops."""

    listing_file = Unicode(config=True, help="A JSON file with the directory model GET answers.")

    _listing: dict[str, Any] | None = None

    async def get(self, path: str, content: bool = True, type=None, format=None, **kw) -> dict:
        if self._listing is None:
            with open(self.listing_file, encoding="utf-8") as f:
                self._listing = _with_datetimes(json.load(f))
        return self._listing

    async def file_exists(self, path: str = "") -> bool:
        return True

    async def dir_exists(self, path: str) -> bool:
        return path == ""

    async def is_hidden(self, path: str) -> bool:
        return False

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        nb = nbformat.from_dict(model["content"])
        self.check_and_sign(nb, path)
        validation_error: dict[str, Any] = {}
        notebook_bytes(nb, validation_error)
        now = datetime.now().astimezone()
        saved = {
            "name": path.rpartition("/")[2],
            "path": path,
            "type": "notebook",
            "last_modified": now,
            "created": now,
            "content": None,
            "format": None,
            "mimetype": None,
            "writable": True,
            "size": 0,
        }
        self.validate_notebook_model(saved, validation_error=validation_error)
        return saved
