"""Unit tests of ``core.drift``: what counts as drift between a recorded turn and a live one."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.model import RecordedEvent, Turn
from pytest_responses_ws.core.drift import (
    DriftReport,
    VerifyFailOn,
    compare_turns,
    drift_lines,
    pair_turns,
    shape_of,
)
from pytest_responses_ws.core.synthesize import synthesize_events

_texts = st.text(alphabet="abcdefghij klmnop.,", min_size=1, max_size=40)
_args = st.dictionaries(st.sampled_from(["city", "step", "unit"]), st.integers(0, 99) | _texts, max_size=3)
_items = st.lists(
    st.one_of(
        st.tuples(st.just("text"), _texts),
        st.tuples(st.sampled_from(["get_weather", "search"]), _args),
    ),
    min_size=1,
    max_size=4,
)


def _response(items: list[tuple[str, Any]], ids: int, usage: tuple[int, int] = (40, 12)) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    for n, (kind, value) in enumerate(items):
        if kind == "text":
            part = {"type": "output_text", "text": value, "annotations": []}
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{ids}_{n}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [part],
                }
            )
        else:
            arguments = json.dumps(value, separators=(",", ":"))
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{ids}_{n}",
                    "call_id": f"call_{ids}_{n}",
                    "name": kind,
                    "arguments": arguments,
                    "status": "completed",
                }
            )
    return {
        "id": f"resp_{ids}",
        "object": "response",
        "created_at": 1_700_000_000 + ids,
        "status": "completed",
        "model": "gpt-5.2",
        "output": output,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)},
    }


def _turn(response: dict[str, Any], *, chunk: int = 8, transport: str = "ws", step_ms: float = 1.0) -> Turn:
    events = synthesize_events(response, chunk_chars=chunk)
    return Turn(
        request={"model": "gpt-5.2", "input": "hi"},
        events=tuple(RecordedEvent(step_ms * (n + 1), e) for n, e in enumerate(events)),
        transport=transport,  # type: ignore[arg-type]
    )


@settings(max_examples=60, deadline=None)
@given(_items, st.integers(1, 9), st.integers(1, 12), st.sampled_from(["http", "ws"]), st.floats(0.1, 50))
def test_ids_chunking_transport_and_timing_are_not_drift(
    items: list[tuple[str, Any]], chunk_a: int, chunk_b: int, transport: str, step_ms: float
) -> None:
    recorded = _turn(_response(items, ids=1), chunk=chunk_a)
    live = _turn(_response(items, ids=2), chunk=chunk_b, transport=transport, step_ms=step_ms)
    report = compare_turns([recorded], [live])
    assert report.differences == ()
    assert len(report.timings) == 1 and report.timings[0].transport == transport


@settings(max_examples=60, deadline=None)
@given(_items, st.data())
def test_one_changed_tool_argument_is_exactly_one_difference(items: list[tuple[str, Any]], data: Any) -> None:
    calls = [n for n, (kind, _) in enumerate(items) if kind != "text"]
    if not calls:
        items = [*items, ("get_weather", {"city": "Paris"})]
        calls = [len(items) - 1]
    target = data.draw(st.sampled_from(calls))
    changed = list(items)
    changed[target] = (items[target][0], {**items[target][1], "city": "Somewhere new"})
    if changed[target][1] == items[target][1]:
        return
    report = compare_turns([_turn(_response(items, 1))], [_turn(_response(changed, 2))])
    assert [(d.kind, d.turn) for d in report.differences] == [("tool_call", 0)]
    assert (
        f"item {target}" in report.differences[0].detail and "Somewhere new" in report.differences[0].detail
    )


def test_arguments_are_compared_as_json_values() -> None:
    recorded = _turn(_response([("search", {"q": "a", "n": 1})], 1))
    response = _response([("search", {"n": 1, "q": "a"})], 2)
    response["output"][0]["arguments"] = '{ "n": 1,  "q": "a" }'
    assert compare_turns([recorded], [_turn(response)]).differences == ()


def test_an_event_type_changed_is_named_with_its_position() -> None:
    recorded = _turn(_response([("text", "hello")], 1))
    live = _turn(_response([("text", "hello")], 2))
    events = list(live.events)
    events[1] = RecordedEvent(events[1].offset_ms, {**events[1].data, "type": "response.queued"})
    report = compare_turns([recorded], [Turn(live.request, tuple(events))])
    assert [(d.kind, d.detail) for d in report.differences] == [
        ("events", "event 1: recorded response.in_progress, live response.queued")
    ]


def test_text_drift_is_reported_but_fails_only_when_asked() -> None:
    recorded = _turn(_response([("text", "It is sunny.")], 1))
    live = _turn(_response([("text", "Sunny skies all day long today.")], 2))
    report = compare_turns([recorded], [live])
    assert [d.kind for d in report.differences] == ["text"]
    assert report.failing(VerifyFailOn.STRUCTURE) == ()
    assert report.failing(VerifyFailOn.ALL) == report.differences
    assert drift_lines(report.to_dict())[0].endswith("(text: not failing unless asked)")


def test_output_item_types_usage_and_errors() -> None:
    recorded = _turn(_response([("text", "hi")], 1, usage=(100, 10)))
    other_items = _turn(_response([("search", {"q": "x"})], 2, usage=(100, 10)))
    assert [d.kind for d in compare_turns([recorded], [other_items]).differences] == [
        "events",
        "output",
        "text",
    ]
    usage = _turn(_response([("text", "hi")], 3, usage=(1000, 10)))
    (difference,) = compare_turns([recorded], [usage]).differences
    assert difference.kind == "usage" and "input_tokens: recorded 100, live 1000" in difference.detail
    assert (
        compare_turns([recorded], [_turn(_response([("text", "hi")], 4, usage=(150, 14)))]).differences == ()
    )
    ws_error = Turn(
        {},
        (RecordedEvent(1, {"type": "error", "status": 429, "error": {"code": "rate_limit_exceeded"}}),),
        outcome="error",
        status=429,
    )
    http_error = Turn(
        {},
        (),
        transport="http",
        outcome="http_error",
        status=429,
        body={"error": {"code": "rate_limit_exceeded", "type": "requests"}},
    )
    assert (
        compare_turns([ws_error], [http_error]).differences == ()
    )  # same error, the other transport's shape
    kinds = [d.kind for d in compare_turns([recorded], [ws_error]).differences]
    assert kinds[:2] == ["outcome", "error"]
    assert shape_of(http_error).error == "rate_limit_exceeded"


def test_turns_pair_by_lane_order_and_extra_turns_are_drift() -> None:
    def on(lane: str | None, n: int) -> Turn:
        return Turn({"n": n}, (), lane=lane)

    recorded = [on("a", 0), on("b", 1), on("a", 2)]
    live = [on("b", 0), on("a", 1), on("a", 2), on("a", 3)]
    assert pair_turns(recorded, live) == [(0, 1), (1, 0), (2, 2), (None, 3)]
    report = compare_turns(recorded, live)
    assert [(d.kind, d.turn) for d in report.differences] == [("turns", 3)]
    assert compare_turns(recorded, []).differences[0].detail == "recorded turn was not requested live"
    assert DriftReport(1, 1).failing(VerifyFailOn.NONE) == ()
