"""The admin's knobs of "Open in SWAN": which sources may be fetched, limits, where projects land.

This module owns the `SwanOpenIn` configurable (``c.SwanOpenIn.…`` in a jupyter_server config). It
must not fetch or write anything; the policy it describes is applied by `safety`.
"""

from __future__ import annotations

import os

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Enum, Float, Int, List, Type, Unicode, default
from traitlets.config import LoggingConfigurable

from .shares import ShareLookup


class SwanOpenIn(LoggingConfigurable):
    """Settings of the open-in flow of one user's server (``/swan/open``, ``/swan/api/open``)."""

    allowed_hosts = List(
        Unicode(),
        default_value=[
            "github.com",
            "codeload.github.com",
            "raw.githubusercontent.com",
            "gist.githubusercontent.com",
            "gitlab.com",
        ],
        config=True,
        help="""
        Hosts that links may fetch from. A host is compared exactly with the host name of the
        parsed URL (lower case, IDNA-encoded, without a trailing dot), so ``github.com`` does not
        admit ``github.com.evil.example`` nor ``evil.example/github.com``.

        ``*.example.org`` admits every subdomain of example.org (not example.org itself: list it
        too if wanted). ``*`` admits any host. IP literals are written in their usual form
        (``192.0.2.10``, ``2001:db8::1``). Redirects are checked against this list at every hop.

        Example for CERN: ``["github.com", "codeload.github.com", "gitlab.cern.ch",
        "cernbox.cern.ch"]``.
        """,
    )

    allowed_schemes = List(
        Enum(["https", "http"]),
        default_value=["https"],
        config=True,
        help="""
        URL schemes links may use: ``https`` only unless ``http`` is added here (a test setup or
        a trusted internal mirror). ``file``, ``ext``, ``ssh``, ``git`` and every other transport
        are always refused.
        """,
    )

    allowed_networks = List(
        Unicode(),
        default_value=[],
        config=True,
        help="""
        Address ranges (CIDR, e.g. ``10.1.2.0/24`` or ``127.0.0.1/32``) that fetches may connect
        to although they are not public. By default every host name is resolved and refused when
        any of its addresses is loopback, private, link-local, multicast, reserved, shared or a
        cloud metadata address (169.254.169.254, fd00:ec2::254). Listing a range here is the only
        way to allow such addresses, e.g. for an internal GitLab.
        """,
    )

    git_hosts = List(
        Unicode(),
        default_value=["github.com", "gitlab.com"],
        config=True,
        help="""
        Hosts where a URL of the form ``https://HOST/OWNER/REPO`` (two path segments) is a git
        repository. Elsewhere a URL is taken as a git repository when its path ends in ``.git``
        or the link says ``kind=git``.
        """,
    )

    share_link_hosts = List(
        Unicode(),
        default_value=[],
        config=True,
        help="""
        Hosts of ownCloud, Nextcloud or CERNBox whose public share links
        (``https://HOST/s/TOKEN``, ``https://HOST/index.php/s/TOKEN``) are opened by downloading
        the shared file or folder (``/s/TOKEN/download``). Each host must also be allowed by
        ``allowed_hosts``. Example: ``["cernbox.cern.ch", "cloud.example.org"]``.
        """,
    )

    drive_url = Unicode(
        "",
        config=True,
        help="""
        Internal URL of the embedded drive service as this server reaches it (e.g.
        ``http://127.0.0.1:8000/services/drive/``). Public links of the drive
        (``…/services/drive/s/TOKEN`` on this hub) are downloaded from here. The drive is run by
        the admin, so its address is trusted without the address checks; empty disables drive
        links.
        """,
    )

    max_download_bytes = Int(
        200 * 1024 * 1024,
        config=True,
        help="""
        Largest download (a notebook, a file or a zip) in bytes. A larger Content-Length is
        refused before reading; a body that grows past it is aborted and nothing is written.
        """,
    )

    download_timeout = Float(
        60.0,
        config=True,
        help="""
        Seconds a download may take in all, redirects included. A slower one is aborted and
        nothing is written.
        """,
    )

    max_redirects = Int(
        5,
        config=True,
        help="Redirects a download may follow; each hop is checked like the first URL.",
    )

    git_timeout = Float(
        120.0,
        config=True,
        help="Seconds a ``git clone`` or ``git fetch`` may take before it is stopped.",
    )

    max_repository_bytes = Int(
        500 * 1024 * 1024,
        config=True,
        help="""
        Largest size in bytes of a cloned repository (its packed history, depth 1) and, apart,
        of the files taken from it. A clone that grows past it is stopped and nothing is written.
        """,
    )

    max_files = Int(
        10_000,
        config=True,
        help="Most files a zip archive or a repository may bring into the user's space.",
    )

    max_unpacked_bytes = Int(
        1024 * 1024 * 1024,
        config=True,
        help="""
        Most bytes a zip archive may unpack to, in all. Sizes are counted while unpacking, not
        trusted from the archive's directory, so a zip bomb stops at this limit.
        """,
    )

    max_compression_ratio = Int(
        200,
        config=True,
        help="""
        Highest ratio of unpacked to packed size of a zip entry larger than 1 MiB; a higher one
        is taken for a zip bomb and the whole archive is refused.
        """,
    )

    projects_dir = Unicode(
        "SWAN_projects",
        config=True,
        help="""
        Folder of the user's space, relative to its root, where fetched projects land, each in a
        folder of its own (``SWAN_projects/<name>/``).
        """,
    )

    open_with = Enum(
        ["lab", "notebook"],
        default_value="lab",
        config=True,
        help="""
        Where an opened file is shown: ``lab`` (``/lab/tree/<path>``) or ``notebook``
        (Notebook 7's ``/notebooks/<path>``; folders go to ``/tree/<path>``).
        """,
    )

    storage_path_template = Unicode(
        "",
        config=True,
        help="""
        How an absolute storage path (``file://eos/user/a/alice/x.ipynb`` links of SWAN, or
        ``path=/eos/user/a/alice/x.ipynb``) maps to a user and a path in their space:
        ``{username}`` stands for the owner's name and ``{initial}`` for its first letter.
        Example for EOS: ``/eos/user/{initial}/{username}``. Empty: absolute paths are only
        understood when they lie in this server's own space.
        """,
    )

    hub_url = Unicode(
        "",
        config=True,
        help="""
        Public URL of the hub (e.g. ``https://swan.example.org/``) used in generated links and
        badges. Empty: the scheme and host the browser used to reach this server, with the
        hub's base URL.
        """,
    )

    links_service_name = Unicode(
        "swan-links",
        config=True,
        help="Name of the hub service that serves the badge SVG and the link generator page.",
    )

    share_lookup_class = Type(
        ShareLookup,
        klass=ShareLookup,
        config=True,
        help="""
        Finds how this user can reach a path in someone else's space. The default asks the
        server's share backend (``c.OCSShareBackend``) for the shares the user accepted and opens
        the path where the share appears in the user's space (e.g. ``Shares/class-2026/…``);
        without a backend, or without such a share, the link shows an "ask the owner to share
        it" page. A subclass is built with the share backend and the contents manager.
        """,
    )

    state_dir = Unicode(
        config=True,
        help="""
        Folder outside the user's space where the open-in flow remembers what it delivered into
        each project (file hashes, the git commit), so that a repeated click can tell the user's
        edits from upstream changes. Losing it is safe: every file that differs is then kept and
        the new version is put beside it.
        """,
    )

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "swan", "open-in")

    git_command = Unicode(
        "git",
        config=True,
        help="The git executable used for repository sources.",
    )

    check_certificates = Bool(
        True,
        config=True,
        help="Verify TLS certificates of https sources (turn off only for a test setup).",
    )
