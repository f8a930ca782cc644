"""Real WebDAV servers on free 127.0.0.1 ports for tests and benchmarks: WsgiDAV (embedded, in a
thread, with cheroot), Apache 2.4 mod_dav (Debian `apache2`, a private config in a temp dir) and
the suite's own drive (as `swan up` runs it, with a real hub checking its tokens).

Each counts the requests it serves (WsgiDAV with a WSGI middleware, Apache and the drive from
their access logs), so tests can assert what an operation costs at the server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote, unquote

import httpx

APACHE = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
DAV_USER = "alice"
DAV_PASSWORD = "app-password-of-alice"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_listening(port: int, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on 127.0.0.1:{port}")


class DavServer:
    """A WebDAV server serving `root` (a local folder) at http://127.0.0.1:<port>/."""

    name = ""
    username: str | None = None
    password: str | None = None

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def folder(self, name: str) -> tuple[Path, str]:
        """A new empty folder on the server: its local path and its URL."""
        local = self.root / name
        local.mkdir(mode=0o777)
        os.chmod(local, 0o777)  # noqa: S103 - Apache's user writes here, tests too
        return local, f"{self.url}{name}/"

    def requests(self) -> list[tuple[str, str]]:
        """(method, decoded path) of every request served so far."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class WsgiDavServer(DavServer):
    """WsgiDAV 4 with its file system provider and basic auth, in a thread of this process."""

    name = "wsgidav"
    username = DAV_USER
    password = DAV_PASSWORD

    def __init__(self, root: Path):
        super().__init__(root)
        self._log: list[tuple[str, str]] = []
        self._server = None
        self._thread: threading.Thread | None = None

    def requests(self) -> list[tuple[str, str]]:
        return list(self._log)

    def _counting(self, app):
        def middleware(environ, start_response):
            self._log.append((environ["REQUEST_METHOD"], unquote(environ.get("PATH_INFO", ""))))
            return app(environ, start_response)

        return middleware

    def provider_mapping(self) -> dict:
        """WsgiDAV's share paths and what serves each (a folder, or a provider)."""
        return {"/": str(self.root)}

    def wsgi_app(self, dav_app):
        """The application the HTTP server runs: WsgiDAV's, counted."""
        return self._counting(dav_app)

    def start(self) -> None:
        from cheroot import wsgi
        from wsgidav.wsgidav_app import WsgiDAVApp

        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "provider_mapping": self.provider_mapping(),
            "simple_dc": {
                "user_mapping": {
                    "*": {self.username: {"password": self.password}} if self.username else True
                }
            },
            "http_authenticator": {
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "dir_browser": {"enable": False},
            "lock_storage": True,
            "verbose": 1,
            "logging": {"enable_loggers": []},
        }
        app = WsgiDAVApp(config)
        self._server = wsgi.Server(("127.0.0.1", self.port), self.wsgi_app(app), numthreads=8)
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, daemon=True)
        self._thread.start()
        _wait_until_listening(self.port, self.name)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._thread.join(timeout=10)
            self._server = None


