"""No test waits forever: every wait has a bound, and hitting it fails the test naming the turn.

Replay-time failures end the WebSocket turn (an ``error`` event, then close 1008) so even a
loop that ignores errors ends; a recorded turn without a terminal event is a clear failure;
an upstream that stalls while recording fails the test after a configurable bound, over
both transports. Each project test runs under an alarm, so a regression fails instead of hanging the
suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pytest_responses_ws.sim import Script, Text, serve_simulator

from support.project import Project

README = Path(__file__).parent.parent / "README.md"
#: The same loop as the README's, over the async client.
ASYNC_README_LOOP = """

import pytest


@pytest.mark.asyncio
async def test_weather_agent_async(rws):
    request = {"model": "gpt-5.2", "input": "Weather in Paris?"}
    async with rws.async_openai_client().responses.connect() as conn:
        await conn.response.create(**request)
        async for event in conn:
            if event.type == "response.completed":
                break
    assert "Paris" in event.response.output_text
"""


def readme_example() -> str:
    """The README's first example, whose WebSocket loop ignores ``error`` events."""
    block = re.search(r"```python\n(# test_agent\.py\n.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block is not None, "the README lost its 30-second example"
    return block.group(1)


#: Every test of a project run here ends within this bound, its fixtures' teardown included;
#: on a regression (a wait without a bound) it fails with a TimeoutError instead of hanging.
TEST_BOUND_S = 20
BOUND_CONFTEST = f"""
import signal

import pytest


@pytest.fixture(autouse=True)
def _bounded():
    def expired(signum, frame):
        raise TimeoutError("the test did not end within {TEST_BOUND_S} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm({TEST_BOUND_S})
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
"""


def run_bounded(project: Project, *args: str) -> pytest.RunResult:
    """Replay with every test of the project bounded by TEST_BOUND_S."""
    project.pytester.makeconftest(BOUND_CONFTEST)
    return project.replay(*args)


def record_bounded(project: Project, upstream: str, *args: str) -> pytest.RunResult:
    """Record from ``upstream`` with every test of the project bounded by TEST_BOUND_S."""
    project.pytester.makeconftest(BOUND_CONFTEST)
    return project.record(SimpleNamespace(url=upstream), *args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- replay


def test_readme_loop_that_ignores_errors_ends_on_a_miss_and_fails_with_the_report(project: Project) -> None:
    project.write("test_agent", readme_example() + ASYNC_README_LOOP)
    with serve_simulator(Script([Text("Paris is sunny today.")])) as sim:
        project.record(sim, "--rws-transports=ws").assert_outcomes(passed=2)
    # The prompt changes: the recorded turn no longer answers it.
    source = project.path / "test_agent.py"
    source.write_text(source.read_text().replace("Weather in Paris?", "Weather in Oslo?"))
    result = run_bounded(project, "--rws-transports=ws")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*request 1 on WebSocket connection 0 matched no recorded turn in *test_weather_agent.json",
            "why: no recorded turn has this request",
            "*pytest --rws-record-mode=new_episodes*",
            "the client saw: ConnectionClosedError: received 1008 (policy violation) pytest-responses-ws: "
            "cassette miss, see the test report*",
        ]
    )
    assert result.stdout.str().count("why: no recorded turn has this request") == 2


def test_readme_loop_ends_when_there_is_no_cassette(project: Project) -> None:
    project.write("test_agent", readme_example() + ASYNC_README_LOOP)
    result = run_bounded(project, "--rws-transports=ws")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*no cassette at *test_weather_agent.json", "*ConnectionClosedError: received 1008*"]
    )


RAW_FAILURES_TEST = """
import json, pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

FRAMES = {
    "miss": json.dumps({"type": "response.create", "model": "gpt-5.2", "input": "never recorded"}),
    "malformed": "this is not json",
    "unsupported": json.dumps({"type": "response.inject", "previous_response_id": "resp_1", "input": "go"}),
    "steer-miss": json.dumps({"type": "response.steer", "previous_response_id": "resp_1", "input": "go"}),
}


@pytest.mark.rws_cassette("test_weather")
@pytest.mark.rws_transports("ws")
@pytest.mark.parametrize("kind", list(FRAMES))
def test_raw(rws, kind):
    with connect(rws.websocket_base_url + "/responses", open_timeout=5) as ws:
        ws.send(FRAMES[kind])
        event = json.loads(ws.recv(timeout=5))
        assert event["type"] == "error"
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1008
        print("CLOSE REASON:", closed.value.rcvd.reason)
"""


