"""Local sources for the open-in tests and benchmark: an HTTP server with scripted answers that
counts what it was asked, and a real git smart-HTTP server (`git http-backend`) on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Answer = Callable[[BaseHTTPRequestHandler], None]


def reply(status: int = 200, body: bytes = b"", **headers: str) -> Answer:
    """An answer with a fixed status, body and headers (Content-Length unless given)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        sent = {k.replace("_", "-").lower(): v for k, v in headers.items()}
        for name, value in sent.items():
            handler.send_header(name, value)
        if "content-length" not in sent:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def redirect(location: str, status: int = 302) -> Answer:
    return reply(status, b"", Location=location)


def trickle(total: int, every: float) -> Answer:
    """A body of ``total`` bytes sent one byte per ``every`` seconds (a slow source)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        for _ in range(total):
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(every)

    return answer


def endless(chunk: int = 64 * 1024) -> Answer:
    """A body without Content-Length that never ends (until the client hangs up)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        data = b"y" * chunk
        for _ in range(100_000):
            try:
                handler.wfile.write(data)
            except OSError:
                return

    return answer


@dataclass
class SourceServer:
    """An HTTP/1.0 server on ``host`` answering ``routes[path]``; 404 elsewhere."""

    host: str = "127.0.0.2"
    routes: dict[str, Answer] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                answer = server.routes.get(self.path.split("?", 1)[0])
                (answer or reply(404, b"not here"))(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def requested(self, path: str) -> int:
        return sum(1 for p in self.requests if p.split("?", 1)[0] == path)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class GitHttpServer:
    """Serves the bare repositories under ``root`` with git's own smart-HTTP CGI program."""

    def __init__(self, root: Path, host: str = "127.0.0.2") -> None:
        self.root = root
        self.host = host
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _cgi(self) -> None:
                server.requests.append(f"{self.command} {self.path}")
                path, _, query = self.path.partition("?")
                body = self._body()
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_ADDR": self.client_address[0],
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "HOME": str(server.root),
                }
                for header in ("Content-Encoding", "Git-Protocol"):
                    if self.headers.get(header):
                        env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
                done = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                if not _:
                    head, _, payload = done.stdout.partition(b"\n\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            do_GET = _cgi
            do_POST = _cgi

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port}/{name}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Upstream",
        "GIT_AUTHOR_EMAIL": "upstream@example.org",
        "GIT_COMMITTER_NAME": "Upstream",
        "GIT_COMMITTER_EMAIL": "upstream@example.org",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


class UpstreamRepository:
    """A working repository whose commits are pushed to a bare one served by `GitHttpServer`."""

    def __init__(self, root: Path, name: str) -> None:
        self.bare = root / "served" / f"{name}.git"
        self.work = root / "upstream" / name
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True)
        git(self.bare.parent, "init", "--bare", "-q", "-b", "main", self.bare.name)
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "remote", "add", "origin", str(self.bare))

    def commit(self, files: dict[str, str | bytes], message: str = "change") -> str:
        for path, content in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD").strip()


def server_config(space: Path, state: Path, **open_in: object) -> dict:
    """jupyter-server config for the open-in tests: our contents manager on ``space`` and the
    extension, with ``open_in`` as the SwanOpenIn settings."""
    return {
        "ServerApp": {
            "root_dir": str(space),
            "contents_manager_class": "swan_contents.SwanContentsManager",
            "jpserver_extensions": {"swan_share_ext": True},
        },
        "SwanContentsManager": {"versions_dir": str(state / "versions")},
        "SwanOpenIn": {"state_dir": str(state / "open-in"), **open_in},
    }


async def post_open(jp_fetch: Callable, params: dict) -> list[dict]:
    """The events of POST /swan/api/open, or the JSON error as a single error event."""
    r = await jp_fetch(
        "swan", "api", "open", method="POST", body=json.dumps(params), raise_error=False
    )
    text = r.body.decode()
    if r.code != 200:
        return [{"event": "error", "status": r.code, **json.loads(text)}]
    return [json.loads(line) for line in text.splitlines() if line.strip()]
