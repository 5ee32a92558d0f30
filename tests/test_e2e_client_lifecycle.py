"""Clients the rws handle makes are closed when their test ends: no ResourceWarning.

The replay runs in a subprocess with ResourceWarning (and pytest's report of one raised in
a finalizer) as errors and a garbage collection after every test, so an unclosed socket,
transport or WebSocket connection fails the test that left it.
"""

from __future__ import annotations

from support.project import Project

CONFTEST = """
import gc

import pytest


@pytest.fixture(autouse=True)
def collect_garbage():
    yield
    gc.collect()  # after the rws fixture's teardown: anything left unclosed warns now
"""

LIFECYCLE_TEST = '''
import json

import agent_loops
import pytest
from agents import Agent, Runner, function_tool


@pytest.mark.asyncio
async def test_async_left_open(rws):
    text, _ = await agent_loops.run_async(rws.async_openai_client(), rws.transport)
    assert text.startswith("The weather")


@pytest.mark.asyncio
async def test_async_closed_by_the_test(rws):
    client = rws.async_openai_client()
    text, _ = await agent_loops.run_async(client, rws.transport)
    await client.close()
    assert client.is_closed()


def test_async_made_in_sync_test_never_used(rws):
    rws.async_openai_client()


def test_sync_left_open(rws):
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text.startswith("The weather")


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return json.dumps({"city": city, "temp_c": 20})


@pytest.mark.asyncio
async def test_agents_left_open(rws):
    agent = Agent(name="weather", instructions="Use get_weather.", tools=[get_weather], model="gpt-5.2")
    result = await Runner.run(agent, "What's the weather in Paris?", run_config=rws.agents_run_config())
    assert result.final_output.startswith("The weather")
'''


def test_plugin_made_clients_are_closed_at_test_end(project: Project, sim: object) -> None:
    project.write("conftest", CONFTEST)
    project.write("test_lifecycle", LIFECYCLE_TEST)
    project.record(sim).assert_outcomes(passed=10)  # type: ignore[arg-type]

    # A fresh interpreter: the garbage of other tests in this process stays out of it.
    replayed = project.pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-W",
        "error::ResourceWarning",
        "-W",
        "error::pytest.PytestUnraisableExceptionWarning",
        "-v",
    )
    replayed.assert_outcomes(passed=10)
    assert "ResourceWarning" not in replayed.stdout.str()
