"""Helpers for bulk steps: a page of a rebuild, a batch of an import."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one bulk step (a page, a batch).

    A step allocates many short-lived objects and no reference cycles worth collecting,
    while the ledger keeps large, long-lived caches (loaded subjects) that every full
    collection walks. Collections triggered mid-step cost a tenth of the step and free
    nothing that reference counting does not; once the step ends, the next allocation
    runs whatever collection is due.
    """
    if not gc.isenabled():  # the caller manages collection itself
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
