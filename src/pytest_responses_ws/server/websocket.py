"""The WebSocket side of the loopback server: one :class:`WebSocketSession` per client connection.

Replay answers each ``response.create`` from the mount's index; recording forwards
frames both ways as they flow, through one upstream connection per client connection
(``store: false`` chains resolve only on the same upstream socket). Named lanes
(``stream_id``) are independent: with paced timing each lane plays in its own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..cassette.model import Turn
from ..core.jsontext import JsonTextError, parse_json
from ..core.metrics import TurnTrace, finish_recorded
from ..core.normalize import request_problem
from ..core.replay import MISS_ERROR_CODE, compact, error_event
from ..errors import RecordingError
from .common import (
    AUTH_FAILURE_STATUSES,
    ProtocolViolation,
    ServerError,
    auth_failure,
    scope_headers,
    shown_url,
)
from .mount import Mount
from .runner import Receive, Scope, Send
from .upstream import open_upstream_websocket, websocket_url


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
        #: Response ids the upstream created on this connection (it can resolve these).
        self._upstream_ids: set[str] = set()
        self._lane_tails: dict[str | None, asyncio.Task[None]] = {}
        self._closed = False
        self.closed_by_upstream = False
        self.opened_ns: int | None = None
        self.handshake_ns: int | None = None
        self._traced_turns = 0
        #: Traces of recorded turns waiting for their terminal event, per lane (FIFO).
        self._recording_traces: dict[str | None, deque[TurnTrace]] = {}

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
        with contextlib.suppress(OSError, RuntimeError):
            await self.send_message({"type": "websocket.close", "code": code, "reason": reason})

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
                    mount.fail(
                        ServerError(
                            f"the loopback server could not handle frame {self.frames_received}: {exc!r}"
                        )
                    )
                    await self.send_event(
                        error_event("rws_server_error", f"pytest-responses-ws: {exc!r}", status=500)
                    )
        except OSError:
            close_code = 1006
        finally:
            self._closed = True
            mount.remove_closer(closer)
            for task in self._lane_tails.values():
                task.cancel()
            if self.closed_by_upstream:
                closed_by = "upstream"
            if self.upstream is not None:
                await self._close_upstream()
            if mount.finished:
                closed_by = "test-end"
            mount.close_connection(self.connection_id, close_code, close_reason, closed_by, mount.clock())

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
            mount.fail(ProtocolViolation(problem + f"\n    frame: {_preview(text)}"))
            await self.send_event(error_event("invalid_request_error", problem))
            return
        lane = data.get("stream_id") if isinstance(data.get("stream_id"), str) else None
        if data["type"] != "response.create":
            if self.upstream is not None or (mount.records and await self._connect_upstream()):
                assert self.upstream is not None
                await self._forward(text or "")
                return
            problem = (
                f"{data['type']!r} on WebSocket connection {self.connection_id} cannot be replayed: "
                "cassettes hold response.create turns only"
            )
            mount.fail(ProtocolViolation(problem))
            await self.send_event(error_event("unsupported_event", problem, lane=lane))
            return
        trace = mount.add_trace(
            TurnTrace(
                transport="ws",
                connection=self.connection_id,
                lane=lane,
                arrived_ns=arrived_ns,
                request=data,
                request_bytes=len(text.encode("utf-8")) if text else 0,
                new_connection=self._traced_turns == 0,
                connection_opened_ns=self.opened_ns,
                handshake_ns=self.handshake_ns if self._traced_turns == 0 else None,
            )
        )
        self._traced_turns += 1
        if mount.replays:
            result = mount.lookup(data)
            if result.turn is not None:
                trace.output = mount.turn_output(result.turn)
                trace.response_id = mount.index.turns[result.turn].response_id
                await self._play(result.turn, lane, trace)
                return
            if not mount.records:
                message = mount.miss(data, result, self._where())
                trace.outcome, trace.terminal_ns = "miss", mount.clock()
                await self.send_event(error_event(MISS_ERROR_CODE, message, lane=lane))
                return
        self._recording_traces.setdefault(lane, deque()).append(trace)
        await self._record(data, text or "", lane, arrived_ns)

    # -- replay ------------------------------------------------------------

    async def _play(self, position: int, lane: str | None, trace: TurnTrace) -> None:
        playback = self.mount.playback(position, lane)
        schedule = playback.schedule(self.mount.settings.timing.factor)
        if schedule is None:
            last = len(playback.frames) - 1
            for i, frame in enumerate(playback.frames):
                if i == last:
                    # Stamped before the send: once the client has the terminal event, the
                    # test may read rws.turns, and the trace must be complete by then.
                    trace.terminal_ns = self.mount.clock()
                if not await self.send_text(frame):
                    return
            return
        previous = self._lane_tails.get(lane)
        self._lane_tails[lane] = asyncio.create_task(self._paced(previous, playback.frames, schedule, trace))

    async def _paced(
        self,
        previous: asyncio.Task[None] | None,
        frames: tuple[str, ...],
        schedule: list[float],
        trace: TurnTrace,
    ) -> None:
        if previous is not None:
            # Creates on one lane run in order: wait for the one before to finish. asyncio.wait
            # does not raise the previous task's cancellation, so this task's own still does.
            await asyncio.wait({previous})
        clock = self.mount.clock
        last = len(frames) - 1
        for i, (frame, at_s) in enumerate(zip(frames, schedule, strict=True)):
            delay = at_s - (clock() - trace.arrived_ns) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            if i == last:
                trace.terminal_ns = clock()
            if not await self.send_text(frame):
                return

    # -- recording ----------------------------------------------------------

    async def _connect_upstream(self, deny_on_failure: bool = False) -> bool:
        url = websocket_url(self.mount.settings.upstream, query=self.scope.get("query_string", b"").decode())
        try:
            self.upstream = await open_upstream_websocket(url, self.headers)
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            status = exc.response.status_code if isinstance(exc, InvalidStatus) else 502
            body = exc.response.body if isinstance(exc, InvalidStatus) else b""
            self.mount.recording_broken(
                auth_failure(status, f"the WebSocket handshake to {shown_url(url)}", self.mount.path)
                if status in AUTH_FAILURE_STATUSES
                else RecordingError(
                    f"recording failed: could not open the upstream WebSocket {shown_url(url)}: {exc}. "
                    f"Nothing was written; {self.mount.path} is unchanged."
                )
            )
            if deny_on_failure:
                await self._deny(status, bytes(body or b""))
            else:
                await self.send_event(
                    error_event(
                        "rws_upstream_unavailable",
                        f"could not reach the upstream {shown_url(url)}: {exc}",
                        status=status if status in AUTH_FAILURE_STATUSES else 502,
                    )
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

    async def _record(self, data: dict[str, Any], text: str, lane: str | None, arrived_ns: int) -> None:
        mount = self.mount
        assert mount.recorder is not None
        if self.upstream is None and not await self._connect_upstream():
            return
        # Only this upstream socket resolves ids it created (store: false); the recording
        # keeps the request as the client sent it.
        outgoing = mount.upstream_body(data, text.encode("utf-8"), self._upstream_ids).decode("utf-8")
        mount.recorder.start_turn(self.connection_id, data, arrived_ns, transport="ws", lane=lane)
        await self._forward(outgoing)

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
            async for message in upstream:
                at_ns = mount.clock()
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                try:
                    data = json.loads(text)
                except ValueError:
                    data = None
                turn = None
                if isinstance(data, dict):
                    if data.get("type") == "error" and data.get("status") in AUTH_FAILURE_STATUSES:
                        where = f"WebSocket connection {self.connection_id}"
                        mount.recording_broken(auth_failure(data["status"], where, mount.path))
                    turn = recorder.on_event(self.connection_id, data, at_ns)
                    if turn is not None:
                        # Stored before the client sees the terminal event (it may end the test).
                        if turn.response_id:
                            self._upstream_ids.add(turn.response_id)
                        mount.on_recorded(turn)
                if turn is not None:
                    self._finish_recorded_trace(turn)
                if not await self.send_text(text):
                    return
        except ConnectionClosed:
            pass
        cut = recorder.abandon(self.connection_id)
        if cut:
            # Known now, so the test fails in its call phase; the cassette will not be written.
            mount.recording_broken(
                RecordingError(
                    f"recording failed: the upstream closed WebSocket connection {self.connection_id} "
                    f"(code {upstream.close_code}, reason {upstream.close_reason or ''!r}) before answering "
                    f"{len(cut)} request(s) completely. Nothing was written; {mount.path} is unchanged."
                )
            )
        if not self._closed:
            self.closed_by_upstream = True
            code = upstream.close_code or 1011
            await self.close(code if code not in (1005, 1006) else 1011, upstream.close_reason or "")

    def _finish_recorded_trace(self, turn: Turn) -> None:
        pending = self._recording_traces.get(turn.lane)
        if pending:
            finish_recorded(pending.popleft(), turn, self.mount.clock())

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
