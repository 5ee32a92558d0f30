"""Per-turn measurement and budgets, proven on purpose-built loops.

Deliberate delays stand in for a slow client. Each is sized so that a slower machine
can only make a failing case fail harder and never breaks a passing one: the budgets
sit far below the delay and far above what the SDK needs per turn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.project import Project

LOOPS = '''
import json, time
import pytest
from websockets.sync.client import connect

TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]
DELAY_S = 0.15  # a deliberately slow client


def outputs(response):
    return [{"type": "function_call_output", "call_id": o.call_id, "output": "{}"}
            for o in response.output if o.type == "function_call"]


def chained(rws, *, slow=False, in_tool=False):
    """WebSocket mode done right: one connection, previous_response_id, only new items."""
    client = rws.openai_client()
    previous, items = None, [{"role": "user", "content": "weather?"}]
    with client.responses.connect() as conn:
        while True:
            conn.response.create(model="gpt-5.2", input=items, tools=TOOLS, store=False,
                                 previous_response_id=previous)
            for event in conn:
                if event.type == "response.completed":
                    break
            items = outputs(event.response)
            if not items:
                return
            previous = event.response.id
            if slow:
                if in_tool:
                    with rws.tool("get_weather"):
                        time.sleep(DELAY_S)
                else:
                    time.sleep(DELAY_S)


def resend_history(rws, *, new_connection_per_turn=False):
    """Resends the whole history every turn, over either transport."""
    client = rws.openai_client()
    history = [{"role": "user", "content": "weather?"}]
    conn_cm = None if new_connection_per_turn or rws.transport == "http" else client.responses.connect()
    conn = conn_cm.__enter__() if conn_cm else None
    try:
        while True:
            if rws.transport == "ws":
                if new_connection_per_turn:
                    with client.responses.connect() as fresh:
                        fresh.response.create(model="gpt-5.2", input=history, tools=TOOLS, store=False)
                        response = next(e for e in fresh if e.type == "response.completed").response
                else:
                    conn.response.create(model="gpt-5.2", input=history, tools=TOOLS, store=False)
                    response = next(e for e in conn if e.type == "response.completed").response
            else:
                # A new client per turn opens a new connection per turn.
                c = rws.openai_client() if new_connection_per_turn else client
                response = c.responses.create(model="gpt-5.2", input=history, tools=TOOLS, store=False)
            new = outputs(response)
            if not new:
                return
            history += [o.to_dict() for o in response.output] + new
    finally:
        if conn_cm:
            conn_cm.__exit__(None, None, None)
'''


def _project(
    project: Project, sim: Any, tests: str, runs: int | None = None, budgets: str = "off"
) -> Project:
    """Write the loops and ``tests``, and record their cassettes (``runs`` items pass)."""
    project.write("loops", LOOPS)
    project.write("test_budget", tests)
    expected = tests.count("def test_") * 2 if runs is None else runs
    project.record(sim, f"--rws-budgets={budgets}").assert_outcomes(passed=expected)
    return project


def test_a_slow_client_fails_an_overhead_budget_and_tool_time_does_not_count(
    project: Project, sim: Any
) -> None:
    _project(
        project,
        sim,
        """
import loops, pytest

@pytest.mark.rws_transports("ws")
@pytest.mark.rws_budget(overhead_ms=60)
def test_slow(rws):
    loops.chained(rws, slow=True)

@pytest.mark.rws_transports("ws")
@pytest.mark.rws_budget(overhead_ms=60)
def test_slow_in_tool(rws):
    loops.chained(rws, slow=True, in_tool=True)
    assert sum(t.tool_ms for t in rws.turns) >= 150 * 3  # the tool time was seen, and left out
