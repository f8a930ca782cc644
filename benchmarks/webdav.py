"""SwanContentsManager on real WebDAV servers (WsgiDAV and Apache mod_dav), measured from outside
a real jupyter-server against baselines taken in the same run:

- listing 1,000 entries: GET /api/contents vs one raw PROPFIND Depth 1 (goal <= 1.3x), and vs
  jupyter-fs with its fsspec WebDAV backend (webdav4) on the same server (goal: ours >= 5x faster);
- saving 1 MB and 10 MB notebooks vs one raw PUT of the same bytes (goal <= 1.3x);
- a 100 MB upload in 1 MiB base64 chunks as JupyterLab sends it: bytes the storage received
  (goal <= 1.05x the file), peak RSS growth of the server (goal <= 64 MB), throughput vs a raw PUT;
- the server's responsiveness (GET /api/status polled every 5 ms) while a listing loop and that
  upload run at once: p99 latency (goal < 50 ms).

Each request also costs what jupyter-server spends on it whatever the storage (the HTTP request,
the JSON of the models, and for a notebook save its signing, validation and serialisation). A
jupyter-server with `preset_manager.PresetContentsManager`, which stores nothing, measures that
in the same run; "ours - Jupyter's own" is then what our contents manager and driver add, and it
is compared with the raw request too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import notebook_body  # noqa: E402
from harness.dav_servers import (  # noqa: E402
    ApacheDavServer,
    DavServer,
    _wait_until_listening,
    shared_root,
)
from harness.jupyter_process import JupyterProcess  # noqa: E402

from swan_contents.storage import WebDAVStorage  # noqa: E402

SWAN = "swan_contents.SwanContentsManager"
#: where this run keeps its state and files; removed at the end of main()
WORK = Path(tempfile.gettempdir())


def scratch() -> Path:
    """A new empty folder for this run's state."""
    return Path(tempfile.mkdtemp(dir=WORK))


STOCK = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
PRESET = "preset_manager.PresetContentsManager"
MIB = 1024 * 1024


