"""The latency model's settings, the ``ws_gain`` budget, its report blocks and the script rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.core.budgets import BudgetSpecError, budget_report, evaluate, parse_limits
from pytest_responses_ws.core.latency import PRESETS, Projection, TurnProjection
from pytest_responses_ws.report.html import render_html
from pytest_responses_ws.report.summary import model_lines, report_document, summarize
from pytest_responses_ws.settings import SettingsError, parse_latency_model, parse_timing, resolve_settings
from pytest_responses_ws.sim import Error, FunctionCall, Script, Simulator, Text
from pytest_responses_ws.sim.simulator import ConnectionState


def _resolve(**layers: dict[str, Any]) -> Any:
    return resolve_settings(
        cli=layers.get("cli", {}),
        marker=layers.get("marker", {}),
        fixture=layers.get("fixture", {}),
        ini=layers.get("ini", {}),
    )


def test_each_source_refines_the_latency_model_below_it() -> None:
    assert _resolve().latency_model == PRESETS["fast"]
    model = _resolve(
        ini={"latency_model": "slow,scale=0.01"},
        fixture={"latency_model": {"tokens_per_s": 80}},
        cli={"latency_model": "ttft_ms=50"},
    ).latency_model
    assert (model.name, model.tokens_per_s, model.scale, model.ttft_ms) == ("slow", 80, 0.01, 50)
    # A preset starts afresh: the marker's "fast" drops the ini file's values.
    assert (
        _resolve(ini={"latency_model": "slow,scale=0.01"}, marker={"latency_model": "fast"}).latency_model
        == (PRESETS["fast"])
    )
    assert parse_timing("model", "x").model and str(parse_timing("model", "x")) == "model"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("medium", "unknown latency model preset 'medium'; expected fast or slow"),
        ("fast,scale=-1", "latency model: scale must be above 0, got -1.0"),
        ("fast,ttft_ms=soon", "latency model ttft_ms must be a number, got 'soon'"),
        ({"preset": "slow", "rate": 3}, "unknown latency model parameter(s) 'rate'"),
        ("scale=1 fast", "the preset ('fast') comes first, once"),
        (3, "latency model must be a preset name, a mapping or a LatencyModel, got 3"),
    ],
)
def test_a_bad_latency_model_is_one_line_naming_its_source(value: Any, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        parse_latency_model(value, "ini option rws_latency_model")
    assert str(error.value).startswith("pytest-responses-ws: ini option rws_latency_model: ")
    assert message in str(error.value) and "\n" not in str(error.value)


def _projection(gain_turns: bool = True) -> Projection:
    turns = (
        TurnProjection(0, False, 2000, 2000, 15, 125.0, 125.0, 110.0, 110.0),
        TurnProjection(
            1, gain_turns, 2300, 300 if gain_turns else 2300, 15, 126.5, 36.5 if gain_turns else 126.5
        ),
    )
    return Projection(PRESETS["fast"], "ws", turns)


def test_ws_gain_grammar_and_checks() -> None:
    limits = parse_limits({"ws_gain": {"min": 0.25}, "overhead_ms": 5})
    assert [limit.describe() for limit in limits] == ["ws_gain >= 0.25", "overhead_ms median <= 5"]
    assert parse_limits({"ws_gain": {"ws": 0.3}})[0].transport == "ws"
    for bad, message in (({"max": 1}, "unknown key 'max'"), (1.5, "below 1"), (True, "below 1")):
        with pytest.raises(BudgetSpecError, match=message):
            parse_limits({"ws_gain": bad})
    ws_gain = parse_limits({"ws_gain": 0.25})
    assert evaluate(ws_gain, [], transport="ws", counts={}, projection=_projection()) == []
    broken = evaluate(ws_gain, [], transport="ws", counts={}, projection=_projection(gain_turns=False))
    assert [v.describe() for v in broken] == ["ws_gain >= 0.25: modeled 0.000, limit 0.25"]
    report = budget_report(broken, [], transport="ws", scale=3.0, projection=_projection(gain_turns=False))
    assert "latency model fast (ttft 100 ms" in report and "(played over ws, http projected)" in report
    assert "   1    no" in report
    # Not for the other transport's run, and not scaled by the time scale.
    assert (
        evaluate(
            parse_limits({"ws_gain": {"http": 0.9}}), [], transport="ws", counts={}, projection=_projection()
        )
        == []
    )


def _summary(transport: str, projection: Projection | None) -> dict[str, Any]:
    return summarize(
        nodeid=f"t.py::test_loop[{transport}]",
        test="t.py::test_loop",
        transport=transport,
        turns=[],
        counts={},
        projection=None if projection is None else projection.as_dict(),
    )


def test_reports_show_both_transports_modeled_with_the_gain() -> None:
    ws = _projection()
    http = Projection(ws.model, "http", ws.turns)
    summaries = [_summary("http", http), _summary("ws", ws)]
    lines = model_lines(summaries)
    assert lines[0].split() == ["test", "run", "HTTP", "ms", "WebSocket", "ms", "gain", "latency", "model"]
    assert lines[1].split() == ["t.py::test_loop", "http", "251.5", "161.5*", "36%", "fast"]
    assert lines[2].split() == ["ws", "251.5*", "161.5", "36%", "fast"]
    assert model_lines([_summary("ws", None)]) == []
    document = report_document(summaries)
    assert document["comparisons"][0]["modeled"]["gain"] == pytest.approx(1 - 161.5 / 251.5)
    page = render_html(document)
    assert page.count('class="waterfall model"') == 2
    assert "WebSocket mode saves 35.8% of the HTTP time" in page
    assert "WebSocket *" in page and "HTTP + SSE *" in page  # the projected side, per run


def test_a_script_gives_each_error_once_and_answers_by_model_turn() -> None:
    def reply(request: Any) -> Any:
        return Text(f"{request.turn} turns, {len(request.tool_outputs)} results over {request.transport}")

    simulator = Simulator(Script([FunctionCall("f", {"x": 1}), Error(503), reply]))
    state = ConnectionState(transport="http")
    first = simulator.respond({"input": "go"}, connection=state)[-1]["response"]
    call = first["output"][0]
    history = ["go", call, {"type": "function_call_output", "call_id": call["call_id"], "output": "1"}]
    history = [{"role": "user", "content": "go"}, *history[1:]]
    refused = simulator.respond({"input": history}, connection=state)
    assert refused == [
        {
            "type": "error",
            "status": 503,
            "error": {
                "type": "server_error",
                "code": "service_unavailable",
                "message": refused[0]["error"]["message"],
                "param": None,
            },
        }
    ]
    assert simulator.answer({"input": "x"}, connection=state).headers == ()
    final = simulator.respond({"input": history}, connection=state)[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "1 turns, 1 results over http"
    with pytest.raises(ValueError, match="must be an error status"):
        Error(200)
    assert Simulator(Script([Error(429, retry_after=0.5), Text("ok")])).answer(
        {"input": "x"}, connection=state
    ).headers == (("retry-after", "0.5"),)


@given(
    value=st.one_of(st.integers(-1, 0), st.floats(-1, 0.999, allow_nan=False)),
    spelling=st.sampled_from(["bare", "min", "transport", "transport-min"]),
    transport=st.sampled_from(["http", "ws"]),
)
@settings(max_examples=60, deadline=None)
def test_every_valid_ws_gain_spelling_parses(value: float, spelling: str, transport: str) -> None:
    raw: Any = {
        "bare": value,
        "min": {"min": value},
        "transport": {transport: value},
        "transport-min": {transport: {"min": value}},
    }[spelling]
    (limit,) = parse_limits({"ws_gain": raw})
    assert (limit.metric, limit.value, limit.at_least) == ("ws_gain", float(value), True)
    assert limit.transport == (transport if spelling.startswith("transport") else None)
