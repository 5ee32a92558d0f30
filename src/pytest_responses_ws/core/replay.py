"""What replay sends for a matched turn, and when (sans I/O).

Frames are encoded once per turn and reused, so the per-turn cost on the server is a
lookup plus the sends. A turn recorded without a stream (a JSON body) is turned into
the event sequence the service would have streamed; a recorded HTTP error becomes the
WebSocket ``error`` event carrying the same status and error object. A turn replays
over the transport it was recorded on exactly as recorded; over the other one its
``error`` events take that transport's shape (see :mod:`.error_events`), and every
other event, known or not, is sent as recorded.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cassette.model import EventLog, Transport, Turn
from .collector import collector_paused
from .error_events import as_sse_events, as_websocket_events, error_answer, is_error_event

# Re-exported: they were first defined here.
from .error_events import error_body as error_body
from .error_events import error_event as error_event
from .match import output_as_recorded, turn_response
from .record import kept_response_headers
from .synthesize import TERMINAL_EVENT_TYPES, synthesize_events

#: Error code of the ``error`` event sent for a request no recorded turn answers.
MISS_ERROR_CODE = "rws_cassette_miss"


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compact(data: Any) -> str:
    """JSON the way the service writes it on the wire: no spaces."""
    return _COMPACT.encode(data)


def turn_events(turn: Turn) -> list[dict[str, Any]]:
    """The server events of a turn, whatever form it was recorded in."""
    if turn.events:
        return [event.data for event in turn.events]
    if turn.body is not None and "output" in turn.body:
        return synthesize_events(turn.body)
    if turn.body is not None and isinstance(turn.body.get("error"), Mapping):
        return [{"type": "error", "status": turn.status, "error": dict(turn.body["error"])}]
    return []


def transport_events(turn: Turn, transport: Transport) -> list[dict[str, Any]]:
    """:func:`turn_events` as ``transport`` sends them.

    On the transport the turn was recorded on, exactly as recorded; on the other one,
    its ``error`` events in that transport's shape. Events built from a JSON body are
    already in WebSocket mode's shape (and an HTTP error body is answered as JSON).
    """
    events = turn_events(turn)
    if not turn.events or turn.transport == transport or not any(map(is_error_event, events)):
        return events
    return as_websocket_events(events) if transport == "ws" else as_sse_events(events)


def turn_offsets_ms(turn: Turn) -> list[float]:
    """Recorded offsets of :func:`turn_events`; synthesized events all come at 0."""
    if isinstance(turn.events, EventLog):
        return turn.events.offsets_ms()
    if turn.events:
        return [event.offset_ms for event in turn.events]
    return [0.0] * len(turn_events(turn))


def _offsets_s(turn: Turn) -> tuple[float, ...]:
    return tuple(offset / 1000.0 for offset in turn_offsets_ms(turn))


def retag_lane(events: Sequence[Mapping[str, Any]], lane: str | None) -> list[dict[str, Any]]:
    """Events as they appear on ``lane``: named lanes echo ``stream_id``, the default omits it."""
    out = []
    for event in events:
        copy = {k: v for k, v in event.items() if k != "stream_id"}
        if lane is not None:
            copy["stream_id"] = lane
        out.append(copy)
    return out


def missing_terminal(events: Sequence[Mapping[str, Any]]) -> str | None:
    """Why these events do not end a turn, or None when one of them does.

    A WebSocket client reads until a terminal event; a turn without one would leave it
    waiting forever (only a hand-edited cassette has such a turn).
    """
    return _missing_terminal([event.get("type") for event in events])


def _missing_terminal(types: Sequence[object]) -> str | None:
    if any(event_type in TERMINAL_EVENT_TYPES for event_type in types):
        return None
    expected = ", ".join(sorted(TERMINAL_EVENT_TYPES))
    if not types:
        return f"the turn has no events, so nothing ends it (a turn ends with one of {expected})"
    return (
        f"no event ends the turn: its {len(types)} event(s) end with {types[-1]!r}, and a "
        f"turn ends with one of {expected}"
    )


def _as_recorded(
    turn: Turn, transport: Transport, lane: str | None
) -> tuple[list[str], tuple[str, ...]] | None:
    """The types and compact texts of a turn read from a file whose events go out on
    ``transport`` and ``lane`` exactly as recorded, or None when they need changing first.

    Such a turn is sent as its recorded text: nothing is decoded or encoded again.
    """
    events = turn.events
    if not isinstance(events, EventLog) or not events:
        return None
    types = [events.event_type(i) for i in range(len(events))]
    if turn.transport != transport and "error" in types:
        return None  # error events change shape across transports
    tagged = events.tags_a_lane()
    unchanged = (lane == turn.lane and tagged == (lane is not None)) if transport == "ws" else not tagged
    return (types, events.compact_texts()) if unchanged else None


@dataclass(frozen=True)
class Playback:
    """The WebSocket frames of one turn with their send offsets in seconds.

    ``unterminated`` says why the frames do not end the turn (None when they do).
    """

    frames: tuple[str, ...]
    offsets_s: tuple[float, ...]
    unterminated: str | None = None

    @classmethod
    def for_websocket(cls, turn: Turn, lane: str | None) -> Playback:
        """The turn as WebSocket frames on ``lane``."""
        recorded = _as_recorded(turn, "ws", lane)
        if recorded is not None:
            types, texts = recorded
            return cls(texts, _offsets_s(turn), _missing_terminal(types))
        events = transport_events(turn, "ws")
        if lane != turn.lane or any("stream_id" in e for e in events) != (lane is not None):
            events = retag_lane(events, lane)
        return cls(
            tuple(compact(event) for event in events),
            _offsets_s(turn),
            missing_terminal(events),
        )

    @classmethod
    def for_sse(cls, turn: Turn) -> Playback:
        """The turn as an SSE body: one ``event:``/``data:`` block per event (no ``[DONE]``)."""
        recorded = _as_recorded(turn, "http", None)
        if recorded is not None:
            types, texts = recorded
            blocks = tuple(sse_text(t, text) for t, text in zip(types, texts, strict=True))
            return cls(blocks, _offsets_s(turn), _missing_terminal(types))
        events = retag_lane(transport_events(turn, "http"), None)
        return cls(
            tuple(sse_block(event) for event in events),
            _offsets_s(turn),
            missing_terminal(events),
        )

    @functools.cached_property
    def sse_body(self) -> bytes:
        """All frames as one body (SSE playbacks), encoded once."""
        return "".join(self.frames).encode("utf-8")

    def schedule(self, factor: float | None) -> list[float] | None:
        """Send times after the request, or None to send everything at once."""
        if factor is None:
            return None
        return [offset * factor for offset in self.offsets_s]

    def stalled_wait(self, first_event_bound_s: float, idle_bound_s: float) -> tuple[int, str] | None:
        """The first recorded wait no recording could have, as (event index, why), or None.

        A recording fails when the upstream is silent longer than its bounds, so a longer
        wait between two events comes from a hand-edited cassette; paced replay would
        keep the client waiting that long.
        """
        previous = 0.0
        for i, offset in enumerate(self.offsets_s):
            bound, what = (first_event_bound_s, "first_event") if i == 0 else (idle_bound_s, "idle")
            if offset - previous > bound:
                return i, (
                    f"event {i} comes {offset - previous:g} s after "
                    f"{'the request' if i == 0 else 'the event before it'}, longer than any recording "
                    f"waits (upstream_{what}_timeout is {bound:g} s), so paced replay would stall there; "
                    f"fix its offset_ms, raise --rws-upstream-{what.replace('_', '-')}-timeout if it was "
                    "recorded with a longer bound, or replay with --rws-timing=instant"
                )
            previous = max(previous, offset)
        return None


#: Turns whose frames a replaying test's set-up encodes ahead (more are encoded when first matched).
PREPARE_AHEAD_TURNS = 256
#: ... as long as they hold no more events than this in all: set-up stays bounded however long
#: the turns are (a few milliseconds), and a short cassette is prepared whole.
PREPARE_AHEAD_EVENTS = 2048


class PlaybackCache:
    """What replay sends for each of a list of recorded turns, built when first asked for and kept.

    One cache serves every engine replaying the same cassette in a process (the ``[http]`` and
    ``[ws]`` runs of a test, every test sharing a cassette), so each turn is decoded and encoded
    once. ``turns`` may be a list that grows (turns recorded during a test).
    """

    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns = turns
        self._playbacks: dict[tuple[int, str], Playback] = {}
        self._answers: dict[tuple[int, bool], HttpAnswer] = {}
        self._outputs: dict[int, list[Any]] = {}

    def prepare(self, transport: Transport, count: int = PREPARE_AHEAD_TURNS) -> None:
        """Build the first ``count`` turns' frames and outputs now, off every turn's path (fewer
        when they hold more than :data:`PREPARE_AHEAD_EVENTS` events).

        Encoding a turn's events costs more than matching it; done at set-up it is not part of
        the per-turn time a test (and its budgets) sees. A longer cassette's later turns are
        built when first matched, so set-up stays proportional to what a test can play first.
        """
        events = 0
        with collector_paused():  # many fresh, acyclic containers (see collector_paused)
            for position in range(min(count, len(self.turns))):
                events += len(self.turns[position].events)
                if position and events > PREPARE_AHEAD_EVENTS:
                    break
                if transport == "ws":
                    self.websocket(position, self.turns[position].lane)
                else:
                    self.sse(position)
                self.output(position)

    def websocket(self, position: int, lane: str | None) -> Playback:
        """The WebSocket frames of a recorded turn as they appear on ``lane``."""
        key = (position, lane or "")
        playback = self._playbacks.get(key)
        if playback is None:
            playback = self._playbacks[key] = Playback.for_websocket(self.turns[position], lane)
        return playback

    def sse(self, position: int) -> Playback:
        """The SSE blocks of a recorded turn."""
        key = (position, "\x00sse")
        playback = self._playbacks.get(key)
        if playback is None:
            playback = self._playbacks[key] = Playback.for_sse(self.turns[position])
        return playback

    def http_answer(self, position: int, wants_stream: bool) -> HttpAnswer:
        """How a recorded turn answers an HTTP request (a non-streamed body is built once)."""
        key = (position, wants_stream)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = http_answer(self.turns[position], wants_stream=wants_stream)
        return answer

    def output(self, position: int) -> list[Any]:
        """Output items of a recorded turn's response (for resent-input accounting)."""
        output = self._outputs.get(position)
        if output is None:
            output = self._outputs[position] = output_as_recorded(self.turns[position])
        return output


