"""A scripted Responses upstream on loopback: each request gets the answer a test wrote for it.

The simulator answers like a model; this one answers like a test needs, error shapes and
headers included, over HTTP (an SSE stream or a JSON body with any status and headers)
and WebSocket mode (frames for each ``response.create``). Answers are found by the
request's ``input`` text and used in order, the last one repeating, so tests that run
in any order each get their own sequence. SSE is written the way the service writes it
(``event: <type>``, compact JSON, no ``[DONE]``), so a recording of it can be compared
with its replay byte for byte.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pytest_responses_ws.server.runner import LoopbackRunner, Receive, Scope, Send


def compact(data: Any) -> str:
    """JSON as the service writes it: no spaces, UTF-8 as is."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def sse_bytes(events: Sequence[Mapping[str, Any]]) -> bytes:
    """An SSE body as the service writes it."""
    return "".join(f"event: {e['type']}\ndata: {compact(e)}\n\n" for e in events).encode("utf-8")


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``events`` (an SSE stream, or WebSocket frames), or a JSON ``body``."""

    events: tuple[dict[str, Any], ...] = ()
    status: int = 200
    body: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()


class ScriptedUpstream:
    """An ASGI app answering ``/v1/responses`` over both transports from a script."""

    def __init__(self, replies: Mapping[str, Sequence[Reply]]) -> None:
        self._replies = {key: list(answers) for key, answers in replies.items()}
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()
        #: (transport, input) of each request, in arrival order.
        self.seen: list[tuple[str, str]] = []

    def reply_for(self, transport: str, request: Mapping[str, Any]) -> Reply:
        key = request.get("input")
        if not isinstance(key, str) or key not in self._replies:
            message = f"no scripted reply for input {key!r}"
            error = {"type": "invalid_request_error", "code": "unscripted", "message": message, "param": None}
            return Reply(status=400, body={"error": error})
        with self._lock:
            self.seen.append((transport, key))
            used = self._used.get(key, 0)
            self._used[key] = used + 1
            answers = self._replies[key]
            return answers[min(used, len(answers) - 1)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(receive, send)

    async def _http(self, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        reply = self.reply_for("http", json.loads(b"".join(chunks)))
        extra = [(name.encode(), value.encode()) for name, value in reply.headers]
        if reply.body is not None:
            payload = compact(reply.body).encode("utf-8")
            headers = [(b"content-type", b"application/json"), *extra]
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), *extra]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for event in reply.events:  # one chunk per event, as the service streams them
            await send({"type": "http.response.body", "body": sse_bytes([event]), "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _websocket(self, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            request = json.loads(message.get("text") or message.get("bytes") or b"{}")
            if request.get("type") != "response.create":
                continue
            reply = self.reply_for("ws", request)
            events = reply.events
            if reply.body is not None:  # an HTTP-only reply: the service's WebSocket error instead
                events = ({"type": "error", "status": reply.status, "error": reply.body["error"]},)
            for event in events:
                await send({"type": "websocket.send", "text": compact(event)})


@dataclass(frozen=True)
class ScriptedServer:
    """A running :class:`ScriptedUpstream`; ``url`` is what ``--rws-upstream`` takes."""

    app: ScriptedUpstream
    runner: LoopbackRunner

    @property
    def url(self) -> str:
        return f"http://{self.runner.host}:{self.runner.port}/v1"


@contextmanager
def serve_scripted(replies: Mapping[str, Sequence[Reply]]) -> Iterator[ScriptedServer]:
    """Serve a scripted upstream on ``127.0.0.1`` for the ``with`` block."""
    app = ScriptedUpstream(replies)
    with LoopbackRunner(app, name="rws-scripted") as runner:
        yield ScriptedServer(app, runner)
