"""A kernel starts in its notebook's folder also when that folder is new to the mount.

Where the server's root is the user's storage mounted for code (the hub's rclone mount), the
mount trusts its listing of a folder for a few seconds (`swan_hub.mounts.DIR_CACHE_TIME`): a folder
made in the web drive or by a sync client a moment ago is not there for code yet, and
jupyter-server starts a kernel in the nearest folder that is, where `open('data.csv')` beside the
notebook fails. So before a kernel starts, while the contents manager (which asks the storage)
says the notebook's folder exists and the mount does not show it yet, the start waits for the
mount, at most `MOUNT_LISTING_WAIT` seconds; then it goes on as jupyter-server would.

It must not change where a kernel starts otherwise, nor wait where nothing is mounted.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import time
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.utils import to_os_path

from .handlers import FILES_MOUNTED_ENV

#: the mount's listing time (5 s) and a margin
MOUNT_LISTING_WAIT = 7.0
#: how often the mount is looked at meanwhile
LOOK_EVERY = 0.25


async def folder_for_code(root_dir: str, path: str, contents_manager: Any) -> None:
    """Wait until the folder of ``path`` (itself if it is a folder, else its parent) shows in
    the mount at ``root_dir``, while the storage says that folder exists."""
    path = path.strip("/")
    if await asyncio.to_thread(os.path.isdir, to_os_path(path, root_dir)):
        return  # the usual case, a session's folder the mount lists: no question to the storage
    for folder in (path, posixpath.dirname(path)):
        if await ensure_async(contents_manager.dir_exists(folder)):
            break
    else:
        return
    os_path = to_os_path(folder, root_dir)
    deadline = time.monotonic() + MOUNT_LISTING_WAIT
    while not await asyncio.to_thread(os.path.isdir, os_path):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(LOOK_EVERY)


def start_kernels_in_their_folders(server_app: Any) -> None:
    """Make the server's kernel starts wait for a notebook's folder new to the mount (see the
    module); nothing where the server's root is not a mount of the storage."""
    if os.environ.get(FILES_MOUNTED_ENV) != "1":
        return
    manager = server_app.kernel_manager
    start_kernel = manager.start_kernel

    async def start_in_its_folder(*args: Any, path: str | None = None, **kwargs: Any) -> Any:
        if path and kwargs.get("kernel_id") is None:
            try:
                await folder_for_code(manager.root_dir, path, server_app.contents_manager)
            except Exception:  # the storage down, a path refused: start as jupyter-server would
                server_app.log.debug("Not waiting for the folder of %s", path, exc_info=True)
        return await start_kernel(*args, path=path, **kwargs)

    manager.start_kernel = start_in_its_folder
