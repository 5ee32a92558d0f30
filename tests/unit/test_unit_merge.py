"""Unit tests of ``core.merge``: how each record mode merges a recording into the file on disk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.model import Cassette, ConnectionRecord, RecordedEvent, RecordedWith, Turn
from pytest_responses_ws.core.merge import MERGE_MODES, merge_recording


def _turn(prompt: str, connection: int = 0, answer: str = "ok") -> Turn:
    """The opening turn of a conversation started by ``prompt``."""
    return Turn(
        request={"model": "m", "input": [{"role": "user", "content": prompt}]},
        events=(RecordedEvent(0.0, {"type": "response.completed", "response": {"id": f"resp_{answer}"}}),),
        connection=connection,
    )


def _connection(connection_id: int) -> ConnectionRecord:
    return ConnectionRecord(id=connection_id, transport="ws", opened_at_ms=float(connection_id))


def _cassette(*turns: Turn) -> Cassette:
    ids = sorted({turn.connection for turn in turns})
    return Cassette(
        turns=turns,
        recorded_with=RecordedWith("0"),
        recorded_at="2026-01-01T00:00:00+00:00",
        connections=tuple(_connection(i) for i in ids),
    )


def _answers(turns: tuple[Turn, ...]) -> list[str]:
    return [str(turn.response_id) for turn in turns]


@pytest.mark.parametrize("mode", ["once", "new_episodes"])
def test_appending_modes_keep_every_turn_on_disk_now(mode: str) -> None:
    # The file gained "b" from another process after this test started with "a" only.
    on_disk = _cassette(_turn("a", answer="a"), _turn("b", connection=1, answer="b"))
    merged = merge_recording(mode, [_turn("c", answer="c")], [_connection(0)], on_disk=on_disk)
    assert _answers(merged.turns) == ["resp_a", "resp_b", "resp_c"]


def test_recorded_connections_are_numbered_after_those_on_disk() -> None:
    on_disk = _cassette(_turn("a"), _turn("b", connection=1))
    recorded = [_turn("c", connection=0), _turn("d", connection=1)]
    merged = merge_recording("new_episodes", recorded, [_connection(0), _connection(1)], on_disk=on_disk)
    assert [turn.connection for turn in merged.turns] == [0, 1, 2, 3]
    assert [c.id for c in merged.connections] == [0, 1, 2, 3]


def test_connections_no_kept_turn_uses_are_dropped_but_recorded_ones_stay() -> None:
    on_disk = _cassette(_turn("a", connection=0, answer="old"), _turn("b", connection=1))
    # Re-recording "a" replaces the only turn on connection 0; a recorded idle connection stays.
    merged = merge_recording(
        "all", [_turn("a", answer="new")], [_connection(0), _connection(1)], on_disk=on_disk
    )
    assert _answers(merged.turns) == ["resp_ok", "resp_new"]
    assert [c.id for c in merged.connections] == [1, 2, 3]
    assert {turn.connection for turn in merged.turns} <= {c.id for c in merged.connections}


def test_all_replaces_conversations_recorded_again_and_keeps_the_others() -> None:
    on_disk = _cassette(_turn("a", answer="a1"), _turn("b", answer="b1"))
    merged = merge_recording("all", [_turn("a", answer="a2")], [_connection(0)], on_disk=on_disk)
    assert _answers(merged.turns) == ["resp_b1", "resp_a2"]


def test_all_ignores_ignored_fields_when_telling_conversations_apart() -> None:
    old = Turn(request={"model": "m", "user": "x", "input": "hi"}, events=(), connection=0)
    new = Turn(request={"model": "m", "user": "y", "input": "hi"}, events=(), connection=0)
    assert len(merge_recording("all", [new], [], on_disk=_cassette(old)).turns) == 2
    merged = merge_recording("all", [new], [], on_disk=_cassette(old), ignore_fields=("user",))
    assert [turn.request for turn in merged.turns] == [new.request]


def test_rewrite_drops_what_it_found_but_keeps_what_others_wrote_since() -> None:
    found = _cassette(_turn("a", answer="a1"))
    # Since the test started, another process added "b" (and a fresh recording of "c").
    on_disk = _cassette(_turn("a", answer="a1"), _turn("b", answer="b1"), _turn("c", answer="c1"))
    merged = merge_recording(
        "rewrite", [_turn("c", answer="c2")], [_connection(0)], on_disk=on_disk, at_start=found
    )
    assert _answers(merged.turns) == ["resp_b1", "resp_c2"]


def test_rewrite_of_a_cassette_nobody_else_touched_keeps_only_the_recording() -> None:
    found = _cassette(_turn("a", answer="a1"), _turn("b", answer="b1"))
    merged = merge_recording(
        "rewrite", [_turn("z", answer="z")], [_connection(0)], on_disk=found, at_start=found
    )
    assert _answers(merged.turns) == ["resp_z"]


def test_a_mode_that_writes_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="writes no cassette"):
        merge_recording("none", [], [], on_disk=None)


_PROMPTS = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(MERGE_MODES),
    old=st.lists(st.tuples(_PROMPTS, st.integers(0, 3)), max_size=6),
    new=st.lists(st.tuples(_PROMPTS, st.integers(0, 3)), min_size=1, max_size=6),
)
def test_merge_never_loses_a_recorded_turn_or_a_conversation_it_did_not_record(
    mode: str, old: list[tuple[str, int]], new: list[tuple[str, int]]
) -> None:
    on_disk = _cassette(*(_turn(p, c, answer=f"old{i}") for i, (p, c) in enumerate(old)))
    recorded = [_turn(p, c, answer=f"new{i}") for i, (p, c) in enumerate(new)]
    connections = [_connection(i) for i in range(4)]
    merged = merge_recording(mode, recorded, connections, on_disk=on_disk)
    answers = _answers(merged.turns)
    assert answers[-len(recorded) :] == [f"resp_new{i}" for i in range(len(new))]
    renewed = {p for p, _ in new}
    kept = [
        f"resp_old{i}" for i, (p, _) in enumerate(old) if mode in ("once", "new_episodes") or p not in renewed
    ]
    assert answers[: -len(recorded)] == kept
    ids = [c.id for c in merged.connections]
    assert len(ids) == len(set(ids))
    assert {turn.connection for turn in merged.turns} <= set(ids)
