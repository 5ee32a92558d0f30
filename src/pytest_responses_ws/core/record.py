"""Building a cassette from observed traffic (sans I/O: callers pass timestamps in).

The adapter reports connections opening and closing, requests arriving and events
arriving from the upstream. Events are routed to the pending turn of their lane
(``stream_id``; the default lane omits it): creates on one lane run in order, so each
lane is a FIFO. A turn is stored the moment its terminal event arrives, before the
adapter forwards that event to the client, because the test may finish (and write the
cassette) as soon as the client sees it.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..cassette.model import ConnectionClose, ConnectionRecord, RecordedEvent, RecordedSteer, Transport, Turn
from ..cassette.redact import Redactor, redact_request
from .synthesize import TERMINAL_EVENT_TYPES, ends_turn

#: Answers to a steer that can come after its response's terminal event (``pending`` follows
#: ``response.completed`` when the response waits for tool output).
LATE_STEER_EVENTS = frozenset({"response.steer.pending", "response.steer.failed"})

_OUTCOMES = {
    "response.completed": "completed",
    "response.done": "completed",
    "response.failed": "failed",
    "response.incomplete": "incomplete",
    "error": "error",
}


#: Connection headers not worth keeping: they describe the hop, not the client.
UNSTORED_HEADERS = frozenset(
    {"host", "connection", "upgrade", "content-length", "transfer-encoding", "accept-encoding"}
    | {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)


#: Response headers a client acts on when an HTTP request fails (its retry and back-off
#: decisions), kept with a recorded error answer and replayed with it. An allow-list, so
#: no credential, cookie or other header can reach a cassette this way. ``x-request-id``
#: is left out on purpose: it changes on every recording (noise in a diff) and the
#: service never sends one twice, while replay may play a turn more than once; replay
#: gives each answer its own.
KEPT_RESPONSE_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)
#: Statuses from which an answer is an error whose headers are kept.
FIRST_ERROR_STATUS = 400


def kept_response_headers(status: int, headers: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed headers of an HTTP answer, in allow-list order; none unless it is an error.

    A successful answer's rate-limit figures change with every recording and no client
    backs off on them, so they would only add noise to a diff.
    """
    if status < FIRST_ERROR_STATUS or not headers:
        return {}
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[name] for name in KEPT_RESPONSE_HEADERS if name in lowered}


def terminal_outcome(event_type: object) -> str:
    """A turn's outcome from its terminal event type (legacy ``response.done`` is completion)."""
    return _OUTCOMES.get(str(event_type), "completed")


def _ms(ns: int) -> float:
    return round(ns / 1_000_000, 3)


@dataclass
class PendingTurn:
    """A request whose answer is still arriving."""

    connection: int
    lane: str | None
    transport: Transport
    request: dict[str, Any]
    arrived_ns: int
    events: list[RecordedEvent] = field(default_factory=list)
    #: Its position in :attr:`SessionRecorder.turns` once stored.
    stored: int | None = None
    steers: list[RecordedSteer] = field(default_factory=list)
    #: Responses created in this turn: its own, and the successors of its steers.
    response_ids: set[str] = field(default_factory=set)

    def add(self, data: dict[str, Any], at_ns: int) -> None:
        self.events.append(RecordedEvent(_ms(at_ns - self.arrived_ns), data))
        if data.get("type") == "response.created":
            response = data.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.response_ids.add(response["id"])

    def add_steer(self, data: dict[str, Any], at_ns: int) -> None:
        """A ``response.steer`` for one of this turn's responses went upstream at ``at_ns``."""
        self.steers.append(RecordedSteer(len(self.events), _ms(at_ns - self.arrived_ns), data))


@dataclass
class _OpenConnection:
    record: ConnectionRecord
    lanes: dict[str | None, deque[PendingTurn]] = field(default_factory=dict)
    #: Per lane, the last turn an ``error`` event ended after its response was created:
    #: later events of that response (a ``response.failed``) belong to it.
    ended_by_error: dict[str | None, PendingTurn] = field(default_factory=dict)


