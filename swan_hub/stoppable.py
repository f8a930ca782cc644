"""`python -m swan_hub.stoppable MODULE [ARG...]` runs MODULE as `python -m MODULE [ARG...]`
would, for a service the hub starts and stops with SIGINT: a stop that comes while MODULE is
still importing (a start that failed elsewhere, on a slow machine) ends it quietly, not with
a traceback on the hub's terminal. Imports nothing but the standard library's runner."""

import contextlib
import runpy
import signal
import sys

if __name__ == "__main__":
    # Started by a hub that was a shell's background job, this process inherits SIGINT
    # ignored, and Python keeps it so: take it back, or the hub waits for the service.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = sys.argv[1:]
    with contextlib.suppress(KeyboardInterrupt):
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
