"""`gc_paused()`: hold Python's cyclic garbage collector off while a listing is turned into
thousands of small objects, in any thread. It must only wrap synchronous code that makes no
reference cycles (never an `await`), so pausing the collector loses nothing. `freeze_once()`:
keep the objects of a started server out of every later collection.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (and back on after, if it was on).

    A listing of 1,000 entries builds some 15,000 XML elements and then 1,000 entries and models
    that all stay alive until the answer is sent. In a jupyter-server, whose heap holds a few
    hundred thousand objects, so many survivors make the collector scan the whole heap several
    times per listing: measured, that is half the time of parsing the listing. Nothing built here
    forms a cycle, so reference counting frees all of it without the collector.

    Blocks may run at once in several threads (a listing's stats in a worker thread while the
    event loop makes models, the drive's requests in its worker threads): the collector is
    back on, if it was on before the first of them, when the last of them ends.
    """
    global _pausing, _was_enabled
    with _pause_lock:
        if not _pausing:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausing -= 1
            if not _pausing and _was_enabled:
                gc.enable()


_pause_lock = threading.Lock()
#: the blocks running with the collector paused, and whether it was on before the first
_pausing = 0
_was_enabled = False


_frozen = False


def freeze_once() -> None:
    """Move every object alive now out of the collector's sight for good (`gc.freeze`), once
    per process.

    Called when the server serves its first contents request: its modules, configuration and
    extensions are loaded by then, some 200,000 objects that live as long as the server. Each
    full collection scanned all of them, holding the event loop (every request of the user)
    for 50-200 ms on a loaded machine, several times a minute while big folders were listed
    (measured: `benchmarks/stalls.py`). Frozen, a full collection scans only what came later.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()
