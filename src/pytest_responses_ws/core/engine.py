"""The per-turn decision of the loopback server, for both transports (sans I/O).

A :class:`TurnEngine` takes one parsed ``response.create`` (a WebSocket frame or an
HTTP request body) together with its connection, lane, transport and arrival time,
and returns what the server must do with it, as one of a few typed actions:

* :class:`PlayFrames` -- send these pre-encoded WebSocket frames (at once or paced);
* :class:`PlayHttp` -- answer the HTTP request with this JSON body or SSE stream;
* :class:`FailTurn` -- the test has failed: report ``failures``, give the client this
  error (a WebSocket ``error`` event and close code, or an HTTP status and body);
* :class:`RejectTurn` -- the service itself would refuse this request (a chain from a
  ``store: false`` response the connection does not hold): the client gets the service's
  error and the test goes on;
* :class:`Forward` -- send this body to the upstream and record what comes back;
* :class:`~.faults.InjectFault` -- a fault the test injected refuses or drops the turn
  before its stream (faults that strike mid-stream ride on the three actions above as
  their ``fault``; see :mod:`.faults`).

A ``response.steer`` goes to :meth:`TurnEngine.on_steer`, which answers
:class:`ResumeSteer` (a replayed turn held for this steer may go on), :class:`ForwardSteer`
(recording) or :class:`FailTurn` (no recorded steer matches).

The engine keeps the state a decision needs: the replay index, the frames encoded
once per turn, what each connection created or was played (the service's
connection-local cache, see :class:`ConnectionState`), and the trace of every turn for
the per-turn metrics. It owns no socket and reads no clock (times are passed in), so the
adapters in ``server/`` only move bytes and act on the actions, and the decision is
written once for both transports. It is not thread-safe: the mount holds a lock
around it.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..cassette.model import RecordedSteer, Transport, Turn
from ..cassette.redact import Redactor
from ..errors import CassetteFormatError, CassetteMissError, CassetteNotFoundError, RwsError
from .explain import explain_miss
from .faults import FaultPlan, InjectFault, Injection
from .latency import ContextTokens, LatencyModel, RecordedTokens, schedule, turn_tokens
from .match import MatchResult, turn_response
from .metrics import TurnTrace, finish_recorded
from .prepared import RULE_ERROR_CODES as RULE_ERROR_CODES  # re-exported: first defined here
from .prepared import PreparedTurns
from .replay import MISS_ERROR_CODE, HttpAnswer, Playback, PlaybackCache, error_body, error_event
from .service_errors import NOT_FOUND_CODE as NOT_FOUND_CODE  # re-exported: first shipped here
from .service_errors import (
    SERVICE_CONNECTION_MAX_AGE_S,
    SERVICE_MAX_LANES,
    connection_limit_reached,
    invalid_stream_id,
    previous_response_not_found,
    stream_limit_reached,
)
from .synthesize import warm_up_response

#: Close code after a failure of the test (a miss, a malformed frame, ...): 1008, policy
#: violation. The openai SDK reconnects only after 1001, 1005, 1006, 1011-1013 and 1015.
TEST_FAILED_CLOSE_CODE = 1008
#: HTTP status of a miss: 400, not 5xx, since SDK retries would only delay the failure.
MISS_HTTP_STATUS = 400
#: Turn outcomes of a request the service did not complete (see :class:`~..cassette.model.Turn`).
FAILED_OUTCOMES = frozenset({"failed", "error", "http_error"})
#: Close code after the service's connection age limit: a normal close, which the openai
#: SDK does not reconnect on (the client must open a new connection, as with the service).
CONNECTION_LIMIT_CLOSE_CODE = 1000
#: A lane name the service accepts (compiled once: checked for each new lane only).
LANE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")


@dataclass(frozen=True)
class TurnRequest:
    """One ``response.create`` as an adapter received it."""

    transport: Transport
    connection: int
    #: The parsed request (a WebSocket frame's object, or an HTTP body).
    request: dict[str, Any]
    #: The request as the client sent it: forwarded upstream unless it must be rewritten.
    raw: bytes
    arrived_ns: int
    #: Where the request came from, for messages ("request 3 on WebSocket connection 1").
    where: str
    lane: str | None = None
    #: HTTP only: whether the client asked for an SSE stream.
    wants_stream: bool = False
    #: Whether this is the first request on its connection (None: the engine's count says).
    new_connection: bool | None = None
    connection_opened_ns: int | None = None
    handshake_ns: int | None = None
    #: The request's headers and URL query: a miss report hides the secrets they carry.
    headers: Mapping[str, str] = field(default_factory=dict)
    query: str = ""


@dataclass(frozen=True)
class FailTurn:
    """The test has failed on this turn: report ``failures``, then answer with the error.

    Over WebSocket the client gets ``event`` and the connection closes with ``close_code``
    (``reason`` says why); over HTTP it gets ``status`` with ``body``.
    """

    failures: tuple[RwsError, ...]
    event: dict[str, Any]
    close_code: int
    reason: str
    status: int
    body: dict[str, Any]
    trace: TurnTrace | None = None


@dataclass(frozen=True)
class PlayFrames:
    """Replay over WebSocket: send ``frames`` (all at once when ``schedule`` is None).

    ``then`` is the failure to end the turn with once the frames are sent (a recorded
    turn without a terminal event would leave the client waiting). ``failures`` are to
    be reported before anything is sent.
    """

    frames: tuple[str, ...]
    schedule: list[float] | None
    lane: str | None
    trace: TurnTrace
    failures: tuple[RwsError, ...] = ()
    then: FailTurn | None = None
    #: Points where the recording's client steered the turn: playback waits there.
    holds: tuple[Hold, ...] = ()
    #: An injected fault to act on while playing (delays, an ending after N frames).
    fault: Injection | None = None
    #: The recorded turn played (its index position).
    position: int = -1


@dataclass(frozen=True)
class Hold:
    """Replay a steered turn: send nothing from frame ``index`` on until the client's steer.

    The adapter waits for the :class:`ResumeSteer` carrying ``token``, at most
    ``timeout_s`` (the idle bound), then ends the turn with ``missed``. ``at_s`` is when
    the recording's client steered, on the turn's (paced) schedule: frames after the hold
    are sent as long after the steer as they were recorded.
    """

    index: int
    token: int
    at_s: float
    timeout_s: float
    missed: FailTurn


@dataclass(frozen=True)
class SteerRequest:
    """One ``response.steer`` as the WebSocket adapter received it."""

    connection: int
    request: dict[str, Any]
    raw: bytes
    where: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: str = ""


@dataclass(frozen=True)
class ResumeSteer:
    """The steer matches a recorded one: the playback held at ``token`` goes on."""

    token: int
    failures: tuple[RwsError, ...] = ()


@dataclass(frozen=True)
class ForwardSteer:
    """Record: send the steer upstream as the client sent it."""

    body: bytes
    failures: tuple[RwsError, ...] = ()


@dataclass(frozen=True)
class PlayHttp:
    """Replay over HTTP: ``answer`` says JSON or stream; a stream sends ``playback``'s frames."""

    answer: HttpAnswer
    playback: Playback
    schedule: list[float] | None
    trace: TurnTrace
    failures: tuple[RwsError, ...] = ()
    #: An injected fault to act on while answering (delays, an ending after N events).
    fault: Injection | None = None
    position: int = -1


