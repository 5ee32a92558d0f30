"""The HTTP side of the loopback server: ``POST /v1/responses`` with SSE or JSON answers.

Each request goes to the mount's turn engine, and the exchange acts on the action it
returns. Replay answers exactly as the service would (status, headers,
``event:``/``data:`` framing, no ``[DONE]``). Recording proxies to the upstream with a
streaming client and passes each chunk on as it arrives, timestamping every SSE event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from ..core.engine import FailTurn, Forward, PlayHttp, RejectTurn, TurnRequest
from ..core.faults import InjectFault, Injection
from ..core.jsontext import JsonTextError, parse_json
from ..core.metrics import TurnTrace
from ..core.normalize import request_problem
from ..core.record import kept_response_headers
from ..core.replay import HeaderPairs, sse_block
from ..core.stall import Bound, describe_stall, first_event_bound, idle_bound
from ..errors import RecordingError
from . import upstream_http
from .common import (
    AUTH_FAILURE_STATUSES,
    UPSTREAM_TIMEOUT_ERROR_CODE,
    ProtocolViolation,
    ServerError,
    auth_failure,
    error_body,
    scope_headers,
    shown_url,
)
from .faults import await_disconnect, drop_connection, wait_before
from .mount import Mount
from .runner import Receive, Scope, Send
from .upstream import forwarded_headers, http_url
from .upstream_http import UpstreamHttpError, UpstreamResponse, UpstreamStall

SSE_CONTENT_TYPE = b"text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = b"application/json"


class HttpExchange:
    """Serves one HTTP request for a mount."""

    def __init__(self, mount: Mount, scope: Scope, receive: Receive, send: Send) -> None:
        self.mount = mount
        self.scope = scope
        self.receive = receive
        self.send = send
        self.headers = scope_headers(scope)
        #: Whether the answer's status line has gone to the client (then only the body can follow).
        self.started = False
        #: SSE events relayed so far while recording.
        self.relayed_events = 0
        #: While recording a turn an injected fault rides on: events the client got, and
        #: whether the fault's ending has struck (the client then gets nothing more).
        self._fault_sent = 0
        self._fault_struck = False

    async def start_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def respond_json(
        self, status: int, body: dict[str, Any], *, final: bool = False, headers: HeaderPairs = ()
    ) -> None:
        """Answer with a JSON body; ``final`` tells clients not to retry (the plugin's own failures).

        The openai SDK retries 5xx answers twice by default: a retry of a failure the test
        already has would only reach the upstream again and wait out its bound again.
        ``headers`` are a recorded answer's (``retry-after`` ...), already encoded.
        """
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        answer_headers = [
            (b"content-type", JSON_CONTENT_TYPE),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", self.mount.next_request_id().encode()),
        ]
        if final:
            answer_headers.append((b"x-should-retry", b"false"))  # honoured by the OpenAI SDKs
        answer_headers.extend(headers)
        await self.start_response(status, answer_headers)
        await self.send({"type": "http.response.body", "body": payload})

    def _query(self) -> str:
        return bytes(self.scope.get("query_string", b"")).decode("latin-1")

    async def read_body(self) -> bytes | None:
        chunks = []
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def run(self) -> None:
        try:
            await self._run()
        except Exception as exc:  # never a bare traceback: a failure of the test, and an answer
            self.mount.fail(ServerError(f"the loopback server could not handle an HTTP request: {exc!r}"))
            with contextlib.suppress(Exception):
                await self.respond_json(
                    500, error_body("rws_server_error", f"pytest-responses-ws: {exc!r}"), final=True
                )

    async def _run(self) -> None:
        mount = self.mount
        method = self.scope.get("method")
        if method != "POST":
            # The service answers other methods on this path with 405; a test that sends one
            # has a bug whatever its client does with the answer.
            below_mount = "/" + self.scope.get("path", "").split("/", 3)[-1]  # /rws/<mount>/...
            message = f"{method} {below_mount} is not allowed: the Responses API takes POST only here"
            mount.fail(ProtocolViolation(message))
            await self.respond_json(405, error_body("method_not_allowed", message))
            return
        body = await self.read_body()
        arrived_ns = mount.clock()
        if body is None:
            return
        connection_id, new_connection = mount.http_connection(self.scope, self.headers, arrived_ns)
        number = mount.next_http_request()
        where = f"HTTP request {number} (connection {connection_id})"
        mount.learn_request_secrets(self.headers, self._query())
        if mount.recorder is not None:
            # Keep-alive connections carry per-request credentials (with_options, extra_headers).
            mount.recorder.redactor.learn(self.headers)
            mount.recorder.redactor.learn_query(self._query())
        try:
            request = parse_json(body)
        except JsonTextError as exc:
            request = None
            problem = f"malformed request body on {where}: {exc}"
        else:
            shape = request_problem(request) if isinstance(request, dict) else "not a JSON object"
            problem = f"malformed request body on {where}: {shape}" if shape else ""
        if problem or not isinstance(request, dict):
            mount.fail(ProtocolViolation(problem))
            await self.respond_json(400, error_body("invalid_json", problem))
            return
        if mount.finished:
            await self.respond_json(
                409, error_body("rws_test_finished", "the test that owned this URL has finished")
            )
            return
        action = mount.on_create(
            TurnRequest(
                transport="http",
                connection=connection_id,
                request=request,
                raw=body,
                arrived_ns=arrived_ns,
                where=where,
                wants_stream=request.get("stream") is True,
                new_connection=new_connection,
                headers=self.headers,
                query=self._query(),
            )
        )
        if isinstance(action, PlayHttp):
            await self.replay(action)
        elif isinstance(action, FailTurn):
            if action.trace is not None:
                action.trace.terminal_ns = mount.clock()
            await self.respond_json(action.status, action.body)
        elif isinstance(action, RejectTurn):
            action.trace.terminal_ns = mount.clock()
            await self.respond_json(action.status, action.body)
        elif isinstance(action, Forward):
            # The client may stop reading (a fault, or an SDK raising at an ``error`` event)
            # before the body ends: the rest is still recorded, and the test's end waits for it.
            with mount.faulted_turn():
                await self.record(
                    request, action.body, arrived_ns, connection_id, action.trace, where, action.fault
                )
        elif isinstance(action, InjectFault):
            await self._refuse(action)

    # -- injected faults -------------------------------------------------------

    async def _refuse(self, action: InjectFault) -> None:
        """A fault strikes before the stream: an error status, or the connection dropped."""
        fault = action.injection
        if fault.first_event_s > 0:
            await asyncio.sleep(fault.first_event_s)  # bounded: MAX_DELAY_S
        action.trace.terminal_ns = self.mount.clock()
        if fault.ending == "answer" and fault.status is not None and fault.body is not None:
            await self.respond_json(
                fault.status,
                fault.body,
                headers=fault.headers,
            )
            return
        await self._drop()

    async def _drop(self) -> None:
        """Drop the connection now: before the status line, or with the body cut short."""
        self._fault_struck = True
        if drop_connection(self.send):
            await await_disconnect(self.receive)
        elif not self.started:
            await self.respond_json(502, error_body("rws_fault", "connection dropped (injected)"))

    async def _end_stream(self, fault: Injection) -> None:
        """End a stream as an injected fault says: cut it, or send its last event and end it."""
        if fault.ending == "event" and fault.sse is not None:
            self._fault_struck = True
            await self.send({"type": "http.response.body", "body": fault.sse.encode(), "more_body": True})
            await self.send({"type": "http.response.body", "body": b""})
            return
        await self._drop()

    async def _replay_faulted(self, action: PlayHttp, fault: Injection) -> None:
        """Replay a turn an injected fault rides on: delayed, then ended by the fault if it ends it."""
        answer, playback, schedule, trace = action.answer, action.playback, action.schedule, action.trace
        clock = self.mount.clock
        if not answer.stream:
            # A plain JSON answer has no events to strike between: the fault strikes before it.
            if fault.first_event_s > 0:
                await asyncio.sleep(fault.first_event_s)
            trace.terminal_ns = clock()
            if fault.interrupts:
                await self._drop()
            else:
                assert answer.body is not None
                await self.respond_json(answer.status, answer.body)
            return
        await self.start_response(
            200,
            [
                (b"content-type", SSE_CONTENT_TYPE),
                (b"cache-control", b"no-cache"),
                (b"x-request-id", self.mount.next_request_id().encode()),
            ],
        )
        started = clock()
        last = len(playback.frames) - 1
        injected = 0.0
        left = asyncio.ensure_future(self.receive())  # a client that leaves ends the answer
        try:
            for i, chunk in enumerate(playback.frames):
                if fault.after_events is not None and i >= fault.after_events:
                    break
                injected += wait_before(fault, i)
                delay = (schedule[i] if schedule is not None else 0.0) + injected - (clock() - started) / 1e9
                if delay > 0:
                    await asyncio.wait({left}, timeout=delay)
                if left.done():
                    return
                if i == last and not fault.interrupts:
                    trace.terminal_ns = clock()
                await self.send(
                    {"type": "http.response.body", "body": chunk.encode("utf-8"), "more_body": True}
                )
        finally:
            left.cancel()
        if fault.interrupts:
            trace.terminal_ns = clock()
            await self._end_stream(fault)
            return
        await self.send({"type": "http.response.body", "body": b""})

    async def _relay_faulted(self, fault: Injection, events: list[dict[str, Any]]) -> None:
        """Relay upstream events of a recorded turn a fault rides on, one SSE block each."""
        for data in events:
            if self._fault_struck:
                return  # the client has had the fault; the upstream's answer is still recorded
            if fault.after_events is not None and self._fault_sent >= fault.after_events:
                await self._end_stream(fault)
                return
            seconds = wait_before(fault, self._fault_sent)
            if seconds > 0:
                await asyncio.sleep(seconds)
            self._fault_sent += 1
            block = sse_block(data).encode("utf-8")
            await self.send({"type": "http.response.body", "body": block, "more_body": True})

    # -- replay ---------------------------------------------------------------

    async def replay(self, action: PlayHttp) -> None:
        if action.fault is not None:
            await self._replay_faulted(action, action.fault)
            return
        answer, playback, schedule, trace = action.answer, action.playback, action.schedule, action.trace
        # The terminal time is stamped before the answer's last bytes are handed over: once
        # the client has them, the test may read rws.turns.
        if not answer.stream:
            assert answer.body is not None
            if schedule:
                # Paced: the whole answer comes when its turn's last event would have.
                left = asyncio.ensure_future(self.receive())
                try:
                    await asyncio.wait({left}, timeout=schedule[-1])  # bounded: a checked schedule
                    if left.done():
                        return
                finally:
                    left.cancel()
            trace.terminal_ns = self.mount.clock()
            await self.respond_json(answer.status, answer.body, headers=answer.headers)
            return
        await self.start_response(
            200,
            [
                (b"content-type", SSE_CONTENT_TYPE),
                (b"cache-control", b"no-cache"),
                (b"x-request-id", self.mount.next_request_id().encode()),
            ],
        )
        if schedule is None:
            # Instant timing: the whole stream in one write (one ASGI message per event costs
            # several milliseconds on a turn with hundreds of events).
            trace.terminal_ns = self.mount.clock()
            await self.send({"type": "http.response.body", "body": playback.sse_body})
            return
        started = self.mount.clock()
        last = len(playback.frames) - 1
        # The request body has been read: the next message is the client leaving. A client
        # that stops reading early (break, close) ends the paced answer, not the run's end.
        left = asyncio.ensure_future(self.receive())
        try:
            for i, chunk in enumerate(playback.frames):
                delay = schedule[i] - (self.mount.clock() - started) / 1e9
                if delay > 0:
                    await asyncio.wait({left}, timeout=delay)
                if left.done():
                    return
                if i == last:
                    trace.terminal_ns = self.mount.clock()
                await self.send(
                    {"type": "http.response.body", "body": chunk.encode("utf-8"), "more_body": True}
                )
            await self.send({"type": "http.response.body", "body": b""})
        finally:
            left.cancel()

    # -- recording --------------------------------------------------------------

    async def record(
        self,
        request: dict[str, Any],
        outgoing: bytes,
        arrived_ns: int,
        connection_id: int,
        trace: TurnTrace,
        where: str,
        fault: Injection | None = None,
    ) -> None:
        """Proxy the request upstream (as ``outgoing``), relaying its answer as it arrives and recording it.

        A ``fault`` meets the client while the upstream's answer is recorded whole.
        """
        mount = self.mount
        recorder = mount.recorder
        assert recorder is not None
        url = http_url(mount.settings.upstream) + "/responses"
        query = self._query()
        if query:
            url += "?" + query
        headers = [*forwarded_headers(self.headers), ("accept-encoding", "identity")]  # bytes as they arrive
        pending = recorder.start_turn(connection_id, request, arrived_ns, transport="http")
        settings = mount.settings
        first_event = first_event_bound(settings.upstream_first_event_timeout)
        idle = idle_bound(settings.upstream_idle_timeout)
        try:
            async with upstream_http.post(
                url, outgoing, headers, first_event=first_event, idle=idle
            ) as upstream:
                content_type = upstream.headers.get("content-type", "")
                if upstream.status_code == 200 and content_type.startswith("text/event-stream"):
                    await self._relay_stream(upstream, pending, trace, idle, fault)
                    return
                payload = await upstream.aread()
                recorder.discard(pending)
                if upstream.status_code in AUTH_FAILURE_STATUSES:
                    # The client sees the refusal as it is; the cassette gets nothing.
                    mount.recording_broken(auth_failure(upstream.status_code, where, mount.path))
                    mount.forward_ended(trace)
                    await self._relay_plain(upstream, payload)
                    return
                try:
                    parsed = json.loads(payload)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    status = upstream.status_code
                    turn = recorder.store(
                        pending,
                        outcome="completed" if status < 400 else "http_error",
                        status=status,
                        body=parsed,
                        headers=upstream.headers,
                    )
                    mount.on_recorded(turn, trace)
                else:
                    mount.forward_ended(trace, outcome=None)
                if fault is not None:
                    # A plain JSON answer has no events to strike between: the fault strikes before it.
                    if fault.first_event_s > 0:
                        await asyncio.sleep(fault.first_event_s)
                    if fault.interrupts:
                        await self._drop()
                        return
                await self._relay_plain(upstream, payload)
        except UpstreamStall as exc:
            recorder.discard(pending)
            problem = describe_stall(where, exc.bound, self.relayed_events, unfinished=exc.unfinished)
            mount.recording_broken(
                RecordingError(f"recording failed: {problem} Nothing was written; {mount.path} is unchanged.")
            )
            mount.forward_ended(trace)
            short = (
                f"pytest-responses-ws: the upstream stopped answering {where} "
                f"({exc.bound.setting} = {exc.bound.seconds:g} s); see the test report"
            )
            await self._fail_answer(504, UPSTREAM_TIMEOUT_ERROR_CODE, short)
        except UpstreamHttpError as exc:
            recorder.discard(pending)
            mount.recording_broken(
                RecordingError(
                    f"recording failed: the upstream request to {shown_url(url)} failed: {mount.mask(repr(exc))}. "
                    f"Nothing was written; {mount.path} is unchanged."
                )
            )
            mount.forward_ended(trace)
            await self._fail_answer(
                502, "rws_upstream_unavailable", f"upstream failed: {mount.mask(repr(exc))}"
            )
        except Exception as exc:  # reading the answer raised: reported, and no half-recorded turn kept
            recorder.discard(pending)
            mount.recording_broken(
                ServerError(
                    f"recording failed: the loopback server could not handle the upstream's answer to "
                    f"{where} (after {self.relayed_events} events): {mount.mask(repr(exc))}. "
                    f"Nothing was written; {mount.path} is unchanged."
                )
            )
            mount.forward_ended(trace)
            await self._fail_answer(
                500,
                "rws_server_error",
                "pytest-responses-ws: the loopback server could not handle the upstream's answer; "
                "see the test report",
            )

    async def _fail_answer(self, status: int, code: str, message: str) -> None:
        """Tell the client the answer failed, in whatever part of the answer it is in.

        Before the status line: a JSON error with ``status``. Mid-stream: an SSE ``error``
        event in the service's nested form (the openai SDK raises ``APIError`` on it),
        then the end of the body, so no client keeps reading.
        """
        with contextlib.suppress(OSError, RuntimeError):
            if not self.started:
                await self.respond_json(
                    status, error_body(code, message, error_type="server_error"), final=True
                )
                return
            event = {
                "type": "error",
                "sequence_number": self.relayed_events,
                "error": error_body(code, message, error_type="server_error")["error"],
            }
            block = sse_block(event).encode("utf-8")
            await self.send({"type": "http.response.body", "body": block, "more_body": True})
            await self.send({"type": "http.response.body", "body": b""})

    async def _relay_plain(self, upstream: UpstreamResponse, payload: bytes) -> None:
        headers = [(b"content-type", upstream.headers.get("content-type", "application/json").encode())]
        request_id = upstream.headers.get("x-request-id") or self.mount.next_request_id()
        headers.append((b"x-request-id", request_id.encode()))
        # The headers a recorded error keeps, so the client acts while recording as on replay.
        kept = kept_response_headers(upstream.status_code, upstream.headers)
        headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in kept.items())
        await self.start_response(upstream.status_code, headers)
        await self.send({"type": "http.response.body", "body": payload})

    async def _relay_stream(
        self, upstream: UpstreamResponse, pending: Any, trace: TurnTrace, idle: Bound, fault: Injection | None
    ) -> None:
        mount = self.mount
        recorder = mount.recorder
        assert recorder is not None
        headers = [(b"content-type", SSE_CONTENT_TYPE), (b"cache-control", b"no-cache")]
        request_id = upstream.headers.get("x-request-id") or self.mount.next_request_id()
        headers.append((b"x-request-id", request_id.encode()))
        await self.start_response(200, headers)
        parser = SseParser()
        loop = asyncio.get_running_loop()
        # The idle bound is between *events*: bytes that are none (a gateway's keep-alive
        # comments while the model is stalled) do not extend it.
        event_due = loop.time() + idle.seconds
        chunks = upstream.aiter_bytes()
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), max(0.0, event_due - loop.time()))
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise UpstreamStall(idle, "the upstream") from None
            at_ns = mount.clock()
            events = parser.feed(chunk)
            if events:
                event_due = loop.time() + idle.seconds
            for data in events:
                turn = recorder.on_http_event(pending, data, at_ns)
                if turn is not None:
                    # Stored (and measured) before the client sees the terminal event: the
                    # test may end, or read rws.turns, as soon as it does.
                    mount.on_recorded(turn, trace)
                self.relayed_events += 1
            if fault is not None:
                await self._relay_faulted(fault, events)
                continue
            await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
        if fault is not None and fault.interrupts and not self._fault_struck:
            await self._end_stream(fault)  # the turn had fewer events: the ending follows its last
        if not self._fault_struck:
            await self.send({"type": "http.response.body", "body": b""})


class SseParser:
    """Incremental SSE parser yielding each event's ``data`` decoded as JSON."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buffer += chunk
        events: list[dict[str, Any]] = []
        while True:
            # Events end at a blank line; servers may use \n or \r\n.
            end, size = _block_end(self._buffer)
            if end < 0:
                return events
            block, self._buffer = self._buffer[:end], self._buffer[end + size :]
            data_lines = [
                line[5:].lstrip(b" ")
                for line in block.replace(b"\r\n", b"\n").split(b"\n")
                if line.startswith(b"data:")
            ]
            if not data_lines:
                continue
            try:
                data = json.loads(b"\n".join(data_lines))
            except ValueError:
                continue
            if isinstance(data, dict):
                events.append(data)


def _block_end(buffer: bytes) -> tuple[int, int]:
    candidates = [(buffer.find(sep), len(sep)) for sep in (b"\n\n", b"\r\n\r\n")]
    found = [c for c in candidates if c[0] >= 0]
    return min(found) if found else (-1, 0)
