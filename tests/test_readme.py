"""The README's 30-second example works as printed: record once, replay over both transports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_responses_ws.sim import Script, Text, serve_simulator

from support.project import Project

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.parametrize("recorded_over", ["http", "ws"])
def test_readme_example_records_and_replays(project: Project, recorded_over: str) -> None:
    block = re.search(r"```python\n(# test_agent\.py\n.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block is not None, "the README lost its 30-second example"
    project.write("test_agent", block.group(1))
    with serve_simulator(Script([Text("Paris is sunny today.")])) as sim:
        # The console lines of the example, with the simulator standing in for the API.
        project.record(sim, f"--rws-transports={recorded_over}").assert_outcomes(passed=1)
    assert [p.name for p in project.cassettes()] == ["test_weather_agent.json"]
    # A non-streamed HTTP recording answers the WebSocket turn (synthesized events), and a
    # streamed WebSocket recording answers the non-streamed HTTP create (its final response).
    project.replay().assert_outcomes(passed=2)


def test_readme_first_minute_needs_no_key(project: Project) -> None:
    text = README.read_text(encoding="utf-8")
    example = re.search(r"```python\n(# test_agent\.py\n.*?)```", text, re.S)
    scripted = re.search(
        r"```python\n(# the same test_agent\.py, answered by the simulator.*?)```", text, re.S
    )
    assert example is not None and scripted is not None, "the README lost its first-minute example"
    header = scripted.group(1).split("def test_weather_agent")[0]
    body = example.group(1).split("def test_weather_agent", 1)[1]
    project.write("test_agent", header + "def test_weather_agent" + body)
    # The console lines: the script answers; then cassettes recorded from the simulator replay.
    project.replay().assert_outcomes(passed=2)
    assert project.cassettes() == []
    project.replay("--rws-upstream=sim", "--rws-record-mode=once").assert_outcomes(passed=2)
    assert [p.name for p in project.cassettes()] == ["test_weather_agent.json"]
    project.replay().assert_outcomes(passed=2)
    project.replay("--rws-timing=model", "--rws-latency-model=fast,scale=0.001").assert_outcomes(passed=2)
