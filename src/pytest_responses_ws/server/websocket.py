"""The WebSocket side of the loopback server: one :class:`WebSocketSession` per client connection.

Each ``response.create`` goes to the mount's turn engine, and the session acts on the
action it returns (play frames, fail and close, forward upstream); recording forwards
frames both ways as they flow, through one upstream connection per client connection
(``store: false`` chains resolve only on the same upstream socket). Named lanes
(``stream_id``) are independent: with paced timing each lane plays in its own task, and
at most 16 responses play at once on a connection (more wait), as on the service. A
replayed turn that was steered in its recording waits at the steer for the client's own
``response.steer`` (the engine matches it).

No client is left waiting: a turn the server cannot answer (a miss, a malformed frame,
a replayed turn without a terminal event, an upstream that stopped answering) gets its
``error`` event and then the connection is closed, so even a loop that ignores errors
ends. The close codes are ones the openai SDK never reconnects on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..core.engine import (
    LANE_NAME,
    TEST_FAILED_CLOSE_CODE,
    FailTurn,
    Forward,
    ForwardSteer,
    Hold,
    PlayFrames,
    RejectTurn,
    ResumeSteer,
    SteerRequest,
    TurnRequest,
)
from ..core.faults import InjectFault, Injection
from ..core.jsontext import JsonTextError, parse_json
from ..core.lifecycle import unkept_steer_message, unreplayable_event_message
from ..core.normalize import request_problem
from ..core.replay import compact, error_event
from ..core.service_errors import SERVICE_MAX_ACTIVE_RESPONSES
from ..core.stall import Stall, StallWatch
from ..core.synthesize import is_steered_ending
from ..errors import RecordingError, RwsError
from .common import (
    AUTH_FAILURE_STATUSES,
    UPSTREAM_TIMEOUT_ERROR_CODE,
    ProtocolViolation,
    ServerError,
    auth_failure,
    scope_headers,
    shown_url,
)
from .faults import drop_connection, injected_wait, wait_before
from .mount import Mount
from .runner import WS_MAX_FRAME_BYTES, Receive, Scope, Send
from .upstream import UPSTREAM_WEBSOCKET_OPEN_TIMEOUT_S, open_upstream_websocket, websocket_url

#: Close code when the upstream failed while recording: 1014, bad gateway (never reconnected).
UPSTREAM_FAILED_CLOSE_CODE = 1014
#: Close code of a frame over the size limit (sent by the WebSocket layer, not by this module).
MESSAGE_TOO_BIG_CLOSE_CODE = 1009


class WebSocketSession:
    """Serves one client WebSocket connection for a mount."""

    def __init__(self, mount: Mount, scope: Scope, receive: Receive, send: Send) -> None:
        self.mount = mount
        self.scope = scope
        self.receive = receive
        self.send_message = send
        self.headers = scope_headers(scope)
        self.connection_id = 0
        self.frames_received = 0
        self.upstream: ClientConnection | None = None
        self._upstream_reader: asyncio.Task[None] | None = None
        self._lane_tails: dict[str | None, asyncio.Task[None]] = {}
        #: Responses playing in tasks: the service runs at most 16 per connection, more queue.
        self._slots = asyncio.Semaphore(SERVICE_MAX_ACTIVE_RESPONSES)
        #: Held playbacks of steered turns, released by the client's steer (by hold token).
        self._released: dict[int, asyncio.Event] = {}
        self._closed = False
        self.closed_by_upstream = False
        self.opened_ns: int | None = None
        self.handshake_ns: int | None = None
        self.closed_by_server = False
        #: While recording: the turns waiting on the upstream, and the task enforcing their bounds.
        self._stall_watch: StallWatch | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._waiting = asyncio.Event()
        self._stalled = False
        #: Frames received from the upstream on this connection (named when one cannot be handled).
        self.upstream_frames = 0
        #: While recording: injected faults riding on turns still arriving, by their pending turn.
        self._relay_faults: dict[int, _RelayFault] = {}

    # -- plumbing ------------------------------------------------------------

    async def send_text(self, text: str) -> bool:
        """Send one frame; False if the client is gone."""
        if self._closed:
            return False
        try:
            await self.send_message({"type": "websocket.send", "text": text})
        except OSError:  # uvicorn's ClientDisconnected
            self._closed = True
            return False
        return True

    async def send_event(self, event: dict[str, Any]) -> bool:
        return await self.send_text(compact(event))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self.closed_by_server = True
        with contextlib.suppress(OSError, RuntimeError):
            await self.send_message({"type": "websocket.close", "code": code, "reason": reason})

    async def end_with_error(self, event: dict[str, Any], code: int, reason: str) -> None:
        """Answer with ``event``, then close: the test has failed and no client may wait on."""
        await self.send_event(event)
        await self.close(code, "pytest-responses-ws: " + reason)

    async def fail_turn(self, error: RwsError, event: dict[str, Any], reason: str) -> None:
        """Fail the test with ``error``; the client gets ``event`` and the connection closes."""
        self.mount.fail(error)
        await self.end_with_error(event, TEST_FAILED_CLOSE_CODE, reason)

    def _query(self) -> str:
        return bytes(self.scope.get("query_string", b"")).decode("latin-1")

    def _where(self) -> str:
        return f"request {self.frames_received} on WebSocket connection {self.connection_id}"

    # -- lifecycle -----------------------------------------------------------

    async def run(self) -> None:
        message = await self.receive()
        if message["type"] != "websocket.connect":
            return
        mount = self.mount
        started = mount.clock()
        handshake_ns: int | None = None
        mount.learn_request_secrets(self.headers, self._query())
        if mount.recorder is not None:
            # Azure-style clients put the key in the query string; upstreams echo it back.
            mount.recorder.redactor.learn_query(self._query())
        if mount.records and not mount.replays:
            # Everything is recorded: open the upstream first so its verdict on the
            # handshake (a 401 for a bad key, say) reaches the client as it is.
            if not await self._connect_upstream(deny_on_failure=True):
                return
            handshake_ns = mount.clock() - started
        self.connection_id = mount.open_connection("ws", self.headers, started, handshake_ns)
        close_code: int | None = None
        close_reason = ""
        closed_by = "client"
        closer = self._schedule_close
        mount.add_closer(closer)
        try:
            await self.send_message({"type": "websocket.accept"})
            self.opened_ns = mount.clock()
            self.handshake_ns = self.opened_ns - started
            while True:
                message = await self.receive()
                if message["type"] == "websocket.disconnect":
                    close_code = message.get("code")
                    close_reason = message.get("reason") or ""
                    if close_code == MESSAGE_TOO_BIG_CLOSE_CODE:
                        mount.fail(ProtocolViolation(self._too_big(close_reason)))
                    break
                text = message.get("text")
                if text is None:
                    raw = message.get("bytes") or b""
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        text = None
                try:
                    await self.on_frame(text, mount.clock())
                except Exception as exc:  # never a bare traceback: a failure of the test, and an answer
                    await self.fail_turn(
                        ServerError(
                            f"the loopback server could not handle frame {self.frames_received}: {exc!r}"
                        ),
                        error_event(
                            "rws_server_error",
                            f"pytest-responses-ws: {exc!r}",
                            status=500,
                            error_type="server_error",
                        ),
                        "server error",
                    )
        except OSError:
            close_code = 1006
        finally:
            self._closed = True
            if self._relay_faults and self._upstream_reader is not None:
                # A fault met the client mid-turn: the upstream's answer is still recorded whole.
                settings = mount.settings
                bound = settings.upstream_first_event_timeout + settings.upstream_idle_timeout
                await asyncio.wait({self._upstream_reader}, timeout=bound)
            if self._relay_faults:  # their answers will not end now (the upstream failed)
                mount.faulted_turn_ended(len(self._relay_faults))
                self._relay_faults.clear()
            mount.remove_closer(closer)
            for task in self._lane_tails.values():
                task.cancel()
            if self._watchdog is not None:
                self._watchdog.cancel()
            if self.closed_by_server:
                closed_by = "server"
            if self.closed_by_upstream:
                closed_by = "upstream"
            if self.upstream is not None:
                await self._close_upstream()
            if mount.finished:
                closed_by = "test-end"
            mount.close_connection(self.connection_id, close_code, close_reason, closed_by, mount.clock())

    def _too_big(self, reason: str) -> str:
        """The failure for a 1009 close: which side's frame was too big, and the limit."""
        where = f"WebSocket connection {self.connection_id}"
        if f"limit of {WS_MAX_FRAME_BYTES} bytes" in reason:
            return (
                f"client frame {self.frames_received + 1} on {where} was too big for the loopback server "
                f"({reason}): it accepts frames up to {WS_MAX_FRAME_BYTES // (1024 * 1024)} MiB and closed "
                "the connection with code 1009 (message too big). Send less per response.create (large "
                "files belong in file inputs, not inline)."
            )
        return (
            f"the client closed {where} with code 1009 (message too big: {reason or 'no reason given'}): a "
            "frame the server sent exceeded the client's own size limit. Answers of the real service "
            "exceed 1 MiB; the openai SDK sets max_size=None, and a websockets client needs "
            "connect(..., max_size=None) too."
        )

    def _schedule_close(self) -> Any:
        """Close this connection from the server loop (the test that owns it has ended)."""
        return self.close(1001, "the test that owned this connection has finished")

    # -- frames ------------------------------------------------------------

    async def on_frame(self, text: str | None, arrived_ns: int) -> None:
        self.frames_received += 1
        mount = self.mount
        if mount.finished:
            await self.send_event(
                error_event("rws_test_finished", "the test that owned this connection has finished")
            )
            return
        data = _decode_frame(text)
        if isinstance(data, str):
            problem = f"malformed client frame {self.frames_received} on WebSocket connection {self.connection_id}: {data}"
            await self.fail_turn(
                # The frame is shown (cut short), without the secrets of this connection.
                ProtocolViolation(problem + f"\n    frame: {mount.mask(_preview(text), self.headers)}"),
                error_event("invalid_request_error", problem),
                "malformed client frame",
            )
            return
        lane = data.get("stream_id") if isinstance(data.get("stream_id"), str) else None
        if data["type"] == "response.steer":
            await self._on_steer(data, text or "", arrived_ns)
            return
        if data["type"] != "response.create":
            if self.upstream is not None or (mount.records and await self._connect_upstream()):
                assert self.upstream is not None
                # The client gets its live answer, but a cassette cannot hold this event:
                # never let a recording that will not replay pass as a good one.
                mount.recording_broken(
                    RecordingError(unreplayable_event_message(data["type"], self.connection_id, mount.path))
                )
                await self._forward(text or "")
                return
            problem = (
                f"{data['type']!r} on WebSocket connection {self.connection_id} cannot be replayed: "
                "cassettes hold response.create turns and their steers only"
            )
            await self.fail_turn(
                ProtocolViolation(problem),
                error_event("unsupported_event", problem, lane=lane),
                "unsupported client event",
            )
            return
        raw = text.encode("utf-8") if text else b""
        action = mount.on_create(
            TurnRequest(
                transport="ws",
                connection=self.connection_id,
                request=data,
                raw=raw,
                arrived_ns=arrived_ns,
                where=self._where(),
                lane=lane,
                connection_opened_ns=self.opened_ns,
                handshake_ns=self.handshake_ns,
                headers=self.headers,
                query=self._query(),
            )
        )
        if isinstance(action, PlayFrames):
            await self._play(action)
        elif isinstance(action, FailTurn):
            if action.trace is not None:
                action.trace.terminal_ns = mount.clock()
            await self.end_with_error(action.event, action.close_code, action.reason)
        elif isinstance(action, RejectTurn):
            # The service's own error: it keeps the connection open, so does the replay,
            # unless it closes it (the connection's age limit: a normal close).
            action.trace.terminal_ns = mount.clock()
            await self.send_event(action.event)
            if action.close_code is not None:
                await self.close(action.close_code, action.close_reason)
        elif isinstance(action, Forward):
            await self._record(data, action.body.decode("utf-8"), lane, arrived_ns, action.fault)
        elif isinstance(action, InjectFault):
            if action.injection.first_event_s > 0:
                await asyncio.sleep(action.injection.first_event_s)  # bounded: MAX_DELAY_S
            action.trace.terminal_ns = mount.clock()
            await self._fault_ending(action.injection)

    # -- replay ------------------------------------------------------------

    async def _play(self, action: PlayFrames) -> None:
        previous = self._lane_tails.get(action.lane)
        if (
            action.schedule is None
            and not action.holds
            and action.fault is None
            and (previous is None or previous.done())
        ):
            # Instant, no fault and nothing before it on its lane: sent from here.
            frames, trace = action.frames, action.trace
            last = len(frames) - 1
            for i, frame in enumerate(frames):
                if i == last:
                    # Stamped before the send: once the client has the terminal event, the
                    # test may read rws.turns, and the trace must be complete by then.
                    trace.terminal_ns = self.mount.clock()
                if not await self.send_text(frame):
                    return
            await self._then(action)
            return
        self._lane_tails[action.lane] = asyncio.create_task(self._paced(previous, action))

    async def _paced(self, previous: asyncio.Task[None] | None, action: PlayFrames) -> None:
        if previous is not None:
            # Creates on one lane run in order: wait for the one before to finish. asyncio.wait
            # does not raise the previous task's cancellation, so this task's own still does.
            await asyncio.wait({previous})
        async with self._slots:  # a 17th response waits until one of the 16 active ends
            await self._send_paced(action)

    async def _send_paced(self, action: PlayFrames) -> None:
        """Send a turn's frames on its schedule (None: at once), waiting at each steer hold."""
        clock = self.mount.clock
        trace, schedule = action.trace, action.schedule
        fault = action.fault
        ending = fault is not None and fault.interrupts
        holds: dict[int, list[Hold]] = {}
        for hold in action.holds:
            holds.setdefault(hold.index, []).append(hold)
        # How much later than recorded the client steered: later frames move by as much.
        shift_ns = 0
        injected = 0.0  # seconds of injected delay so far (not the client's overhead)
        last = len(action.frames) - 1
        for i, frame in enumerate(action.frames):
            if fault is not None:
                if fault.after_events is not None and i >= fault.after_events:
                    break
                injected += wait_before(fault, i)
            for hold in holds.get(i, ()):
                if not await self._wait_for_steer(hold):
                    return
                late_ns = clock() - trace.arrived_ns - shift_ns - int((hold.at_s + injected) * 1e9)
                shift_ns += max(0, late_ns)
            at_s = (schedule[i] if schedule is not None else 0.0) + injected
            delay = at_s - (clock() - trace.arrived_ns - shift_ns) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            if i == last and not ending:
                trace.terminal_ns = clock()
            if not await self.send_text(frame):
                return
        if fault is not None and ending:
            trace.terminal_ns = clock()
            await self._fault_ending(fault)
            return
        await self._then(action)

    async def _wait_for_steer(self, hold: Hold) -> bool:
        """Wait (bounded) for the client's steer; False when it never came and the turn failed."""
        released = self._released.setdefault(hold.token, asyncio.Event())
        try:
            await asyncio.wait_for(released.wait(), hold.timeout_s)
        except asyncio.TimeoutError:
            for failure in hold.missed.failures:
                self.mount.fail(failure)
            await self.end_with_error(hold.missed.event, hold.missed.close_code, hold.missed.reason)
            return False
        finally:
            del self._released[hold.token]  # each hold is waited on once
        return True

    async def _on_steer(self, data: dict[str, Any], text: str, arrived_ns: int) -> None:
        """A ``response.steer``: release the held playback it matches, or record it."""
        mount = self.mount
        action = mount.on_steer(
            SteerRequest(
                connection=self.connection_id,
                request=data,
                raw=text.encode("utf-8"),
                where=self._where(),
                headers=self.headers,
                query=self._query(),
            )
        )
        if isinstance(action, ResumeSteer):
            self._released.setdefault(action.token, asyncio.Event()).set()
        elif isinstance(action, ForwardSteer):
            if self.upstream is None and not await self._connect_upstream():
                return
            assert mount.recorder is not None
            if not mount.recorder.on_steer(self.connection_id, data, arrived_ns):
                mount.recording_broken(
                    RecordingError(unkept_steer_message(data, self.connection_id, mount.path))
                )
            await self._forward(action.body.decode("utf-8"))
        else:
            await self.end_with_error(action.event, action.close_code, action.reason)

    async def _fault_ending(self, fault: Injection) -> None:
        """End a turn as an injected fault says: a close, a cut, or an event (and maybe a close)."""
        if fault.ending == "cut":
            self._closed = self.closed_by_server = True
            if not drop_connection(self.send_message):
                await self.close(1011, "")  # no transport in reach: the nearest a client can see
            return
        if fault.ending == "close":
            await self.close(fault.close_code or 1011, fault.close_reason)
            return
        if fault.frame_text is not None:
            await self.send_text(fault.frame_text)
        elif fault.event is not None:
            await self.send_event(fault.event)
        if fault.close_code is not None:
            await self.close(fault.close_code, fault.close_reason)

    async def _then(self, action: PlayFrames) -> None:
        """The frames are sent: end the turn with the engine's failure, if it has one."""
        if action.then is not None:
            await self.end_with_error(action.then.event, action.then.close_code, action.then.reason)

    # -- recording ----------------------------------------------------------

    async def _connect_upstream(self, deny_on_failure: bool = False) -> bool:
        url = websocket_url(self.mount.settings.upstream, query=self._query())
        try:
            # A smaller first-event bound (fast-failing CI) bounds the handshake too.
            bound = min(UPSTREAM_WEBSOCKET_OPEN_TIMEOUT_S, self.mount.settings.upstream_first_event_timeout)
            self.upstream = await open_upstream_websocket(url, self.headers, bound)
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            status = exc.response.status_code if isinstance(exc, InvalidStatus) else 502
            body = exc.response.body if isinstance(exc, InvalidStatus) else b""
            self.mount.recording_broken(
                auth_failure(status, f"the WebSocket handshake to {shown_url(url)}", self.mount.path)
                if status in AUTH_FAILURE_STATUSES
                else RecordingError(
                    f"recording failed: could not open the upstream WebSocket {shown_url(url)}: {self.mount.mask(str(exc))}. "
                    f"Nothing was written; {self.mount.path} is unchanged."
                )
            )
            if deny_on_failure:
                await self._deny(status, bytes(body or b""))
            else:
                await self.end_with_error(
                    error_event(
                        "rws_upstream_unavailable",
                        f"could not reach the upstream {shown_url(url)}: {self.mount.mask(str(exc))}",
                        status=status if status in AUTH_FAILURE_STATUSES else 502,
                        error_type="server_error",
                    ),
                    UPSTREAM_FAILED_CLOSE_CODE,
                    "the upstream is unavailable",
                )
            return False
        self._upstream_reader = asyncio.create_task(self._pump_upstream(self.upstream))
        return True

    async def _deny(self, status: int, body: bytes) -> None:
        self._closed = True
        with contextlib.suppress(OSError, RuntimeError):
            await self.send_message(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await self.send_message({"type": "websocket.http.response.body", "body": body})

    async def _record(
        self, data: dict[str, Any], outgoing: str, lane: str | None, arrived_ns: int, fault: Injection | None
    ) -> None:
        mount = self.mount
        assert mount.recorder is not None
        if self.upstream is None and not await self._connect_upstream():
            return
        if lane is not None and LANE_NAME.fullmatch(lane) is None:
            lane = None  # not a lane name: the upstream's error for it comes on the default lane
        # ``outgoing`` is the engine's: only this upstream socket resolves ids it created
        # (store: false); the recording keeps the request as the client sent it.
        pending = mount.recorder.start_turn(self.connection_id, data, arrived_ns, transport="ws", lane=lane)
        if fault is not None:
            self._relay_faults[id(pending)] = _RelayFault(fault)
            mount.faulted_turn_started()
        self._watch_turn(lane)
        await self._forward(outgoing)

    def _watch_turn(self, lane: str | None) -> None:
        """Put the turn just sent upstream on the clock of the upstream bounds."""
        if self._stall_watch is None:
            settings = self.mount.settings
            self._stall_watch = StallWatch(
                settings.upstream_first_event_timeout, settings.upstream_idle_timeout
            )
            self._watchdog = asyncio.create_task(self._enforce_bounds(self._stall_watch))
        self._stall_watch.start(self._where(), lane, self.mount.clock())
        self._waiting.set()

    async def _enforce_bounds(self, watch: StallWatch) -> None:
        clock = self.mount.clock
        while True:
            deadline = watch.deadline_ns()
            if deadline is None:
                self._waiting.clear()
                await self._waiting.wait()
                continue
            delay = (deadline - clock()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)  # then look again: events may have moved the deadline
                continue
            stall = watch.overdue(clock())
            if stall is not None:
                await self._on_stall(stall)
                return

    async def _on_stall(self, stall: Stall) -> None:
        """The upstream stopped answering: fail the test, tell the client at once, drop the upstream."""
        self._stalled = True
        mount = self.mount
        mount.lane_failed(self.connection_id, stall.lane)
        mount.recording_broken(
            RecordingError(
                f"recording failed: {stall.describe()} Nothing was written; {mount.path} is unchanged."
            )
        )
        await self.end_with_error(
            error_event(
                UPSTREAM_TIMEOUT_ERROR_CODE,
                f"pytest-responses-ws: the upstream stopped answering {stall.where} "
                f"({stall.bound.setting} = {stall.bound.seconds:g} s); see the test report",
                status=504,
                lane=stall.lane,
                error_type="server_error",
            ),
            UPSTREAM_FAILED_CLOSE_CODE,
            "the upstream stopped answering",
        )
        upstream = self.upstream
        if upstream is not None:
            upstream.transport.abort()  # a stalled peer would not answer a closing handshake either

    async def _forward(self, text: str) -> None:
        assert self.upstream is not None
        try:
            await self.upstream.send(text)
        except ConnectionClosed:
            pass  # the reader reports the close

    async def _pump_upstream(self, upstream: ClientConnection) -> None:
        mount = self.mount
        recorder = mount.recorder
        assert recorder is not None
        try:
            if not await self._relay_upstream(upstream):
                return  # the client is gone
        except ConnectionClosed:
            pass
        except Exception as exc:  # not lost with the task: a failure of the test, and an answer
            await self._on_reader_failure(exc)
            return
        if self._stalled:
            return  # reported, and the client told, by _on_stall
        if self._watchdog is not None:
            self._watchdog.cancel()  # nothing more can arrive: the close is reported below
        cut = recorder.abandon(self.connection_id)
        if cut:
            # Known now, so the test fails in its call phase; the cassette will not be written.
            mount.recording_broken(
                RecordingError(
                    f"recording failed: the upstream closed WebSocket connection {self.connection_id} "
                    f"(code {upstream.close_code}, reason {mount.mask(upstream.close_reason or '')!r}) before answering "
                    f"{len(cut)} request(s) completely. Nothing was written; {mount.path} is unchanged."
                )
            )
        if not self._closed:
            self.closed_by_upstream = True
            code = upstream.close_code or 1011
            await self.close(code if code not in (1005, 1006) else 1011, upstream.close_reason or "")

    async def _relay_upstream(self, upstream: ClientConnection) -> bool:
        """Record and forward the upstream's frames until it closes; False if the client went first."""
        mount = self.mount
        recorder = mount.recorder
        assert recorder is not None
        async for message in upstream:
            self.upstream_frames += 1
            at_ns = mount.clock()
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            turn = None
            relay: tuple[int, _RelayFault] | None = None
            if isinstance(data, dict):
                if self._relay_faults:
                    relay = self._relay_fault_of(data)
                if self._stall_watch is not None:
                    lane = data.get("stream_id")
                    # A steered ending is no end: the successor follows in the same turn.
                    event_type = None if is_steered_ending(data) else data.get("type")
                    self._stall_watch.on_event(lane if isinstance(lane, str) else None, event_type, at_ns)
                if data.get("type") == "error" and data.get("status") in AUTH_FAILURE_STATUSES:
                    where = f"WebSocket connection {self.connection_id}"
                    mount.recording_broken(auth_failure(data["status"], where, mount.path))
                turn = recorder.on_event(self.connection_id, data, at_ns)
                if turn is not None:
                    # Stored (and its trace completed) before the client sees the terminal
                    # event: the test may end, or read rws.turns, as soon as it does.
                    mount.on_recorded(turn)
            if relay is not None:
                await self._relay_faulted(relay, text, ended=turn is not None)
                if self._closed and not self._relay_faults:
                    return False
                continue
            if not await self.send_text(text) and not self._relay_faults:
                return False
        return True

    def _relay_fault_of(self, data: dict[str, Any]) -> tuple[int, _RelayFault] | None:
        """The injected fault riding on the turn this upstream event belongs to, if any."""
        assert self.mount.recorder is not None
        lane = data.get("stream_id")
        pending = self.mount.recorder.waiting(self.connection_id, lane if isinstance(lane, str) else None)
        if pending is None:
            return None
        relay = self._relay_faults.get(id(pending))
        return None if relay is None else (id(pending), relay)

    async def _relay_faulted(self, relay: tuple[int, _RelayFault], text: str, *, ended: bool) -> None:
        """Relay one event of a turn a fault rides on: delayed, or the fault's ending instead.

        Once the ending has struck, the client gets nothing more of the turn, while the
        upstream's answer goes on being recorded.
        """
        key, state = relay
        fault = state.injection
        if not state.struck:
            if fault.after_events is not None and state.sent >= fault.after_events:
                state.struck = True
                await self._fault_ending(fault)
            else:
                await injected_wait(fault, state.sent)
                state.sent += 1
                await self.send_text(text)
                if ended and fault.interrupts:
                    state.struck = True  # the turn had fewer events: the ending follows its last
                    await self._fault_ending(fault)
        if ended:
            del self._relay_faults[key]
            self.mount.faulted_turn_ended()

    async def _on_reader_failure(self, error: Exception) -> None:
        """Reading the upstream raised: fail the test, tell the client at once, drop the upstream."""
        mount = self.mount
        if self._watchdog is not None:
            self._watchdog.cancel()  # this failure is the one to report, not a stall after it
        assert mount.recorder is not None
        mount.recorder.abandon(self.connection_id)
        mount.connection_failed(self.connection_id)
        mount.recording_broken(
            ServerError(
                f"recording failed: the loopback server could not handle upstream frame {self.upstream_frames} "
                f"on WebSocket connection {self.connection_id}: {mount.mask(repr(error))}. "
                f"Nothing was written; {mount.path} is unchanged."
            )
        )
        await self.end_with_error(
            error_event(
                "rws_server_error",
                "pytest-responses-ws: the loopback server could not handle a frame of the upstream; "
                "see the test report",
                status=500,
                error_type="server_error",
            ),
            TEST_FAILED_CLOSE_CODE,
            "server error",
        )
        upstream = self.upstream
        if upstream is not None:
            upstream.transport.abort()

    async def _close_upstream(self) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(upstream.close(), 5)
        if self._upstream_reader is not None:
            self._upstream_reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._upstream_reader


class _RelayFault:
    """An injected fault on a turn being recorded: events relayed so far, and whether it struck."""

    def __init__(self, injection: Injection) -> None:
        self.injection = injection
        self.sent = 0
        self.struck = False


def _decode_frame(text: str | None) -> dict[str, Any] | str:
    """The frame as a JSON object with a string ``type``, or a description of what is wrong."""
    if text is None:
        return "not UTF-8 text"
    try:
        data = parse_json(text)
    except JsonTextError as exc:
        return str(exc)
    if not isinstance(data, dict):
        return "a client event must be a JSON object"
    if not isinstance(data.get("type"), str):
        return "a client event needs a string 'type' such as 'response.create'"
    if data["type"] == "response.create":
        return request_problem(data) or data
    return data


def _preview(text: str | None, width: int = 200) -> str:
    if text is None:
        return "<binary>"
    return text if len(text) <= width else text[:width] + "…"
