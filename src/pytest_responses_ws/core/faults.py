"""Fault injection: the failures a test asks the loopback server to inject (sans I/O).

A :class:`Fault` is a frozen, validated value made by one of the factories (:func:`close`,
:func:`cut`, :func:`connection_limit`, :func:`not_found`, :func:`http_status`,
:func:`error_event`, :func:`delay`, :func:`malformed`); the public module
``pytest_responses_ws.faults`` re-exports them. A :class:`FaultPlan` holds a test's
faults and decides, per ``response.create``, which of them fire: the turn engine asks it
and attaches the resulting :class:`Injection` (what the adapter must do, in both
transports' terms) to its action. Nothing here reads a clock or opens a socket.

Each fault is built to look to the client exactly as the service's own failure would:
the service's error bodies and events come from :mod:`.service_errors`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..cassette.model import Transport
from .replay import HeaderPairs, error_body, sse_block
from .replay import error_event as wrapped_error_event
from .service_errors import ServiceError, connection_limit_reached, previous_response_not_found

if TYPE_CHECKING:
    from ..errors import RwsError
    from .metrics import TurnTrace

FaultKind = Literal[
    "close", "cut", "connection_limit", "not_found", "http_status", "error_event", "delay", "malformed"
]
ErrorShape = Literal["nested", "flat"]

#: The longest injected wait, in seconds (before the first event, between two events, or a
#: ``retry_after``): a minute, so no test waits long on a fault however it is written.
MAX_DELAY_S = 60.0
#: Close codes a server may send in a close frame (1005, 1006 and 1015 are never sent;
#: 1004 is reserved). A connection aborted without a close frame is :func:`cut`.
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)}) | frozenset(range(3000, 5000))
#: Close code of the service after ``websocket_connection_limit_reached``.
CONNECTION_LIMIT_CLOSE_CODE = 1000
#: What a mid-stream ``error`` event says unless the test says otherwise.
DEFAULT_ERROR_MESSAGE = "An error occurred while processing your request. Please retry your request."
#: The text a :func:`malformed` frame or SSE data line carries (not JSON).
MALFORMED_PAYLOAD = '{"type": "response.output_text.delta", "delta": "unterminated'

#: The service's error body per HTTP status: (type, code, message).
_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: ("invalid_request_error", None, "Not found."),
    408: ("server_error", "timeout", "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: (
        "server_error",
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: ("server_error", "service_unavailable", "The server is overloaded or not ready yet."),
    504: ("server_error", "timeout", "Gateway timeout."),
}


class FaultError(ValueError):
    """A fault built with a bad argument (the message is one line naming both)."""


@dataclass(frozen=True)
class Fault:
    """One failure to inject, and the turns it fires on (see the factories)."""

    kind: FaultKind
    #: The first turn it may fire on: the Nth ``response.create`` of the test (1-based,
    #: every connection and both transports); None: the next one that comes.
    turn: int | None = None
    #: Only turns on this connection (the ids of ``rws.turns``); None: any.
    connection: int | None = None
    #: Only turns over this transport; None: any where the fault exists.
    transport: Transport | None = None
    #: How many matching turns it fires on; None: every one.
    times: int | None = 1
    #: Where in the turn's stream it strikes; None: before the first event.
    after_events: int | None = None
    close_code: int | None = None
    reason: str = ""
    status: int | None = None
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    shape: ErrorShape = "nested"
    first_event_s: float = 0.0
    between_events_s: float = 0.0

    @property
    def transports(self) -> frozenset[Transport]:
        """The transports this fault fires on."""
        if self.transport is not None:
            return frozenset({self.transport})
        if self.kind == "connection_limit":
            return frozenset({"ws"})
        return frozenset({"http", "ws"})

    @property
    def before_stream(self) -> bool:
        """Whether it strikes before the turn's first event (no upstream request while recording)."""
        return self.kind in ("connection_limit", "not_found", "http_status") or (
            self.kind == "close" and self.after_events is None
        )

    def describe(self) -> str:
        """A short label for reports: ``close(1011) after 3 events``."""
        if self.kind == "close":
            label = f"close({self.close_code})"
        elif self.kind == "http_status":
            label = f"http_status({self.status})"
        elif self.kind == "error_event":
            label = f"error_event({self.code}, {self.shape})"
        elif self.kind == "delay":
            label = f"delay({self.first_event_s:g}s, {self.between_events_s:g}s between)"
        else:
            label = self.kind
        if self.after_events is not None and self.kind != "delay":
            label += f" after {self.after_events} event{'s' if self.after_events != 1 else ''}"
        return label


