"""WebSocket connection rules as the service runs them, recorded from the simulator and replayed.

Lanes (``stream_id``): a bad name gets ``invalid_stream_id``, a 33rd lane on a connection
``websocket_stream_limit_reached``, and the connection stays usable; at most 16 responses
play at once on a connection (more queue) and each lane keeps its order. ``response.steer``
records and replays: the steered ending waits for the client's steer. The connection age
limit: a create on an older connection gets ``websocket_connection_limit_reached`` and the
close; the client that reconnects and resends the history passes.
"""

from __future__ import annotations

import json

import pytest

from pytest_responses_ws.sim import Script, Text, serve_simulator

from support.project import Project

# Every project runs its test once with the sync and once with the async openai SDK client.
LANES_TEST = """
import asyncio

import pytest

MODEL = "gpt-5.2"


def code(event):
    return event.to_dict()["error"]["code"]


async def check_rules(send, read):
    # Written once for both clients: ``send`` and ``read`` are awaitables around either.
    await send(input="hi", stream_id="not a lane!")
    event = await read()
    assert event.type == "error" and code(event) == "invalid_stream_id", event
    assert "stream_id" not in event.to_dict()  # a bad name is never echoed
    for n in range(32):
        await send(input="hi", stream_id=f"lane-{n}")
        while (event := await read()).type != "response.completed":
            assert event.type != "error", event
        assert event.stream_id == f"lane-{n}"
    await send(input="hi", stream_id="lane-32")
    event = await read()
    assert event.type == "error" and code(event) == "websocket_stream_limit_reached", event
    # The connection stays open, and a lane it already has still works.
    await send(input="hi", stream_id="lane-7")
    while (event := await read()).type != "response.completed":
        assert event.type != "error", event
    assert event.stream_id == "lane-7"


@pytest.mark.rws_transports("ws")
def test_sync(rws):
    with rws.openai_client().responses.connect() as conn:
        events = iter(conn)

        async def send(**request):
            conn.response.create(model=MODEL, store=False, **request)

        async def read():
            return next(events)

        asyncio.run(check_rules(send, read))


@pytest.mark.rws_transports("ws")
@pytest.mark.asyncio
async def test_async(rws):
    async with rws.async_openai_client().responses.connect() as conn:
        events = conn.__aiter__()

        async def send(**request):
            await conn.response.create(model=MODEL, store=False, **request)

        await check_rules(send, events.__anext__)
"""


def test_bad_lane_and_the_33rd_lane_get_the_service_errors_and_the_connection_stays_usable(
    project: Project,
) -> None:
    project.write("test_lanes", LANES_TEST)
    # The simulator enforces the service's lane rules, so the same client passes recording...
    with serve_simulator(Script([Text("Lane answer.")])) as sim:
        project.record(sim).assert_outcomes(passed=2)
    # ...and replay, where the server answers them itself.
    result = project.replay()
    result.assert_outcomes(passed=2)
    assert "rws_cassette_miss" not in result.stdout.str()


# 20 lanes, two creates each, all sent at once; the client sees when each response starts
# (response.created) and ends (response.completed) and checks overlap and per-lane order.
ACTIVE_TEST = """
import asyncio
import os

import pytest

MODEL = "gpt-5.2"
LANES = 20


async def run_lanes(send, read, recording):
    for round in range(2):
        for n in range(LANES):
            await send(input=f"round {round}", stream_id=f"lane-{n}")
    active, most = set(), 0
    started, finished = {}, {}
    while sum(finished.values()) < 2 * LANES:
        event = await read()
        assert event.type != "error", event
        lane = event.stream_id
        if event.type == "response.created":
            # Per-lane order: a lane's second response starts only after its first ended.
            assert started.get(lane, 0) == finished.get(lane, 0), f"{lane} overlaps itself"
            started[lane] = started.get(lane, 0) + 1
            active.add(event.response.id)
            most = max(most, len(active))
        elif event.type == "response.completed":
            active.remove(event.response.id)
            finished[lane] = finished.get(lane, 0) + 1
    if recording:
        # Recorded from an upstream without the bound: all 20 lanes overlapped.
        assert most == LANES, most
    else:
        assert most == 16, most
    with open(os.environ["ACTIVE_OUT"], "a") as out:
        out.write(f"{most}\\n")


@pytest.mark.rws_transports("ws")
def test_sync(rws):
    with rws.openai_client().responses.connect() as conn:
        events = iter(conn)

        async def send(**request):
            conn.response.create(model=MODEL, store=False, **request)

        async def read():
            return next(events)

        asyncio.run(run_lanes(send, read, rws.recording))


@pytest.mark.rws_transports("ws")
@pytest.mark.asyncio
async def test_async(rws):
    async with rws.async_openai_client().responses.connect() as conn:
        events = conn.__aiter__()

        async def send(**request):
            await conn.response.create(model=MODEL, store=False, **request)

        await run_lanes(send, events.__anext__, rws.recording)
"""


