"""A lecture starts: N students (default 30) click one Open-in-SWAN link within a minute, on one
`swan up` (local servers, the drive as their storage) with a teacher and the students in its
demo group. Each student is an HTTP client doing what the browser does:

- clicks the link and logs in at the hub's login form on the way (GET for the XSRF cookie, POST);
- follows the redirects into the spawn, listens to the spawn-pending page's progress stream
  until the server is ready, and reloads the page as its script does;
- answers the link's page ("Accept and open": the class folder is shared with the group and
  the share waits for each student), landing in JupyterLab on the notebook;
- opens the notebook (the contents API GET of the path the link led to), starts a kernel
  (POST /api/sessions), runs the first cell over the kernel's websocket (Jupyter messaging:
  `execute_request`, then its `stream` output and `execute_reply`);
- saves: the shared folder is view-only, so "Copy to my files" (a contents POST) and a save of
  the copy with its outputs (a contents PUT with the copy's `etag`, as the labextension does).

Baseline, measured in the same run before the class: one student alone doing the same steps.
Prints the failures (goal 0), p50/p95 of link -> executed cell (goals 15 s and 30 s) and their
ratio to the lone student, the CPU seconds of the hub, the proxy and the drive during the class,
and the memory of each idle server, its kernel and its storage mount after it.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness.drive import Drive  # noqa: E402
from harness.swan import Swan, start_server, start_swan  # noqa: E402

STUDENTS = 30
#: Students start at random moments within this many seconds (a class arriving).
WINDOW = 60.0
SEED = 2026
TEACHER = "teacher"
ALONE = "solo"
#: `swan up`'s demo group (--demo-group), which holds every demo user.
GROUP = "class-2026"
CLASS_FOLDER = "class-2026"
NOTEBOOK = f"{CLASS_FOLDER}/week1/exercise.ipynb"
PRINTED = "hello from week 1"
CELL = f"print({PRINTED!r})"
#: Seconds each step may take before the student counts as failed at it.
STEP_TIMEOUTS = {"spawned": 180.0, "opened": 60.0, "kernel": 60.0, "executed": 60.0, "saved": 60.0}
#: What a student's record holds, in order (seconds since the click on the link).
MILESTONES = ("spawned", "opened", "executed", "saved")
REQUEST_TIMEOUT = 60.0
#: Seconds the servers are left alone after the class before their memory is read.
SETTLE = 10.0


class StepFailed(Exception):
    """A student's step went wrong; the message says what the student would have seen."""


@dataclass
class Record:
    """One student: when they clicked (seconds into the class) and what happened after."""

    name: str
    clicked_at: float = 0.0
    times: dict[str, float] = field(default_factory=dict)
    failure: str | None = None


def notebook(source: str, outputs: list[dict] | None = None, count: int | None = None) -> dict:
    """A one-cell notebook (nbformat 4.5) whose cell runs ``source``."""
    cell = {
        "cell_type": "code",
        "execution_count": count,
        "id": "first",
        "metadata": {},
        "outputs": outputs or [],
        "source": source,
    }
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def prepare_class(swan: Swan) -> str:
    """The teacher puts the exercise into the class folder (WebDAV, as a sync client does),
    shares the folder read-only with the group (the drive's OCS API) and makes the
    Open-in-SWAN link with the link generator; the link."""
    drive = Drive(swan)
    folders = NOTEBOOK.split("/")[:-1]
    for depth in range(1, len(folders) + 1):
        made = drive.dav(TEACHER, "MKCOL", "/".join(folders[:depth]))
        assert made.status_code == 201, made.text
    body = json.dumps(notebook(CELL), indent=1).encode()
    assert drive.dav(TEACHER, "PUT", NOTEBOOK, content=body).status_code in (201, 204)
    shared = drive.ocs(
        TEACHER,
        "POST",
        "shares",
        data={"path": f"/{CLASS_FOLDER}", "shareType": "1", "shareWith": GROUP, "permissions": "1"},
    )
    assert shared.status_code == 200, shared.text
    links = httpx.get(
        f"{swan.url}/services/swan-links/api/links",
        params={"path": NOTEBOOK, "owner": TEACHER},
        timeout=REQUEST_TIMEOUT,
    )
    assert links.status_code == 200, links.text
    return links.json()["link"]


def _attribute(page: str, pattern: str, what: str) -> str:
    found = re.search(pattern, page)
    if not found:
        raise StepFailed(f"no {what} on the page")
    return html.unescape(found[1])


