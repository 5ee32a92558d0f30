"""The latency model end to end: "how much faster would my loop be over WebSocket?".

A 20-tool-call loop shaped like the model's reference loop is recorded from the simulator
(its script), then replayed under ``--rws-timing=model`` through the real openai SDK over both
transports, and through openai-agents. Everything asserted is a modeled figure: the model is
deterministic, its pacing in these runs is scaled down to a ten-thousandth, and no wall-clock
time is checked (the benchmark measures those: benchmarks/bench_ws_gain.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.project import Project

SUPPORT = Path(__file__).parent / "support"
#: The model's pacing in these runs: a ten-thousandth of the service's time (ratios unchanged).
FAST_SCALED = "--rws-latency-model=fast,scale=0.0001"

LOOP_TESTS = """
import pytest
import model_loops

SCRIPT = pytest.mark.rws_script(*model_loops.script_steps(20))
# One recording serves every way of running the loop: requests match on their effective context.
LOOP = pytest.mark.rws_cassette("loop")


@SCRIPT
@LOOP
def test_chained(rws):
    assert model_loops.run(rws, "chained").startswith("Fixed")


@SCRIPT
@LOOP
@pytest.mark.rws_transports("ws")
def test_resend(rws):
    assert model_loops.run(rws, "resend").startswith("Fixed")


@SCRIPT
@pytest.mark.rws_transports("ws")
@pytest.mark.asyncio
async def test_agents(rws):
    assert (await model_loops.run_agent(rws)).startswith("Fixed")
"""


def _project(project: Project, tests: str) -> Project:
    project.write("model_loops", (SUPPORT / "model_loops.py").read_text(encoding="utf-8"))
    project.write("test_loops", tests)
    return project


def _model_block(html: str, test_id: str) -> str:
    """The modeled-timelines block of the run ``test_id`` (``test_x[ws]``) in the HTML report."""
    shown = test_id.replace("[", "<wbr>[")  # as the report breaks a node id
    article = html[html.index(f"::<wbr>{shown}</code>") :]
    start = article.index('<div class="model"')
    return article[start : article.index("</svg></div>", start)]


def _runs(report: Path) -> dict[str, dict[str, Any]]:
    document = json.loads(report.read_text(encoding="utf-8"))
    return {summary["nodeid"].split("::")[-1]: summary for summary in document["tests"]}


def test_a_20_tool_call_loop_replayed_under_the_model_gains_as_published_and_history_resending_does_not(
    project: Project,
) -> None:
    _project(project, LOOP_TESTS)
    # Recorded from the simulator: the script is the upstream, so no key and no network.
    project.replay(
        "--rws-record-mode=once", "--rws-transports=ws", "-k", "chained or agents"
    ).assert_outcomes(passed=2)
    assert len(project.cassettes()) == 2

    result = project.replay(
        "--rws-timing=model", FAST_SCALED, "--rws-report=report.json", "--rws-report-html=r.html"
    )
    result.assert_outcomes(passed=4)
    runs = _runs(project.path / "report.json")
    chained_ws, chained_http = (
        runs["test_chained[ws]"]["projection"],
        runs["test_chained[http]"]["projection"],
    )
    # The published shape: ~40% faster end to end for a 20-tool-call loop on a fast model.
    assert chained_ws["played"] == "ws"
    assert 0.55 <= chained_ws["ratio"] <= 0.65
    assert all(turn["held"] for turn in chained_ws["turns"][1:]) and not chained_ws["turns"][0]["held"]
    # The [http] run projects the same loop over WebSocket from its own turns alone.
    assert chained_http["played"] == "http"
    assert chained_http["ws_ms"] == pytest.approx(chained_ws["ws_ms"], rel=0.01)
    assert chained_http["http_ms"] == pytest.approx(chained_ws["http_ms"], rel=0.01)
    # Resending the whole history over WebSocket (as openai-agents' WebSocket model does) buys nothing.
    for name in ("test_resend[ws]", "test_agents[ws]"):
        projection = runs[name]["projection"]
        assert projection["ratio"] >= 0.9, name
        assert not any(turn["held"] for turn in projection["turns"]), name
    assert len(runs["test_agents[ws]"]["projection"]["turns"]) == 21

    pairs = {
        pair["test"].split("::")[-1]: pair
        for pair in json.loads((project.path / "report.json").read_text())["comparisons"]
    }
    assert 0.35 <= pairs["test_chained"]["modeled"]["gain"] <= 0.45
    result.stdout.fnmatch_lines(
        [
            "*responses-ws: modeled service time, HTTP vs WebSocket*",
            "test_loops.py::test_chained  http * *[*] *4?%*fast",
            "                             ws *[*] * 4?%*fast",
        ]
    )
    html = (project.path / "r.html").read_text(encoding="utf-8")
    assert html.count('class="waterfall model"') == 4  # both transports' timelines, per run
    # Each run's block: its two timelines on one scale, each with its modeled total, and the gain.
    for name in ("test_chained[http]", "test_chained[ws]"):
        block = _model_block(html, name)
        projection = runs[name]["projection"]
        projected = "WebSocket *" if name.endswith("[http]") else "HTTP + SSE *"
        assert projected in block, name
        assert f">{projection['http_ms']:,.0f} ms</text>" in block, name
        assert f">{projection['ws_ms']:,.0f} ms</text>" in block, name
        assert f"WebSocket mode saves {projection['gain'] * 100:.1f}% of the HTTP time" in block, name
        assert block.count('class="seg service') == block.count('class="seg inference') == 2 * 21, name


def test_the_projection_is_the_same_under_instant_replay_and_replay_is_paced_by_the_model(
    project: Project,
) -> None:
    _project(
        project,
        """