class ApacheDavServer(DavServer):
    """Apache 2.4 with mod_dav_fs, no auth, as a child process (foreground, its own config)."""

    name = "apache"

    def __init__(self, root: Path):
        super().__init__(root)
        self.state = Path(tempfile.mkdtemp(prefix="swan-apache-"))
        self.access_log = self.state / "access.log"
        self.proc: subprocess.Popen | None = None
        self._user = self._run_user()

    @staticmethod
    def _run_user() -> str:
        """Apache refuses to serve as root; it switches to this user (www-data where present)."""
        if os.geteuid() != 0:
            return pwd.getpwuid(os.geteuid()).pw_name
        try:
            pwd.getpwnam("www-data")
            return "www-data"
        except KeyError:
            return "nobody"

    def config(self) -> str:
        modules = [
            ("mpm_event_module", "mod_mpm_event.so"),
            ("authz_core_module", "mod_authz_core.so"),
            ("mime_module", "mod_mime.so"),
            ("dav_module", "mod_dav.so"),
            ("dav_fs_module", "mod_dav_fs.so"),
        ]
        loads = "\n".join(f"LoadModule {m} {APACHE_MODULES}/{f}" for m, f in modules)
        group = "www-data" if self._user == "www-data" else "nogroup"
        return f"""
ServerRoot {self.state}
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
{loads}
User {self._user}
Group {group}
PidFile {self.state}/httpd.pid
DefaultRuntimeDir {self.state}
Mutex file:{self.state} default
ErrorLog {self.state}/error.log
LogLevel warn
LogFormat "%m %U %>s %{{Content-Length}}i" swan
CustomLog {self.access_log} swan
TypesConfig /etc/mime.types
KeepAlive On
MaxKeepAliveRequests 0
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
LimitRequestBody 0
LimitXMLRequestBody 0
DavLockDB {self.state}/davlock
DocumentRoot {self.root}
<Directory />
  Require all denied
</Directory>
<Directory {self.root}>
  Dav On
  Require all granted
  AllowOverride None
</Directory>
"""

    def start(self) -> None:
        os.chmod(self.state, 0o777)  # noqa: S103 - Apache's user keeps its lock DB here
        (self.state / "httpd.conf").write_text(self.config())
        conf = str(self.state / "httpd.conf")
        check = subprocess.run([APACHE, "-f", conf, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"Apache refuses its config: {check.stderr.strip()}")
        self.proc = subprocess.Popen(
            [APACHE, "-f", conf, "-DFOREGROUND"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_until_listening(self.port, "Apache")
        except RuntimeError:
            self.stop()
            log = self.state / "error.log"
            raise RuntimeError(
                f"Apache did not start: {log.read_text() if log.exists() else 'no log'}"
            ) from None

    def requests(self) -> list[tuple[str, str]]:
        # Apache logs a request just after answering it: wait until the log stops growing
        lines, previous = self._log_lines(), None
        while lines != previous:
            time.sleep(0.03)
            previous, lines = lines, self._log_lines()
        return [(m, unquote(p)) for m, p, *_ in (line.split(" ") for line in lines if line)]

    def bytes_received(self) -> int:
        """Request body bytes the server was sent (from each request's Content-Length)."""
        self.requests()
        total = 0
        for line in self._log_lines():
            length = line.rsplit(" ", 1)[-1]
            total += int(length) if length.isdigit() else 0
        return total

    def _log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        shutil.rmtree(self.state, ignore_errors=True)


class DriveDavServer(DavServer):
    """The embedded drive as `swan up` runs it: real hub, proxy and drive service, the drive called
    on its own loopback port (as the notebook servers of `swan up` call it) with alice's hub
    token as app password. Test folders are folders of alice's space."""

    name = "drive"
    username = DAV_USER

    def __init__(self, root: Path, settings: str = ""):
        super().__init__(root)
        self.swan = None
        self.drive_url = ""
        self.access_log = root / "drive-access.log"
        #: more of the drive's settings (``c.DriveService.*`` lines)
        self.settings = settings

    @property
    def data(self) -> Path:
        return self.root / "swan-data"

    @property
    def url(self) -> str:
        return f"{self.drive_url}/remote.php/dav/files/{self.username}/"

    def folder(self, name: str) -> tuple[Path, str]:
        local = self.data / "users" / self.username / name
        local.mkdir(parents=True)
        return local, f"{self.url}{quote(name)}/"

    def start(self) -> None:
        from harness.swan import drive_url, log_in, start_swan, write_drive_config

        settings = f"c.DriveService.access_log = {str(self.access_log)!r}\n{self.settings}"
        write_drive_config(self.root, settings)
        self.swan = start_swan(self.root, users=self.username)
        self.password = log_in(self.swan, self.username)
        self.drive_url = drive_url(self.swan)

    def requests(self) -> list[tuple[str, str]]:
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        return [(m, unquote(p)) for m, p, _ in (line.split(" ") for line in lines if line)]

    def stop(self) -> None:
        if self.swan is not None:
            self.swan.kill_everything()
            self.swan = None


SERVERS = {"wsgidav": WsgiDavServer, "apache": ApacheDavServer, "drive": DriveDavServer}


def apache_available() -> bool:
    return os.access(APACHE, os.X_OK)


def shared_root() -> Path:
    """A folder every server process can reach (Apache runs as another user)."""
    root = Path(tempfile.mkdtemp(prefix="swan-dav-"))
    os.chmod(root, 0o777)  # noqa: S103 - reached by Apache's user and by tests
    return root


def raw_client(server: DavServer) -> httpx.Client:
    auth = (server.username, server.password) if server.username else None
    return httpx.Client(auth=auth, timeout=60)
