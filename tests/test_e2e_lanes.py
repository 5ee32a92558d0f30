"""WebSocket connection rules as the service runs them, recorded from the simulator and replayed.

Lanes (``stream_id``): a bad name gets ``invalid_stream_id``, a 33rd lane on a connection
``websocket_stream_limit_reached``, and the connection stays usable; at most 16 responses
play at once on a connection (more queue) and each lane keeps its order. ``response.steer``
records and replays: the steered ending waits for the client's steer. The connection age
limit: a create on an older connection gets ``websocket_connection_limit_reached`` and the
close; the client that reconnects and resends the history passes.
"""

from __future__ import annotations

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
