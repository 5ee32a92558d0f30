"""Record modes (vcrpy's meanings), lanes, and how the plugin lives with others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.project import Project

TWO_LOOPS = """
import agent_loops, pytest

@pytest.mark.rws_transports("ws")
@pytest.mark.parametrize("city", ["Paris", "Oslo"])
def test_weather(rws, city):
    agent_loops.PROMPT = [{"role": "user", "content": f"Weather in {city}?"}]
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text
"""


def _turns(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["turns"]  # type: ignore[no-any-return]


def _requests(sim: Any) -> int:
    return len(sim.simulator.requests)


def test_none_never_reaches_the_upstream(project: Project, sim: Any) -> None:
    project.write("test_agent", TWO_LOOPS)
    project.record(sim).assert_outcomes(passed=2)
    before = _requests(sim)
    project.record(sim, mode="none").assert_outcomes(passed=2)
    assert _requests(sim) == before


def test_once_records_missing_cassettes_and_replays_existing_ones(project: Project, sim: Any) -> None:
    project.write("test_agent", TWO_LOOPS)
    project.record(sim, "-k", "Paris").assert_outcomes(passed=1, deselected=1)
    assert _requests(sim) == 5
    paris = project.cassettes()[0]
    text = paris.read_text()
    project.record(sim).assert_outcomes(passed=2)
    assert _requests(sim) == 10  # only Oslo was recorded
    assert paris.read_text() == text  # Paris replayed, its file untouched


def test_new_episodes_replays_known_turns_and_records_new_ones(project: Project, sim: Any) -> None:
    project.write("test_agent", TWO_LOOPS)
    project.record(sim, "-k", "Paris").assert_outcomes(passed=1, deselected=1)
    paris = project.cassettes()[0]
    # Keep only the first two turns, as if the loop had been shorter when it was recorded.
    document = json.loads(paris.read_text())
    document["turns"] = document["turns"][:2]
    paris.write_text(json.dumps(document))
    before = _requests(sim)
    project.record(sim, "-k", "Paris", mode="new_episodes").assert_outcomes(passed=1, deselected=1)
    # Turns 3-5 went upstream. Turn 3 chains from a replayed response the upstream never
    # saw, so it was sent with the whole conversation instead of previous_response_id.
    assert _requests(sim) - before == 3
    upstream_first = sim.simulator.requests[before]
    assert "previous_response_id" not in upstream_first or upstream_first["previous_response_id"] is None
    assert [item.get("type", "message") for item in upstream_first["input"]][:3] == [
        "message",
        "function_call",
        "function_call_output",
    ]
    turns = _turns(paris)
    assert len(turns) == 5
    # ...and the cassette keeps the request as the client sent it (chained).
    assert turns[2]["request"]["previous_response_id"]
    project.replay("-k", "Paris").assert_outcomes(passed=1, deselected=1)


def test_all_rerecords_and_replaces_matching_turns(project: Project, sim: Any) -> None:
    project.write("test_agent", TWO_LOOPS)
    project.record(sim, "-k", "Paris").assert_outcomes(passed=1, deselected=1)
    paris = project.cassettes()[0]
    old_ids = [t["events"][-1]["data"]["response"]["id"] for t in _turns(paris)]
    before = _requests(sim)
    project.record(sim, "-k", "Paris", mode="all").assert_outcomes(passed=1, deselected=1)
    assert _requests(sim) - before == 5
    turns = _turns(paris)
    assert len(turns) == 5  # the conversation was replaced, not appended
    assert not {t["events"][-1]["data"]["response"]["id"] for t in turns} & set(old_ids)


def test_rewrite_discards_the_old_cassette(project: Project, sim: Any) -> None:
    project.write("test_agent", TWO_LOOPS)
    project.record(sim, "-k", "Paris").assert_outcomes(passed=1, deselected=1)
    paris = project.cassettes()[0]
    document = json.loads(paris.read_text())
    document["turns"].append(document["turns"][0])  # an extra turn that rewrite must drop
    paris.write_text(json.dumps(document))
    project.record(sim, "-k", "Paris", mode="rewrite").assert_outcomes(passed=1, deselected=1)
    assert len(_turns(paris)) == 5


def test_rws_config_fixture_marker_and_cli_precedence(project: Project, sim: Any) -> None:
    project.pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="module")
def rws_config():
    return {"record_mode": "none", "cassette_dir": "recorded"}
"""
    )
    project.write(
        "test_agent",
        """
import pytest

@pytest.mark.rws_cassette("custom name", record_mode="rewrite")
@pytest.mark.rws_transports("ws")
def test_marker_wins_over_fixture(rws):
    assert rws.record_mode.value == "rewrite"
    assert rws.cassette_path.parts[-3:] == ("recorded", "test_agent", "custom_name.json")

@pytest.mark.rws_transports("ws")
def test_fixture_applies(rws):
    assert rws.record_mode.value == "none"
""",
    )
    project.run().assert_outcomes(passed=2)
    result = project.run("--rws-record-mode=once")
    result.assert_outcomes(failed=2)  # the command line beats the marker and the fixture
    result.stdout.fnmatch_lines(["*assert 'once' == 'rewrite'*", "*assert 'once' == 'none'*"])


