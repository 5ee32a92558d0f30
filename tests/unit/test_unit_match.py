"""Unit tests of ``core.match`` and ``core.explain``: effective-context keys, lookup and miss reports."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.model import RecordedEvent, Turn
from pytest_responses_ws.core.explain import Difference, diff, effective_view, explain_miss, nearest_turns
from pytest_responses_ws.core.match import RequestKey, TurnIndex
from pytest_responses_ws.core.normalize import normalize_item

# -- a recorded agent loop: question -> function call -> tool output -> answer -> thanks -> reply --------

TOOL = {
    "type": "function",
    "name": "find_symbol",
    "description": "Find a symbol in the repository",
    "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    "strict": True,
}
USER_ITEM = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Find fizz_buzz()"}],
}
CALL_ITEM = {
    "id": "fc_1",
    "type": "function_call",
    "status": "completed",
    "arguments": '{"name":"fizz_buzz"}',
    "call_id": "call_1",
    "name": "find_symbol",
}
OUTPUT_ITEM = {"type": "function_call_output", "call_id": "call_1", "output": '{"file": "fb.py"}'}
ANSWER_ITEM = {
    "id": "msg_2",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "It is in fb.py."}],
}
THANKS_ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks!"}]}
REPLY_ITEM = {
    "id": "msg_3",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "You're welcome."}],
}


def _events(response_id: str, output: list[dict[str, Any]]) -> tuple[RecordedEvent, ...]:
    created = {"id": response_id, "object": "response", "status": "in_progress", "output": []}
    final = {**created, "status": "completed", "output": output}
    events: list[RecordedEvent] = [
        RecordedEvent(0.5, {"type": "response.created", "response": created, "sequence_number": 0}),
        RecordedEvent(0.6, {"type": "response.in_progress", "response": created, "sequence_number": 1}),
    ]
    for i, item in enumerate(output):
        events.append(
            RecordedEvent(1.0 + i, {"type": "response.output_item.done", "item": item, "output_index": i})
        )
    events.append(RecordedEvent(9.0, {"type": "response.completed", "response": final}))
    return tuple(events)


def _ws(input_: Any, previous: str | None = None, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"type": "response.create", "model": "gpt-5.2", "store": False}
    if previous is not None:
        request["previous_response_id"] = previous
    request["input"] = input_
    request["tools"] = [TOOL]
    request.update(extra)
    return request


def _http(input_: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5.2", "store": False, "input": input_, "tools": [TOOL], "stream": True, **extra}


def _chain_turns() -> list[Turn]:
    """Three WebSocket turns chained with previous_response_id, as a hand-written loop sends them."""
    return [
        Turn(request=_ws([USER_ITEM]), events=_events("resp_1", [CALL_ITEM])),
        Turn(request=_ws([OUTPUT_ITEM], "resp_1"), events=_events("resp_2", [ANSWER_ITEM])),
        Turn(request=_ws([THANKS_ITEM], "resp_2"), events=_events("resp_3", [REPLY_ITEM])),
    ]


def _history_turns() -> list[Turn]:
    """The same conversation recorded over HTTP, resending the whole history each turn."""
    return [
        Turn(request=_http([USER_ITEM]), events=_events("resp_1", [CALL_ITEM]), transport="http"),
        Turn(
            request=_http([USER_ITEM, CALL_ITEM, OUTPUT_ITEM]),
            events=_events("resp_2", [ANSWER_ITEM]),
            transport="http",
        ),
        Turn(
            request=_http([USER_ITEM, CALL_ITEM, OUTPUT_ITEM, ANSWER_ITEM, THANKS_ITEM]),
            events=_events("resp_3", [REPLY_ITEM]),
            transport="http",
        ),
    ]


# -- effective-context keys ---------------------------------------------------------------------------


def test_chained_and_full_history_requests_have_the_same_keys() -> None:
    chain = TurnIndex.build(_chain_turns())
    history = TurnIndex.build(_history_turns())
    assert chain.keys == history.keys
    assert len(set(chain.keys)) == 3


def test_http_request_resending_history_hits_the_chained_turn() -> None:
    index = TurnIndex.build(_chain_turns())
    assert index.lookup(_http([USER_ITEM])).turn == 0
    # the function call goes back exactly as the service returned it: with id and status
    assert index.lookup(_http([USER_ITEM, CALL_ITEM, OUTPUT_ITEM])).turn == 1
    result = index.lookup(_http([USER_ITEM, CALL_ITEM, OUTPUT_ITEM, ANSWER_ITEM, THANKS_ITEM]))
    assert result.hit
    assert result.turn == 2


def test_http_request_without_volatile_fields_hits_the_chained_turn() -> None:
    index = TurnIndex.build(_chain_turns())
    call = {k: v for k, v in CALL_ITEM.items() if k not in ("id", "status")}
    answer = {"role": "assistant", "content": "It is in fb.py."}
    history = [USER_ITEM, call, OUTPUT_ITEM, answer, THANKS_ITEM]
    assert index.lookup(_http(history[:3])).turn == 1
    assert index.lookup(_http(history)).turn == 2


def test_chained_request_hits_a_full_history_recording() -> None:
    index = TurnIndex.build(_history_turns())
    assert index.lookup(_ws([USER_ITEM])).turn == 0
    assert index.lookup(_ws([OUTPUT_ITEM], "resp_1")).turn == 1
    assert index.lookup(_ws([THANKS_ITEM], "resp_2")).turn == 2


def test_mixed_chain_and_partial_history() -> None:
    # chain from resp_1 but resend the answer-less remainder in one go
    index = TurnIndex.build(_chain_turns())
    index.lookup(_ws([USER_ITEM]))
    index.lookup(_ws([OUTPUT_ITEM], "resp_1"))
    assert index.lookup(_ws([OUTPUT_ITEM, ANSWER_ITEM, THANKS_ITEM], "resp_1")).turn == 2


def test_the_output_must_really_be_resent() -> None:
    index = TurnIndex.build(_chain_turns())
    result = index.lookup(_http([USER_ITEM, OUTPUT_ITEM]))  # the function call is missing
    assert not result.hit
    assert result.reason == "no recorded turn has this request"
    changed = {**CALL_ITEM, "arguments": '{"name":"other"}'}
    assert not index.lookup(_http([USER_ITEM, changed, OUTPUT_ITEM])).hit


def test_non_streamed_body_turns_chain_too() -> None:
    body = {"id": "resp_1", "object": "response", "status": "completed", "output": [CALL_ITEM]}
    turns = [
        Turn(request=_http([USER_ITEM], stream=False), events=(), body=body, transport="http"),
        Turn(request=_ws([OUTPUT_ITEM], "resp_1"), events=_events("resp_2", [ANSWER_ITEM])),
    ]
    index = TurnIndex.build(turns)
    assert index.lookup(_http([USER_ITEM, CALL_ITEM, OUTPUT_ITEM])).turn == 1
    assert index.knows_response("resp_1")


@pytest.mark.parametrize(
    "input_",
    [
        "hi",
        ["hi"],
        [{"role": "user", "content": "hi"}],
        [{"type": "message", "role": "user", "content": "hi"}],
        [{"role": "user", "content": ["hi"]}],
        [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}], "id": "m"}],
        [
            {
                "type": "message",
                "role": "user",
                "content": [{"text": "hi", "type": "input_text"}],
                "status": None,
            }
        ],
    ],
)
def test_shorthand_inputs_match_the_full_message_item(input_: Any) -> None:
    full = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    index = TurnIndex.build([Turn(request={"model": "m", "input": full}, events=())])
    assert index.lookup({"model": "m", "input": input_}).turn == 0


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=30))
def test_shorthand_forms_share_a_key_for_any_text(text: str) -> None:
    index = TurnIndex()
    forms = [
        text,
        [text],
        [{"role": "user", "content": text}],
        [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}],
    ]
    keys = {index.key_for({"model": "m", "input": form}) for form in forms}
    assert len(keys) == 1


def test_roles_and_texts_still_distinguish() -> None:
    index = TurnIndex()
    base = index.key_for({"model": "m", "input": "hi"})
    assert index.key_for({"model": "m", "input": [{"role": "system", "content": "hi"}]}) != base
    assert index.key_for({"model": "m", "input": "hi!"}) != base
    assert index.key_for({"model": "m", "input": ["hi", "hi"]}) != base
    assert index.key_for({"model": "m2", "input": "hi"}) != base


@pytest.mark.parametrize(
    "extra",
    [
        {"type": "response.create"},
        {"stream": True},
        {"stream": False},
        {"stream_options": {"include_obfuscation": False}},
        {"stream_id": "lane-7"},
        {"temperature": None},
    ],
)
def test_transport_fields_and_nulls_are_ignored(extra: dict[str, Any]) -> None:
    index = TurnIndex.build([Turn(request={"model": "m", "input": "hi"}, events=())])
    assert index.lookup({"model": "m", "input": "hi", **extra}).turn == 0


def test_key_is_independent_of_field_order() -> None:
    index = TurnIndex()
    a = {"model": "m", "input": "x", "metadata": {"a": 1, "b": 2}}
    b = {"metadata": {"b": 2, "a": 1}, "input": "x", "model": "m"}
    assert index.key_for(a) == index.key_for(b)


# -- ignore_fields ------------------------------------------------------------------------------------


def test_ignore_top_level_field() -> None:
    turn = Turn(request={"model": "m", "input": "hi", "temperature": 0.2, "user": "u1"}, events=())
    index = TurnIndex.build([turn], ignore=["temperature"])
    request = {"model": "m", "input": "hi", "temperature": 0.9, "user": "u1"}
    assert index.lookup(request).turn == 0
    assert not TurnIndex.build([turn]).lookup(request).hit


def test_ignore_json_pointer_removes_only_that_leaf() -> None:
    recorded = {"model": "m", "input": "hi", "metadata": {"run_id": "run-1", "suite": "a"}}
    index = TurnIndex.build(
        [Turn(request=recorded, events=()), Turn(request=recorded, events=())], ignore=["/metadata/run_id"]
    )
    sent = {"model": "m", "input": "hi", "metadata": {"run_id": "run-2", "suite": "a"}}
    snapshot = copy.deepcopy(sent)
    assert index.lookup(sent).turn == 0
    assert sent == snapshot  # the caller's request is untouched
    assert recorded == {"model": "m", "input": "hi", "metadata": {"run_id": "run-1", "suite": "a"}}
    assert index.turns[0].request == recorded
    other = {"model": "m", "input": "hi", "metadata": {"run_id": "run-2", "suite": "b"}}
    assert not index.lookup(other).hit
    assert index.lookup({"model": "m", "input": "hi", "metadata": {"suite": "a"}}).turn == 1


def test_ignore_pointer_with_escapes_and_missing_paths() -> None:
    recorded = {"model": "m", "input": "hi", "metadata": {"a/b": 1, "c~d": 2, "e": 3}}
    index = TurnIndex.build(
        [Turn(request=recorded, events=())], ignore=["/metadata/a~1b", "/metadata/c~0d", "/x/y/z"]
    )
    sent = {"model": "m", "input": "hi", "metadata": {"a/b": 9, "c~d": 9, "e": 3}}
    assert index.lookup(sent).turn == 0


def test_ignore_does_not_mutate_top_level_fields_either() -> None:
    index = TurnIndex.build(
        [Turn(request={"model": "m", "input": "x", "metadata": {"k": 1}}, events=())], ignore=["metadata"]
    )
    sent = {"model": "m", "input": "x", "metadata": {"k": 2}}
    assert index.lookup(sent).turn == 0
    assert sent == {"model": "m", "input": "x", "metadata": {"k": 2}}


# -- playback counts --------------------------------------------------------------------------------------


def _twice() -> list[Turn]:
    request = {"model": "m", "input": "roll a die"}
    return [
        Turn(request=request, events=_events("resp_a", [])),
        Turn(request=request, events=_events("resp_b", [])),
    ]


def test_each_recorded_turn_answers_once_in_order() -> None:
    index = TurnIndex.build(_twice())
    assert index.unplayed() == [0, 1]
    assert index.lookup({"model": "m", "input": "roll a die"}).turn == 0
    assert index.lookup({"model": "m", "input": "roll a die"}).turn == 1
    result = index.lookup({"model": "m", "input": "roll a die"})
    assert not result.hit
    assert result.exhausted == (0, 1)
    assert result.key == index.keys[0]
    assert "already played" in result.reason
    assert "allow_playback_repeats" in result.reason
    assert index.unplayed() == []
    assert index.played_count(0) == index.played_count(1) == 1


def test_allow_repeats_reuses_the_last_turn() -> None:
    index = TurnIndex.build(_twice(), allow_repeats=True)
    turns = [index.lookup({"model": "m", "input": "roll a die"}).turn for _ in range(4)]
    assert turns == [0, 1, 1, 1]
    assert index.played_count(1) == 3


def test_mark_played_counts() -> None:
    index = TurnIndex.build(_twice())
    index.mark_played(0)
    assert index.played_count(0) == 1
    assert index.unplayed() == [1]
    assert index.lookup({"model": "m", "input": "roll a die"}).turn == 1


def test_added_turn_is_found_and_chains() -> None:
    index = TurnIndex()
    turns = _chain_turns()
    assert index.add(turns[0]) == 0
    assert index.add(turns[1]) == 1
    assert index.lookup(_http([USER_ITEM, CALL_ITEM, OUTPUT_ITEM])).turn == 1


# -- unknown parents ------------------------------------------------------------------------------------


def test_unknown_previous_response_id_gives_a_reason() -> None:
    index = TurnIndex.build(_chain_turns())
    result = index.lookup(_ws([OUTPUT_ITEM], "resp_nowhere"))
    assert not result.hit
    assert result.turn is None
    assert result.exhausted == ()
    assert "resp_nowhere" in result.reason
    assert "not a response recorded in this cassette" in result.reason
    assert not index.knows_response("resp_nowhere")
    # distinct unknown parents never share a key
    assert index.key_for(_ws([OUTPUT_ITEM], "resp_a")) != index.key_for(_ws([OUTPUT_ITEM], "resp_b"))
    assert index.key_for(_ws([OUTPUT_ITEM], "resp_a")) != index.key_for(_ws([OUTPUT_ITEM]))


def test_turn_chained_from_a_response_outside_the_cassette_replays() -> None:
    # The session continued a response stored before recording began (e.g. made by a fixture).
    first = Turn(request=_ws([THANKS_ITEM], "resp_before_recording"), events=_events("resp_9", [REPLY_ITEM]))
    second = Turn(request=_ws(["more"], "resp_9"), events=_events("resp_10", [REPLY_ITEM]))
    index = TurnIndex.build([first, second])
    result = index.lookup(_ws([THANKS_ITEM], "resp_before_recording"))
    assert result.turn == 0, result.reason
    assert index.lookup(_ws(["more"], "resp_9")).turn == 1


# -- effective input ------------------------------------------------------------------------------------


def test_effective_input_expands_the_chain() -> None:
    index = TurnIndex.build(_chain_turns())
    expected = [normalize_item(i) for i in (USER_ITEM, CALL_ITEM, OUTPUT_ITEM, ANSWER_ITEM, THANKS_ITEM)]
    assert index.effective_input(_ws([THANKS_ITEM], "resp_2")) == expected
    assert index.effective_input(_ws("hi")) == [normalize_item("hi")]
    assert index.effective_input(_ws([OUTPUT_ITEM], "resp_unknown")) is None
    # volatile fields are gone from the expanded output
    assert "id" not in expected[1]
    assert "status" not in expected[3]


def test_raw_effective_input_keeps_items_as_recorded() -> None:
    turns = _chain_turns()
    turns[0] = Turn(request=_ws("Find fizz_buzz()"), events=_events("resp_1", [CALL_ITEM]))
    index = TurnIndex.build(turns)
    raw = index.raw_effective_input(_ws([THANKS_ITEM], "resp_2"))
    call_without_status = {k: v for k, v in CALL_ITEM.items() if k != "status"}
    answer_without_status = {k: v for k, v in ANSWER_ITEM.items() if k != "status"}
    assert raw == ["Find fizz_buzz()", call_without_status, OUTPUT_ITEM, answer_without_status, THANKS_ITEM]
    assert index.raw_effective_input(_ws("x")) == ["x"]
    assert index.raw_effective_input({"input": None}) == []
    assert index.raw_effective_input(_ws([OUTPUT_ITEM], "resp_unknown")) is None


def test_effective_input_survives_a_cycle() -> None:
    # A turn that names its own response as parent (a corrupt cassette) must not loop forever.
    turn = Turn(request=_ws(["x"], "resp_loop"), events=_events("resp_loop", []))
    index = TurnIndex.build([turn])
    assert index.effective_input(_ws(["y"], "resp_loop")) is None
    assert index.raw_effective_input(_ws(["y"], "resp_loop")) is None


# -- explaining misses ------------------------------------------------------------------------------------


def _explain(index: TurnIndex, request: dict[str, Any]) -> str:
    result = index.lookup(request)
    assert not result.hit
    return explain_miss(
        index,
        request,
        result,
        where="WebSocket connection 0",
        cassette="cassettes/test_mod/test_loop.json",
        record_hint="record it with: pytest --rws-record-mode=once",
    )


def test_explain_miss_ranks_the_nearest_turn_first_with_the_pointer() -> None:
    index = TurnIndex.build(_chain_turns())
    changed_output = {**OUTPUT_ITEM, "output": '{"file": "other.py"}'}
    request = _http([USER_ITEM, CALL_ITEM, changed_output])
    report = _explain(index, request)
    assert report.startswith(
        "WebSocket connection 0 matched no recorded turn in cassettes/test_mod/test_loop.json"
    )
    assert "why: no recorded turn has this request" in report
    assert report.rstrip().endswith("record it with: pytest --rws-record-mode=once")
    nearest = report[report.index("nearest recorded turns") :].splitlines()
    assert nearest[1] == "  turn 1 (ws, connection 0): 1 difference"
    assert nearest[2].startswith("    /input/2/output: recorded ")
    assert '"{\\"file\\": \\"fb.py\\"}"' in nearest[2]
    assert '"{\\"file\\": \\"other.py\\"}"' in nearest[2]
    ranked = nearest_turns(index, request)
    assert ranked[0][0] == 1
    assert ranked[0][1] == [Difference("/input/2/output", OUTPUT_ITEM["output"], changed_output["output"])]
    assert len(ranked[1][1]) >= 1


def test_explain_miss_shows_the_request_as_sent() -> None:
    index = TurnIndex.build(_chain_turns())
    request = _ws([OUTPUT_ITEM], "resp_nowhere", stream_id="lane-a")
    report = _explain(index, request)
    assert "resp_nowhere" in report
    assert '"stream_id": "lane-a"' in report
    assert "not a response recorded in this cassette" in report


def test_explain_miss_for_exhausted_turn() -> None:
    index = TurnIndex.build(_twice())
    request = {"model": "m", "input": "roll a die"}
    index.lookup(request)
    index.lookup(request)
    report = _explain(index, request)
    assert "it is the same request as turn 0, turn 1, already answered in this test" in report
    assert "turn 0 (ws, connection 0): identical" in report


def test_explain_miss_on_an_empty_cassette() -> None:
    report = _explain(TurnIndex(), {"model": "m", "input": "hi"})
    assert "the cassette has no turns" in report


def test_explain_miss_caps_differences_per_turn() -> None:
    index = TurnIndex.build([Turn(request={"model": "m", "input": "hi"}, events=())])
    sent = {"model": "m", "input": "hi", **{f"field_{i}": i for i in range(10)}}
    report = _explain(index, sent)
    assert "10 differences" in report
    assert "… and 4 more" in report
    assert "/field_0: not recorded, sent 0" in report


def test_effective_view_of_a_chained_request() -> None:
    index = TurnIndex.build(_chain_turns(), ignore=["store"])
    view = effective_view(index, _ws([OUTPUT_ITEM], "resp_1", stream=True))
    assert view == {
        "model": "gpt-5.2",
        "tools": [TOOL],
        "input": [normalize_item(USER_ITEM), normalize_item(CALL_ITEM), normalize_item(OUTPUT_ITEM)],
    }


@pytest.mark.parametrize(("recorded", "sent"), [(1, 1.0), (True, 1)])
def test_miss_report_never_calls_a_missed_turn_identical(recorded: Any, sent: Any) -> None:
    # Matching compares canonical JSON, where 1 and 1.0 (or true and 1) differ; the miss report
    # compares with Python's ==, where they are equal. A turn that did not match must show why.
    index = TurnIndex.build([Turn(request={"model": "m", "input": "hi", "temperature": recorded}, events=())])
    request = {"model": "m", "input": "hi", "temperature": sent}
    if index.lookup(request).hit:
        return
    ranked = nearest_turns(index, request)
    assert ranked[0][1] != [], "the miss report calls a turn that did not match 'identical'"


# -- diff -------------------------------------------------------------------------------------------------


def test_diff_nested_values() -> None:
    recorded = {"a": {"b": [1, 2, {"c": "x"}]}, "gone": 1, "same": [1]}
    sent = {"a": {"b": [1, 3, {"c": "y"}, 4]}, "new/key~": True, "same": [1]}
    differences = diff(recorded, sent)
    assert [d.pointer for d in differences] == ["/a/b/1", "/a/b/2/c", "/a/b/3", "/gone", "/new~1key~0"]
    described = [d.describe() for d in differences]
    assert described == [
        "/a/b/1: recorded 2, sent 3",
        '/a/b/2/c: recorded "x", sent "y"',
        "/a/b/3: not recorded, sent 4",
        "/gone: recorded 1, not sent",
        "/new~1key~0: not recorded, sent true",
    ]


def test_diff_of_different_kinds_is_one_difference() -> None:
    assert diff({"a": [1]}, {"a": {"0": 1}}) == [Difference("/a", [1], {"0": 1})]
    assert [d.describe() for d in diff(1, "1")] == ['/: recorded 1, sent "1"']


def test_diff_describe_truncates_long_values() -> None:
    (difference,) = diff("a" * 500, "b")
    text = difference.describe()
    assert len(text) < 250
    assert "…" in text


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(_json)
def test_diff_of_a_value_with_itself_is_empty(value: Any) -> None:
    assert diff(value, value) == []
    assert diff(value, copy.deepcopy(value)) == []


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(_json, _json)
def test_diff_is_empty_exactly_when_equal(a: Any, b: Any) -> None:
    differences = diff(a, b)
    assert (differences == []) == (a == b)
    for difference in differences:
        assert difference.pointer == "" or difference.pointer.startswith("/")


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.text(max_size=3), _json, max_size=4), st.text(max_size=3), _json)
def test_diff_points_at_a_changed_key(base: dict[str, Any], key: str, value: Any) -> None:
    changed = {**base, key: value}
    differences = diff(base, changed)
    token = "/" + key.replace("~", "~0").replace("/", "~1")
    assert all(d.pointer == token or d.pointer.startswith(token + "/") for d in differences)
    assert (differences == []) == (base.get(key, object()) == value)


def test_request_key_is_hashable_value() -> None:
    key = TurnIndex().key_for({"model": "m", "input": "x"})
    assert isinstance(key, RequestKey)
    assert key == TurnIndex().key_for({"input": "x", "model": "m"})
    assert len(key.context) == len(key.params) == 16


# -- turns an injected fault cut short -----------------------------------------------------------------


def test_a_retry_after_an_interrupted_turn_gets_the_recorded_retry_when_there_is_one() -> None:
    """Recorded with the fault: the cut turn and the client's retry are both in the cassette."""
    retry = Turn(request=_ws([USER_ITEM, CALL_ITEM, OUTPUT_ITEM]), events=_events("resp_9", [ANSWER_ITEM]))
    index = TurnIndex.build([*_chain_turns()[:2], retry])
    assert index.lookup(_ws([USER_ITEM])).turn == 0
    cut = index.lookup(_ws([OUTPUT_ITEM], "resp_1")).turn
    assert cut == 1
    index.mark_interrupted(cut)
    # The retry resends the whole conversation: the same key, answered by the recorded retry.
    assert index.lookup(_ws([USER_ITEM, CALL_ITEM, OUTPUT_ITEM])).turn == 2


def test_a_retry_after_an_interrupted_turn_replays_it_when_the_cassette_has_no_retry() -> None:
    """Recorded without the fault: the one recorded turn answers the retry, once."""
    index = TurnIndex.build(_chain_turns())
    index.lookup(_ws([USER_ITEM]))
    cut = index.lookup(_ws([OUTPUT_ITEM], "resp_1")).turn
    assert cut is not None
    index.mark_interrupted(cut)
    assert index.lookup(_ws([OUTPUT_ITEM], "resp_1")).turn == cut
    third = index.lookup(_ws([OUTPUT_ITEM], "resp_1"))
    assert third.turn is None and third.exhausted == (cut,)
