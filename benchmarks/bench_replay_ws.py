#!/usr/bin/env python
"""Per-turn cost of the replay server against a minimal server sending the same frames.

Two servers run in this process, each under ``LoopbackRunner`` (same uvicorn config:
``ws="websockets-sansio"``, no per-message deflate), so the only difference is the app:

* ``baseline``: a few lines of plain ASGI that answer the k-th request of a connection
  with turn k's pre-encoded frames. No parsing, no matching, no bookkeeping.
* ``replay``: the real ``LoopbackServer`` with one ``Mount`` (record mode ``none``) per
  session, holding the same cassette, as a test would have.

The workload is a chained tool loop built with the simulator: turn k continues turn k-1
through ``previous_response_id`` with ``store: false`` and sends only its new
``function_call_output`` item; every request carries instructions and three tools, as an
agent's requests do. The cassette goes through the codec (encode, decode) first, so the
replay server works on what it would load from disk.

Sessions alternate between the servers (A B B A ...) in the same run, so drift in machine
load lands on both. Each client variant is measured in its own block:

* ``sdk``       the openai SDK, sync client: one turn = ``conn.response.create(...)`` up to the
                terminal event as the SDK yields it. This is the 1.05x target.
* ``sdk-async`` the same with ``AsyncOpenAI``.
* ``raw``       a bare ``websockets`` sync client (HTTP: ``http.client``): no SDK parsing, so the
                server's share of the turn is larger and the ratio stricter.
* ``server``    the raw client again, but the reported time is measured inside the server
                (request received -> terminal frame handed to the transport): the server's
                own cost, with the network and the client taken out.

Run ``python benchmarks/bench_replay_ws.py --help`` for the options; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import http.client
import itertools
import json
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import pytest_responses_ws  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import openai
import uvicorn
import websockets.version
from openai import AsyncOpenAI, OpenAI
from websockets.sync.client import connect as ws_connect

from pytest_responses_ws import __version__ as RWS_VERSION
from pytest_responses_ws.cassette.codec import decode_cassette, encode_cassette
from pytest_responses_ws.cassette.model import Cassette, ConnectionRecord, RecordedEvent, RecordedWith, Turn
from pytest_responses_ws.config import RecordMode, Settings
from pytest_responses_ws.core.replay import Playback
from pytest_responses_ws.server.app import LoopbackServer
from pytest_responses_ws.server.mount import Mount
from pytest_responses_ws.server.prepared import ReplayCache
from pytest_responses_ws.server.runner import LoopbackRunner, Receive, Scope, Send
from pytest_responses_ws.sim import ConnectionState, FunctionCall, Script, Simulator, Step, Text

#: The issue's target: replay per-turn median within this factor of the baseline's (SDK client).
TARGET_RATIO = 1.05
#: Bound on every blocking wait, so a misbehaving server fails the run instead of hanging it.
WAIT_S = 10.0
TERMINAL_TYPES = ("response.completed", "response.failed", "response.incomplete", "response.done", "error")
#: Terminal frames as they start on the wire (compact JSON, ``type`` first).
TERMINAL_PREFIXES = tuple(f'{{"type":"{name}"' for name in TERMINAL_TYPES)
API_KEY = "sk-bench-not-a-key"
MODEL = "gpt-5.2"

ns = time.perf_counter_ns


class BenchError(RuntimeError):
    """The run cannot produce a valid measurement (a miss, a wrong answer, a server error)."""


# --------------------------------------------------------------------------- workload

INSTRUCTIONS = (
    "You are a careful travel assistant. Answer only from tool results; never guess weather, "
    "prices or opening hours. When the user asks about several cities, call get_weather once per "
    "city, one call at a time, and wait for each result before the next call. Use search_docs for "
    "questions about local rules or events and cite the document id you used. Use run_sql only for "
    "questions about bookings, with read-only SELECT statements, never more than one statement per "
    "call. Keep answers short: one paragraph, then a bulleted summary with one bullet per city. "
    "If a tool fails, say which one and continue with the others. Temperatures are in Celsius."
)

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for one city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Lisbon"},
                "step": {"type": "integer", "description": "Call number within this request"},
            },
            "required": ["city", "step"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "search_docs",
        "description": "Full-text search over the travel knowledge base.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            "required": ["query", "limit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "run_sql",
        "description": "Run one read-only SELECT against the bookings database.",
        "parameters": {
            "type": "object",
            "properties": {"sql": {"type": "string"}},
            "required": ["sql"],
            "additionalProperties": False,
        },
        "strict": True,
    },
]

FINAL_TEXT = (
    "Here is the weather in every city you asked about, taken from the tool results. Most cities "
    "are mild and dry today; two expect light rain in the evening, so bring a jacket there. "
    "No city reports extreme heat or storms."
)


def agent_script(turns: int) -> Script:
    """``turns - 1`` tool-call steps (every third with a short preamble message), then a final text."""
    steps: list[Step] = []
    for index in range(turns - 1):
        call = FunctionCall("get_weather", {"city": f"City {index}", "step": index})
        if index % 3 == 1:
            steps.append(Step((Text(f"Checking city {index} next."), call)))
        else:
            steps.append(Step((call,)))
    steps.append(Step((Text(FINAL_TEXT),)))
    return Script(steps)


@dataclass(frozen=True)
class Workload:
    """One recorded session and what a client sends to replay it, in both transports."""

    cassette: Cassette
    cassette_path: Path
    #: WebSocket client frames as dicts (``type: response.create``, chained ids, only new items).
    ws_requests: tuple[dict[str, Any], ...]
    #: The same turns over HTTP: ``store: false`` cannot chain, so each body resends the history.
    http_requests: tuple[dict[str, Any], ...]
    #: Per turn, the WebSocket frames exactly as the replay server sends them.
    frames: tuple[tuple[str, ...], ...]
    response_ids: tuple[str, ...]

    @property
    def turns(self) -> int:
        return len(self.frames)

    def describe(self) -> dict[str, Any]:
        frame_counts = [len(f) for f in self.frames]
        return {
            "turns": self.turns,
            "frames_per_turn_median": statistics.median(frame_counts),
            "frames_per_turn_range": [min(frame_counts), max(frame_counts)],
            "server_bytes_per_turn_median": statistics.median(
                sum(len(x.encode()) for x in f) for f in self.frames
            ),
            "ws_request_bytes_median": statistics.median(len(json.dumps(r)) for r in self.ws_requests),
            "http_request_bytes_last": len(json.dumps(self.http_requests[-1])),
            "cassette_bytes": self.cassette_path.stat().st_size,
        }


def build_workload(turns: int, directory: Path, seed: int = 0) -> Workload:
    """Simulate a ``turns``-turn chained tool loop and store it as a cassette in ``directory``."""
    if turns < 1:
        raise SystemExit("--turns must be 1 or more")
    simulator = Simulator(agent_script(turns), model_default=MODEL, seed=seed)
    connection = ConnectionState()
    common = {"model": MODEL, "instructions": INSTRUCTIONS, "tools": TOOLS, "store": False}
    user = {"role": "user", "content": f"What is the weather in these {turns - 1} cities, one by one?"}
    history: list[dict[str, Any]] = [user]
    new_items: list[dict[str, Any]] = [user]
    previous: str | None = None
    ws_requests, http_requests, recorded, response_ids = [], [], [], []
    for index in range(turns):
        request: dict[str, Any] = {"type": "response.create", **common, "input": new_items}
        if previous is not None:
            request["previous_response_id"] = previous
        events = simulator.respond(request, connection=connection)
        final = events[-1]
        if final.get("type") != "response.completed":
            raise BenchError(f"the simulator refused turn {index}: {final}")
        response = final["response"]
        # Realistic-looking offsets; replay runs with instant timing, so they are not used.
        recorded.append(
            Turn(
                request=request,
                events=tuple(RecordedEvent(round(20.0 + 4.0 * i, 3), e) for i, e in enumerate(events)),
                transport="ws",
                connection=0,
                started_at_ms=round(100.0 * index, 3),
            )
        )
        ws_requests.append(request)
        http_requests.append({**common, "input": list(history), "stream": True})
        response_ids.append(response["id"])
        calls = [item for item in response["output"] if item.get("type") == "function_call"]
        outputs = [
            {
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": json.dumps({"city": f"City {index}", "temp_c": 12 + index % 15, "sky": "clear"}),
            }
            for call in calls
        ]
        history += [*response["output"], *outputs]
        new_items, previous = outputs, response["id"]
    cassette = Cassette(
        turns=tuple(recorded),
        recorded_with=RecordedWith(
            plugin_version=RWS_VERSION, transport="ws", upstream_host="api.openai.com", user_agent="bench"
        ),
        recorded_at="2026-01-01T00:00:00+00:00",
        connections=(ConnectionRecord(id=0, transport="ws", opened_at_ms=0.0, handshake_ms=80.0),),
    )
    path = directory / "bench_chained_tool_loop.json"
    path.write_text(encode_cassette(cassette), encoding="utf-8")
    loaded = decode_cassette(path.read_text(encoding="utf-8"), path)
    frames = tuple(Playback.for_websocket(turn, None).frames for turn in loaded.turns)
    return Workload(loaded, path, tuple(ws_requests), tuple(http_requests), frames, tuple(response_ids))


# --------------------------------------------------------------------------- servers


class BaselineApp:
    """The least a server can do: answer request k of a connection with turn k's frames.

    WebSocket: every received frame is answered with the next turn's pre-encoded frames.
    HTTP (for ``--transport http``): request k under a session path gets turn k's events as
    SSE, written the way the replay writes an instant turn: the whole stream in one body write
    (``per_event_writes``: one body chunk per event, the first version's baseline, kept so its
    figures stay comparable). Neither parses nor matches anything.
    """

    def __init__(self, workload: Workload, per_event_writes: bool = False) -> None:
        self.frames = workload.frames
        blocks = tuple(
            tuple(f"event: {json.loads(frame)['type']}\ndata: {frame}\n\n".encode() for frame in turn)
            for turn in workload.frames
        )
        self.sse = blocks if per_event_writes else tuple((b"".join(turn),) for turn in blocks)
        self._http_turns: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _websocket(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        frames = self.frames
        turn = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                for frame in frames[turn % len(frames)]:
                    await send({"type": "websocket.send", "text": frame})
                turn += 1
        except OSError:  # the client went away mid-turn
            return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = message.get("more_body", False)
        key = scope["path"]
        turn = self._http_turns.get(key, 0)
        self._http_turns[key] = turn + 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                # The headers the replay server sends, so both write the same bytes.
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-request-id", b"req_bench0000000000000000"),
                ],
            }
        )
        chunks = self.sse[turn % len(self.sse)]
        for chunk in chunks[:-1]:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": chunks[-1], "more_body": False})


class Probe:
    """Wraps either app identically. Pass-through (per connection) unless ``active``.

    Active, it times each turn inside the server: from ``receive()`` returning the request
    (a WebSocket frame, or the last HTTP body chunk) to ``send()`` returning for the terminal
    frame (WebSocket) or the end of the body (HTTP).
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Any]) -> None:
        self.app = app
        self.active = False
        self.samples: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.active or scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        started: list[int] = []
        samples = self.samples

        async def timed_receive() -> Any:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive" or (kind == "http.request" and not message.get("more_body")):
                started.append(ns())
            return message

        async def timed_send(message: Any) -> None:
            await send(message)
            kind = message["type"]
            ended = (
                kind == "websocket.send" and (message.get("text") or "").startswith(TERMINAL_PREFIXES)
            ) or (kind == "http.response.body" and not message.get("more_body"))
            if ended and started:
                samples.append(ns() - started.pop(0))

        await self.app(scope, timed_receive, timed_send)


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    websocket_base_url: str


