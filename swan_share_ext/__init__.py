"""The SWAN server extension: REST API under /swan/api/ of the user's server.

It registers handlers only; storage access goes through the server's contents manager.
Lazy: importing a submodule (the URL policy and the fetcher of `open_in`, which the drive uses for
its calls to other sites) must not load jupyter_server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .sharing.ocs import OCSShareBackend


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt labextension lives (`jupyter labextension develop` links it)."""
    return [{"src": "labextension", "dest": "@swan-suite/labextension"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "swan_share_ext"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from swan_contents import SwanContentsManager

    from .handlers import setup_handlers, tell_pages_where_deletes_go
    from .kernel_folders import start_kernels_in_their_folders
    from .open_in.handlers import setup_open_in
    from .sharing.federated import mount_shares_of_other_sites
    from .sharing.handlers import setup_share_handlers
    from .sharing.ocs import OCSShareBackend
    from .storage_api import storage_handlers
    from .upload import setup_upload

    setup_handlers(server_app.web_app)
    setup_open_in(server_app)
    backend = OCSShareBackend(parent=server_app, log=server_app.log)
    setup_share_handlers(server_app.web_app, backend)
    if not backend.configured:
        server_app.log.info("swan_share_ext: sharing is off (c.OCSShareBackend.url is not set)")
    if isinstance(server_app.contents_manager, SwanContentsManager):
        if backend.configured:
            mount_shares_of_other_sites(server_app.contents_manager, backend)
        web_app = server_app.web_app
        web_app.add_handlers(".*$", storage_handlers(web_app.settings["base_url"]))
        setup_upload(server_app)
    start_kernels_in_their_folders(server_app)
    tell_pages_where_deletes_go(server_app)
    server_app.log.info("swan_share_ext %s: /swan/api/ is enabled", __version__)


def __getattr__(name: str) -> Any:
    # `swan_share_ext.OCSShareBackend` stays a class path for traitlets' import_item.
    if name == "OCSShareBackend":
        from .sharing.ocs import OCSShareBackend

        return OCSShareBackend
    raise AttributeError(f"module 'swan_share_ext' has no attribute {name!r}")


__all__ = ["OCSShareBackend", "__version__"]
