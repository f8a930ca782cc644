"""Notebook trust off the event loop: nbformat's signatures database (sqlite, committed to disk on
every save and every open of a notebook, 15-40 ms each) lives in one thread of its own, and a
save's commit runs beside the serialization and the write instead of before them.

It must not change what is trusted: the same notary, signatures and database as the stock manager.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from nbformat.sign import NotebookNotary


class NotebookTrust:
    """The one door to a notary whose sqlite connection belongs to a thread of its own (sqlite
    connections may only be used from the thread that opened them)."""

    def __init__(self, make_notary: Any, log: logging.Logger):
        self.log = log
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swan-trust")
        self.notary: NotebookNotary = self._thread.submit(make_notary).result()

    def run(self, fn: Any, *args: Any) -> Future:
        """`fn(*args)` in the notary's thread."""
        return self._thread.submit(fn, *args)

    async def is_trusted(self, nb: Any, path: str) -> bool:
        """Whether the signatures database knows ``nb`` (the check of opening a notebook)."""
        trusted = await asyncio.wrap_future(self.run(self.notary.check_signature, nb))
        if not trusted:
            self.log.warning("Notebook %s is not trusted", path)
        return trusted

    async def signature(self, nb: Any, path: str) -> str | None:
        """The signature to remember for ``nb`` if all its cells are trusted, else None.
        Computed before the notebook is serialized (it briefly lifts the old signature out of
        the metadata, so it must not run beside the serialization)."""
        if not self.notary.check_cells(nb):
            self.log.warning("Notebook %s is not trusted", path)
            return None
        if nb.nbformat < 3:
            return None
        return await asyncio.to_thread(self.notary.compute_signature, nb)

    def remember(self, signature: str | None, path: str) -> asyncio.Future:
        """Store ``signature`` in the database; await the result before answering the save, so
        that a notebook reopened at once is trusted. Never raises: a database that fails is
        made anew once (as the stock manager does), then the failure is only logged, since the
        notebook itself is saved."""
        return asyncio.wrap_future(self.run(self._store, signature, path))

    def _store(self, signature: str | None, path: str) -> None:
        if signature is None:
            return
        for attempt in (1, 2):
            try:
                self.notary.store.store_signature(signature, self.notary.algorithm)
                return
            except Exception:
                self.log.warning(
                    "Signature store for notebook %s is corrupted or unavailable; %s",
                    path,
                    "recreating the store" if attempt == 1 else "the notebook stays untrusted",
                    exc_info=True,
                )
                if attempt == 1:
                    self.notary.store = self.notary.store_factory()

    async def sign(self, nb: Any, path: str) -> None:
        """Sign ``nb`` now (an explicit "trust this notebook")."""
        await self.remember(await self.signature(nb, path), path)