""",
        runs=2,
    )
    result = project.replay()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_slow[[]ws[]]*",
            "Responses API budget exceeded over ws (5 turns, time scale 1):",
            "  overhead_ms median <= 60: measured *ms, limit 60 ms",
            "*turn*conn*new*bytes*items*resent*overhead ms*",
        ]
    )
    assert "test_slow_in_tool[ws] FAILED" not in result.stdout.str()
    # A slow machine gets a scale factor instead of a looser budget.
    project.replay("--rws-budget-scale=10").assert_outcomes(passed=2)


def test_resending_history_over_websocket_fails_resent_items_zero(project: Project, sim: Any) -> None:
    _project(
        project,
        sim,
        """
import loops, pytest

@pytest.mark.rws_budget(resent_items={"ws": 0})
def test_chained(rws):
    if rws.transport == "ws":
        loops.chained(rws)
    else:
        loops.resend_history(rws)

@pytest.mark.rws_budget(resent_items={"ws": 0})
def test_resends(rws):
    loops.resend_history(rws)
""",
    )
    result = project.replay("-v")
    result.stdout.fnmatch_lines(
        [
            "*test_chained[[]http[]] PASSED*",
            "*test_chained[[]ws[]] PASSED*",
            "*test_resends[[]http[]] PASSED*",  # HTTP has no other way: the limit is for ws only
            "*test_resends[[]ws[]] FAILED*",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(["  resent_items max per turn [[]ws[]] <= 0: measured *, limit 0"])


def test_a_new_connection_per_turn_fails_connections_one(project: Project, sim: Any) -> None:
    _project(
        project,
        sim,
        """
import loops, pytest

@pytest.mark.rws_budget(connections=1)
def test_one_connection(rws):
    loops.resend_history(rws)
    assert all(not t.new_connection for t in rws.turns[1:])

@pytest.mark.rws_budget(connections=1)
def test_connection_per_turn(rws):
    loops.resend_history(rws, new_connection_per_turn=True)
""",
    )
    result = project.replay("-v")
    result.stdout.fnmatch_lines(
        [
            "*test_one_connection[[]http[]] PASSED*",
            "*test_one_connection[[]ws[]] PASSED*",
            "*test_connection_per_turn[[]http[]] FAILED*",
            "*test_connection_per_turn[[]ws[]] FAILED*",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(["  connections <= 1: measured 5, limit 1"])


ASSERTING = """
import loops, pytest

def test_measured(rws):
    loops.resend_history(rws)
    turns = rws.turns
    assert len(turns) == 5
    assert [t.input_items for t in turns] == [1, 3, 5, 7, 9]
    assert [t.resent_items for t in turns] == [0, 2, 4, 6, 8]  # history and earlier outputs
    assert all(t.request_bytes > 0 and t.upstream_ms is not None for t in turns)
    assert turns[0].new_connection and turns[0].transport == rws.transport
    rws.assert_budget(input_items=9, request_bytes=100_000)
    with pytest.raises(AssertionError, match="input_items max per turn <= 8: measured 9"):
        rws.assert_budget(input_items=8)
"""


def test_turns_and_assert_budget_inside_the_test(project: Project, sim: Any) -> None:
    _project(project, sim, ASSERTING, budgets="enforce")  # measured while recording too
    project.replay().assert_outcomes(passed=2)


def test_warn_and_off_modes(project: Project, sim: Any) -> None:
    _project(
        project,
        sim,
        """
import loops, pytest

@pytest.mark.rws_budget(input_items=1)
def test_over(rws):
    loops.resend_history(rws)