class Target:
    """A server under test: hands out one endpoint per session."""

    name: str
    probe: Probe

    def session(self) -> contextlib.AbstractContextManager[Endpoint]:
        raise NotImplementedError

    def call_soon(self, callback: Callable[[], object]) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class BaselineTarget(Target):
    name = "baseline"

    def __init__(self, workload: Workload, per_event_writes: bool = False) -> None:
        self.probe = Probe(BaselineApp(workload, per_event_writes))
        self.runner = LoopbackRunner(self.probe, name="rws-bench-baseline").start()
        self._ids = itertools.count(1)

    @contextlib.contextmanager
    def session(self) -> Iterator[Endpoint]:
        base = f"http://{self.runner.host}:{self.runner.port}/base/s{next(self._ids)}/v1"
        yield Endpoint(base, "ws" + base[len("http") :])

    def call_soon(self, callback: Callable[[], object]) -> None:
        self.runner.call_soon(callback)

    def stop(self) -> None:
        self.runner.stop()


class ReplayTarget(Target):
    """The real loopback server; one mount per session, as one test would get."""

    name = "replay"

    def __init__(self, workload: Workload, transport: str) -> None:
        self.workload = workload
        self.transport = transport
        self.server = LoopbackServer()
        # Same wrapper as the baseline (pass-through unless the server-side pass is running).
        self.probe = Probe(self.server.app)
        self.server.runner = LoopbackRunner(self.probe, name="rws-loopback")
        self.server.start()
        self.settings = Settings(record_mode=RecordMode.NONE)
        # As a pytest run: the cassette is read and prepared by the first session (test) only.
        self.cassettes = ReplayCache()

    @contextlib.contextmanager
    def session(self) -> Iterator[Endpoint]:
        source = self.cassettes.load(self.workload.cassette_path)
        mount = Mount(
            self.server.new_mount_id(),
            self.settings,
            self.workload.cassette_path,
            source.cassette,
            record_command="python benchmarks/bench_replay_ws.py",
            # As the plugin does: frames are encoded in setup, for the test's transport.
            transport="ws" if self.transport == "ws" else "http",
            prepared=source.prepared,
        )
        self.server.add(mount)
        ok = False
        try:
            yield Endpoint(self.server.base_url(mount), self.server.websocket_base_url(mount))
            ok = True
        finally:
            failures = self.server.remove(mount)
            if failures and ok:
                raise BenchError(f"the replay server reported: {failures[0]}")

    def call_soon(self, callback: Callable[[], object]) -> None:
        self.server.runner.call_soon(callback)

    def stop(self) -> None:
        self.server.stop()