def _response_id(event: Mapping[str, Any]) -> str | None:
    """The id of the response an event is about, when it names one."""
    response = event.get("response")
    value = response.get("id") if isinstance(response, Mapping) else event.get("response_id")
    return value if isinstance(value, str) else None


class SessionRecorder:
    """Accumulates connections and turns for one test, redacted as they are stored."""

    def __init__(self, origin_ns: int, redactor: Redactor | None = None) -> None:
        self._origin_ns = origin_ns
        self.redactor = redactor or Redactor()
        self._connections: dict[int, _OpenConnection] = {}
        self._http_pending: list[PendingTurn] = []
        self.turns: list[Turn] = []
        self.user_agent: str | None = None
        #: Stored steered turns by connection and response id: where a late answer to a steer goes.
        self._steered: dict[tuple[int, str], tuple[int, int]] = {}

    # -- connections ----------------------------------------------------------

    def open_connection(
        self, transport: Transport, headers: Mapping[str, str], at_ns: int, handshake_ns: int | None = None
    ) -> int:
        """Register a client connection; returns its id within this recording."""
        connection_id = len(self._connections)
        # Handshake and hop headers (host with its random port, sec-websocket-key) are noise in a diff.
        self.redactor.learn(headers)
        agent = headers.get("user-agent")
        if self.user_agent is None and agent is not None:
            self.user_agent = self.redactor.scrub_loose(agent)
        headers = {k: v for k, v in headers.items() if k.lower() not in UNSTORED_HEADERS}
        record = ConnectionRecord(
            id=connection_id,
            transport=transport,
            opened_at_ms=_ms(at_ns - self._origin_ns),
            handshake_ms=None if handshake_ns is None else _ms(handshake_ns),
            headers=self.redactor.headers(headers),
        )
        self._connections[connection_id] = _OpenConnection(record)
        return connection_id

    def close_connection(
        self,
        connection_id: int,
        code: int | None,
        reason: str,
        by: Literal["client", "server", "upstream", "test-end"],
        at_ns: int,
    ) -> None:
        conn = self._connections.get(connection_id)
        if conn is None or conn.record.close is not None:
            return
        # Close reasons are free text a client or upstream chose: they may carry a token.
        self.redactor.learn_weak(reason)
        close = ConnectionClose(code, self.redactor.scrub_loose(reason), by, _ms(at_ns - self._origin_ns))
        conn.record = ConnectionRecord(
            conn.record.id,
            conn.record.transport,
            conn.record.opened_at_ms,
            conn.record.handshake_ms,
            conn.record.headers,
            close,
        )

    def connections(self) -> tuple[ConnectionRecord, ...]:
        return tuple(conn.record for conn in self._connections.values())

    # -- turns ------------------------------------------------------------------

    def start_turn(
        self,
        connection_id: int,
        request: dict[str, Any],
        at_ns: int,
        *,
        transport: Transport,
        lane: str | None = None,
    ) -> PendingTurn:
        """A request arrived complete; its events follow through :meth:`on_event`."""
        self.redactor.learn_request(request)
        pending = PendingTurn(connection_id, lane, transport, request, at_ns)
        if transport == "ws":
            self._connections[connection_id].lanes.setdefault(lane, deque()).append(pending)
        else:
            # One request per HTTP exchange: its events need no routing.
            self._http_pending.append(pending)
        return pending

    def on_http_event(self, pending: PendingTurn, data: dict[str, Any], at_ns: int) -> Turn | None:
        """An SSE event of an HTTP turn; returns the stored turn when it ended.

        Every event of the body belongs to the turn, those after the one that ended it too
        (a ``response.failed`` after an ``error``): they extend the stored turn.
        """
        if pending.stored is not None:
            self._late_event(pending, data, at_ns)
            return None
        pending.add(data, at_ns)
        event_type = data.get("type")
        if event_type not in TERMINAL_EVENT_TYPES:
            return None
        self.discard(pending)
        return self.store(pending, outcome=terminal_outcome(event_type))

    def discard(self, pending: PendingTurn) -> None:
        """Forget an HTTP turn that will be stored another way (a JSON answer) or not at all."""
        if pending in self._http_pending:
            self._http_pending.remove(pending)

    def waiting(self, connection_id: int, lane: str | None) -> PendingTurn | None:
        """The turn the next event of a WebSocket lane belongs to, if one is waiting."""
        queue = self._connections[connection_id].lanes.get(lane)
        return queue[0] if queue else None

    def on_event(self, connection_id: int, data: dict[str, Any], at_ns: int) -> Turn | None:
        """Route an upstream event to its turn; returns the stored turn when it ended."""
        if data.get("type") in LATE_STEER_EVENTS and self._late_steer_answer(connection_id, data, at_ns):
            return None
        lane_value = data.get("stream_id")
        lane = lane_value if isinstance(lane_value, str) else None
        conn = self._connections[connection_id]
        queue = conn.lanes.get(lane)
        ended = conn.ended_by_error.get(lane)
        if ended is not None and (not queue or _response_id(data) == self._stored_response_id(ended)):
            # The rest of a response an ``error`` event cut short (the lane has no newer turn,
            # or the event names that response): kept with it, as the client saw it.
            self._late_event(ended, data, at_ns)
            return None
        if not queue:
            return None  # not part of a turn (a stray error, a keep-alive): forwarded, not kept
        pending = queue[0]
        pending.add(data, at_ns)
        if not ends_turn(data):
            # A steered response.incomplete is followed by its successor, in the same turn.
            return None
        queue.popleft()
        event_type = data.get("type")
        turn = self.store(pending, outcome=terminal_outcome(event_type))
        if event_type == "error" and turn.response_id is not None:
            conn.ended_by_error[lane] = pending
        else:
            conn.ended_by_error.pop(lane, None)
        return turn

    def _stored_response_id(self, pending: PendingTurn) -> str | None:
        return None if pending.stored is None else self.turns[pending.stored].response_id

    def _late_event(self, pending: PendingTurn, data: dict[str, Any], at_ns: int) -> None:
        """An event of a turn already stored: it extends the stored turn (a terminal one sets its outcome)."""
        assert pending.stored is not None
        pending.add(data, at_ns)
        turn = self.turns[pending.stored]
        event_type = data.get("type")
        outcome = terminal_outcome(event_type) if event_type in TERMINAL_EVENT_TYPES else turn.outcome
        late = RecordedEvent(pending.events[-1].offset_ms, self.redactor.scrub(data))
        self.turns[pending.stored] = dataclasses.replace(turn, events=(*turn.events, late), outcome=outcome)

    def _late_steer_answer(self, connection_id: int, data: dict[str, Any], at_ns: int) -> bool:
        """Keep a steer's answer that came after its turn was stored (``pending`` after
        ``response.completed``) with that turn; False when no stored steered turn owns it."""
        steer = data.get("steer")
        if not isinstance(steer, dict):
            return False
        target = steer.get("previous_response_id")
        owner = self._steered.get((connection_id, target)) if isinstance(target, str) else None
        if owner is None:
            return False
        position, arrived_ns = owner
        turn = self.turns[position]
        accepted = {
            e.data["steer"].get("id")
            for e in turn.events
            if e.type == "response.steer.accepted" and isinstance(e.data.get("steer"), dict)
        }
        if steer.get("id") not in accepted:
            return False  # a steer of its own (at a finished response, say): not this turn's
        event = RecordedEvent(_ms(at_ns - arrived_ns), self.redactor.scrub(data))
        self.turns[position] = dataclasses.replace(turn, events=(*turn.events, event))
        return True

    def on_steer(self, connection_id: int, data: dict[str, Any], at_ns: int) -> bool:
        """A client's ``response.steer`` went upstream: kept with the turn streaming the
        response it steers. False when no such turn is pending (the steer is forwarded but
        not kept; the upstream answers it with ``response.steer.failed``)."""
        target = data.get("previous_response_id")
        conn = self._connections.get(connection_id)
        if conn is None or not isinstance(target, str):
            return False
        for queue in conn.lanes.values():
            for pending in queue:
                if target in pending.response_ids:
                    self.redactor.learn_request(data)
                    pending.add_steer(data, at_ns)
                    return True
        return False

    def store(
        self,
        pending: PendingTurn,
        *,
        outcome: str,
        status: int = 200,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Turn:
        """Finish ``pending`` and keep it, with secrets scrubbed.

        ``headers`` are the answer's headers: the allow-listed ones of an error answer are
        kept (:func:`kept_response_headers`).
        """
        scrub = self.redactor.scrub
        loose = self.redactor.scrub_loose
        kept = kept_response_headers(status, headers or {})
        turn = Turn(
            request=scrub(redact_request(pending.request)),
            events=tuple(RecordedEvent(e.offset_ms, scrub(e.data)) for e in pending.events),
            transport=pending.transport,
            connection=pending.connection,
            # The lane stays as sent while the test runs (the server routes traces by it);
            # scrub_all masks it before the cassette is written.
            lane=pending.lane,
            outcome=outcome,
            status=status,
            body=None if body is None else scrub(body),
            started_at_ms=_ms(pending.arrived_ns - self._origin_ns),
            headers={name: loose(value) for name, value in kept.items()},
            steers=tuple(
                dataclasses.replace(steer, request=scrub(redact_request(steer.request)))
                for steer in pending.steers
            ),
        )
        pending.stored = len(self.turns)
        self.turns.append(turn)
        if pending.steers:
            for response_id in pending.response_ids:
                self._steered[(pending.connection, response_id)] = (len(self.turns) - 1, pending.arrived_ns)
        return turn

    def _lane(self, lane: str | None) -> str | None:
        # Replay re-tags events with the incoming request's lane: a redacted lane name still plays.
        return None if lane is None else self.redactor.scrub_loose(lane)

    def scrub_all(self) -> None:
        """Scrub every stored turn and connection again with every secret learned so far."""
        scrub = self.redactor.scrub
        loose = self.redactor.scrub_loose
        self.turns = [
            dataclasses.replace(
                turn,
                request=scrub(turn.request),
                events=tuple(RecordedEvent(e.offset_ms, scrub(e.data)) for e in turn.events),
                body=None if turn.body is None else scrub(turn.body),
                lane=self._lane(turn.lane),
                headers={name: loose(value) for name, value in turn.headers.items()},
                steers=tuple(dataclasses.replace(st, request=scrub(st.request)) for st in turn.steers),
            )
            for turn in self.turns
        ]
        for conn in self._connections.values():
            close = conn.record.close
            conn.record = dataclasses.replace(
                conn.record,
                headers={k: loose(v) for k, v in conn.record.headers.items()},
                close=None if close is None else dataclasses.replace(close, reason=loose(close.reason)),
            )
        if self.user_agent is not None:
            self.user_agent = loose(self.user_agent)

    def unfinished(self) -> list[PendingTurn]:
        """Turns whose answer never ended (the upstream dropped mid-stream)."""
        lanes = [p for conn in self._connections.values() for lane in conn.lanes.values() for p in lane]
        return [*lanes, *self._http_pending]

    def abandon(self, connection_id: int) -> list[PendingTurn]:
        """Drop and return the unfinished turns of a connection that went away."""
        conn = self._connections.get(connection_id)
        if conn is None:
            return []
        dropped = [p for lane in conn.lanes.values() for p in lane]
        conn.lanes.clear()
        return dropped
