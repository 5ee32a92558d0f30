"""Injected faults look to the real openai SDK exactly as the service's own failures.

Each fault kind is checked with the sync and the async client over each transport where
it exists: cassettes are recorded from the simulator first (no faults), then replayed
with the fault armed. A turn a fault interrupted is not counted as played, so the
client's retry replays it. Faults also work while recording, in front of the upstream:
a refused turn never reaches it, a turn cut mid-stream is still recorded whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_responses_ws.sim import Script, Text, serve_simulator

from support.project import Project

SUPPORT = Path(__file__).parent / "support"

FAULTS_TEST = '''
import os
import time

import openai
import pytest
import websockets

from pytest_responses_ws import faults
from fault_clients import ask, sdk, turns

REPLAY = os.environ.get("FAULT_PHASE") == "replay"
FLAVORS = pytest.mark.parametrize("flavor", ["sync", "async"])


def chained(previous):
    return ask("And then?", previous_response_id=previous)


def armed(rws, flavor, *injected, requests=(ask("Hello"),), **options):
    """The client; while recording, the plain requests are recorded and the test ends."""
    client = sdk(rws, flavor, **options)
    if not REPLAY:
        assert all(seen.completed for seen in turns(client, rws.transport, *requests))
        pytest.skip("recorded")
    rws.faults.add(*injected)
    return client


def assert_retry_replays(rws, client, *requests):
    """The interrupted turn was not played: the same request again gets its recording."""
    seen = turns(client, rws.transport, *requests)
    assert seen[-1].completed, seen


def assert_dropped(rws, seen, code):
    """A connection lost: WebSocket close ``code`` (None: no close frame, 1006); HTTP a connection error."""
    if rws.transport == "ws":
        assert isinstance(seen.error, websockets.exceptions.ConnectionClosedError), repr(seen.error)
        assert (seen.error.rcvd.code if seen.error.rcvd else None) == code
    else:
        assert isinstance(seen.error, openai.APIConnectionError), repr(seen.error)


@FLAVORS
def test_close_before_the_turn(rws, flavor):
    client = armed(rws, flavor, faults.close(1011))
    [seen] = turns(client, rws.transport, ask("Hello"))
    assert seen.types == []
    assert_dropped(rws, seen, 1011)
    assert_retry_replays(rws, client, ask("Hello"))
    assert [(f.turn, f.transport) for f in rws.faults.fired] == [(1, rws.transport)]
    assert [t.outcome for t in rws.turns] == ["fault", "completed"]
    assert rws.turns[0].fault == "close(1011)"


@FLAVORS
def test_close_after_three_events(rws, flavor):
    client = armed(rws, flavor, faults.close(1011, "going away", after_events=3))
    [seen] = turns(client, rws.transport, ask("Hello"))
    assert seen.types == ["response.created", "response.in_progress", "response.output_item.added"]
    assert_dropped(rws, seen, 1011)
    if rws.transport == "ws":
        assert seen.error.rcvd.reason == "going away"
    assert_retry_replays(rws, client, ask("Hello"))


@FLAVORS
def test_cut_after_two_events(rws, flavor):
    client = armed(rws, flavor, faults.cut(after_events=2))
    [seen] = turns(client, rws.transport, ask("Hello"))
    assert seen.types == ["response.created", "response.in_progress"]
    assert_dropped(rws, seen, None)
    assert_retry_replays(rws, client, ask("Hello"))
    assert rws.turns[0].outcome == "fault"


@FLAVORS
def test_connection_limit(rws, flavor):
    client = armed(rws, flavor, faults.connection_limit())
    if rws.transport == "http":
        # No connection limit over HTTP: the fault never fires, the turn completes.
        assert turns(client, "http", ask("Hello"))[0].completed
        assert rws.faults.fired == [] and len(rws.faults.pending) == 1
        return
    limited, after = turns(client, "ws", ask("Hello"), ask("Hello"))
    assert limited.types == ["error"]
    assert limited.events[0].error.code == "websocket_connection_limit_reached"
    assert limited.events[0].status == 400
    # The server closed the connection (1000): nothing more comes over it. Sending on it
    # raises, or (the close still on its way) the SDK's iteration just ends.
    assert after.types == []
    assert after.error is None or isinstance(after.error, websockets.exceptions.ConnectionClosedOK)
    # The recovery: a new connection.
    assert_retry_replays(rws, client, ask("Hello"))


@FLAVORS
def test_not_found(rws, flavor):
    client = armed(rws, flavor, faults.not_found(), requests=(ask("Hello"), chained))
    first, refused = turns(client, rws.transport, ask("Hello"), chained)
    assert first.completed  # the fault waits for a turn that chains
    if rws.transport == "ws":
        assert refused.types == ["error"] and refused.error is None
        assert refused.events[0].error.code == "previous_response_not_found"
        assert refused.events[0].error.message == f"Previous response with id '{first.response_id}' not found."
    else:
        assert isinstance(refused.error, openai.BadRequestError), repr(refused.error)
        assert refused.error.code == "previous_response_not_found"
    assert [f.turn for f in rws.faults.fired] == [2]


@FLAVORS
def test_rate_limited(rws, flavor):
    client = armed(rws, flavor, faults.http_status(429, retry_after=0.05))
    [seen] = turns(client, rws.transport, ask("Hello"))
    if rws.transport == "ws":
        # The wrapped error event; the connection stays open.
        assert seen.types == ["error"] and seen.error is None
        assert seen.events[0].status == 429
        assert seen.events[0].error.code == "rate_limit_exceeded"
    else:
        assert isinstance(seen.error, openai.RateLimitError), repr(seen.error)
        assert seen.error.code == "rate_limit_exceeded"
        assert seen.error.response.headers["retry-after"] == "0.05"
    assert_retry_replays(rws, client, ask("Hello"))


@FLAVORS
@pytest.mark.rws_transports("http")
def test_sdk_retries_server_errors(rws, flavor):
    client = armed(rws, flavor, faults.http_status(503, retry_after=0.01, times=2), max_retries=2)
    [seen] = turns(client, "http", ask("Hello"))
    assert seen.completed  # the SDK retried twice on its own
    assert [f.fault.status for f in rws.faults.fired] == [503, 503]
    assert [t.outcome for t in rws.turns] == ["fault", "fault", "completed"]


@FLAVORS
@pytest.mark.rws_transports("http")
def test_server_error_status(rws, flavor):
    client = armed(rws, flavor, faults.http_status(500))
    [seen] = turns(client, "http", ask("Hello"))
    assert isinstance(seen.error, openai.InternalServerError), repr(seen.error)
    assert seen.error.status_code == 500 and seen.error.code == "server_error"


@FLAVORS
@pytest.mark.parametrize("shape", ["nested", "flat"])
def test_error_event_mid_stream(rws, flavor, shape):
    client = armed(rws, flavor, faults.error_event("server_error", "Try again.", shape=shape, after_events=2))
    [seen] = turns(client, rws.transport, ask("Hello"))
    if rws.transport == "http" and shape == "nested":
        # openai-python raises on the nested form.
        assert seen.types == ["response.created", "response.in_progress"]
        assert isinstance(seen.error, openai.APIError) and "Try again." in str(seen.error)
    elif rws.transport == "http":
        # ... and yields the flat (documented) form as an event; the body then ends.
        assert seen.types == ["response.created", "response.in_progress", "error"] and seen.error is None
        assert (seen.events[-1].code, seen.events[-1].message) == ("server_error", "Try again.")
    else:
        assert seen.types == ["response.created", "response.in_progress", "error"] and seen.error is None
        assert seen.events[-1].error.code == "server_error"
        assert seen.events[-1].status == 500
    assert_retry_replays(rws, client, ask("Hello"))
    assert rws.turns[0].outcome == "fault"


@FLAVORS
def test_delay(rws, flavor):
    client = armed(rws, flavor, faults.delay(first_event=0.2, between_events=0.01))
    started = time.perf_counter()
    [seen] = turns(client, rws.transport, ask("Hello"))
    waited = time.perf_counter() - started
    assert seen.completed
    events = len(seen.events)
    assert waited >= 0.2 + 0.01 * (events - 1) - 0.01
    [turn] = rws.turns
    assert turn.outcome == "completed" and turn.fault.startswith("delay(0.2s")
    assert turn.injected_delay_ms == pytest.approx(200 + 10 * (events - 1))
    # Neither the client's overhead nor the server's time.
    assert turn.upstream_ms < 150


@FLAVORS
def test_malformed(rws, flavor):
    client = armed(rws, flavor, faults.malformed(after_events=1))
    [seen] = turns(client, rws.transport, ask("Hello"))
    assert seen.types == ["response.created"]
    assert isinstance(seen.error, ValueError), repr(seen.error)  # json.JSONDecodeError, from the SDK's parser
    assert_retry_replays(rws, client, ask("Hello"))


@FLAVORS
@pytest.mark.rws_transports("http")
def test_plain_json_answer(rws, flavor):
    """A request without ``stream``: a fault that ends the turn drops the connection before the answer."""
    armed(rws, flavor, faults.delay(0.05), faults.cut(after_events=2))
    plain = rws.openai_client() if flavor == "sync" else None
    if plain is None:
        import asyncio

        async def create():
            async with openai.AsyncOpenAI(base_url=rws.base_url, api_key="k", max_retries=0) as aclient:
                return await aclient.responses.create(model="gpt-5.2", input="Hello")

        call = lambda: asyncio.run(create())  # noqa: E731
    else:
        call = lambda: plain.responses.create(model="gpt-5.2", input="Hello")  # noqa: E731
    with pytest.raises(openai.APIConnectionError):
        call()
    assert call().output_text  # the retry gets the recording
    assert rws.turns[0].injected_delay_ms == 50.0 and rws.turns[0].outcome == "fault"


@pytest.mark.rws_faults(faults.delay(0.05, turn=2, transport="ws"), faults.close(1011, turn=3, times=None))
def test_selection(rws):
    client = armed(rws, "sync", requests=(ask("Hello"), ask("Hello")))
    seen = turns(client, rws.transport, ask("Hello"), ask("Hello"))
    assert seen[0].completed
    if rws.transport == "ws":
        assert seen[1].completed and rws.turns[1].fault.startswith("delay")
        rest = turns(client, "ws", ask("Hello"))
        assert_dropped(rws, rest[0], 1011)
        assert [f.turn for f in rws.faults.fired] == [2, 3]
    else:
        assert seen[1].completed and rws.turns[1].fault is None  # the delay is for WebSocket turns
        dropped = turns(client, "http", ask("Hello"))
        assert_dropped(rws, dropped[0], None)
    # times=None: every turn from the third on.
    assert_dropped(rws, turns(client, rws.transport, ask("Hello"))[0], 1011 if rws.transport == "ws" else None)
    assert len(rws.faults.pending) == (1 if rws.transport == "ws" else 2)
'''

RECORDING_TEST = """
import openai
import os
import websockets

