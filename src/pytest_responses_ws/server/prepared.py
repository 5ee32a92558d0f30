"""Cassettes read for replay once per process, while their files stay the same.

Both transports of a test, and every test naming the same cassette, replay one file. Reading,
decoding and indexing it once, and encoding each turn's frames once, makes a test's set-up cost
what it plays, not what the cassette holds. A cached cassette is used again only while the
file's bytes are exactly those it was decoded from: a file rewritten by a recording, by hand or
by another process is always read afresh (a comparison of bytes costs far less than a decode).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..cassette.model import Cassette
from ..cassette.store import decode_cassette_file, read_cassette_bytes
from ..core.prepared import PreparedTurns

__all__ = ["ReplayCache", "ReplaySource"]

#: How many cassettes a cache keeps (the most recently used); a suite rarely interleaves more.
DEFAULT_CACHE_SIZE = 16


@dataclass(frozen=True)
class ReplaySource:
    """A cassette as read for replay, with its turns prepared."""

    cassette: Cassette
    prepared: PreparedTurns


class ReplayCache:
    """The cassettes one process replays, by path; safe to share between threads."""

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[Path, tuple[bytes, ReplaySource]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: Path) -> ReplaySource:
        """The cassette at ``path`` (which must exist), decoded once while its bytes are unchanged.

        Raises what :func:`~pytest_responses_ws.cassette.store.load_cassette` raises.
        """
        data = read_cassette_bytes(path)
        key = path.resolve()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == data:
                self._entries.move_to_end(key)
                return entry[1]
        cassette = decode_cassette_file(data, path)
        source = ReplaySource(cassette, PreparedTurns(cassette.turns))
        with self._lock:
            self._entries[key] = (data, source)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return source

    def clear(self) -> None:
        """Forget every cassette."""
        with self._lock:
            self._entries.clear()