def _recorded_weather(project: Project, sim: Any, into: str) -> None:
    """Record the agent loop once, and copy its cassette for the module ``into``."""
    project.write(
        "test_agent",
        "import agent_loops\n\ndef test_weather(rws):\n    agent_loops.run(rws.openai_client(), rws.transport)\n",
    )
    project.record(sim, "--rws-transports=ws").assert_outcomes(passed=1)
    folder = project.path / "cassettes" / into
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_weather.json").write_text(project.cassettes()[0].read_text())


def test_every_replay_failure_ends_the_websocket_turn_with_close_1008(project: Project, sim: Any) -> None:
    _recorded_weather(project, sim, "test_raw")
    project.write("test_raw", RAW_FAILURES_TEST)
    result = run_bounded(project, "test_raw.py", "-s")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "*CLOSE REASON: pytest-responses-ws: cassette miss, see the test report",
            "*CLOSE REASON: pytest-responses-ws: malformed client frame",
            "*CLOSE REASON: pytest-responses-ws: unsupported client event",
            "*CLOSE REASON: pytest-responses-ws: cassette miss, see the test report",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(
        [
            "request 1 on WebSocket connection 0 matched no recorded turn*",
            "*malformed client frame 1 on WebSocket connection 0: not valid JSON*",
            "*'response.inject' on WebSocket connection 0 cannot be replayed*",
            # A steer is replayed now; one that matches no recorded steer is a miss.
            "*response.steer (request 1 on WebSocket connection 0) matched no recorded steer*",
        ],
        consecutive=False,
    )


UNTERMINATED_TEST = """
import json, httpx, pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

import agent_loops


def test_sdk_loop(rws):
    agent_loops.run(rws.openai_client(), rws.transport)


@pytest.mark.rws_transports("http")
def test_plain_http(rws):
    rws.openai_client().responses.create(model="gpt-5.2", input=agent_loops.PROMPT, tools=agent_loops.TOOLS,
                                         store=False)


@pytest.mark.rws_transports("ws")
def test_readme_loop(rws):
    with rws.openai_client().responses.connect() as conn:
        conn.response.create(model="gpt-5.2", input=agent_loops.PROMPT, tools=agent_loops.TOOLS, store=False)
        for event in conn:
            if event.type == "response.completed":
                break


@pytest.mark.rws_transports("ws")
def test_raw(rws):
    request = {"type": "response.create", "model": "gpt-5.2", "input": agent_loops.PROMPT,
               "tools": agent_loops.TOOLS, "store": False}
    with connect(rws.websocket_base_url + "/responses", open_timeout=5) as ws:
        ws.send(json.dumps(request))
        types = []
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                types.append(json.loads(ws.recv(timeout=5))["type"])
        assert types[-1] == "error" and "response.completed" not in types
        assert closed.value.rcvd.code == 1008
"""


@pytest.mark.parametrize("timing", ["instant", "recorded"])
def test_a_recorded_turn_without_terminal_event_fails_naming_cassette_and_turn(
    project: Project, sim: Any, timing: str
) -> None:
    _recorded_weather(project, sim, "test_unterminated")
    path = project.path / "cassettes" / "test_unterminated" / "test_weather.json"
    cassette = json.loads(path.read_text())
    # Hand-edited: the first turn loses its terminal event.
    first = cassette["turns"][0]
    assert first["events"][-1]["data"]["type"] == "response.completed"
    first["events"] = first["events"][:-1]
    path.write_text(json.dumps(cassette))
    project.write(
        "test_unterminated",
        UNTERMINATED_TEST.replace("def test_", "@pytest.mark.rws_cassette('test_weather')\ndef test_"),
    )
    result = run_bounded(project, "test_unterminated.py", f"--rws-timing={timing}")
    result.assert_outcomes(failed=5)
    expected = (
        "*corrupt cassette *test_unterminated/test_weather.json at /turns/0/events: no event ends the turn: "
        "its * event(s) end with 'response.output_item.done', and a turn ends with one of error, "
        "response.completed, response.done, response.failed, response.incomplete"
    )
    assert len(fnmatch.filter(result.outlines, expected)) == 5, result.stdout.str()