import json
import pytest
import model_loops


@pytest.mark.rws_script(*model_loops.script_steps(5))
def test_loop(rws):
    model_loops.run(rws)
    projection = rws.projection
    with open("projections.jsonl", "a") as out:
        print(json.dumps([rws.transport, projection.http_ms, projection.ws_ms]), file=out)
    if rws.settings.timing.model:
        # Each replayed turn took at least its modeled time, scaled (asyncio.sleep never ends early
        # by more than the clock's resolution).
        scale = rws.settings.latency_model.scale
        modeled = {t.index: (t.ws_ms if rws.transport == "ws" else t.http_ms) for t in projection.turns}
        for turn in rws.turns:
            assert turn.upstream_ms >= modeled[turn.index] * scale - 1.0
""",
    )
    project.replay("--rws-record-mode=once").assert_outcomes(passed=2)
    projections = project.path / "projections.jsonl"
    projections.unlink()
    project.replay("--rws-report=instant.json").assert_outcomes(passed=2)
    instant_lines = sorted(projections.read_text().splitlines())
    projections.unlink()
    project.replay(
        "--rws-timing=model", "--rws-latency-model=fast,scale=0.01", "--rws-report=modeled.json"
    ).assert_outcomes(passed=2)
    # The model is deterministic: paced or not, the projection is the same.
    assert sorted(projections.read_text().splitlines()) == instant_lines
    instant, modeled = _runs(project.path / "instant.json"), _runs(project.path / "modeled.json")
    assert "projection" not in instant["test_loop[ws]"]  # reported for modeled tests only
    for name in ("test_loop[http]", "test_loop[ws]"):
        projection = modeled[name]["projection"]
        assert projection["model"]["scale"] == 0.01
        assert 0.6 < projection["ratio"] < 0.8  # 5 tool calls: less gain than 20


BUDGETS = """
import pytest
import model_loops

SCRIPT = pytest.mark.rws_script(*model_loops.script_steps(10))


@SCRIPT
@pytest.mark.rws_budget(ws_gain={"min": 0.25})
def test_chained(rws):
    model_loops.run(rws, "chained")