# -- the factories ---------------------------------------------------------------


def close(
    code: int = 1011,
    reason: str = "",
    *,
    after_events: int | None = None,
    turn: int | None = None,
    connection: int | None = None,
    transport: Transport | None = None,
    times: int | None = 1,
) -> Fault:
    """Close the connection with ``code`` before the turn's first event, or after ``after_events``.

    Over HTTP there is no close code: the connection drops (before the status line, or
    the body is cut after ``after_events`` events) and the client sees a connection error.
    """
    name = "faults.close"
    if isinstance(code, bool) or not isinstance(code, int) or code not in _SENDABLE_CLOSE_CODES:
        raise FaultError(
            f"{name}: code={code!r} is not a close code a server can send "
            "(1000-1003, 1007-1014, 3000-4999; use faults.cut() for a connection lost without one)"
        )
    if not isinstance(reason, str) or len(reason.encode("utf-8")) > 123:
        raise FaultError(
            f"{name}: reason={reason!r} must be a string of at most 123 bytes (a close frame's limit)"
        )
    return Fault(
        "close",
        close_code=code,
        reason=reason,
        after_events=_count(name, "after_events", after_events, optional=True),
        **_selection(name, turn, connection, transport, times),
    )


def cut(
    after_events: int = 0,
    *,
    turn: int | None = None,
    connection: int | None = None,
    transport: Transport | None = None,
    times: int | None = 1,
) -> Fault:
    """End the stream abruptly after ``after_events`` events: no close frame, no end of body.

    Over WebSocket the client sees the connection lost (close code 1006); over HTTP an
    incomplete chunked body.
    """
    name = "faults.cut"
    return Fault(
        "cut",
        after_events=_count(name, "after_events", after_events),
        **_selection(name, turn, connection, transport, times),
    )


def connection_limit(
    *,
    turn: int | None = None,
    connection: int | None = None,
    transport: Transport | None = None,
    times: int | None = 1,
) -> Fault:
    """WebSocket only: the service's ``websocket_connection_limit_reached`` error, then close 1000.

    What the service does to a ``response.create`` on a connection older than 60 minutes.
    HTTP has no such limit: the fault never fires on an HTTP turn.
    """
    name = "faults.connection_limit"
    if transport == "http":
        raise FaultError(
            f"{name}: transport='http' is not possible: the connection limit exists over WebSocket only"
        )
    return Fault("connection_limit", **_selection(name, turn, connection, transport, times))


def not_found(
    *,
    turn: int | None = None,
    connection: int | None = None,
    transport: Transport | None = None,
    times: int | None = 1,
) -> Fault:
    """``previous_response_not_found`` for the turn's ``previous_response_id``.

    Fires only on a turn that chains (has a ``previous_response_id``). Over WebSocket the
    client gets the error event and the connection stays open; over HTTP a 400.
    """
    return Fault("not_found", **_selection("faults.not_found", turn, connection, transport, times))


def http_status(
    status: int,
    *,
    retry_after: float | None = None,
    code: str | None = None,
    message: str | None = None,
    turn: int | None = None,
    connection: int | None = None,
    transport: Transport | None = None,
    times: int | None = 1,
) -> Fault:
    """An error status before the stream, with the service's JSON error body.

    Over HTTP: ``status`` (429 ``rate_limit_exceeded``, 500 ``server_error``, 503
    ``service_unavailable`` ...) and a ``retry-after`` header when ``retry_after`` is
    given (seconds). Over WebSocket: the wrapped ``error`` event with that status; the
    connection stays open.
    """
    name = "faults.http_status"
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise FaultError(f"{name}: status={status!r} must be an error status, 400 to 599")
    if retry_after is not None and not _seconds(retry_after, MAX_DELAY_S):
        raise FaultError(f"{name}: retry_after={retry_after!r} must be seconds, 0 to {MAX_DELAY_S:g}")
    return Fault(
        "http_status",
        status=status,
        retry_after=None if retry_after is None else float(retry_after),
        code=_text(name, "code", code),
        message=_text(name, "message", message),
        **_selection(name, turn, connection, transport, times),
    )