@pytest.mark.parametrize(
    ("offset", "outcomes", "expected"),
    [
        # A wait longer than the recording bounds: each replayed turn fails naming the event.
        (
            1e9,
            {"failed": 4, "skipped": 1},
            "*corrupt cassette *test_weather.json at /turns/0/events/*/offset_ms: "
            "event * comes 1e+06 s after the event before it, longer than any recording waits*",
        ),
        # No wait at all can be scheduled: the cassette does not load.
        (
            "Infinity",
            {"errors": 5},
            "*corrupt cassette *test_weather.json at /turns/0/events/*/offset_ms: "
            "expected a finite number of milliseconds, found inf",
        ),
        # A plausible 2 s wait, stretched by a hostile timing factor.
        (
            2000.0,
            {"failed": 4, "skipped": 1},
            "*--rws-timing=1e+06 would make the client wait longer than any recording waits *before event * "
            "of turn 0 of *test_weather.json; the turn was sent at once*",
        ),
    ],
    ids=["offset", "infinity", "factor"],
)
def test_a_recorded_wait_no_recording_could_have_never_stalls_paced_replay(
    project: Project, sim: Any, offset: float | str, outcomes: dict[str, int], expected: str
) -> None:
    _recorded_weather(project, sim, "test_unterminated")
    path = project.path / "cassettes" / "test_unterminated" / "test_weather.json"
    cassette = json.loads(path.read_text())
    # Hand-edited: the first turn's last event 11 days (or forever) after the request.
    cassette["turns"][0]["events"][-1]["offset_ms"] = 12345.678
    path.write_text(json.dumps(cassette).replace('"offset_ms": 12345.678', f'"offset_ms": {offset}', 1))
    project.write(
        "test_unterminated",
        UNTERMINATED_TEST.replace(
            "def test_", "@pytest.mark.rws_cassette('test_weather')\ndef test_"
        ).replace(
            "def test_raw(rws):", "def test_raw(rws):\n    pytest.skip('expects an unterminated turn')"
        ),
    )
    timing = "1e6" if offset == 2000.0 else "recorded"
    result = run_bounded(project, "test_unterminated.py", f"--rws-timing={timing}")
    result.assert_outcomes(**outcomes)
    out = result.stdout.str()
    assert "TimeoutError" not in out and "Traceback" not in out, out
    assert len(fnmatch.filter(result.outlines, expected)) == sum(outcomes.values()) - outcomes.get(
        "skipped", 0
    ), out


EARLY_LEAVER_TEST = """
import pytest

import agent_loops


@pytest.mark.rws_cassette("test_weather")
@pytest.mark.rws_transports("http")
def test_reads_one_event(rws):
    stream = rws.openai_client().responses.create(
        model="gpt-5.2", input=agent_loops.PROMPT, tools=agent_loops.TOOLS, store=False, stream=True
    )
    for event in stream:
        break
    stream.close()


def test_server_is_idle_afterwards():
    import time
    time.sleep(0.3)
"""


def test_a_client_that_leaves_a_paced_http_stream_early_stops_the_replay(project: Project, sim: Any) -> None:
    _recorded_weather(project, sim, "test_early")
    path = project.path / "cassettes" / "test_early" / "test_weather.json"
    cassette = json.loads(path.read_text())
    events = cassette["turns"][0]["events"]
    for i, event in enumerate(events):
        event["offset_ms"] = 30_000.0 * i / len(events)  # a 30 s answer, within the recording bounds
    path.write_text(json.dumps(cassette))
    project.write("test_early", EARLY_LEAVER_TEST)
    project.pytester.makeconftest(BOUND_CONFTEST)
    # In a process of its own: the server's own log of a cancelled request goes to the real stderr.
    result = project.pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "test_early.py", "--rws-timing=recorded"
    )
    result.assert_outcomes(passed=2)
    output = result.stdout.str() + result.stderr.str()
    # The server sent into a closed stream for 30 s, then was cancelled at the end of the run.
    assert "Exception in ASGI application" not in output and "CancelledError" not in output, output


# --------------------------------------------------------------------------- protocol


def test_wrong_http_method_fails_the_test(project: Project) -> None:
    project.write(
        "test_method",
        """
import httpx, pytest

@pytest.mark.rws_transports("http")
def test_get(rws):
    response = httpx.get(rws.base_url + "/responses", timeout=5)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
""",
    )
    result = run_bounded(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["GET /v1/responses is not allowed: the Responses API takes POST only here*"])


