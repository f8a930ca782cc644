"""Rendered previews of notebooks and markdown for the drive's pages, made outside the drive's
process: nbconvert and nbformat take seconds to load and much memory, and a hostile or huge
notebook must not take the drive down with it.

`Renderer` (the drive's side, standard library only) starts ``python -m swan_hub.drive.render``
once. That process loads nbconvert and forks one worker per file; a worker gets the file as an
open descriptor (the drive opened it without following links), runs under ``RLIMIT_AS`` and
``RLIMIT_CPU``, and answers on a socket of its own. The drive waits for the answer until a
deadline and kills a worker that misses it. Rendered pages are cached by the file's ETag.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("swan_hub.drive")

#: what a worker's answer says about the file, with the drive's HTTP status for it
RENDERED, UNREADABLE, TOO_LARGE, BUSY = "rendered", "unreadable", "too-large", "busy"
STATUS = {RENDERED: 200, UNREADABLE: 422, TOO_LARGE: 413, BUSY: 503}
KINDS = ("notebook", "markdown")
#: how long a preview may wait for the renderer process to load nbconvert (seconds)
LOADING_SECONDS = 60
#: output types a preview shows; everything else (scripts, widgets, vendor types) is left out
SHOWN_OUTPUT_TYPES = (
    "text/html",
    "text/markdown",
    "text/latex",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/svg+xml",
    "text/plain",
)


@dataclass(frozen=True)
class Limits:
    """The bounds of one preview (`DriveService.preview_*`)."""

    seconds: float = 10.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 50 << 20
    cells: int = 1000
    output_bytes: int = 10 << 20
    #: HTML and markdown sanitised in all: bleach reads tag-dense HTML (a pandas table) at
    #: about 150 KB a second on a loaded 2-core machine
    html_bytes: int = 256 << 10


@dataclass(frozen=True)
class Preview:
    """A worker's answer: what became of the file, and the page (or the sentence) for it."""

    outcome: str
    body: str

    @property
    def status(self) -> int:
        return STATUS[self.outcome]


BUSY_PREVIEW = Preview(BUSY, "The drive is busy making other previews; try again in a moment.")


# -- the drive's side ----------------------------------------------------------------------------


class Renderer:
    """The renderer process of one drive, started on first use (or by `start`), and the cache
    of what it rendered. Thread-safe: each request gets a worker and a socket of its own."""

    def __init__(self, limits: Limits | None = None, cache_bytes: int = 64 << 20, workers: int = 2):
        self.limits = limits or Limits()
        self.cache = RenderCache(cache_bytes)
        self._lock = threading.Lock()
        #: renders at once: the drive's CPUs are shared with the notebook servers
        self._slots = threading.BoundedSemaphore(workers)
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None

    def start(self) -> None:
        """Start the renderer now (if it is not running), so that the first preview does not
        wait for it to load."""
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> socket.socket:
        if self._process is not None and self._process.poll() is None and self._control:
            return self._control
        if self._control is not None:
            self._control.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "swan_hub.drive.render", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        self._control = ours
        return ours

    def stop(self) -> None:
        """Stop the renderer process (its workers end with their files)."""
        with self._lock:
            if self._control is not None:
                self._control.close()
                self._control = None
            if self._process is not None:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                self._process.wait()
                self._process = None

    def render(self, f: Any, kind: str, key: tuple) -> Preview:
        """The preview of the open file ``f`` as ``kind``, from the cache under ``key`` (the
        file's identity and ETag) when it was rendered before."""
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        size = os.fstat(f.fileno()).st_size
        if size > self.limits.file_bytes:
            mb = self.limits.file_bytes >> 20
            return Preview(TOO_LARGE, f"This file is too large to preview (over {mb} MB).")
        if not self._slots.acquire(timeout=self.limits.seconds):
            return BUSY_PREVIEW
        try:
            preview = self._render_in_worker(f, kind)
        finally:
            self._slots.release()
        if preview.outcome in (RENDERED, UNREADABLE):  # a slow one may render next time
            self.cache.put(key, preview)
        return preview

    def _render_in_worker(self, f: Any, kind: str) -> Preview:
        """The answer of a worker for ``f``; when the renderer died before it forked one (its
        answer never started), a new renderer gets the job once more."""
        for restart in (False, True):
            preview = self._job(f, kind, restart=restart)
            if preview is not None:
                return preview
        return BUSY_PREVIEW

    def _job(self, f: Any, kind: str, *, restart: bool) -> Preview | None:
        mine, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        job = json.dumps({"kind": kind, "limits": self.limits.__dict__}).encode()
        try:
            with self._lock:
                control = self._restart() if restart else self._ensure_started()
                try:
                    socket.send_fds(control, [job], [f.fileno(), worker_end.fileno()])
                except OSError:  # the renderer is gone
                    return None
            worker_end.close()
            return self._read_answer(mine)
        finally:
            worker_end.close()
            mine.close()

    def _restart(self) -> socket.socket:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            self._process.wait()
        self._process = None
        return self._ensure_started()

    def _read_answer(self, sock: socket.socket) -> Preview | None:
        """The worker's answer: its pid, a line of JSON, then the page. The time bound starts
        when the worker does (the renderer may still be loading nbconvert); past it the worker
        is killed and the file called too large."""
        too_slow = Preview(
            TOO_LARGE,
            f"This file is too large to preview: rendering it took longer than "
            f"{self.limits.seconds:g} s.",
        )
        data = bytearray()
        deadline = time.monotonic() + LOADING_SECONDS
        pid = None
        while True:
            try:
                sock.settimeout(max(0.0, deadline - time.monotonic()) or 1e-6)
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                _kill(pid)
                return too_slow if pid is not None else BUSY_PREVIEW
            if not chunk:  # the worker is done
                break
            data += chunk
            if pid is None and b"\n" in data:
                first, _, rest = bytes(data).partition(b"\n")
                pid = int(first)
                data = bytearray(rest)
                deadline = time.monotonic() + self.limits.seconds
        if pid is None:  # no worker ever answered: the renderer died with the job
            return None
        head, _, body = bytes(data).partition(b"\n")
        try:
            outcome = json.loads(head)["outcome"]
        except (ValueError, KeyError):
            # the worker died without an answer: out of memory, or killed by its CPU limit
            return Preview(
                TOO_LARGE,
                "This file is too large to preview: rendering it needed more memory or time "
                "than the drive gives a preview.",
            )
        return Preview(outcome, body.decode("utf-8", "replace"))