class WsgiDavProcess(DavServer):
    """WsgiDAV's own command line server (cheroot) in a child process, anonymous access, so that
    it does not share this process's interpreter with the measuring client."""

    name = "wsgidav"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("wsgidav")),
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--root={self.root}",
                "--auth=anonymous",
                "--no-config",
                "-q",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_until_listening(self.port, "WsgiDAV")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def notebook(size: int) -> dict:
    """A notebook of about `size` bytes of JSON."""
    line = "x = 'swan' * 8  # a line of code\n"
    return notebook_body(line * max(1, size // (len(line) + 4)))["content"]


def fill(folder: Path, entries: int) -> None:
    nb = json.dumps(notebook(200))
    for i in range(entries):
        if i % 10 < 6:
            (folder / f"notebook {i:04d}.ipynb").write_text(nb)
        elif i % 10 < 9:
            (folder / f"data-{i:04d}.csv").write_text("a,b\n1,2\n")
        else:
            (folder / f"folder {i:04d}").mkdir()


def interleaved_medians_ms(fns: dict, rounds: int) -> dict[str, float]:
    """Median ms of each function, run one after the other in every round, so that load from
    elsewhere on the machine falls on all of them alike and their ratios stay fair."""
    times: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(rounds):
        for label, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(t) * 1000 for label, t in times.items()}


def median_ms(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def swan_server(space_url: str, state: Path | None = None) -> JupyterProcess:
    """Our jupyter-server on the WebDAV folder at `space_url` (its own state in `state`)."""
    state = state or Path(scratch())
    (state / "cwd").mkdir(exist_ok=True)
    return JupyterProcess(
        state / "cwd",
        state,
        SWAN,
        [
            "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage",
            f"--WebDAVStorage.url={space_url}",
            "--ServerApp.jpserver_extensions=swan_share_ext=True",
        ],
    )


def jupyterfs_deps() -> tuple[str | None, str]:
    """A folder with jupyter-fs, webdav4 and fsspec installed from PyPI, or (None, why not)."""
    target = Path(tempfile.gettempdir()) / "swan-bench-jupyterfs"
    if not (target / "jupyterfs").exists():
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
        r = subprocess.run(
            [*pip, "jupyter-fs", "webdav4", "fsspec"], capture_output=True, text=True
        )
        if r.returncode != 0:
            return None, f"pip could not install jupyter-fs/webdav4/fsspec: {r.stderr[-300:]}"
    return str(target), ""


#: jupyter-fs (1.1 and 1.2, the versions with an fsspec backend) turns an fsspec entry's
#: `created` into a date with datetime.fromtimestamp(), as fsspec's local file system gives it in
#: seconds; webdav4 gives a datetime there (0.5.0 to 0.11.0 checked), so jupyter-fs answers every
#: listing of a webdav4 folder with a 400 ("'datetime.datetime' object cannot be interpreted as an
#: integer"). The benchmark gives jupyter-fs webdav4's own file system with times in seconds,
#: registered as "webdav", which changes nothing else of what either does per entry.
JUPYTERFS_CONFIG = """
import fsspec
from webdav4.fsspec import WebdavFileSystem


def _in_seconds(info):
    for key in ("created", "modified"):
        if hasattr(info.get(key), "timestamp"):
            info[key] = info[key].timestamp()
    if info.get("modified") is not None:
        info.setdefault("mtime", info["modified"])
    return info


class WebdavTimesInSeconds(WebdavFileSystem):
    def info(self, path, **kwargs):
        return _in_seconds(dict(super().info(path, **kwargs)))

    def ls(self, path, detail=True, **kwargs):
        found = super().ls(path, detail=detail, **kwargs)
        return [_in_seconds(dict(i)) for i in found] if detail else found


fsspec.register_implementation("webdav", WebdavTimesInSeconds, clobber=True)
c.JupyterFs.resources = RESOURCES
"""


def jupyterfs_server(server: DavServer, folder: str, state: Path, deps: str) -> tuple:
    """jupyter-server with jupyter-fs's MetaManager and one fsspec WebDAV resource."""
    resource = {
        "name": "dav",
        "url": f"webdav://{folder}",
        "type": "fsspec",
        "auth": "none",
        "kwargs": {"base_url": server.url},
    }
    config_dir = state / "config"
    config_dir.mkdir(parents=True)
    (state / "cwd").mkdir()
    (config_dir / "jupyter_server_config.py").write_text(
        JUPYTERFS_CONFIG.replace("RESOURCES", repr([resource]))
    )
    drive = hashlib.md5((resource["url"] + "fsspec").encode()).hexdigest()[:8]  # noqa: S324
    env = {
        "PYTHONPATH": deps,
        "JUPYTER_CONFIG_DIR": str(config_dir),
    }
    proc = JupyterProcess(state / "cwd", state, "jupyterfs.metamanager.MetaManager", [], env)
    return proc, drive


def stock_listing_ms(folder: Path, state: Path, rounds: int) -> float:
    """What users have today: the stock manager listing the same entries from a local disk."""
    with JupyterProcess(folder, state, STOCK) as stock:
        client = httpx.Client(headers=stock.headers, timeout=120)
        client.get(f"{stock.url}/api/contents/").raise_for_status()
        return median_ms(lambda: client.get(f"{stock.url}/api/contents/"), rounds)


def stock_save_ms(model: dict, state: Path, rounds: int) -> float:
    """What users have today: the stock manager saving the same notebook to a local disk."""
    (state / "space").mkdir(parents=True)
    with JupyterProcess(state / "space", state, STOCK) as stock:
        client = httpx.Client(headers=stock.headers, timeout=300)
        url = f"{stock.url}/api/contents/nb.ipynb"
        client.put(url, json=model).raise_for_status()
        return median_ms(lambda: client.put(url, json=model).raise_for_status(), rounds)


def preset_server(state: Path, listing: dict | None = None) -> JupyterProcess:
    """A jupyter-server that stores nothing (`PresetContentsManager`): Jupyter's own cost."""
    (state / "cwd").mkdir(parents=True, exist_ok=True)
    options = []
    if listing is not None:
        (state / "listing.json").write_text(json.dumps(listing))
        options.append(f"--PresetContentsManager.listing_file={state / 'listing.json'}")
    env = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), *sys.path])}
    return JupyterProcess(state / "cwd", state, PRESET, options, env)


