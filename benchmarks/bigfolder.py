"""One folder of 100,000 entries, listed whole: through the contents API of a real jupyter-server
with SwanContentsManager on the folder (POSIX) and on the drive (WebDAV), the drive's own
PROPFIND Depth 1 of it (the drive's side of that listing), and the first page of the drive's web
page. Baselines measured in the same run: one `os.scandir` with a stat per entry in this
process (the file system's floor), the drive's PROPFIND through WsgiDAV's own per-resource path
(what it answered before its streamed PROPFIND; a conditional request still takes it), the same
PROPFIND of the same folder served by stock WsgiDAV and by Apache (where installed), and the
drive's page of a folder of 10 entries.

Prints medians (goals of issue 17: < 1 s on POSIX, < 3 s through the drive), the contents API
timed from the request to the answer's last byte.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from harness.dav_servers import (  # noqa: E402
    ApacheDavServer,
    DavServer,
    DriveDavServer,
    WsgiDavServer,
    apache_available,
    raw_client,
    shared_root,
)
from harness.jupyter_process import JupyterProcess  # noqa: E402
from stalls import webdav_options  # noqa: E402
from webdav import SWAN, goal  # noqa: E402

from swan_contents.storage.webdav.multistatus import PROPFIND_BODY  # noqa: E402

ENTRIES = 100_000
ROUNDS = 3


def fill(folder: Path, entries: int) -> None:
    folder.mkdir()
    for i in range(entries):
        if i % 100 == 99:
            (folder / f"folder {i:06d}").mkdir()
        else:
            (folder / f"data-{i:06d}.csv").write_bytes(b"a,b\n")


def median_s(fn, rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def scandir_floor(folder: Path) -> float:
    def walk() -> None:
        with os.scandir(folder) as it:
            for entry in it:
                entry.stat()

    return median_s(walk)


def contents_listing(server: JupyterProcess, path: str) -> float:
    """Seconds from the request to the answer's last byte (the server's side: the client's
    parse of the 35 MB of JSON comes after, and is not counted)."""
    with httpx.Client(headers=server.headers, timeout=600) as client:
        answers = []

        def get() -> None:
            with client.stream("GET", f"{server.url}/api/contents/{path}") as answer:
                answer.raise_for_status()
                answers.append(answer.read())

        took = median_s(get)
        assert all(len(json.loads(body)["content"]) == ENTRIES for body in answers)
        return took


def on_posix(work: Path) -> dict[str, float]:
    space = work / "posix"
    space.mkdir()
    fill(space / "big", ENTRIES)
    floor = scandir_floor(space / "big")
    with JupyterProcess(space, work / "state-posix", SWAN) as server:
        return {"posix": contents_listing(server, "big"), "floor": floor}


def on_drive(work: Path) -> dict[str, float]:
    (work / "swan").mkdir()
    dav = DriveDavServer(work / "swan")
    dav.start()
    try:
        space, url = dav.folder("space")
        fill(space / "big", ENTRIES)
        (space / "small").mkdir()
        for i in range(10):
            (space / "small" / f"{i}.csv").write_bytes(b"a,b\n")
        auth = (dav.username, dav.password)
        with httpx.Client(auth=auth, timeout=600) as raw:
            drive_side = median_s(lambda: propfind(raw, f"{url}big/"))
            wsgidav_path = median_s(lambda: propfind(raw, f"{url}big/", OLD_PATH))
        page, small_page = web_pages(dav)
        options, env = webdav_options(url, auth)
        (work / "cwd").mkdir()
        with JupyterProcess(work / "cwd", work / "state-drive", SWAN, options, env=env) as server:
            through = contents_listing(server, "big")
        return {
            "drive": through,
            "drive_side": drive_side,
            "drive_wsgidav_path": wsgidav_path,
            "page": page,
            "small_page": small_page,
        }
    finally:
        dav.stop()


#: a condition that always holds, which sends a PROPFIND down WsgiDAV's own path on the drive
OLD_PATH = {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}


def propfind(client: httpx.Client, url: str, headers: dict | None = None) -> None:
    headers = {"Depth": "1", **(headers or {})}
    answer = client.request("PROPFIND", url, headers=headers, content=PROPFIND_BODY)
    assert answer.status_code == 207
    assert answer.content.count(b"response>") >= ENTRIES


def stock_servers() -> dict[str, float]:
    """The same PROPFIND of the same folder, served by stock WsgiDAV and by Apache."""
    found = {}
    kinds: list[type[DavServer]] = [WsgiDavServer]
    if apache_available():
        kinds.append(ApacheDavServer)
    for kind in kinds:
        root = shared_root()
        server = kind(root)
        server.start()
        try:
            local, url = server.folder("space")
            fill(local / "big", ENTRIES)
            with raw_client(server) as client:
                client.timeout = httpx.Timeout(600)
                found[kind.name] = median_s(lambda c=client, u=url: propfind(c, f"{u}big/"))
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
    return found


def web_pages(dav: DriveDavServer) -> tuple[float, float]:
    """Seconds to the first page of the big folder and of the small one, signed in."""
    swan = dav.swan
    page_url = f"{swan.url}/services/drive/"  # through the proxy, as a browser signs in
    with httpx.Client(follow_redirects=True, timeout=600) as browser:
        login = browser.get(page_url)
        browser.post(
            str(login.url),
            data={
                "username": dav.username,
                "password": swan.passwords()[dav.username],
                "_xsrf": browser.cookies.get("_xsrf"),
            },
        ).raise_for_status()

        def page(folder: str):
            return lambda: browser.get(
                page_url, params={"dir": f"space/{folder}"}
            ).raise_for_status()

        return median_s(page("big")), median_s(page("small"))


def main() -> dict:
    print(f"\n== One folder of {ENTRIES:,} entries, listed whole (median of {ROUNDS})")
    work = Path(tempfile.mkdtemp(prefix="swan-bench-bigfolder-"))
    try:
        r = {**on_posix(work), **on_drive(work), **stock_servers()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"  file system floor (scandir + stat, this process): {r['floor']:.2f} s\n"
        f"  contents API on POSIX: {r['posix']:.2f} s ({r['posix'] / r['floor']:.1f}x the floor; "
        f"goal < 1 s: {goal(r['posix'] < 1)})\n"
        f"  the drive's PROPFIND Depth 1 (its side): {r['drive_side']:.2f} s (goal < 3 s: "
        f"{goal(r['drive_side'] < 3)}); through WsgiDAV's own path "
        f"{r['drive_wsgidav_path']:.2f} s; stock WsgiDAV {r['wsgidav']:.2f} s"
        + (f"; Apache {r['apache']:.2f} s" if "apache" in r else "")
        + "\n"
        f"  contents API through the drive: {r['drive']:.2f} s\n"
        f"  the drive's web page, first page: {r['page']:.2f} s, against "
        f"{r['small_page']:.3f} s for a folder of 10 ({r['page'] / r['small_page']:.1f}x)"
    )
    return r


if __name__ == "__main__":
    main()