""",
    )
    project.replay().assert_outcomes(failed=2)
    warned = project.replay("--rws-budgets=warn")
    warned.assert_outcomes(passed=2, warnings=2)
    warned.stdout.fnmatch_lines(["*RwsBudgetWarning: Responses API budget exceeded*"])
    project.replay("--rws-budgets=off").assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("overhead=5", "*unknown budget metric 'overhead'; expected one of overhead_ms, end_to_end_ms, *"),
        (
            "overhead_ms={'p99': 5}",
            "*overhead_ms: unknown key 'p99'; expected http, ws, median, p95, max, total*",
        ),
        ("statistic='mean', overhead_ms=5", "*unknown statistic 'mean'*"),
        ("connections={'median': 1}", "*connections: unknown key 'median'*connections is exact*"),
        ("resent_items=-1", "*resent_items: expected a number >= 0, got -1*"),
    ],
)
def test_bad_budget_is_a_usage_error_at_collection(project: Project, marker: str, expected: str) -> None:
    project.write(
        "test_x", f"import pytest\n\n@pytest.mark.rws_budget({marker})\ndef test_x(rws):\n    pass\n"
    )
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


@pytest.mark.parametrize("args", [["--rws-budgets=strict"], ["--rws-budget-scale=0"]])
def test_bad_budget_options(project: Project, args: list[str]) -> None:
    project.write("test_x", "def test_x():\n    pass\n")
    assert project.run(*args).ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_reports_terminal_json_and_github_summary(
    project: Project, sim: Any, workers: list[str], tmp_path: Path
) -> None:
    _project(project, sim, ASSERTING, budgets="enforce")
    step_summary = tmp_path / "step-summary.md"
    project.monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = project.replay("--rws-report=out/report.json", "--rws-report-html=out/report.html", *workers)
    result.assert_outcomes(passed=2)
    # The summary is printed once, by the controller, with the HTTP/WebSocket ratio row.
    assert result.stdout.str().count("responses-ws: per-turn overhead") == 1
    result.stdout.fnmatch_lines(
        [
            "*test*transport*turns*overhead median ms*p95 ms*bytes/turn*resent items*conns*",
            "test_budget.py::test_measured*http*5*",
            "*ws*5*",
            "*http/ws*x*",
        ]
    )
    document = json.loads((project.path / "out" / "report.json").read_text())
    assert document["version"] == 1
    assert [(t["test"], t["transport"]) for t in document["tests"]] == [
        ("test_budget.py::test_measured", "http"),
        ("test_budget.py::test_measured", "ws"),
    ]
    assert document["tests"][1]["resent_items"] == 20
    assert len(document["tests"][0]["turn_metrics"]) == 5
    assert document["comparisons"][0]["test"] == "test_budget.py::test_measured"
    assert "| test | transport | turns |" in step_summary.read_text()
    page = (project.path / "out" / "report.html").read_text()
    assert page.count("<svg") == 2  # a waterfall per run
    assert "test_budget.py::test_measured" in page


def test_assert_budget_and_warn_mode_violations_reach_the_reports(project: Project, sim: Any) -> None:
    _project(
        project,
        sim,
        """
import loops, pytest

@pytest.mark.rws_budget(input_items=1)
def test_over(rws):
    loops.resend_history(rws)
    rws.assert_budget(connections=0)
""",
        budgets="off",
    )
    result = project.replay("--rws-budgets=warn", "--rws-report=report.json", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, warnings=4)
    result.stdout.fnmatch_lines(["*/test_budget.py:*: RwsBudgetWarning*"])  # attributed to the test file
    document = json.loads((project.path / "report.json").read_text())
    for test in document["tests"]:
        assert len(test["budget_violations"]) == 2
        assert "connections <= 0" in test["budget_violations"][0]
    assert "rws_summary" not in (project.path / "junit.xml").read_text()


def test_a_malformed_assert_budget_is_a_type_error_in_every_mode(project: Project) -> None:
    project.write(
        "test_x",
        "import pytest\n\n"
        "@pytest.mark.rws_transports('ws')\n"
        "def test_x(rws):\n"
        "    with pytest.raises(TypeError, match='unknown budget metric'):\n"
        "        rws.assert_budget(latency=1)\n",
    )
    for mode in ("enforce", "warn", "off"):
        project.run(f"--rws-budgets={mode}").assert_outcomes(passed=1)
