"""Shared fixtures: a real jupyter-server (pytest-jupyter) running either jupyter_server's stock
contents manager or ours, and a small client for its contents API."""

from __future__ import annotations

import base64
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server", "harness.plugin"]

STOCK = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
SWAN = "swan_contents.SwanContentsManager"


@pytest.fixture(autouse=True)
def jupyter_data_in_the_test_folder(monkeypatch, tmp_path):
    """Jupyter's data files (above all the trust database of notebooks) of what a test runs,
    in this process or started from it, stay in the test's folder and out of the home of whoever
    runs the tests (pytest-jupyter's servers get a folder of their own the same way)."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))


@pytest.fixture(params=["stock", "swan"])
def manager(request) -> str:
    """Which contents manager the server runs; conformance tests run against both."""
    return request.param


@pytest.fixture
def backend() -> str:
    """The storage behind SwanContentsManager: "posix", or a WebDAV server ("wsgidav",
    "apache", "drive"). Modules that run against every storage override this (or `manager`) with
    parametrized fixtures."""
    return "posix"


_space_numbers = itertools.count()


@pytest.fixture
def dav_server(backend, dav_servers):
    return dav_servers(backend)


@pytest.fixture
def dav_space(dav_server):
    """A fresh folder on the test's WebDAV server: (local path, URL)."""
    return dav_server.folder(f"space-{next(_space_numbers)}")


@pytest.fixture
def jp_root_dir(tmp_path, backend, request):
    """The user's space as a local folder. On WebDAV it is the folder the server serves, so
    tests can look at (and change, as another writer would) what the server stored; the
    contents manager itself reaches it only through WebDAV."""
    if backend == "posix":
        root = tmp_path / "root_dir"
        root.mkdir()
        return root
    return request.getfixturevalue("dav_space")[0]


@pytest.fixture
def versions_dir(tmp_path):
    return tmp_path / "versions"


@pytest.fixture
def jp_server_config(manager, backend, versions_dir, request):
    if manager == "stock":
        keep_the_desktop_trash_in(request.getfixturevalue("tmp_path") / "data-home", request)
    config = {
        "ServerApp": {
            "contents_manager_class": STOCK if manager == "stock" else SWAN,
            "jpserver_extensions": {"swan_share_ext": True},
        },
        "SwanContentsManager": {"versions_dir": str(versions_dir)},
    }
    if backend != "posix":
        server = request.getfixturevalue("dav_server")
        config["SwanContentsManager"]["storage_class"] = "swan_contents.storage.WebDAVStorage"
        config["WebDAVStorage"] = {"url": request.getfixturevalue("dav_space")[1]}
        if server.username:
            config["WebDAVStorage"].update(
                {"username": server.username, "password_env": "SWAN_TEST_DAV_PASSWORD"}
            )
            request.getfixturevalue("monkeypatch").setenv("SWAN_TEST_DAV_PASSWORD", server.password)
    return config


def keep_the_desktop_trash_in(data_home: Path, request) -> None:
    """The stock manager deletes to the user's desktop trash (send2trash), whose place
    send2trash fixed from the real home when it was imported: point it into the test's own
    folder, so that tests leave nothing in the home of whoever runs them."""
    from send2trash import plat_other

    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data_home))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data_home / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data_home / "Trash"))


#: (manager, backend) pairs a suite runs against: the stock manager on a folder, and ours on
#: a folder and on each real WebDAV server (the drive being the one of the ownCloud family)
ALL_STORAGES = [
    ("stock", "posix"),
    ("swan", "posix"),
    ("swan", "wsgidav"),
    ("swan", "apache"),
    ("swan", "drive"),
]
SWAN_STORAGES = ALL_STORAGES[1:]


#: Backends whose server keeps versions and a trash bin of its own (the Nextcloud layout). There,
#: a version is a content the server replaced (the current content is none, as in Nextcloud's
#: versions list), restoring one moves it back in place, and a trashed entry comes back only
#: where it was.
SERVER_HISTORY = {"drive"}


def swan_on_every_storage():
    """The `manager` and `backend` fixtures of a module whose tests run SwanContentsManager on
    POSIX and on each real WebDAV server: `manager, backend = swan_on_every_storage()`."""

    @pytest.fixture
    def manager() -> str:
        return "swan"

    @pytest.fixture(params=[b for _, b in SWAN_STORAGES])
    def backend(request) -> str:
        return request.param

    return manager, backend


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
def swan_api(jp_fetch):
    """`await swan_api(method, "versions", body, **query)` on /swan/api/; never raises."""

    async def call(method: str, endpoint: str, body=None, **params):
        r = await jp_fetch(
            "swan",
            "api",
            *endpoint.split("/"),
            method=method,
            body=None if body is None else json.dumps(body),
            params=params,
            raise_error=False,
        )
        return r.code, json.loads(r.body) if r.body else None

    return call


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


def put_with_headers(jp_fetch, path: str, body: dict, headers: dict[str, str]):
    """PUT /api/contents/<path> with request headers (If-Match, If-None-Match); never raises
    on HTTP errors."""
    return jp_fetch(
        "api",
        "contents",
        path,
        method="PUT",
        body=json.dumps(body),
        headers=dict(headers),  # jp_fetch adds its token to the dict it is given
        raise_error=False,
    )


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


def chunk_body(chunk: int, data: bytes) -> dict:
    """One part of an upload in parts, as JupyterLab sends it (`chunk` 1, 2, …, -1 for the last)."""
    content = base64.b64encode(data).decode()
    return {"type": "file", "format": "base64", "chunk": chunk, "content": content}
