"""`swan-singleuser`: the user server's command, JupyterHub's `jupyterhub-singleuser` started
without the one import that costs it a second and serves nothing.

jupyter-server loads `jsonschema` for its event schemas, and `jsonschema` loads every format
checker it finds installed. `rfc3987_syntax` (pulled in by `jsonschema[format-nongpl]`, which
jupyter-events requires) builds some thirty Earley parsers at import time for the `iri` and
`iri-reference` formats: about 1 CPU-second of every server start, and of the hub's. No schema
of jupyter-server, jupyter-events, JupyterLab, nbformat or this project names those formats, so a
process of the suite marks the module as absent before anything imports `jsonschema`;
`jsonschema` then leaves those two formats unchecked, as it does wherever the module is not
installed. `docs/capacity.md` has the measurement.
"""

from __future__ import annotations

import os
import shutil
import sys

#: the console script of `main` (pyproject.toml), the spawners' default command
SINGLEUSER_COMMAND = "swan-singleuser"

#: format-checker back ends that are imported for formats no schema of the suite uses
UNUSED_FORMAT_MODULES = ("rfc3987_syntax",)


def leave_out_unused_format_checkers() -> None:
    """Make ``import rfc3987_syntax`` fail in this process unless it already happened."""
    for name in UNUSED_FORMAT_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def choose_shell() -> None:
    """Give terminals bash where the server's environment names no shell (a container's, whose
    user has no login shell the spawner could know): jupyter-server would start ``sh``, which in
    a Debian image is dash, with no line editing, completion or history."""
    bash = shutil.which("bash")
    if bash and not os.environ.get("SHELL"):
        os.environ["SHELL"] = bash


def main() -> None:
    """Run JupyterHub's single-user server, with its arguments, lighter by the above, and with
    bash for its terminals (`choose_shell`)."""
    leave_out_unused_format_checkers()
    choose_shell()
    from jupyterhub.singleuser import main as singleuser_main

    sys.exit(singleuser_main())
