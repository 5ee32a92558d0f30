"""Record a 5-turn function-calling loop from a simulated upstream, then replay it offline.

These are the issue's "not done until" checks, run as a user would: the real openai
SDK (sync and async, HTTP and WebSocket mode) in a pytester project, the real loopback
server, a real upstream on loopback for recording, and no upstream at all for replay.
"""

from __future__ import annotations

import itertools
import json

import pytest

from support.project import FAKE_API_KEY, Project

SYNC_TEST = """
import agent_loops
import pytest
from openai import OpenAI

@pytest.mark.parametrize("client_kind", ["handle", "env"])
def test_weather(rws, client_kind):
    # "env": a plain OpenAI() that only the environment points at the loopback server.
    client = rws.openai_client() if client_kind == "handle" else OpenAI()
    text, events = agent_loops.run(client, rws.transport)
    agent_loops.save_events(f"{client_kind}-{rws.transport}", events)
    assert text.startswith("The weather")
"""

ASYNC_TEST = """
import agent_loops
import pytest
from openai import AsyncOpenAI

@pytest.mark.asyncio
@pytest.mark.parametrize("client_kind", ["handle", "env"])
async def test_weather_async(rws, client_kind):
    client = rws.async_openai_client() if client_kind == "handle" else AsyncOpenAI()
    text, events = await agent_loops.run_async(client, rws.transport)
    agent_loops.save_events(f"{client_kind}-{rws.transport}", events)
    assert text.startswith("The weather")
"""


def _turns(path: object) -> list[dict[str, object]]:
    return json.loads(open(path, encoding="utf-8").read())["turns"]  # type: ignore[arg-type,no-any-return]


@pytest.mark.parametrize("source", [SYNC_TEST, ASYNC_TEST], ids=["sync", "async"])
@pytest.mark.parametrize("recorded_over", ["http", "ws"])
def test_record_once_then_replay_offline_over_both_transports(
    project: Project, sim: object, source: str, recorded_over: str
) -> None:
    project.write("test_agent", source)
    recorded = project.record(sim, f"--rws-transports={recorded_over}")  # type: ignore[arg-type]
    recorded.assert_outcomes(passed=2)
    live_events = project.events()

    cassettes = project.cassettes()
    assert [p.relative_to(project.path).parent.as_posix() for p in cassettes] == ["cassettes/test_agent"] * 2
    for path in cassettes:
        text = path.read_text(encoding="utf-8")
        assert FAKE_API_KEY not in text
        assert "RWSSECRET" not in text
        turns = _turns(path)
        assert len(turns) == 5
        assert {t["transport"] for t in turns} == {recorded_over}
    # The upstream saw the key the client sent: auth passes through the recording proxy.
    assert all(h.get("authorization") == f"Bearer {FAKE_API_KEY}" for h in sim.app.handshakes)  # type: ignore[attr-defined]
    assert len(sim.simulator.requests) == 10  # type: ignore[attr-defined]

    replayed = project.replay()
    replayed.assert_outcomes(passed=4)
    replay_events = project.events()
    for kind in ("handle", "env"):
        # What the SDK parsed live is what it parses in replay, on both transports.
        assert replay_events[f"{kind}-{recorded_over}"] == live_events[f"{kind}-{recorded_over}"]
        assert replay_events[f"{kind}-http"] == replay_events[f"{kind}-ws"]


def test_replay_sends_recorded_events_in_order_with_chained_ids(project: Project, sim: object) -> None:
    project.write("test_agent", SYNC_TEST)
    project.record(sim, "--rws-transports=ws").assert_outcomes(passed=2)
    cassette = project.cassettes()[0]
    turns = _turns(cassette)
    # WebSocket mode sent only new items after the first turn, chained by previous_response_id.
    requests = [t["request"] for t in turns]
    assert requests[0].get("previous_response_id") is None  # type: ignore[attr-defined]
    for earlier, later in itertools.pairwise(turns):
        parent = earlier["events"][-1]["data"]["response"]["id"]  # type: ignore[index]
        assert later["request"]["previous_response_id"] == parent  # type: ignore[index]
        assert [i["type"] for i in later["request"]["input"]] == ["function_call_output"]  # type: ignore[index]
    project.replay("--rws-transports=ws").assert_outcomes(passed=2)
    sequence = [e["type"] for e in project.events()["handle-ws"]]
    recorded_sequence = [e["data"]["type"] for t in turns for e in t["events"]]  # type: ignore[attr-defined]
    assert sequence == recorded_sequence


def test_cassette_lists_one_event_per_line(project: Project, sim: object) -> None:
    project.write("test_agent", SYNC_TEST)
    project.record(sim, "--rws-transports=ws", "-k", "handle").assert_outcomes(passed=1, deselected=1)
    text = project.cassettes()[0].read_text(encoding="utf-8")
    event_lines = [line for line in text.splitlines() if line.lstrip().startswith('{"offset_ms"')]
    assert len(event_lines) == sum(len(t["events"]) for t in _turns(project.cassettes()[0]))  # type: ignore[arg-type]
    for line in event_lines:
        json.loads(line.rstrip(","))
