"""A mount: one test's slice of the loopback server.

Each test gets its own path prefix, so tests never see each other's cassettes. The
mount holds what the server needs while the test runs (the turn engine, which decides
every ``response.create``; the recorder; the failures to report) and writes the
cassette when the test ends. It is touched from the server's event loop and from the
test's thread: the engine, failures and counters are guarded by a lock; the recorder belongs to the server loop, where the
cassette is written too, merged into the file on disk under the cassette's lock across
processes (taken from the test's thread); the end of the test waits (bounded) for
connections to close.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__
from ..cassette.model import Cassette, RecordedWith, Transport, Turn
from ..cassette.redact import Redactor
from ..cassette.store import CassetteLock, load_cassette, write_cassette_atomically
from ..core.drift import DriftReport, compare_turns, drift_message
from ..core.engine import Action, EngineSettings, SteerAction, SteerRequest, TurnEngine, TurnRequest
from ..core.match import MatchResult, TurnIndex
from ..core.merge import merge_recording
from ..core.metrics import ToolSpan, TurnMetrics, TurnTrace, compute_turn_metrics
from ..core.prepared import PreparedTurns
from ..core.record import SessionRecorder
from ..core.replay import HttpAnswer, Playback
from ..core.volatile import compile_volatile
from ..errors import (
    CassetteError,
    CassetteNotFoundError,
    DriftError,
    RecordingError,
    RwsError,
    UnroutedRequestError,
    refusal_message,
)
from ..settings import DEFAULT_LOCK_TIMEOUT_S, RecordMode, Settings

Clock = Callable[[], int]
#: ``recorded_with.upstream_host`` of a cassette recorded from the simulator.
SIMULATOR_HOST = "pytest_responses_ws.sim"
#: Request headers that change from request to request and never carry a credential.
_NOT_SECRET_HEADERS = frozenset(
    {"content-length", "idempotency-key", "x-stainless-retry-count", "x-stainless-read-timeout"}
)


class Mount:
    """Runtime state of one test on the loopback server."""

    def __init__(
        self,
        mount_id: str,
        settings: Settings,
        path: Path,
        existing: Cassette | None,
        *,
        record_command: str,
        transport: Transport | None = None,
        clock: Clock = time.perf_counter_ns,
        cassette_lock: CassetteLock | None = None,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        found: Cassette | None = None,
        prepared: PreparedTurns | None = None,
        simulated: bool = False,
    ) -> None:
        """``prepared``: ``existing``'s turns prepared for replay, shared with the other tests that
        replay the same cassette (see :class:`ReplayCache`); without it the mount prepares its own.

        ``simulated``: the upstream (``settings.upstream``) is the test's simulator on loopback.
        Without a cassette to replay, it then answers the test live and nothing is written.
        """
        self.id = mount_id
        self.settings = settings
        self.path = path
        self.existing = existing
        #: The cassette on disk when the test started (``existing`` unless it is not replayed).
        self.found = existing if found is None else found
        #: The cassette's lock across processes; held already by a test recording in ``once`` mode.
        self.cassette_lock = cassette_lock or CassetteLock(path)
        self.lock_timeout_s = lock_timeout_s
        self.record_command = record_command
        self.clock = clock
        mode = settings.record_mode
        has_cassette = existing is not None
        #: Whether requests are answered from the cassette first.
        self.replays = mode in (RecordMode.NONE, RecordMode.NEW_EPISODES) or (
            mode is RecordMode.ONCE and has_cassette
        )
        #: Whether requests the cassette cannot answer go to the upstream and are recorded.
        self.records = mode in (
            RecordMode.NEW_EPISODES,
            RecordMode.ALL,
            RecordMode.REWRITE,
            RecordMode.VERIFY,
        ) or (mode is RecordMode.ONCE and not has_cassette)
        #: Verify mode: everything goes live as when recording; the answers are compared with
        #: ``found`` and never written.
        self.verifies = mode is RecordMode.VERIFY
        #: Whether the recording is written when the test ends (the ``save`` policy decides,
        #: from the test's outcome, before the mount is removed).
        self.save_recording = True
        #: In verify mode, the drift found when the test ended.
        self.drift: DriftReport | None = None
        #: The upstream is the test's simulator (a script, or ``--rws-upstream=sim``).
        self.simulated = simulated
        #: Whether what is recorded is written to the cassette.
        self.persist = True
        if simulated and not self.records and not has_cassette:
            self._answer_live()
        self.engine = self._engine(_replay_turns(existing, prepared))
        self.recorder = SessionRecorder(clock(), Redactor(settings.filter_headers)) if self.records else None
        self.lock = threading.Lock()
        #: Credentials the test's requests carried (both modes): hidden from every message.
        self._sent_secrets = Redactor(settings.filter_headers)
        self._sent_seen: set[tuple[frozenset[tuple[str, str]], str]] = set()
        self.failures: list[RwsError] = []
        self._open_connections = 0
        self._faulted_in_flight = 0
        self._idle = threading.Condition(self.lock)
        self._closers: list[Callable[[], Any]] = []
        self._http_connections: dict[Any, int] = {}
        self._connection_ids = itertools.count()
        self.connection_count = 0
        self.handshake_count = 0
        self._http_requests = 0
        self._request_ids = 0
        self.finished = False
        self._recording_broken = False
        if transport is not None:
            self.engine.prepare(transport)

    def _engine(self, turns: Sequence[Turn] | PreparedTurns) -> TurnEngine:
        settings = self.settings
        return TurnEngine(
            EngineSettings(
                cassette=self.path,
                record_command=self.record_command,
                replays=self.replays,
                records=self.records,
                missing_cassette=self.existing is None and not self.records,
                ignore_fields=settings.ignore_fields,
                volatile=settings.volatile,
                allow_playback_repeats=settings.allow_playback_repeats,
                filter_headers=settings.filter_headers,
                timing_factor=settings.timing.factor,
                latency=settings.latency_model if settings.timing.model else None,
                first_event_timeout_s=settings.upstream_first_event_timeout,
                idle_timeout_s=settings.upstream_idle_timeout,
                strict=settings.strict,
                connection_max_age_s=settings.connection_max_age,
            ),
            turns,
        )

    def _answer_live(self) -> None:
        # No cassette, and the simulator costs nothing: it answers the test, nothing is written.
        self.replays, self.records, self.persist = False, True, False

    def simulate(self, upstream: str) -> None:
        """From now on the test's simulator at ``upstream`` is its upstream (``rws.script()``).

        A test with no cassette to replay is then answered live; one recording records from it.
        Only before the test's first request: the engine is built anew.
        """
        with self.lock:
            if self.engine.traces:
                raise RwsError(
                    "pytest-responses-ws: rws.script() came after the test's first request; script the "
                    "test before it sends one, or use @pytest.mark.rws_script(...)"
                )
            self.settings = dataclasses.replace(self.settings, upstream=upstream)
            self.simulated = True
            if not self.records:
                self._answer_live()
                self.recorder = SessionRecorder(self.clock(), Redactor(self.settings.filter_headers))
            faults = self.engine.faults
            self.engine = self._engine(())
            self.engine.faults = faults  # armed by the marker, and the handle's view of them

    @property
    def reaches_upstream(self) -> bool:
        """Whether the test's requests may reach a real upstream (recording from one)."""
        return self.records and not self.simulated

    @property
    def missing_cassette(self) -> bool:
        """Replay only, and there is nothing to replay from."""
        return self.existing is None and not self.records

    # -- called from the server loop ------------------------------------------

    def open_connection(
        self, transport: Transport, headers: dict[str, str], at_ns: int, handshake_ns: int | None = None
    ) -> int:
        """A WebSocket connection opened (its handshake is counted); returns its id."""
        with self.lock:
            self._open_connections += 1
            self.connection_count += 1
            self.handshake_count += 1
        return self._connection_id(transport, headers, at_ns, handshake_ns)

    def _connection_id(
        self, transport: Transport, headers: dict[str, str], at_ns: int, handshake_ns: int | None = None
    ) -> int:
        # While recording, every connection goes through the recorder, whose ids go in the cassette.
        if self.recorder is not None:
            return self.recorder.open_connection(transport, headers, at_ns, handshake_ns)
        with self.lock:
            return next(self._connection_ids)

    @property
    def index(self) -> TurnIndex:
        """The replay index (the engine's)."""
        return self.engine.index

    @property
    def traces(self) -> list[TurnTrace]:
        """What the server saw of each turn, for the per-turn metrics (the engine's list)."""
        return self.engine.traces

    def on_create(self, turn: TurnRequest) -> Action:
        """The engine's decision on one ``response.create``; the failures it names are reported."""
        with self.lock:
            action = self.engine.on_create(turn)
        for failure in action.failures:
            self.fail(failure)
        return action

    def on_steer(self, steer: SteerRequest) -> SteerAction:
        """The engine's decision on one ``response.steer``; the failures it names are reported."""
        with self.lock:
            action = self.engine.on_steer(steer)
        for failure in action.failures:
            self.fail(failure)
        return action

    def on_recorded(self, turn: Turn, trace: TurnTrace | None = None) -> None:
        """A recorded turn ended, its terminal event leaving now (see :meth:`TurnEngine.on_recorded`)."""
        at_ns = self.clock()
        with self.lock:
            self.engine.on_recorded(turn, at_ns, trace)

    def forward_ended(self, trace: TurnTrace, outcome: str | None = "error") -> None:
        """A forwarded HTTP turn ended now without a recorded turn."""
        at_ns = self.clock()
        with self.lock:
            self.engine.forward_ended(trace, at_ns, outcome)

    def lane_failed(self, connection: int, lane: str | None) -> None:
        """The oldest turn forwarded on a WebSocket lane ended now in an error."""
        at_ns = self.clock()
        with self.lock:
            self.engine.lane_failed(connection, lane, at_ns)

    def connection_failed(self, connection: int) -> None:
        """Every turn forwarded on a WebSocket connection ended now in an error."""
        at_ns = self.clock()
        with self.lock:
            self.engine.connection_failed(connection, at_ns)

    def playback(self, position: int, lane: str | None) -> Playback:
        """The WebSocket frames of a recorded turn on ``lane``."""
        with self.lock:
            return self.engine.playback(position, lane)

    def sse_playback(self, position: int) -> Playback:
        """The SSE blocks of a recorded turn."""
        with self.lock:
            return self.engine.sse_playback(position)

    def http_answer(self, position: int, wants_stream: bool) -> HttpAnswer:
        """How a recorded turn answers an HTTP request."""
        with self.lock:
            return self.engine.http_answer(position, wants_stream)

    def turn_output(self, position: int) -> list[Any]:
        """Output items of a recorded turn's response."""
        with self.lock:
            return self.engine.turn_output(position)

    def lookup(self, request: dict[str, Any]) -> MatchResult:
        with self.lock:
            return self.engine.index.lookup(request)

    def turn_metrics(self, tools: Sequence[ToolSpan] = (), *, tokens: bool = True) -> list[TurnMetrics]:
        """Metrics of the turns so far (lane names masked: they end up in reports); ``tokens``:
        with the latency model's token figures (see :func:`compute_turn_metrics`)."""
        with self.lock:
            traces = list(self.traces)
        return [
            t if t.lane is None else dataclasses.replace(t, lane=self.mask(t.lane))
            for t in compute_turn_metrics(traces, tools, tokens=tokens)
        ]

    def learn_request_secrets(self, headers: Mapping[str, str], query: str) -> None:
        """A request arrived with these headers and URL query: :meth:`mask` hides their secrets."""
        # A keep-alive connection sends the same headers with every request, but for framing
        # and per-request ids that carry no secret: leave those out, and learn each set once.
        kept = {name: value for name, value in headers.items() if name not in _NOT_SECRET_HEADERS}
        key = (frozenset(kept.items()), query)
        with self.lock:
            if key in self._sent_seen:
                return
            self._sent_seen.add(key)
            self._sent_secrets.learn(kept)
            self._sent_secrets.learn_query(query)

    def mask(self, text: str, headers: Mapping[str, str] | None = None) -> str:
        """``text`` fit for a message or report: without learned secrets or token-looking parts.

        Secrets of every request the test sent are hidden, and those of ``headers`` (the
        request's) when given.
        """
        with self.lock:
            text = self._sent_secrets.scrub_text(text)
        redactor = self.recorder.redactor if self.recorder is not None else Redactor()
        if headers:
            known = redactor.secrets
            redactor = Redactor(self.settings.filter_headers)
            redactor.learn(headers)
            for secret in known:
                redactor.learn_credential(secret)
        return redactor.scrub_loose(text)

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {"connections": self.connection_count, "handshakes": self.handshake_count}

    def close_connection(
        self, connection_id: int, code: int | None, reason: str, by: Any, at_ns: int
    ) -> None:
        if self.recorder is not None:
            self.recorder.close_connection(connection_id, code, reason, by, at_ns)
        with self.lock:
            self._open_connections -= 1
            self._idle.notify_all()

    def faulted_turn_started(self) -> None:
        """A turn went upstream whose answer the client may stop reading before it ends (a fault
        rides on it, or an HTTP body goes on after an ``error`` event): it is recorded whole,
        and the end of the test waits for it."""
        with self.lock:
            self._faulted_in_flight += 1

    def faulted_turn_ended(self, count: int = 1) -> None:
        """``count`` such turns have ended (recorded, or failed upstream)."""
        with self.lock:
            self._faulted_in_flight -= count
            self._idle.notify_all()

    @contextlib.contextmanager
    def faulted_turn(self) -> Iterator[None]:
        """:meth:`faulted_turn_started` and, at the end of the block, :meth:`faulted_turn_ended`."""
        self.faulted_turn_started()
        try:
            yield
        finally:
            self.faulted_turn_ended()

    def wait_faulted_turns(self) -> bool:
        """Wait until the upstream has answered every turn a fault met (from the test's thread).

        Bounded by the upstream bounds: an upstream that stops answering is stopped by them.
        """
        settings = self.settings
        bound = settings.upstream_first_event_timeout + settings.upstream_idle_timeout
        with self._idle:
            return self._idle.wait_for(lambda: self._faulted_in_flight <= 0, bound)

    def http_connection(
        self, scope: Mapping[str, Any], headers: dict[str, str], at_ns: int
    ) -> tuple[int, bool]:
        """The connection id of an HTTP request (by client address) and whether it is new."""
        peer = tuple(scope.get("client") or ("?", 0))
        with self.lock:
            known = self._http_connections.get(peer)
            if known is not None:
                return known, False
        connection_id = self._connection_id("http", headers, at_ns)
        with self.lock:
            self._http_connections[peer] = connection_id
            self.connection_count += 1
        return connection_id, True

    def next_http_request(self) -> int:
        with self.lock:
            self._http_requests += 1
            return self._http_requests

    def next_request_id(self) -> str:
        with self.lock:
            self._request_ids += 1
            return f"req_rws_{self.id}_{self._request_ids}"

    def add_closer(self, closer: Callable[[], Any]) -> None:
        """Register how to close a live connection when the test ends."""
        with self.lock:
            self._closers.append(closer)

    def remove_closer(self, closer: Callable[[], Any]) -> None:
        with self.lock:
            if closer in self._closers:
                self._closers.remove(closer)

    def refuse(self, url: str) -> str:
        """A client tried to reach the real upstream while replaying: fail the test, say how to route it."""
        message = refusal_message(url)
        self.fail(UnroutedRequestError(message))
        return message

    def recording_broken(self, error: RwsError) -> None:
        """The recording lost part of an answer: report it, and write no cassette."""
        self._recording_broken = True
        self.fail(error)

    def fail(self, error: RwsError) -> None:
        with self.lock:
            # The same missing cassette is reported once, however many requests hit it.
            if isinstance(error, CassetteNotFoundError) and any(
                isinstance(f, CassetteNotFoundError) for f in self.failures
            ):
                return
            self.failures.append(error)

    # -- called from the test's thread ------------------------------------------

    def recording_in_flight(self) -> bool:
        """Whether a recorded answer is still arriving (read from the test's thread: a hint)."""
        return self.recorder is not None and bool(self.recorder.unfinished())

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every connection of this test has closed, at most ``timeout_s``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._open_connections <= 0, timeout_s)

    def take_closers(self) -> list[Callable[[], Any]]:
        with self.lock:
            closers, self._closers = self._closers, []
            return closers

    def finish(self) -> list[RwsError]:
        """End the test: write what was recorded and return every failure to report."""
        self.finished = True
        if self.recorder is not None and self.verifies:
            if self.drift is None:
                self._verify(self.recorder)
        elif self.recorder is not None and self.save_recording and self.persist:
            self._save_recording(self.recorder)
        with self.lock:
            return list(self.failures)

    def lock_cassette(self) -> None:
        """Take the cassette's lock before the recording is written (from the test's thread).

        Other processes may be recording the same cassette: they write one at a time, each
        merging into the file as the one before left it. Waiting too long fails the test.
        """
        nothing_to_write = (
            self.recorder is None
            or not self.recorder.turns
            or self.verifies
            or not self.save_recording
            or not self.persist
        )  # a hint: finish re-checks
        if nothing_to_write or self._recording_broken or self.cassette_lock.held:
            return
        try:
            self.cassette_lock.acquire(self.lock_timeout_s)
        except CassetteError as exc:
            self.recording_broken(RecordingError(f"recording not written: {exc}"))

    def unlock_cassette(self) -> None:
        """Let other processes write the cassette (from the test's thread)."""
        self.cassette_lock.release()

    def _unfinished_answer(self, recorder: SessionRecorder) -> bool:
        """Report an answer that never ended; True when there was one."""
        unfinished = recorder.unfinished()
        if unfinished:
            first = unfinished[0]
            self.fail(
                RecordingError(
                    f"recording failed: the answer to a request on {first.transport} connection "
                    f"{first.connection} never ended (the upstream closed or stopped mid-stream). "
                    f"Nothing was written; {self.path} is unchanged."
                )
            )
        return bool(unfinished)

    def verify_live(self) -> None:
        """Verify mode, when the test body has returned: compare now, so drift fails the test
        itself rather than its teardown. Left to :meth:`finish` while an answer is arriving.
        Runs on the server loop, which owns the recorder."""
        recorder = self.recorder
        if self.verifies and recorder is not None and self.drift is None and not recorder.unfinished():
            self._verify(recorder)

    def _verify(self, recorder: SessionRecorder) -> None:
        """Compare the live answers with the cassette found at the start; never write it."""
        if self._recording_broken or self._unfinished_answer(recorder):
            return
        recorder.scrub_all()  # the drift's previews go into reports
        live = sorted(recorder.turns, key=lambda turn: turn.started_at_ms)
        recorded = self.found.turns if self.found is not None else ()
        drift = compare_turns(recorded, live)
        self.drift = drift
        failing = drift.failing(self.settings.verify_fail_on)
        if failing:
            self.fail(DriftError(drift_message(str(self.path), drift, failing)))

    def _save_recording(self, recorder: SessionRecorder) -> None:
        if self._recording_broken or self._unfinished_answer(recorder):
            return
        if not recorder.turns:
            return
        # Secrets learned late (a later request's key) are scrubbed from earlier turns too.
        recorder.scrub_all()
        owned = self.cassette_lock.held
        try:
            if not owned:  # finishing outside the server (no lock taken by the caller)
                self.cassette_lock.acquire(self.lock_timeout_s)
            self._merge_and_write(recorder)
        except (CassetteError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.fail(RecordingError(f"recording not written to {self.path}: {reason}"))
        finally:
            if not owned:
                self.cassette_lock.release()

    def _merge_and_write(self, recorder: SessionRecorder) -> None:
        """Merge into the cassette as it is on disk now (under its lock) and write the result."""
        mode = self.settings.record_mode
        on_disk: Cassette | None = None
        if self.path.exists():
            try:
                on_disk = load_cassette(self.path)
            except CassetteError:
                if mode is not RecordMode.REWRITE:
                    raise  # never write over turns that cannot be read back
        merged = merge_recording(
            mode.value,
            recorder.turns,
            recorder.connections(),
            on_disk=on_disk,
            at_start=self.found,
            ignore_fields=self.settings.ignore_fields,
            volatile=compile_volatile(self.settings.volatile),
        )
        cassette = Cassette(
            turns=merged.turns,
            recorded_with=RecordedWith(
                plugin_version=__version__,
                transport=recorder.turns[0].transport,
                upstream_host=SIMULATOR_HOST if self.simulated else _host(self.settings.upstream),
                user_agent=recorder.user_agent,
            ),
            recorded_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            connections=merged.connections,
        )
        write_cassette_atomically(self.path, cassette)


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def _replay_turns(
    existing: Cassette | None, prepared: PreparedTurns | None
) -> Sequence[Turn] | PreparedTurns:
    if existing is None:
        return ()
    if prepared is not None and prepared.turns is existing.turns:
        return prepared
    return existing.turns
