"""The latency model (``core/latency.py``): presets, token counts, send times, projections."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.model import RecordedEvent, Turn
from pytest_responses_ws.core.latency import (
    PRESETS,
    LatencyModel,
    RecordedTokens,
    event_offsets,
    project,
    recorded_tokens,
    reference_loop,
    schedule,
    turn_timing,
)
from pytest_responses_ws.core.metrics import TurnMetrics
from pytest_responses_ws.core.synthesize import synthesize_events

FAST, SLOW = PRESETS["fast"], PRESETS["slow"]


def _ratio(model: LatencyModel, calls: int) -> float:
    http, ws = reference_loop(model, calls)
    return ws / http


def test_the_presets_reproduce_the_published_gains_and_their_shape() -> None:
    # OpenAI: up to ~40% faster end to end for rollouts with 20+ tool calls, on a fast model.
    assert _ratio(FAST, 20) == pytest.approx(0.60, abs=0.01)
    # Little gain for a 2-turn loop (one tool call) or a slow model; most for long fast loops.
    assert _ratio(FAST, 1) > 0.8
    assert _ratio(SLOW, 20) > 0.85
    fast = [_ratio(FAST, n) for n in (1, 2, 5, 20, 50)]
    assert fast == sorted(fast, reverse=True)
    assert all(_ratio(SLOW, n) > _ratio(FAST, n) for n in (1, 2, 5, 20, 50))


def test_a_turn_pays_the_service_in_full_unless_held_then_only_for_what_it_sent() -> None:
    full = turn_timing(FAST, input_tokens=8000, sent_tokens=300, output_tokens=15, held=False)
    held = turn_timing(FAST, input_tokens=8000, sent_tokens=300, output_tokens=15, held=True)
    assert full.service_s == pytest.approx(0.100 + 0.005 * 8)
    assert held.service_s == pytest.approx(0.020 + 0.005 * 0.3)
    # Inference is the same either way: the first token, then 15 tokens at 1,000/s.
    assert (
        full.total_s - full.service_s == pytest.approx(held.total_s - held.service_s) == pytest.approx(0.115)
    )
    error = turn_timing(FAST, input_tokens=10, sent_tokens=10, output_tokens=0, held=False)
    assert error.total_s == error.service_s  # refused: no inference


def _events(text: str, usage: dict[str, Any] | None) -> list[dict[str, Any]]:
    response = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": usage,
    }
    return synthesize_events(response, chunk_chars=4)


def test_recorded_usage_drives_the_token_counts_and_text_stands_in_without_it() -> None:
    events = _events(
        "abcdefghijklmnop",
        {"input_tokens": 900, "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 30}},
    )
    tokens = recorded_tokens(events, events[-1]["response"])
    assert (tokens.input_tokens, tokens.output_tokens, tokens.reasoning_tokens) == (900, 40, 30)
    assert sum(tokens.event_tokens) == 10  # visible tokens, spread over the four deltas
    assert sorted(count for count in tokens.event_tokens if count) == [2, 2, 3, 3]
    bare = _events("abcdefghijklmnop", None)
    tokens = recorded_tokens(bare, bare[-1]["response"])
    assert (tokens.input_tokens, tokens.output_tokens) == (None, 4)  # 16 characters, ~4 a token


def test_send_times_follow_the_tokens_and_end_with_the_turn() -> None:
    events = _events("abcdefghijklmnop", {"input_tokens": 2000, "output_tokens": 8})
    tokens = recorded_tokens(events, events[-1]["response"])
    offsets = event_offsets(FAST, tokens, input_tokens=2000, sent_tokens=2000, held=False)
    timing = turn_timing(FAST, input_tokens=2000, sent_tokens=2000, output_tokens=8, held=False)
    assert offsets == sorted(offsets)
    assert offsets[0] == pytest.approx(timing.service_s)  # response.created
    assert offsets[-1] == pytest.approx(timing.total_s)
    deltas = [o for o, e in zip(offsets, events, strict=True) if e["type"] == "response.output_text.delta"]
    assert deltas[0] == pytest.approx(timing.service_s + 0.1 + 0.002)
    scaled = schedule(FAST.with_values(scale=0.01), tokens, input_tokens=2000, sent_tokens=2000, held=False)
    assert scaled == pytest.approx([o * 0.01 for o in offsets])


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 50), min_size=1, max_size=30),
    reasoning=st.integers(0, 100),
    input_tokens=st.integers(0, 200_000),
    sent=st.integers(0, 5_000),
    held=st.booleans(),
)
def test_send_times_never_go_back_and_end_at_the_modeled_total(
    counts: list[int], reasoning: int, input_tokens: int, sent: int, held: bool
) -> None:
    tokens = RecordedTokens(input_tokens, sum(counts) + reasoning, reasoning, tuple(counts))
    offsets = event_offsets(SLOW, tokens, input_tokens=input_tokens, sent_tokens=sent, held=held)
    timing = turn_timing(
        SLOW,
        input_tokens=input_tokens,
        sent_tokens=sent,
        output_tokens=tokens.output_tokens,
        reasoning_tokens=reasoning,
        held=held,
    )
    assert len(offsets) == len(counts)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(offsets))
    assert offsets[-1] == pytest.approx(timing.total_s)
    assert offsets[0] >= timing.service_s - 1e-12


def _turn(index: int, **figures: Any) -> TurnMetrics:
    base: dict[str, Any] = {
        "index": index,
        "transport": "ws",
        "connection": 0,
        "lane": None,
        "overhead_ms": 0.0,
        "gap_ms": 0.0,
        "tool_ms": 0.0,
        "upstream_ms": 1.0,
        "end_to_end_ms": 1.0,
        "request_bytes": 10,
        "input_items": 1,
        "chained": index > 0,
        "resent_items": 0,
        "resent_bytes": 0,
        "new_connection": index == 0,
        "handshake_ms": None,
        "outcome": "completed",
    }
    base.update(figures)
    return TurnMetrics(**base)


def test_a_projection_takes_its_run_as_played_and_projects_the_other_transport() -> None:
    turns = [
        _turn(0, input_tokens=2000, sent_tokens=2000, new_tokens=2000, output_tokens=15),
        _turn(1, input_tokens=2300, sent_tokens=300, new_tokens=300, output_tokens=15, held=True),
        _turn(
            2, input_tokens=2600, sent_tokens=300, new_tokens=300, output_tokens=15, held=False
        ),  # a reconnect
        _turn(3, outcome="miss"),  # no tokens: left out
    ]
    ws_run = project(turns, FAST, "ws")
    assert [t.held for t in ws_run.turns] == [False, True, False]
    assert ws_run.turns[1].ws_ms < ws_run.turns[1].http_ms
    assert ws_run.turns[2].ws_ms == ws_run.turns[2].http_ms
    assert ws_run.gain == pytest.approx(1 - ws_run.ws_ms / ws_run.http_ms)
    # An HTTP run resending its history: WebSocket projected as chained from the second turn on.
    http_turns = [
        _turn(
            i,
            transport="http",
            chained=False,
            resent_items=2 * i,
            input_tokens=2000 + 300 * i,
            sent_tokens=2000 + 300 * i,
            new_tokens=2000 if i == 0 else 300,
            output_tokens=15,
        )
        for i in range(3)
    ]
    http_run = project(http_turns, FAST, "http")
    assert [t.held for t in http_run.turns] == [False, True, True]
    assert http_run.as_dict()["played"] == "http" and http_run.as_dict()["gain"] > 0


def test_a_model_rejects_values_that_can_never_work() -> None:
    with pytest.raises(ValueError, match="tokens_per_s must be above 0"):
        FAST.with_values(tokens_per_s=0)
    with pytest.raises(ValueError, match="unknown latency model parameter"):
        FAST.with_values(speed=1)
    with pytest.raises(ValueError, match="unknown latency preset"):
        LatencyModel.preset("medium")
    assert LatencyModel.preset("slow", scale=0.5).scale == 0.5


def test_turn_tokens_read_a_cassette_turn() -> None:
    from pytest_responses_ws.core.latency import turn_tokens

    events = _events("hello there", {"input_tokens": 50, "output_tokens": 3})
    turn = Turn(request={"input": "hi"}, events=tuple(RecordedEvent(0.0, e) for e in events))
    tokens = turn_tokens(turn)
    assert tokens.input_tokens == 50 and sum(tokens.event_tokens) == 3
    assert turn_tokens(turn, per_event=False).event_tokens == ()
