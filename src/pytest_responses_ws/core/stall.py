"""Bounds on the upstream's silence while recording (sans I/O: callers pass clock readings in).

A recorded turn waits on the upstream twice: for the first event of its answer, then
between events. Each wait has a bound (a setting); when one is hit the test fails saying
which turn stalled, which bound it hit and how to raise it, instead of waiting forever.

:class:`StallWatch` follows the turns of one WebSocket connection. Creates on one lane
(``stream_id``) are answered in order, so only the oldest waiting turn of each lane is
on the clock; the next one's wait for its first event starts when the one before ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .synthesize import TERMINAL_EVENT_TYPES

FIRST_EVENT_SETTING = "upstream_first_event_timeout"
IDLE_SETTING = "upstream_idle_timeout"


@dataclass(frozen=True)
class Bound:
    """One bound on a wait: the setting that holds it and its value in seconds."""

    setting: str
    seconds: float

    @property
    def option(self) -> str:
        """The command-line option that sets it."""
        return "--rws-" + self.setting.replace("_", "-")

    def how_to_raise(self) -> str:
        return (
            f"raise it with {self.option}=SECONDS, the rws_{self.setting} ini option, or "
            f"@pytest.mark.rws_cassette({self.setting}=SECONDS)"
        )


def first_event_bound(seconds: float) -> Bound:
    return Bound(FIRST_EVENT_SETTING, seconds)


def idle_bound(seconds: float) -> Bound:
    return Bound(IDLE_SETTING, seconds)


def describe_stall(where: str, bound: Bound, events: int, *, unfinished: bool = False) -> str:
    """What stalled, for the test's failure: the turn, the bound it hit, how to raise it.

    ``unfinished``: the upstream sent part of a non-streamed answer (whose one event is
    the whole body) but not all of it within ``bound``.
    """
    seconds = f"{bound.seconds:g} s"
    if unfinished:
        what = (
            f"the upstream had not finished its answer to {where} {seconds} after it was sent "
            "(a non-streamed answer is one event: its whole body is due within the first-event bound)"
        )
    elif events == 0:
        what = f"the upstream sent nothing for {seconds} after {where} was sent to it"
    else:
        what = (
            f"the upstream went silent for {seconds} in the middle of its answer to {where} "
            f"(after {events} event{'s' if events != 1 else ''})"
        )
    return f"{what}: {bound.setting} is {seconds}. If the model needs longer, {bound.how_to_raise()}."


@dataclass
class _Waiting:
    where: str
    lane: str | None
    since_ns: int
    events: int = 0


@dataclass(frozen=True)
class Stall:
    """A turn whose answer did not arrive within its bound."""

    where: str
    lane: str | None
    bound: Bound
    events: int

    def describe(self) -> str:
        return describe_stall(self.where, self.bound, self.events)


class StallWatch:
    """The waiting turns of one upstream WebSocket connection and their deadlines."""

    def __init__(self, first_event_s: float, idle_s: float) -> None:
        self.first_event = first_event_bound(first_event_s)
        self.idle = idle_bound(idle_s)
        self._lanes: dict[str | None, deque[_Waiting]] = {}

    def start(self, where: str, lane: str | None, at_ns: int) -> None:
        """A request went to the upstream; ``where`` names it in a failure."""
        self._lanes.setdefault(lane, deque()).append(_Waiting(where, lane, at_ns))

    def on_event(self, lane: str | None, event_type: object, at_ns: int) -> None:
        """An upstream event arrived on ``lane`` (routed like the recorder routes it)."""
        queue = self._lanes.get(lane)
        if not queue:
            return  # not part of a turn
        head = queue[0]
        head.events += 1
        head.since_ns = at_ns
        if event_type in TERMINAL_EVENT_TYPES:
            queue.popleft()
            if queue:
                queue[0].since_ns = at_ns  # its wait starts now, behind the one that ended
            else:
                del self._lanes[lane]

    def _deadline(self, waiting: _Waiting) -> int:
        bound = self.first_event if waiting.events == 0 else self.idle
        return waiting.since_ns + int(bound.seconds * 1e9)

    def deadline_ns(self) -> int | None:
        """The earliest deadline of a waiting turn, or None when nothing is waiting."""
        heads = [queue[0] for queue in self._lanes.values()]
        return min((self._deadline(head) for head in heads), default=None)

    def overdue(self, now_ns: int) -> Stall | None:
        """The turn that has waited past its bound at ``now_ns``, if any."""
        for queue in self._lanes.values():
            head = queue[0]
            if self._deadline(head) <= now_ns:
                bound = self.first_event if head.events == 0 else self.idle
                return Stall(head.where, head.lane, bound, head.events)
        return None