# --------------------------------------------------------------------------- clients


@dataclass
class SessionResult:
    turn_ns: list[int]
    #: Client connect (WebSocket handshake) time, outside the per-turn figures.
    connect_ns: int
    #: Server-side session setup (the replay mount: index build), outside the per-turn figures.
    setup_ns: int = 0


def _check_final(
    target: str, turn: int, event_type: str, response_id: str | None, expected: str, detail: Any
) -> None:
    if event_type != "response.completed" or response_id != expected:
        raise BenchError(
            f"{target}: turn {turn} ended with {event_type} (response id {response_id!r}, expected {expected!r}): "
            f"{str(detail)[:600]}"
        )


def _sdk_params(request: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in request.items() if key != "type"}


def sdk_ws_session(target: str, endpoint: Endpoint, workload: Workload) -> SessionResult:
    client = OpenAI(
        base_url=endpoint.base_url,
        websocket_base_url=endpoint.websocket_base_url,
        api_key=API_KEY,
        max_retries=0,
        timeout=WAIT_S,
    )
    params = [_sdk_params(r) for r in workload.ws_requests]
    turn_ns: list[int] = []
    try:
        started = ns()
        with client.responses.connect() as conn:
            connect_ns = ns() - started
            events = iter(conn)
            for index, create in enumerate(params):
                t0 = ns()
                conn.response.create(**create)
                for event in events:
                    if event.type in TERMINAL_TYPES:
                        break
                t1 = ns()
                response = getattr(event, "response", None)
                _check_final(
                    target,
                    index,
                    event.type,
                    getattr(response, "id", None),
                    workload.response_ids[index],
                    event,
                )
                turn_ns.append(t1 - t0)
    finally:
        client.close()
    return SessionResult(turn_ns, connect_ns)