def test_paced_replay_plays_at_most_16_responses_at_once_and_keeps_each_lane_in_order(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = project.path / "active.txt"
    monkeypatch.setenv("ACTIVE_OUT", str(out))
    project.write("test_active", ACTIVE_TEST)
    # An upstream without the bound (all 20 lanes at once), slow enough that they overlap.
    with serve_simulator(
        Script([Text("Twelve words of text make a turn that lasts a while here.")]),
        event_delay_s=0.02,
        max_active_responses=64,
    ) as sim:
        project.record(sim).assert_outcomes(passed=2)
    assert out.read_text().split() == ["20", "20"]
    out.unlink()
    result = project.replay("--rws-timing=recorded")
    result.assert_outcomes(passed=2)
    # Both clients saw exactly 16 responses active at the peak: the bound, reached.
    assert out.read_text().split() == ["16", "16"]


# A create, a steer after the first text delta, and the steered ending with its successor.
STEER_TEST = """
import asyncio
import os

import pytest

MODEL = "gpt-5.2"
STEER = [{"role": "user", "content": os.environ.get("STEER_TEXT", "Answer in French instead.")}]
SEND_STEER = os.environ.get("SEND_STEER", "yes") == "yes"


async def steered_turn(send, steer, read):
    await send(input="Tell me a long story.")
    types, steered = [], None
    while True:
        event = await read()
        types.append(event.type)
        assert event.type != "error", event
        if event.type == "response.created" and steered is None:
            steered = event.response.id
        if event.type == "response.output_text.delta" and types.count(event.type) == 1 and SEND_STEER:
            await steer(input=STEER, previous_response_id=steered)
        if event.type == "response.incomplete":
            assert event.response.id == steered
            assert event.response.incomplete_details.reason == "steered"
        if event.type == "response.completed":
            break
    accepted, ended = types.index("response.steer.accepted"), types.index("response.incomplete")
    assert accepted < ended and types[ended + 1] == "response.created", types
    assert event.response.id != steered and event.response.output_text


@pytest.mark.rws_transports("ws")
def test_sync(rws):
    with rws.openai_client().responses.connect() as conn:
        events = iter(conn)

        async def send(**request):
            conn.response.create(model=MODEL, store=False, **request)

        async def steer(**request):
            conn.response.steer(**request)

        async def read():
            return next(events)

        asyncio.run(steered_turn(send, steer, read))


@pytest.mark.rws_transports("ws")
@pytest.mark.asyncio
async def test_async(rws):
    async with rws.async_openai_client().responses.connect() as conn:

        async def send(**request):
            await conn.response.create(model=MODEL, store=False, **request)

        await steered_turn(send, conn.response.steer, conn.__aiter__().__anext__)
"""


@pytest.fixture
def steered(project: Project) -> Project:
    project.write("test_steer", STEER_TEST)
    # Slow enough that the steer arrives while the response streams.
    with serve_simulator(Script([Text("Once upon a time " * 12)]), event_delay_s=0.02) as sim:
        project.record(sim).assert_outcomes(passed=2)
        # The successor answered the steered context: the story's prompt, then the steer.
        successor = sim.simulator.requests[-1]
        assert successor["input"][-1] == {"role": "user", "content": "Answer in French instead."}
    for path in project.cassettes():
        (turn,) = json.loads(path.read_text(encoding="utf-8"))["turns"]
        (steer,) = turn["steers"]  # kept with the turn it steered, the successor's events in it
        assert steer["request"]["type"] == "response.steer"
        types = [event["data"]["type"] for event in turn["events"]]
        assert types.index("response.steer.accepted") >= steer["after_event"] > 0
        assert turn["events"][-1]["data"]["type"] == "response.completed"
    return project


@pytest.mark.parametrize("timing", ["instant", "recorded"])
def test_a_steered_turn_replays_with_its_steer_events_and_successor(steered: Project, timing: str) -> None:
    result = steered.replay(f"--rws-timing={timing}")
    result.assert_outcomes(passed=2)


def test_a_steer_nothing_recorded_answers_fails_with_a_miss_naming_it(
    steered: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEER_TEXT", "Answer in German instead.")
    result = steered.replay()
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert output.count("response.steer (request 2 on WebSocket connection 0) matched no recorded steer") >= 2
    assert "recorded turn 0 was steered with different input" in output
    assert "Answer in German instead." in output


def test_a_steer_that_never_comes_fails_the_test_at_the_idle_bound(
    steered: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEND_STEER", "no")
    result = steered.replay("--rws-upstream-idle-timeout=0.3")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert "was steered in the recording after event" in output
    assert "the client sent no response.steer for response 'resp_" in output


# One turn, a pause past the connection's age limit, then the next turn. The naive client
# chains on the same connection; the fixed one opens a new connection when the old one
# reaches its limit, and resends the whole history (store: false, so no chain can help).
AGE_TEST = """
import asyncio
import os
import time

import pytest

MODEL = "gpt-5.2"
FIXED = os.environ.get("AGE_MODE") == "fixed"
PAUSE_S = 0.3


def limit_reached(event):
    return event.type == "error" and event.to_dict()["error"]["code"] == "websocket_connection_limit_reached"


def history_after(first):
    return [
        {"role": "user", "content": "Hello"},
        *(item.to_dict() for item in first.output),
        {"role": "user", "content": "And then?"},
    ]


def ask(conn, **request):
    conn.response.create(model=MODEL, store=False, **request)
    for event in conn:
        if event.type == "error" or event.type == "response.completed":
            return event


@pytest.mark.rws_transports("ws")
def test_sync(rws):
    client = rws.openai_client()
    with client.responses.connect() as conn:
        first = ask(conn, input="Hello").response
        time.sleep(PAUSE_S)
        second = ask(conn, input="And then?", previous_response_id=first.id)
        if limit_reached(second):
            # The service closes the connection after this error: nothing more comes.
            assert list(conn) == []
            assert conn._connection.close_code == 1000
            if not FIXED:
                raise RuntimeError(f"naive client: {second.to_dict()}")
            with client.responses.connect() as fresh:
                second = ask(fresh, input=history_after(first))
    assert second.type == "response.completed", second
    assert second.response.output_text


async def ask_async(conn, **request):
    await conn.response.create(model=MODEL, store=False, **request)
    async for event in conn:
        if event.type == "error" or event.type == "response.completed":
            return event


@pytest.mark.rws_transports("ws")
@pytest.mark.asyncio
async def test_async(rws):
    client = rws.async_openai_client()
    async with client.responses.connect() as conn:
        first = (await ask_async(conn, input="Hello")).response
        await asyncio.sleep(PAUSE_S)
        second = await ask_async(conn, input="And then?", previous_response_id=first.id)
        if limit_reached(second):
            assert [event async for event in conn] == []
            assert conn._connection.close_code == 1000
            if not FIXED:
                raise RuntimeError(f"naive client: {second.to_dict()}")
            async with client.responses.connect() as fresh:
                second = await ask_async(fresh, input=history_after(first))
    assert second.type == "response.completed", second
    assert second.response.output_text
"""


@pytest.fixture
def aged(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    project.write("test_age", AGE_TEST)
    monkeypatch.setenv("AGE_MODE", "fixed")
    # The limit holds while recording too (in front of the upstream): the fixed client's
    # reconnect is what gets recorded.
    with serve_simulator(Script([Text("Hello there.")])) as sim:
        project.record(sim, "--rws-connection-max-age=0.2").assert_outcomes(passed=2)
    for path in project.cassettes():
        cassette = json.loads(path.read_text(encoding="utf-8"))
        # The limit held while recording: the second turn went up on a second connection.
        assert [turn["connection"] for turn in cassette["turns"]] == [0, 1], path
        assert cassette["turns"][1]["request"].get("previous_response_id") is None
    return project


def test_a_connection_past_its_age_gets_the_limit_error_then_a_normal_close(
    aged: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGE_MODE", "naive")
    result = aged.replay("--rws-connection-max-age=0.2")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert output.count("E                   RuntimeError: naive client:") == 2
    assert "'code': 'websocket_connection_limit_reached'" in output
    assert "Responses websocket connection limit reached (0.2 seconds)" in output
    assert "rws_cassette_miss" not in output


def test_a_client_that_reconnects_and_resends_the_history_passes(aged: Project) -> None:
    aged.replay("--rws-connection-max-age=0.2").assert_outcomes(passed=2)


def test_the_age_limit_from_the_ini_and_the_marker(aged: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGE_MODE", "naive")
    # The service's 60 minutes by default: the naive client's chain on the same connection
    # resolves to the turn the fixed client recorded with the whole history.
    aged.replay().assert_outcomes(passed=2)
    aged.replay("-o", "rws_connection_max_age=0.2").assert_outcomes(failed=2)
    source = AGE_TEST.replace(
        '@pytest.mark.rws_transports("ws")',
        '@pytest.mark.rws_cassette(connection_max_age=0.2)\n@pytest.mark.rws_transports("ws")',
    )
    aged.write("test_age", source)
    aged.replay().assert_outcomes(failed=2)
    # The command line wins over the marker.
    aged.replay("--rws-connection-max-age=60").assert_outcomes(passed=2)


def test_a_bad_connection_max_age_is_a_one_line_usage_error(project: Project) -> None:
    project.write("test_nothing", "def test_nothing():\n    pass\n")
    result = project.replay("--rws-connection-max-age=soon")
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        [
            "*command line rws_connection_max_age: connection max age 'soon' must be a positive number of seconds*"
        ]
    )


# A steer of a response that stops for tool output: accepted, the response completes with its
# call, then ``response.steer.pending``; the client's continuation carries the tool output only.
PENDING_TEST = """
import agent_loops as loops
import pytest


@pytest.mark.rws_transports("ws")
def test_pending(rws):
    with rws.openai_client().responses.connect() as conn:
        events = iter(conn)
        conn.response.create(model=loops.MODEL, tools=loops.TOOLS, store=False, input=loops.PROMPT)
        created = next(events)
        conn.response.steer(input="Only the first city, please.", previous_response_id=created.response.id)
        types = []
        while (event := next(events)).type != "response.completed":
            types.append(event.type)
        assert "response.steer.accepted" in types and "response.incomplete" not in types
        pending = next(events)
        assert pending.type == "response.steer.pending", pending
        assert pending.reason == "waiting_for_required_input"
        calls = [item for item in event.response.output if item.type == "function_call"]
        assert [stub.call_id for stub in pending.required_input] == [call.call_id for call in calls]
        conn.response.create(
            model=loops.MODEL, tools=loops.TOOLS, store=False,
            input=[loops.tool_output(call) for call in calls], previous_response_id=event.response.id,
        )
        while (event := next(events)).type != "response.completed":
            assert event.type != "error", event
        assert event.response.output_text == "Mild everywhere."
"""


def test_a_pending_steer_records_and_replays_after_its_response(project: Project) -> None:
    project.write("test_pending", PENDING_TEST)
    with serve_simulator(Script.tool_loop(1, final_text="Mild everywhere."), event_delay_s=0.02) as sim:
        project.record(sim).assert_outcomes(passed=1)
        # The queued steer went first in the continuation the upstream answered.
        assert sim.simulator.requests[-1]["input"][0] == {
            "role": "user",
            "content": "Only the first city, please.",
        }
    (path,) = project.cassettes()
    first = json.loads(path.read_text(encoding="utf-8"))["turns"][0]
    # The late answer is kept with the turn whose steer it answers, after its terminal event.
    assert [event["data"]["type"] for event in first["events"]][-2:] == [
        "response.completed",
        "response.steer.pending",
    ]
    project.replay().assert_outcomes(passed=1)
    project.replay("--rws-timing=recorded").assert_outcomes(passed=1)
