"""Unit tests of ``core.faults``: validation, selection, what an injection says, and the
engine's use of it (no socket, no clock)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_responses_ws import faults
from pytest_responses_ws.cassette.model import RecordedEvent, Transport, Turn
from pytest_responses_ws.core.engine import (
    EngineSettings,
    FailTurn,
    Forward,
    PlayFrames,
    PlayHttp,
    TurnEngine,
    TurnRequest,
)
from pytest_responses_ws.core.faults import FaultError, FaultPlan, InjectFault, Injection, validate_faults
from pytest_responses_ws.core.metrics import compute_turn_metrics
from pytest_responses_ws.report.html import render_html
from pytest_responses_ws.report.summary import report_document, summarize, terminal_lines

HELLO = {"model": "gpt-test", "input": "hello"}
CHAINED = {"model": "gpt-test", "input": "more", "previous_response_id": "resp_1"}


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: faults.close(1006), "faults.close: code=1006 is not a close code a server can send"),
        (lambda: faults.close(999), "faults.close: code=999 is not"),
        (lambda: faults.close(True), "faults.close: code=True is not"),
        (lambda: faults.close(1011, "x" * 124), "faults.close: reason='xxx"),
        (lambda: faults.close(after_events=-1), "faults.close: after_events=-1 must be a number of events"),
        (lambda: faults.cut(after_events=1.5), "faults.cut: after_events=1.5 must be a number of events"),
        (lambda: faults.cut(turn=0), "faults.cut: turn=0 must be a turn number from 1"),
        (
            lambda: faults.cut(times=0),
            "faults.cut: times=0 must be at least 1 (or None: every matching turn)",
        ),
        (lambda: faults.cut(connection=-1), "faults.cut: connection=-1 must be a connection id from 0"),
        (lambda: faults.cut(transport="grpc"), "faults.cut: transport='grpc' must be 'http', 'ws' or None"),
        (
            lambda: faults.connection_limit(transport="http"),
            "faults.connection_limit: transport='http' is not",
        ),
        (
            lambda: faults.http_status(200),
            "faults.http_status: status=200 must be an error status, 400 to 599",
        ),
        (
            lambda: faults.http_status(429, retry_after=-1),
            "faults.http_status: retry_after=-1 must be seconds",
        ),
        (lambda: faults.http_status(429, code=""), "faults.http_status: code='' must be a non-empty string"),
        (
            lambda: faults.error_event(shape="wrapped"),
            "faults.error_event: shape='wrapped' must be 'nested' or 'flat'",
        ),
        (lambda: faults.delay(first_event=61), "faults.delay: first_event=61 must be seconds, 0 to 60"),
        (
            lambda: faults.delay(between_events=float("nan")),
            "faults.delay: between_events=nan must be seconds",
        ),
        (lambda: faults.malformed(after_events=None), "faults.malformed: after_events=None must be"),
    ],
)
def test_a_bad_argument_is_one_line_naming_the_fault_and_the_argument(make: Any, message: str) -> None:
    with pytest.raises(FaultError) as caught:
        make()
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_faults_are_frozen_values() -> None:
    fault = faults.close(1011, turn=2, after_events=3)
    assert fault == faults.close(1011, turn=2, after_events=3)
    with pytest.raises(AttributeError):
        fault.turn = 3  # type: ignore[misc]


def test_validate_faults_names_the_bad_argument() -> None:
    good = faults.cut()
    assert validate_faults((good,), "here") == (good,)
    with pytest.raises(FaultError, match=r"^here: argument 2 is 429, not a fault; make faults with"):
        validate_faults((good, 429), "here")


def test_describe_is_short() -> None:
    assert faults.close(1011, after_events=3).describe() == "close(1011) after 3 events"
    assert faults.cut(after_events=1).describe() == "cut after 1 event"
    assert faults.http_status(429).describe() == "http_status(429)"
    assert faults.delay(0.5).describe() == "delay(0.5s, 0s between)"


# -- selection -------------------------------------------------------------------------


def _fire(
    plan: FaultPlan, number: int, transport: Transport = "ws", connection: int = 0, request: Any = None
) -> Injection | None:
    return plan.on_turn(number, transport, connection, request or HELLO)


def test_no_turn_fires_on_the_next_turn_once() -> None:
    plan = FaultPlan()
    plan.add(faults.cut())
    assert _fire(plan, 1) is not None
    assert _fire(plan, 2) is None
    assert plan.pending == []
    assert [(f.turn, f.transport, f.connection) for f in plan.fired] == [(1, "ws", 0)]


def test_turn_is_the_first_turn_it_may_fire_on_and_times_counts_matching_turns() -> None:
    plan = FaultPlan()
    plan.add(faults.cut(turn=3, times=2))
    assert [_fire(plan, n) is not None for n in range(1, 7)] == [False, False, True, True, False, False]


def test_times_none_fires_on_every_matching_turn() -> None:
    plan = FaultPlan()
    plan.add(faults.http_status(503, times=None))
    assert all(_fire(plan, n) is not None for n in range(1, 20))
    assert len(plan.pending) == 1


def test_connection_and_transport_select() -> None:
    plan = FaultPlan()
    plan.add(faults.cut(connection=2), faults.delay(0.1, transport="http"))
    assert _fire(plan, 1, "ws", 0) is None
    assert _fire(plan, 2, "ws", 2) is not None
    injection = _fire(plan, 3, "http", 0)
    assert injection is not None and injection.first_event_s == 0.1 and injection.ending is None


def test_connection_limit_never_fires_over_http() -> None:
    plan = FaultPlan()
    plan.add(faults.connection_limit())
    assert _fire(plan, 1, "http") is None
    assert _fire(plan, 2, "ws") is not None


def test_not_found_waits_for_a_chained_turn() -> None:
    plan = FaultPlan()
    plan.add(faults.not_found())
    assert _fire(plan, 1, request=HELLO) is None
    injection = _fire(plan, 2, request=CHAINED)
    assert injection is not None and injection.event is not None
    assert injection.event["error"]["message"] == "Previous response with id 'resp_1' not found."


def test_one_ending_and_one_delay_per_turn_the_others_wait() -> None:
    plan = FaultPlan()
    plan.add(faults.delay(0.1), faults.http_status(429), faults.cut(), faults.delay(0.2))
    first = _fire(plan, 1)
    assert first is not None
    assert [f.kind for f in first.faults] == ["delay", "http_status"]
    second = _fire(plan, 2)
    assert second is not None
    assert [f.kind for f in second.faults] == ["delay", "cut"] and second.first_event_s == 0.2
    assert _fire(plan, 3) is None


def test_a_miss_can_only_be_refused() -> None:
    plan = FaultPlan()
    plan.add(faults.cut(after_events=2), faults.close(1011))
    injection = plan.on_turn(1, "ws", 0, HELLO, before_stream_only=True)
    assert injection is not None and [f.kind for f in injection.faults] == ["close"]
    assert [f.fault.kind for f in plan.pending] == ["cut"]


# -- what an injection says ------------------------------------------------------------


def _injection(fault: faults.Fault, transport: Transport = "ws", request: Any = None) -> Injection:
    plan = FaultPlan()
    plan.add(fault)
    injection = _fire(plan, 1, transport, request=request)
    assert injection is not None
    return injection


def test_close_is_a_close_frame_over_ws_and_a_dropped_connection_over_http() -> None:
    ws = _injection(faults.close(1012, "restart"))
    assert (ws.before_stream, ws.ending, ws.close_code, ws.close_reason) == (True, "close", 1012, "restart")
    http = _injection(faults.close(1012, after_events=4), "http")
    assert (http.before_stream, http.ending, http.after_events) == (False, "cut", 4)


def test_http_status_carries_the_service_body_and_retry_after() -> None:
    injection = _injection(faults.http_status(429, retry_after=0.25), "http")
    assert injection.status == 429 and injection.ending == "answer"
    assert injection.headers == ((b"retry-after", b"0.25"),)
    assert injection.body is not None
    assert injection.body["error"]["code"] == "rate_limit_exceeded"
    ws = _injection(faults.http_status(503, code="overloaded", message="Busy."))
    assert ws.event == {
        "type": "error",
        "status": 503,
        "error": {"type": "server_error", "code": "overloaded", "message": "Busy.", "param": None},
    }
    assert ws.close_code is None  # the connection stays open


def test_connection_limit_is_the_service_error_then_close_1000() -> None:
    injection = _injection(faults.connection_limit())
    assert injection.event is not None
    assert injection.event["error"]["code"] == "websocket_connection_limit_reached"
    assert injection.close_code == 1000


@pytest.mark.parametrize(
    ("shape", "data"),
    [
        (
            "nested",
            {
                "type": "error",
                "sequence_number": 2,
                "error": {"message": "Oops.", "type": "server_error", "param": None, "code": "boom"},
            },
        ),
        ("flat", {"type": "error", "code": "boom", "message": "Oops.", "param": None, "sequence_number": 2}),
    ],
)
def test_error_event_shapes(shape: Any, data: dict[str, Any]) -> None:
    injection = _injection(faults.error_event("boom", "Oops.", shape=shape, after_events=2), "http")
    assert injection.sse is not None
    head, line, _ = injection.sse.split("\n", 2)
    assert head == "event: error"
    assert json.loads(line.removeprefix("data: ")) == data
    assert injection.failed and injection.after_events == 2


def test_malformed_is_not_json() -> None:
    injection = _injection(faults.malformed(after_events=1))
    assert injection.frame_text is not None
    with pytest.raises(ValueError):
        json.loads(injection.frame_text)
    assert injection.close_code == 1011


def test_delay_ns_counts_the_events_sent() -> None:
    injection = _injection(faults.delay(0.5, 0.01))
    assert injection.delay_ns(10) == round((0.5 + 0.09) * 1e9)
    assert injection.events_sent(10) == 10
    cut = _injection(faults.cut(after_events=3))
    assert cut.events_sent(10) == 3 and cut.events_sent(2) == 2


# -- the engine ------------------------------------------------------------------------


def _turn(text: str, response_id: str) -> Turn:
    response = {"id": response_id, "object": "response", "status": "completed", "output": []}
    return Turn(
        request={"model": "gpt-test", "input": text},
        events=(
            RecordedEvent(
                0.0, {"type": "response.created", "response": {**response, "status": "in_progress"}}
            ),
            RecordedEvent(5.0, {"type": "response.output_text.delta", "delta": "HI"}),
            RecordedEvent(10.0, {"type": "response.completed", "response": response}),
        ),
    )


def _engine(*turns: Turn, replays: bool = True, records: bool = False) -> TurnEngine:
    settings = EngineSettings(
        cassette=Path("cassettes/test.json"), record_command="pytest", replays=replays, records=records
    )
    return TurnEngine(settings, turns)


def _create(request: dict[str, Any], transport: Transport = "ws", at_ns: int = 1_000) -> TurnRequest:
    return TurnRequest(
        transport=transport,
        connection=0,
        request=request,
        raw=json.dumps(request).encode(),
        arrived_ns=at_ns,
        where="here",
        wants_stream=True,
    )


def test_without_faults_the_actions_carry_none() -> None:
    engine = _engine(_turn("hello", "resp_1"))
    action = engine.on_create(_create(HELLO))
    assert isinstance(action, PlayFrames) and action.fault is None


def test_an_interrupted_replayed_turn_stays_unplayed() -> None:
    engine = _engine(_turn("hello", "resp_1"))
    engine.faults.add(faults.cut(after_events=1))
    faulted = engine.on_create(_create(HELLO))
    assert isinstance(faulted, PlayFrames) and faulted.fault is not None
    assert faulted.trace.outcome == "fault" and faulted.trace.fault == "cut after 1 event"
    assert "resp_1" not in engine.connection(0).cached
    retried = engine.on_create(_create(HELLO, at_ns=2_000))
    assert isinstance(retried, PlayFrames) and retried.fault is None  # the recording again, not a miss
    assert retried.trace.outcome == "completed"


def test_a_delayed_turn_counts_as_played_and_its_delay_leaves_the_figures() -> None:
    engine = _engine(_turn("hello", "resp_1"))
    engine.faults.add(faults.delay(0.5, 0.25))
    action = engine.on_create(_create(HELLO, "http"))
    assert isinstance(action, PlayHttp) and action.fault is not None
    assert engine.index.unplayed() == []
    trace = action.trace
    assert trace.injected_delay_ns == 1_000_000_000  # 0.5 s, then 0.25 s before each of two more events
    trace.terminal_ns = trace.arrived_ns + 1_003_000_000
    [metrics] = compute_turn_metrics([trace])
    assert metrics.upstream_ms == 3.0 and metrics.injected_delay_ms == 1000.0
    assert metrics.fault == "delay(0.5s, 0.25s between)" and metrics.outcome == "completed"


def test_a_refusing_fault_wins_over_a_miss() -> None:
    engine = _engine(_turn("hello", "resp_1"))
    engine.faults.add(faults.http_status(429))
    action = engine.on_create(_create({"model": "gpt-test", "input": "unknown"}, "http"))
    assert isinstance(action, InjectFault) and action.failures == ()
    assert action.trace.outcome == "fault"
    # A fault that needs an answer to cut does not: the miss stands, the fault waits.
    engine.faults.add(faults.cut(after_events=1))
    miss = engine.on_create(_create({"model": "gpt-test", "input": "unknown"}, "http"))
    assert isinstance(miss, FailTurn)
    assert len(engine.faults.pending) == 1


def test_recording_a_refused_turn_is_not_forwarded() -> None:
    engine = _engine(replays=False, records=True)
    engine.faults.add(faults.close(1011))
    refused = engine.on_create(_create(HELLO))
    assert isinstance(refused, InjectFault)
    # The next turn on the lane is the one the upstream's answer belongs to.
    forwarded = engine.on_create(_create(HELLO, at_ns=2_000))
    assert isinstance(forwarded, Forward) and forwarded.fault is None
    assert engine._forwarded[(0, None)][0] is forwarded.trace


def test_recording_a_mid_stream_fault_rides_on_the_forward() -> None:
    engine = _engine(replays=False, records=True)
    engine.faults.add(faults.error_event(after_events=1))
    action = engine.on_create(_create(HELLO))
    assert isinstance(action, Forward) and action.fault is not None
    engine.on_recorded(_turn("hello", "resp_9"), at_ns=5_000)
    assert action.trace.outcome == "fault" and action.trace.response_id == "resp_9"


# -- the reports -------------------------------------------------------------------------


def test_reports_show_the_faulted_turns() -> None:
    engine = _engine(_turn("hello", "resp_1"))
    engine.faults.add(faults.close(1011, after_events=1))
    first = engine.on_create(_create(HELLO, at_ns=1_000))
    second = engine.on_create(_create(HELLO, at_ns=3_000_000))
    assert isinstance(first, PlayFrames) and isinstance(second, PlayFrames)
    first.trace.terminal_ns = 2_000_000
    second.trace.terminal_ns = 4_000_000
    turns = compute_turn_metrics([first.trace, second.trace])
    summary = summarize(
        nodeid="t[ws]", test="t", transport="ws", turns=turns, counts={"connections": 1, "handshakes": 1}
    )
    assert summary["faulted_turns"] == 1
    assert summary["turn_metrics"][0]["fault"] == "close(1011) after 1 event"
    assert summary["turn_metrics"][0]["outcome"] == "fault"
    assert any("2 (1 faulted)" in line for line in terminal_lines([summary]))
    page = render_html(report_document([summary]))
    assert "injected: close(1011) after 1 event" in page


def test_a_recorded_turn_a_fault_interrupts_is_marked_before_the_upstream_answers() -> None:
    engine = _engine(replays=False, records=True)
    engine.faults.add(faults.cut(after_events=1))
    action = engine.on_create(_create(HELLO))
    assert isinstance(action, Forward) and action.trace.outcome == "fault"