async def _sdk_ws_session_async(target: str, endpoint: Endpoint, workload: Workload) -> SessionResult:
    client = AsyncOpenAI(
        base_url=endpoint.base_url,
        websocket_base_url=endpoint.websocket_base_url,
        api_key=API_KEY,
        max_retries=0,
        timeout=WAIT_S,
    )
    params = [_sdk_params(r) for r in workload.ws_requests]
    turn_ns: list[int] = []
    try:
        started = ns()
        async with client.responses.connect() as conn:
            connect_ns = ns() - started
            events = aiter(conn)
            for index, create in enumerate(params):
                t0 = ns()
                await conn.response.create(**create)
                async for event in events:
                    if event.type in TERMINAL_TYPES:
                        break
                t1 = ns()
                response = getattr(event, "response", None)
                _check_final(
                    target,
                    index,
                    event.type,
                    getattr(response, "id", None),
                    workload.response_ids[index],
                    event,
                )
                turn_ns.append(t1 - t0)
    finally:
        await client.close()
    return SessionResult(turn_ns, connect_ns)


def raw_ws_session(target: str, endpoint: Endpoint, workload: Workload) -> SessionResult:
    texts = [json.dumps(r) for r in workload.ws_requests]
    turn_ns: list[int] = []
    started = ns()
    # The SDK's options: no compression offered, no size limit.
    with ws_connect(
        endpoint.websocket_base_url + "/responses",
        additional_headers={"Authorization": f"Bearer {API_KEY}"},
        compression=None,
        max_size=None,
        open_timeout=WAIT_S,
    ) as ws:
        connect_ns = ns() - started
        for index, text in enumerate(texts):
            t0 = ns()
            ws.send(text)
            while True:
                frame = str(ws.recv(timeout=WAIT_S))  # text frames: already str
                if frame.startswith(TERMINAL_PREFIXES):
                    break
            t1 = ns()
            expected = workload.response_ids[index]
            ok = frame.startswith('{"type":"response.completed"') and expected in frame[:200]
            _check_final(
                target, index, "response.completed" if ok else "?", expected if ok else None, expected, frame
            )
            turn_ns.append(t1 - t0)
    return SessionResult(turn_ns, connect_ns)


def sdk_http_session(target: str, endpoint: Endpoint, workload: Workload) -> SessionResult:
    client = OpenAI(base_url=endpoint.base_url, api_key=API_KEY, max_retries=0, timeout=WAIT_S)
    turn_ns: list[int] = []
    try:
        for index, body in enumerate(workload.http_requests):
            t0 = ns()
            stream = client.responses.create(**body)
            final: Any = None
            with stream:
                for event in stream:
                    if final is None and event.type in TERMINAL_TYPES:
                        t1 = ns()
                        final = event
                # Drained to the end (outside the timing), as a plain ``for event in stream`` does,
                # so the keep-alive connection is reused for the next turn.
            event = final if final is not None else event
            response = getattr(event, "response", None)
            _check_final(
                target, index, event.type, getattr(response, "id", None), workload.response_ids[index], event
            )
            turn_ns.append(t1 - t0)
    finally:
        client.close()
    return SessionResult(turn_ns, 0)


async def _sdk_http_session_async(target: str, endpoint: Endpoint, workload: Workload) -> SessionResult:
    client = AsyncOpenAI(base_url=endpoint.base_url, api_key=API_KEY, max_retries=0, timeout=WAIT_S)
    turn_ns: list[int] = []
    try:
        for index, body in enumerate(workload.http_requests):
            t0 = ns()
            stream = await client.responses.create(**body)
            final: Any = None
            async with stream:
                async for event in stream:
                    if final is None and event.type in TERMINAL_TYPES:
                        t1 = ns()
                        final = event
            event = final if final is not None else event
            response = getattr(event, "response", None)
            _check_final(
                target, index, event.type, getattr(response, "id", None), workload.response_ids[index], event
            )
            turn_ns.append(t1 - t0)
    finally:
        await client.close()
    return SessionResult(turn_ns, 0)


