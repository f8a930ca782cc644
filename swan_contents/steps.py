"""Long work on the event loop cut into steps, so that the user's other requests (a save, a
kernel's messages, `/api/status`) are served between them: a folder of 10,000 entries turned
into models or JSON in one go held the loop for a tenth of a second or more.

It must hold no I/O; work that blocks on the disk or the network goes to threads instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Entries (models, JSON of models) handled between two turns of the event loop: a few
#: milliseconds of work each, and a folder of up to this many costs no extra turn at all.
ENTRIES_PER_STEP = 500


async def in_steps(items: Sequence[T], size: int = ENTRIES_PER_STEP) -> AsyncIterator[Sequence[T]]:
    """`items` in slices of `size`, with a turn of the event loop between two slices (none
    before the first, so a short sequence costs nothing)."""
    for start in range(0, len(items), size):
        if start:
            await asyncio.sleep(0)
        yield items[start : start + size]
