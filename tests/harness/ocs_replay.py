"""A real HTTP server on 127.0.0.1 that answers OCS requests from recorded exchanges.

No Nextcloud, ownCloud or Reva server can run here, so their answers are replayed from the files in
tests/recordings/ (each names where its shapes come from). Like the real servers it wants
`OCS-APIRequest: true`, answers XML unless asked for `format=json`, and refuses wrong credentials.
A recording may move the server from one scenario state to another ("when" / "then"), so that a
share created is listed afterwards and gone once revoked. Every request is kept for assertions.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    matched: str | None


@dataclass
class OCSReplay:
    """A recording served on 127.0.0.1; `url` is the storage's base URL for the backend."""

    recording: dict[str, Any]
    state: str = "start"
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, name: str) -> OCSReplay:
        return cls(json.loads((RECORDINGS / f"{name}.json").read_text()))

    # -- what tests read ----------------------------------------------------------------------

    def requests(self, method: str | None = None, path_end: str = "") -> list[Seen]:
        """Requests received so far (all of them but status.php), optionally filtered."""
        return [
            s
            for s in self.seen
            if not s.path.endswith("/status.php")
            and (method is None or s.method == method)
            and s.path.endswith(path_end)
        ]

    @property
    def unmatched(self) -> list[Seen]:
        return [s for s in self.seen if s.matched is None]

    # -- serving ------------------------------------------------------------------------------

    def start(self) -> OCSReplay:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_any(self) -> None:
                status, body, content_type = replay.answer(self)
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_any  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, str, str]:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8") if length else ""
        form = dict(parse_qsl(raw, keep_blank_values=True))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            seen = Seen(handler.command, parts.path, query, form, headers, None)
            self.seen.append(seen)
            if parts.path.endswith("/status.php"):
                seen.matched = "status.php"
                return 200, json.dumps(self.recording["status"]), "application/json"
            refusal = self._refusal(headers, query)
            if refusal is not None:
                seen.matched = "refused"
                return refusal
            for exchange in self.recording["exchanges"]:
                if self._matches(exchange, seen):
                    seen.matched = exchange["name"]
                    self.state = exchange.get("then", self.state)
                    response = exchange["response"]
                    return response["status"], json.dumps(response["body"]), "application/json"
        return 500, f"no recording answers {handler.command} {handler.path}", "text/plain"

    def _refusal(self, headers: dict[str, str], query: dict[str, str]) -> tuple | None:
        if headers.get("ocs-apirequest") != "true":
            # what Nextcloud and ownCloud answer to a request without the CSRF header
            return 401, json.dumps({"message": "CSRF check failed"}), "application/json"
        credentials = self.recording["credentials"]
        expected = {
            "Basic "
            + base64.b64encode(
                f"{credentials['user']}:{credentials['password']}".encode()
            ).decode(),
            f"Bearer {credentials.get('token', '')}",
        }
        if headers.get("authorization") not in expected:
            refused = self.recording["unauthorized"]
            return refused["status"], json.dumps(refused["body"]), "application/json"
        if query.get("format") != "json":
            return 200, "<?xml version='1.0'?><ocs><meta/></ocs>", "text/xml"
        return None

    def _matches(self, exchange: dict[str, Any], seen: Seen) -> bool:
        request = exchange["request"]
        if exchange.get("when", self.state) != self.state:
            return False
        if request["method"] != seen.method or request["path"] != seen.path:
            return False
        # a recorded query value of null means the parameter must be absent
        wanted_query = request.get("query", {})
        if any(seen.query.get(k) != v for k, v in wanted_query.items()):
            return False
        return all(seen.form.get(k) == v for k, v in request.get("form", {}).items())