def test_a_client_frame_over_the_size_limit_fails_the_test_saying_the_limit(project: Project) -> None:
    project.write(
        "test_big",
        """
import json, pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

@pytest.mark.rws_transports("ws")
def test_big(rws):
    with connect(rws.websocket_base_url + "/responses", open_timeout=5, max_size=None) as ws:
        text = "x" * (64 * 1024 * 1024)
        with pytest.raises(ConnectionClosedError) as closed:
            ws.send(json.dumps({"type": "response.create", "model": "gpt-5.2", "input": text}))
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1009
""",
    )
    result = run_bounded(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "client frame 1 on WebSocket connection 0 was too big for the loopback server (frame with "
            "671089* bytes exceeds limit of 67108864 bytes): it accepts frames up to 64 MiB and closed the "
            "connection with code 1009 (message too big)*"
        ]
    )


def test_a_client_closing_with_1009_fails_the_test_saying_whose_limit(project: Project, sim: Any) -> None:
    _recorded_weather(project, sim, "test_small")
    project.write(
        "test_small",
        """
import json, pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

import agent_loops

@pytest.mark.rws_cassette("test_weather")
@pytest.mark.rws_transports("ws")
def test_small(rws):
    request = {"type": "response.create", "model": "gpt-5.2", "input": agent_loops.PROMPT,
               "tools": agent_loops.TOOLS, "store": False}
    with connect(rws.websocket_base_url + "/responses", open_timeout=5, max_size=300) as ws:
        ws.send(json.dumps(request))
        with pytest.raises(ConnectionClosedError):
            while True:
                ws.recv(timeout=5)
""",
    )
    result = run_bounded(project, "test_small.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the client closed WebSocket connection 0 with code 1009 (message too big: frame with * bytes "
            "exceeds limit of 300 bytes): a frame the server sent exceeded the client's own size limit*"
        ]
    )


# --------------------------------------------------------------------------- recording


@contextmanager
def _serve_in_thread(start: Callable[[asyncio.Event], Awaitable[Any]]) -> Iterator[Any]:
    """Run ``start(stop)`` (returning an asyncio server) on a loop in a daemon thread; yield it.

    Handlers that stall wait on ``stop``, which is set before the server closes.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stop = asyncio.Event()
    server = asyncio.run_coroutine_threadsafe(start(stop), loop).result(5)
    try:
        yield server
    finally:

        async def shut_down() -> None:
            stop.set()
            server.close()
            await asyncio.wait_for(server.wait_closed(), 5)

        asyncio.run_coroutine_threadsafe(shut_down(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


STARTED = [
    {
        "type": "response.created",
        "sequence_number": 0,
        "response": {"id": "resp_stall", "status": "in_progress"},
    },
    {
        "type": "response.in_progress",
        "sequence_number": 1,
        "response": {"id": "resp_stall", "status": "in_progress"},
    },
]


@contextmanager
def stalling_ws_upstream(events_before_stall: list[dict[str, Any]]) -> Iterator[SimpleNamespace]:
    """A WebSocket upstream that accepts, sends ``events_before_stall`` per request, then says nothing."""
    state = SimpleNamespace(url="", requests=0)

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):  # the proxy drops a stalled upstream
            async for _ in ws:
                state.requests += 1
                for event in events_before_stall:
                    await ws.send(json.dumps(event))

    async def start(stop: asyncio.Event) -> Any:
        return await serve(handler, "127.0.0.1", 0)

    with _serve_in_thread(start) as server:
        state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        yield state


@contextmanager
def _tcp_upstream(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], state: SimpleNamespace
) -> Iterator[asyncio.Event]:
    """Serve ``handle`` on a loopback port (its URL in ``state.url``); yields the stop event."""
    stopping = asyncio.Event()

    async def start(stop: asyncio.Event) -> Any:
        nonlocal stopping
        stopping = stop
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    with _serve_in_thread(start) as server:
        state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        yield stopping


@contextmanager
def stalling_http_upstream(
    headers: bool, events_before_stall: list[dict[str, Any]]
) -> Iterator[SimpleNamespace]:
    """An HTTP upstream that reads each request, optionally sends SSE headers and events, then stalls."""
    state = SimpleNamespace(url="", requests=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        state.requests += 1
        if headers:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        for event in events_before_stall:
            writer.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        await writer.drain()
        await stopping.wait()  # silent until the test is over
        writer.close()

    with _tcp_upstream(handle, state) as stopping:
        yield state


BOUNDS = ("--rws-upstream-first-event-timeout=0.5", "--rws-upstream-idle-timeout=0.5")

#: The SDK loops (sync and async) that ignore errors, like the README's, over WebSocket only.
WS_SDK_LOOPS = """
import json, pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

