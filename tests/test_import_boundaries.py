"""Each process imports only what it uses, checked in a fresh interpreter per case: the hub's
configuration, the drive and the links service load none of the user server's packages
(jupyter_server, nbformat, jsonschema), and `swan --help` loads no JupyterHub at all."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from harness.swan import swan_env

#: The user server's packages; on a loaded machine importing them took the drive 30-60 s.
SERVER_PACKAGES = {"jupyter_server", "nbformat", "nbconvert", "jsonschema"}
PROJECT_PACKAGES = ("swan_hub", "swan_contents", "swan_share_ext")


def modules_after(code: str) -> set[str]:
    """The top-level packages loaded once ``code`` ran in a fresh interpreter."""
    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + "\n" + report],
        env=swan_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    names = json.loads(done.stdout.strip().splitlines()[-1])
    return {name.split(".")[0] for name in names} | set(names)


def test_the_hub_configuration_loads_none_of_the_user_servers_packages(tmp_path):
    # The configuration and the spawner, not JupyterHub's own application module, which loads
    # jsonschema for its event log (jupyter_events) whatever the configuration.
    loaded = modules_after(
        f"""
        from swan_hub.cli import DataDir, build_config, make_parser
        from swan_hub.spawner import SwanLocalSpawner
        args = make_parser().parse_args(["up", "--users", "alice"])
        args.storage = "drive"
        data = DataDir({str(tmp_path)!r})
        data.create()
        build_config(args, data)
        """
    )
    assert "jupyterhub" in loaded  # the spawner's base class
    assert loaded & SERVER_PACKAGES == set()
    assert "swan_contents.manager" not in loaded


def test_the_drive_loads_none_of_the_user_servers_packages():
    loaded = modules_after("import swan_hub.drive.service")
    assert loaded & SERVER_PACKAGES == set()
    # its calls to other sites use the open-in URL policy, and nothing else of the extension
    assert "swan_share_ext.open_in.safety" in loaded
    assert "swan_share_ext.handlers" not in loaded
    assert "swan_contents.manager" not in loaded
    assert "swan_contents.storage.posix" not in loaded


def test_the_links_service_loads_neither_jupyterhub_nor_the_user_servers_packages():
    loaded = modules_after("import swan_hub.links")
    assert loaded & (SERVER_PACKAGES | {"jupyterhub", "swan_contents"}) == set()


def test_swan_help_loads_no_jupyterhub_and_few_modules():
    loaded = modules_after(
        """
        import contextlib, io
        from swan_hub.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main(["up", "--help"])
        """
    )
    bare = modules_after("pass")
    assert loaded & {"jupyterhub", "tornado", "traitlets", "sqlalchemy"} == set()
    assert len(loaded - bare) < 60, sorted(loaded - bare)


def test_the_open_in_extension_loads_without_the_hubs_links_module():
    loaded = modules_after("import swan_share_ext.open_in.handlers")
    assert "swan_hub.links" not in loaded


def test_the_public_class_paths_still_resolve_lazily():
    loaded = modules_after(
        """
        from traitlets.utils.importstring import import_item
        assert import_item("swan_contents.SwanContentsManager").__name__ == "SwanContentsManager"
        assert import_item("swan_contents.storage.WebDAVStorage").__name__ == "WebDAVStorage"
        from swan_contents.storage import PosixStorage, NotFound
        """
    )
    assert {"swan_contents.manager", "swan_contents.storage.webdav"} <= loaded


def test_the_user_servers_start_builds_no_iri_grammar():
    # What `swan-singleuser` does before it starts the server, and what the server then loads:
    # no rfc3987_syntax (a second of CPU at every start) and so no lark; jsonschema's other
    # format checkers stay. (The module left out sits in sys.modules as None: dropped here.)
    loaded = modules_after(
        """
        import sys
        from swan_hub.singleuser import leave_out_unused_format_checkers
        leave_out_unused_format_checkers()
        import jupyterhub.singleuser, jupyter_server.serverapp, jupyterlab
        import swan_contents.manager, swan_share_ext
        from jsonschema import Draft7Validator
        checkers = Draft7Validator.FORMAT_CHECKER.checkers
        assert "uri" in checkers and "date-time" in checkers and "iri" not in checkers, checkers
        for name in [k for k, v in sys.modules.items() if v is None]:
            del sys.modules[name]
        """
    )
    assert loaded & {"rfc3987_syntax", "lark"} == set()
    assert {"jupyter_server", "jsonschema", "swan_share_ext"} <= loaded


def test_no_schema_the_server_loads_names_the_formats_left_unchecked():
    # The guard of the above: a schema of jupyter-server, jupyter-events, JupyterLab's server,
    # nbformat or this project that used `iri` or `iri-reference` would lose its check.
    import importlib.util
    from pathlib import Path

    pattern = re.compile(r"""["']?format["']?\s*:\s*["']?iri(-reference)?\b""")
    roots = [Path(__file__).resolve().parent.parent / name for name in PROJECT_PACKAGES]
    for name in ("jupyter_server", "jupyter_events", "jupyterlab_server", "nbformat"):
        roots.append(Path(importlib.util.find_spec(name).origin).parent)
    named = [
        str(path)
        for root in roots
        for path in root.rglob("*")
        if path.suffix in {".json", ".yaml", ".yml"}
        and pattern.search(path.read_text(errors="replace"))
    ]
    assert len(roots) == 7 and named == []
