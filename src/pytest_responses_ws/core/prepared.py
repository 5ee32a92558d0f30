"""What every replay of one cassette derives from its turns, built once and shared.

The ``[http]`` and ``[ws]`` runs of a test replay the same cassette, and so may many tests
(``rws_cassette`` names, ``rws_config``). Each needs the same index of the recorded turns, the
same frames per turn and the same facts about them; only what is played differs. A
:class:`PreparedTurns` holds the shared part, built when first asked for; each replaying
engine takes a fresh copy of the index (see :meth:`TurnIndex.copy`) and keeps its own play
counts. Everything here is read-only once built, except under the lock that builds it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..cassette.model import EventLog, Turn
from .match import TurnIndex
from .replay import PlaybackCache
from .service_errors import CONNECTION_LIMIT_CODE, INVALID_STREAM_ID_CODE, STREAM_LIMIT_CODE
from .volatile import compile_volatile

__all__ = ["RULE_ERROR_CODES", "PreparedTurns", "refused_by_rule"]

#: Error codes the service answers by a connection rule (replay gives them itself).
RULE_ERROR_CODES = frozenset({INVALID_STREAM_ID_CODE, STREAM_LIMIT_CODE, CONNECTION_LIMIT_CODE})


class PreparedTurns:
    """A cassette's recorded turns with what replaying them needs, each part built once."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns: tuple[Turn, ...] = tuple(turns)
        #: Frames and answers per turn, encoded when first needed (see :class:`PlaybackCache`).
        self.playbacks = PlaybackCache(self.turns)
        self._indexes: dict[tuple[tuple[str, ...], bool, tuple[str, ...]], TurnIndex] = {}
        self._unstored: frozenset[str] | None = None
        self._refused: tuple[int, ...] | None = None
        self._lock = threading.Lock()

    def index(
        self, ignore: Sequence[str] = (), allow_repeats: bool = False, volatile: Sequence[str] = ()
    ) -> TurnIndex:
        """A new index of the turns, nothing played (built the first time, copied after).

        One is built per set of matching settings: the digests depend on them.
        """
        key = (tuple(ignore), allow_repeats, tuple(volatile))
        with self._lock:
            built = self._indexes.get(key)
            if built is None:
                built = self._indexes[key] = TurnIndex.build(
                    self.turns, ignore, allow_repeats, compile_volatile(volatile)
                )
        return built.copy()

    @property
    def unstored_ids(self) -> frozenset[str]:
        """Responses created by a ``store: false`` request (held only by their connection)."""
        if self._unstored is None:
            self._unstored = frozenset(
                response_id
                for turn in self.turns
                if turn.unstored and (response_id := turn.response_id) is not None
            )
        return self._unstored

    @property
    def refused_by_rule(self) -> tuple[int, ...]:
        """Positions of turns that are the service refusing a request by a connection rule."""
        if self._refused is None:
            self._refused = tuple(i for i, turn in enumerate(self.turns) if refused_by_rule(turn))
        return self._refused


def refused_by_rule(turn: Turn) -> bool:
    """Whether a recorded turn is the service refusing its request by a connection rule."""
    events = turn.events
    if not events:
        return False
    first_type = events.event_type(0) if isinstance(events, EventLog) else events[0].type
    if first_type != "error":
        return False
    error = events[0].data.get("error")
    return isinstance(error, dict) and error.get("code") in RULE_ERROR_CODES
