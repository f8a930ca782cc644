"""The `swan` command: `swan up` runs the embedded default (JupyterHub, proxy, local servers).

This module owns the command line, the layout of the data directory and the hub's base
configuration (built in Python, with an admin's jupyterhub_config.py layered on top). It must not
hold spawner or authenticator logic; those live in `spawner.py` and `auth.py`.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from traitlets.config import Config

# JupyterHub, the spawners and the authenticator are imported where they are used, not here:
# `swan --help` and a refused start must not wait seconds for JupyterHub to load.

DOCKER_FORM_CONFIG = os.path.join(os.path.dirname(__file__), "docker_form.yaml")
DOCKER_HINT = (
    "swan up --docker: no Docker engine answers. Start one (e.g. `dockerd --bridge=none "
    "--iptables=false`; containers use the host network) and build the single-user image "
    "with docker/build-image --tag swan-singleuser:latest."
)

PROXY_INSTALL_HINT = (
    "configurable-http-proxy was not found on PATH. JupyterHub needs it to route requests.\n"
    "Install it with:  npm install -g configurable-http-proxy\n"
    "(npm comes with Node.js, e.g. `apt-get install nodejs npm`)."
)

#: Seconds JupyterHub waits for a managed service (the drive, the links service) to answer, and
#: for a user's server to start and to answer: minutes, not its defaults of 30-60 s, because on a
#: loaded machine (two cores shared with builds) the first start of each takes that long.
SERVICE_START_TIMEOUT = 120
SPAWN_TIMEOUT = 180


def _version() -> str:
    from swan_contents._version import __version__

    return __version__


def free_port(ip: str = "127.0.0.1") -> int:
    """A TCP port on ``ip`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _secret_file(path: str) -> str:
    """Read a secret from ``path``, creating it (mode 0600) on first use."""
    try:
        with open(path, encoding="ascii") as f:
            token = f.read().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    return token


class DataDir:
    """Where `swan up` keeps everything: one directory, movable and deletable as a whole."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.hub = os.path.join(self.root, "hub")
        self.users = os.path.join(self.root, "users")
        self.versions = os.path.join(self.root, "versions")
        self.runtime = os.path.join(self.root, "runtime")
        self.credentials = os.path.join(self.root, "credentials")

    def create(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        for path in (self.hub, self.users, self.versions, self.runtime, self.credentials):
            os.makedirs(path, mode=0o700, exist_ok=True)

    def template(self, area: str) -> str:
        # The data dir is literal text inside a str.format template.
        escaped = area.replace("{", "{{").replace("}", "}}")
        return os.path.join(escaped, "{username}")


def build_config(args: argparse.Namespace, data: DataDir) -> Config:
    """The hub configuration of `swan up`; an admin's ``-f`` file is loaded on top of it."""
    from traitlets.config import Config

    from swan_hub.auth import CREDENTIALS_FILE, SwanDemoAuthenticator
    from swan_hub.links import links_service
    from swan_hub.spawner import SwanLocalSpawner

    c = Config()
    c.JupyterHub.ip = args.ip
    c.JupyterHub.port = args.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = args.hub_port or free_port()
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{args.proxy_api_port or free_port()}"
    c.ConfigurableHTTPProxy.pid_file = os.path.join(data.hub, "proxy.pid")
    c.ConfigurableHTTPProxy.auth_token = _secret_file(os.path.join(data.hub, "proxy-auth-token"))
    c.JupyterHub.db_url = "sqlite:///" + os.path.join(data.hub, "jupyterhub.sqlite")
    c.JupyterHub.cookie_secret_file = os.path.join(data.hub, "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = os.path.join(data.hub, "jupyterhub.pid")
    c.JupyterHub.internal_certs_location = os.path.join(data.hub, "internal-ssl")
    if args.config:
        c.JupyterHub.config_file = os.path.abspath(args.config)

    form_config = os.path.abspath(args.form_config) if args.form_config else ""
    if args.docker:
        c.JupyterHub.spawner_class = "swan_hub.SwanDockerSpawner"
        c.SwanSpawnerMixin.form_config_file = form_config or DOCKER_FORM_CONFIG
    else:
        c.JupyterHub.spawner_class = SwanLocalSpawner
        c.SwanSpawnerMixin.form_config_file = form_config
    c.SwanSpawnerMixin.space_template = data.template(data.users)
    c.SwanSpawnerMixin.versions_template = data.template(data.versions)
    c.SwanSpawnerMixin.credentials_template = data.template(data.credentials)
    c.SwanLocalSpawner.jupyter_dir_template = data.template(data.runtime)
    c.SwanDockerSpawner.runtime_template = data.template(data.runtime)

    # The badge and the link generator page of "Open in SWAN" (/services/swan-links/).
    c.JupyterHub.services.append({**links_service(free_port()), "timeout": SERVICE_START_TIMEOUT})

    c.JupyterHub.authenticator_class = SwanDemoAuthenticator
    c.SwanDemoAuthenticator.credentials_file = os.path.join(data.hub, CREDENTIALS_FILE)
    drive_port = free_port()
    add_drive_service(
        c,
        data,
        drive_port,
        public_url=_public_url(args) + DRIVE_PREFIX,
        ocm_peers=getattr(args, "ocm_peer", None) or [],
        require_signatures=getattr(args, "ocm_require_signatures", False),
    )
    # Public links of the drive (…/services/drive/s/TOKEN on this hub) open in SWAN: the
    # servers fetch them from the drive's loopback port, the one address trusted without the
    # open-in address checks, so loopback stays refused for every other link.
    c.Spawner.args = [f"--SwanOpenIn.drive_url=http://127.0.0.1:{drive_port}/{DRIVE_PREFIX}/"]
    if args.storage == "drive":
        use_drive_as_storage(c, drive_port)
        if getattr(args, "ocm_peer", None):
            # Shared with me lists the shares of other sites; Shared/ shows the accepted ones
            c.Spawner.args.append("--OCSShareBackend.shares_of_other_sites=True")
    if args.demo_group:
        c.JupyterHub.load_groups = {args.demo_group: {"users": list(args.users)}}
    if args.cull:
        add_idle_culler(c, args.cull_timeout)
    if args.debug:
        c.Application.log_level = "DEBUG"
    c.Spawner.start_timeout = SPAWN_TIMEOUT
    c.Spawner.http_timeout = SPAWN_TIMEOUT
    return c


DRIVE_SCOPES = ["list:users", "read:users:name", "list:groups", "read:groups"]
DRIVE_ACCESS = "access:services!service=drive"
DRIVE_PREFIX = "services/drive"
#: Users may open the link generator page (swan_hub.links.SERVICE_NAME).
LINKS_ACCESS = "access:services!service=swan-links"
#: The scopes of the server's own API token (JupyterHub's "server" role), plus the drive's.
SERVER_TOKEN_SCOPES = ["access:servers!server", "users:activity!user", DRIVE_ACCESS]


def _public_url(args: argparse.Namespace) -> str:
    """The hub's URL as browsers reach it (loopback when it listens on every address)."""
    host = args.ip if args.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
    return f"http://{host}:{args.port}/"


def add_drive_service(
    c: Config,
    data: DataDir,
    port: int,
    *,
    public_url: str,
    ocm_peers: Sequence[str] = (),
    require_signatures: bool = False,
) -> None:
    """Run the drive (``python -m swan_hub.drive``) as a hub-managed service at /services/drive/.

    Users' tokens may use it (``access:services!service=drive`` in the user role), and the
    service may read user and group names for share recipients and group shares.
    ``public_url`` is where browsers reach it (for the URLs of public links). The proxy routes
    the site's Open Cloud Mesh discovery (``/.well-known/ocm``, ``/ocm-provider``) and its
    public signing key (``/.well-known/jwks.json``) to it, and
    it trusts the providers ``ocm_peers`` (``HOST:PORT``, reached over http like this site, or
    a full ``https://`` URL); with ``require_signatures`` it takes only signed requests from
    them.
    """
    command = [
        sys.executable,
        "-m",
        "swan_hub.stoppable",
        "swan_hub.drive",
        f"--data-dir={data.root}",
    ]
    for peer in ocm_peers:
        peer_url = peer if "://" in peer else f"http://{peer}"
        command.append(f"--DriveService.ocm_trusted_providers={peer_url}")
        # a peer of `swan up` is a SWAN site too, with its pages where this site has them
        provider = urlsplit(peer_url).netloc.lower()
        open_url = f"{peer_url.rstrip('/')}/hub/user-redirect/swan/open"
        command.append(f"--DriveService.ocm_swan_sites={provider}={open_url}")
    if require_signatures:
        command.append("--ocm-require-signatures")
    c.Proxy.extra_routes = {
        f"{path}/": f"http://127.0.0.1:{port}"
        for path in ("/.well-known/ocm", "/ocm-provider", "/.well-known/jwks.json")
    }
    c.JupyterHub.services.append(
        {
            "name": "drive",
            "url": f"http://127.0.0.1:{port}",
            "command": [*command, f"--public-url={public_url}"],
            "oauth_no_confirm": True,
            "display": True,
            "timeout": SERVICE_START_TIMEOUT,
        }
    )
    c.JupyterHub.load_roles = [
        # the link generator too, so that it is listed in the hub's Services menu
        {"name": "user", "scopes": ["self", DRIVE_ACCESS, LINKS_ACCESS]},
        {"name": "swan-drive", "services": ["drive"], "scopes": DRIVE_SCOPES},
    ]


def use_drive_as_storage(c: Config, port: int) -> None:
    """Make the drive the storage of every user's server, as a sync&share storage is in
    production: WebDAV for the files and OCS for the shares, with the user's credentials.

    Servers call the drive on its loopback port rather than through the proxy: one hop less
    on every storage request, and the drive checks each caller's token itself anyway. The
    credentials are the server's own API token, given the drive's scope, so a server acts
    with its user's rights and no more; the hub revokes the token when the server stops.
    """
    from swan_hub.spawner import credentials_from_api_token

    c.SwanSpawnerMixin.webdav_url_template = (
        f"http://127.0.0.1:{port}/{DRIVE_PREFIX}/remote.php/dav/files/{{username}}/"
    )
    c.SwanSpawnerMixin.storage_credentials = credentials_from_api_token
    # the drive keeps what a mount's upload would replace itself (swan_hub.drive.sightings)
    c.StorageMountConfig.mount_guard = False
    c.Spawner.server_token_scopes = list(SERVER_TOKEN_SCOPES)
    c.Spawner.args = [*c.Spawner.args, *DRIVE_SERVER_ARGS]


#: How the servers of `swan up` write to the drive: a large upload as one streamed PUT, not
#: in parts. On the loopback port no proxy limits a body and no network breaks one, and the
#: parts of a chunked upload would be written twice (as parts, then joined); conditional
#: uploads are one PUT anyway.
DRIVE_SERVER_ARGS = ("--WebDAVStorage.chunked_upload=none",)


CULLER_NAME = "idle-culler"
#: What jupyterhub-idle-culler needs to find idle servers and stop them (its README), no more.
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
#: Seconds a server may stay idle before `swan up` stops it, as in the Helm chart (cull.timeout).
CULL_TIMEOUT = 3600


def cull_intervals(timeout: int) -> tuple[int, int]:
    """How often (seconds) the culler looks for idle servers, and how often the hub hears of a
    server's activity, for an idle ``timeout``: JupyterHub's defaults (10 and 5 minutes) for
    the default hour, shorter for a shorter timeout, so that a user who is working is never
    taken for idle because the hub had not heard of it yet."""
    every = max(1, min(600, timeout // 6))
    activity = max(1, min(300, timeout // 12))
    return every, activity


def add_idle_culler(c: Config, timeout: int) -> None:
    """Run jupyterhub-idle-culler as a hub-managed service that stops every server idle for
    ``timeout`` seconds; the user's files stay where they are, and the next login starts a
    fresh server. The culler's role allows it to list servers and stop them, nothing else."""
    every, activity = cull_intervals(timeout)
    command = [sys.executable, "-m", "jupyterhub_idle_culler"]
    # --config=: the culler would otherwise load an idle_culler_config.py from whatever
    # directory `swan up` was started in, as JupyterHub would its own config file.
    command += [f"--timeout={timeout}", f"--cull-every={every}", "--config="]
    c.JupyterHub.services.append({"name": CULLER_NAME, "command": command})
    c.JupyterHub.load_roles.append(
        {"name": CULLER_NAME, "services": [CULLER_NAME], "scopes": list(CULLER_SCOPES)}
    )
    # The hub learns of activity from the proxy (browsers) and from the servers (kernels,
    # terminals, API calls), each on its own period.
    c.JupyterHub.last_activity_interval = activity
    c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": str(activity)}


def _cull_timeout(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"{text} is not a number of seconds above 0 (to keep idle servers, use --no-cull)"
        )
    return seconds


def _user_list(text: str) -> list[str]:
    from swan_hub.spawner import UnsafeUsernameError, filesystem_safe_name

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one user name")
    try:
        return [filesystem_safe_name(n) for n in names]
    except UnsafeUsernameError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _peer(text: str) -> str:
    """``--ocm-peer``: HOST:PORT (or an http(s) URL of a site's root)."""
    from urllib.parse import urlsplit

    parts = urlsplit(text if "://" in text else f"http://{text}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT of another site")
    return text


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port")
    return port


class _VersionAction(argparse.Action):
    # Like argparse's "version" action, but imports the version only when asked, so that
    # `swan --help` works even while the contents package is broken.
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"{parser.prog} {_version()}")
        parser.exit()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swan",
        description="SWAN: JupyterHub as the notebook front door of a sync&share storage.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    up = sub.add_parser(
        "up",
        help="run JupyterHub with a local storage space per user",
        description=(
            "Run JupyterHub with configurable-http-proxy and one local Jupyter server per user, "
            "whose files are the user's storage space under DATA_DIR/users/<name>/. "
            "Demo users get generated passwords, printed at start."
        ),
    )
    up.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    up.add_argument("--port", type=_port, default=8000, help="public port (default: %(default)s)")
    up.add_argument(
        "--data-dir",
        default="swan-data",
        help="where spaces, versions and hub state are kept (default: ./%(default)s)",
    )
    up.add_argument(
        "--users",
        type=_user_list,
        default=["alice", "bob"],
        help="comma-separated demo user names (default: alice,bob)",
    )
    up.add_argument(
        "--reset-passwords",
        action="store_true",
        help="give the demo users new passwords instead of keeping those of earlier runs",
    )
    up.add_argument(
        "-f",
        "--config",
        metavar="FILE",
        help="a jupyterhub_config.py loaded on top of swan's settings "
        "(e.g. a production authenticator or spawner)",
    )
    up.add_argument(
        "--hub-port", type=_port, help="internal hub API port on 127.0.0.1 (default: a free one)"
    )
    up.add_argument(
        "--proxy-api-port",
        type=_port,
        help="internal proxy API port on 127.0.0.1 (default: a free one)",
    )
    up.add_argument(
        "--demo-group",
        default="class-2026",
        help="a hub group holding all demo users, for group shares ('' for none; "
        "default: %(default)s)",
    )
    up.add_argument(
        "--docker",
        action="store_true",
        help="run each user's server in a Docker container of the local engine "
        "(SwanDockerSpawner with the spawn form)",
    )
    up.add_argument(
        "--storage",
        choices=["drive", "posix"],
        help="how each user's server reaches its storage space: 'drive' over WebDAV and OCS "
        "through the embedded drive, as with a production sync&share storage, with sharing "
        "on (the default); 'posix' as a folder on disk, faster, without sharing in "
        "JupyterLab. With --docker the default is 'posix'.",
    )
    up.add_argument(
        "--form-config",
        metavar="FILE",
        help="spawn form config (YAML/JSON: environments, CPU, memory, GPU); "
        "with --docker the default offers the image swan-singleuser:latest",
    )
    up.add_argument(
        "--ocm-peer",
        action="append",
        type=_peer,
        metavar="HOST:PORT",
        help="another site whose users may share with this one's and receive its users' "
        "shares over Open Cloud Mesh (repeat for several; HOST:PORT is reached over http "
        "like swan up itself, or give an https:// URL)",
    )
    up.add_argument(
        "--ocm-require-signatures",
        action="store_true",
        help="take only signed requests from the other sites (RFC 9421 or Nextcloud's "
        "draft-cavage signatures); unsigned ones are refused",
    )
    cull = up.add_mutually_exclusive_group()
    cull.add_argument(
        "--cull-timeout",
        type=_cull_timeout,
        default=CULL_TIMEOUT,
        metavar="SECONDS",
        help="stop a user's server once it has been idle this long (no request from a "
        "browser or client, no output from a kernel or terminal); the user's files stay "
        "(default: %(default)s)",
    )
    cull.add_argument(
        "--no-cull",
        dest="cull",
        action="store_false",
        help="never stop idle servers (no jupyterhub-idle-culler service)",
    )
    up.add_argument("--debug", action="store_true", help="log at debug level")
    return parser


class StartRefused(Exception):
    """`swan up` will not start; the message is the one sentence the user reads."""


def up(args: argparse.Namespace) -> int:
    """Run `swan up` until Ctrl-C or SIGTERM; returns the exit status."""
    if args.config and not os.path.isfile(args.config):
        print(f"swan up: config file not found: {args.config}", file=sys.stderr)
        return 2
    if not args.config and shutil.which("configurable-http-proxy") is None:
        # Fail before touching the data directory; with -f the admin may use another proxy,
        # which SwanHub checks once the configuration is loaded.
        print(PROXY_INSTALL_HINT, file=sys.stderr)
        return 1
    if args.form_config and not os.path.isfile(args.form_config):
        print(f"swan up: form config not found: {args.form_config}", file=sys.stderr)
        return 2
    if args.storage is None:
        args.storage = "posix" if args.docker else "drive"
    if args.docker and not _docker_answers():
        print(DOCKER_HINT, file=sys.stderr)
        return 1
    data = DataDir(args.data_dir)
    try:
        # Held until this process ends (the kernel drops it even on SIGKILL).
        lock = lock_data_dir(data)
        check_ports_free(args)
        passwords = _demo_passwords(data, args)
    except StartRefused as e:
        print(f"swan up: {e}", file=sys.stderr)
        return 1

    from swan_hub.singleuser import leave_out_unused_format_checkers

    leave_out_unused_format_checkers()  # before JupyterHub imports jsonschema
    from swan_hub.hub import SwanHub

    hub = SwanHub.instance(config=build_config(args, data))
    hub.swan_data_dir = data.root
    hub.swan_demo_passwords = passwords
    hub.swan_storage = args.storage
    hub.swan_cull_timeout = args.cull_timeout if args.cull else 0
    # argv=[]: the hub must not parse swan's own command line.
    SwanHub.launch_instance(argv=[])
    os.close(lock)
    return 0


LOCK_FILE = "swan-up.lock"


def lock_data_dir(data: DataDir) -> int:
    """Create the data directory and take its lock (an open file descriptor), or refuse:
    two hubs on one data directory would stop each other's proxy and share one database."""
    try:
        data.create()
        fd = os.open(os.path.join(data.hub, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise StartRefused(
            f"cannot use {data.root} as the data directory: {e.strerror or e}; "
            "give a writable one with --data-dir."
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise StartRefused(
            f"another swan up (pid {holder}) is running on the data directory {data.root}; "
            "stop it first, or give another --data-dir."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def check_ports_free(args: argparse.Namespace) -> None:
    """Refuse to start when a port `swan up` must listen on is taken: its proxy would fail
    while another program (another swan up?) answers in its place."""
    wanted = [("--port", args.ip, args.port)]
    for option, port in (("--hub-port", args.hub_port), ("--proxy-api-port", args.proxy_api_port)):
        if port:
            wanted.append((option, "127.0.0.1", port))
    for option, ip, port in wanted:
        with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
            # as the proxy and the hub bind: a port left in TIME_WAIT by a stopped run is free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, port))
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise StartRefused(
                        f"cannot listen on {ip or '*'}:{port}: {e.strerror}."
                    ) from None
                raise StartRefused(
                    f"port {port} on {ip or 'every address'} is in use (another swan up?); "
                    f"stop what uses it, or choose another {option}."
                ) from None


def _demo_passwords(data: DataDir, args: argparse.Namespace) -> dict[str, str]:
    from swan_hub.auth import ensure_demo_credentials

    try:
        return ensure_demo_credentials(data.hub, args.users, reset=args.reset_passwords)
    except OSError as e:
        raise StartRefused(
            f"cannot keep the demo passwords in {data.hub}: {e.strerror or e}."
        ) from None


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=10).ping()
    except Exception:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `swan` console script."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args)
    parser.print_help()
    return 2
