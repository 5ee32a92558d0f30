"""A plain ASGI app that speaks the Responses API over HTTP+SSE and WebSocket mode.

It is a thin adapter: every decision about what to answer lives in ``Simulator``; this module
only frames events for the wire (SSE or one JSON text frame per event), checks the API key,
keeps one ``ConnectionState`` per WebSocket connection and runs named lanes concurrently,
with the service's connection rules: 32 named lanes, 16 responses generating at once (more
wait), and ``response.steer`` (accepted, then the active response ends ``incomplete`` /
``steered`` at the next event and a successor answers the steered input; a response that
stops for tool output keeps the steer queued, says ``pending`` after it completes and
prepends the steer's input to the client's continuation; ``failed`` for a response that is
unknown or already finished).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..core.latency import LatencyModel, answer_schedule
from ..core.replay import compact, error_event, sse_block
from ..core.service_errors import (
    SERVICE_MAX_ACTIVE_RESPONSES,
    SERVICE_MAX_LANES,
    invalid_stream_id,
    stream_limit_reached,
)
from ..core.synthesize import response_from_events
from ..server.common import error_body
from ..server.runner import LoopbackRunner, Message, Receive, Scope, Send
from .script import Script
from .simulator import _STREAM_ID, ConnectionState, Simulator

__all__ = ["SimulatorApp", "SimulatorServer", "serve_simulator"]

log = logging.getLogger(__name__)

_MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)

#: Close code for a connection the server cuts on purpose (``close_after_events``).
CLOSE_INTERNAL_ERROR = 1011
#: Close code for a refused upgrade when the server cannot send an HTTP denial response.
CLOSE_POLICY_VIOLATION = 1008


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _authorized(headers: Mapping[str, str]) -> bool:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return True
    return bool(headers.get("api-key", "").strip())


def _is_responses_path(path: str) -> bool:
    return path.rstrip("/").endswith("/responses")


def _missing_key_body() -> dict[str, Any]:
    return error_body(
        message=_MISSING_KEY_MESSAGE, error_type="invalid_request_error", code="invalid_api_key", param=None
    )


async def _send_json(send: Send, status: int, body: object, headers: Sequence[tuple[str, str]] = ()) -> None:
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *extra],
        }
    )
    await send({"type": "http.response.body", "body": compact(body).encode(), "more_body": False})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or ``None`` when the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class SimulatorApp:
    """ASGI app serving ``POST .../responses`` (JSON or SSE) and the WebSocket upgrade on the same path.

    ``handshakes`` records the headers (lower-case names) of every HTTP request and WebSocket
    upgrade, accepted or not. ``event_delay_s`` paces events; ``close_after_events`` cuts a
    WebSocket connection with close code 1011 after that many events of a turn.
    ``max_active_responses`` is how many responses one WebSocket connection generates at
    once (the service's 16; a test can raise it to record an upstream without the bound).
    ``latency`` sends each event when the latency model says the service would (instead of
    ``event_delay_s``): a WebSocket request chained from a response its connection holds pays
    only for what it sends.
    """

    def __init__(
        self,
        simulator: Simulator,
        *,
        event_delay_s: float = 0.0,
        close_after_events: int | None = None,
        require_auth: bool = True,
        max_active_responses: int = SERVICE_MAX_ACTIVE_RESPONSES,
        latency: LatencyModel | None = None,
    ) -> None:
        if max_active_responses < 1:
            raise ValueError(f"max_active_responses must be 1 or more, got {max_active_responses}")
        if event_delay_s < 0:
            raise ValueError(f"event_delay_s must be 0 or more, got {event_delay_s}")
        if close_after_events is not None and close_after_events < 0:
            raise ValueError(f"close_after_events must be 0 or more, got {close_after_events}")
        self.simulator = simulator
        self.event_delay_s = event_delay_s
        self.close_after_events = close_after_events
        self.require_auth = require_auth
        self.max_active_responses = max_active_responses
        self.latency = latency
        #: Headers of every request and upgrade received, in arrival order.
        self.handshakes: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def pace(self, index: int) -> None:
        """Wait ``event_delay_s`` before every event but the first of a turn."""
        if index and self.event_delay_s:
            await asyncio.sleep(self.event_delay_s)

    def pacer(self, request: Mapping[str, Any], events: Sequence[Mapping[str, Any]], held: bool) -> _Pacer:
        """When to send each event of one answer (started now)."""
        offsets = answer_schedule(self.latency, request, events, held=held) if self.latency else None
        return _Pacer(self, offsets)

    # -- HTTP ------------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        self.handshakes.append(headers)
        method, path = scope.get("method", "GET"), scope.get("path", "/")
        if method != "POST" or not _is_responses_path(path):
            body = error_body(
                message=f"Invalid URL ({method} {path})",
                error_type="invalid_request_error",
                code=None,
                param=None,
            )
            await _send_json(send, 404, body)
            return
        raw = await _read_body(receive)
        if raw is None:
            return
        if self.require_auth and not _authorized(headers):
            await _send_json(send, 401, _missing_key_body())
            return
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            message = "We could not parse the JSON body of your request. Send a JSON object."
            await _send_json(
                send,
                400,
                error_body(message=message, error_type="invalid_request_error", code=None, param=None),
            )
            return

        answer = self.simulator.answer(request, connection=ConnectionState(transport="http"))
        events = answer.events
        pacer = self.pacer(request, events, False)  # over HTTP the service holds nothing
        first = events[0]
        if first.get("type") == "error" and "status" in first:
            # Refused before any response existed: a plain HTTP error, as the service does.
            error = first["error"]
            body = error_body(
                message=error["message"], error_type=error["type"], code=error["code"], param=error["param"]
            )
            await pacer.wait(0)
            await _send_json(send, int(first["status"]), body, answer.headers)
            return
        if request.get("stream") is True:
            await self._stream_sse(send, events, pacer)
        else:
            await pacer.wait(len(events) - 1)
            await _send_json(send, 200, response_from_events(events))

    async def _stream_sse(self, send: Send, events: Sequence[Mapping[str, Any]], pacer: _Pacer) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for index, event in enumerate(events):
            await pacer.wait(index)
            # One event per body chunk, so a client sees each event as the service would send it.
            await send({"type": "http.response.body", "body": sse_block(event).encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- WebSocket -------------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = _headers(scope)
        self.handshakes.append(headers)
        path = scope.get("path", "/")
        if not _is_responses_path(path):
            body = error_body(
                message=f"Invalid URL (GET {path})", error_type="invalid_request_error", code=None, param=None
            )
            await self._deny(scope, send, 404, body)
            return
        if self.require_auth and not _authorized(headers):
            await self._deny(scope, send, 401, _missing_key_body())
            return
        await send({"type": "websocket.accept"})
        await _WebSocketSession(self, send).run(receive)

    async def _deny(self, scope: Scope, send: Send, status: int, body: object) -> None:
        """Refuse an upgrade with an HTTP status when the server allows it, else close with 1008."""
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": compact(body).encode()})
        else:
            await send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION})


class _Pacer:
    """Paces one answer: at the latency model's send times, or ``event_delay_s`` apart."""

    def __init__(self, app: SimulatorApp, offsets: list[float] | None) -> None:
        self._app = app
        self._offsets = offsets
        self._start = asyncio.get_running_loop().time()

    async def wait(self, index: int) -> None:
        """Wait until event ``index`` is due."""
        if self._offsets is None:
            await self._app.pace(index)
            return
        if not self._offsets:
            return
        due = self._start + self._offsets[min(index, len(self._offsets) - 1)]
        delay = due - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)