def bench_listing(servers: dict[str, DavServer], rounds: int = 20) -> dict:
    print("\n== Listing 1,000 entries: GET /api/contents/<folder> (median ms)")
    deps, why_not = jupyterfs_deps()
    return {
        name: listing_on(name, server, deps, why_not, rounds) for name, server in servers.items()
    }


def listing_on(name: str, server: DavServer, deps: str | None, why_not: str, rounds: int) -> dict:
    local, url = server.folder("listing")
    fill(local, 1000)
    state = Path(scratch())
    ours = swan_server(url, state)
    preset = None
    try:
        client = httpx.Client(headers=ours.headers, timeout=120)
        raw = httpx.Client(timeout=120)
        # the very request our driver sends (the same properties)
        body = WebDAVStorage(url=url).propfind_body
        answer = client.get(f"{ours.url}/api/contents/").json()
        assert len(answer["content"]) == 1000
        assert raw.request("PROPFIND", url, headers={"Depth": "1"}, content=body).status_code == 207
        # jupyter-server answering the very same listing without any storage behind it
        preset = preset_server(state / "preset", answer)
        fns = {
            "raw PROPFIND": lambda: raw.request(
                "PROPFIND", url, headers={"Depth": "1"}, content=body
            ).raise_for_status(),
            "SwanContentsManager": lambda: client.get(f"{ours.url}/api/contents/"),
            "Jupyter's own (no storage)": lambda: client.get(f"{preset.url}/api/contents/"),
        }
        for fn in fns.values():
            for _ in range(3):
                fn()
        line = interleaved_medians_ms(fns, rounds)
    finally:
        ours.stop()
        if preset is not None:
            preset.stop()
    t_raw, t_ours, t_jupyter = line.values()
    line["stock manager, files on disk"] = stock_listing_ms(local, state / "stock", rounds)
    fs_note = why_not
    if deps:
        try:
            jfs, drive = jupyterfs_server(server, "listing", state / "jfs", deps)
            try:
                jclient = httpx.Client(headers=jfs.headers, timeout=600)
                r = jclient.get(f"{jfs.url}/api/contents/{drive}:")
                r.raise_for_status()
                assert len(r.json()["content"]) == 1000, len(r.json()["content"])

                def list_jfs() -> None:
                    jclient.get(f"{jfs.url}/api/contents/{drive}:").raise_for_status()

                line["jupyter-fs (fsspec webdav4)"] = median_ms(list_jfs, max(3, rounds // 4))
            finally:
                jfs.stop()
        except Exception as e:  # noqa: BLE001 - report why the comparison could not run
            fs_note = f"jupyter-fs did not run: {e!r}"[:300]
    print(f"  {name}:")
    for label, ms in line.items():
        print(f"    {label:<30} {ms:>9.1f} ms")
    ratio = t_ours / t_raw
    own = (t_ours - t_jupyter) / t_raw
    print(f"    ours / raw PROPFIND = {ratio:.2f}x (goal <= 1.3x: {goal(ratio <= 1.3)})")
    print(
        f"    (ours - Jupyter's own) / raw PROPFIND = {own:.2f}x: the storage driver and models "
        f"(goal <= 1.3x: {goal(own <= 1.3)})"
    )
    if "jupyter-fs (fsspec webdav4)" in line:
        speedup = line["jupyter-fs (fsspec webdav4)"] / t_ours
        print(f"    jupyter-fs / ours = {speedup:.1f}x (goal >= 5x: {goal(speedup >= 5)})")
    else:
        print(f"    jupyter-fs comparison: {fs_note}")
    return line


def goal(met: bool) -> str:
    return "met" if met else "NOT met"


def bench_save(servers: dict[str, DavServer], rounds: int = 8) -> dict:
    print("\n== Saving a notebook: PUT /api/contents (conditional) vs one raw PUT (median ms)")
    sizes = (1 * MIB, 10 * MIB)
    for size in sizes:
        stock = stock_save_ms(save_model(size), Path(scratch()), rounds)
        print(
            f"  {size // MIB:>2} MB: the stock manager's whole save to a local disk {stock:.1f} ms"
        )
    results = {}
    for name, server in servers.items():
        results.update(save_on(name, server, sizes, rounds))
    return results


def save_model(size: int) -> dict:
    return {"type": "notebook", "format": "json", "content": notebook(size)}


def save_on(name: str, server: DavServer, sizes: tuple[int, ...], rounds: int) -> dict:
    results = {}
    _, url = server.folder("save")
    ours = swan_server(url)
    # Jupyter's own work for the same request: the same body, signed, validated, serialized
    preset = preset_server(Path(scratch()))
    try:
        client = httpx.Client(headers=ours.headers, timeout=300)
        raw = httpx.Client(timeout=300)
        for size in sizes:
            model = save_model(size)
            stored = client.put(f"{ours.url}/api/contents/nb.ipynb", json=model).json()
            data = raw.get(url + "nb.ipynb").content
            body = json.dumps(model)

            def save_ours(body=body, last={"etag": stored["etag"]}) -> None:  # noqa: B006
                # the model with the etag it is based on, without encoding 10 MB again here
                conditional = f"{body[:-1]}, {json.dumps('etag')}: {json.dumps(last['etag'])}}}"
                r = client.put(f"{ours.url}/api/contents/nb.ipynb", content=conditional)
                r.raise_for_status()
                last["etag"] = r.json()["etag"]

            def save_raw(data=data) -> None:
                raw.put(url + "raw.ipynb", content=data).raise_for_status()

            def save_preset(body=body) -> None:
                client.put(f"{preset.url}/api/contents/nb.ipynb", content=body).raise_for_status()

            fns = {"ours": save_ours, "raw": save_raw, "jupyter": save_preset}
            for fn in fns.values():
                fn()
            t = interleaved_medians_ms(fns, rounds)
            t_ours, t_raw, floor = t["ours"], t["raw"], t["jupyter"]
            ratio = t_ours / t_raw
            own = (t_ours - floor) / t_raw
            results[(name, size)] = (t_ours, t_raw, floor)
            print(
                f"  {name} {size // MIB:>2} MB ({len(data) / MIB:.1f} MiB stored): ours "
                f"{t_ours:7.1f} ms, raw PUT {t_raw:6.1f} ms: {ratio:.2f}x (goal <= 1.3x: "
                f"{goal(ratio <= 1.3)})\n      Jupyter's own work (request, sign, validate, "
                f"serialize; no storage) {floor:.1f} ms; (ours - Jupyter's own) / raw PUT = "
                f"{own:.2f}x (goal <= 1.3x: {goal(own <= 1.3)})"
            )
    finally:
        ours.stop()
        preset.stop()
    return results


class Poller(threading.Thread):
    """Polls GET /api/status every 5 ms and keeps the latencies (the server's responsiveness)."""

    def __init__(self, server: JupyterProcess):
        super().__init__(daemon=True)
        self.server = server
        self.latencies: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(headers=self.server.headers, timeout=60) as client:
            while not self.done.is_set():
                t0 = time.perf_counter()
                client.get(f"{self.server.url}/api/status")
                self.latencies.append(time.perf_counter() - t0)
                time.sleep(0.005)


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.baseline = self.proc.memory_info().rss
        self.peak = self.baseline
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)


def upload_in_chunks(client: httpx.Client, url: str, source: Path) -> None:
    """As JupyterLab uploads a large file: 1 MiB parts, base64 in JSON, chunk 1..n then -1."""
    size = source.stat().st_size
    with source.open("rb") as f:
        number = 0
        while True:
            part = f.read(MIB)
            number += 1
            last = f.tell() >= size
            body = {
                "type": "file",
                "format": "base64",
                "chunk": -1 if last else number,
                "content": base64.b64encode(part).decode(),
            }
            client.put(url, json=body).raise_for_status()
            if last:
                return


def bench_upload(server: ApacheDavServer, megabytes: int = 100) -> dict:
    print(f"\n== Uploading {megabytes} MB in 1 MiB base64 chunks through /api/contents (Apache)")
    local, url = server.folder("upload")
    state = Path(scratch())
    source = state / "big.bin"
    with source.open("wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(MIB))
    size = source.stat().st_size
    ours = swan_server(url, state)
    try:
        client = httpx.Client(headers=ours.headers, timeout=600)
        client.get(f"{ours.url}/api/contents/")  # warm the server up
        before = server.bytes_received()
        rss = RssSampler(ours.proc.pid)
        rss.start()
        t0 = time.perf_counter()
        upload_in_chunks(client, f"{ours.url}/api/contents/big.bin", source)
        t_ours = time.perf_counter() - t0
        rss.done.set()
        rss.join()
        sent = server.bytes_received() - before
        assert (local / "big.bin").stat().st_size == size
        with source.open("rb") as f, httpx.Client(timeout=600) as raw:
            t0 = time.perf_counter()
            raw.put(url + "raw.bin", content=f).raise_for_status()
            t_raw = time.perf_counter() - t0
        ratio = sent / size
        growth = (rss.peak - rss.baseline) / MIB
        print(
            f"  bytes sent to the storage: {sent / MIB:.1f} MiB = {ratio:.3f}x the file "
            f"(goal <= 1.05x: {goal(ratio <= 1.05)})"
        )
        print(
            f"  peak RSS growth of the server: {growth:.1f} MiB (goal <= 64 MB: "
            f"{goal(growth <= 64)})"
        )
        print(
            f"  throughput: ours {size / MIB / t_ours:.1f} MiB/s, raw PUT "
            f"{size / MIB / t_raw:.1f} MiB/s ({t_ours / t_raw:.1f}x the time; ours includes "
            "the base64 JSON round trips of 100 requests)"
        )
        stall = bench_stall(ours, client, source)
    finally:
        ours.stop()
    return {"sent_ratio": ratio, "rss_growth_mib": growth, "seconds": t_ours, "raw": t_raw, **stall}


def bench_stall(ours: JupyterProcess, client: httpx.Client, source: Path) -> dict:
    poller = Poller(ours)
    stop = threading.Event()

    def list_loop() -> None:
        with httpx.Client(headers=ours.headers, timeout=120) as c:
            while not stop.is_set():
                c.get(f"{ours.url}/api/contents/").raise_for_status()

    lister = threading.Thread(target=list_loop, daemon=True)
    poller.start()
    lister.start()
    upload_in_chunks(client, f"{ours.url}/api/contents/big2.bin", source)
    stop.set()
    poller.done.set()
    lister.join()
    poller.join()
    lat = sorted(poller.latencies)
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    print(
        f"  /api/status latency during a listing loop + this upload: median "
        f"{statistics.median(lat) * 1000:.1f} ms, p99 {p99:.1f} ms, max {lat[-1] * 1000:.1f} ms "
        f"over {len(lat)} polls (goal p99 < 50 ms: {goal(p99 < 50)})"
    )
    return {"stall_p99_ms": p99}


def start_servers() -> tuple[dict[str, DavServer], Path]:
    root = shared_root()
    servers: dict[str, DavServer] = {}
    for name, cls in (("wsgidav", WsgiDavProcess), ("apache", ApacheDavServer)):
        folder = root / name
        folder.mkdir(mode=0o777)
        folder.chmod(0o777)  # noqa: S103 - Apache's user writes here
        server = cls(folder)
        server.start()
        servers[name] = server
    return servers, root


@contextlib.contextmanager
def servers_running(prefix: str) -> Iterator[dict[str, DavServer]]:
    """WsgiDAV and Apache started, and this run's folder (WORK); all stopped and removed after."""
    global WORK
    WORK = Path(tempfile.mkdtemp(prefix=prefix))
    servers, root = start_servers()
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()
            getattr(server, "cleanup", lambda: None)()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(WORK, ignore_errors=True)


def main() -> dict:
    with servers_running("swan-bench-webdav-") as servers:
        return {
            "listing": bench_listing(servers),
            "save": bench_save(servers),
            "upload": bench_upload(servers["apache"]),
        }


if __name__ == "__main__":
    main()
