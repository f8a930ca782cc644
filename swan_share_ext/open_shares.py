"""The seam between "Open in SWAN" and sharing: how a user reaches a path in someone else's space.

Sharing is a separate backend; this module only defines the question the open-in flow asks. It
must not talk to any storage or share API itself.
"""

from __future__ import annotations


class ShareLookup:
    """Answers whether ``user`` received a share that covers ``owner``'s ``path``.

    The default knows of no shares: links into someone else's space then show a page asking
    the user to have the owner share it. A share backend subclasses this and is configured as
    ``c.SwanOpenIn.share_lookup_class``.
    """

    async def path_for(self, user: str, owner: str, path: str) -> str | None:
        """The path in ``user``'s own view where ``owner``'s ``path`` can be opened, or None."""
        return None