def raw_http_session(target: str, endpoint: Endpoint, workload: Workload) -> SessionResult:
    rest = endpoint.base_url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    bodies = [json.dumps(b).encode() for b in workload.http_requests]
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {API_KEY}",
        "Accept": "text/event-stream",
    }
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
    turn_ns: list[int] = []
    try:
        started = ns()
        conn.connect()
        connect_ns = ns() - started
        for index, body in enumerate(bodies):
            t0 = ns()
            conn.request("POST", f"/{path}/responses", body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            t1 = ns()
            expected = workload.response_ids[index]
            tail = data[data.rfind(b"\nevent: ") :] if b"\nevent: " in data else data
            ok = (
                reply.status == 200
                and tail.startswith(b"\nevent: response.completed")
                and expected.encode() in tail
            )
            _check_final(
                target,
                index,
                "response.completed" if ok else f"HTTP {reply.status}",
                expected if ok else None,
                expected,
                data[-600:],
            )
            turn_ns.append(t1 - t0)
    finally:
        conn.close()
    return SessionResult(turn_ns, connect_ns)


class AsyncDriver:
    """Runs an async session function on one persistent event loop (created lazily)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, target: str, endpoint: Endpoint, workload: Workload) -> SessionResult:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
        result: SessionResult = self.loop.run_until_complete(self.fn(target, endpoint, workload))
        return result

    def close(self) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self.loop = None


Driver = Callable[[str, Endpoint, Workload], SessionResult]

#: (transport, client) -> session function. ``server`` reuses ``raw`` with the probe on.
DRIVERS: dict[tuple[str, str], Callable[[], Driver]] = {
    ("ws", "sdk"): lambda: sdk_ws_session,
    ("ws", "sdk-async"): lambda: AsyncDriver(_sdk_ws_session_async),
    ("ws", "raw"): lambda: raw_ws_session,
    ("http", "sdk"): lambda: sdk_http_session,
    ("http", "sdk-async"): lambda: AsyncDriver(_sdk_http_session_async),
    ("http", "raw"): lambda: raw_http_session,
}
CLIENTS = ("sdk", "sdk-async", "raw", "server")
CLIENT_NOTES = {
    "sdk": "openai SDK, sync (the target)",
    "sdk-async": "openai SDK, AsyncOpenAI",
    "raw": "raw client, no SDK parsing",
    "server": "inside the server only",
}


# --------------------------------------------------------------------------- measurement


@dataclass
class Block:
    """Every session of one client variant: ``rounds[r][target]`` is that round's session."""

    client: str
    rounds: list[dict[str, SessionResult]] = field(default_factory=list)
    loadavg: list[float] | None = None

    def turns(self, target: str, rounds: Sequence[int] | None = None, first: bool | None = None) -> list[int]:
        picked = self.rounds if rounds is None else [self.rounds[r] for r in rounds]
        out: list[int] = []
        for round_ in picked:
            values = round_[target].turn_ns
            if first is True:
                values = values[:1]
            elif first is False:
                values = values[1:]
            out.extend(values)
        return out


def run_session(target: Target, driver: Driver, workload: Workload, probe: bool) -> SessionResult:
    gc.collect()
    target.probe.active = probe
    target.probe.samples.clear()
    try:
        started = ns()
        with target.session() as endpoint:
            setup_ns = ns() - started
            result = driver(target.name, endpoint, workload)
            if probe:
                # The server notes a turn once its last send returns, which can be just after
                # the client has seen the terminal frame.
                deadline = time.monotonic() + WAIT_S
                while len(target.probe.samples) < workload.turns and time.monotonic() < deadline:
                    time.sleep(0.0005)
    finally:
        target.probe.active = False
    result.setup_ns = setup_ns
    if probe:
        if len(target.probe.samples) != workload.turns:
            raise BenchError(
                f"{target.name}: server probe saw {len(target.probe.samples)} turns, not {workload.turns}"
            )
        result = SessionResult(list(target.probe.samples), result.connect_ns, setup_ns)
    return result


def measure(
    client: str,
    transport: str,
    targets: Sequence[Target],
    workload: Workload,
    sessions: int,
    warmup: int,
    log: Callable[[str], None],
) -> Block:
    driver = DRIVERS[(transport, "raw" if client == "server" else client)]()
    probe = client == "server"
    block = Block(client)
    started = time.monotonic()
    try:
        for _ in range(warmup):
            for target in targets:
                run_session(target, driver, workload, probe)
        for index in range(sessions):
            order = targets if index % 2 == 0 else list(reversed(targets))  # A B, B A, ...
            block.rounds.append({t.name: run_session(t, driver, workload, probe) for t in order})
    finally:
        close = getattr(driver, "close", None)
        if close is not None:
            close()
    block.loadavg = loadavg()
    log(
        f"  {client:<10} {sessions} sessions x {workload.turns} turns per server in "
        f"{time.monotonic() - started:.1f}s (load avg {block.loadavg})"
    )
    return block


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def summary_us(values_ns: Sequence[int]) -> dict[str, Any]:
    values = sorted(v / 1000.0 for v in values_ns)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median_us": round(statistics.median(values), 2),
        "p95_us": round(percentile(values, 95), 2),
        "mean_us": round(statistics.fmean(values), 2),
        "min_us": round(values[0], 2),
        "p5_us": round(percentile(values, 5), 2),
        "max_us": round(values[-1], 2),
    }