REQUEST = {"model": "gpt-5.2", "input": "Weather in Paris?"}


@pytest.mark.rws_transports("ws")
def test_sdk_sync(rws):
    with rws.openai_client().responses.connect() as conn:
        conn.response.create(**REQUEST)
        for event in conn:  # ignores errors, like the README's loop
            if event.type == "response.completed":
                break


@pytest.mark.asyncio
@pytest.mark.rws_transports("ws")
async def test_sdk_async(rws):
    async with rws.async_openai_client().responses.connect() as conn:
        await conn.response.create(**REQUEST)
        async for event in conn:
            if event.type == "response.completed":
                break


"""

WS_RECORDING_TEST = (
    WS_SDK_LOOPS
    + """
@pytest.mark.rws_transports("ws")
def test_raw(rws):
    with connect(rws.websocket_base_url + "/responses", open_timeout=5,
                 additional_headers={"Authorization": "Bearer sk-raw"}) as ws:
        ws.send(json.dumps({"type": "response.create", **REQUEST}))
        events = []
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                events.append(json.loads(ws.recv(timeout=10)))
        error = events[-1]
        assert error["type"] == "error" and error["status"] == 504
        assert error["error"]["code"] == "rws_upstream_timeout"
        assert closed.value.rcvd.code == 1014
"""
)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            [],
            "*recording failed: the upstream sent nothing for 0.5 s after request 1 on WebSocket connection 0 "
            "was sent to it: upstream_first_event_timeout is 0.5 s. If the model needs longer, raise it with "
            "--rws-upstream-first-event-timeout=SECONDS, the rws_upstream_first_event_timeout ini option, or "
            "@pytest.mark.rws_cassette(upstream_first_event_timeout=SECONDS). Nothing was written; *",
        ),
        (
            STARTED,
            "*recording failed: the upstream went silent for 0.5 s in the middle of its answer to request 1 on "
            "WebSocket connection 0 (after 2 events): upstream_idle_timeout is 0.5 s. If the model needs "
            "longer, raise it with --rws-upstream-idle-timeout=SECONDS*",
        ),
    ],
    ids=["never-answers", "stops-mid-stream"],
)
def test_a_stalled_websocket_upstream_fails_the_recording_test_quickly(
    project: Project, events: list[dict[str, Any]], expected: str
) -> None:
    project.write("test_upstream_stall", WS_RECORDING_TEST)
    with stalling_ws_upstream(events) as upstream:
        started = time.monotonic()
        result = record_bounded(project, upstream.url, *BOUNDS)
        elapsed = time.monotonic() - started
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([expected])
    assert result.stdout.str().count("Nothing was written") == 3
    result.stdout.fnmatch_lines(["*the client saw: ConnectionClosedError: received 1014 (bad gateway)*"])
    assert project.cassettes() == []
    assert upstream.requests == 3
    assert elapsed < 30, elapsed


@contextmanager
def silent_tcp_upstream() -> Iterator[SimpleNamespace]:
    """An upstream that accepts TCP connections and never says a word (no WebSocket handshake)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", accepted=accepted)
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


def test_an_upstream_that_never_completes_the_handshake_fails_the_recording_test_before_the_client_gives_up(
    project: Project,
) -> None:
    # The SDK's WebSocket client gives up on a handshake after 10 s with its own TimeoutError, so the
    # upstream's handshake must be bounded tighter: here by the first-event bound.
    project.write("test_upstream_stall", WS_RECORDING_TEST.replace("def test_raw(", "def _raw("))
    with silent_tcp_upstream() as upstream:
        started = time.monotonic()
        result = record_bounded(project, upstream.url, *BOUNDS)
        elapsed = time.monotonic() - started
    result.assert_outcomes(failed=2)
    assert (
        result.stdout.str().count("recording failed: could not open the upstream WebSocket ws://127.0.0.1:")
        == 2
    )
    out = result.stdout.str() + result.stderr.str()
    assert "timed out while waiting for handshake response" not in out.replace("WebSocket", ""), out
    assert "Exception in ASGI application" not in out and "TimeoutError: timed out" not in out, out
    assert project.cassettes() == []
    assert elapsed < 8, elapsed


