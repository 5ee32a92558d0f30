"""The pure measurement core: turn metrics from traces, the budget grammar, summaries."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.core.budgets import (
    METRICS,
    STATISTICS,
    BudgetSpecError,
    Limit,
    budget_report,
    evaluate,
    parse_limits,
    turn_table,
)
from pytest_responses_ws.core.metrics import (
    ToolSpan,
    TurnTrace,
    compute_turn_metrics,
    percentile,
    statistic,
)
from pytest_responses_ws.report.summary import markdown_table, report_document, summarize, terminal_lines

MS = 1_000_000
USER = {"role": "user", "content": "weather?"}
CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "c1",
    "name": "w",
    "arguments": "{}",
    "status": "completed",
}
RESULT = {"type": "function_call_output", "call_id": "c1", "output": "{}"}


def trace(
    arrived_ms: float,
    ended_ms: float,
    *,
    transport: Any = "ws",
    request: dict[str, Any] | None = None,
    output: list[Any] | None = None,
    connection: int = 0,
    lane: str | None = None,
    opened_ms: float | None = 0.0,
    new: bool = False,
) -> TurnTrace:
    return TurnTrace(
        transport=transport,
        connection=connection,
        lane=lane,
        arrived_ns=int(arrived_ms * MS),
        request=request or {"input": [USER]},
        request_bytes=100,
        new_connection=new,
        connection_opened_ns=None if opened_ms is None else int(opened_ms * MS),
        terminal_ns=int(ended_ms * MS),
        output=output or [],
    )


def test_overhead_is_the_gap_since_the_previous_terminal_minus_tool_time() -> None:
    traces = [trace(2, 10, new=True), trace(30, 40), trace(45, 50)]
    metrics = compute_turn_metrics(traces, [ToolSpan("search", int(12 * MS), int(20 * MS))])
    assert [m.gap_ms for m in metrics] == [2.0, 20.0, 5.0]  # the first from the connection's opening
    assert [m.tool_ms for m in metrics] == [0.0, 8.0, 0.0]
    assert [m.overhead_ms for m in metrics] == [2.0, 12.0, 5.0]
    assert [m.upstream_ms for m in metrics] == [8.0, 10.0, 5.0]
    assert [m.end_to_end_ms for m in metrics] == [10.0, 30.0, 10.0]
    assert [m.arrived_at_ms for m in metrics] == [2.0, 30.0, 45.0]


def test_first_http_turn_has_no_overhead_and_later_ones_count_from_the_previous_answer() -> None:
    traces = [trace(0, 5, transport="http", opened_ms=None), trace(9, 12, transport="http", opened_ms=None)]
    first, second = compute_turn_metrics(traces)
    assert first.overhead_ms is None
    assert first.end_to_end_ms is None
    assert second.overhead_ms == 4.0


def test_lanes_and_connections_are_separate_streams() -> None:
    traces = [
        trace(1, 10, lane="a"),
        trace(2, 6, lane="b"),
        trace(12, 14, lane="a"),
        trace(7, 8, connection=1, opened_ms=5),
    ]
    by_arrival = compute_turn_metrics(traces)
    assert [(m.lane, m.connection, m.overhead_ms) for m in by_arrival] == [
        ("a", 0, 1.0),
        ("b", 0, 2.0),
        (None, 1, 2.0),
        ("a", 0, 2.0),
    ]


def test_resent_items_count_input_the_conversation_already_holds() -> None:
    chained = [
        trace(0, 1, request={"input": [USER]}, output=[CALL]),
        trace(2, 3, request={"input": [RESULT], "previous_response_id": "resp_1"}),
    ]
    resent = [
        trace(0, 1, request={"input": [USER]}, output=[CALL]),
        # The call comes back as the client saw it (with id and status): still the same item.
        trace(2, 3, request={"input": [{"role": "user", "content": "weather?"}, CALL, RESULT]}),
    ]
    assert [m.resent_items for m in compute_turn_metrics(chained)] == [0, 0]
    assert [m.chained for m in compute_turn_metrics(chained)] == [False, True]
    metrics = compute_turn_metrics(resent)
    assert [m.resent_items for m in metrics] == [0, 2]
    assert metrics[1].resent_bytes > 0
    assert [m.input_items for m in metrics] == [1, 3]


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=12),
    tool_share=st.floats(min_value=0, max_value=1),
)
@settings(max_examples=80, deadline=None)
def test_overhead_never_negative_and_never_above_the_gap(gaps: list[int], tool_share: float) -> None:
    traces, spans, now = [], [], 0
    for gap in gaps:
        start = now
        now += gap
        spans.append(ToolSpan("t", start, start + int(gap * tool_share)))
        traces.append(
            TurnTrace(
                "ws", 0, None, now, {"input": []}, 0, False, connection_opened_ns=0, terminal_ns=now + 10
            )
        )
        now += 10
    for metric in compute_turn_metrics(traces, spans):
        assert metric.gap_ms is not None and metric.overhead_ms is not None
        assert 0 <= metric.overhead_ms <= metric.gap_ms


def test_statistics() -> None:
    assert percentile([], 0.5) is None
    assert statistic([1, 2, 3, 4], "median") == 2.5
    assert statistic([1.0] * 19 + [100.0], "p95") == pytest.approx(5.95)
    assert statistic([1, 2], "total") == 3.0
    assert statistic([3, 1], "max") == 3


# --------------------------------------------------------------------------- budgets


def test_grammar_expands_statistics_and_transports() -> None:
    limits = parse_limits(
        {"overhead_ms": {"ws": {"p95": 3}, "http": 20}, "resent_items": 0, "statistic": "max"}
    )
    assert limits == [
        Limit("overhead_ms", 3.0, "p95", "ws"),
        Limit("overhead_ms", 20.0, "max", "http"),
        Limit("resent_items", 0.0, None, None),
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"latency": 1}, "unknown budget metric 'latency'"),
        ({"overhead_ms": {"p99": 1}}, "unknown key 'p99'"),
        ({"request_bytes": {"p95": 1}}, "request_bytes is exact"),
        ({"overhead_ms": "fast"}, "expected a number >= 0"),
        ({"overhead_ms": True}, "expected a number >= 0"),
        ({"statistic": "mean", "overhead_ms": 1}, "unknown statistic 'mean'"),
        ({}, "at least one limit"),
        ({"overhead_ms": {"ws": {"ws": 1}}}, "unknown key 'ws'"),
    ],
)
def test_bad_budgets_say_what_is_valid(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(BudgetSpecError, match=message):
        parse_limits(spec)


@given(
    metric=st.sampled_from(METRICS),
    value=st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False)),
    stat=st.sampled_from(STATISTICS),
    transport=st.sampled_from([None, "http", "ws"]),
)
@settings(max_examples=100, deadline=None)
def test_every_valid_spelling_parses(metric: str, value: float, stat: str, transport: str | None) -> None:
    timed = metric in ("overhead_ms", "end_to_end_ms")
    raw: Any = {stat: value} if timed else value
    if transport:
        raw = {transport: raw}
    (limit,) = parse_limits({metric: raw})
    assert limit.metric == metric
    assert limit.value == float(value)
    assert limit.transport == transport
    assert limit.statistic == (stat if timed else None)


def _turns() -> list[Any]:
    return compute_turn_metrics(
        [
            trace(1, 2, new=True, request={"input": [USER]}, output=[CALL]),
            trace(20, 21, request={"input": [USER, CALL, RESULT]}),
        ]
    )


def test_evaluate_marks_the_breaching_turns_and_scales_only_time_limits() -> None:
    turns = _turns()
    limits = parse_limits({"overhead_ms": {"max": 10}, "resent_items": 0, "connections": 1})
    violations = evaluate(limits, turns, transport="ws", counts={"connections": 2}, scale=3.0)
    # Overhead 18 ms is within 10 ms x scale 3; the exact limits are not scaled.
    assert [(v.limit.metric, v.actual, v.scaled_value, v.turns) for v in violations] == [
        ("resent_items", 2.0, 0.0, (1,)),
        ("connections", 2.0, 1.0, ()),
    ]
    # Without the scale the time limit breaks too, and the table marks turn 1's overhead.
    violations = evaluate(limits, turns, transport="ws", counts={"connections": 1})
    assert [v.limit.metric for v in violations] == ["overhead_ms", "resent_items"]
    table = turn_table(turns, violations)
    assert "18.000!" in table
    assert "2!" in table.splitlines()[2].split()  # turn 1's resent items
    report = budget_report(violations, turns, transport="ws", scale=1.0)
    assert report.startswith("Responses API budget exceeded over ws (2 turns, time scale 1):")
    assert "overhead_ms max <= 10: measured 18 ms, limit 10 ms" in report


def test_transport_limits_apply_to_their_transport_only() -> None:
    limits = parse_limits({"resent_items": {"ws": 0}})
    assert evaluate(limits, _turns(), transport="http", counts={}) == []
    assert len(evaluate(limits, _turns(), transport="ws", counts={})) == 1


# --------------------------------------------------------------------------- summaries


def test_summaries_pair_transports_and_render() -> None:
    turns = _turns()
    http = summarize(
        nodeid="t.py::a[http]", test="t.py::a", transport="http", turns=turns, counts={"connections": 1}
    )
    ws = summarize(
        nodeid="t.py::a[ws]", test="t.py::a", transport="ws", turns=turns, counts={"connections": 1}
    )
    document = report_document([ws, http])
    assert [t["transport"] for t in document["tests"]] == ["http", "ws"]
    assert document["comparisons"] == [
        {
            "test": "t.py::a",
            "overhead_median_ratio": 1.0,
            "end_to_end_total_ratio": 1.0,
            "request_bytes_ratio": 1.0,
        }
    ]
    lines = terminal_lines([http, ws])
    assert lines[0].split()[:3] == ["test", "transport", "turns"]
    assert lines[1].startswith("t.py::a") and "http" in lines[1]
    assert lines[2].split()[0] == "ws"
    assert lines[3].split()[0] == "http/ws"
    assert markdown_table([http, ws]).startswith("| test | transport |")
    assert http["resent_items"] == 2
    assert http["overhead_share"] == pytest.approx(
        http["overhead_ms"]["total"] / http["end_to_end_ms"]["total"]
    )


def test_a_lane_waiting_while_the_server_streams_others_is_not_client_overhead() -> None:
    # A planner lane chains a turn after its workers: the server was busy until 20 ms.
    traces = [trace(0, 2, lane="planner"), trace(3, 20, lane="worker"), trace(21, 25, lane="planner")]
    assert [m.overhead_ms for m in compute_turn_metrics(traces)] == [0.0, 1.0, 1.0]


def test_a_repeated_message_or_a_new_conversation_is_not_resent() -> None:
    again = {"role": "user", "content": "continue"}
    chained = [
        trace(0, 1, request={"input": [again]}, output=[CALL]),
        trace(2, 3, request={"input": [RESULT, again], "previous_response_id": "resp_a"}),
    ]
    chained[0].response_id = "resp_a"
    assert [m.resent_items for m in compute_turn_metrics(chained)] == [0, 0]
    # A second, independent conversation that opens with the same prompt resends nothing.
    fresh = [trace(0, 1, request={"input": [USER]}, output=[CALL]), trace(2, 3, request={"input": [USER]})]
    assert [m.resent_items for m in compute_turn_metrics(fresh)] == [0, 0]
    # A chained request that also resends the history is caught.
    resend = [
        trace(0, 1, request={"input": [USER]}, output=[CALL]),
        trace(2, 3, request={"input": [USER, CALL, RESULT], "previous_response_id": "resp_b"}),
    ]
    resend[0].response_id = "resp_b"
    assert [m.resent_items for m in compute_turn_metrics(resend)] == [0, 2]
