"""A watchdog inside a jupyter-server, for `benchmarks/stalls.py`: it notices every time the event
loop was held longer than 20 ms and what it was running then. Loaded only by the benchmark (as
the server extension `stall_watch`, from this folder); it changes nothing the server does.

A callback on the loop beats every 5 ms; a thread looks every 2 ms whether the beat is late,
and while it is, samples the loop thread's stack (`sys._current_frames`). A stall is the delay
of a beat; its work the loop thread's CPU time meanwhile (a stall with little of it waited for
a CPU or for the GIL); its stack the one sampled most often during it. `GET /stall-watch`
answers the stalls so far, the one with the most work first (and forgets them).
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import threading
import time
import traceback
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

#: A stall is a beat this much later than planned.
THRESHOLD = 0.020
BEAT = 0.005
SAMPLE = 0.002
#: Frames kept of each sampled stack, from the innermost.
DEPTH = 14

Stack = tuple[tuple[str, int, str], ...]


class Watch:
    """The beat on the loop and the sampling thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.planned = time.monotonic() + BEAT
        self.cpu = time.thread_time()
        self.samples: list[Stack] = []
        self.stalls: list[tuple[float, float, Stack]] = []
        self.lock = threading.Lock()
        loop.call_later(BEAT, self.beat)
        threading.Thread(target=self.sample, daemon=True, name="stall-watch").start()

    def beat(self) -> None:
        now, cpu = time.monotonic(), time.thread_time()
        late = now - self.planned
        with self.lock:
            if late > THRESHOLD:
                common = collections.Counter(self.samples).most_common(1)
                # the loop thread's own CPU time meanwhile: the work that held the loop, as
                # against waiting for a CPU (a loaded machine) or for the GIL (another thread)
                worked = min(late, cpu - self.cpu)
                self.stalls.append((late, worked, common[0][0] if common else ()))
            self.samples = []
            self.planned = now + BEAT
            self.cpu = cpu
        self.loop.call_later(BEAT, self.beat)

    def sample(self) -> None:
        while True:
            time.sleep(SAMPLE)
            if time.monotonic() - self.planned <= THRESHOLD:
                continue
            frame = sys._current_frames().get(self.loop_thread)
            if frame is None:
                continue
            summary = traceback.StackSummary.extract(
                traceback.walk_stack(frame), limit=DEPTH, lookup_lines=False
            )
            with self.lock:
                self.samples.append(tuple((f.filename, f.lineno, f.name) for f in summary))

    def report(self) -> dict[str, Any]:
        with self.lock:
            stalls, self.stalls = self.stalls, []
        stalls.sort(key=lambda s: -s[1])
        return {
            "count": len(stalls),
            "seconds": [round(s, 4) for s, _, _ in stalls],
            "cpu_seconds": [round(w, 4) for _, w, _ in stalls],
            "longest": [
                {
                    "ms": round(s * 1000, 1),
                    "cpu_ms": round(w * 1000, 1),
                    "stack": [list(f) for f in stack],
                }
                for s, w, stack in stalls[:3]
            ],
        }


class StallWatchHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(self.settings["stall_watch"].report()))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "stall_watch"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    def start() -> None:  # on the running loop, from its own thread
        serverapp.web_app.settings["stall_watch"] = Watch(asyncio.get_running_loop())

    IOLoop.current().add_callback(start)
    serverapp.web_app.add_handlers(".*$", [(r"/stall-watch", StallWatchHandler)])