def _hidden_inputs(form: str) -> dict[str, str]:
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', form)
    }


def _expect(r: httpx.Response, *statuses: int) -> httpx.Response:
    if r.status_code not in statuses:
        raise StepFailed(
            f"{r.request.method} {r.url.path} answered {r.status_code}: {r.text[:300]}"
        )
    return r


class Student:
    """One student's browser: a cookie jar, and what it does on each page."""

    def __init__(self, hub_url: str, name: str, password: str):
        self.hub_url = hub_url
        self.name = name
        self.password = password
        self.prefix = f"/user/{name}/"
        self.client = httpx.AsyncClient(
            base_url=hub_url, timeout=REQUEST_TIMEOUT, follow_redirects=True
        )

    async def close(self) -> None:
        await self.client.aclose()

    def api_headers(self) -> dict[str, str]:
        """What JupyterLab sends with each API call: the server's XSRF cookie as a header."""
        return {"X-XSRFToken": self.client.cookies.get("_xsrf", path=self.prefix) or ""}

    async def click_until_served(self, link: str) -> httpx.Response:
        """Click ``link``, log in on the way and wait through the spawn; the first page that
        the student's own server answers."""
        r = await self.client.get(link)
        if r.url.path.endswith("/hub/login"):
            r = await self.log_in(r)
        while "/hub/spawn-pending/" in r.url.path:
            await self.watch_progress(r.text)
            r = await self.client.get(r.url)  # the page's script reloads it once ready
        if not r.url.path.startswith(self.prefix):
            raise StepFailed(f"the link led to {r.url.path} ({r.status_code}), not the server")
        return r

    async def log_in(self, form: httpx.Response) -> httpx.Response:
        action = _attribute(form.text, r'<form action="([^"]+)" method="post"', "login form")
        data = {"username": self.name, "password": self.password}
        data["_xsrf"] = _attribute(form.text, r'name="_xsrf" value="([^"]+)"', "XSRF token")
        r = await self.client.post(str(form.url.join(action)), data=data)
        if r.url.path.endswith("/hub/login"):
            raise StepFailed(f"the login was refused ({r.status_code})")
        return r

    async def watch_progress(self, page: str) -> None:
        """Read the spawn's progress stream as the spawn-pending page's EventSource does,
        until the server is ready; a failed spawn fails the step with the hub's message."""
        url = _attribute(page, r'new EventSource\("([^"]+)"\)', "progress stream")
        headers = {"Accept": "text/event-stream"}
        async with self.client.stream("GET", url, headers=headers, timeout=None) as stream:
            _expect(stream, 200)
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("failed"):
                    raise StepFailed(f"the spawn failed: {event.get('message', event)}")
                if event.get("ready"):
                    return

    async def accept_and_open(self, page: httpx.Response) -> str:
        """Press "Accept and open" on the link's page when the share waits for an answer;
        the path of the notebook JupyterLab then shows."""
        if 'id="open-accept-form"' in page.text:
            action = _attribute(page.text, r'<form method="post" action="([^"]+)"', "form")
            page = await self.client.post(action, data=_hidden_inputs(page.text))
        lab = f"{self.prefix}lab/tree/"
        if page.status_code != 200 or not page.url.path.startswith(lab):
            reason = re.search(r'id="open-reason">([^<]*)<', page.text)
            said = html.unescape(reason[1]) if reason else page.text[:300]
            raise StepFailed(f"the link's page did not open the notebook: {said}")
        return page.url.path[len(lab) :]

    def contents_url(self, path: str) -> str:
        return f"{self.prefix}api/contents/{quote(path)}"

    async def open_notebook(self, path: str) -> dict:
        url = self.contents_url(path)
        params = {"type": "notebook", "content": "1"}
        r = _expect(await self.client.get(url, params=params, headers=self.api_headers()), 200)
        model = r.json()
        if model["content"]["cells"][0]["source"] != CELL:
            raise StepFailed(f"{path} does not hold the teacher's cell")
        return model

    async def start_kernel(self, path: str) -> dict:
        body = {
            "path": path,
            "name": path.rsplit("/", 1)[-1],
            "type": "notebook",
            "kernel": {"name": "python3"},
        }
        url = f"{self.prefix}api/sessions"
        r = await self.client.post(url, json=body, headers=self.api_headers())
        return _expect(r, 201).json()

    async def execute(self, kernel_id: str, code: str) -> tuple[list[dict], int]:
        """Run ``code`` in the kernel over its websocket; its outputs and execution count."""
        ws = await self.kernel_channels(kernel_id)
        try:
            session = uuid.uuid4().hex
            message_id = uuid.uuid4().hex
            ws.write_message(json.dumps(execute_request(self.name, session, message_id, code)))
            return await read_execution(ws, message_id)
        finally:
            ws.close()

    async def kernel_channels(self, kernel_id: str) -> WebSocketClientConnection:
        url = f"{self.hub_url}{self.prefix}api/kernels/{kernel_id}/channels"
        cookies = "; ".join(
            f"{c.name}={c.value}"
            for c in self.client.cookies.jar
            if self.prefix.startswith(c.path or "/")
        )
        request = HTTPRequest(
            url.replace("http", "ws", 1) + f"?session_id={uuid.uuid4().hex}",
            headers={"Cookie": cookies, "Origin": self.hub_url},
            connect_timeout=REQUEST_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
        )
        return await websocket_connect(request)

    async def save_copy(self, path: str, outputs: list[dict], count: int) -> dict:
        """The "Copy to my files" of a view-only notebook, then a save of the copy with the
        cell's outputs, conditional on the copy's version as the labextension's saves are."""
        headers = self.api_headers()
        copied = await self.client.post(
            self.contents_url(""), json={"copy_from": path}, headers=headers
        )
        copy = _expect(copied, 201).json()
        body = {
            "type": "notebook",
            "format": "json",
            "content": notebook(CELL, outputs, count),
            "etag": copy["etag"],
        }
        saved = await self.client.put(self.contents_url(copy["path"]), json=body, headers=headers)
        return _expect(saved, 200).json()


