"""The drive service process: its settings (a traitlets Application, ``python -m swan_hub.drive``),
the threaded cheroot server it runs on, start and stop, and the access log.

It builds the parts and hands requests to `routes.DriveWSGI`; it must not answer any itself.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlparse

from cheroot import wsgi
from jupyterhub.services.auth import HubOAuth
from traitlets import Bool, Dict, Enum, Float, Integer, List, Unicode, default
from traitlets.config import Application

from swan_hub.redaction import RedactingFilter, redact_handlers

from .identity import HubIdentity
from .responses import StartResponse
from .routes import DriveWSGI
from .spaces import Spaces
from .state import DriveState

log = logging.getLogger("swan_hub.drive")
#: one line ``METHOD PATH STATUS`` per request, written only where `access_log` is set
access_log = logging.getLogger("swan_hub.drive.access")


def open_access_log(path: str) -> logging.Handler:
    """Send the access log to the file at ``path`` alone (not to the service's own log),
    with secrets redacted; the handler flushes each line as it is written."""
    handler = logging.FileHandler(path, encoding="ascii", errors="backslashreplace")
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    return handler


class AccessLog:
    """WSGI wrapper that logs ``METHOD PATH STATUS`` for each request to `access_log` (the
    path percent-encoded, without its query)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        # PATH_INFO is the request's bytes read as latin-1 (PEP 3333): log them as sent.
        raw = environ.get("PATH_INFO", "").encode("latin-1", "replace")
        line = f"{environ.get('REQUEST_METHOD', '-')} {quote(raw, safe='/')}"

        def logged(status: str, headers: list, exc_info: Any = None) -> Any:
            access_log.info("%s %s", line, status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return self.app(environ, logged)


class DriveService(Application):
    """``python -m swan_hub.drive``: the drive as a JupyterHub-managed service."""

    name = "swan-drive"
    description = "The embedded sync&share drive of SWAN (WebDAV, OCS shares, web page)."

    data_dir = Unicode(
        "swan-data",
        config=True,
        help="""
        The data directory of ``swan up``. Users' files are read from and written to
        ``<data_dir>/users/<name>/`` (the spaces the spawner mounts); the drive's own state
        (SQLite database, trash, versions, uploads in progress) lives in ``<data_dir>/drive/``,
        outside every synced tree.
        """,
    )

    ip = Unicode("127.0.0.1", config=True, help="Address to listen on (loopback only by default).")

    port = Integer(
        0,
        config=True,
        help="""
        Port to listen on. 0 takes the port of JUPYTERHUB_SERVICE_URL, which the hub sets for a
        managed service.
        """,
    )

    base_path = Unicode(
        config=True,
        help="""
        URL prefix the drive is served under, e.g. ``/services/drive``. Defaults to
        JUPYTERHUB_SERVICE_PREFIX (without its trailing slash); empty when run alone.
        """,
    )

    @default("base_path")
    def _base_path_default(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "").rstrip("/")

    public_url = Unicode(
        "",
        config=True,
        help="""
        The drive's URL as browsers reach it, e.g. ``https://swan.example.org/services/drive``,
        used in the URLs of public links. Empty: taken from each request (its Host and
        X-Forwarded-* headers), which is right only for requests that came through the proxy;
        ``swan up`` sets it, because notebook servers call the drive on its own port.
        """,
    )

    open_in_url = Unicode(
        "/hub/user-redirect/swan/open?path={path}",
        config=True,
        help="""
        Target of the "Open in SWAN" button of the web drive page, with ``{path}`` replaced by
        the URL-encoded path in the user's space. ``/hub/user-redirect/lab/tree/{path}`` opens
        the file in the user's JupyterLab directly, without the open-in page.
        """,
    )

    lab_url = Unicode(
        "/hub/user-redirect/lab",
        config=True,
        help="""
        Target of the web drive page's "JupyterLab" link in its header: the user's JupyterLab,
        through the hub (which starts the server when it is stopped).
        """,
    )

    hub_logout_url = Unicode(
        "/hub/logout",
        config=True,
        help="""
        Where the web drive page's "Log out" button sends the browser once the drive's own
        session has ended: the hub's logout, so that the hub does not sign the browser in to
        the drive again at once.
        """,
    )

    open_link_url = Unicode(
        "/hub/user-redirect/swan/open?url={url}",
        config=True,
        help="""
        Target of the "Open in SWAN" button of public link pages, with ``{url}`` replaced by
        the URL-encoded link: the visitor logs in and the link's file or folder is copied into
        their own space (``SWAN_projects/``); for a file inside a folder link, ``&open=<path>``
        is added. Empty: no such button.
        """,
    )

    preview_seconds = Float(
        10.0,
        config=True,
        help="""
        The longest a notebook or markdown preview may take to render; a slower one is stopped
        and the page says the file is too large to preview.
        """,
    )

    preview_memory_bytes = Integer(
        1 << 30,
        config=True,
        help="The address space a preview's renderer may use (RLIMIT_AS), in bytes.",
    )

    preview_file_bytes = Integer(
        50 << 20,
        config=True,
        help="Files larger than this (bytes) are not rendered; their page offers the download.",
    )

    preview_cache_bytes = Integer(
        64 << 20,
        config=True,
        help="Memory for rendered previews, kept by file and ETag, least recently used dropped.",
    )

    share_folder = Unicode(
        "Shared",
        config=True,
        help="""
        Name of the virtual folder at the root of each user's space where accepted shares
        appear. It is always there, empty until a first share is accepted, so that every
        client (and the mounts for code) finds it in the same place. A real folder of that
        name at the root is hidden from WebDAV, and cannot be created through the drive.
        """,
    )

    auto_accept_shares = Bool(
        False,
        config=True,
        help="""
        Whether new user and group shares appear at once in the recipients' ``Shared/`` folder
        (Nextcloud's default) or wait as pending until accepted (``POST
        /ocs/v2.php/apps/files_sharing/api/v1/shares/pending/<id>``), so nothing lands in a
        synced folder without the recipient's consent.
        """,
    )

    public_links = Bool(True, config=True, help="Allow public link shares (share type 3).")

    quota_bytes = Integer(
        0,
        config=True,
        help="""
        Per-user quota in bytes for writes through the drive (0: none). A write that would
        exceed it is refused with HTTP 507 before anything is published.
        """,
    )

    versions_max_count = Integer(
        50,
        config=True,
        help="""
        How many earlier versions of each file the drive keeps at the most (every overwrite
        keeps the replaced content as a version; the oldest go first).
        """,
    )

    versions_thin_out = Bool(
        True,
        config=True,
        help="""
        Thin out older versions as Nextcloud's version expiry does: every version of the last
        minute is kept, then one per minute for the first hour, one per hour for the first
        day, one per day for 30 days and one per week after that (the newest of each period;
        ages count from the mtime of the content a version keeps). ``versions_max_count``
        caps the count on top. Off: only the count cap applies.
        """,
    )

    upload_max_age = Integer(
        24 * 3600,
        config=True,
        help="""
        Seconds after its last part that an unfinished chunked upload (Nextcloud chunking v2
        or ownCloud chunking v1) is abandoned: its parts are deleted when the same user starts
        another upload.
        """,
    )

    advertised_chunking = Enum(
        ["v2", "v1"],
        default_value="v2",
        config=True,
        help="""
        The chunked upload the capabilities offer to clients: ``v2`` (Nextcloud's uploads
        folder, ``dav.chunking`` 1.0) or ``v1`` (ownCloud's ``<name>-chunking-<id>-<n>-<i>``
        parts, ``files.bigfilechunking`` without ``dav.chunking``, as CERNBox offers it). The
        drive accepts both either way; this only changes what clients are told to use.
        """,
    )

    watch_folders = Bool(
        True,
        config=True,
        help="""
        Keep folder ETags and sizes (and so the quota's count) in memory and learn of every
        change in the users' spaces from Linux inotify, so that a listing reads only what
        changed since the last one. Off: every request walks the folders it asks about, as is
        needed when the spaces live on a file system other machines write to (NFS, a FUSE
        mount such as EOS), whose changes inotify does not report.
        """,
    )

    folder_watch_limit = Integer(
        0,
        config=True,
        help="""
        The most folders the drive watches (0: as many as the system allows,
        ``fs.inotify.max_user_watches``, which the drive shares with every other process of
        its user). Folders beyond the limit are walked on each request that needs them.
        """,
    )

    token_cache_seconds = Integer(
        5,
        config=True,
        help="""
        How long a token's check with the hub is trusted before asking the hub again: a token
        revoked at the hub (a stopped server's, or one deleted at ``/hub/token``) is refused at
        most this long after. A refusal also ends at once the browser sessions of that token.
        Each client asks the hub at most once per this many seconds.
        """,
    )

    link_password_attempts = Integer(
        5,
        config=True,
        help="""
        Wrong passwords a client may send for one public link per minute; then the link
        answers that client 429 (Too Many Requests, with Retry-After) until the minute has
        passed. All clients together may send six times as many for one link. A right
        password does not clear the count of anyone.
        """,
    )

    ocm_trusted_providers = List(
        Unicode(),
        default_value=[],
        config=True,
        help="""
        The other sites this drive federates with over Open Cloud Mesh: each an exact
        provider, ``host[:port]`` (reached over https) or ``http://host:port`` (a test setup),
        e.g. ``["cernbox.cern.ch", "swan.example.org:8443"]``. Shares from users of these
        sites are received (pending until the recipient accepts them); shares from any other
        site are refused with 403 and nothing is stored. Users of this drive may share with
        users of these sites only (OCS share type 6, ``user@provider``). Empty (the default):
        federation is off, and the discovery document says so (``enabled: false``). Needs
        ``public_url``, whose host is this site's own provider name.
        """,
    )

    ocm_swan_sites = Dict(
        Unicode(),
        default_value={},
        config=True,
        help="""
        Trusted providers (``host[:port]``, as in ``ocm_trusted_providers``) that are SWAN
        sites, each with the address of its "Open in SWAN" page, e.g.
        ``{"cernbox.cern.ch": "https://swan.cern.ch/hub/user-redirect/swan/open"}``. The
        view-only page of a share sent to a user of such a site offers "Open in your SWAN": a
        link to that page with ``path=<the share's name>/<the file>`` and ``owner=<the
        sharer's address>``, which opens the file there through the accepted share. ``swan
        up`` lists each ``--ocm-peer``.
        """,
    )

    ocm_allowed_networks = List(
        Unicode(),
        default_value=[],
        config=True,
        help="""
        Address ranges (CIDR) that calls to trusted providers named by host name may connect
        to although they are not public (a mesh inside one institution). A provider named by
        its IP address is reached at that address whatever this says. Calls follow the rules
        of "Open in SWAN" otherwise: the exact host and port, every address the name resolves
        to checked, no redirects, bounded time and size.
        """,
    )

    ocm_timeout = Float(
        10.0,
        config=True,
        help="Seconds a call to another site (discovery, a share, a notification) may take.",
    )

    ocm_retry_pause = Float(
        10.0,
        config=True,
        help="""
        Seconds before a notification to another site (a share's changed permissions or
        expiry, its end, an accept or decline) that could not be delivered is sent again; the
        pause doubles after each failed try, up to ``ocm_retry_longest_pause``. Undelivered
        notifications are kept in the drive's database, so they are sent after a restart too.
        """,
    )

    ocm_retry_longest_pause = Float(
        3600.0,
        config=True,
        help="The longest pause (seconds) between two tries of an undelivered notification.",
    )

    ocm_retry_days = Float(
        3.0,
        config=True,
        help="""
        Days an undelivered notification is sent again before it is given up (and logged).
        A newer notification about the same share replaces one not delivered yet.
        """,
    )

    ocm_require_signatures = Bool(
        False,
        config=True,
        help="""
        Take only signed server-to-server requests from other sites (new shares,
        notifications, accepted invites): signed with RFC 9421 HTTP Message Signatures, or
        with draft-cavage HTTP signatures as Nextcloud makes them. An unsigned request is
        refused with 401 and changes nothing, whatever the other site's discovery says; the
        discovery lists the criterion ``must-use-http-sig``. Off (the default): an unsigned
        request is taken from a site that neither lists ``http-sig`` nor publishes a
        ``publicKey``.
        """,
    )

    ocm_provider_name = Unicode(
        "SWAN",
        config=True,
        help="The friendly name of this site in its Open Cloud Mesh discovery document.",
    )

    threads = Integer(16, config=True, help="Worker threads of the HTTP server (one per request).")

    access_log = Unicode(
        "",
        config=True,
        help="""
        A file to which every request is appended as one line ``METHOD PATH STATUS`` (the path
        percent-encoded, without its query, secrets such as ``token=…`` redacted), for admins
        who want to see what clients do and for tests that count requests. Empty (the
        default): no access log. Paths of public links carry the link's token, so keep this
        file as private as the data directory.
        """,
    )

    aliases = {
        "data-dir": "DriveService.data_dir",
        "port": "DriveService.port",
        "ip": "DriveService.ip",
        "base-path": "DriveService.base_path",
        "open-in-url": "DriveService.open_in_url",
        "public-url": "DriveService.public_url",
        "quota-bytes": "DriveService.quota_bytes",
        "ocm-peer": "DriveService.ocm_trusted_providers",
    }
    flags = {
        "auto-accept-shares": (
            {"DriveService": {"auto_accept_shares": True}},
            "Accept new shares for the recipients.",
        ),
        "ocm-require-signatures": (
            {"DriveService": {"ocm_require_signatures": True}},
            "Take only signed requests from other sites.",
        ),
    }

    def initialize(self, argv: list[str] | None = None) -> None:
        self.parse_command_line(argv)
        # Admins tune the drive (quota, share acceptance, ...) in a file kept with its data.
        config_file = os.path.join(os.path.abspath(self.data_dir), "drive", "drive_config.py")
        if os.path.isfile(config_file):
            self.load_config_file(config_file)
            self.parse_command_line(argv)

    def make_wsgi(self) -> DriveWSGI:
        data_dir = os.path.abspath(self.data_dir)
        drive_root = os.path.join(data_dir, "drive")
        state = DriveState(os.path.join(drive_root, "drive.sqlite"))
        hub_auth = HubOAuth(cache_max_age=self.token_cache_seconds)
        identity = HubIdentity(hub_auth, cache_seconds=self.token_cache_seconds)
        spaces = Spaces(
            os.path.join(data_dir, "users"),
            drive_root,
            state,
            share_folder=self.share_folder,
            auto_accept=self.auto_accept_shares,
            quota_bytes=self.quota_bytes or None,
            groups_of=identity.groups_of,
            instance_id=self._instance_id(drive_root),
            versions_max_count=self.versions_max_count,
            upload_max_age=self.upload_max_age,
            versions_thin_out=self.versions_thin_out,
            watch_folders=self.watch_folders,
            folder_watch_limit=self.folder_watch_limit,
        )
        if swept := spaces.sweep_temp_files():
            log.info("Deleted %d temp files of uploads a stopped drive left unfinished", swept)
        return DriveWSGI(self, identity, spaces)

    @staticmethod
    def _instance_id(drive_root: str) -> str:
        path = os.path.join(drive_root, "instance-id")
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except FileNotFoundError:
            value = "oc" + secrets.token_hex(5)
            with open(path, "w", encoding="ascii") as f:
                f.write(value + "\n")
            return value

    def _listen_port(self) -> int:
        if self.port:
            return self.port
        url = os.environ.get("JUPYTERHUB_SERVICE_URL", "")
        port = urlparse(url).port
        if not port:
            self.log.error("No port: set --port or run the drive as a hub-managed service")
            self.exit(2)
        return int(port)

    def start(self) -> None:
        logging.basicConfig(
            level=logging.INFO, format="[%(levelname)s %(asctime)s drive] %(message)s"
        )
        redact_handlers()
        wsgi_app = self.make_wsgi()
        app: Any = wsgi_app
        if self.access_log:
            open_access_log(self.access_log)
            app = AccessLog(app)
        port = self._listen_port()
        server = wsgi.Server(
            (self.ip, port), app, numthreads=self.threads, server_name="swan-drive"
        )
        # Large uploads stream through; no request body size limit beyond the quota.
        server.max_request_body_size = 0
        log.info(
            "SWAN drive on http://%s:%s%s/ (data in %s)",
            self.ip,
            port,
            self.base_path,
            self.data_dir,
        )
        if wsgi_app.ocm.mesh.enabled:
            wsgi_app.ocm.outbox.start()
        try:
            server.start()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            wsgi_app.ocm.outbox.stop()
            wsgi_app.pages.renderer.stop()


def main(argv: list[str] | None = None) -> None:
    # The hub stops its services with SIGINT. Started by a hub that was a shell's background
    # job, this process inherits SIGINT ignored, and Python keeps it so: take it back, or the
    # hub waits half a minute for the drive at every stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    DriveService.launch_instance(argv=argv if argv is not None else sys.argv[1:])