def error_event(
    code: str = "server_error",
    message: str = DEFAULT_ERROR_MESSAGE,
    *,
    shape: ErrorShape = "nested",
    after_events: int = 0,
    turn: int | None = None,
    connection: int | None = None,
    transport: Transport | None = None,
    times: int | None = 1,
) -> Fault:
    """An ``error`` event after ``after_events`` events of the turn, which then ends.

    Over HTTP the SSE event has ``shape``: ``"nested"`` (``{"type": "error", "error":
    {...}}``, on which openai-python raises ``APIError``) or ``"flat"`` (``{"type":
    "error", "code", "message", ...}``, which it yields as an event), and the body ends.
    Over WebSocket it is the wrapped error event and the connection stays open.
    """
    name = "faults.error_event"
    if shape not in ("nested", "flat"):
        raise FaultError(f"{name}: shape={shape!r} must be 'nested' or 'flat'")
    return Fault(
        "error_event",
        code=_text(name, "code", code, required=True),
        message=_text(name, "message", message, required=True),
        shape=shape,
        after_events=_count(name, "after_events", after_events),
        **_selection(name, turn, connection, transport, times),
    )


def delay(
    first_event: float = 0.0,
    between_events: float = 0.0,
    *,
    turn: int | None = None,
    connection: int | None = None,
    transport: Transport | None = None,
    times: int | None = 1,
) -> Fault:
    """Added latency in seconds: before the turn's first event and between its events.

    Each wait is at most :data:`MAX_DELAY_S`. The per-turn figures do not count it as
    the client's overhead nor as the server's time.
    """
    name = "faults.delay"
    for argument, value in (("first_event", first_event), ("between_events", between_events)):
        if not _seconds(value, MAX_DELAY_S):
            raise FaultError(f"{name}: {argument}={value!r} must be seconds, 0 to {MAX_DELAY_S:g}")
    return Fault(
        "delay",
        first_event_s=float(first_event),
        between_events_s=float(between_events),
        **_selection(name, turn, connection, transport, times),
    )


def malformed(
    after_events: int = 0,
    *,
    turn: int | None = None,
    connection: int | None = None,
    transport: Transport | None = None,
    times: int | None = 1,
) -> Fault:
    """After ``after_events`` events, a frame (WebSocket) or SSE data line (HTTP) that is not JSON.

    The turn then ends: over HTTP the body ends, over WebSocket the connection closes
    with 1011 (the client could not parse what it was sent, so it cannot go on).
    """
    name = "faults.malformed"
    return Fault(
        "malformed",
        after_events=_count(name, "after_events", after_events),
        **_selection(name, turn, connection, transport, times),
    )


# -- validation ------------------------------------------------------------------


def _selection(
    name: str, turn: object, connection: object, transport: object, times: object
) -> dict[str, Any]:
    if turn is not None and (isinstance(turn, bool) or not isinstance(turn, int) or turn < 1):
        raise FaultError(f"{name}: turn={turn!r} must be a turn number from 1 (or None: the next turn)")
    if connection is not None and (
        isinstance(connection, bool) or not isinstance(connection, int) or connection < 0
    ):
        raise FaultError(f"{name}: connection={connection!r} must be a connection id from 0, as in rws.turns")
    if transport not in (None, "http", "ws"):
        raise FaultError(f"{name}: transport={transport!r} must be 'http', 'ws' or None")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise FaultError(f"{name}: times={times!r} must be at least 1 (or None: every matching turn)")
    return {"turn": turn, "connection": connection, "transport": transport, "times": times}


def _count(name: str, argument: str, value: object, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return _raise(f"{name}: {argument}={value!r} must be a number of events, 0 or more")
    return value


def _text(name: str, argument: str, value: object, *, required: bool = False) -> Any:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        return _raise(f"{name}: {argument}={value!r} must be a non-empty string")
    return value


def _seconds(value: object, limit: float) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and 0 <= value <= limit
    )


def _raise(message: str) -> Any:
    raise FaultError(message)


def validate_faults(values: tuple[object, ...], where: str) -> tuple[Fault, ...]:
    """``values`` as faults, or a one-line :class:`FaultError` naming ``where`` and the bad one."""
    for position, value in enumerate(values):
        if not isinstance(value, Fault):
            raise FaultError(
                f"{where}: argument {position + 1} is {value!r}, not a fault; "
                "make faults with pytest_responses_ws.faults (close, cut, http_status, ...)"
            )
    return tuple(v for v in values if isinstance(v, Fault))


# -- what an adapter does --------------------------------------------------------


