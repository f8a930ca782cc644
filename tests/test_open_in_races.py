"""An open-in click racing the user's own save: the delivery replaces a file only in the version
it read, and creates a file only where none is yet, so a save that lands between its read and
its write is never overwritten; the new upstream version goes beside it instead.

The race is provoked, not waited for: the server runs our contents manager with one hook that
makes the user's save (through the same manager, as JupyterLab's would be) right before the
delivery's write of that file reaches the storage.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from harness.open_servers import SourceServer, post_open, reply, server_config
from test_open_in import notebook

from swan_contents import SwanContentsManager

SOURCE_HOST = "127.0.0.2"


class UserSavesFirst(SwanContentsManager):
    """SwanContentsManager that lets "the user" save ``user_saves[path]`` just before the next
    save of a file at ``path`` (the delivery's) is carried out."""

    user_saves: ClassVar[dict[str, str]] = {}

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        edit = None
        if model.get("type") != "directory":
            edit = self.user_saves.pop(path.strip("/"), None)
        if edit is not None:
            await super().save({"type": "file", "format": "text", "content": edit}, path)
        return await super().save(model, path)


@pytest.fixture
def jp_server_config(space, tmp_path):
    config = server_config(
        space,
        tmp_path,
        allowed_hosts=[SOURCE_HOST],
        allowed_schemes=["http"],
        allowed_networks=[f"{SOURCE_HOST}/32"],
    )
    config["ServerApp"]["contents_manager_class"] = UserSavesFirst
    return config


@pytest.fixture
def source():
    server = SourceServer(SOURCE_HOST)
    yield server
    server.stop()
    UserSavesFirst.user_saves.clear()


async def test_a_save_between_the_read_and_the_write_of_an_unedited_file_is_kept(
    jp_fetch, source, space
):
    url = source.url("/lesson.ipynb")
    source.routes["/lesson.ipynb"] = reply(200, notebook("v1").encode())
    await post_open(jp_fetch, {"url": url})
    mine = space / "SWAN_projects/lesson/lesson.ipynb"
    assert mine.read_text() == notebook("v1")

    # Upstream moves on; the user had not changed the file, so the click would replace it,
    # but the user saves it while the new version is on its way.
    source.routes["/lesson.ipynb"] = reply(200, notebook("v2").encode())
    UserSavesFirst.user_saves["SWAN_projects/lesson/lesson.ipynb"] = notebook("saved meanwhile")
    events = await post_open(jp_fetch, {"url": url})

    assert events[-1]["event"] == "done", events
    assert not UserSavesFirst.user_saves, "the race was not provoked"
    assert mine.read_text() == notebook("saved meanwhile")
    [change] = [e for e in events if e["event"] == "file"]
    assert change["action"] == "beside"
    assert "saved while the new version was being written" in change["message"]
    assert (mine.parent / change["beside"]).read_text() == notebook("v2")

    # The next click sees the user's file as edited: it stays, nothing more is written.
    again = await post_open(jp_fetch, {"url": url})
    assert [e["action"] for e in again if e["event"] == "file"] == ["kept"]
    assert mine.read_text() == notebook("saved meanwhile")


async def test_a_file_saved_under_a_new_files_name_during_the_first_click_is_kept(
    jp_fetch, source, space
):
    url = source.url("/lesson.ipynb")
    source.routes["/lesson.ipynb"] = reply(200, notebook("v1").encode())
    # The file is not there when the click reads; the user saves one of that name before the
    # delivery writes it: a create-only write finds it and leaves it alone.
    UserSavesFirst.user_saves["SWAN_projects/lesson/lesson.ipynb"] = notebook("saved meanwhile")
    events = await post_open(jp_fetch, {"url": url})

    assert events[-1]["event"] == "done", events
    assert not UserSavesFirst.user_saves, "the race was not provoked"
    mine = space / "SWAN_projects/lesson/lesson.ipynb"
    assert mine.read_text() == notebook("saved meanwhile")
    [change] = [e for e in events if e["event"] == "file"]
    assert change["action"] == "beside"
    assert "saved while the new version was being written" in change["message"]
    assert (mine.parent / change["beside"]).read_text() == notebook("v1")