@dataclass(frozen=True)
class Forward:
    """Record: send ``body`` upstream (the request, rewritten if it chains from a replayed turn)."""

    body: bytes
    trace: TurnTrace
    failures: tuple[RwsError, ...] = ()
    #: An injected fault to act on while relaying the upstream's answer (it is recorded whole).
    fault: Injection | None = None


@dataclass(frozen=True)
class RejectTurn:
    """The service's own error for this request; not a failure of the test.

    The client must cope with it as it would with the service: over WebSocket it gets
    ``event`` and the connection stays open (the service keeps it open after an error
    event); over HTTP it gets ``status`` with ``body``.
    """

    event: dict[str, Any]
    status: int
    body: dict[str, Any]
    trace: TurnTrace
    failures: tuple[RwsError, ...] = ()
    #: WebSocket: close the connection with this code after the event (None: it stays open).
    close_code: int | None = None
    close_reason: str = ""


Action = PlayFrames | PlayHttp | FailTurn | RejectTurn | Forward | InjectFault
SteerAction = ResumeSteer | ForwardSteer | FailTurn


@dataclass
class ConnectionState:
    """What the engine knows of one client connection."""

    #: ``response.create`` turns seen on it.
    turns: int = 0
    #: Responses the upstream created on it while recording (its socket resolves these).
    created: set[str] = field(default_factory=set)
    #: Responses created on it, live or replayed, and not evicted by a failed continuation:
    #: the service's connection-local cache, the only place a ``store: false`` response
    #: can be chained from.
    cached: set[str] = field(default_factory=set)
    #: Named lanes (``stream_id``) used on it: the service allows 32.
    lanes: set[str] = field(default_factory=set)
    #: Replayed turns waiting for a steer, by the response id the recorded steer names.
    held: dict[str, deque[_HeldSteer]] = field(default_factory=dict)


@dataclass(frozen=True)
class _HeldSteer:
    """A recorded steer a replayed turn waits for."""

    token: int
    position: int
    #: The recorded steer's ``previous_response_id`` and ``input``, as canonical JSON.
    key: str
    request: dict[str, Any]