from pytest_responses_ws import faults
from fault_clients import ask, sdk, turns

RECORD = os.environ.get("FAULT_PHASE") == "record"


def test_behind_faults(rws):
    client = sdk(rws, "sync")
    if not RECORD:
        # Replayed without faults: the cassette holds the service's answers, whole.
        assert all(seen.completed for seen in turns(client, rws.transport, ask("Hello"), ask("More")))
        return
    if rws.transport == "ws":
        mid_stream = faults.close(1011, after_events=2, turn=3)
    else:
        mid_stream = faults.cut(after_events=2, turn=3)
    rws.faults.add(faults.http_status(503, turn=1), mid_stream)
    [refused] = turns(client, rws.transport, ask("Hello"))
    if rws.transport == "ws":
        assert refused.types == ["error"] and refused.events[0].status == 503
    else:
        assert isinstance(refused.error, openai.InternalServerError)
    first, cut = turns(client, rws.transport, ask("Hello"), ask("More"))
    assert first.completed
    assert cut.types == ["response.created", "response.in_progress"]
    if rws.transport == "ws":
        assert isinstance(cut.error, websockets.exceptions.ConnectionClosedError)
    else:
        assert isinstance(cut.error, openai.APIConnectionError)
    assert [t.outcome for t in rws.turns] == ["fault", "completed", "fault"]
