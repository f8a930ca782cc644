"""Reliability probes: other writers at random moments, two saves racing, a server killed in
the middle of a save. The promise under test: no update is ever lost and no file is ever half
written; every lost race is a 409 or a conflict copy.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time

import httpx
import pytest
from conftest import notebook_body, swan_on_every_storage
from harness.jupyter_process import JupyterProcess

#: rounds per storage; Apache makes a conditional save wait while an ETag is under a second old
ROUNDS = {"posix": 30, "wsgidav": 30, "apache": 12, "drive": 30}


manager, backend = swan_on_every_storage()


def source(reply) -> str:
    return reply.body["content"]["cells"][0]["source"]


def write_like_a_sync_client(path, text: str) -> None:
    """A desktop sync client writes a temp file beside the target and renames it over."""
    tmp = path.parent / f".{path.name}.~sync"
    tmp.write_text(json.dumps(notebook_body(text)["content"]))
    os.replace(tmp, path)


async def test_a_second_writer_between_load_and_save_never_loses_an_update(
    api, jp_root_dir, backend
):
    rng = random.Random(f"second-writer-{backend}")  # noqa: S311 - a repeatable test schedule
    await api("PUT", "nb.ipynb", notebook_body("start"))
    outcomes = {"saved": 0, "409": 0, "copy": 0}
    for round_ in range(ROUNDS[backend]):
        loaded = await api("GET", "nb.ipynb", type="notebook")
        other = rng.choice(["nobody", "api", "sync client"])
        # every edit has a size no earlier one had: WsgiDAV rewrites files in place and its ETag
        # (inode-seconds-size) cannot tell apart two same-size contents written in one second
        theirs = "their edit " + "t" * (4 * round_ + 1)
        if other == "api":
            assert (await api("PUT", "nb.ipynb", notebook_body(theirs))).code == 200
        elif other == "sync client":
            await asyncio.to_thread(write_like_a_sync_client, jp_root_dir / "nb.ipynb", theirs)
        await asyncio.sleep(rng.random() * 0.01)
        mine = "my edit " + "m" * (4 * round_ + 3)
        choice = rng.choice(["fail", "copy"])
        body = {**notebook_body(mine), "etag": loaded.body["etag"], "on_conflict": choice}
        saved = await api("PUT", "nb.ipynb", body)
        stored = source(await api("GET", "nb.ipynb"))
        if other == "nobody":
            assert (saved.code, stored) == (200, mine), round_
            outcomes["saved"] += 1
            continue
        assert stored == theirs, (round_, other)
        if choice == "fail":
            assert saved.code == 409, (round_, other, saved.code)
            current = await api("GET", "nb.ipynb", content="0")
            assert saved.body["etag"] == current.body["etag"]
            outcomes["409"] += 1
        else:
            assert saved.code == 200 and saved.body["path"] != "nb.ipynb", round_
            assert source(await api("GET", saved.body["path"])) == mine
            assert (await api("DELETE", saved.body["path"])).code == 204
            outcomes["copy"] += 1
    assert all(outcomes.values()), outcomes


async def test_two_saves_racing_from_the_same_version_never_both_win(api, backend):
    await api("PUT", "nb.ipynb", notebook_body("start"))
    for round_ in range(ROUNDS[backend] // 2):
        base = (await api("GET", "nb.ipynb", content="0")).body["etag"]
        # sizes no earlier content had (see the test above for why WsgiDAV needs that)
        texts = ["writer A " + "a" * (4 * round_ + 1), "writer B " + "b" * (4 * round_ + 3)]
        replies = await asyncio.gather(
            *(api("PUT", "nb.ipynb", {**notebook_body(t), "etag": base}) for t in texts)
        )
        codes = [r.code for r in replies]
        assert sorted(codes) == [200, 409], (round_, codes)
        winner = texts[codes.index(200)]
        assert source(await api("GET", "nb.ipynb")) == winner


def _save_in_thread(server: JupyterProcess, body: dict, result: list) -> threading.Thread:
    def run() -> None:
        try:
            r = httpx.put(
                f"{server.url}/api/contents/nb.ipynb",
                json=body,
                headers=server.headers,
                timeout=60,
            )
            result.append(r.status_code)
        except httpx.TransportError as e:
            result.append(type(e).__name__)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("backend", ["posix", "apache"])
def test_a_server_killed_in_the_middle_of_a_save_leaves_the_old_or_the_new_file(
    tmp_path, jp_root_dir, backend, request
):
    options = []
    if backend != "posix":
        options = [
            "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
            f"--WebDAVStorage.url={request.getfixturevalue('dav_space')[1]}",
        ]
    old = notebook_body("old content")
    new = notebook_body("n = 1\n" * 1_500_000)  # about 9 MB of JSON
    target = jp_root_dir / "nb.ipynb"
    rng = random.Random(f"kill-{backend}")  # noqa: S311 - a repeatable test schedule
    # how long a whole save takes here, so that the kills fall all along it
    server = JupyterProcess(jp_root_dir, tmp_path / "state", SWAN_MANAGER, options)
    try:
        started = time.monotonic()
        saved: list = []
        _save_in_thread(server, new, saved).join(timeout=120)
        duration = time.monotonic() - started
        assert saved == [201]
    finally:
        server.stop()
    outcomes = []
    for attempt, fraction in enumerate((0.2, 0.5, 0.8, 0.9, 0.97)):
        server = JupyterProcess(jp_root_dir, tmp_path / f"state{attempt}", SWAN_MANAGER, options)
        try:
            httpx.put(
                f"{server.url}/api/contents/nb.ipynb", json=old, headers=server.headers
            ).raise_for_status()
            result: list = []
            thread = _save_in_thread(server, new, result)
            time.sleep(duration * fraction * (0.9 + rng.random() * 0.2))
            server.proc.kill()
            thread.join(timeout=60)
        finally:
            server.stop()
        stored = "".join(json.loads(target.read_text())["cells"][0]["source"])
        assert stored in (
            old["content"]["cells"][0]["source"],
            new["content"]["cells"][0]["source"],
        )
        outcomes.append("new" if stored.startswith("n = 1") else "old")
    # hidden temp files a killed save leaves are never listed and never synced (".~swan-*.part")
    visible = [p.name for p in jp_root_dir.iterdir() if not p.name.startswith(".")]
    assert visible == ["nb.ipynb"]
    print(f"killed saves on {backend} (a whole save takes {duration:.2f} s): {outcomes}")


SWAN_MANAGER = "swan_contents.SwanContentsManager"
