"""Long work of a user's server is cut into steps with the event loop free between them, so
that the user's other requests are served meanwhile: a big multistatus answer is read a step at
a time, and a big folder becomes models and JSON in steps. The result is exactly what one go
gives, and a bad answer is refused as before. (How long the loop is held is measured by
`benchmarks/stalls.py`, not here.)"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import threading

import pytest
from conftest import notebook_body
from harness.dav_servers import raw_client
from jupyter_client.jsonutil import json_default
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

from swan_contents.gc_pause import gc_paused
from swan_contents.steps import ENTRIES_PER_STEP, in_steps
from swan_contents.storage.base import StorageUnavailable
from swan_contents.storage.webdav import WebDAVStorage
from swan_contents.storage.webdav.multistatus import (
    PARSE_STEP,
    PLAIN_PROPFIND_BODY,
    entries_in_steps,
)
from swan_share_ext.storage_api import BYTES_PER_STEP

#: More than two steps of models and JSON, and a multistatus answer of many parse steps.
ENTRIES = 2 * ENTRIES_PER_STEP + 500


def fill(folder, entries: int = ENTRIES) -> None:
    nb = json.dumps(notebook_body()["content"])
    for i in range(entries):
        if i % 10 == 9:
            (folder / f"folder {i:05d}").mkdir()
        elif i % 2:
            (folder / f"notebook {i:05d}.ipynb").write_text(nb)
        else:
            (folder / f"data-{i:05d}.csv").write_text("a,b\n1,2\n")


async def with_turns(work) -> tuple[object, int]:
    """The result of awaiting ``work`` (which does no I/O) and how many turns the event loop
    took meanwhile: each is a moment the user's other requests are served."""
    turns = 0
    done = False

    async def count() -> None:
        nonlocal turns
        while not done:
            await asyncio.sleep(0)
            turns += 1

    counting = asyncio.create_task(count())
    try:
        result = await work
    finally:
        done = True
        await counting
    return result, turns


@pytest.fixture(scope="module")
def apache_listing(dav_servers, tmp_path_factory) -> tuple[WebDAVStorage, bytes]:
    """A real multistatus answer of Apache mod_dav about a folder of ENTRIES entries."""
    server = dav_servers("apache")
    local, url = server.folder("big-listing")
    fill(local)
    with raw_client(server) as client:
        answer = client.request(
            "PROPFIND", url, headers={"Depth": "1"}, content=PLAIN_PROPFIND_BODY
        )
    assert answer.status_code == 207
    return WebDAVStorage(url=url), answer.content


async def test_a_big_multistatus_answer_is_read_in_steps_into_the_entries_one_go_gives(
    apache_listing,
):
    storage, body = apache_listing
    assert len(body) > 10 * PARSE_STEP
    stepped, turns = await with_turns(
        entries_in_steps(body, "", storage.path_of, storage.etags.version)
    )
    assert stepped == storage.parse_multistatus(body, "")
    assert len(stepped) == ENTRIES + 1  # and the folder itself
    assert turns >= len(body) // PARSE_STEP - 1


@pytest.mark.parametrize(
    "spoil",
    [
        # a document type (entities) anywhere, also where one step ends and the next begins
        lambda body, at: body[:at] + b"<!DOCTYPE x [<!ENTITY a 'b'>]>" + body[at:],
        lambda body, at: body[: at - 4] + b"<!DOCTYPE x>" + body[at - 4 :],
        # broken markup in a late step
        lambda body, at: body[: 3 * at] + b"</d:nothing>" + body[3 * at :],
        # another encoding than UTF-8
        lambda body, at: body.decode().encode("utf-16"),
    ],
)
async def test_a_bad_big_answer_is_refused_as_a_storage_fault_in_whichever_step(
    apache_listing, spoil
):
    storage, body = apache_listing
    with pytest.raises(StorageUnavailable, match="unreadable listing"):
        await entries_in_steps(spoil(body, PARSE_STEP), "", storage.path_of, storage.etags.version)


async def test_in_steps_gives_every_item_once_in_order_and_costs_a_short_list_no_turn():
    items = list(range(2 * ENTRIES_PER_STEP + 1))
    seen = []

    async def collect(values):
        async for step in in_steps(values):
            seen.extend(step)

    _, turns = await with_turns(collect(items))
    assert seen == items and turns >= 2
    seen.clear()
    _, turns = await with_turns(collect(items[:ENTRIES_PER_STEP]))
    assert seen == items[:ENTRIES_PER_STEP] and turns == 0


@pytest.fixture
def manager() -> str:
    return "swan"


def drop_our_fields(model: dict) -> None:
    """Take out the fields our models add to the stock ones (docs/storage.md)."""
    assert isinstance(model.pop("etag"), str)
    model.pop("shareable", None)


async def test_a_folder_of_thousands_lists_as_the_stock_manager_lists_it(jp_fetch, jp_root_dir):
    fill(jp_root_dir)
    answer = await jp_fetch("api", "contents", "", method="GET", request_timeout=15)
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Last-Modified"]
    ours = json.loads(answer.body)
    stock = json.loads(
        json.dumps(
            await AsyncLargeFileManager(root_dir=str(jp_root_dir)).get(""), default=json_default
        )
    )
    assert len(ours["content"]) == ENTRIES
    for child in ours["content"]:
        drop_our_fields(child)
    drop_our_fields(ours)
    key = lambda model: model["name"]  # noqa: E731
    ours["content"].sort(key=key)
    stock["content"].sort(key=key)
    assert ours == stock


async def test_a_big_notebook_opens_as_the_stock_manager_opens_it(jp_fetch, jp_root_dir):
    nb = notebook_body()["content"]
    output = {"output_type": "stream", "name": "stdout", "text": ['é\\"\n' * 2000]}
    nb["cells"] = [
        {**nb["cells"][0], "id": f"c{i}", "source": f"print({i})", "outputs": [output]}
        for i in range(300)
    ]
    (jp_root_dir / "big.ipynb").write_text(json.dumps(nb))
    answer = await jp_fetch("api", "contents", "big.ipynb", method="GET", request_timeout=60)
    assert answer.headers["Content-Type"] == "application/json"
    ours = json.loads(answer.body)
    stock = json.loads(
        json.dumps(
            await AsyncLargeFileManager(root_dir=str(jp_root_dir)).get("big.ipynb"),
            default=json_default,
        )
    )
    assert len(answer.body) > 2 * BYTES_PER_STEP
    drop_our_fields(ours)
    assert ours == stock


def test_a_started_server_keeps_its_own_objects_out_of_every_later_collection(tmp_path):
    # in a fresh interpreter: the first contents request freezes what the start loaded
    code = f"""
import asyncio, gc
from swan_contents import SwanContentsManager
manager = SwanContentsManager(root_dir={str(tmp_path)!r})
before = gc.get_freeze_count()
asyncio.run(manager.get(""))
print(before, gc.get_freeze_count())
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    before, after = (int(n) for n in done.stdout.split())
    assert before == 0 and after > 10_000


def test_the_collector_is_back_on_when_the_last_of_overlapping_pauses_ends():
    assert gc.isenabled()
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second block still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()

    def pause_often() -> None:
        for _ in range(2000):
            with gc_paused():
                pass

    threads = [threading.Thread(target=pause_often) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