def _ratio(
    block: Block, baseline: str, other: str, rounds: Sequence[int], stat: Callable[[list[float]], float]
) -> float:
    base = stat(sorted(block.turns(baseline, rounds)))
    return stat(sorted(block.turns(other, rounds))) / base if base else float("nan")


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _p95(values: list[float]) -> float:
    return percentile(values, 95)


def compare(
    block: Block, resamples: int, seed: int, baseline: str = "baseline", other: str = "replay"
) -> dict[str, Any]:
    """Ratios other/baseline, with a paired bootstrap over rounds (95% interval)."""
    rounds = list(range(len(block.rounds)))
    rng = random.Random(seed)
    boot_median: list[float] = []
    boot_p95: list[float] = []
    for _ in range(resamples):
        pick = [rng.choice(rounds) for _ in rounds]
        boot_median.append(_ratio(block, baseline, other, pick, _median))
        boot_p95.append(_ratio(block, baseline, other, pick, _p95))
    boot_median.sort()
    boot_p95.sort()
    per_round = sorted(
        statistics.median(r[other].turn_ns) / statistics.median(r[baseline].turn_ns) for r in block.rounds
    )
    base_all, other_all = block.turns(baseline), block.turns(other)
    chained_base, chained_other = block.turns(baseline, first=False), block.turns(other, first=False)
    return {
        "median_ratio": round(_ratio(block, baseline, other, rounds, _median), 4),
        "median_ratio_ci95": [
            round(percentile(boot_median, 2.5), 4),
            round(percentile(boot_median, 97.5), 4),
        ],
        "p95_ratio": round(_ratio(block, baseline, other, rounds, _p95), 4),
        "p95_ratio_ci95": [round(percentile(boot_p95, 2.5), 4), round(percentile(boot_p95, 97.5), 4)],
        "mean_ratio": round(statistics.fmean(other_all) / statistics.fmean(base_all), 4),
        "chained_median_ratio": round(statistics.median(chained_other) / statistics.median(chained_base), 4)
        if chained_base
        else None,
        "median_delta_us": round((statistics.median(other_all) - statistics.median(base_all)) / 1000.0, 2),
        "per_round_median_ratio": {
            "min": round(per_round[0], 4),
            "p25": round(percentile(per_round, 25), 4),
            "median": round(statistics.median(per_round), 4),
            "p75": round(percentile(per_round, 75), 4),
            "max": round(per_round[-1], 4),
        },
    }


def block_report(block: Block, targets: Sequence[str], resamples: int, seed: int) -> dict[str, Any]:
    report: dict[str, Any] = {"client": block.client, "loadavg_after": block.loadavg, "targets": {}}
    for name in targets:
        turns = block.turns(name)
        entry = summary_us(turns)
        entry["first_turn"] = summary_us(block.turns(name, first=True))
        entry["chained_turns"] = summary_us(block.turns(name, first=False))
        positions = list(zip(*(r[name].turn_ns for r in block.rounds), strict=True))
        entry["median_us_by_turn"] = [round(statistics.median(p) / 1000.0, 2) for p in positions]
        entry["session_median_us"] = [
            round(statistics.median(r[name].turn_ns) / 1000.0, 2) for r in block.rounds
        ]
        entry["connect_median_us"] = round(
            statistics.median(r[name].connect_ns for r in block.rounds) / 1000.0, 2
        )
        entry["setup_median_us"] = round(
            statistics.median(r[name].setup_ns for r in block.rounds) / 1000.0, 2
        )
        entry["samples_us"] = [round(v / 1000.0, 1) for v in turns]
        report["targets"][name] = entry
    if "baseline" in targets and "replay" in targets:
        report["replay_vs_baseline"] = compare(block, resamples, seed)
        # A whole session as a test sees it: set-up, connect and every turn.
        sessions = [
            _session_ns(r["replay"]) / _session_ns(r["baseline"])
            for r in block.rounds
            if _session_ns(r["baseline"])
        ]
        report["session_ratio_median"] = round(statistics.median(sessions), 3) if sessions else None
    return report


def _session_ns(result: SessionResult) -> int:
    return result.setup_ns + result.connect_ns + sum(result.turn_ns)


# --------------------------------------------------------------------------- profiling


