"""Write docs/configuration.md from the configurable traits of our classes and `swan up --help`.

The page is generated so it cannot drift from the code: tests/test_docs.py fails when the
committed page differs from what this prints.
Run `python scripts/config_reference.py > docs/configuration.md`.
"""

from __future__ import annotations

import importlib
import inspect
import io
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: (import path, section heading); each class lists only the options it defines itself.
CLASSES = [
    ("swan_contents.SwanContentsManager", "Contents manager (user's server)"),
    ("swan_contents.storage.webdav.WebDAVStorage", "WebDAV storage (user's server)"),
    ("swan_hub.spawner.SwanSpawnerMixin", "Every SWAN spawner"),
    ("swan_hub.spawner.SwanContainerMixin", "Spawners of containers (Docker, Kubernetes)"),
    ("swan_hub.spawner.SwanLocalSpawner", "Local-process spawner"),
    ("swan_hub.mounts.StorageMountConfig", "Mounts for kernels and terminals"),
    ("swan_hub.docker.SwanDockerSpawner", "Docker spawner"),
    ("swan_hub.kube.SwanKubeSpawner", "Kubernetes spawner"),
    ("swan_hub.auth.SwanDemoAuthenticator", "Demo logins of `swan up`"),
    ("swan_hub.drive.service.DriveService", "Embedded drive (`<data-dir>/drive/drive_config.py`)"),
    ("swan_share_ext.open_in.config.SwanOpenIn", "Open in SWAN (user's server)"),
    ("swan_share_ext.upload.SwanUpload", "Streamed uploads (user's server)"),
    ("swan_share_ext.OCSShareBackend", "Sharing through the storage's OCS API (user's server)"),
]

HEADER = """\
# Configuration reference

Generated from the code by `scripts/config_reference.py`; do not edit by hand.

Hub options go into a `jupyterhub_config.py` given to `swan up -f FILE` (or to `jupyterhub -f`);
user-server options are passed by the spawner as command-line options, or go into the server's
`jupyter_server_config.py`. Options of a mixin are set under the mixin's own name
(`c.SwanSpawnerMixin.space_template = ...`) and apply to every spawner built on it.
"""


def _class(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _default(cls: type, name: str, trait) -> str:
    # a default computed per instance (@default) is described in the help, not shown as a value
    if any(name in vars(klass).get("_trait_default_generators", {}) for klass in cls.__mro__):
        return "computed when the server or hub starts (see below)"
    return f"`{trait.default_value_repr()}`"


def _help(trait) -> str:
    return inspect.cleandoc(trait.help or "(no description)")


def class_section(path: str, title: str) -> str:
    cls = _class(path)
    out = [
        f"## {title}: `{cls.__name__}`",
        "",
        inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0],
    ]
    for name, trait in sorted(cls.class_own_traits(config=True).items()):
        out += [
            "",
            f"### `c.{cls.__name__}.{name}`",
            "",
            f"{type(trait).__name__}, default {_default(cls, name, trait)}",
            "",
            _help(trait),
        ]
    return "\n".join(out)


def swan_up_help() -> str:
    from swan_hub.cli import make_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; the page must not vary
    parser = make_parser()
    up = parser._subparsers._group_actions[0].choices["up"]
    text = io.StringIO()
    with redirect_stdout(text):
        up.print_help()
    return "## `swan up` command line\n\n```\n" + text.getvalue().rstrip() + "\n```"


def render() -> str:
    sections = [HEADER, swan_up_help()]
    sections += [class_section(path, title) for path, title in CLASSES]
    return "\n\n".join(s.rstrip() for s in sections) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