def test_lanes_replay_in_order_and_echo_stream_id(project: Project, sim: Any) -> None:
    project.write(
        "test_lanes",
        """
import json, pytest
from websockets.sync.client import connect

@pytest.mark.rws_transports("ws")
def test_two_lanes(rws):
    seen = {"a": [], "b": []}
    headers = {"Authorization": "Bearer " + __import__("os").environ.get("OPENAI_API_KEY", "x")}
    with connect(rws.websocket_base_url + "/responses", additional_headers=headers, open_timeout=5) as ws:
        for lane in ("a", "b"):
            ws.send(json.dumps({"type": "response.create", "model": "gpt-5.2", "stream_id": lane,
                                "input": f"hello from lane {lane}", "store": False}))
        done = 0
        while done < 2:
            event = json.loads(ws.recv(timeout=5))
            assert event["type"] != "error", event
            seen[event["stream_id"]].append(event["type"])
            done += event["type"] == "response.completed"
    for lane in seen:
        assert seen[lane][0] == "response.created" and seen[lane][-1] == "response.completed"
""",
    )
    project.record(sim).assert_outcomes(passed=1)
    turns = _turns(project.cassettes()[0])
    assert sorted(t["lane"] for t in turns) == ["a", "b"]
    project.replay().assert_outcomes(passed=1)
    project.replay("--rws-timing=recorded").assert_outcomes(passed=1)


def test_options_and_markers_are_listed_next_to_other_plugins(project: Project) -> None:
    result = project.run("--help", "-p", "recording", "-p", "asyncio")
    result.stdout.fnmatch_lines(
        ["*pytest-responses-ws: record and replay Responses API sessions:", "*--rws-record-mode=MODE*"]
    )
    assert "--record-mode" in result.stdout.str()  # pytest-recording's own, no clash
    markers = project.run("--markers")
    markers.stdout.fnmatch_lines(
        ["@pytest.mark.rws_cassette(name=None, **options):*", "@pytest.mark.rws_transports*"]
    )


def test_pytest_recording_cassettes_do_not_capture_loopback_traffic(project: Project, sim: Any) -> None:
    project.write(
        "test_agent",
        TWO_LOOPS.replace(
            "@pytest.mark.rws_transports", "@pytest.mark.vcr\n@pytest.mark.rws_transports"
        ).replace('"ws"', '"http"'),
    )
    project.record(sim, "--record-mode=once").assert_outcomes(passed=2)
    assert not list(project.path.rglob("*.yaml"))
    project.replay("--record-mode=none").assert_outcomes(passed=2)


def test_server_starts_only_for_tests_that_use_it(project: Project) -> None:
    project.write(
        "test_plain",
        """
import threading

def test_no_rws():
    assert not [t for t in threading.enumerate() if t.name.startswith("rws-loopback")]
""",
    )
    project.run().assert_outcomes(passed=1)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_async_tests_under_pytest_asyncio_modes(project: Project, sim: Any, mode: str) -> None:
    project.pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = ignore::DeprecationWarning\n"
    )
    marker = "@pytest.mark.asyncio\n" if mode == "strict" else ""
    project.write(
        "test_agent",
        f"""
import agent_loops, pytest

{marker}async def test_weather(rws):
    text, _ = await agent_loops.run_async(rws.async_openai_client(), rws.transport)
    assert text
""",
    )
    project.record(sim).assert_outcomes(passed=2)
    project.replay().assert_outcomes(passed=2)


def test_new_episodes_keeps_old_connection_records_and_numbers_new_ones_after(
    project: Project, sim: Any
) -> None:
    project.write("test_agent", TWO_LOOPS)
    project.record(sim, "-k", "Paris").assert_outcomes(passed=1, deselected=1)
    paris = project.cassettes()[0]
    document = json.loads(paris.read_text())
    document["turns"] = document["turns"][:2]
    paris.write_text(json.dumps(document))
    project.record(sim, "-k", "Paris", mode="new_episodes").assert_outcomes(passed=1, deselected=1)
    merged = json.loads(paris.read_text())
    ids = [c["id"] for c in merged["connections"]]
    assert ids == [0, 1]
    assert [t["connection"] for t in merged["turns"]] == [0, 0, 1, 1, 1]


def test_tests_in_classes_get_their_own_cassettes(project: Project, sim: Any) -> None:
    project.write(
        "test_agent",
        """
import agent_loops, pytest

class TestParis:
    @pytest.mark.rws_transports("ws")
    def test_weather(self, rws):
        agent_loops.run(rws.openai_client(), rws.transport)

class TestOslo:
    @pytest.mark.rws_transports("ws")
    def test_weather(self, rws):
        agent_loops.run(rws.openai_client(), rws.transport)
""",
    )
    project.record(sim).assert_outcomes(passed=2)
    assert [p.name for p in project.cassettes()] == [
        "TestOslo.test_weather.json",
        "TestParis.test_weather.json",
    ]


def test_a_test_for_a_disabled_transport_is_skipped_saying_why(project: Project) -> None:
    project.write(
        "test_x", "import pytest\n\n@pytest.mark.rws_transports('http')\ndef test_x(rws):\n    pass\n"
    )
    result = project.run("--rws-transports=ws", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*this test runs over http only, which this run disables (--rws-transports*"]
    )


def test_a_cassette_dir_keeps_test_folders_apart(project: Project) -> None:
    for folder in ("a", "b"):
        (project.path / folder).mkdir()
        (project.path / folder / "test_api.py").write_text(
            "import pytest\n\n@pytest.mark.rws_transports('ws')\n"
            "def test_x(rws):\n    print('PATH', rws.cassette_path.relative_to(rws.cassette_path.parents[3]))\n"
        )
    result = project.run("--rws-cassette-dir=recorded", "-s", "-p", "no:randomly", "--import-mode=importlib")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*PATH recorded/a/test_api/test_x.json*", "*PATH recorded/b/test_api/test_x.json*"]
    )