def profile_target(
    target: Target,
    transport: str,
    workload: Workload,
    sessions: int,
    path: Path | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """cProfile on the server thread only, while the sync SDK client plays ``sessions`` sessions."""
    log(f"  profiling the {target.name} server thread over {sessions} sdk sessions")
    profiler = cProfile.Profile()
    driver = DRIVERS[(transport, "sdk")]()

    def on_server(action: Callable[[], object]) -> None:
        done = threading.Event()

        def run() -> None:
            action()
            done.set()

        target.call_soon(run)
        if not done.wait(WAIT_S):
            raise BenchError(f"{target.name}: the server loop did not run the profiler switch")

    on_server(profiler.enable)
    try:
        for _ in range(sessions):
            run_session(target, driver, workload, probe=False)
    finally:
        on_server(profiler.disable)
    stats = pstats.Stats(profiler)
    turns = sessions * workload.turns
    if path is not None:
        stats.dump_stats(str(path))
    # Own time per function, grouped by file, per turn: where the server thread spends it.
    # The event loop's wait in epoll is idle time (the client's share of the turn), kept apart.
    by_file: dict[str, float] = {}
    rows = []
    idle_s = busy_s = 0.0
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if filename == "~" and "poll" in func and "select" in func:
            idle_s += tottime
            continue
        busy_s += tottime
        short = func if filename == "~" else _short_path(filename)
        by_file[short] = by_file.get(short, 0.0) + tottime
        rows.append((tottime, cumtime, calls, f"{_short_path(filename)}:{line}({func})"))
    rows.sort(reverse=True)
    return {
        "target": target.name,
        "sessions": sessions,
        "turns": turns,
        "profiled_server_us_per_turn": round(busy_s / turns * 1e6, 2),
        "idle_in_poll_us_per_turn": round(idle_s / turns * 1e6, 2),
        "by_file_us_per_turn": {
            k: round(v / turns * 1e6, 2) for k, v in sorted(by_file.items(), key=lambda kv: -kv[1])[:20]
        },
        "top_tottime": [
            {
                "function": name,
                "tottime_us_per_turn": round(tt / turns * 1e6, 2),
                "cumtime_us_per_turn": round(ct / turns * 1e6, 2),
                "calls_per_turn": round(calls / turns, 2),
            }
            for tt, ct, calls, name in rows[:30]
        ],
        "pstats_file": str(path) if path is not None else None,
    }


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def replay_cumulative(path: Path, turns: int, limit: int = 25) -> list[dict[str, Any]]:
    """Cumulative time per turn of the replay package's own functions (from a pstats dump)."""
    stats = pstats.Stats(str(path))
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "pytest_responses_ws" in filename:
            rows.append((cumtime, tottime, calls, f"{_short_path(filename)}:{line}({func})"))
    rows.sort(reverse=True)
    return [
        {
            "function": name,
            "cumtime_us_per_turn": round(ct / turns * 1e6, 2),
            "tottime_us_per_turn": round(tt / turns * 1e6, 2),
            "calls_per_turn": round(calls / turns, 2),
        }
        for ct, tt, calls, name in rows[:limit]
    ]


# --------------------------------------------------------------------------- output


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "switch_interval_s": sys.getswitchinterval(),
        "versions": {
            "pytest-responses-ws": RWS_VERSION,
            "openai": openai.__version__,
            "uvicorn": uvicorn.__version__,
            "websockets": websockets.version.version,
        },
    }


def loadavg() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def print_table(reports: Sequence[dict[str, Any]], transport: str) -> None:
    print()
    print(f"Per-turn time, transport={transport} (microseconds; ratio = replay / baseline)")
    header = (
        f"{'client':<10} {'server':<9} {'median':>9} {'p95':>9} {'mean':>9} {'min':>9}   "
        f"{'ratio med [95% CI]':<24} {'ratio p95':>9} {'+us/turn':>9}  {'per-session ratio p25..p75':<26}"
    )
    print(header)
    print("-" * len(header))
    for report in reports:
        cmp_ = report.get("replay_vs_baseline")
        for name, entry in report["targets"].items():
            line = (
                f"{report['client']:<10} {name:<9} {entry['median_us']:>9.1f} {entry['p95_us']:>9.1f} "
                f"{entry['mean_us']:>9.1f} {entry['min_us']:>9.1f}"
            )
            if name == "replay" and cmp_ is not None:
                low, high = cmp_["median_ratio_ci95"]
                spread = cmp_["per_round_median_ratio"]
                line += (
                    f"   {cmp_['median_ratio']:.3f} [{low:.3f}, {high:.3f}]".ljust(27)
                    + f"{cmp_['p95_ratio']:>9.3f} {cmp_['median_delta_us']:>+9.1f}  "
                    f"{spread['p25']:.3f}..{spread['p75']:.3f}"
                )
            print(line)
    print()


