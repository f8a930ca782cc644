"""A real jupyter-server in a child process on a free 127.0.0.1 port, for tests that must kill it
and for benchmarks that measure it from outside."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from harness.dav_servers import free_port

TOKEN = "swan-test-token"


class JupyterProcess:
    """`jupyter server` serving `root` with the given contents manager and extra options."""

    def __init__(
        self,
        root: Path,
        state: Path,
        manager: str,
        options: list[str] = (),
        env: dict[str, str] | None = None,
        log: Path | None = None,
        log_level: str = "WARN",
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        state.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            f"--ServerApp.contents_manager_class={manager}",
            f"--SwanContentsManager.versions_dir={state / 'versions'}",
            f"--ServerApp.log_level={log_level}",
            *options,
        ]
        # its runtime files, trust database and desktop trash (the stock manager's deletes) stay
        # in `state`, out of the home of whoever runs it
        env = {
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
            "JUPYTER_DATA_DIR": str(state / "data"),
            "XDG_DATA_HOME": str(state / "data-home"),
            **(env or {}),
        }
        # the server's log goes to `log` when given (tests that read what it logged)
        output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child's
        try:
            self.proc = subprocess.Popen(args, env=env, stdout=output, stderr=output, cwd=state)
        finally:
            if log:
                output.close()
        self.headers = {"Authorization": f"token {TOKEN}"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/status", headers=self.headers).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter-server with {manager} did not start")

    def __enter__(self) -> JupyterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