HTTP_RECORDING_TEST = """
import httpx, openai, pytest

REQUEST = {"model": "gpt-5.2", "input": "Weather in Paris?"}


@pytest.mark.rws_transports("http")
def test_sdk_stream(rws):
    for event in rws.openai_client().responses.create(**REQUEST, stream=True):
        pass


@pytest.mark.asyncio
@pytest.mark.rws_transports("http")
async def test_sdk_async_plain(rws):
    await rws.async_openai_client().responses.create(**REQUEST)


@pytest.mark.rws_transports("http")
def test_raw(rws):
    response = httpx.post(rws.base_url + "/responses", json=REQUEST, timeout=10,
                          headers={"Authorization": "Bearer sk-raw"})
    print("RAW STATUS", response.status_code, response.headers["content-type"])
    print("RAW BODY", response.text.strip())
"""


@pytest.mark.parametrize(
    ("headers", "events", "expected", "raw"),
    [
        (
            False,
            [],
            "*the upstream sent nothing for 0.5 s after HTTP request 1 (connection 0) was sent to it: "
            "upstream_first_event_timeout is 0.5 s*",
            "RAW STATUS 504 application/json",
        ),
        (
            True,
            [],
            "*the upstream sent nothing for 0.5 s after HTTP request 1 (connection 0) was sent to it*",
            "RAW BODY event: error",
        ),
        (
            True,
            STARTED,
            "*the upstream went silent for 0.5 s in the middle of its answer to HTTP request 1 (connection 0) "
            "(after 2 events): upstream_idle_timeout is 0.5 s*",
            "RAW BODY event: response.created",
        ),
    ],
    ids=["never-answers", "headers-then-nothing", "stops-mid-stream"],
)
def test_a_stalled_http_upstream_fails_the_recording_test_quickly_without_retries(
    project: Project, headers: bool, events: list[dict[str, Any]], expected: str, raw: str
) -> None:
    project.write("test_upstream_stall", HTTP_RECORDING_TEST)
    with stalling_http_upstream(headers, events) as upstream:
        started = time.monotonic()
        result = record_bounded(project, upstream.url, *BOUNDS, "-s")
        elapsed = time.monotonic() - started
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([expected])
    result.stdout.fnmatch_lines(["*" + raw + "*"])
    assert result.stdout.str().count("Nothing was written") == 3
    assert '"code":"rws_upstream_timeout"' in result.stdout.str()
    assert project.cassettes() == []
    # The SDK clients from rws made one attempt each: no retries behind the test's back.
    assert upstream.requests == 3
    assert elapsed < 30, elapsed


#: An upstream event the loopback server cannot handle while recording: its ``type`` is not a string,
#: which the recorder cannot route (any exception while reading the upstream is handled alike).
UNREADABLE_EVENT = {"type": ["response.completed"], "sequence_number": 1}

WS_UNREADABLE_TEST = (
    WS_SDK_LOOPS
    + """
@pytest.mark.rws_transports("ws")
def test_raw(rws):
    with connect(rws.websocket_base_url + "/responses", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "response.create", **REQUEST}))
        events = []
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                events.append(json.loads(ws.recv(timeout=10)))
        assert [event["type"] for event in events] == ["response.created", "error"]
        assert events[-1]["status"] == 500 and events[-1]["error"]["code"] == "rws_server_error"
        assert closed.value.rcvd.code == 1008
"""
)


def test_an_upstream_frame_the_server_cannot_handle_fails_the_websocket_recording_at_once(
    project: Project,
) -> None:
    project.write("test_unreadable", WS_UNREADABLE_TEST)
    # The upstream then says nothing more: a reader that died silently would leave every client waiting.
    with stalling_ws_upstream([STARTED[0], UNREADABLE_EVENT]) as upstream:
        started = time.monotonic()
        result = record_bounded(project, upstream.url)
        elapsed = time.monotonic() - started
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*recording failed: the loopback server could not handle upstream frame 2 on WebSocket connection 0: "
            "TypeError(*unhashable type*). Nothing was written; *test_unreadable*.json is unchanged.",
        ]
    )
    assert result.stdout.str().count("could not handle upstream frame 2") == 3
    result.stdout.fnmatch_lines(["*the client saw: ConnectionClosedError: received 1008 (policy violation)*"])
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "Task exception was never retrieved" not in out, out
    assert project.cassettes() == []
    assert elapsed < 15, elapsed


