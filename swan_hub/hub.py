"""JupyterHub as `swan up` runs it: the start banner, printed only once the hub answers through
the proxy, and a failed start that stops what it started and says why in one sentence.

It must not build the configuration (that is `cli.py`) nor hold spawner or authenticator logic.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from typing import Any

from jupyterhub import orm
from jupyterhub.app import JupyterHub
from jupyterhub.proxy import ConfigurableHTTPProxy
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Dict, Integer, Unicode

from swan_hub.auth import PASSWORDS_FILE, SwanDemoAuthenticator
from swan_hub.cli import PROXY_INSTALL_HINT, SERVICE_START_TIMEOUT

#: Seconds to wait for the hub's login page through the proxy once JupyterHub has started.
READY_TIMEOUT = 60.0

STORAGE_LINES = {
    "drive": "  notebook servers reach their space through the drive (WebDAV + OCS, sharing on)",
    "posix": "  notebook servers read their space as a folder (--storage posix: no sharing)",
}


class StartFailed(Exception):
    """`swan up` could not start; the message is the one sentence the user reads."""


class SwanHub(JupyterHub):
    """JupyterHub as run by `swan up`: no implicit ./jupyterhub_config.py, a start banner."""

    swan_data_dir = Unicode("", help="The data directory of `swan up`, for the banner.")
    swan_demo_passwords = Dict(help="Demo users and their plain passwords, for the banner.")
    swan_storage = Unicode(
        "drive", help="How servers reach their space (--storage), for the banner."
    )
    swan_cull_timeout = Integer(
        0, help="Seconds after which idle servers are stopped (0: never), for the banner."
    )

    #: why the start failed, when a step of JupyterHub's start said more than its exit does
    _start_failure = ""

    def load_config_file(self, filename: str, path: Any = None) -> None:
        # JupyterHub's default would pick up a jupyterhub_config.py from whatever directory
        # `swan up` was started in; only a file the admin names with -f is loaded.
        if "config_file" in self.config.JupyterHub:
            super().load_config_file(filename, path=path)

    async def initialize(self, *args: Any, **kwargs: Any) -> None:
        await super().initialize(*args, **kwargs)
        proxy = getattr(self, "proxy", None)
        if (
            isinstance(proxy, ConfigurableHTTPProxy)
            and proxy.should_start
            and shutil.which(proxy.command[0]) is None
        ):
            print(PROXY_INSTALL_HINT, file=sys.stderr)
            self._start_failure = "configurable-http-proxy was not found on PATH"
            self.exit(1)

    async def launch_instance_async(self, argv: Any = None) -> None:
        # JupyterHub's own version exits on a failed start with a traceback and leaves the
        # proxy and the services it started running, holding the ports.
        try:
            await self.initialize(argv)
            await self.start()
        except SystemExit as e:
            if not e.code:
                raise
            reason = self._start_failure or self._proxy_failure()
            await self._fail(reason or "JupyterHub stopped while starting")
        except StartFailed as e:
            await self._fail(str(e))
        except Exception as e:
            self.log.debug("Start of swan up failed", exc_info=True)
            await self._fail(self._start_failure or self._proxy_failure() or _one_line(e))

    async def _fail(self, reason: str) -> None:
        try:
            await self.cleanup()
        except Exception:
            # cleanup() assumes a complete start (e.g. a proxy process to stop); what did
            # start was stopped before the step that raised.
            self.log.debug("Cleaning up after a failed start", exc_info=True)
        print(f"swan up: SWAN did not start: {reason}.", file=sys.stderr, flush=True)
        self.exit(1)

    async def start_service(self, service_name: str, service: Any, ssl_context: Any = None) -> bool:
        started = await super().start_service(service_name, service, ssl_context)
        if started and service.managed and not service.url:
            # JupyterHub waits for no service without a URL (the idle culler): one that fails
            # at once would be restarted at every poll, forever, behind a banner that says all
            # is well. Such a service counts as started once it has called the hub's API.
            self._first_calls.append(asyncio.ensure_future(self._first_call(service_name, service)))
        if not started and service.managed:
            status = await service.spawner.poll() if service.spawner else None
            if service.spawner is None:
                self._start_failure = f"the {service_name} service could not be started"
            elif status is not None:
                self._start_failure = (
                    f"the {service_name} service exited with status {status} before it answered"
                )
            else:
                self._start_failure = (
                    f"the {service_name} service did not answer at {service.url} "
                    f"within {service.timeout} s"
                )
        return started

    async def start(self) -> None:
        self._first_calls: list[asyncio.Future[None]] = []
        await super().start()
        try:
            await asyncio.gather(self._wait_for_login_page(), *self._first_calls)
        finally:
            for waiting in self._first_calls:
                waiting.cancel()
        print(self._banner(), flush=True)

    async def _first_call(self, name: str, service: Any) -> None:
        """Return once ``service`` has called the hub's API with its token; fail if its
        process ends first or it does not call within the services' start timeout."""
        token = orm.APIToken.find(self.db, service.api_token)
        deadline = time.monotonic() + SERVICE_START_TIMEOUT
        while token is None or token.last_activity is None:
            status = await service.spawner.poll()
            if status is not None:
                raise StartFailed(
                    f"the {name} service exited with status {status} before it reached the hub"
                )
            if time.monotonic() > deadline:
                raise StartFailed(
                    f"the {name} service did not call the hub within {SERVICE_START_TIMEOUT} s"
                )
            await asyncio.sleep(0.2)
            if token is None:
                token = orm.APIToken.find(self.db, service.api_token)
            else:
                self.db.refresh(token)

    async def _wait_for_login_page(self) -> None:
        """Return once the hub's login page answers through this instance's proxy."""
        url = f"{self.local_url()}hub/login"
        client = AsyncHTTPClient()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self._proxy_failure():
                raise StartFailed(self._proxy_failure())
            try:
                await client.fetch(url, follow_redirects=False, request_timeout=10)
                return
            except HTTPClientError as e:
                if e.code in (301, 302, 303, 307, 308):  # an authenticator that logs in elsewhere
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StartFailed(
                    f"the hub did not answer at {url} within {READY_TIMEOUT:.0f} s "
                    f"(does another program hold port {self.port}?)"
                )
            await asyncio.sleep(0.2)

    def _proxy_failure(self) -> str:
        """Why this run's proxy is not running, or "" while it runs (or was never started)."""
        # What answers on the port must be this instance's proxy, not one left running by
        # something else: ours exits at once when the port is taken.
        process = getattr(getattr(self, "proxy", None), "proxy_process", None)
        if process is None or process.poll() is None:
            return ""
        return (
            f"configurable-http-proxy exited with status {process.poll()} "
            f"(is port {self.port} in use?)"
        )

    def local_url(self) -> str:
        """The hub's URL through the proxy, on loopback when it listens on every address."""
        host = self.ip if self.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
        return f"http://{host}:{self.port}{self.base_url}"

    def _code_lines(self) -> list[str]:
        from swan_hub.mounts import StorageMountMixin, missing_parts

        spawner = self.spawner_class
        mounts = isinstance(spawner, type) and issubclass(spawner, StorageMountMixin)
        if self.swan_storage != "drive" or not mounts:
            return []
        missing = missing_parts()
        if missing:
            return [f"  kernels and terminals see only the local folder, not the shares: {missing}"]
        return ["  kernels and terminals see the same files, shares included (an rclone mount)"]

    def _cull_line(self) -> str:
        if not self.swan_cull_timeout:
            return "Idle servers keep running (--no-cull)."
        minutes, seconds = divmod(self.swan_cull_timeout, 60)
        idle = f"{minutes} min" if not seconds else f"{self.swan_cull_timeout} s"
        return (
            f"Servers idle for {idle} are stopped (their files stay; "
            "--cull-timeout SECONDS or --no-cull to change it)."
        )

    def _banner(self) -> str:
        url = self.local_url()
        lines = ["", f"SWAN is running at {url}", ""]
        if isinstance(self.authenticator, SwanDemoAuthenticator):
            lines.append("Log in with one of the demo users:")
            width = max((len(n) for n in self.swan_demo_passwords), default=0)
            for name, password in self.swan_demo_passwords.items():
                shown = password or "(unchanged; not stored, restart with --reset-passwords)"
                lines.append(f"    {name.ljust(width)}  {shown}")
            lines.append(f"(also in {os.path.join(self.swan_data_dir, 'hub', PASSWORDS_FILE)})")
        else:
            lines.append(f"Log in with {type(self.authenticator).__name__}.")
        lines += [
            "",
            f"Data directory: {self.swan_data_dir}",
            f"  storage spaces: {os.path.join(self.swan_data_dir, 'users', '<name>')}",
            STORAGE_LINES[self.swan_storage],
            *self._code_lines(),
            self._cull_line(),
            f"Drive (web page, WebDAV and desktop sync clients): {url}services/drive/",
            "  sync clients log in with the hub user name and a token from "
            f"{url}hub/token as password",
            "Stop with Ctrl-C.",
            "",
        ]
        return "\n".join(lines)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