def execute_request(user: str, session: str, message_id: str, code: str) -> dict:
    """A Jupyter `execute_request` on the shell channel, as JupyterLab's kernel client sends."""
    header = {
        "msg_id": message_id,
        "msg_type": "execute_request",
        "username": user,
        "session": session,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "version": "5.3",
    }
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    return {
        "channel": "shell",
        "header": header,
        "parent_header": {},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


async def read_execution(ws: WebSocketClientConnection, message_id: str) -> tuple[list[dict], int]:
    """The outputs of request ``message_id`` until its `execute_reply` and the kernel's
    return to idle; fails on an error reply or a closed socket."""
    outputs: list[dict] = []
    count = 0
    replied = idle = False
    while not (replied and idle):
        raw = await ws.read_message()
        if raw is None:
            raise StepFailed(f"the kernel's websocket closed ({ws.close_code} {ws.close_reason})")
        message = json.loads(raw)
        if message.get("parent_header", {}).get("msg_id") != message_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            outputs.append(
                {"output_type": "stream", "name": content["name"], "text": content["text"]}
            )
        elif kind == "execute_reply":
            if content["status"] != "ok":
                raise StepFailed(f"the cell failed: {content.get('ename')} {content.get('evalue')}")
            count, replied = content["execution_count"], True
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
    if not any(PRINTED in o["text"] for o in outputs):
        raise StepFailed(f"the cell printed {outputs!r}, not {PRINTED!r}")
    return outputs, count


async def step(record: Record, name: str, work: Awaitable[Any], clicked: float) -> Any:
    """Await one step within its timeout; mark its time (from the click) in ``record``."""
    try:
        result = await asyncio.wait_for(work, STEP_TIMEOUTS[name])
    except asyncio.TimeoutError:
        raise StepFailed(f"no answer within {STEP_TIMEOUTS[name]:.0f} s") from None
    if name in MILESTONES:
        record.times[name] = time.perf_counter() - clicked
    return result


async def attend(hub_url: str, name: str, password: str, link: str) -> Record:
    """One student, from the click on ``link`` to the saved copy; never raises: a failure is
    in the record with the step it happened in."""
    record = Record(name)
    browser = Student(hub_url, name, password)
    clicked = time.perf_counter()
    current = "spawned"
    try:
        landed = await step(record, current, browser.click_until_served(link), clicked)
        current = "opened"
        path = await step(record, current, _open(browser, landed), clicked)
        current = "kernel"
        session = await step(record, current, browser.start_kernel(path), clicked)
        current = "executed"
        run = browser.execute(session["kernel"]["id"], CELL)
        outputs, count = await step(record, current, run, clicked)
        current = "saved"
        await step(record, current, browser.save_copy(path, outputs, count), clicked)
    except Exception as e:  # noqa: BLE001 - whatever went wrong is the student's failure
        reason = str(e) if isinstance(e, StepFailed) else f"{type(e).__name__}: {e}"
        record.failure = f"{current}: {reason}"
    finally:
        await browser.close()
    return record


async def _open(browser: Student, landed: httpx.Response) -> str:
    path = await browser.accept_and_open(landed)
    await browser.open_notebook(path)
    return path


async def lecture(
    hub_url: str, passwords: dict[str, str], names: list[str], link: str, window: float, seed: int
) -> list[Record]:
    """Every student of ``names`` clicks ``link`` at a random moment within ``window`` s."""
    rng = random.Random(seed)
    delays = {name: rng.uniform(0, window) for name in names}
    bound = sum(STEP_TIMEOUTS.values()) + 10

    async def student(name: str) -> Record:
        await asyncio.sleep(delays[name])
        try:
            record = await asyncio.wait_for(attend(hub_url, name, passwords[name], link), bound)
        except asyncio.TimeoutError:
            record = Record(name, failure=f"not done within {bound:.0f} s")
        record.clicked_at = delays[name]
        return record

    return await asyncio.gather(*(student(n) for n in names))


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (linear interpolation between the closest ranks)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent on anything but waiting, since boot."""
    t = psutil.cpu_times()
    waiting = t.idle + getattr(t, "iowait", 0.0)
    # guest time is counted in user and nice already
    counted_twice = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    return sum(t) - waiting - counted_twice


def infrastructure(swan: Swan) -> dict[str, psutil.Process]:
    """The processes every student goes through: the hub (in `swan up`'s own process), the
    proxy and the drive."""
    proxy = int((swan.data / "hub" / "proxy.pid").read_text().strip())
    drive = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "swan_hub.drive" in (p.info["cmdline"] or [])
        and str(swan.data) in " ".join(p.info["cmdline"])
    ]
    return {"hub": psutil.Process(swan.proc.pid), "proxy": psutil.Process(proxy), "drive": drive[0]}


def memory_of(processes: list[psutil.Process]) -> tuple[float, float]:
    """RSS and PSS of ``processes`` together, in MB."""
    rss = pss = 0
    for p in processes:
        info = p.memory_full_info()
        rss, pss = rss + info.rss, pss + info.pss
    return rss / 1e6, pss / 1e6


def user_processes(swan: Swan, name: str) -> dict[str, list[psutil.Process]]:
    """``name``'s server process, its kernels, and the rclone mount of its storage."""
    found: dict[str, list[psutil.Process]] = {"server": [], "kernel": [], "mount": []}
    runtime = str(swan.data / "runtime" / name) + "/"
    for p in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        try:
            if "swan-singleuser" in cmdline and p.environ().get("JUPYTERHUB_USER") == name:
                found["server"].append(p)
                found["kernel"] += [
                    c for c in p.children(recursive=True) if "ipykernel" in " ".join(c.cmdline())
                ]
            elif "rclone" in cmdline and runtime in cmdline:
                found["mount"].append(p)
        except psutil.Error:
            continue
    return found


def students_cpu_seconds(swan: Swan, names: list[str]) -> dict[str, float]:
    """CPU seconds of ``names``' servers, kernels and mounts (all started during the class),
    summed over the students, per part."""
    totals = {"servers": 0.0, "kernels": 0.0, "mounts": 0.0}
    for name in names:
        for part, processes in user_processes(swan, name).items():
            totals[f"{part}s"] += sum(cpu_seconds(p) for p in processes)
    return totals


def idle_memory(swan: Swan, names: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Per part (server, kernel, mount, all three), the (RSS, PSS) in MB of each user's."""
    table: dict[str, list[tuple[float, float]]] = {
        "server": [],
        "kernel": [],
        "mount": [],
        "all": [],
    }
    for name in names:
        parts = user_processes(swan, name)
        if not parts["server"]:
            continue
        for part, processes in parts.items():
            table[part].append(memory_of(processes))
        table["all"].append(memory_of([p for ps in parts.values() for p in ps]))
    return table


def main(students: int = STUDENTS, window: float = WINDOW, seed: int = SEED) -> dict:
    names = [f"s{i:02d}" for i in range(1, students + 1)]
    with tempfile.TemporaryDirectory(prefix="swan-bench-lecture-") as tmp:
        users = ",".join([TEACHER, ALONE, *names])
        swan = start_swan(Path(tmp), "--demo-group", GROUP, users=users)
        try:
            link = prepare_class(swan)
            # The teacher's own server, on the projector; it also warms the disk caches, so
            # that the lone student's spawn is not a cold one.
            start_server(swan, TEACHER)
            passwords = swan.passwords()
            alone = asyncio.run(attend(swan.url, ALONE, passwords[ALONE], link))
            parts = infrastructure(swan)
            parts["browsers"] = psutil.Process()  # the students' HTTP clients: this process
            cpu_before = {part: cpu_seconds(p) for part, p in parts.items()}
            machine_before = machine_busy_seconds()
            t0 = time.perf_counter()
            records = asyncio.run(lecture(swan.url, passwords, names, link, window, seed))
            duration = time.perf_counter() - t0
            cpu = {part: cpu_seconds(p) - cpu_before[part] for part, p in parts.items()}
            cpu.update(students_cpu_seconds(swan, names))
            cpu["machine"] = machine_busy_seconds() - machine_before
            time.sleep(SETTLE)
            memory = idle_memory(swan, names)
        finally:
            swan.kill_everything()
    return report(students, window, alone, records, duration, cpu, memory)


def report(
    students: int,
    window: float,
    alone: Record,
    records: list[Record],
    duration: float,
    cpu: dict[str, float],
    memory: dict[str, list[tuple[float, float]]],
) -> dict:
    print(
        f"\nLecture start: {students} students click one Open-in-SWAN link within {window:.0f} s "
        f"(swan up, local servers, drive storage); the class took {duration:.0f} s"
    )
    failed = [r for r in records if r.failure]
    print(f"  failures: {len(failed)} of {students} (goal 0)")
    for r in failed:
        print(f"    {r.name} (clicked at {r.clicked_at:.1f} s): {r.failure}")
    if alone.failure:
        print(f"  the lone student failed too: {alone.failure}")
    results: dict[str, Any] = {"failures": len(failed), "cpu_seconds": cpu}
    print(
        f"  {'link ->':<12} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'alone s':>8} {'p50/alone':>10}"
    )
    for milestone in MILESTONES:
        values = [r.times[milestone] for r in records if milestone in r.times]
        if not values:
            continue
        row = {
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "max": max(values),
            "alone": alone.times.get(milestone),
        }
        results[milestone] = row
        base = f"{row['alone']:>8.1f} {row['p50'] / row['alone']:>9.1f}x" if row["alone"] else ""
        print(f"  {milestone:<12} {row['p50']:>7.1f} {row['p95']:>7.1f} {row['max']:>7.1f} {base}")
    executed = results.get("executed")
    if executed:
        print(
            f"  link -> executed cell: p50 {executed['p50']:.1f} s (goal <= 15), "
            f"p95 {executed['p95']:.1f} s (goal <= 30)"
        )
    print_cpu(cpu, duration)
    print(f"  memory after {SETTLE:.0f} s idle, per user (MB, median / max; server goal <= 120):")
    labels = {"server": "server", "kernel": "its kernel", "mount": "its mount", "all": "together"}
    for part, values in memory.items():
        if not values:
            continue
        rss = [v[0] for v in values]
        pss = [v[1] for v in values]
        results[f"memory_{part}"] = {"rss": statistics.median(rss), "pss": statistics.median(pss)}
        print(
            f"    {labels[part]:<11} RSS {statistics.median(rss):>6.0f} / {max(rss):>6.0f}"
            f"   PSS {statistics.median(pss):>6.0f} / {max(pss):>6.0f}"
        )
    return results


def print_cpu(cpu: dict[str, float], duration: float) -> None:
    """The CPU seconds of each part during the class, and what the rest of the machine used."""
    ours = sum(v for k, v in cpu.items() if k != "machine")
    available = duration * (psutil.cpu_count() or 1)
    print(
        f"  CPU seconds during the class: hub {cpu['hub']:.1f}, proxy {cpu['proxy']:.1f}, "
        f"drive {cpu['drive']:.1f}; the students' servers {cpu['servers']:.1f}, kernels "
        f"{cpu['kernels']:.1f}, mounts {cpu['mounts']:.1f}, browsers {cpu['browsers']:.1f}"
    )
    print(
        f"  the machine: {cpu['machine']:.0f} CPU s busy of {available:.0f} "
        f"({psutil.cpu_count()} cores), {ours:.0f} of them this run's, "
        f"{max(0.0, cpu['machine'] - ours):.0f} other work"
    )


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("students", nargs="?", type=int, default=STUDENTS)
    parser.add_argument(
        "--window", type=float, default=WINDOW, help="seconds the clicks spread over"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the click times")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _arguments(sys.argv[1:])
    main(args.students, args.window, args.seed)
