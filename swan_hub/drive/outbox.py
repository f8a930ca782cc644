"""The drive's notifications to other sites (OCM ``/notifications``: a share changed, ended,
accepted, declined), kept until delivered: each is kept in the drive's state before it is sent,
tried at once, and, while the other site cannot be reached, sent again with growing pauses for a
few days, also after a restart of the drive. The newest notification about a share replaces one
not delivered yet.

It owns the retry schedule; the calls are `mesh.Mesh`'s (signed as every call), the records
`state.DriveState`'s. It must not change shares: what a notification says stands here already.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .mesh import Mesh, PeerCannotSign, PeerError
from .state import DriveState

log = logging.getLogger("swan_hub.drive")

#: answers after which a notification is sent again: the other site could not take it now
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: the longest the sending thread sleeps without looking at the state again (seconds)
LONGEST_SLEEP = 60.0


def notification_key(provider: str, document: dict[str, Any]) -> str:
    """What a notification is about: one share (its id at the sending side and its secret,
    unique to it) at one site. A later notification with the same key replaces it."""
    secret = (document.get("notification") or {}).get("sharedSecret", "")
    return f"{provider} {document.get('providerId', '')} {secret}"


class Outbox:
    """Notifications to other sites until they are delivered or ``give_up_after`` seconds
    have passed since the first try; the pause after the n-th failed try is
    ``first_pause * 2**(n-1)``, at most ``longest_pause``."""

    def __init__(
        self,
        state: DriveState,
        mesh: Mesh,
        *,
        first_pause: float = 10.0,
        longest_pause: float = 3600.0,
        give_up_after: float = 3 * 86400.0,
    ):
        self.state = state
        self.mesh = mesh
        self.first_pause = first_pause
        self.longest_pause = longest_pause
        self.give_up_after = give_up_after
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # one try at a time per notification: an older one is never sent after a newer one
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}
        self._locks_lock = threading.Lock()

    def notify(self, provider: str, document: dict[str, Any]) -> bool:
        """Keep ``document`` for ``provider`` (replacing what is kept about the same share)
        and try it now; whether it was delivered. The change it tells stands either way."""
        key = notification_key(provider, document)
        body = json.dumps(document, sort_keys=True)
        self.state.keep_notification(key, provider, body, time.time())
        delivered = self._try(key)
        if not delivered:
            self._wake.set()
        return delivered

    def pause(self, attempts: int) -> float:
        """The pause after ``attempts`` failed tries."""
        return min(self.first_pause * 2 ** max(attempts - 1, 0), self.longest_pause)

    def send_due(self) -> None:
        """Try every kept notification whose pause is over."""
        for row in self.state.due_notifications(time.time()):
            self._try(row["key"], only_if_due=True)

    @contextmanager
    def _holding(self, key: str) -> Iterator[None]:
        with self._locks_lock:
            entry = self._locks.setdefault(key, (threading.Lock(), [0]))
            entry[1][0] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._locks_lock:
                entry[1][0] -= 1
                if not entry[1][0]:
                    del self._locks[key]

    def _try(self, key: str, *, only_if_due: bool = False) -> bool:
        with self._holding(key):
            row = self.state.kept_notification(key)
            if row is None:
                return True  # delivered meanwhile
            if only_if_due and row["next_try"] > time.time():
                return False  # tried meanwhile
            return self._try_row(key, row)

    def _try_row(self, key: str, row: Any) -> bool:
        provider, body = row["provider"], row["document"]
        document = json.loads(body)
        kind = document.get("notificationType")
        if self.mesh.trusted(provider) is None:
            log.warning("OCM notification %s to %s dropped: no longer trusted", kind, provider)
            self.state.forget_notification(key, body)
            return False
        try:
            answer = self.mesh.post(provider, "notifications", document)
            problem = "" if answer.status in (200, 201) else f"answered {answer.status}"
            retry = answer.status in RETRY_STATUSES
            if problem and not retry:
                log.warning(
                    "OCM notification %s to %s %s, not sent again: %s",
                    kind,
                    provider,
                    problem,
                    answer.document,
                )
        except PeerCannotSign as e:
            problem, retry = e.message, False
            log.warning("OCM notification %s to %s not sent: %s", kind, provider, problem)
        except PeerError as e:
            problem, retry = e.message, True
        if not problem or not retry:
            self.state.forget_notification(key, body)
            return not problem
        attempts = row["attempts"] + 1
        now = time.time()
        if now - row["first_tried"] >= self.give_up_after:
            log.warning(
                "OCM notification %s to %s given up after %d tries: %s",
                kind,
                provider,
                attempts,
                problem,
            )
            self.state.forget_notification(key, body)
            return False
        pause = self.pause(attempts)
        log.warning(
            "OCM notification %s to %s failed (try %d), sent again in %.0f s: %s",
            kind,
            provider,
            attempts,
            pause,
            problem,
        )
        self.state.retry_notification(key, body, attempts, now + pause)
        return False

    # -- the sending thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Send kept notifications in a thread of their own, also those kept before a
        restart."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ocm-outbox", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.send_due()
                upcoming = self.state.next_notification_time()
            except Exception:  # the thread must outlive a bad row or a locked database
                log.exception("OCM notifications: sending again failed")
                upcoming = None
            sleep = LONGEST_SLEEP if upcoming is None else upcoming - time.time()
            self._wake.wait(min(max(sleep, 0.05), LONGEST_SLEEP))
            self._wake.clear()