@dataclass(frozen=True)
class Injection:
    """What the server does to one turn for the faults that fired on it.

    ``before_stream``: the turn gets no stream (nothing is played or forwarded); the
    client gets ``event`` (WebSocket) or ``status``/``body``/``headers`` (HTTP), or the
    connection is closed or dropped. Otherwise the turn's events flow (delayed by
    ``first_event_s`` and ``between_events_s``) and, when ``after_events`` is set, the
    ``ending`` strikes once that many have gone.
    """

    faults: tuple[Fault, ...]
    before_stream: bool = False
    first_event_s: float = 0.0
    between_events_s: float = 0.0
    after_events: int | None = None
    #: How the turn ends: ``close`` (WebSocket close frame; HTTP connection dropped),
    #: ``cut`` (no close frame, body cut), ``event`` (send ``event`` / ``sse``, then end the
    #: turn), ``answer`` (an HTTP status before the stream), or None (delays only).
    ending: Literal["close", "cut", "event", "answer"] | None = None
    #: WebSocket: the event to send (an ``error`` event, or a malformed frame's text).
    event: dict[str, Any] | None = None
    frame_text: str | None = None
    close_code: int | None = None
    close_reason: str = ""
    #: HTTP: the status and JSON body before the stream, its extra headers; or the SSE
    #: block that ends a stream.
    status: int | None = None
    body: dict[str, Any] | None = None
    headers: HeaderPairs = ()
    sse: str | None = None
    #: The turn failed for the client (an error event): the service evicts its parent.
    failed: bool = False

    @property
    def interrupts(self) -> bool:
        """Whether the turn does not end as recorded."""
        return self.ending is not None

    def describe(self) -> str:
        """The labels of the faults that fired, for the trace and the reports."""
        return "; ".join(f.describe() for f in self.faults)

    def delay_ns(self, events: int) -> int:
        """The injected wait over a turn that sent ``events`` events."""
        if events <= 0:
            return round(self.first_event_s * 1e9) if self.ending is None else 0
        return round((self.first_event_s + self.between_events_s * (events - 1)) * 1e9)

    def events_sent(self, total: int) -> int:
        """How many of a turn's ``total`` events reach the client."""
        if self.before_stream:
            return 0
        return total if self.after_events is None else min(total, self.after_events)


@dataclass(frozen=True)
class InjectFault:
    """The turn's action when an injected fault strikes before its stream (see :class:`Injection`).

    Nothing is played or forwarded; ``failures`` (from the decision the fault replaced)
    are still reported.
    """

    injection: Injection
    trace: TurnTrace
    failures: tuple[RwsError, ...] = ()


@dataclass(frozen=True)
class FiredFault:
    """A fault that fired: on which turn (1-based), transport and connection."""

    fault: Fault
    turn: int
    transport: Transport
    connection: int


@dataclass
class _Armed:
    fault: Fault
    left: int | None


@dataclass
class FaultPlan:
    """A test's faults, and the decision which of them fire on each turn."""

    #: Faults still to fire, in the order they were added.
    pending: list[_Armed] = field(default_factory=list)
    fired: list[FiredFault] = field(default_factory=list)

    def add(self, *faults: Fault) -> None:
        """Arm more faults (at any time in the test)."""
        for fault in validate_faults(faults, "rws.faults.add"):
            self.pending.append(_Armed(fault, fault.times))

    def on_turn(
        self,
        number: int,
        transport: Transport,
        connection: int,
        request: Mapping[str, Any],
        lane: str | None = None,
        *,
        before_stream_only: bool = False,
    ) -> Injection | None:
        """The faults firing on turn ``number`` (1-based), as one injection; None if none.

        At most one fault that ends the turn fires (the first armed that matches; the
        others wait for a later turn), plus at most one delay. ``before_stream_only``: a
        turn with no answer to stream (a replay miss) can only be refused.
        """
        ending: Fault | None = None
        delayed: Fault | None = None
        for armed in self.pending:
            fault = armed.fault
            if before_stream_only and not fault.before_stream:
                continue
            if not self._matches(fault, number, transport, connection, request):
                continue
            if fault.kind == "delay":
                if delayed is None:
                    delayed = fault
            elif ending is None:
                ending = fault
        chosen = tuple(f for f in (delayed, ending) if f is not None)
        if not chosen:
            return None
        for fault in chosen:
            self._spend(fault)
            self.fired.append(FiredFault(fault, number, transport, connection))
        return _injection(delayed, ending, transport, request, lane)

    @staticmethod
    def _matches(
        fault: Fault, number: int, transport: Transport, connection: int, request: Mapping[str, Any]
    ) -> bool:
        if fault.turn is not None and number < fault.turn:
            return False
        if fault.connection is not None and connection != fault.connection:
            return False
        if transport not in fault.transports:
            return False
        return fault.kind != "not_found" or isinstance(request.get("previous_response_id"), str)

    def _spend(self, fault: Fault) -> None:
        for position, armed in enumerate(self.pending):
            if armed.fault is fault:
                if armed.left is not None:
                    armed.left -= 1
                    if armed.left <= 0:
                        del self.pending[position]
                return


