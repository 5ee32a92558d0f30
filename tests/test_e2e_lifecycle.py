"""A cassette's life: unplayed turns, orphans, the save policy, expiry, unreplayable client events,
and verify mode's drift against a changed simulator. Every test file here runs over both
transports unless the behaviour exists on one only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_responses_ws.sim import Script, serve_simulator

from support.drifted import DriftedSimulator, tool_loop_script
from support.project import Project

LOOP = """
import agent_loops

def test_agent(rws):
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text
"""


def _document(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _recorded(project: Project, sim: Any, source: str = LOOP) -> Path:
    project.write("test_agent", source)
    project.record(sim).assert_outcomes(passed=2)
    (cassette,) = project.cassettes()
    return cassette


def _add_unplayed_turn(cassette: Path) -> None:
    document = _document(cassette)
    first = document["turns"][0]
    response_id = first["events"][-1]["data"]["response"]["id"]
    # Its own response id: chains from the first turn's response must not find this one.
    extra = json.loads(json.dumps(first).replace(response_id, response_id + "unplayed"))
    extra["request"]["input"] = [{"role": "user", "content": "A question no test asks any more"}]
    document["turns"].append(extra)
    cassette.write_text(json.dumps(document))


# -- unplayed turns -------------------------------------------------------------------------------


def test_unplayed_turns_warn_by_default_naming_them(project: Project, sim: Any) -> None:
    cassette = _recorded(project, sim)
    _add_unplayed_turn(cassette)
    result = project.replay("-W", "always")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*RwsLifecycleWarning*1 recorded turn(s) of*test_agent.json were never played:*",
            "*turn 5 (*): last input message 'A question no test asks any more'*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*responses-ws: recorded turns never played*",
            "*test_agent [[]http[]]: turn(s) 5",
            "*[[]ws[]]: turn(s) 5",
        ]
    )


def test_unplayed_turns_fail_by_option_or_marker(project: Project, sim: Any) -> None:
    cassette = _recorded(project, sim)
    _add_unplayed_turn(cassette)
    result = project.replay("--rws-unplayed=fail")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*were never played:*", "*turn 5 (*A question no test asks*"])
    project.write(
        "test_agent", '\nimport pytest\npytestmark = pytest.mark.rws_cassette(unplayed="fail")\n' + LOOP
    )
    project.replay().assert_outcomes(failed=2)
    # off silences it; a test that played every turn is never reported.
    assert "never played" not in project.replay("--rws-unplayed=off").stdout.str()
    project.replay("--rws-unplayed=bogus").stderr.fnmatch_lines(
        ["*rws_unplayed: unknown unplayed policy 'bogus'; expected one of warn, fail, off"]
    )


# -- orphans --------------------------------------------------------------------------------------


def test_orphans_are_listed_and_deleted_only_on_request(project: Project, sim: Any) -> None:
    cassette = _recorded(project, sim)
    folder = cassette.parent.parent
    stale = folder / "test_agent" / "test_renamed_long_ago.json"
    gone = folder / "test_deleted_module" / "test_x.json"
    other = folder / "test_other" / "test_y.json"  # its module exists but this run does not collect it
    for path in (stale, gone, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cassette.read_text())
    project.write("test_other", "def test_y(rws):\n    pass\n")
    listed = project.replay("--collect-only", "-q", "--rws-list-orphans", "test_agent.py")
    listed.stdout.fnmatch_lines(
        [
            "responses-ws: 2 orphan cassette(s) found (no collected test uses them)",
            "  cassettes/test_agent/test_renamed_long_ago.json",
            "  cassettes/test_deleted_module/test_x.json",
            "  delete them with --rws-delete-orphans",
        ]
    )
    assert stale.exists() and gone.exists()
    project.replay("test_agent.py").assert_outcomes(passed=2)  # never deleted by default
    assert stale.exists() and gone.exists()
    deleted = project.replay("--rws-delete-orphans", "-k", "nothing matches", "test_agent.py")
    deleted.stdout.fnmatch_lines(["responses-ws: 2 orphan cassette(s) deleted*"])
    assert not stale.exists() and not gone.exists()
    assert cassette.exists() and other.exists()  # deselected by -k, or not collected: kept
    project.replay("test_agent.py").assert_outcomes(passed=2)


# -- save policy ----------------------------------------------------------------------------------

FAILING_AFTER_RECORDING = """
import agent_loops

def test_agent(rws):
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text == "something else"
"""


def test_a_recording_is_written_only_when_its_test_passed_unless_always(project: Project, sim: Any) -> None:
    project.write("test_agent", FAILING_AFTER_RECORDING)
    result = project.record(sim, "-W", "always")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*the recording was not written to*test_agent.json: the test did not pass*"])
    assert project.cassettes() == []
    project.record(sim, "--rws-save=always").assert_outcomes(failed=2)
    (cassette,) = project.cassettes()
    assert len(_document(cassette)["turns"]) == 5  # one transport recorded, the other replayed
    project.write("test_agent", LOOP)
    project.replay().assert_outcomes(passed=2)


# -- client events a cassette cannot hold ---------------------------------------------------------


STEER_AFTER_THE_END = """
import pytest

@pytest.mark.rws_transports("ws")
def test_late_steer(rws):
    client = rws.openai_client()
    with client.responses.connect() as connection:
        connection.response.create(model="gpt-5.2", input="hi", store=False)
        for event in connection:
            if event.type == "response.completed":
                break
        connection.send({"type": "response.steer", "previous_response_id": event.response.id,
                         "input": [{"role": "user", "content": "too late"}]})
        for late in connection:
            break  # the upstream's answer to it