"""


@pytest.fixture
def fault_project(project: Project) -> Project:
    project.pytester.makepyfile(fault_clients=(SUPPORT / "fault_clients.py").read_text(encoding="utf-8"))
    return project


def _script() -> Script:
    return Script([Text("Hello there, the weather is mild everywhere today.")])


def test_every_fault_as_the_sdk_sees_it_in_replay(
    fault_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_project.write("test_faults", FAULTS_TEST)
    with serve_simulator(_script()) as sim:
        monkeypatch.setenv("FAULT_PHASE", "record")
        recorded = fault_project.record(sim, "--rws-transports=http,ws")
    assert recorded.ret == 0, recorded.stdout.str()
    monkeypatch.setenv("FAULT_PHASE", "replay")
    result = fault_project.replay("--rws-transports=http,ws", "-p", "no:randomly")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()
    # 13 tests over both transports and both clients, less those for one transport or client.
    assert outcomes["passed"] == 48, result.stdout.str()


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_faults_while_recording_keep_the_service_answers(
    fault_project: Project, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    fault_project.write("test_recording", RECORDING_TEST)
    with serve_simulator(_script()) as sim:
        monkeypatch.setenv("FAULT_PHASE", "record")
        fault_project.record(sim, f"--rws-transports={transport}").assert_outcomes(passed=1)
        # The refused turn never reached the upstream; the cut one did, and was answered whole.
        assert [r["input"] for r in sim.simulator.requests] == ["Hello", "More"]
    [cassette] = fault_project.cassettes()
    turns = json.loads(cassette.read_text(encoding="utf-8"))["turns"]
    assert [(t["request"]["input"], t["outcome"]) for t in turns] == [
        ("Hello", "completed"),
        ("More", "completed"),
    ]
    assert turns[1]["events"][-1]["data"]["type"] == "response.completed"
    monkeypatch.setenv("FAULT_PHASE", "replay")
    fault_project.replay(f"--rws-transports={transport}").assert_outcomes(passed=1)


def test_a_bad_marker_argument_errors_that_test_alone(fault_project: Project) -> None:
    fault_project.write(
        "test_marker",
        """
import pytest

from pytest_responses_ws import faults

@pytest.mark.rws_faults("close")
def test_bad(rws):
    pass

@pytest.mark.rws_faults(faults.cut(), turn=2)
def test_keywords(rws):
    pass

def test_good(rws):
    pass
""",
    )
    result = fault_project.replay("--rws-transports=ws", "-rE")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.rws_faults: argument 1 is 'close', not a fault; make faults with pytest_responses_ws.faults*",
            "*@pytest.mark.rws_faults takes faults, not keywords (turn); give them to the fault*",
        ],
        consecutive=False,
    )
