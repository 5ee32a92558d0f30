"""Recorded errors replay as the service answered them (pure parts): the error shapes of each
transport and the mapping between them, what an HTTP request gets for each kind of error
turn, the allow-list of answer headers, their cassette field, and unknown events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_responses_ws.cassette.codec import decode_cassette, encode_cassette
from pytest_responses_ws.cassette.model import Cassette, RecordedEvent, RecordedWith, Transport, Turn
from pytest_responses_ws.cassette.redact import REDACTED, Redactor
from pytest_responses_ws.core.error_events import (
    error_status,
    flat_error,
    next_sequence_number,
    wrapped_error,
)
from pytest_responses_ws.core.record import KEPT_RESPONSE_HEADERS, SessionRecorder, kept_response_headers
from pytest_responses_ws.core.replay import Playback, http_answer, transport_events
from pytest_responses_ws.core.synthesize import synthesize_events
from pytest_responses_ws.errors import CassetteFormatError

MS = 1_000_000
SERVER_ERROR = {
    "type": "server_error",
    "code": "server_error",
    "message": "The server had an error.",
    "param": None,
}
WRAPPED = {"type": "error", "status": 500, "error": SERVER_ERROR}
FLAT = {
    "type": "error",
    "code": "server_error",
    "message": "The server had an error.",
    "param": None,
    "sequence_number": 3,
}
NESTED = {"type": "error", "sequence_number": 2, "error": SERVER_ERROR}
CREATED = {
    "type": "response.created",
    "response": {"id": "resp_1", "status": "in_progress"},
    "sequence_number": 0,
}
IN_PROGRESS = {"type": "response.in_progress", "response": {"id": "resp_1"}, "sequence_number": 1}


def _turn(transport: Transport, *events: dict[str, Any], **fields: Any) -> Turn:
    return Turn(
        request={"model": "m", "input": "hi"},
        events=tuple(RecordedEvent(float(i), e) for i, e in enumerate(events)),
        transport=transport,
        **fields,
    )


# -- shapes ------------------------------------------------------------------------------------------


def test_flat_and_nested_errors_wrap_into_the_websocket_shape_keeping_other_fields() -> None:
    assert wrapped_error(FLAT) == {**WRAPPED, "sequence_number": 3}
    assert wrapped_error(NESTED) == {**WRAPPED, "sequence_number": 2}
    assert list(wrapped_error(NESTED)) == ["type", "status", "error", "sequence_number"]
    # A wrapped event is already in shape, whatever else it carries.
    assert wrapped_error({**WRAPPED, "stream_id": "a"}) == {**WRAPPED, "stream_id": "a"}


@pytest.mark.parametrize(
    ("error_type", "status"),
    [("invalid_request_error", 400), ("requests", 429), ("server_error", 500), ("something_new", 500)],
)
def test_the_status_of_an_error_without_one_comes_from_its_type(error_type: str, status: int) -> None:
    assert error_status({"type": "error", "error": {"type": error_type}}) == status
    # Its own status wins; the flat shape has no type: the service failed after accepting.
    assert error_status({"type": "error", "status": 418, "error": {"type": error_type}}) == 418
    assert error_status(FLAT) == 500


def test_websocket_errors_flatten_with_a_sequence_number_after_the_events_before() -> None:
    assert flat_error(WRAPPED, 2) == {
        **{k: v for k, v in FLAT.items() if k != "sequence_number"},
        "sequence_number": 2,
    }
    assert flat_error(NESTED, 9)["sequence_number"] == 2  # its own wins
    assert next_sequence_number([CREATED, IN_PROGRESS, WRAPPED], 2) == 2
    assert next_sequence_number([{"type": "x"}, {"type": "y"}], 2) == 2  # none numbered: the position


# -- per transport -------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [FLAT, NESTED], ids=["flat", "nested"])
def test_an_http_stream_replays_byte_for_byte_over_http_and_wrapped_over_websocket(
    error: dict[str, Any],
) -> None:
    turn = _turn("http", CREATED, IN_PROGRESS, error, outcome="error")
    sse = Playback.for_sse(turn)
    assert sse.unterminated is None
    assert [json.loads(block.split("data: ", 1)[1]) for block in sse.frames][-1] == error
    assert sse.frames[-1] == f"event: error\ndata: {json.dumps(error, separators=(',', ':'))}\n\n"
    ws = Playback.for_websocket(turn, None)
    assert json.loads(ws.frames[-1]) == wrapped_error(error)
    assert [json.loads(frame) for frame in ws.frames[:2]] == [CREATED, IN_PROGRESS]
    assert ws.unterminated is None


def test_a_websocket_error_replays_as_recorded_over_websocket_and_flat_over_http() -> None:
    turn = _turn("ws", CREATED, IN_PROGRESS, WRAPPED, outcome="error")
    assert [json.loads(f) for f in Playback.for_websocket(turn, None).frames] == [
        CREATED,
        IN_PROGRESS,
        WRAPPED,
    ]
    assert transport_events(turn, "http")[-1] == {
        **{k: v for k, v in FLAT.items() if k != "sequence_number"},
        "sequence_number": 2,
    }
    # On a named lane the error echoes the lane like every event.
    assert json.loads(Playback.for_websocket(turn, "lane-a").frames[-1]) == {**WRAPPED, "stream_id": "lane-a"}


def test_turns_without_errors_are_the_recorded_events_themselves() -> None:
    turn = _turn("http", CREATED, IN_PROGRESS)
    assert transport_events(turn, "ws") == [CREATED, IN_PROGRESS]


def test_http_answers_for_each_kind_of_error_turn() -> None:
    early = _turn(
        "ws", {**WRAPPED, "status": 400, "error": {**SERVER_ERROR, "type": "invalid_request_error"}}
    )
    for stream in (True, False):
        answer = http_answer(early, wants_stream=stream)
        assert (answer.status, answer.body, answer.stream) == (
            400,
            {"error": early.events[0].data["error"]},
            False,
        )
    # An HTTP stream that starts with an error was a 200 stream: it replays as one.
    assert http_answer(_turn("http", NESTED), wants_stream=True).stream
    # A plain request for a turn that ended in an error gets that error and its status.
    for recorded in (
        _turn("ws", CREATED, WRAPPED),
        _turn("http", CREATED, FLAT),
        _turn("http", CREATED, NESTED),
    ):
        answer = http_answer(recorded, wants_stream=False)
        assert (answer.status, answer.body) == (500, {"error": SERVER_ERROR})
        assert http_answer(recorded, wants_stream=True).stream


# -- headers clients act on ------------------------------------------------------------------------------

UPSTREAM_HEADERS = {
    "Retry-After": "1",
    "retry-after-ms": "800",
    "x-should-retry": "true",
    "x-request-id": "req_123",
    "set-cookie": "__cf_bm=value",
    "openai-organization": "org-x",
    "authorization": "Bearer value",
    "content-type": "application/json",
}


def test_only_allow_listed_headers_of_an_error_answer_are_kept_in_allow_list_order() -> None:
    kept = kept_response_headers(429, UPSTREAM_HEADERS)
    assert kept == {"retry-after": "1", "retry-after-ms": "800", "x-should-retry": "true"}
    assert list(kept) == [name for name in KEPT_RESPONSE_HEADERS if name in kept]
    assert kept_response_headers(200, UPSTREAM_HEADERS) == {}  # figures of a success only churn
    assert "x-request-id" not in KEPT_RESPONSE_HEADERS


def test_recorder_keeps_the_allow_listed_headers_scrubbed() -> None:
    recorder = SessionRecorder(0, Redactor())
    token = "tok" + "-0123456789abcdefghijklmnop"  # looks like a token: scrubbed even here
    connection = recorder.open_connection("http", {"authorization": "Bearer " + token}, 0)
    pending = recorder.start_turn(connection, {"model": "m", "input": "hi"}, MS, transport="http")
    recorder.discard(pending)
    body = {
        "error": {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    }
    headers = {**UPSTREAM_HEADERS, "x-ratelimit-reset-requests": token}
    turn = recorder.store(pending, outcome="http_error", status=429, body=body, headers=headers)
    assert turn.headers == {
        "retry-after": "1",
        "retry-after-ms": "800",
        "x-should-retry": "true",
        "x-ratelimit-reset-requests": REDACTED,
    }
    recorder.scrub_all()
    assert recorder.turns[0].headers == turn.headers


def test_a_replayed_error_answer_carries_its_headers_encoded_once() -> None:
    turn = Turn(
        request={"model": "m"},
        events=(),
        transport="http",
        outcome="http_error",
        status=429,
        body={"error": SERVER_ERROR},
        # A hand-edited cassette cannot set framing headers or cookies this way.
        headers={"retry-after": "1", "content-length": "0", "set-cookie": "a=b"},
    )
    answer = http_answer(turn, wants_stream=True)
    assert (answer.status, answer.stream, answer.headers) == (429, False, ((b"retry-after", b"1"),))


def _cassette(*turns: Turn) -> Cassette:
    return Cassette(turns=turns, recorded_with=RecordedWith("0"), recorded_at="2026-12-01T00:00:00+00:00")


def test_turn_headers_round_trip_and_are_written_only_when_present() -> None:
    with_headers = Turn(
        request={"model": "m"},
        events=(),
        transport="http",
        status=429,
        body={"error": {}},
        headers={"retry-after": "1"},
    )
    text = encode_cassette(_cassette(with_headers, _turn("http", CREATED)))
    turns = json.loads(text)["turns"]
    assert turns[0]["headers"] == {"retry-after": "1"}
    assert "headers" not in turns[1]
    assert decode_cassette(text).turns[0].headers == {"retry-after": "1"}
    # A cassette written before the field existed loads with none.
    assert decode_cassette(text.replace('"headers": {"retry-after": "1"},', "")).turns[0].headers == {}


@pytest.mark.parametrize(
    ("headers", "pointer"),
    [
        ({"Retry-After": "1"}, "/turns/0/headers/Retry-After"),
        ({"retry-after": 1}, "/turns/0/headers/retry-after"),
        ({"retry-after": "1\r\nset-cookie: a=b"}, "/turns/0/headers/retry-after"),
        ([], "/turns/0/headers"),
    ],
    ids=["upper-case-name", "number", "line-break", "array"],
)
def test_bad_turn_headers_name_their_pointer(headers: Any, pointer: str) -> None:
    document = json.loads(encode_cassette(_cassette(_turn("http", CREATED))))
    document["turns"][0]["headers"] = headers
    with pytest.raises(CassetteFormatError) as info:
        decode_cassette(json.dumps(document), "c.json")
    assert info.value.pointer == pointer


# -- unknown events ------------------------------------------------------------------------------------

FUTURE = {"type": "response.future_widget.delta", "sequence_number": 2, "widget": {"sides": [6, {"x": None}]}}


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_unknown_events_are_recorded_scrubbed_and_replayed_untouched(transport: Transport) -> None:
    recorder = SessionRecorder(0, Redactor())
    connection = recorder.open_connection(transport, {}, 0)
    pending = recorder.start_turn(connection, {"model": "m", "input": "hi"}, MS, transport=transport)
    completed = {
        "type": "response.completed",
        "response": {"id": "r", "future_usage": {"w": 1}},
        "sequence_number": 3,
    }
    for event in (CREATED, FUTURE, completed):
        if transport == "http":
            recorder.on_http_event(pending, dict(event), 2 * MS)
        else:
            recorder.on_event(connection, dict(event), 2 * MS)
    recorder.scrub_all()
    (turn,) = recorder.turns
    assert [e.data for e in turn.events] == [CREATED, FUTURE, completed]
    for other in ("http", "ws"):
        assert transport_events(turn, other) == [CREATED, FUTURE, completed]  # type: ignore[arg-type]
    assert Playback.for_sse(turn).frames[1].startswith("event: response.future_widget.delta\ndata: ")


def test_the_synthesizer_keeps_unknown_items_and_fields() -> None:
    widget = {"type": "future_widget", "id": "wg_1", "status": "completed", "sides": 6}
    response = {"id": "r", "status": "completed", "output": [widget], "future_usage": {"w": 1}}
    events = synthesize_events(response)
    assert events[-1]["response"] == response
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert [e["item"] for e in done] == [widget]
    assert events[0]["response"]["future_usage"] == {"w": 1}


# -- the rest of a response after the error that ended its turn ------------------------------------------

FAILED = {"type": "response.failed", "response": {"id": "resp_1", "status": "failed"}, "sequence_number": 3}


def test_http_events_after_the_ending_error_extend_the_stored_turn() -> None:
    recorder = SessionRecorder(0, Redactor())
    connection = recorder.open_connection("http", {}, 0)
    pending = recorder.start_turn(connection, {"model": "m", "input": "hi"}, MS, transport="http")
    ended = [recorder.on_http_event(pending, dict(e), 2 * MS) for e in (CREATED, NESTED, FAILED)]
    assert [turn is not None for turn in ended] == [False, True, False]  # stored (and reported) once
    (turn,) = recorder.turns
    assert [e.data for e in turn.events] == [CREATED, NESTED, FAILED]
    assert turn.outcome == "failed"


def test_websocket_events_of_a_response_an_error_cut_short_stay_with_its_turn() -> None:
    recorder = SessionRecorder(0, Redactor())
    connection = recorder.open_connection("ws", {}, 0)
    recorder.start_turn(connection, {"model": "m", "input": "one"}, MS, transport="ws")
    assert recorder.on_event(connection, dict(CREATED), 2 * MS) is None
    assert recorder.on_event(connection, dict(WRAPPED), 3 * MS) is not None
    assert recorder.on_event(connection, dict(FAILED), 4 * MS) is None  # no newer turn on the lane
    recorder.start_turn(connection, {"model": "m", "input": "two"}, 5 * MS, transport="ws")
    late = {"type": "response.output_item.done", "response_id": "resp_1", "sequence_number": 4}
    assert recorder.on_event(connection, dict(late), 6 * MS) is None  # names the old response
    created_2 = {"type": "response.created", "response": {"id": "resp_2"}, "sequence_number": 0}
    completed_2 = {"type": "response.completed", "response": {"id": "resp_2"}, "sequence_number": 1}
    recorder.on_event(connection, dict(created_2), 7 * MS)
    assert recorder.on_event(connection, dict(completed_2), 8 * MS) is not None
    first, second = recorder.turns
    assert [e.data for e in first.events] == [CREATED, WRAPPED, FAILED, late]
    assert first.outcome == "failed"
    assert [e.data for e in second.events] == [created_2, completed_2]
    # An error with no response created ends its turn for good: what follows is not kept with it.
    recorder.start_turn(connection, {"model": "m", "input": "three"}, 9 * MS, transport="ws")
    recorder.on_event(connection, dict(WRAPPED), 10 * MS)
    assert recorder.on_event(connection, {"type": "keepalive"}, 11 * MS) is None
    assert [e.data for e in recorder.turns[2].events] == [WRAPPED]