def print_profile(profile: dict[str, Any], cumulative: list[dict[str, Any]] | None) -> None:
    print(
        f"cProfile, {profile['target']} server thread: {profile['profiled_server_us_per_turn']:.1f} us/turn busy "
        f"({profile['turns']} turns; profiler overhead inflates absolute values; "
        f"{profile['idle_in_poll_us_per_turn']:.0f} us/turn idle in epoll not counted)"
    )
    print("  own time by file or builtin (us/turn):")
    for name, value in list(profile["by_file_us_per_turn"].items())[:12]:
        print(f"    {value:>8.1f}  {name}")
    if cumulative:
        print("  pytest_responses_ws functions, cumulative (us/turn, calls/turn):")
        for row in cumulative[:18]:
            print(f"    {row['cumtime_us_per_turn']:>8.1f}  {row['calls_per_turn']:>6.1f}  {row['function']}")
    print()


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Replay server per-turn cost vs a minimal server sending the same frames.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--transport", choices=("ws", "http"), default="ws", help="WebSocket mode, or HTTP + SSE"
    )
    parser.add_argument(
        "--turns", type=int, default=None, help="turns per session (chained tool loop); default 20, quick 10"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=None,
        help="measured sessions per server per client; default 30, quick 6",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured sessions per server per client first; default 3, quick 1",
    )
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help=f"comma-separated subset of {','.join(CLIENTS)}",
    )
    parser.add_argument(
        "--http-baseline",
        choices=("one-write", "per-event"),
        default="one-write",
        help="how the HTTP baseline writes a turn's stream: in one write, as the replay does, or one "
        "write per event (the first version's baseline, for comparison with its figures)",
    )
    parser.add_argument("--quick", action="store_true", help="small run for CI smoke (< 20 s)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the full results here")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="after measuring, cProfile each server thread and write DIR/{replay,baseline}.pstats",
    )
    parser.add_argument(
        "--profile-sessions", type=int, default=20, help="sessions per server in the profile pass"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=None, help="bootstrap resamples; default 2000, quick 200"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--fail-above",
        type=float,
        default=None,
        metavar="RATIO",
        help="exit 1 if the sdk median ratio exceeds RATIO (off by default: timings are noisy in CI)",
    )
    args = parser.parse_args(argv)
    defaults = {"turns": (20, 10), "sessions": (30, 6), "warmup": (3, 1), "bootstrap": (2000, 200)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown or not clients:
        parser.error(f"--clients: unknown {unknown}; choose from {', '.join(CLIENTS)}")
    args.clients = clients
    if args.sessions < 2:
        parser.error("--sessions must be 2 or more")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wall = time.monotonic()
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="rws-bench-") as tmp:
        workload = build_workload(args.turns, Path(tmp))
        info = workload.describe()
        log(
            f"workload: {info['turns']} chained turns, {info['frames_per_turn_median']} frames "
            f"({info['server_bytes_per_turn_median']} B) per turn, ws request ~{info['ws_request_bytes_median']} B; "
            f"load {load_start}"
        )
        baseline = BaselineTarget(workload, per_event_writes=args.http_baseline == "per-event")
        replay = ReplayTarget(workload, args.transport)
        targets: list[Target] = [baseline, replay]
        reports: list[dict[str, Any]] = []
        profiles: list[dict[str, Any]] = []
        try:
            # One session each up front: a server that cannot replay this transport stops the run here.
            for target in targets:
                try:
                    run_session(target, DRIVERS[(args.transport, "raw")](), workload, probe=False)
                except Exception as exc:  # reported, then the run stops
                    log(f"{target.name} server cannot serve transport={args.transport}: {exc!r}")
                    return 2
            for client in args.clients:
                block = measure(client, args.transport, targets, workload, args.sessions, args.warmup, log)
                reports.append(block_report(block, [t.name for t in targets], args.bootstrap, args.seed))
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                for target in targets:
                    path = args.profile / f"{target.name}.pstats"
                    profiles.append(
                        profile_target(target, args.transport, workload, args.profile_sessions, path, log)
                    )
        finally:
            for target in targets:
                target.stop()
    load_end = loadavg()

    print_table(reports, args.transport)
    sdk = next((r for r in reports if r["client"] == "sdk"), None)
    verdict = None
    if sdk is not None:
        ratio = sdk["replay_vs_baseline"]["median_ratio"]
        verdict = ratio <= TARGET_RATIO
        print(
            f"target (sdk client, median per turn): replay/baseline = {ratio:.3f} "
            f"-> {'within' if verdict else 'ABOVE'} {TARGET_RATIO}x"
        )
    print(
        f"{args.sessions} sessions x {workload.turns} turns per server per client, sessions interleaved "
        f"A/B/B/A; warmup {args.warmup}; load avg {load_start} -> {load_end}; {time.monotonic() - wall:.1f}s"
    )
    for report in reports[:1]:
        parts = [
            f"{name}: setup {entry['setup_median_us']:.0f} us, connect {entry['connect_median_us']:.0f} us"
            for name, entry in report["targets"].items()
        ]
        print(
            f"per session, outside the turn figures ({report['client']} client, medians): " + "; ".join(parts)
        )
    for report in reports:
        if report.get("session_ratio_median") is not None:
            print(
                f"per-session ratio ({report['client']} client; set-up + connect + turns, median over "
                f"sessions): replay/baseline = {report['session_ratio_median']:.3f}"
            )
    for profile in profiles:
        cumulative = (
            replay_cumulative(Path(profile["pstats_file"]), profile["turns"])
            if profile["target"] == "replay"
            else None
        )
        profile["replay_cumulative"] = cumulative
        print_profile(profile, cumulative)

    if args.json is not None:
        document = {
            "benchmark": "bench_replay_ws",
            "transport": args.transport,
            "target_ratio": TARGET_RATIO,
            "within_target": verdict,
            "config": {
                "turns": args.turns,
                "sessions": args.sessions,
                "warmup": args.warmup,
                "clients": args.clients,
                "quick": args.quick,
                "bootstrap": args.bootstrap,
                "seed": args.seed,
            },
            "workload": info,
            "machine": {**machine_info(), "loadavg_start": load_start, "loadavg_end": load_end},
            "results": reports,
            "profiles": profiles,
            "wall_s": round(time.monotonic() - wall, 1),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    if (
        args.fail_above is not None
        and sdk is not None
        and sdk["replay_vs_baseline"]["median_ratio"] > args.fail_above
    ):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
