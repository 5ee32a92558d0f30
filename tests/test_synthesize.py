"""Unit tests of ``core.synthesize``: final response object <-> streamed events."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.core.synthesize import (
    TERMINAL_EVENT_TYPES,
    response_from_events,
    streamable_problem,
    synthesize_events,
)

# -- builders ---------------------------------------------------------------------------------------


def _message(text: str, item_id: str = "msg_1") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": "completed",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
        "role": "assistant",
    }


def _function_call(arguments: str, item_id: str = "fc_1", name: str = "get_weather") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "arguments": arguments,
        "call_id": f"call_{item_id}",
        "name": name,
    }


def _response(output: Sequence[Mapping[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_767_225_600,
        "status": status,
        "background": False,
        "completed_at": 1_767_225_601,
        "error": None,
        "incomplete_details": None,
        "model": "gpt-5.2",
        "output": list(output),
        "service_tier": "default",
        "store": False,
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        },
        "metadata": {},
    }


def _types(events: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(event["type"]) for event in events]


def _without_deltas(types: Sequence[str]) -> list[str]:
    """Delta counts depend on tokenization, so sequences are compared without them."""
    return [name for name in types if not name.endswith(".delta")]


def _joined(events: Sequence[Mapping[str, Any]], event_type: str, **where: Any) -> str:
    return "".join(
        event["delta"]
        for event in events
        if event["type"] == event_type and all(event.get(k) == v for k, v in where.items())
    )


# -- order and numbering ----------------------------------------------------------------------------


def test_message_event_order() -> None:
    events = synthesize_events(_response([_message("Hello, world!")]), chunk_chars=5)
    assert _types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_sequence_numbers_count_from_zero() -> None:
    events = synthesize_events(_response([_message("abc" * 10), _function_call('{"a": 1}')]))
    assert [event["sequence_number"] for event in events] == list(range(len(events)))


def test_type_comes_first_and_other_fields_are_alphabetical() -> None:
    for event in synthesize_events(_response([_message("hi"), _function_call("{}")])):
        keys = list(event)
        assert keys[0] == "type"
        assert keys[1:] == sorted(keys[1:])


def test_created_and_in_progress_show_a_running_response() -> None:
    final = _response([_message("done")])
    events = synthesize_events(final)
    for event in events[:2]:
        start = event["response"]
        assert start["status"] == "in_progress"
        assert start["output"] == []
        assert start["usage"] is None
        assert start["completed_at"] is None
        assert start["service_tier"] == "auto"
        assert list(start) == list(final)
        assert start["id"] == final["id"]
    assert events[-1] == {"type": "response.completed", "response": final, "sequence_number": len(events) - 1}


def test_added_item_is_empty_and_done_item_is_final() -> None:
    message, call = _message("some text"), _function_call('{"city":"Paris"}')
    events = synthesize_events(_response([message, call]))
    added = [event for event in events if event["type"] == "response.output_item.added"]
    done = [event for event in events if event["type"] == "response.output_item.done"]
    assert [event["output_index"] for event in added] == [0, 1]
    assert added[0]["item"] == {**message, "status": "in_progress", "content": []}
    assert added[1]["item"] == {**call, "status": "in_progress", "arguments": ""}
    assert [event["item"] for event in done] == [message, call]


def test_item_events_carry_their_position() -> None:
    events = synthesize_events(_response([_function_call("{}"), _message("text")]))
    for event in events:
        if event["type"].startswith("response.output_text") or event["type"].startswith(
            "response.content_part"
        ):
            assert event["item_id"] == "msg_1"
            assert event["output_index"] == 1
            assert event["content_index"] == 0
        if event["type"].startswith("response.function_call_arguments"):
            assert event["item_id"] == "fc_1"
            assert event["output_index"] == 0


def test_deltas_rebuild_text_and_arguments() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    arguments = '{"city": "Paris", "units": "celsius"}'
    events = synthesize_events(_response([_message(text), _function_call(arguments)]), chunk_chars=3)
    assert _joined(events, "response.output_text.delta") == text
    assert _joined(events, "response.function_call_arguments.delta") == arguments
    done_text = next(event for event in events if event["type"] == "response.output_text.done")
    assert done_text["text"] == text
    done_args = next(event for event in events if event["type"] == "response.function_call_arguments.done")
    assert done_args["arguments"] == arguments
    assert all(len(event["delta"]) <= 3 for event in events if event["type"].endswith(".delta"))


def test_empty_text_streams_no_delta() -> None:
    events = synthesize_events(_response([_message("")]))
    assert "response.output_text.delta" not in _types(events)
    assert "response.output_text.done" in _types(events)


def test_obfuscation_callback_numbers_deltas_across_items() -> None:
    events = synthesize_events(
        _response([_message("abcdef"), _function_call("123456")]),
        chunk_chars=2,
        obfuscation=lambda n: f"obf{n}",
    )
    deltas = [event for event in events if event["type"].endswith(".delta")]
    assert [event["obfuscation"] for event in deltas] == [f"obf{n}" for n in range(6)]
    without = synthesize_events(_response([_message("abcdef")]), chunk_chars=2)
    assert all("obfuscation" not in event for event in without)


def test_stream_id_is_echoed_on_every_event() -> None:
    events = synthesize_events(_response([_message("hi")]), stream_id="lane-a")
    assert {event["stream_id"] for event in events} == {"lane-a"}
    assert all("stream_id" not in event for event in synthesize_events(_response([_message("hi")])))


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        ("completed", "response.completed"),
        ("incomplete", "response.incomplete"),
        ("failed", "response.failed"),
    ],
)
def test_terminal_event_follows_status(status: str, terminal: str) -> None:
    events = synthesize_events(_response([_message("partial")], status=status))
    assert events[-1]["type"] == terminal
    assert events[-1]["response"]["status"] == status
    assert terminal in TERMINAL_EVENT_TYPES


@pytest.mark.parametrize("status", ["in_progress", "queued", None])
def test_status_without_terminal_event_is_refused(status: str | None) -> None:
    with pytest.raises(ValueError, match="cannot stream a response with status"):
        synthesize_events(_response([], status="completed") | {"status": status})


def test_chunk_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_chars"):
        synthesize_events(_response([]), chunk_chars=0)


def test_input_is_not_mutated() -> None:
    final = _response([_message("hello"), _function_call("{}")])
    before = copy.deepcopy(final)
    events = synthesize_events(final)
    events[0]["response"]["id"] = "changed"
    events[-1]["response"]["output"].clear()
    assert final == before


# -- other item types -------------------------------------------------------------------------------


def test_reasoning_summary_streams_parts() -> None:
    reasoning = {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [
            {"type": "summary_text", "text": "First thought."},
            {"type": "summary_text", "text": "Second."},
        ],
    }
    events = synthesize_events(_response([reasoning]), chunk_chars=4)
    assert _without_deltas(_types(events)) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert _joined(events, "response.reasoning_summary_text.delta", summary_index=0) == "First thought."
    assert _joined(events, "response.reasoning_summary_text.delta", summary_index=1) == "Second."
    added = events[2]["item"]
    assert added["summary"] == []
    part_added = events[3]
    assert part_added["part"] == {"type": "summary_text", "text": ""}
    assert part_added["item_id"] == "rs_1"


def test_custom_tool_call_streams_input() -> None:
    call = {
        "id": "ctc_1",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "call_1",
        "input": "SELECT * FROM users LIMIT 5;",
        "name": "execute_sql",
    }
    events = synthesize_events(_response([call]))
    assert _joined(events, "response.custom_tool_call_input.delta") == call["input"]
    done = next(event for event in events if event["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == call["input"]
    assert events[2]["item"]["input"] == ""


def test_refusal_part_streams_refusal_events() -> None:
    message = {
        "id": "msg_r",
        "type": "message",
        "status": "completed",
        "content": [{"type": "refusal", "refusal": "I can't help with that."}],
        "role": "assistant",
    }
    events = synthesize_events(_response([message]))
    assert _joined(events, "response.refusal.delta") == "I can't help with that."
    assert "response.refusal.done" in _types(events)


def test_other_items_are_added_then_done() -> None:
    item = {"id": "ig_1", "type": "image_generation_call", "status": "completed", "result": "aGk="}
    events = synthesize_events(_response([item]))
    assert _types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"]["status"] == "in_progress"
    assert events[3]["item"] == item


# -- response_from_events ---------------------------------------------------------------------------


def test_response_from_events_takes_the_terminal_response() -> None:
    final = _response([_message("x")])
    assert response_from_events(synthesize_events(final)) == final


def test_response_from_events_accepts_legacy_done() -> None:
    final = _response([_message("x")])
    events: list[dict[str, Any]] = [{"type": "response.done", "response": final, "sequence_number": 0}]
    assert response_from_events(events) == final


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"type": "response.created", "response": {"id": "r"}, "sequence_number": 0}],
        [
            {"type": "error", "status": 400, "error": {"code": "previous_response_not_found"}},
        ],
    ],
    ids=["empty", "no-terminal", "error"],
)
def test_response_from_events_is_none_without_terminal_response(events: list[dict[str, Any]]) -> None:
    assert response_from_events(events) is None


def test_response_from_events_returns_a_copy() -> None:
    events = synthesize_events(_response([_message("x")]))
    found = response_from_events(events)
    assert found is not None
    found["output"].clear()
    assert events[-1]["response"]["output"]


# -- round trip over open-ended inputs --------------------------------------------------------------

_texts = st.text(max_size=60)
_items = st.one_of(
    _texts.map(lambda text: ("message", text)),
    _texts.map(lambda arguments: ("function_call", arguments)),
)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(_items, max_size=4), chunk_chars=st.integers(min_value=1, max_value=12))
def test_round_trip_keeps_output(items: list[tuple[str, str]], chunk_chars: int) -> None:
    output = [
        _message(value, item_id=f"msg_{index}")
        if kind == "message"
        else _function_call(value, item_id=f"fc_{index}")
        for index, (kind, value) in enumerate(items)
    ]
    final = _response(output)
    events = synthesize_events(final, chunk_chars=chunk_chars, obfuscation=lambda n: "x" * (n % 5))
    rebuilt = response_from_events(events)
    assert rebuilt is not None
    assert rebuilt["output"] == final["output"]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    for index, (kind, value) in enumerate(items):
        delta_type = (
            "response.output_text.delta" if kind == "message" else "response.function_call_arguments.delta"
        )
        assert _joined(events, delta_type, output_index=index) == value


# -- shapes from real recordings --------------------------------------------------------------------
# Hand-copied from pydantic-ai's recordings of live api.openai.com traffic (the files are in
# tests/data/real-recordings); these tests do not read them.

_REAL_MSG_ID = "msg_0491995c8fadf37b0069c5b90c0e64819db9caac4e75be6bca"
_REAL_HELLO = {
    "id": _REAL_MSG_ID,
    "type": "message",
    "status": "completed",
    "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello."}],
    "role": "assistant",
}

# ws/test_ws_simple_text_request.yaml, received frames, deltas left out.
_REAL_SIMPLE_TEXT_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
# The same recording's events, verbatim apart from sequence_number.
_REAL_SIMPLE_TEXT_EVENTS = {
    "response.output_item.added": {
        "type": "response.output_item.added",
        "item": {
            "id": _REAL_MSG_ID,
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        },
        "output_index": 0,
    },
    "response.content_part.added": {
        "type": "response.content_part.added",
        "content_index": 0,
        "item_id": _REAL_MSG_ID,
        "output_index": 0,
        "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
    },
    "response.output_text.done": {
        "type": "response.output_text.done",
        "content_index": 0,
        "item_id": _REAL_MSG_ID,
        "logprobs": [],
        "output_index": 0,
        "text": "Hello.",
    },
    "response.content_part.done": {
        "type": "response.content_part.done",
        "content_index": 0,
        "item_id": _REAL_MSG_ID,
        "output_index": 0,
        "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello."},
    },
    "response.output_item.done": {
        "type": "response.output_item.done",
        "item": _REAL_HELLO,
        "output_index": 0,
    },
}
# Key order of the recorded response.output_text.delta frame.
_REAL_TEXT_DELTA_KEYS = [
    "type",
    "content_index",
    "delta",
    "item_id",
    "logprobs",
    "obfuscation",
    "output_index",
    "sequence_number",
]

# ws/test_ws_request_with_structured_output.yaml, deltas left out.
_REAL_FUNCTION_CALL = {
    "id": "fc_019045f776176a6a0069c5b99e4194819f9ee1a3ce4622d16f",
    "type": "function_call",
    "status": "completed",
    "arguments": '{"name":"Paris","country":"France"}',
    "call_id": "call_uo5Vz4darff2OaQYNKeMeMRH",
    "name": "final_result",
}
_REAL_FUNCTION_CALL_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]
_REAL_ARGS_DELTA_KEYS = ["type", "delta", "item_id", "obfuscation", "output_index", "sequence_number"]

# http/test_gpt5_freeform_text_streaming.yaml, first turn: reasoning without summary + custom tool call.
_REAL_FREEFORM_OUTPUT = [
    {"id": "rs_0e3f", "type": "reasoning", "encrypted_content": "gAAAAABpWA22", "summary": []},
    {
        "id": "ctc_0e3f",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "call_2GHkSm2Jm0n7vgXsQEryfGmL",
        "input": "SELECT * FROM users LIMIT 5;",
        "name": "execute_sql",
    },
]
_REAL_FREEFORM_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.output_item.done",
    "response.output_item.added",
    "response.custom_tool_call_input.done",
    "response.output_item.done",
    "response.completed",
]

# http/test_openai_responses_model_file_search_tool_stream.yaml: hosted search + cited answer.
_REAL_FILE_SEARCH_OUTPUT = [
    {
        "id": "fs_006d",
        "type": "file_search_call",
        "status": "completed",
        "queries": ["What is the capital of France?"],
        "results": None,
    },
    {
        "id": "msg_006d",
        "type": "message",
        "status": "completed",
        "content": [
            {
                "type": "output_text",
                "annotations": [
                    {"type": "file_citation", "file_id": "file-9Rh", "filename": "tmp.txt", "index": 30}
                ],
                "logprobs": [],
                "text": "The capital of France is Paris.",
            }
        ],
        "role": "assistant",
    },
]
_REAL_FILE_SEARCH_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.file_search_call.in_progress",
    "response.file_search_call.searching",
    "response.file_search_call.completed",
    "response.output_item.done",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.annotation.added",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.mark.parametrize(
    ("output", "expected_types"),
    [
        ([_REAL_HELLO], _REAL_SIMPLE_TEXT_TYPES),
        ([_REAL_FUNCTION_CALL], _REAL_FUNCTION_CALL_TYPES),
        (_REAL_FREEFORM_OUTPUT, _REAL_FREEFORM_TYPES),
        (_REAL_FILE_SEARCH_OUTPUT, _REAL_FILE_SEARCH_TYPES),
    ],
    ids=["ws-text", "ws-function-call", "http-reasoning-custom-tool", "http-file-search"],
)
def test_type_sequence_matches_real_recording(
    output: list[dict[str, Any]], expected_types: list[str]
) -> None:
    events = synthesize_events(_response(output), obfuscation=lambda n: "o")
    assert _without_deltas(_types(events)) == expected_types


def test_text_events_match_real_recording() -> None:
    events = synthesize_events(_response([_REAL_HELLO]), obfuscation=lambda n: "s9jfbPEsUTK")
    by_type = {event["type"]: {k: v for k, v in event.items() if k != "sequence_number"} for event in events}
    for event_type, expected in _REAL_SIMPLE_TEXT_EVENTS.items():
        assert by_type[event_type] == expected
        assert list(by_type[event_type]) == list(expected)
    delta = next(event for event in events if event["type"] == "response.output_text.delta")
    assert list(delta) == _REAL_TEXT_DELTA_KEYS


def test_function_call_delta_shape_matches_real_recording() -> None:
    events = synthesize_events(_response([_REAL_FUNCTION_CALL]), obfuscation=lambda n: "lHJMxWYEpIBmt5")
    delta = next(event for event in events if event["type"] == "response.function_call_arguments.delta")
    assert list(delta) == _REAL_ARGS_DELTA_KEYS
    added = events[2]["item"]
    assert added == {**_REAL_FUNCTION_CALL, "status": "in_progress", "arguments": ""}
    assert list(added) == list(_REAL_FUNCTION_CALL)


def test_search_item_added_without_results() -> None:
    events = synthesize_events(_response(_REAL_FILE_SEARCH_OUTPUT))
    assert events[2]["item"] == {
        "id": "fs_006d",
        "type": "file_search_call",
        "status": "in_progress",
        "queries": [],
        "results": None,
    }
    annotation = next(event for event in events if event["type"] == "response.output_text.annotation.added")
    assert annotation["annotation_index"] == 0
    assert annotation["annotation"]["type"] == "file_citation"


@pytest.mark.parametrize(
    ("response", "pointer", "problem"),
    [
        ({"output": []}, "/status", "cannot stream a response with status None"),
        (
            {"status": ["completed"], "output": []},
            "/status",
            "cannot stream a response with status ['completed']",
        ),
        (
            {"status": "completed", "output": {"type": "message"}},
            "/output",
            "expected an array of output items",
        ),
        (
            {"status": "completed", "output": ["hi"]},
            "/output/0",
            "expected an output item object, found a string",
        ),
        (
            {"status": "completed", "output": [{"type": ["message"]}]},
            "/output/0/type",
            "expected a string item type",
        ),
        (
            {"status": "completed", "output": [{"type": "message", "content": "hi"}]},
            "/output/0/content",
            "expected an array of parts, found a string",
        ),
        (
            {"status": "completed", "output": [{"type": "message", "content": [7]}]},
            "/output/0/content/0",
            "expected a part object, found a number",
        ),
        (
            {"status": "completed", "output": [{"type": "message", "content": [{"annotations": "x"}]}]},
            "/output/0/content/0/annotations",
            "expected an array, found a string",
        ),
        (
            {"status": "completed", "output": [{"type": "reasoning", "summary": {"text": "x"}}]},
            "/output/0/summary",
            "expected an array of parts, found an object",
        ),
    ],
)
def test_a_response_that_cannot_be_streamed_is_named_not_crashed_on(
    response: dict[str, Any], pointer: str, problem: str
) -> None:
    found = streamable_problem(response)
    assert found is not None and found[0] == pointer and found[1].startswith(problem)
    with pytest.raises(ValueError, match=re.escape(problem)):
        synthesize_events(response)
