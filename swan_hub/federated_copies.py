"""Code's copies of the single files other sites share with the user.

rclone, the FUSE client of the mounts, mounts folders only, and the secret of a single file
shared over Open Cloud Mesh opens that file alone, no folder around it. So kernels and terminals
see such a file as a copy, kept read-only in the local folder the read-only mount of
``Shared/`` joins in (``swan_hub.mounts.FEDERATED_POINTS``): fetched when the share is accepted,
checked against the other site every REFRESH seconds with a conditional ``GET`` (nothing is
fetched while it is unchanged), replaced whole when it changed, removed when the share ends or
the other site refuses its secret, and kept as it is while that site cannot be reached (code
then reads what it read last, as a synced file reads offline).

It must not block the hub's event loop (a round runs in a thread of its own, one at a time per
server), follow a redirect, keep a half-fetched file where code can see it, or write a secret
anywhere but into the request that needs it.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

#: Seconds between two looks at the other site for one file.
REFRESH = 10.0
#: The largest file copied for code; a larger one stays for the file browser (logged).
MAX_BYTES = 2 * 1024**3
#: Bounds of one request to the other site: connecting, and each wait for bytes.
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
#: Answers by which the other site says the share is gone or its secret no longer opens it.
GONE = (401, 403, 404, 410)


@dataclass
class _Copy:
    """What is known of one file's copy: the share it was made for, the other site's ETag of
    the copied bytes ("" when there is no copy), when the site was last asked, and what the
    last look found wrong (said once in the log, not at every look)."""

    share: Any
    etag: str = ""
    checked: float = float("-inf")
    trouble: str = ""


class FederatedFileCopies:
    """The copies, in ``folder`` (code sees its files as ``Shared/<name>``); ``work_dir`` holds
    the files being fetched, out of code's sight, on the same file system."""

    def __init__(self, folder: str, work_dir: str, *, refresh: float = REFRESH) -> None:
        self.folder = folder
        self.fetching = os.path.join(work_dir, "federated-fetching")
        self.refresh_every = refresh
        self._copies: dict[str, _Copy] = {}
        self._round: threading.Thread | None = None
        self._stopped = threading.Event()
        #: whether a round looked for copies left from before (a restarted hub's)
        self._swept = False

    # -- called from the hub's event loop -------------------------------------------------------

    def follow(self, files: dict[str, Any], log: Any = None) -> None:
        """Start a round over ``files`` (name under ``Shared/`` -> FederatedShare of a single
        file) in a thread of its own, unless the last round still runs (a large file on its
        way): the next call starts the next round. Nothing starts where there is nothing to
        copy or remove (most servers: the hub calls this every few seconds)."""
        if self._stopped.is_set() or (self._round is not None and self._round.is_alive()):
            return
        if not files and not self._copies and self._swept:
            return
        self._round = threading.Thread(
            target=self.round, args=(dict(files), log), name="federated-copies", daemon=True
        )
        self._round.start()

    def stop(self, wait: float = 10.0) -> None:
        """No round starts any more; a running one gives up at its next block. The copies
        are removed by whoever removes ``folder`` (the mounts' start and stop)."""
        self._stopped.set()
        if self._round is not None:
            self._round.join(wait)

    # -- a round (blocking) ------------------------------------------------------------------

    def round(self, files: dict[str, Any], log: Any = None) -> None:
        """Remove the copies of shares that ended (also those a restarted hub finds, made
        before it), then fetch what is new or changed."""
        for name in set(self._copies) - set(files):
            del self._copies[name]
        with contextlib.suppress(FileNotFoundError), os.scandir(self.folder) as entries:
            ended = [e.name for e in entries if e.name not in files and not e.is_dir()]
        for name in ended:
            self._remove(name)
        self._swept = True
        due = []
        for name, share in sorted(files.items()):
            known = self._copies.get(name)
            if known is None or known.share != share:
                if known is not None:
                    self._remove(name)  # another secret or address: start afresh
                known = self._copies[name] = _Copy(share)
            if time.monotonic() - known.checked >= self.refresh_every:
                due.append((name, known))
        if not due:
            return
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            for name, known in due:
                if self._stopped.is_set():
                    return
                known.checked = time.monotonic()
                trouble = self._fetch(client, name, known)
                if trouble != known.trouble and trouble and log is not None:
                    log.warning("The copy for code of %s of another site: %s", name, trouble)
                known.trouble = trouble

    def _fetch(self, client: httpx.Client, name: str, known: _Copy) -> str:
        """Bring the copy of ``name`` up to date; what went wrong ("" when nothing did)."""
        share = known.share
        headers = {"Authorization": authorization(share)}
        if known.etag:
            headers["If-None-Match"] = known.etag
        os.makedirs(self.fetching, mode=0o700, exist_ok=True)
        part = os.path.join(self.fetching, f"{name}.part")
        try:
            with client.stream("GET", share.url, headers=headers) as r:
                if r.status_code == 304:
                    return ""
                if r.status_code in GONE:
                    self._remove(name)
                    known.etag = ""
                    return f"its site refuses it ({r.status_code}); removed"
                if r.status_code != 200:
                    return f"its site answered {r.status_code}; the last copy is kept"
                length = r.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > MAX_BYTES:
                    self._remove(name)
                    known.etag = ""
                    return f"{int(length)} bytes is more than {MAX_BYTES} copied for code"
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    received = 0
                    for block in r.iter_bytes(1 << 20):
                        if self._stopped.is_set():
                            return "the server stopped"
                        received += len(block)
                        if received > MAX_BYTES:
                            return f"more than {MAX_BYTES} bytes copied for code; not copied"
                        out.write(block)
                modified = _http_time(r.headers.get("Last-Modified"))
                if modified is not None:
                    os.utime(part, (modified, modified))
                os.replace(part, os.path.join(self.folder, name))
                known.etag = r.headers.get("ETag", "")
                return ""
        except httpx.HTTPError as e:
            return f"its site cannot be reached ({type(e).__name__}); the last copy is kept"
        except OSError as e:
            return f"cannot be written here ({e.strerror})"
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)

    def _remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.folder, name))


def authorization(share: Any) -> str:
    """The ``Authorization`` header that opens a share of another site: its secret as a bearer
    token, or as the user name of Basic (OCM 1.0), password empty."""
    if share.auth == "basic":
        return "Basic " + base64.b64encode(f"{share.secret}:".encode()).decode()
    return f"Bearer {share.secret}"


def _http_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None