@SCRIPT
@pytest.mark.rws_transports("ws")
@pytest.mark.rws_budget(ws_gain={"min": 0.25})
def test_resend(rws):
    model_loops.run(rws, "resend")


@SCRIPT
@pytest.mark.rws_transports("ws")
@pytest.mark.rws_budget(ws_gain={"ws": {"min": 0.25}})
def test_reconnect(rws):
    model_loops.run(rws, "reconnect")
"""


def test_a_ws_gain_budget_fails_the_loops_that_lose_the_websocket_advantage(project: Project) -> None:
    _project(project, BUDGETS)
    # Scripted, no cassette: the simulator answers live, and the budget needs no paced replay.
    result = project.replay("--rws-report=report.json")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_resend?ws?*",
            "*Responses API budget exceeded over ws*",
            "*ws_gain >= 0.25: modeled 0.000, limit 0.25",
            "*latency model fast (ttft 100 ms, 1000 tok/s*gain 0.000 (played over ws, http projected)",
            "*turn  held  input tok  ws input tok*",
            "*   1    no*",
        ]
    )
    # A chain across a reconnect is not held on its connection either: no gain.
    result.stdout.fnmatch_lines(["*test_reconnect?ws?*", "*ws_gain ?ws? >= 0.25: modeled 0.0??, limit 0.25"])
    runs = _runs(project.path / "report.json")
    assert runs["test_chained[ws]"]["projection"]["gain"] >= 0.25
    assert runs["test_reconnect[ws]"]["budget_violations"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--rws-latency-model=fats"], "*unknown latency model preset 'fats'; expected fast or slow*"),
        (["--rws-latency-model=fast,scale=0"], "*latency model: scale must be above 0, got 0.0*"),
        (["--rws-latency-model=fast,tft_ms=1"], "*unknown latency model parameter(s) 'tft_ms'*"),
        (
            ["--rws-timing=modle"],
            "*unknown timing 'modle'; expected instant, recorded or a positive factor such as 0.5, or model*",
        ),
    ],
)
def test_bad_latency_options_stop_the_run_in_one_line(
    project: Project, args: list[str], expected: str
) -> None:
    project.write("test_x", "def test_x(rws):\n    pass\n")
    result = project.replay(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()


def test_bad_latency_marker_and_budget_are_one_line_errors(project: Project) -> None:
    project.write(
        "test_x",
        """
import pytest

@pytest.mark.rws_cassette(latency_model={"preset": "slow", "tokens_per_s": -1})
def test_marker(rws):
    pass
""",
    )
    result = project.replay()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*latency_model: latency model: tokens_per_s must be above 0, got -1.0*"])
    project.write(
        "test_x", "import pytest\n\n@pytest.mark.rws_budget(ws_gain={'max': 1})\ndef test_b(rws):\n    pass\n"
    )
    result = project.replay()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ws_gain: unknown key 'max'; expected min, http, ws*"])


def test_a_non_streamed_answer_replayed_under_the_model_comes_when_its_turn_would_end(
    project: Project,
) -> None:
    # Paced timings used to send a JSON answer at once; it now waits for its turn's modeled end.
    project.write(
        "test_json",
        """
import pytest
from pytest_responses_ws.sim import Text


@pytest.mark.rws_script(Text("A short answer."))
@pytest.mark.rws_transports("http")
def test_json(rws):
    response = rws.openai_client().responses.create(model="gpt-5.2", input="hi")
    assert response.output_text == "A short answer."
    if rws.settings.timing.model:
        (modeled,) = rws.projection.turns
        (turn,) = rws.turns
        # A lower bound only: a paced answer never comes early (no wall-clock ceiling).
        assert turn.upstream_ms >= modeled.http_ms * rws.settings.latency_model.scale - 1.0
""",
    )
    project.replay("--rws-record-mode=once").assert_outcomes(passed=1)
    project.replay("--rws-timing=model", "--rws-latency-model=slow,scale=0.1").assert_outcomes(passed=1)