@dataclass(frozen=True)
class EngineSettings:
    """The settings a decision depends on (plain values: the engine imports no plugin settings)."""

    cassette: Path
    record_command: str
    replays: bool
    records: bool
    #: Replay only and no cassette to replay from: every request is the same failure.
    missing_cassette: bool = False
    ignore_fields: Sequence[str] = ()
    #: Volatile rules (see :mod:`.volatile`): parts of requests that do not decide a match.
    volatile: Sequence[str] = ()
    allow_playback_repeats: bool = False
    filter_headers: Sequence[str] = ()
    #: ``--rws-timing`` factor (None: instant).
    timing_factor: float | None = None
    #: ``--rws-timing=model``: replayed turns are sent as this model of the service times them.
    latency: LatencyModel | None = None
    first_event_timeout_s: float = 60.0
    idle_timeout_s: float = 60.0
    #: Refuse chains the service would refuse (``store: false`` responses not on the connection).
    strict: bool = True
    #: The service's age limit of a WebSocket connection, in seconds (scaled down in tests).
    connection_max_age_s: float = SERVICE_CONNECTION_MAX_AGE_S


class TurnEngine:
    """Decides what the server does with each ``response.create`` of one test."""

    def __init__(
        self,
        settings: EngineSettings,
        replay_turns: Sequence[Turn] | PreparedTurns = (),
    ) -> None:
        """``replay_turns``: the cassette's turns, or (shared with the other tests replaying the
        cassette) those turns prepared: the index is then copied, not built, and frames encoded once."""
        self.settings = settings
        if not settings.replays:
            replay_turns = ()
        prepared = replay_turns if isinstance(replay_turns, PreparedTurns) else PreparedTurns(replay_turns)
        self.index = prepared.index(
            settings.ignore_fields, settings.allow_playback_repeats, settings.volatile
        )
        #: Frames of the cassette's turns (shared), and of turns recorded during this test (own).
        self._recorded_playbacks = prepared.playbacks
        self._recorded_count = len(prepared.turns)
        self._added_playbacks = PlaybackCache(self.index.turns)
        #: What the server saw of each turn, for the per-turn metrics.
        self.traces: list[TurnTrace] = []
        #: Responses the upstream created during this test, on any connection.
        self.upstream_ids: set[str] = set()
        self._connections: dict[int, ConnectionState] = {}
        #: Traces of WebSocket turns sent upstream and not yet ended, per connection and lane (FIFO).
        self._forwarded: dict[tuple[int, str | None], deque[TurnTrace]] = {}
        #: Responses created by a ``store: false`` request: the service keeps them only in
        #: the connection-local cache of the WebSocket connection that created them.
        self.unstored_ids: set[str] = set(prepared.unstored_ids)
        self._max_age_ns = int(settings.connection_max_age_s * 1e9)
        self._hold_tokens = 0
        #: Warm-ups answered without a recorded turn, and the ``created_at`` they carry.
        self._warm_ups = 0
        self._created_at: int | None = None
        for position in prepared.refused_by_rule:
            # Replay gives these refusals itself, by the rules; as answers from the
            # cassette they would be sent to the next request with the same content.
            self.index.mark_played(position)
        #: The faults the test injects (none unless it asks: then one attribute check a turn).
        self.faults = FaultPlan()
        #: ``--rws-timing=model``: token counts per recorded turn, and the conversations' sizes.
        self._tokens: dict[int, RecordedTokens] = {}
        self._contexts = ContextTokens()

    # -- the decision -----------------------------------------------------------

    def on_create(self, turn: TurnRequest) -> Action:
        """What to do with one ``response.create``; its trace is kept for the metrics."""
        try:
            action = self._decide(turn)
        except CassetteFormatError as exc:
            # A recorded event is decoded when its turn is first played: one that cannot be
            # used fails the test naming it, as it would have at load.
            return self._corrupt(turn, exc)
        if self.faults.pending:
            if isinstance(action, (PlayFrames, PlayHttp, Forward)):
                return self._inject(turn, action)
            if isinstance(action, FailTurn) and action.trace is not None:
                return self._refuse_miss(turn, action, action.trace)
        return action

    def _decide(self, turn: TurnRequest) -> Action:
        state = self.connection(turn.connection)
        new_connection = state.turns == 0 if turn.new_connection is None else turn.new_connection
        trace = TurnTrace(
            transport=turn.transport,
            connection=turn.connection,
            lane=turn.lane,
            arrived_ns=turn.arrived_ns,
            request=turn.request,
            request_bytes=len(turn.raw),
            new_connection=new_connection,
            connection_opened_ns=turn.connection_opened_ns,
            handshake_ns=turn.handshake_ns if new_connection else None,
        )
        state.turns += 1
        self.traces.append(trace)
        if turn.transport == "ws" and (refused := self._service_rules(turn, state, trace)) is not None:
            return refused
        if self.settings.replays:
            if (
                self.settings.strict
                and (rejected := self._unresolvable_parent(turn, state, trace)) is not None
            ):
                return rejected
            result = self.index.lookup(turn.request)
            if result.turn is not None:
                return self._play(turn, state, trace, result.turn)
            if not self.settings.records:
                if turn.request.get("generate") is False:
                    return self._play(turn, state, trace, self._synthesize_warm_up(turn))
                trace.outcome = "miss"
                return self._miss(turn, result, trace)
        # Over WebSocket only the connection's own upstream socket resolves the ids it created.
        connection = turn.connection if turn.transport == "ws" else None
        if connection is not None:
            trace.held = _chains_from(turn.request, state.created)
            # Its answer is told apart by connection and lane only (HTTP keeps its trace at hand).
            self._forwarded.setdefault((connection, turn.lane), deque()).append(trace)
        return Forward(self.upstream_body(turn.request, turn.raw, connection), trace)

    def _play(self, turn: TurnRequest, state: ConnectionState, trace: TurnTrace, position: int) -> Action:
        """Replay the turn at ``position`` of the index in answer to ``turn``."""
        recorded = trace.recorded = self.index.turns[position]
        trace.output = self.turn_output(position)
        trace.response_id = recorded.response_id
        # Held before this turn joins the cache (a failed continuation evicts its parent).
        trace.held = turn.transport == "ws" and _chains_from(turn.request, state.cached)
        self._cache(state, turn.request, recorded)
        if turn.transport == "ws":
            played = self._play_frames(position, turn.lane, trace)
            if recorded.steers:
                return self._hold_for_steers(position, state, played, turn.where)
            return played
        return self._play_http(position, turn.wants_stream, trace)

    def _synthesize_warm_up(self, turn: TurnRequest) -> int:
        """A ``generate: false`` warm-up the cassette has no turn for, answered as the service would.

        The service answers a warm-up with a response without output, whose id later requests
        chain from. Clients send one first on every WebSocket connection (the Codex CLI does),
        also where the recording was made over HTTP, which has none. The synthesized turn joins
        the index (played, and never shown as a recorded turn): its context after it is its
        input, so a request chaining from its id matches the recorded turn that continued the
        recorded warm-up, or the recorded turn that sent the same conversation unchained.
        """
        self._warm_ups += 1
        response_id = f"resp_rws_warmup_{self._warm_ups:08d}"
        body = warm_up_response(turn.request, response_id, self._warm_up_created_at())
        synthesized = Turn(
            request=turn.request,
            events=(),
            transport=turn.transport,
            connection=turn.connection,
            lane=turn.lane,
            body=body,
        )
        position = self.index.add(synthesized)
        self.index.mark_played(position)
        self.index.synthesized.add(position)
        self._learn_store(synthesized)
        return position

    def _warm_up_created_at(self) -> int:
        """``created_at`` of a synthesized warm-up: the latest recorded one (the engine reads no clock)."""
        if self._created_at is None:
            stamps = [
                response.get("created_at")
                for turn in self.index.turns
                if (response := turn_response(turn)) is not None
            ]
            self._created_at = max((int(t) for t in stamps if isinstance(t, (int, float))), default=0)
        return self._created_at

    def on_recorded(self, turn: Turn, at_ns: int, trace: TurnTrace | None = None) -> None:
        """A recorded turn ended, its terminal event leaving at ``at_ns``: its trace is complete,
        and later requests may chain from it (new_episodes).

        ``trace`` is the forwarded turn's (HTTP); by default, the oldest waiting on the turn's
        WebSocket connection and lane.
        """
        if trace is None:
            waiting = self._forwarded.get((turn.connection, turn.lane))
            trace = waiting.popleft() if waiting else None
        if trace is not None:
            finish_recorded(trace, turn, at_ns)
            if trace.injection is not None:
                self._faulted_recording(trace, trace.injection, len(turn.events))
        response_id = turn.response_id
        self._learn_store(turn)
        if response_id is not None:
            self.upstream_ids.add(response_id)
            if turn.transport == "ws":
                self.connection(turn.connection).created.add(response_id)
        if turn.transport == "ws":
            self._cache(self.connection(turn.connection), turn.request, turn)
        if self.settings.replays:
            # It was answered live, so it counts as played in this test.
            self.index.mark_played(self.index.add(turn))

    @staticmethod
    def _faulted_recording(trace: TurnTrace, injection: Injection, events: int) -> None:
        """A turn recorded whole while a fault met the client: its figures are the client's view."""
        trace.injected_delay_ns = injection.delay_ns(injection.events_sent(events))
        if injection.interrupts:
            trace.outcome = "fault"

    def forward_ended(self, trace: TurnTrace, at_ns: int, outcome: str | None = "error") -> None:
        """A forwarded HTTP turn ended without a recorded turn (``outcome`` None: kept as it is)."""
        trace.terminal_ns = at_ns
        if outcome is not None:
            trace.outcome = outcome

    def lane_failed(self, connection: int, lane: str | None, at_ns: int) -> None:
        """The oldest turn forwarded on a WebSocket lane will get no answer: it ended in an error."""
        waiting = self._forwarded.get((connection, lane))
        if waiting:
            self.forward_ended(waiting.popleft(), at_ns)

    def connection_failed(self, connection: int, at_ns: int) -> None:
        """No turn forwarded on a WebSocket connection will get an answer: each ended in an error."""
        for (owner, _lane), waiting in self._forwarded.items():
            if owner == connection:
                while waiting:
                    self.forward_ended(waiting.popleft(), at_ns)

    def upstream_body(self, request: Mapping[str, Any], raw: bytes, connection: int | None = None) -> bytes:
        """The body to send upstream: as sent, unless it chains from a replayed response.

        The upstream never saw a response that came from the cassette, so such a request
        goes up with the whole conversation in ``input`` instead of ``previous_response_id``.
        Over WebSocket (``connection`` given) only ids created on that connection's
        upstream socket resolve there (``store: false``).
        """
        parent = request.get("previous_response_id")
        known = self.upstream_ids if connection is None else self.connection(connection).created
        if not isinstance(parent, str) or parent in known or not self.index.knows_response(parent):
            return raw
        items = self.index.raw_effective_input(request)
        if items is None:
            return raw
        rewritten = {k: v for k, v in request.items() if k != "previous_response_id"}
        rewritten["input"] = items
        return json.dumps(rewritten).encode("utf-8")

    def connection(self, connection: int) -> ConnectionState:
        """The state of a connection (created on first use)."""
        state = self._connections.get(connection)
        if state is None:
            state = self._connections[connection] = ConnectionState()
        return state

    # -- the service's connection rules (WebSocket) ---------------------------------

    def _service_rules(
        self, turn: TurnRequest, state: ConnectionState, trace: TurnTrace
    ) -> RejectTurn | None:
        """The service's own refusal of a ``response.create`` on this connection, if any.

        The age limit holds in both modes (while recording it stands in front of the
        upstream, so a short limit behaves the same); the lane rules only in replay, since
        an upstream enforces its own.
        """
        opened = turn.connection_opened_ns
        if opened is not None and turn.arrived_ns - opened > self._max_age_ns:
            trace.outcome = "error"
            error = connection_limit_reached(self.settings.connection_max_age_s)
            return RejectTurn(
                error.event(turn.lane),
                error.status,
                error.body(),
                trace,
                close_code=CONNECTION_LIMIT_CLOSE_CODE,
                close_reason="connection limit reached",
            )
        if self.settings.records:
            return None
        lane = turn.request.get("stream_id")
        if lane is None or (isinstance(lane, str) and lane in state.lanes):
            return None  # the default lane, or one already admitted: a set lookup per turn
        if not isinstance(lane, str) or LANE_NAME.fullmatch(lane) is None:
            error = invalid_stream_id(lane)
            trace.outcome = "error"
            # Never echoed: it is not a lane name.
            return RejectTurn(error.event(None), error.status, error.body(), trace)
        if len(state.lanes) >= SERVICE_MAX_LANES:
            error = stream_limit_reached()
            trace.outcome = "error"
            return RejectTurn(error.event(lane), error.status, error.body(), trace)
        state.lanes.add(lane)
        return None

    # -- steers (WebSocket) ---------------------------------------------------------

    def _hold_for_steers(
        self, position: int, state: ConnectionState, played: PlayFrames, where: str
    ) -> PlayFrames:
        """A turn steered in its recording: its playback waits at each recorded steer for the
        client's own, so the steered ending never comes before the steer."""
        recorded = self.index.turns[position]
        factor = self.settings.timing_factor or 0.0
        timeout_s = self.settings.idle_timeout_s
        holds = []
        for steer in recorded.steers:
            self._hold_tokens += 1
            token = self._hold_tokens
            target = str(steer.request.get("previous_response_id"))
            state.held.setdefault(target, deque()).append(
                _HeldSteer(token, position, _steer_key(steer.request), steer.request)
            )
            message = (
                f"recorded turn {position} of {self.settings.cassette.name} ({where}) was steered in the "
                f"recording after event {steer.after_event}, but the client sent no response.steer for "
                f"response {target!r} within {timeout_s:g} s (upstream_idle_timeout); the rest of the "
                "turn was not sent"
            )
            missed = FailTurn(
                (RwsError(f"pytest-responses-ws: {message}"),),
                error_event("rws_steer_missing", f"pytest-responses-ws: {message}", lane=played.lane),
                TEST_FAILED_CLOSE_CODE,
                "the recorded steer never came",
                MISS_HTTP_STATUS,
                error_body("rws_steer_missing", message),
            )
            holds.append(
                Hold(steer.after_event, token, self._steer_at(steer, played, factor), timeout_s, missed)
            )
        # Front to back, whatever order a hand-edited cassette lists them in.
        return replace(played, holds=tuple(sorted(holds, key=lambda hold: hold.index)))

    def _steer_at(self, steer: RecordedSteer, played: PlayFrames, factor: float) -> float:
        """When the recording's client steered, on the turn's schedule: under the latency model,
        when the event it steered after was sent."""
        if self.settings.latency is not None and played.schedule:
            return played.schedule[max(0, min(steer.after_event, len(played.schedule)) - 1)]
        return steer.offset_ms / 1000 * factor

    def on_steer(self, steer: SteerRequest) -> SteerAction:
        """What to do with one ``response.steer``.

        In replay it must match a steer recorded in a turn playing on the same connection
        (same ``previous_response_id`` and input): that turn's held playback goes on.
        While recording it goes upstream. Anything else fails the test with a miss report.
        """
        state = self.connection(steer.connection)
        target = steer.request.get("previous_response_id")
        waiting = state.held.get(target) if isinstance(target, str) else None
        if waiting:
            head = waiting[0]
            if head.key == _steer_key(steer.request):
                waiting.popleft()
                return ResumeSteer(head.token)
        if self.settings.records and (not self.settings.replays or target in state.created):
            return ForwardSteer(steer.raw)
        return self._steer_miss(steer, waiting[0] if waiting else None)

    def _steer_miss(self, steer: SteerRequest, expected: _HeldSteer | None) -> FailTurn:
        redactor = Redactor(self.settings.filter_headers)
        redactor.learn(steer.headers)
        redactor.learn_query(steer.query)
        target = steer.request.get("previous_response_id")
        if expected is None:
            why = (
                f"no turn replaying on this connection was steered from response {target!r} in the "
                "recording (or its recorded steers were all used)"
            )
            detail = ""
        else:
            why = f"recorded turn {expected.position} was steered with different input"
            detail = (
                f"\n  recorded input: {redactor.scrub_text(_canonical(expected.request.get('input')))}"
                f"\n  sent input:     {redactor.scrub_text(_canonical(steer.request.get('input')))}"
            )
        report = (
            f"pytest-responses-ws: response.steer ({steer.where}) matched no recorded steer: {why}\n"
            f"  cassette: {self.settings.cassette}{detail}\n"
            f"  {self._record_hint()}"
        )
        message = f"pytest-responses-ws: response.steer ({steer.where}) matched no recorded steer; see the test report"
        return FailTurn(
            (CassetteMissError(report),),
            error_event(MISS_ERROR_CODE, message),
            TEST_FAILED_CLOSE_CODE,
            "cassette miss, see the test report",
            MISS_HTTP_STATUS,
            error_body(MISS_ERROR_CODE, message),
        )

    # -- injected faults ----------------------------------------------------------

    def _inject(self, turn: TurnRequest, action: PlayFrames | PlayHttp | Forward) -> Action:
        """Ask the fault plan about this turn; the action the turn's faults make of ``action``.

        A turn a fault refuses or interrupts was not delivered: a replayed turn stays
        unplayed (the client's retry gets it) and its response joins no connection's
        cache; a refused turn is not forwarded upstream. A fault is no failure of the test.
        """
        trace = action.trace
        injection = self.faults.on_turn(
            len(self.traces), turn.transport, turn.connection, turn.request, turn.lane
        )
        if injection is None:
            return action
        trace.fault = injection.describe()
        state = self.connection(turn.connection)
        if isinstance(action, Forward):
            if not injection.before_stream:
                trace.injection = injection  # the recorded turn completes the figures
                if injection.interrupts:
                    trace.outcome = "fault"  # what the client gets, known before the upstream answers
                return replace(action, fault=injection)
            waiting = self._forwarded.get((turn.connection, turn.lane))
            if waiting and waiting[-1] is trace:
                waiting.pop()  # it will not reach the upstream
        else:
            total = len(action.playback.frames) if isinstance(action, PlayHttp) else len(action.frames)
            sent = injection.events_sent(total)
            trace.injected_delay_ns = injection.delay_ns(sent)
            if injection.interrupts:
                self.index.mark_interrupted(action.position)
                if trace.response_id is not None:
                    state.cached.discard(trace.response_id)
        if injection.interrupts:
            trace.outcome = "fault"
            trace.output = []
            trace.response_id = None
            parent = turn.request.get("previous_response_id")
            if injection.failed and isinstance(parent, str):
                state.cached.discard(parent)  # a failed continuation evicts its parent (the service's rule)
        if injection.before_stream:
            return InjectFault(injection, trace, action.failures)
        return replace(action, fault=injection)

    def _refuse_miss(self, turn: TurnRequest, miss: FailTurn, trace: TurnTrace) -> Action:
        """A fault that refuses a turn before its stream wins over a miss: the service would
        have refused the request before answering it, so the cassette needs no answer."""
        injection = self.faults.on_turn(
            len(self.traces),
            turn.transport,
            turn.connection,
            turn.request,
            turn.lane,
            before_stream_only=True,
        )
        if injection is None:
            return miss
        trace.fault = injection.describe()
        trace.outcome = "fault"
        return InjectFault(injection, trace)

    # -- connection-local state -------------------------------------------------

    def _learn_store(self, turn: Turn) -> None:
        response_id = turn.response_id
        if response_id is not None and turn.request.get("store") is False:
            self.unstored_ids.add(response_id)

    @staticmethod
    def _cache(state: ConnectionState, request: Mapping[str, Any], turn: Turn) -> None:
        """A turn ended on a connection: what its cache holds now.

        A completed response joins it; a failed continuation evicts its parent (the
        service drops it too, so a retry of the same chain fails).
        """
        if turn.outcome in FAILED_OUTCOMES:
            parent = request.get("previous_response_id")
            if isinstance(parent, str):
                state.cached.discard(parent)
            return
        if turn.response_id is not None:
            state.cached.add(turn.response_id)

    def _unresolvable_parent(
        self, turn: TurnRequest, state: ConnectionState, trace: TurnTrace
    ) -> RejectTurn | None:
        """The service's ``previous_response_not_found`` when the request chains from a
        ``store: false`` response its connection does not hold (always, over HTTP)."""
        parent = turn.request.get("previous_response_id")
        if not isinstance(parent, str) or parent not in self.unstored_ids:
            return None
        if turn.transport == "ws" and parent in state.cached:
            return None
        trace.outcome = "error"
        error = previous_response_not_found(parent)
        return RejectTurn(error.event(turn.lane), error.status, error.body(), trace)

    # -- replay -------------------------------------------------------------------

    def _play_frames(self, position: int, lane: str | None, trace: TurnTrace) -> PlayFrames:
        playback = self.playback(position, lane)
        failures: list[RwsError] = []
        schedule = self._schedule(position, playback, trace, failures)
        then = None
        if playback.unterminated is not None:
            message = (
                f"pytest-responses-ws: recorded turn {position} of {self.settings.cassette.name} has no "
                "terminal event; see the test report"
            )
            failures.append(self._unterminated(position, playback.unterminated))
            event = error_event(
                "rws_corrupt_cassette", message, status=500, lane=lane, error_type="server_error"
            )
            then = FailTurn(
                (),
                event,
                TEST_FAILED_CLOSE_CODE,
                "recorded turn without a terminal event",
                500,
                error_body("rws_corrupt_cassette", message, error_type="server_error"),
            )
        return PlayFrames(playback.frames, schedule, lane, trace, tuple(failures), then, position=position)

    def _corrupt(self, turn: TurnRequest, problem: CassetteFormatError) -> FailTurn:
        message = f"pytest-responses-ws: {self.settings.cassette.name} is damaged; see the test report"
        trace = self.traces[-1] if self.traces else None
        if trace is not None:
            trace.outcome = "error"
        return FailTurn(
            (problem,),
            error_event(
                "rws_corrupt_cassette", message, status=500, lane=turn.lane, error_type="server_error"
            ),
            TEST_FAILED_CLOSE_CODE,
            "damaged cassette",
            500,
            error_body("rws_corrupt_cassette", message, error_type="server_error"),
            trace,
        )

    def _play_http(self, position: int, wants_stream: bool, trace: TurnTrace) -> PlayHttp:
        playback = self.sse_playback(position)
        failures: list[RwsError] = []
        if playback.unterminated is not None:
            # An HTTP answer ends anyway (its body does), but the cassette is broken: say so.
            failures.append(self._unterminated(position, playback.unterminated))
        schedule = self._schedule(position, playback, trace, failures)
        return PlayHttp(
            self.http_answer(position, wants_stream),
            playback,
            schedule,
            trace,
            tuple(failures),
            position=position,
        )

    def _unterminated(self, position: int, problem: str) -> RwsError:
        return CassetteFormatError(self.settings.cassette, f"/turns/{position}/events", problem)

    def _schedule(
        self, position: int, playback: Playback, trace: TurnTrace, failures: list[RwsError]
    ) -> list[float] | None:
        """When to send each frame of a replayed turn, or None for all at once.

        A recorded wait no recording could have (a hand-edited offset) fails the test
        naming the event, and the turn is sent at once instead of stalling the client.
        """
        settings = self.settings
        if settings.latency is not None:
            return self._modeled_schedule(position, playback, trace, settings.latency, failures)
        factor = settings.timing_factor
        if factor is None:
            return None
        first_s, idle_s = settings.first_event_timeout_s, settings.idle_timeout_s
        stall = playback.stalled_wait(first_s, idle_s)
        if stall is not None:
            index, problem = stall
            failures.append(
                CassetteFormatError(settings.cassette, f"/turns/{position}/events/{index}/offset_ms", problem)
            )
            return None
        if factor > 1 and (stretched := playback.stalled_wait(first_s / factor, idle_s / factor)) is not None:
            # Each recorded wait is within the bounds, but the factor stretches one past them.
            failures.append(
                RwsError(
                    f"--rws-timing={factor:g} would make the client wait longer than any recording waits "
                    f"(upstream_first_event_timeout {first_s:g} s, upstream_idle_timeout {idle_s:g} s) before "
                    f"event {stretched[0]} of turn {position} of {settings.cassette}; the turn was sent at once. "
                    "Use a smaller factor, or --rws-timing=recorded"
                )
            )
            return None
        return playback.schedule(factor)

    def _modeled_schedule(
        self,
        position: int,
        playback: Playback,
        trace: TurnTrace,
        model: LatencyModel,
        failures: list[RwsError],
    ) -> list[float] | None:
        """The send times the latency model gives a replayed turn (``--rws-timing=model``).

        The recorded turn's tokens are counted once; whether the request is held on its
        connection is the connection state's (:attr:`TurnTrace.held`, decided before).
        """
        tokens = self._tokens.get(position)
        if tokens is None:
            tokens = self._tokens[position] = turn_tokens(self.index.turns[position])
        figures = self._contexts.figures(trace.request, tokens, trace.response_id)
        offsets = schedule(
            model, tokens, input_tokens=figures.input_tokens, sent_tokens=figures.sent_tokens, held=trace.held
        )
        if len(offsets) != len(playback.frames):  # a turn whose events cannot be counted as frames
            offsets = (offsets + [offsets[-1] if offsets else 0.0] * len(playback.frames))[
                : len(playback.frames)
            ]
        settings = self.settings
        stall = replace(playback, offsets_s=tuple(offsets)).stalled_wait(
            settings.first_event_timeout_s, settings.idle_timeout_s
        )
        if stall is not None:
            failures.append(
                RwsError(
                    f"--rws-timing=model would make the client wait longer than any recording waits "
                    f"(upstream_first_event_timeout {settings.first_event_timeout_s:g} s, upstream_idle_timeout "
                    f"{settings.idle_timeout_s:g} s) before event {stall[0]} of turn {position} of "
                    f"{settings.cassette}; the turn was sent at once. Lower the latency model's scale "
                    f"({model.describe()})"
                )
            )
            return None
        return offsets

    # -- misses -------------------------------------------------------------------

    def _miss(self, turn: TurnRequest, result: MatchResult, trace: TurnTrace) -> FailTurn:
        settings = self.settings
        if settings.missing_cassette:
            error: RwsError = CassetteNotFoundError(settings.cassette, settings.record_command)
            message = f"no cassette at {settings.cassette}; record it with: {settings.record_command}"
        else:
            redactor = Redactor(settings.filter_headers)
            redactor.learn(turn.headers)
            redactor.learn_query(turn.query)
            report = explain_miss(
                self.index,
                turn.request,
                result,
                where=turn.where,
                cassette=str(settings.cassette),
                record_hint=self._record_hint(),
                redactor=redactor,
            )
            error = CassetteMissError(report)
            message = (
                f"pytest-responses-ws: {turn.where} matched no recorded turn "
                f"({redactor.scrub_text(result.reason)}); see the test report"
            )
        return FailTurn(
            (error,),
            error_event(MISS_ERROR_CODE, message, lane=turn.lane),
            TEST_FAILED_CLOSE_CODE,
            "cassette miss, see the test report",
            MISS_HTTP_STATUS,
            error_body(MISS_ERROR_CODE, message),
            trace,
        )

    def _record_hint(self) -> str:
        command = self.settings.record_command
        return (
            "to record the new turns and keep the others, run:\n"
            f"    {command.replace('--rws-record-mode=once', '--rws-record-mode=new_episodes')}"
        )

    # -- what replay sends, computed once per turn ---------------------------------

    def prepare(self, transport: Transport) -> None:
        """Encode the cassette's first turns' frames now (see :meth:`PlaybackCache.prepare`)."""
        self._recorded_playbacks.prepare(transport)

    def _playbacks_of(self, position: int) -> PlaybackCache:
        return self._recorded_playbacks if position < self._recorded_count else self._added_playbacks

    def playback(self, position: int, lane: str | None) -> Playback:
        """The WebSocket frames of a recorded turn as they appear on ``lane``."""
        return self._playbacks_of(position).websocket(position, lane)

    def sse_playback(self, position: int) -> Playback:
        """The SSE blocks of a recorded turn."""
        return self._playbacks_of(position).sse(position)

    def http_answer(self, position: int, wants_stream: bool) -> HttpAnswer:
        """How a recorded turn answers an HTTP request (a non-streamed body is built once)."""
        return self._playbacks_of(position).http_answer(position, wants_stream)

    def turn_output(self, position: int) -> list[Any]:
        """Output items of a recorded turn's response (for resent-input accounting), computed once."""
        return self._playbacks_of(position).output(position)


def _chains_from(request: Mapping[str, Any], held: set[str]) -> bool:
    """Whether ``request`` continues one of the ``held`` responses (``previous_response_id``)."""
    parent = request.get("previous_response_id")
    return isinstance(parent, str) and parent in held


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _steer_key(request: Mapping[str, Any]) -> str:
    """What a steer is matched on: the response it steers and its input."""
    return _canonical([request.get("previous_response_id"), request.get("input")])