@pytest.mark.rws_transports("ws")
def test_other_event(rws):
    client = rws.openai_client()
    with client.responses.connect() as connection:
        connection.send({"type": "session.update", "session": {}})
        for answer in connection:
            break
"""


def test_client_events_a_replay_cannot_serve_fail_the_recording(project: Project, sim: Any) -> None:
    project.write("test_events", STEER_AFTER_THE_END)
    result = project.record(sim)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*recording failed: a response.steer on WebSocket connection * named response 'resp_*', which no "
            "turn on that connection was streaming*Nothing was written*",
            "*recording failed: the client sent 'session.update' on WebSocket connection *; it went to the "
            "upstream, but a cassette holds response.create turns and their steers only*",
        ]
    )
    assert project.cassettes() == []


# -- expiry ---------------------------------------------------------------------------------------


def _age(cassette: Path, recorded_at: str = "2020-01-01T00:00:00+00:00") -> None:
    document = _document(cassette)
    document["recorded_at"] = recorded_at
    cassette.write_text(json.dumps(document))


def test_expired_cassettes_warn_per_test_and_in_the_run_summary(project: Project, sim: Any) -> None:
    cassette = _recorded(project, sim)
    project.replay("-o", "rws_max_age=3650d").assert_outcomes(passed=2)  # fresh: nothing said
    _age(cassette)
    result = project.replay("-o", "rws_max_age=90d", "-W", "always")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*RwsLifecycleWarning: pytest-responses-ws: cassette *test_agent.json expired: recorded "
            "2020-01-01T00:00:00+00:00 (*d ago, by pytest-responses-ws * over *), max_age is 90d*",
            "*responses-ws: expired cassettes*",
            "*test_agent.json: recorded 2020-01-01T00:00:00+00:00 (* days ago*on_expiry=warn*",
        ]
    )
    project.replay("--rws-max-age=soon").stderr.fnmatch_lines(
        ["*max_age 'soon' must be a positive duration*"]
    )


def test_expired_cassettes_fail_by_marker_and_rerecord_by_option(project: Project, sim: Any) -> None:
    marked = '\nimport pytest\npytestmark = pytest.mark.rws_cassette(max_age="30d", on_expiry="fail")\n'
    cassette = _recorded(project, sim, marked + LOOP)
    _age(cassette)
    result = project.replay()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*cassette *test_agent.json expired*re-record it*"])
    before = len(sim.simulator.requests)
    project.record(sim, "--rws-on-expiry=rerecord", mode="none").assert_outcomes(passed=2)
    assert len(sim.simulator.requests) > before  # went live
    assert _document(cassette)["recorded_at"] > "2020-01-01T00:00:00+00:00"
    project.replay().assert_outcomes(passed=2)  # fresh again


# -- verify mode ----------------------------------------------------------------------------------


def _verify(project: Project, upstream: Any, *args: str) -> pytest.RunResult:
    return project.record(
        upstream, "--rws-report=report.json", "--rws-report-html=report.html", *args, mode="verify"
    )


def _drift(project: Project) -> dict[str, list[dict[str, Any]]]:
    document = _document(project.path / "report.json")
    return {entry["transport"]: entry["differences"] for entry in document.get("drift", [])}


def test_verify_reports_exactly_the_changed_tool_arguments_and_event_type(project: Project, sim: Any) -> None:
    cassette = _recorded(project, sim)
    before = cassette.read_bytes()
    # The service changed: step 1 asks for another city, step 3's answer queues instead.
    drifted = DriftedSimulator(tool_loop_script(changed_step=1), renamed_step=3)
    with serve_simulator(simulator=drifted) as live:
        result = _verify(project, live)
        assert len(live.simulator.requests) == 10  # every turn of both runs went live
    result.assert_outcomes(failed=2)
    expected = [
        {
            "turn": 1,
            "kind": "tool_call",
            "detail": 'item 0 function_call get_weather arguments: recorded {"city":"City 1","step":1}, '
            'live {"city":"Town 1","step":1}',
        },
        {
            "turn": 3,
            "kind": "events",
            "detail": "event 1: recorded response.in_progress, live response.queued",
        },
    ]
    assert _drift(project) == {"http": expected, "ws": expected}
    assert cassette.read_bytes() == before  # verify never writes
    result.stdout.fnmatch_lines(
        [
            "*the live API's answers drifted from *test_agent.json (2 difference(s); the cassette was not changed)*",
            "*responses-ws: drift against the live API (verify mode)*",
            "*test_agent [[]http[]]: 2 difference(s) over 5 recorded / 5 live turn(s); median first event *",
        ]
    )
    html = (project.path / "report.html").read_text()
    assert "Drift against the live API" in html and "response.queued" in html


def test_verify_reports_text_drift_without_failing_unless_asked(project: Project, sim: Any) -> None:
    _recorded(project, sim)
    with serve_simulator(Script.tool_loop(4, final_text="Mild weather in every city.")) as live:
        _verify(project, live).assert_outcomes(passed=2)
        drift = _drift(project)
        assert [d["kind"] for d in drift["http"]] == ["text"] == [d["kind"] for d in drift["ws"]]
        assert drift["ws"][0]["turn"] == 4
        _verify(project, live, "--rws-verify-fail-on=all").assert_outcomes(failed=2)
    with serve_simulator(Script.tool_loop(4, final_text="The weather is mild everywhere.")) as same:
        _verify(project, same).assert_outcomes(passed=2)
        assert _drift(project) == {"http": [], "ws": []}
