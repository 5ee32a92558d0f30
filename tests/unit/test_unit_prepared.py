"""Unit tests of what replay prepares once per cassette: lazily decoded events, shared indexes,
the per-process cassette cache, and the canonical JSON the digests are made of."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.codec import LazyEvents, decode_cassette, encode_cassette
from pytest_responses_ws.cassette.model import (
    Cassette,
    EventLog,
    RecordedEvent,
    RecordedWith,
    Transport,
    Turn,
)
from pytest_responses_ws.cassette.store import write_cassette_atomically
from pytest_responses_ws.core.jsontext import nesting_depth, too_deep
from pytest_responses_ws.core.match import INDEX_AHEAD_TURNS, TurnIndex, recorded_output
from pytest_responses_ws.core.normalize import canonical_json, response_output
from pytest_responses_ws.core.prepared import PreparedTurns
from pytest_responses_ws.core.replay import Playback
from pytest_responses_ws.errors import CassetteFormatError
from pytest_responses_ws.server.prepared import ReplayCache


def _response(response_id: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "status": "completed", "output": output}


def _turn(text: str, response_id: str, parent: str | None = None) -> Turn:
    message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
    request: dict[str, Any] = {"model": "gpt-5.2", "input": text, "store": False}
    if parent:
        request["previous_response_id"] = parent
    return Turn(
        request=request,
        events=(
            RecordedEvent(0.0, {"type": "response.created", "response": _response(response_id, [])}),
            RecordedEvent(1.0, {"type": "response.output_text.delta", "delta": text}),
            RecordedEvent(2.0, {"type": "response.completed", "response": _response(response_id, [message])}),
        ),
    )


def _cassette(*turns: Turn) -> Cassette:
    return Cassette(
        turns=turns, recorded_with=RecordedWith("0.1.0", "ws"), recorded_at="2026-12-01T00:00:00Z"
    )


def _read(cassette: Cassette) -> Cassette:
    return decode_cassette(encode_cassette(cassette), "c.json")


# -- lazily decoded events -----------------------------------------------------------------------


def test_events_read_from_a_file_answer_the_index_without_decoding() -> None:
    original = _cassette(_turn("hello", "resp_1"))
    turn = _read(original).turns[0]
    assert isinstance(turn.events, LazyEvents)
    assert [turn.events.event_type(i) for i in range(3)] == [
        "response.created",
        "response.output_text.delta",
        "response.completed",
    ]
    assert turn.response_id == "resp_1"
    assert recorded_output(turn) == response_output(original.turns[0].events[-1].data["response"])
    assert turn.events._decoded == [None, None, None]  # nothing built yet
    assert turn == original.turns[0]  # equal to the tuple it stands for, once compared


def test_an_error_event_ends_a_turn_without_output() -> None:
    turn = Turn(
        request={"input": "x"},
        events=(
            RecordedEvent(0.0, {"type": "response.created", "response": _response("resp_e", [])}),
            RecordedEvent(1.0, {"type": "error", "code": "server_error", "message": "boom"}),
        ),
    )
    read = _read(_cassette(turn)).turns[0]
    assert isinstance(read.events, EventLog)
    assert read.events.final_output() is None
    assert recorded_output(read) == recorded_output(turn) == []
    assert read.response_id == turn.response_id == "resp_e"


def test_a_value_only_a_full_decode_refuses_fails_when_used_naming_the_event() -> None:
    text = encode_cassette(_cassette(_turn("hello", "resp_1")))
    document = json.loads(text)
    document["turns"][0]["events"][1]["data"]["delta"] = 7  # placeholder for an unconvertible number
    text = json.dumps(document).replace('"delta": 7', '"delta": ' + "9" * 5000)
    turn = decode_cassette(text, "c.json").turns[0]  # the layout and every event's type are fine
    assert turn.events[0].type == "response.created"
    with pytest.raises(CassetteFormatError) as info:
        turn.events[1]
    assert info.value.pointer == "/turns/0/events/1/data"
    assert "more digits" in info.value.problem


def test_an_event_without_a_string_type_is_refused_at_load() -> None:
    document = json.loads(encode_cassette(_cassette(_turn("hello", "resp_1"))))
    document["turns"][0]["events"][2]["data"]["type"] = ["response.completed"]
    with pytest.raises(CassetteFormatError) as info:
        decode_cassette(json.dumps(document), "c.json")
    assert info.value.pointer == "/turns/0/events/2/data/type"


# -- indexes shared between tests ----------------------------------------------------------------


def test_a_copied_index_keeps_its_own_play_counts_and_additions() -> None:
    prepared = PreparedTurns(_read(_cassette(_turn("a", "resp_1"), _turn("b", "resp_2", "resp_1"))).turns)
    first, second = prepared.index(), prepared.index()
    request = prepared.turns[0].request
    assert first.lookup(request).turn == 0
    assert second.lookup(request).turn == 0  # not played in this copy
    assert first.lookup(request).turn is None  # played once in the first
    added = first.add(_turn("a", "resp_3"))  # same request again, recorded during the first test
    assert first.lookup(request).turn == added
    assert second.lookup(request).turn is None  # the second never saw that turn
    assert len(second.turns) == 2
    assert prepared.index().lookup(request).turn == 0  # and the shared one is untouched


def test_a_prepared_index_is_built_once_per_matching_setting() -> None:
    prepared = PreparedTurns([_turn("a", "resp_1")])
    prepared.index()
    prepared.index()
    prepared.index(("metadata",))
    assert len(prepared._indexes) == 2


def test_prepared_facts_of_the_turns() -> None:
    stored = _turn("b", "resp_2")
    stored = Turn({**stored.request, "store": True}, stored.events)
    refused = Turn(
        {"input": "c", "stream_id": "x" * 300},
        (RecordedEvent(0.0, {"type": "error", "error": {"code": "invalid_stream_id"}}),),
    )
    prepared = PreparedTurns(_read(_cassette(_turn("a", "resp_1"), stored, refused)).turns)
    assert prepared.unstored_ids == {"resp_1"}
    assert prepared.refused_by_rule == (2,)


def test_copy_equals_a_fresh_build() -> None:
    turns = _read(_cassette(_turn("a", "resp_1"), _turn("b", "resp_2", "resp_1"))).turns
    built, copied = TurnIndex.build(turns), TurnIndex.build(turns).copy()
    assert copied.keys == built.keys
    assert copied._by_key == built._by_key and copied._after == built._after


# -- the process's cassette cache ----------------------------------------------------------------


def test_the_cache_reads_a_file_again_only_when_its_bytes_change(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write_cassette_atomically(path, _cassette(_turn("hello", "resp_1")))
    cache = ReplayCache()
    first = cache.load(path)
    assert cache.load(path) is first
    # Same size, same inode, written in place within the timestamp's resolution: still noticed.
    text = path.read_bytes().replace(b"hello", b"howdy")
    with open(path, "r+b") as handle:
        handle.write(text)
    again = cache.load(path)
    assert again is not first
    assert again.cassette.turns[0].request["input"] == "howdy"
    assert again.prepared.turns is again.cassette.turns


def test_the_cache_keeps_only_the_most_recent_cassettes(tmp_path: Path) -> None:
    cache = ReplayCache(size=2)
    paths = [tmp_path / f"c{i}.json" for i in range(3)]
    for path in paths:
        write_cassette_atomically(path, _cassette(_turn(path.stem, "resp_1")))
    first = cache.load(paths[0])
    cache.load(paths[1])
    cache.load(paths[2])
    assert cache.load(paths[0]) is not first


# -- canonical JSON ------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(a=_json, b=_json)
def test_canonical_json_tells_values_apart_as_json_does(a: Any, b: Any) -> None:
    def reference(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    assert (canonical_json(a) == canonical_json(b)) == (reference(a) == reference(b))


def test_canonical_json_keeps_nan_and_null_apart() -> None:
    assert canonical_json({"t": math.nan}) != canonical_json({"t": None})
    assert canonical_json([math.inf]) != canonical_json([None])
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1}) == '{"a":2,"b":1}'


# -- nesting depth without a parse ---------------------------------------------------------------

_nested_strings = st.text(alphabet='[]{}"\\ab\n', max_size=6)
_deep = st.recursive(
    st.none() | _nested_strings | st.integers(),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_nested_strings, inner, max_size=2),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(value=_deep, limit=st.integers(0, 12))
def test_too_deep_agrees_with_the_exact_depth(value: Any, limit: int) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert too_deep(text.encode("utf-8"), limit) == (nesting_depth(text) > limit)


@pytest.mark.parametrize("opening", ["[{", '{"a":[', "["])
def test_too_deep_counts_every_level_of_alternating_nesting(opening: str) -> None:
    closing = opening.translate(str.maketrans("[{", "]}")).replace('"a":', "")[::-1]
    for depth in (100, 101, 300):
        text = (opening * depth) + (closing * depth)
        levels = nesting_depth(text)
        assert too_deep(text.encode(), 100) == (levels > 100)


# -- the turn path's shortcuts for what a loop resends -------------------------------------------


def _index_of(*requests: dict[str, Any]) -> TurnIndex:
    return TurnIndex.build(
        Turn(
            request, (RecordedEvent(0.0, {"type": "response.completed", "response": _response(f"r{i}", [])}),)
        )
        for i, request in enumerate(requests)
    )


@pytest.mark.parametrize(
    ("recorded", "sent"),
    [
        ({"temperature": 1.0}, {"temperature": 1}),
        ({"top_p": True}, {"top_p": 1}),
        ({"t": None}, {"t": math.nan}),
    ],
)
def test_parameters_sent_as_before_keep_the_digest_only_when_exactly_equal(
    recorded: dict[str, Any], sent: dict[str, Any]
) -> None:
    base = {"model": "m", "input": [{"role": "user", "content": "hi"}]}
    index = _index_of({**base, "metadata": {"x": recorded}})
    assert index.lookup({**base, "metadata": {"x": recorded}}).turn == 0  # the shortcut's own entry
    assert index.lookup({**base, "metadata": {"x": sent}}).turn is None  # 1 is not 1.0, NaN not null


def test_history_items_sent_as_before_are_not_normalized_again_but_still_decide() -> None:
    first = {"role": "user", "content": "hi"}
    index = _index_of(
        {"model": "m", "input": [first, {"type": "function_call_output", "call_id": "c", "output": "1"}]}
    )
    one = {"model": "m", "input": [first, {"type": "function_call_output", "call_id": "c", "output": "1"}]}
    other = {"model": "m", "input": [first, {"type": "function_call_output", "call_id": "c", "output": 1}]}
    assert index.key_for(one) == index.keys[0]
    assert index.key_for(other) != index.keys[0]  # the prefix is shared, the new item differs
    assert index.key_for(one) == index.keys[0]  # and back again


# -- a long cassette is indexed as far as lookups reach -------------------------------------------


def _long_read_cassette(turns: int) -> tuple[Cassette, Cassette]:
    """(in memory, read from a file) for a chained conversation of ``turns`` turns."""
    chain = [_turn(f"step {i}", f"resp_{i}", f"resp_{i - 1}" if i else None) for i in range(turns)]
    original = _cassette(*chain)
    return original, _read(original)


def test_a_long_cassette_read_from_a_file_is_indexed_only_ahead_until_looked_up() -> None:
    total = INDEX_AHEAD_TURNS + 60
    original, read = _long_read_cassette(total)
    lazy, eager = TurnIndex.build(read.turns), TurnIndex.build(original.turns)
    assert len(lazy._keys) == INDEX_AHEAD_TURNS and len(eager._keys) == total
    late = original.turns[INDEX_AHEAD_TURNS + 10].request
    assert lazy.lookup(late).turn == eager.lookup(late).turn == INDEX_AHEAD_TURNS + 10
    assert len(lazy._keys) == INDEX_AHEAD_TURNS + 11  # indexed up to the turn found, no further
    assert lazy.knows_response(f"resp_{total - 1}")  # every response id is known from the start
    assert lazy.keys == eager.keys  # reading every key indexes the rest
    # Requests past the indexed ones were never decoded.
    untouched = read.turns[-1]
    assert "_raw_request" not in untouched.__dict__  # indexed by lazy.keys above
    fresh = _read(original).turns[-1]
    assert "_raw_request" in fresh.__dict__ and fresh.unstored  # store: false read at load


def test_a_lazy_index_answers_every_lookup_as_an_eager_one() -> None:
    # Repeated requests (the same key at several positions), a chained request whose parent
    # is past the indexed turns, a resent history and a miss, in an order that jumps about.
    original, read = _long_read_cassette(INDEX_AHEAD_TURNS + 40)
    repeated = _turn("again", "resp_again")
    # A response id created again late (a hand-merged cassette): the last turn creating it names it.
    duplicate = _turn("dup", "resp_5")
    turns = (*original.turns, repeated, _turn("again", "resp_again_2"), duplicate)
    original, read = _cassette(*turns), _read(_cassette(*turns))
    requests = [
        original.turns[6].request,  # chains from resp_5, created again past the indexed turns
        original.turns[INDEX_AHEAD_TURNS + 30].request,
        {"model": "gpt-5.2", "input": "again", "store": False},
        {"model": "gpt-5.2", "input": "again", "store": False},
        {"model": "gpt-5.2", "input": "again", "store": False},  # exhausted
        {"model": "gpt-5.2", "input": "step 3", "store": False, "previous_response_id": "resp_2"},
        {"model": "gpt-5.2", "input": "nowhere", "store": False, "previous_response_id": "resp_nope"},
        original.turns[5].request,
    ]
    lazy, eager = TurnIndex.build(read.turns), TurnIndex.build(original.turns)
    assert len(lazy._keys) < len(eager._keys)
    for request in requests:
        got, expected = lazy.lookup(request), eager.lookup(request)
        assert (got.turn, got.reason, got.exhausted, got.key) == (
            expected.turn,
            expected.reason,
            expected.exhausted,
            expected.key,
        )
    assert lazy.unplayed() == eager.unplayed()


def test_a_lazy_index_indexes_the_rest_before_a_turn_is_added() -> None:
    original, read = _long_read_cassette(INDEX_AHEAD_TURNS + 5)
    index = TurnIndex.build(read.turns)
    assert index.add(_turn("new", "resp_new", f"resp_{INDEX_AHEAD_TURNS + 4}")) == INDEX_AHEAD_TURNS + 5
    assert index.keys[:-1] == TurnIndex.build(original.turns).keys  # the rest indexed first, in order
    chained = {"model": "gpt-5.2", "input": "new", "store": False}
    assert index.lookup({**chained, "previous_response_id": f"resp_{INDEX_AHEAD_TURNS + 4}"}).turn == (
        INDEX_AHEAD_TURNS + 5
    )


def test_a_request_damaged_past_what_loading_checks_fails_when_first_used_naming_it() -> None:
    original, _ = _long_read_cassette(INDEX_AHEAD_TURNS + 2)
    text = encode_cassette(original).replace('"input": "step 257"', '"input": ' + "[" * 150 + "]" * 150)
    read = decode_cassette(text, "c.json")  # the layout and the request's parent id are fine
    index = TurnIndex.build(read.turns)
    with pytest.raises(CassetteFormatError) as info:
        index.lookup({"model": "gpt-5.2", "input": "not recorded", "store": False})  # indexes it all
    assert info.value.pointer == f"/turns/{INDEX_AHEAD_TURNS + 1}/request"
    assert "nested deeper than 100 levels" in info.value.problem
    with pytest.raises(CassetteFormatError):  # and again, the same way
        _ = read.turns[INDEX_AHEAD_TURNS + 1].request


def test_a_turn_read_from_a_file_is_equal_to_the_turn_written_and_replaces_like_one() -> None:
    original = _turn("hello", "resp_1")
    read = _read(_cassette(original)).turns[0]
    assert read == original and original == read and read.request == original.request
    changed = dataclasses.replace(read, status=201)
    assert changed.status == 201 and changed.request == original.request and changed != original
    assert _read(_cassette(changed)).turns[0] == changed


# -- a turn played as recorded is sent as its recorded text ---------------------------------------


def _lane_turn(lane: str | None, tagged: bool, transport: Transport, error: bool) -> Turn:
    base = _turn('hé \u2028 "quoted" 1.5e-07', "resp_1")
    events = tuple(
        RecordedEvent(e.offset_ms, {**e.data, "stream_id": lane} if tagged else e.data) for e in base.events
    )
    if error:  # changes shape on the other transport
        events += (
            RecordedEvent(3.0, {"type": "error", "status": 429, "error": {"code": "rate_limit_exceeded"}}),
        )
    return dataclasses.replace(base, events=events, lane=lane, transport=transport)


@pytest.mark.parametrize("error", [False, True])
@pytest.mark.parametrize(
    ("lane", "tagged", "transport"),
    [(None, False, "ws"), ("a", True, "ws"), ("a", False, "ws"), (None, False, "http"), (None, True, "ws")],
)
def test_frames_of_a_turn_read_from_a_file_equal_those_built_from_the_decoded_events(
    lane: str | None, tagged: bool, transport: Transport, error: bool
) -> None:
    written = _lane_turn(lane, tagged, transport, error)
    read = _read(_cassette(written)).turns[0]
    for on_lane in (None, "a", "b"):
        assert Playback.for_websocket(read, on_lane) == Playback.for_websocket(written, on_lane)
    assert Playback.for_sse(read) == Playback.for_sse(written)


def test_a_turn_sent_as_recorded_is_checked_as_decoding_would_check_it() -> None:
    text = encode_cassette(_cassette(_turn("hello", "resp_1"))).replace(
        '"delta": "hello"', '"delta": ' + "9" * 5000
    )
    read = decode_cassette(text, "c.json").turns[0]
    with pytest.raises(CassetteFormatError) as info:
        Playback.for_websocket(read, None)
    assert info.value.pointer == "/turns/0/events/1/data"