HTTP_UNREADABLE_TEST = """
import httpx, openai, pytest

REQUEST = {"model": "gpt-5.2", "input": "Weather in Paris?"}


@pytest.mark.rws_transports("http")
def test_sdk_stream(rws):
    for event in rws.openai_client().responses.create(**REQUEST, stream=True):
        pass


@pytest.mark.asyncio
@pytest.mark.rws_transports("http")
async def test_sdk_async_stream(rws):
    async for event in await rws.async_openai_client().responses.create(**REQUEST, stream=True):
        pass


@pytest.mark.rws_transports("http")
def test_raw(rws):
    with httpx.stream("POST", rws.base_url + "/responses", json={**REQUEST, "stream": True}, timeout=10) as answer:
        body = answer.read().decode()
    print("RAW BODY", body.replace(chr(10), " | "))
"""


def test_an_upstream_event_the_server_cannot_handle_fails_the_http_recording_at_once(
    project: Project,
) -> None:
    project.write("test_unreadable", HTTP_UNREADABLE_TEST)
    with stalling_http_upstream(True, [STARTED[0], UNREADABLE_EVENT]) as upstream:
        started = time.monotonic()
        result = record_bounded(project, upstream.url, "-s")
        elapsed = time.monotonic() - started
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*recording failed: the loopback server could not handle the upstream's answer to HTTP request 1 "
            "(connection 0) (after 1 events): TypeError(*unhashable type*). Nothing was written; "
            "*test_unreadable*.json is unchanged.",
        ]
    )
    assert result.stdout.str().count("could not handle the upstream's answer to HTTP request 1") == 3
    # Mid-stream, the client gets the error event in the service's shape, then the end of the body.
    result.stdout.fnmatch_lines(['*RAW BODY *event: error | data: *"code":"rws_server_error"*'])
    result.stdout.fnmatch_lines(
        ["*the client saw: APIError: pytest-responses-ws: the loopback server could not*"]
    )
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "Exception in ASGI application" not in out, out
    assert project.cassettes() == []
    # One attempt each: the SDK does not retry the plugin's own failure.
    assert upstream.requests == 3
    assert elapsed < 15, elapsed


OWN_CLIENTS_TEST = """
import openai, pytest

REQUEST = {"model": "gpt-5.2", "input": "Weather in Paris?"}


@pytest.mark.rws_transports("http")
def test_own_sync_client(rws):
    # The application's own client: found through OPENAI_BASE_URL, with the SDK's default retries.
    openai.OpenAI().responses.create(**REQUEST)


@pytest.mark.asyncio
@pytest.mark.rws_transports("http")
async def test_own_async_client(rws):
    async with openai.AsyncOpenAI() as client:
        async for event in await client.responses.create(**REQUEST, stream=True):
            pass
"""


def test_clients_the_test_makes_itself_do_not_retry_a_stalled_upstream_while_recording(
    project: Project,
) -> None:
    # A 504 or 502 from the loopback server tells the SDK not to retry: each retry would reach the
    # upstream again and wait out the bound again (3 x 180 s with the defaults).
    project.write("test_own_clients", OWN_CLIENTS_TEST)
    with stalling_http_upstream(False, []) as upstream:
        started = time.monotonic()
        result = record_bounded(project, upstream.url, *BOUNDS)
        elapsed = time.monotonic() - started
    result.assert_outcomes(failed=2)
    assert result.stdout.str().count("upstream_first_event_timeout is 0.5 s") == 2
    assert upstream.requests == 2
    assert elapsed < 15, elapsed


def test_clients_the_test_makes_itself_do_not_retry_an_unreachable_upstream_while_recording(
    project: Project,
) -> None:
    project.write("test_own_clients", OWN_CLIENTS_TEST)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    started = time.monotonic()
    result = record_bounded(project, f"http://127.0.0.1:{closed_port}/v1", *BOUNDS)
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*the client saw: InternalServerError: Error code: 502*"])
    # The SDK's retries back off 0.5 to 8 s each: none means the run is quick.
    assert elapsed < 3, elapsed


