"""Who owns what the hub's side (the drive, the spawner) makes in users' spaces, when servers run
as another user than the hub (containers): the space's own user, so that the server can use it.

This module owns the one way files change hands. It must not decide who a space's user is:
callers say so (the spawner from its container uid, the drive from the space's folder).
"""

from __future__ import annotations

import os


def hand_over(
    path: str, owner: tuple[int, int], *, tree: bool = False, only_from: int | None = None
) -> None:
    """Give ``path`` (with ``tree``, everything below it too) to ``owner`` (uid, gid); with
    ``only_from``, only what that uid owns now. Symbolic links are changed, never followed.

    Only root may give files away: for any other process, nothing happens.
    """
    if os.geteuid() != 0:
        return
    paths = [path]
    if tree and os.path.isdir(path) and not os.path.islink(path):
        for root, folders, files in os.walk(path):
            paths.extend(os.path.join(root, name) for name in folders + files)
    for each in paths:
        try:
            if only_from is None or os.lstat(each).st_uid == only_from:
                os.lchown(each, *owner)
        except FileNotFoundError:
            continue