def _kill(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class RenderCache:
    """Rendered previews by key, the least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Preview] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Preview | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple, preview: Preview) -> None:
        size = len(preview.body)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._items[key] = preview
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.body)


# -- the renderer process ------------------------------------------------------------------------


def serve(control: socket.socket) -> None:
    """Fork a worker for each job until the drive closes ``control``."""
    exporter = make_exporter()
    # load the templates once, so that each worker starts with them compiled
    render_notebook(exporter, b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers
    while True:
        try:
            job, fds, _, _ = socket.recv_fds(control, 4096, 2)
        except OSError:
            return
        if not job:
            return
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            control.close()
            code = 1
            try:
                code = work(exporter, json.loads(job), *fds)
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)


def work(exporter: Any, job: dict, file_fd: int, reply_fd: int) -> int:
    """Render one file within the job's limits and write the answer to ``reply_fd``."""
    limits = Limits(**job["limits"])
    reply = socket.socket(fileno=reply_fd)
    reply.sendall(f"{os.getpid()}\n".encode())
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    cpu = int(limits.seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    # a worker killed by its CPU limit leaves no core file in the drive's folder
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError):
        os.nice(5)
    try:
        data = read_from_start(file_fd, limits.file_bytes + 1)
        if job["kind"] == "markdown":
            outcome, body = RENDERED, render_markdown(exporter, data)
        else:
            outcome, body = RENDERED, render_notebook(exporter, data, limits)
    except MemoryError:
        outcome, body = TOO_LARGE, "This file is too large to preview: it needs too much memory."
    except Unreadable as e:
        outcome, body = UNREADABLE, str(e)
    except Exception as e:  # nbconvert's many ways of failing on a malformed notebook
        outcome, body = UNREADABLE, f"This notebook could not be rendered: {type(e).__name__}."
    reply.sendall(json.dumps({"outcome": outcome}).encode() + b"\n" + body.encode())
    reply.close()
    return 0


def read_from_start(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of the file ``fd`` from its start, whatever its shared offset."""
    parts = []
    offset = 0
    while offset < limit:
        part = os.pread(fd, min(limit - offset, 1 << 24), offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
    os.close(fd)
    return b"".join(parts)


class Unreadable(Exception):
    """A file that is not what its name says (a notebook that is not JSON, not UTF-8)."""


def make_exporter() -> Any:
    from nbconvert import HTMLExporter

    # nbconvert warns about every image without a description: not the drive log's business
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    return HTMLExporter(
        template_name="basic",
        sanitize_html=True,
        exclude_anchor_links=True,
        filters={"clean_html": clean_html},
    )


#: tags and attributes kept in notebook HTML and markdown; the rest is shown as text
ALLOWED_TAGS = frozenset(
    {
        *("a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd"),
        *("del", "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3"),
        *("h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q"),
        *("s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody"),
        *("td", "tfoot", "th", "thead", "tr", "u", "ul", "var"),
    }
)


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "title", "align", "colspan", "rowspan", "alt", "id"):
        return True
    if tag == "a" and name == "href":
        return value.startswith(("https://", "http://", "mailto:", "#"))
    if tag == "img" and name == "src":
        # images inside the notebook only: nothing is fetched from anywhere
        return value.startswith("data:image/") and not value.startswith("data:image/svg")
    return tag == "img" and name in ("width", "height")


def clean_html(html: str | bytes) -> str:
    """HTML of a notebook (markdown cells, outputs) with nothing that runs or fetches: the
    tags of text, tables and images, images from data: URLs only."""
    import bleach

    text = html.decode() if isinstance(html, bytes) else str(html)
    return bleach.clean(
        text,
        tags=ALLOWED_TAGS,
        attributes=_allowed_attribute,
        protocols=["http", "https", "mailto", "data"],
        strip_comments=True,
    )


def render_notebook(exporter: Any, data: bytes, limits: Limits | None = None) -> str:
    """The HTML of the notebook in ``data``, its outputs sanitised and cut to ``limits``."""
    import nbformat

    limits = limits or Limits()
    try:
        text = data.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        raise Unreadable("This notebook could not be read: it is not UTF-8 text.") from None
    except ValueError as e:
        raise Unreadable(f"This notebook could not be read: it is not valid JSON ({e}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells", []), list):
        raise Unreadable("This notebook could not be read: it has no list of cells.")
    with contextlib.redirect_stderr(open(os.devnull, "w")):  # noqa: SIM115 - validation chatter
        notebook = nbformat.reads(text, as_version=4)
    notices = cut_to_limits(notebook, limits)
    body, _ = exporter.from_notebook_node(notebook)
    notes = "".join(f"<p class='notice' role='note'>{_escape(n)}</p>\n" for n in notices)
    return notes + body


def render_markdown(exporter: Any, data: bytes) -> str:
    """Markdown as sanitised HTML, rendered as a notebook of one markdown cell would be."""
    import nbformat

    text = data.decode("utf-8", "replace")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    body, _ = exporter.from_notebook_node(notebook)
    return body


def cut_to_limits(notebook: Any, limits: Limits) -> list[str]:
    """Leave out what a preview does not show (script and widget outputs) and what is past the
    limits: cells beyond ``limits.cells``, outputs beyond ``limits.output_bytes`` in all, HTML
    and markdown beyond ``limits.html_bytes`` in all (an HTML output then shows its plain text
    where it has one). The notices say what was left out."""
    notices = []
    if len(notebook.cells) > limits.cells:
        notices.append(
            f"This preview shows the first {limits.cells:,} of {len(notebook.cells):,} cells."
        )
        del notebook.cells[limits.cells :]
    budget = Budget(limits.output_bytes, limits.html_bytes)
    for cell in notebook.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if budget.keep_output(o)]
        else:
            cell.pop("attachments", None)
            if not budget.take_html(len(cell.get("source", ""))):
                cell["source"] = "*(This cell is left out of the preview.)*"
                budget.cut_cells += 1
    if budget.cut_outputs:
        notices.append(
            f"This preview leaves out {budget.cut_outputs:,} outputs past the first "
            f"{limits.output_bytes >> 20} MB of outputs."
        )
    if budget.cut_cells or budget.plain:
        notices.append(
            f"This preview shows {budget.cut_cells + budget.plain:,} cells or outputs as plain "
            f"text or not at all: they hold more than {limits.html_bytes >> 10} KB of HTML and "
            "markdown in all."
        )
    if notices:
        notices.append("Download the notebook or open it in SWAN to see it all.")
    return notices


class Budget:
    """What is left of a preview's output and HTML limits, and what was left out."""

    def __init__(self, output_bytes: int, html_bytes: int):
        self.output_bytes = output_bytes
        self.html_bytes = html_bytes
        self.cut_outputs = self.cut_cells = self.plain = 0

    def take_html(self, size: int) -> bool:
        if size > self.html_bytes:
            return False
        self.html_bytes -= size
        return True

    def keep_output(self, output: Any) -> bool:
        data = output.get("data")
        if data is not None:
            for key in [k for k in data if k not in SHOWN_OUTPUT_TYPES]:
                del data[key]
            for key in ("text/html", "text/markdown"):
                if key in data and not self.take_html(len(data[key])):
                    del data[key]
                    self.plain += 1
            if not data:
                return False
        size = len(json.dumps(output))
        if size > self.output_bytes:
            self.cut_outputs += 1
            self.output_bytes = 0
            return False
        self.output_bytes -= size
        return True


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main(argv: list[str]) -> None:
    control = socket.socket(fileno=int(argv[0]))
    serve(control)


if __name__ == "__main__":
    main(sys.argv[1:])