@contextmanager
def trickling_http_upstream(head: bytes, trickle: bytes) -> Iterator[SimpleNamespace]:
    """An HTTP upstream that sends ``head``, then ``trickle`` again and again, never an event more."""
    state = SimpleNamespace(url="", requests=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        state.requests += 1
        writer.write(head)
        with contextlib.suppress(ConnectionError):
            while not stopping.is_set():
                writer.write(trickle)
                await writer.drain()
                await asyncio.sleep(0.05)
        writer.close()

    with _tcp_upstream(handle, state) as stopping:
        yield state


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("head", "trickle", "bound", "tests"),
    [
        # The response head a byte at a time: never a first event.
        (b"HTTP/1.1 200 OK\r\nx-trickle: ", b"a", "upstream_first_event_timeout", "test_sdk"),
        # A gateway's keep-alive comments while the model is stalled mid-answer: no event, ever.
        (
            SSE_HEAD + f"event: response.created\ndata: {json.dumps(STARTED[0])}\n\n".encode(),
            b": keep-alive\n\n",
            "upstream_idle_timeout",
            "test_sdk_stream",
        ),
        # A non-streamed answer's body a byte at a time: each byte within the idle bound, the
        # JSON never complete. Its one event is the whole body, due within the first-event bound.
        (JSON_HEAD + b'{"id": "resp_1"', b" ", "upstream_first_event_timeout", "test_sdk_async_plain"),
    ],
    ids=["head", "keep-alive", "non-streamed-body"],
)
def test_an_upstream_trickling_bytes_without_events_still_hits_the_bound(
    project: Project, head: bytes, trickle: bytes, bound: str, tests: str
) -> None:
    project.write("test_upstream_stall", HTTP_RECORDING_TEST.replace("def test_raw(", "def _raw("))
    with trickling_http_upstream(head, trickle) as upstream:
        started = time.monotonic()
        result = record_bounded(project, upstream.url, *BOUNDS, "-k", tests)
        elapsed = time.monotonic() - started
    failed = 2 if tests == "test_sdk" else 1
    result.assert_outcomes(failed=failed)
    assert result.stdout.str().count(f"{bound} is 0.5 s") == failed, result.stdout.str()
    assert "HTTP request 1 (connection 0)" in result.stdout.str(), result.stdout.str()
    if tests == "test_sdk_async_plain":
        result.stdout.fnmatch_lines(
            ["*the upstream had not finished its answer to HTTP request 1 (connection 0)*"]
        )
    assert elapsed < 10, elapsed


def test_bounds_come_from_ini_marker_and_rws_config(project: Project) -> None:
    project.pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
        "rws_upstream_first_event_timeout = 0.3\nrws_upstream_idle_timeout = 45\n"
    )
    project.write(
        "test_settings",
        """
import pytest

@pytest.fixture(scope="module")
def rws_config():
    return {"upstream_idle_timeout": 7}

@pytest.mark.rws_transports("http")
def test_from_ini_and_fixture(rws):
    assert rws.settings.upstream_first_event_timeout == 0.3
    assert rws.settings.upstream_idle_timeout == 7

@pytest.mark.rws_transports("http")
@pytest.mark.rws_cassette(upstream_first_event_timeout=600, upstream_idle_timeout="2.5")
def test_from_marker(rws):
    assert rws.settings.upstream_first_event_timeout == 600
    assert rws.settings.upstream_idle_timeout == 2.5
""",
    )
    project.run().assert_outcomes(passed=2)
    result = project.run("--rws-upstream-idle-timeout=9", "-k", "ini")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 9.0 == 7*"])


@pytest.mark.parametrize(
    "args",
    [["--rws-upstream-idle-timeout=0"], ["--rws-upstream-first-event-timeout=soon"]],
    ids=["zero", "word"],
)
def test_a_bad_bound_is_a_usage_error(project: Project, args: list[str]) -> None:
    project.write("test_x", "def test_x():\n    pass\n")
    result = project.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*timeout * must be a positive number of seconds such as 30 or 0.5*"])


def test_a_bad_bound_in_a_marker_errors_the_test(project: Project) -> None:
    project.write(
        "test_x",
        "import pytest\n\n@pytest.mark.rws_cassette(upstream_idle_timeout=-1)\ndef test_x(rws):\n    pass\n",
    )
    result = project.run("--rws-transports=http")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.rws_cassette upstream_idle_timeout: timeout -1 must be a positive number of seconds*"]
    )


def test_clients_from_rws_never_retry_unless_asked(project: Project) -> None:
    project.write(
        "test_retries",
        """
import pytest

@pytest.mark.rws_transports("http")
@pytest.mark.parametrize(
    "recording", [False, pytest.param(True, marks=pytest.mark.rws_cassette(record_mode="once"))]
)
def test_retries(rws, recording, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert rws.recording is recording
    assert rws.openai_client().max_retries == 0
    assert rws.async_openai_client().max_retries == 0
    assert rws.openai_client(max_retries=3).max_retries == 3
""",
    )
    project.run().assert_outcomes(passed=2)
