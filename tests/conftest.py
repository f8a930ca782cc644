"""Shared fixtures: a real jupyter-server (pytest-jupyter) running either jupyter_server's stock
contents manager or ours, and a small client for its contents API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

STOCK = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
SWAN = "swan_contents.SwanContentsManager"


@pytest.fixture(params=["stock", "swan"])
def manager(request) -> str:
    """Which contents manager the server runs; conformance tests run against both."""
    return request.param


@pytest.fixture
def versions_dir(tmp_path):
    return tmp_path / "versions"


@pytest.fixture
def jp_server_config(manager, versions_dir):
    return {
        "ServerApp": {
            "contents_manager_class": STOCK if manager == "stock" else SWAN,
            "jpserver_extensions": {"swan_share_ext": True},
        },
        "SwanContentsManager": {"versions_dir": str(versions_dir)},
    }


@dataclass
class Reply:
    code: int
    body: Any

    @classmethod
    def of(cls, response: Any) -> Reply:
        """The reply of a tornado response: its JSON body, or its text when it is not JSON."""
        text = response.body.decode("utf-8") if response.body else ""
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        return cls(response.code, payload)

    @property
    def message(self) -> str:
        return self.body.get("message", "") if isinstance(self.body, dict) else str(self.body)


@pytest.fixture
def api(jp_fetch):
    """`await api(method, path, body, **query)` on /api/contents; never raises on HTTP errors."""

    async def call(method: str, path: str = "", body: Any = None, **params: str) -> Reply:
        if body is None and method in ("POST", "PUT", "PATCH"):
            data: str | None = ""
        else:
            data = None if body is None else json.dumps(body)
        parts = ["api", "contents", *[p for p in path.split("/") if p]]
        r = await jp_fetch(*parts, method=method, body=data, params=params, raise_error=False)
        return Reply.of(r)

    return call


@pytest.fixture
def raw_fetch(http_server_client, jp_auth_header, jp_base_url):
    """Fetch a URL path exactly as given (no escaping), for encoded-traversal probes."""

    async def call(method: str, url_path: str, body: str | None = None) -> Reply:
        r = await http_server_client.fetch(
            jp_base_url.rstrip("/") + url_path,
            method=method,
            body=body,
            headers=jp_auth_header,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        return Reply(r.code, r.body.decode("utf-8", "replace"))

    return call


def notebook_body(source: str = "print('hi')") -> dict:
    return {
        "type": "notebook",
        "format": "json",
        "content": {
            "cells": [
                {
                    "id": "cell-1",
                    "cell_type": "code",
                    "source": source,
                    "metadata": {},
                    "outputs": [],
                    "execution_count": None,
                }
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
    }


def text_body(text: str) -> dict:
    return {"type": "file", "format": "text", "content": text}


@pytest.fixture
def space(tmp_path) -> Path:
    """An empty folder to serve as a user's storage space."""
    root = tmp_path / "space"
    root.mkdir()
    return root
