"""One parametrized test file, every kind of client, both transports, one cassette per test.

The file is recorded once (over HTTP, the first transport) from the simulated upstream,
then replayed offline over HTTP and WebSocket mode.
"""

from __future__ import annotations

import json

from support.project import Project

CLIENTS_TEST = '''
import json

import agent_loops
import httpx
import pytest
from agents import Agent, Runner, function_tool
from websockets.sync.client import connect

REQUEST = {"model": "gpt-5.2", "input": "What's the weather in Paris?", "tools": agent_loops.TOOLS}


def test_openai_sync(rws):
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text.startswith("The weather")


@pytest.mark.asyncio
async def test_openai_async(rws):
    text, _ = await agent_loops.run_async(rws.async_openai_client(), rws.transport)
    assert text.startswith("The weather")


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return json.dumps({"city": city, "temp_c": 20})


@pytest.mark.asyncio
async def test_openai_agents(rws):
    agent = Agent(name="weather", instructions="Use get_weather.", tools=[get_weather], model="gpt-5.2")
    result = await Runner.run(agent, "What's the weather in Paris?", run_config=rws.agents_run_config())
    assert result.final_output.startswith("The weather")


def test_raw_clients(rws):
    """httpx streaming over HTTP, the websockets library over WebSocket mode: no SDK at all."""
    events = []
    if rws.transport == "http":
        with httpx.stream("POST", rws.base_url + "/responses", json={**REQUEST, "stream": True},
                          headers={"Authorization": "Bearer sk-raw"}, timeout=10) as response:
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert response.headers["x-request-id"]
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[len("event: "):]
                elif line.startswith("data: "):
                    event = json.loads(line[len("data: "):])
                    assert event["type"] == name
                    events.append(event)
    else:
        with connect(rws.websocket_base_url + "/responses", open_timeout=5,
                     additional_headers={"Authorization": "Bearer sk-raw"}) as ws:
            ws.send(json.dumps({"type": "response.create", **REQUEST}))
            while not events or events[-1]["type"] != "response.completed":
                events.append(json.loads(ws.recv(timeout=5)))
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
'''


def test_every_client_kind_replays_over_both_transports(project: Project, sim: object) -> None:
    project.write("test_clients", CLIENTS_TEST)
    recorded = project.record(sim)  # type: ignore[arg-type]
    recorded.assert_outcomes(passed=8)
    cassettes = {path.stem: json.loads(path.read_text()) for path in project.cassettes()}
    assert sorted(cassettes) == [
        "test_openai_agents",
        "test_openai_async",
        "test_openai_sync",
        "test_raw_clients",
    ]
    # The first transport recorded; the second replayed the fresh cassette.
    assert {turn["transport"] for c in cassettes.values() for turn in c["turns"]} == {"http"}

    replayed = project.replay("-v")
    replayed.assert_outcomes(passed=8)
    replayed.stdout.fnmatch_lines(
        [
            f"*test_clients.py::test_{name}[[]{t}[]] PASSED*"
            for name in ("openai_sync", "openai_async", "openai_agents", "raw_clients")
            for t in ("http", "ws")
        ],
        consecutive=True,
    )
