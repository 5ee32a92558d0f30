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

from ..cassette.model import ConnectionClose, ConnectionRecord, RecordedEvent, Transport, Turn
from ..cassette.redact import Redactor, redact_request
from .synthesize import TERMINAL_EVENT_TYPES

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

    def add(self, data: dict[str, Any], at_ns: int) -> None:
        self.events.append(RecordedEvent(_ms(at_ns - self.arrived_ns), data))


@dataclass
class _OpenConnection:
    record: ConnectionRecord
    lanes: dict[str | None, deque[PendingTurn]] = field(default_factory=dict)


class SessionRecorder:
    """Accumulates connections and turns for one test, redacted as they are stored."""

    def __init__(self, origin_ns: int, redactor: Redactor | None = None) -> None:
        self._origin_ns = origin_ns
        self.redactor = redactor or Redactor()
        self._connections: dict[int, _OpenConnection] = {}
        self._http_pending: list[PendingTurn] = []
        self.turns: list[Turn] = []
        self.user_agent: str | None = None

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
        """An SSE event of an HTTP turn; returns the stored turn when it ended."""
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
        lane_value = data.get("stream_id")
        lane = lane_value if isinstance(lane_value, str) else None
        queue = self._connections[connection_id].lanes.get(lane)
        if not queue:
            return None  # not part of a turn (a stray error, a keep-alive): forwarded, not kept
        pending = queue[0]
        pending.add(data, at_ns)
        event_type = data.get("type")
        if event_type not in TERMINAL_EVENT_TYPES:
            return None
        queue.popleft()
        return self.store(pending, outcome=terminal_outcome(event_type))

    def store(
        self,
        pending: PendingTurn,
        *,
        outcome: str,
        status: int = 200,
        body: dict[str, Any] | None = None,
    ) -> Turn:
        """Finish ``pending`` and keep it, with secrets scrubbed."""
        scrub = self.redactor.scrub
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
        )
        self.turns.append(turn)
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
