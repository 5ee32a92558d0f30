"""Pausing the cyclic garbage collector while many containers are built at once."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector while a decode or an index builds many fresh containers.

    They are acyclic dicts and lists, yet each allocation threshold crossed makes the collector rescan
    everything built so far (most of a large cassette's load time). The previous state is restored on
    every exit, including a failed decode. Reference counting still frees what is dropped meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
