"""Recording into one cassette from several processes (``pytest -n 2``) never loses a recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_responses_ws.cassette.store import CassetteLock
from pytest_responses_ws.sim import SimulatorServer

from support.project import Project

# Both tests open their mount (and read the cassette) before either writes: each waits at
# a file barrier, set up before ``rws``, until the other has arrived too.
BARRIER = """
import os, time, pytest
from pathlib import Path

@pytest.fixture(autouse=True)
def _both_workers_started(request):
    folder = Path(os.environ["RWS_TEST_BARRIER"])
    (folder / f"{os.getpid()}-{request.node.name}").touch()
    deadline = time.monotonic() + 20
    while len(list(folder.iterdir())) < 2:
        assert time.monotonic() < deadline, "the two tests did not run at the same time"
        time.sleep(0.01)
"""

SHARED_CASSETTE = """
import agent_loops, pytest

@pytest.mark.rws_transports("ws")
@pytest.mark.rws_cassette("shared")
@pytest.mark.parametrize("city", ["Paris", "Oslo"])
def test_weather(rws, city):
    agent_loops.PROMPT = [{"role": "user", "content": f"Weather in {city}?"}]
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text
"""

BOTH_TRANSPORTS = """
import agent_loops

def test_weather(rws):
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text
"""


def _prompts(path: Path) -> list[str]:
    """The opening prompt of every conversation in a cassette, in order."""
    turns = json.loads(path.read_text())["turns"]
    return [
        turn["request"]["input"][0]["content"]
        for turn in turns
        if turn["request"].get("previous_response_id") is None
    ]


def _parallel(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    barrier = project.path / "barrier"
    barrier.mkdir()
    monkeypatch.setenv("RWS_TEST_BARRIER", str(barrier))
    project.write("conftest", BARRIER)


@pytest.mark.parametrize("mode", ["new_episodes", "all"])
def test_two_workers_recording_into_one_cassette_keep_both_conversations(
    project: Project, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    _parallel(project, monkeypatch)
    project.write("test_agent", SHARED_CASSETTE)
    project.record(sim, "-n", "2", mode=mode).assert_outcomes(passed=2)
    (cassette,) = project.cassettes()
    assert sorted(_prompts(cassette)) == ["Weather in Oslo?", "Weather in Paris?"]
    assert len(json.loads(cassette.read_text())["turns"]) == 10
    assert not list(cassette.parent.glob(".*")), "no lock or temporary file is left behind"
    # Both conversations replay offline, from both transports.
    project.write("test_agent", SHARED_CASSETTE.replace('@pytest.mark.rws_transports("ws")\n', ""))
    project.replay("-p", "no:xdist").assert_outcomes(passed=4)


def test_once_on_two_workers_records_once_and_the_other_replays(
    project: Project, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parallel(project, monkeypatch)
    project.write("test_agent", BOTH_TRANSPORTS)
    project.record(sim, "-n", "2").assert_outcomes(passed=2)
    assert len(sim.simulator.requests) == 5, "one conversation went upstream, the other test replayed it"
    (cassette,) = project.cassettes()
    assert len(json.loads(cassette.read_text())["turns"]) == 5


def test_a_cassette_locked_too_long_fails_the_test_and_writes_nothing(
    project: Project, sim: SimulatorServer
) -> None:
    project.write("test_agent", BOTH_TRANSPORTS)
    cassette = project.path / "cassettes" / "test_agent" / "test_weather.json"
    lock = CassetteLock(cassette)
    with lock.hold(5):
        result = project.record(sim, "--rws-lock-timeout=0.2", "--rws-transports=ws")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*gave up after 0.2s waiting for another process (pid *) to finish recording*"]
    )
    assert "Traceback" not in result.stdout.str()
    assert len(sim.simulator.requests) == 0
    assert not cassette.exists()


def test_a_write_waits_for_the_lock_and_merges_with_what_is_on_disk_then(
    project: Project, sim: SimulatorServer
) -> None:
    project.write("test_agent", SHARED_CASSETTE)
    cassette = project.path / "cassettes" / "test_agent" / "shared.json"
    project.record(sim, "-k", "Paris", mode="new_episodes").assert_outcomes(passed=1, deselected=1)
    paris = cassette.read_text()
    lock = CassetteLock(cassette)
    with lock.hold(5):
        # Recording Oslo cannot write while the lock is held: it gives up, says so, keeps the file.
        result = project.record(sim, "-k", "Oslo", "--rws-lock-timeout=0.2", mode="new_episodes")
    result.assert_outcomes(passed=1, deselected=1, errors=1)
    result.stdout.fnmatch_lines(["*recording not written: gave up after 0.2s waiting for*"])
    assert cassette.read_text() == paris
    project.record(sim, "-k", "Oslo", mode="new_episodes").assert_outcomes(passed=1, deselected=1)
    assert _prompts(cassette) == ["Weather in Paris?", "Weather in Oslo?"]
