"""ETags as WebDAV servers write them: one spelling per version (`normalize_etag`), and the
header that makes a write conditional on one, which depends on whether the server last called
it weak (`ETags`).

It must not send requests: the driver asks it which header to send and tells it what it saw.
"""

from __future__ import annotations

import time

#: Seconds during which Apache calls a new file's ETag weak (its mtime has a 1 s granularity),
#: with a margin.
WEAK_WINDOW = 1.5


def normalize_etag(value: str | None) -> str:
    """One spelling per version, whichever way the server wrote it ("" for none).

    Servers differ: WsgiDAV leaves `getetag` unquoted but quotes its `ETag` header; Apache marks
    an ETag weak (`W/`) while the file is less than a second old and strong afterwards, for the
    same version. The quoted strong form is what we keep and send back in `If-Match`.
    """
    if not value:
        return ""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    if not (len(value) >= 2 and value.startswith('"') and value.endswith('"')):
        value = f'"{value}"'
    return value


class ETags:
    """The etags a server called weak lately, remembered to condition writes on them rightly."""

    #: how many etags seen weak are remembered at the most
    memory = 1000

    def __init__(self) -> None:
        #: etags the server called weak, with when (monotonic) we last saw them so
        self._weak_seen: dict[str, float] = {}

    def version(self, raw: str | None) -> str:
        """The normalized etag of a raw one, remembering when a server last called it weak."""
        etag = normalize_etag(raw)
        if raw and raw.lstrip().startswith("W/"):
            now = time.monotonic()
            if len(self._weak_seen) >= self.memory:
                # forget what no save can still ask about; if a listing of more young files
                # than that came at once, forget all (costs at most a retried save)
                horizon = now - WEAK_WINDOW
                self._weak_seen = {e: t for e, t in self._weak_seen.items() if t > horizon}
                if len(self._weak_seen) >= self.memory // 2:
                    self._weak_seen = {}
            self._weak_seen[etag] = now
        return etag

    def seen_weak(self, etag: str) -> bool:
        seen = self._weak_seen.get(etag)
        return seen is not None and time.monotonic() - seen < WEAK_WINDOW

    @staticmethod
    def condition(etag: str, weak: bool) -> dict[str, str]:
        """The header that makes a write conditional on `etag`.

        Apache calls an ETag weak during its file's first second and compares If-Match
        strongly, so no If-Match matches a version that young; the WebDAV If header naming the
        weak form does. Everywhere else, If-Match.
        """
        return {"If": f"([W/{etag}])"} if weak else {"If-Match": etag}