def _items(value: object) -> list[Mapping[str, Any]]:
    """Input as items: a bare string is one user message."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _call_ids(response: object) -> tuple[str, ...]:
    """The call ids of a final response's function calls (the tool output it waits for)."""
    output = response.get("output") if isinstance(response, Mapping) else None
    return tuple(
        str(item.get("call_id"))
        for item in output or []
        if isinstance(item, Mapping) and item.get("type") == "function_call"
    )


@dataclass
class _Active:
    """A response being streamed on a connection, and the steers waiting to end it."""

    request: dict[str, Any]
    lane: str | None
    #: Its output asks for tool results: a steer waits for them instead of ending it.
    calls: tuple[str, ...] = ()
    sequence: int = 0
    steers: list[tuple[str, object]] = field(default_factory=list)

    def next_sequence(self) -> int:
        number = self.sequence
        self.sequence += 1
        return number


class _WebSocketSession:
    """One accepted WebSocket connection: a reader plus one worker task per lane."""

    def __init__(self, app: SimulatorApp, send: Send) -> None:
        self._app = app
        self._send = send
        self._state = ConnectionState(transport="ws")
        self._lanes: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False
        self._slots = asyncio.Semaphore(app.max_active_responses)
        #: Responses streaming now, by id: what a steer can reach.
        self._active: dict[str, _Active] = {}
        #: Steer input queued for the client's continuation of a response (after ``pending``).
        self._queued: dict[str, list[Mapping[str, Any]]] = {}
        self._steer_ids = 0

    async def run(self, receive: Receive) -> None:
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message["type"] == "websocket.receive":
                    await self._on_frame(message)
        finally:
            self._closed = True
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)

    async def _on_frame(self, message: Message) -> None:
        text = message.get("text")
        if text is None:
            try:
                text = bytes(message.get("bytes") or b"").decode()
            except UnicodeDecodeError:
                text = ""
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            # A bad frame fails alone; the connection stays open, as it does on the service.
            await self._send_event(error_event(None, "Invalid WebSocket message: expected a JSON object."))
            return
        event_type = frame.get("type")
        if event_type == "response.steer":
            await self._steer(frame)
            return
        if event_type != "response.create":
            await self._send_event(
                error_event(
                    "invalid_value",
                    f"Unsupported event type {event_type!r}: this simulator accepts 'response.create' "
                    "and 'response.steer'.",
                    param="type",
                )
            )
            return
        lane = frame.get("stream_id")
        key = lane if isinstance(lane, str) else ""
        queue = self._lanes.get(key)
        if queue is None:
            if lane is not None and not (isinstance(lane, str) and _STREAM_ID.fullmatch(lane)):
                await self._send_event(invalid_stream_id(lane).event())
                return
            if lane is not None and sum(1 for name in self._lanes if name) >= SERVICE_MAX_LANES:
                await self._send_event(stream_limit_reached().event(key))
                return
            # Creates on one lane run in order; different lanes run side by side.
            queue = self._lanes[key] = asyncio.Queue()
            self._workers.append(asyncio.create_task(self._lane(queue)))
        queue.put_nowait(frame)

    async def _steer(self, frame: dict[str, Any]) -> None:
        """Accept a steer for a streaming response (it ends at the next event), or fail it."""
        target = frame.get("previous_response_id")
        given = frame.get("input")
        active = self._active.get(target) if isinstance(target, str) else None
        steer: dict[str, Any] = {"input": given, "previous_response_id": target}
        if not (isinstance(given, str) and given) and not (
            isinstance(given, list) and given and all(isinstance(item, Mapping) for item in given)
        ):
            await self._steer_failed(
                steer,
                active,
                "invalid_input",
                "Steering input must be a non-empty string or array of input items.",
            )
            return
        if active is None:
            known = isinstance(target, str) and target in self._state.cache
            code = "response_already_completed" if known else "response_not_found"
            message = (
                f"Response '{target}' has completed and no longer accepts steering input."
                if known
                else f"Response '{target}' is not available on this connection."
            )
            await self._steer_failed(steer, None, code, message)
            return
        self._steer_ids += 1
        steer_id = f"steer_sim{self._app.simulator.seed:08x}{self._steer_ids:016x}"
        active.steers.append((steer_id, given))
        event: dict[str, Any] = {
            "type": "response.steer.accepted",
            "sequence_number": active.next_sequence(),
            "steer": {"id": steer_id, "previous_response_id": target},
        }
        if active.lane is not None:
            event["stream_id"] = active.lane
        await self._send_event(event)

    async def _steer_failed(
        self, steer: dict[str, Any], active: _Active | None, code: str, message: str
    ) -> None:
        event: dict[str, Any] = {
            "type": "response.steer.failed",
            "sequence_number": active.next_sequence() if active is not None else 0,
            "error": {"type": "invalid_request_error", "code": code, "message": message},
            "steer": steer,
        }
        if active is not None and active.lane is not None:
            event["stream_id"] = active.lane
        await self._send_event(event)

    async def _lane(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            while not self._closed:
                frame = await queue.get()
                async with self._slots:  # at most 16 responses generate at once; more wait here
                    if not await self._stream(frame):
                        return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulator lane failed; closing the connection")
            await self._close(CLOSE_INTERNAL_ERROR)

    async def _stream(self, frame: dict[str, Any]) -> bool:
        """Stream the answer to one create, steered as the client asks; False once closed."""
        limit = self._app.close_after_events
        simulator = self._app.simulator
        lane = frame.get("stream_id") if isinstance(frame.get("stream_id"), str) else None
        queued = self._queued.pop(str(frame.get("previous_response_id")), None)
        if queued:
            # The steer input that waited for this continuation goes first, as on the service.
            frame = {**frame, "input": [*queued, *_items(frame.get("input"))]}
        parent = frame.get("previous_response_id")
        # Held: the service's connection-local cache has the parent (not a reconnect, not store).
        held = isinstance(parent, str) and parent in self._state.cache
        events = simulator.respond(frame, connection=self._state)
        pacer = self._app.pacer(frame, events, held)
        active: _Active | None = None
        response_id = ""
        sent = 0
        index = 0
        while index < len(events):
            if limit is not None and sent >= limit:
                await self._close(CLOSE_INTERNAL_ERROR)
                return False
            await pacer.wait(index)
            if active is not None and active.steers and not active.calls:
                # Steered: the response ends here, and its successor answers the steer.
                events = [*events[:index], *self._steered(active, response_id)]
                active = None
            event = events[index]
            if event.get("type") == "response.created":
                response_id = event["response"]["id"]
                calls = _call_ids(events[-1].get("response"))
                active = self._active[response_id] = _Active(frame, lane, calls)
            if active is not None:
                # One numbering per response, shared with the steer events sent in between.
                event = {**event, "sequence_number": active.next_sequence()}
            if not await self._send_event(event):
                return False
            sent += 1
            index += 1
        if active is not None and active.calls and active.steers:
            self._active.pop(response_id, None)
            await self._steers_pending(active, response_id)
        elif active is not None:
            self._active.pop(response_id, None)
            for steer_id, given in active.steers:
                # It finished before the steer could end it.
                await self._steer_failed(
                    {"id": steer_id, "input": given, "previous_response_id": response_id},
                    active,
                    "response_already_completed",
                    f"Response '{response_id}' completed before the steering input was applied.",
                )
        if limit is not None and sent >= limit:
            await self._close(CLOSE_INTERNAL_ERROR)
            return False
        return True

    async def _steers_pending(self, active: _Active, response_id: str) -> None:
        """The response stopped for tool output: its steers stay queued for the continuation."""
        required = [{"type": "function_call_output", "call_id": call_id} for call_id in active.calls]
        queue = self._queued.setdefault(response_id, [])
        for steer_id, given in active.steers:
            queue.extend(_items(given))
            event: dict[str, Any] = {
                "type": "response.steer.pending",
                "sequence_number": active.next_sequence(),
                "reason": "waiting_for_required_input",
                "required_input": required,
                "steer": {"id": steer_id, "previous_response_id": response_id},
            }
            if active.lane is not None:
                event["stream_id"] = active.lane
            await self._send_event(event)

    def _steered(self, active: _Active, response_id: str) -> list[dict[str, Any]]:
        """The steered ending of ``response_id`` and its successor's events."""
        del self._active[response_id]
        ending, successor = self._app.simulator.steered(
            active.request, response_id, [given for _, given in active.steers], connection=self._state
        )
        event: dict[str, Any] = {
            "type": "response.incomplete",
            "sequence_number": active.next_sequence(),
            "response": ending,
        }
        if active.lane is not None:
            event["stream_id"] = active.lane
        return [event, *successor]

    async def _send_event(self, event: Mapping[str, Any]) -> bool:
        """Send one event as a text frame; False once the connection is gone."""
        if self._closed:
            return False
        try:
            await self._send({"type": "websocket.send", "text": compact(event)})
        except OSError:  # uvicorn's ClientDisconnected
            self._closed = True
            return False
        return True

    async def _close(self, code: int) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._send({"type": "websocket.close", "code": code})
        except OSError:
            pass


@dataclass(frozen=True)
class SimulatorServer:
    """A running simulator: point clients at ``url`` (HTTP) or ``ws_url`` (WebSocket)."""

    simulator: Simulator
    app: SimulatorApp
    runner: LoopbackRunner

    @property
    def port(self) -> int:
        """The loopback port the server listens on."""
        return self.runner.port

    @property
    def url(self) -> str:
        """The HTTP base URL, for ``OpenAI(base_url=...)``."""
        return f"http://{self.runner.host}:{self.runner.port}/v1"

    @property
    def ws_url(self) -> str:
        """The WebSocket base URL, for ``websocket_base_url``; the SDK appends ``/responses``."""
        return f"ws://{self.runner.host}:{self.runner.port}/v1"


@contextmanager
def serve_simulator(
    script: Script | None = None,
    *,
    simulator: Simulator | None = None,
    seed: int = 0,
    event_delay_s: float = 0.0,
    close_after_events: int | None = None,
    require_auth: bool = True,
    max_active_responses: int = SERVICE_MAX_ACTIVE_RESPONSES,
) -> Iterator[SimulatorServer]:
    """Serve a simulator on ``127.0.0.1`` for the duration of the ``with`` block.

    Pass a ``script`` (a new ``Simulator`` is made with ``seed``) or a ready ``simulator``.
    The other keywords go to ``SimulatorApp``.
    """
    if simulator is None:
        simulator = Simulator(script, seed=seed)
    elif script is not None:
        raise ValueError("pass either script or simulator, not both")
    app = SimulatorApp(
        simulator,
        event_delay_s=event_delay_s,
        close_after_events=close_after_events,
        require_auth=require_auth,
        max_active_responses=max_active_responses,
    )
    with LoopbackRunner(app, name="rws-sim") as runner:
        yield SimulatorServer(simulator, app, runner)