def _injection(
    delayed: Fault | None,
    ending: Fault | None,
    transport: Transport,
    request: Mapping[str, Any],
    lane: str | None,
) -> Injection:
    faults = tuple(f for f in (delayed, ending) if f is not None)
    first = delayed.first_event_s if delayed is not None else 0.0
    between = delayed.between_events_s if delayed is not None else 0.0
    if ending is None:
        return Injection(faults, first_event_s=first, between_events_s=between)
    common: dict[str, Any] = {"faults": faults, "first_event_s": first, "between_events_s": between}
    kind = ending.kind
    if kind == "close":
        if ending.after_events is None:
            common["before_stream"] = True
        return Injection(
            **common,
            after_events=ending.after_events,
            ending="close" if transport == "ws" else "cut",
            close_code=ending.close_code,
            close_reason=ending.reason,
        )
    if kind == "cut":
        return Injection(**common, after_events=ending.after_events, ending="cut")
    if kind == "connection_limit":
        return _refusal(common, connection_limit_reached(), lane, close_code=CONNECTION_LIMIT_CLOSE_CODE)
    if kind == "not_found":
        parent = request.get("previous_response_id")
        return _refusal(common, previous_response_not_found(str(parent)), lane, failed=True)
    if kind == "http_status":
        assert ending.status is not None
        error = status_error(ending.status, ending.code, ending.message)
        headers: HeaderPairs = (
            () if ending.retry_after is None else ((b"retry-after", f"{ending.retry_after:g}".encode()),)
        )
        return _refusal(common, error, lane, headers=headers)
    if kind == "error_event":
        code, message = ending.code, ending.message or DEFAULT_ERROR_MESSAGE
        return Injection(
            **common,
            after_events=ending.after_events,
            ending="event",
            event=wrapped_error_event(code, message, status=500, lane=lane, error_type="server_error"),
            sse=sse_block(mid_stream_error(code, message, ending.shape, ending.after_events or 0)),
            failed=True,
        )
    # malformed
    return Injection(
        **common,
        after_events=ending.after_events,
        ending="event",
        frame_text=MALFORMED_PAYLOAD,
        close_code=1011,
        close_reason="",
        sse=f"event: response.output_text.delta\ndata: {MALFORMED_PAYLOAD}\n\n",
        failed=True,
    )


def _refusal(
    common: dict[str, Any],
    error: ServiceError,
    lane: str | None,
    *,
    close_code: int | None = None,
    headers: HeaderPairs = (),
    failed: bool = False,
) -> Injection:
    return Injection(
        **common,
        before_stream=True,
        ending="answer",
        event=error.event(lane),
        close_code=close_code,
        status=error.status,
        body=error.body(),
        headers=headers,
        failed=failed,
    )


def status_error(status: int, code: str | None = None, message: str | None = None) -> ServiceError:
    """The service's error for an HTTP ``status`` (its usual type, code and message)."""
    error_type, usual_code, usual_message = _STATUS_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}.")
    )
    return ServiceError(code or usual_code, message or usual_message, status=status, error_type=error_type)


def mid_stream_error(
    code: str | None, message: str, shape: ErrorShape, sequence_number: int
) -> dict[str, Any]:
    """An HTTP mid-stream ``error`` event in the service's nested or flat (documented) shape."""
    if shape == "flat":
        return {
            "type": "error",
            "code": code,
            "message": message,
            "param": None,
            "sequence_number": sequence_number,
        }
    detail = error_body(code, message, error_type="server_error")["error"]
    return {"type": "error", "sequence_number": sequence_number, "error": detail}


__all__ = [
    "MAX_DELAY_S",
    "Fault",
    "FaultError",
    "FaultPlan",
    "FiredFault",
    "InjectFault",
    "Injection",
    "close",
    "connection_limit",
    "cut",
    "delay",
    "error_event",
    "http_status",
    "malformed",
    "not_found",
]