def sse_block(event: Mapping[str, Any]) -> str:
    """One server-sent event as the Responses API writes it."""
    return sse_text(event.get("type", "message"), compact(event))


def sse_text(event_type: str, data: str) -> str:
    """One server-sent event from its type and its data's compact JSON."""
    return f"event: {event_type}\ndata: {data}\n\n"


#: Header pairs of an HTTP answer, encoded for the ASGI server.
HeaderPairs = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class HttpAnswer:
    """How a turn answers a plain HTTP request: a status and a JSON body, or a stream.

    ``headers`` are the recorded headers clients act on (``retry-after`` ...), encoded
    once when the answer is built.
    """

    status: int
    body: dict[str, Any] | None
    stream: bool
    headers: HeaderPairs = ()


def answer_headers(turn: Turn) -> HeaderPairs:
    """The recorded response headers a turn replays with (the allow-list applies to a
    hand-edited cassette too, so it cannot set ``content-length`` or a cookie)."""
    kept = kept_response_headers(turn.status, turn.headers)
    return tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in kept.items())


def http_answer(turn: Turn, *, wants_stream: bool) -> HttpAnswer:
    """What the service would answer over HTTP to the request this turn recorded.

    A recorded HTTP error replays as that status, body and the headers clients act on; a
    WebSocket ``error`` event (no response created) becomes the non-2xx JSON error the
    HTTP API sends before any stream. Otherwise a streaming request gets the events (an
    HTTP stream exactly as recorded, even one starting with an ``error`` event) and a
    plain one the final response object, or the error that ended the turn.
    """
    if turn.status >= 400 and turn.body is not None:
        return HttpAnswer(turn.status, turn.body, False, answer_headers(turn))
    events = turn_events(turn)
    if events and is_error_event(events[0]) and turn.transport == "ws":
        status, body = error_answer(events[0])
        return HttpAnswer(status, body, False)
    if wants_stream:
        return HttpAnswer(200, None, True)
    response = turn_response(turn)
    if response is None and events and is_error_event(events[-1]):
        status, body = error_answer(events[-1])
        return HttpAnswer(status, body, False)
    if response is None:
        error = {"message": "the recorded turn has no response", "type": "server_error", "param": None}
        return HttpAnswer(500, {"error": {**error, "code": "rws_no_response"}}, False)
    return HttpAnswer(200, response, False)
