"""Unit tests of ``core.record`` (building turns from traffic) and ``core.replay`` (what gets sent back)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.model import RecordedEvent, Turn
from pytest_responses_ws.cassette.redact import REDACTED, Redactor
from pytest_responses_ws.core.match import TurnIndex
from pytest_responses_ws.core.record import SessionRecorder
from pytest_responses_ws.core.replay import (
    Playback,
    compact,
    error_event,
    retag_lane,
    turn_events,
    turn_offsets_ms,
)

MS = 1_000_000  # nanoseconds per millisecond
ORIGIN = 10_000 * MS
API_KEY = "fake-proj-recorderSecret0001"


def _response(response_id: str, status: str = "completed") -> dict[str, Any]:
    return {"id": response_id, "object": "response", "status": status, "output": []}


def _delta(text: str, lane: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.output_text.delta", "delta": text}
    if lane is not None:
        event["stream_id"] = lane
    return event


def _terminal(event_type: str, response_id: str, lane: str | None = None) -> dict[str, Any]:
    if event_type == "error":
        event: dict[str, Any] = {"type": "error", "status": 400, "error": {"code": "bad", "message": "no"}}
    else:
        status = {"response.completed": "completed", "response.done": "completed"}.get(
            event_type, event_type.split(".")[-1]
        )
        event = {"type": event_type, "response": _response(response_id, status)}
    if lane is not None:
        event["stream_id"] = lane
    return event


def _ws_recorder(**headers: str) -> tuple[SessionRecorder, int]:
    recorder = SessionRecorder(ORIGIN)
    connection = recorder.open_connection("ws", {"user-agent": "test-agent", **headers}, ORIGIN + 2 * MS)
    return recorder, connection


# -- SessionRecorder: routing and storing -----------------------------------------------------------------


def test_events_are_routed_to_their_lane() -> None:
    recorder, conn = _ws_recorder()
    recorder.start_turn(conn, {"input": "default"}, ORIGIN + 10 * MS, transport="ws")
    recorder.start_turn(conn, {"input": "a", "stream_id": "a"}, ORIGIN + 11 * MS, transport="ws", lane="a")
    recorder.start_turn(conn, {"input": "b", "stream_id": "b"}, ORIGIN + 12 * MS, transport="ws", lane="b")
    # interleaved events of three concurrent lanes
    assert recorder.on_event(conn, _delta("a1", "a"), ORIGIN + 20 * MS) is None
    assert recorder.on_event(conn, _delta("d1"), ORIGIN + 21 * MS) is None
    assert recorder.on_event(conn, _delta("b1", "b"), ORIGIN + 22 * MS) is None
    done_b = recorder.on_event(conn, _terminal("response.completed", "resp_b", "b"), ORIGIN + 23 * MS)
    done_a = recorder.on_event(conn, _terminal("response.completed", "resp_a", "a"), ORIGIN + 24 * MS)
    done_d = recorder.on_event(conn, _terminal("response.completed", "resp_d"), ORIGIN + 25 * MS)
    assert done_a is not None
    assert done_b is not None
    assert done_d is not None
    assert [t.response_id for t in recorder.turns] == ["resp_b", "resp_a", "resp_d"]
    assert [e.data.get("delta") for e in done_a.events] == ["a1", None]
    assert [e.data.get("delta") for e in done_b.events] == ["b1", None]
    assert [e.data.get("delta") for e in done_d.events] == ["d1", None]
    assert (done_a.lane, done_b.lane, done_d.lane) == ("a", "b", None)
    assert {t.transport for t in recorder.turns} == {"ws"}
    assert {t.connection for t in recorder.turns} == {conn}
    assert recorder.unfinished() == []


def test_each_lane_is_a_fifo() -> None:
    recorder, conn = _ws_recorder()
    recorder.start_turn(conn, {"input": "first"}, ORIGIN + 10 * MS, transport="ws")
    recorder.start_turn(conn, {"input": "second"}, ORIGIN + 11 * MS, transport="ws")
    recorder.on_event(conn, _delta("one"), ORIGIN + 12 * MS)
    first = recorder.on_event(conn, _terminal("response.completed", "resp_1"), ORIGIN + 13 * MS)
    recorder.on_event(conn, _delta("two"), ORIGIN + 14 * MS)
    second = recorder.on_event(conn, _terminal("response.completed", "resp_2"), ORIGIN + 15 * MS)
    assert first is not None
    assert second is not None
    assert first.request == {"input": "first"}
    assert second.request == {"input": "second"}
    assert [e.data.get("delta") for e in first.events] == ["one", None]
    assert [e.data.get("delta") for e in second.events] == ["two", None]


@pytest.mark.parametrize(
    ("event_type", "outcome"),
    [
        ("response.completed", "completed"),
        ("response.done", "completed"),
        ("response.failed", "failed"),
        ("response.incomplete", "incomplete"),
        ("error", "error"),
    ],
)
def test_terminal_event_stores_the_turn_with_its_outcome(event_type: str, outcome: str) -> None:
    recorder, conn = _ws_recorder()
    recorder.start_turn(conn, {"input": "x"}, ORIGIN + 10 * MS, transport="ws")
    assert recorder.on_event(conn, _delta("partial"), ORIGIN + 11 * MS) is None
    assert recorder.turns == []
    turn = recorder.on_event(conn, _terminal(event_type, "resp_1"), ORIGIN + 12 * MS)
    assert turn is not None
    assert recorder.turns == [turn]
    assert turn.outcome == outcome
    assert turn.status == 200
    assert turn.events[-1].data["type"] == event_type
    assert recorder.unfinished() == []


def test_offsets_are_milliseconds_after_the_request_arrived() -> None:
    recorder, conn = _ws_recorder()
    arrived = ORIGIN + 4_000 * MS
    recorder.start_turn(conn, {"input": "x"}, arrived, transport="ws")
    recorder.on_event(conn, _delta("a"), arrived + 1_234_567)
    recorder.on_event(conn, _delta("b"), arrived + 250 * MS)
    turn = recorder.on_event(conn, _terminal("response.completed", "r"), arrived + 1_000_000_400)
    assert turn is not None
    assert [e.offset_ms for e in turn.events] == [1.235, 250.0, 1000.0]
    assert all(isinstance(e.offset_ms, float) for e in turn.events)
    assert turn.started_at_ms == 4000.0


def test_events_without_a_pending_turn_are_not_kept() -> None:
    recorder, conn = _ws_recorder()
    assert recorder.on_event(conn, {"type": "error", "status": 400, "error": {}}, ORIGIN + MS) is None
    recorder.start_turn(conn, {"input": "x"}, ORIGIN + 2 * MS, transport="ws", lane="a")
    # an event for the default lane while only lane "a" is waiting
    assert recorder.on_event(conn, _terminal("response.completed", "resp_x"), ORIGIN + 3 * MS) is None
    assert recorder.turns == []
    assert len(recorder.unfinished()) == 1


def test_unfinished_after_a_missing_terminal() -> None:
    recorder, conn = _ws_recorder()
    pending = recorder.start_turn(conn, {"input": "x"}, ORIGIN + 10 * MS, transport="ws", lane="a")
    recorder.on_event(conn, _delta("half", "a"), ORIGIN + 11 * MS)
    assert recorder.turns == []
    assert recorder.unfinished() == [pending]
    assert [e.data["delta"] for e in pending.events] == ["half"]
    assert recorder.abandon(conn) == [pending]
    assert recorder.unfinished() == []
    assert recorder.abandon(99) == []


def test_http_turns_are_recorded_through_their_pending_turn() -> None:
    recorder = SessionRecorder(ORIGIN)
    conn = recorder.open_connection("http", {"user-agent": "ua"}, ORIGIN + MS)
    first = recorder.start_turn(conn, {"input": "1", "stream": True}, ORIGIN + 5 * MS, transport="http")
    second = recorder.start_turn(conn, {"input": "2", "stream": True}, ORIGIN + 6 * MS, transport="http")
    assert recorder.unfinished() == [first, second]
    assert recorder.on_http_event(second, _delta("two"), ORIGIN + 7 * MS) is None
    turn = recorder.on_http_event(second, _terminal("response.completed", "resp_2"), ORIGIN + 8 * MS)
    assert turn is not None
    assert turn.transport == "http"
    assert turn.lane is None
    assert turn.request == {"input": "2", "stream": True}
    assert [e.offset_ms for e in turn.events] == [1.0, 2.0]
    assert recorder.unfinished() == [first]
    recorder.discard(first)
    assert recorder.unfinished() == []


def test_store_with_a_json_body() -> None:
    recorder = SessionRecorder(ORIGIN)
    conn = recorder.open_connection("http", {}, ORIGIN)
    pending = recorder.start_turn(conn, {"input": "x"}, ORIGIN + 3 * MS, transport="http")
    body = {"error": {"message": "Rate limit", "type": "requests", "code": "rate_limit_exceeded"}}
    turn = recorder.store(pending, outcome="http_error", status=429, body=body)
    assert turn.status == 429
    assert turn.outcome == "http_error"
    assert turn.body == body
    assert turn.events == ()
    assert recorder.turns == [turn]


# -- SessionRecorder: connections and secrets ----------------------------------------------------------------


def test_connection_open_and_close_records() -> None:
    recorder = SessionRecorder(ORIGIN)
    first = recorder.open_connection("ws", {}, ORIGIN + 5 * MS, handshake_ns=1_500_000)
    second = recorder.open_connection("http", {}, ORIGIN + 7 * MS)
    assert (first, second) == (0, 1)
    recorder.close_connection(first, 1000, "bye", "client", ORIGIN + 50 * MS)
    recorder.close_connection(first, 1011, "again", "server", ORIGIN + 60 * MS)  # only the first close counts
    recorder.close_connection(42, 1000, "", "client", ORIGIN)  # unknown connection: ignored
    one, two = recorder.connections()
    assert (one.id, one.transport, one.opened_at_ms, one.handshake_ms) == (0, "ws", 5.0, 1.5)
    assert one.close is not None
    assert (one.close.code, one.close.reason, one.close.by, one.close.at_ms) == (1000, "bye", "client", 50.0)
    assert (two.id, two.transport, two.opened_at_ms, two.handshake_ms, two.close) == (
        1,
        "http",
        7.0,
        None,
        None,
    )


def test_connection_headers_are_stored_redacted_without_hop_headers() -> None:
    recorder = SessionRecorder(ORIGIN, Redactor(["x-tenant"]))
    conn = recorder.open_connection(
        "ws",
        {
            "Host": "127.0.0.1:54321",
            "user-agent": "OpenAI/Python 3.51.0",
            "authorization": f"Bearer {API_KEY}",
            "openai-organization": "org-abcdefghij",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-version": "13",
            "connection": "Upgrade",
            "upgrade": "websocket",
            "x-tenant": "tenant-123456",
            "openai-beta": "responses_websockets=2026-02-04",
        },
        ORIGIN,
    )
    (record,) = recorder.connections()
    assert record.id == conn
    assert record.headers == {
        "user-agent": "OpenAI/Python 3.51.0",
        "authorization": REDACTED,
        "openai-organization": REDACTED,
        "x-tenant": REDACTED,
        "openai-beta": "responses_websockets=2026-02-04",
    }
    assert recorder.user_agent == "OpenAI/Python 3.51.0"


def test_turns_are_scrubbed_of_header_secrets() -> None:
    recorder, conn = _ws_recorder(authorization=f"Bearer {API_KEY}")
    recorder.start_turn(
        conn, {"input": f"my key is {API_KEY}", "metadata": {"k": API_KEY}}, ORIGIN + MS, transport="ws"
    )
    error = {
        "type": "error",
        "status": 401,
        "error": {"code": "invalid_api_key", "message": f"Incorrect API key provided: {API_KEY}."},
    }
    turn = recorder.on_event(conn, error, ORIGIN + 2 * MS)
    assert turn is not None
    assert API_KEY not in json.dumps([turn.request, [e.data for e in turn.events]])
    assert turn.request == {"input": f"my key is {REDACTED}", "metadata": {"k": REDACTED}}
    assert turn.events[0].data["error"]["message"] == f"Incorrect API key provided: {REDACTED}."
    assert turn.outcome == "error"


def test_stored_request_drops_tool_credentials_but_leaves_the_original() -> None:
    recorder, conn = _ws_recorder()
    request = {
        "input": "x",
        "tools": [{"type": "mcp", "server_label": "gh", "authorization": "ghp_0123456789abcdef"}],
    }
    recorder.start_turn(conn, request, ORIGIN + MS, transport="ws")
    turn = recorder.on_event(conn, _terminal("response.completed", "resp_1"), ORIGIN + 2 * MS)
    assert turn is not None
    assert turn.request["tools"][0]["authorization"] == "[redacted]"
    assert request["tools"][0]["authorization"] == "ghp_0123456789abcdef"


def test_turn_recorded_with_tool_credentials_replays_for_the_same_request() -> None:
    # Replay sees the request with the real (or a placeholder) credential; the cassette has "[redacted]".
    request = {
        "model": "gpt-5.2",
        "input": "list my repos",
        "tools": [
            {
                "type": "mcp",
                "server_label": "github",
                "server_url": "https://mcp.example.com",
                "authorization": "ghp_0123456789abcdef",
            }
        ],
    }
    recorder, conn = _ws_recorder()
    recorder.start_turn(conn, request, ORIGIN + MS, transport="ws")
    turn = recorder.on_event(conn, _terminal("response.completed", "resp_1"), ORIGIN + 2 * MS)
    assert turn is not None
    result = TurnIndex.build([turn]).lookup(request)
    assert result.turn == 0, result.reason


# -- replay: turn events ---------------------------------------------------------------------------------


def _ws_turn(lane: str | None, n: int = 3) -> Turn:
    events = [RecordedEvent(10.0 * i, _delta(str(i), lane)) for i in range(n - 1)]
    events.append(RecordedEvent(10.0 * (n - 1), _terminal("response.completed", "resp_1", lane)))
    return Turn(request={"input": "x"}, events=tuple(events), lane=lane)


def test_turn_events_of_a_streamed_turn_are_the_recorded_data() -> None:
    turn = _ws_turn(None)
    assert turn_events(turn) == [e.data for e in turn.events]
    assert turn_offsets_ms(turn) == [0.0, 10.0, 20.0]


def test_turn_events_are_synthesized_from_a_json_body() -> None:
    body = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "text": "Hello there, world"}],
            }
        ],
    }
    turn = Turn(request={"input": "x"}, events=(), transport="http", body=body)
    events = turn_events(turn)
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert events[-1]["response"] == body
    assert (
        "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        == "Hello there, world"
    )
    assert turn_offsets_ms(turn) == [0.0] * len(events)


def test_http_error_body_becomes_a_websocket_error_event() -> None:
    error = {
        "message": "Rate limit reached",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    turn = Turn(
        request={}, events=(), transport="http", outcome="http_error", status=429, body={"error": error}
    )
    assert turn_events(turn) == [{"type": "error", "status": 429, "error": error}]
    assert turn_offsets_ms(turn) == [0.0]
    playback = Playback.for_websocket(turn, "lane-1")
    assert [json.loads(f) for f in playback.frames] == [
        {"type": "error", "status": 429, "error": error, "stream_id": "lane-1"}
    ]


def test_turn_without_events_or_body_sends_nothing() -> None:
    turn = Turn(request={}, events=())
    assert turn_events(turn) == []
    playback = Playback.for_websocket(turn, None)
    assert (playback.frames, playback.offsets_s) == ((), ())
    # Nothing would end the turn for the client: replay ends it with an error and a close.
    assert playback.unterminated is not None and "the turn has no events" in playback.unterminated


# -- replay: lanes and frames -------------------------------------------------------------------------------


def test_same_lane_is_sent_as_recorded() -> None:
    turn = _ws_turn("a")
    playback = Playback.for_websocket(turn, "a")
    assert playback.frames == tuple(compact(e.data) for e in turn.events)
    assert playback.offsets_s == (0.0, 0.01, 0.02)


def test_other_lane_retags_stream_id() -> None:
    playback = Playback.for_websocket(_ws_turn("a"), "b")
    assert [json.loads(f)["stream_id"] for f in playback.frames] == ["b", "b", "b"]


def test_default_lane_removes_stream_id() -> None:
    playback = Playback.for_websocket(_ws_turn("a"), None)
    events = [json.loads(f) for f in playback.frames]
    assert all("stream_id" not in e for e in events)
    assert [e["type"] for e in events] == [e.data["type"] for e in _ws_turn("a").events]


def test_default_lane_recording_gains_stream_id_on_a_named_lane() -> None:
    playback = Playback.for_websocket(_ws_turn(None), "c")
    assert [json.loads(f)["stream_id"] for f in playback.frames] == ["c", "c", "c"]


def test_retagging_does_not_touch_the_recorded_turn() -> None:
    turn = _ws_turn("a")
    before = [dict(e.data) for e in turn.events]
    Playback.for_websocket(turn, None)
    Playback.for_websocket(turn, "b")
    assert [e.data for e in turn.events] == before


def test_frames_are_compact_json() -> None:
    playback = Playback.for_websocket(_ws_turn(None, 2), None)
    assert playback.frames[0] == '{"type":"response.output_text.delta","delta":"0"}'
    assert compact({"t": "é"}) == '{"t":"é"}'


def test_retag_lane_function() -> None:
    events = [{"type": "x", "stream_id": "old"}, {"type": "y"}]
    assert retag_lane(events, "new") == [{"type": "x", "stream_id": "new"}, {"type": "y", "stream_id": "new"}]
    assert retag_lane(events, None) == [{"type": "x"}, {"type": "y"}]
    assert events == [{"type": "x", "stream_id": "old"}, {"type": "y"}]


def test_schedule() -> None:
    playback = Playback.for_websocket(_ws_turn(None), None)
    assert playback.schedule(None) is None
    assert playback.schedule(1.0) == [0.0, 0.01, 0.02]
    assert playback.schedule(2.0) == [0.0, 0.02, 0.04]
    assert playback.schedule(0.5) == [0.0, 0.005, 0.01]


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), max_size=10),
    st.floats(0.01, 100, allow_nan=False),
)
def test_schedule_scales_every_offset(offsets: list[float], factor: float) -> None:
    playback = Playback(tuple("{}" for _ in offsets), tuple(offsets))
    assert playback.schedule(factor) == pytest.approx([o * factor for o in offsets])


def test_error_event_shape() -> None:
    assert error_event("rws_cassette_miss", "no match") == {
        "type": "error",
        "status": 400,
        "error": {
            "type": "invalid_request_error",
            "code": "rws_cassette_miss",
            "message": "no match",
            "param": None,
        },
    }
    event = error_event("c", "m", status=404, lane="l", error_type="not_found", param="previous_response_id")
    assert event["stream_id"] == "l"
    assert event["status"] == 404
    assert event["error"]["param"] == "previous_response_id"


@pytest.mark.parametrize(
    ("offsets_s", "expected"),
    [
        ((0.5, 1.0, 179.0), None),
        ((0.5, 200.0), (1, "event 1 comes 199.5 s after the event before it")),
        ((190.0, 191.0), (0, "event 0 comes 190 s after the request")),
        # Out of order (hand-edited): the wait is from the latest event so far.
        ((100.0, 5.0, 150.0), None),
    ],
)
def test_a_recorded_wait_longer_than_the_recording_bounds_is_found(
    offsets_s: tuple[float, ...], expected: tuple[int, str] | None
) -> None:
    playback = Playback(frames=("{}",) * len(offsets_s), offsets_s=offsets_s)
    stall = playback.stalled_wait(first_event_bound_s=180.0, idle_bound_s=180.0)
    if expected is None:
        assert stall is None
    else:
        assert stall is not None and stall[0] == expected[0] and stall[1].startswith(expected[1])


# -- steers ------------------------------------------------------------------------------------------------


def _steered_ending(response_id: str) -> dict[str, Any]:
    response = {**_response(response_id, "incomplete"), "incomplete_details": {"reason": "steered"}}
    return {"type": "response.incomplete", "response": response}


def _created(response_id: str) -> dict[str, Any]:
    return {"type": "response.created", "response": _response(response_id, "in_progress")}


def test_a_steer_is_kept_with_the_turn_it_steers_and_the_successor_stays_in_that_turn() -> None:
    recorder, conn = _ws_recorder()
    recorder.start_turn(conn, {"input": "story"}, ORIGIN + 10 * MS, transport="ws")
    recorder.on_event(conn, _created("resp_1"), ORIGIN + 11 * MS)
    recorder.on_event(conn, _delta("once"), ORIGIN + 12 * MS)
    steer = {"type": "response.steer", "previous_response_id": "resp_1", "input": "in French"}
    assert recorder.on_steer(conn, steer, ORIGIN + 14 * MS)
    recorder.on_event(conn, {"type": "response.steer.accepted", "steer": {"id": "s1"}}, ORIGIN + 15 * MS)
    # The steered ending does not end the turn: the successor follows in it.
    assert recorder.on_event(conn, _steered_ending("resp_1"), ORIGIN + 16 * MS) is None
    assert recorder.on_event(conn, _created("resp_2"), ORIGIN + 17 * MS) is None
    turn = recorder.on_event(conn, _terminal("response.completed", "resp_2"), ORIGIN + 20 * MS)
    assert turn is not None
    assert [event.type for event in turn.events] == [
        "response.created",
        "response.output_text.delta",
        "response.steer.accepted",
        "response.incomplete",
        "response.created",
        "response.completed",
    ]
    (kept,) = turn.steers
    assert kept.after_event == 2 and kept.offset_ms == 4.0 and kept.request == steer
    assert turn.outcome == "completed"


def test_a_steer_for_no_pending_turn_is_not_kept() -> None:
    recorder, conn = _ws_recorder()
    steer = {"type": "response.steer", "previous_response_id": "resp_gone", "input": "x"}
    assert not recorder.on_steer(conn, steer, ORIGIN + MS)
    assert not recorder.on_steer(conn + 1, steer, ORIGIN + MS)


def test_an_incomplete_response_that_was_not_steered_still_ends_its_turn() -> None:
    recorder, conn = _ws_recorder()
    recorder.start_turn(conn, {"input": "x"}, ORIGIN + MS, transport="ws")
    turn = recorder.on_event(conn, _terminal("response.incomplete", "resp_1"), ORIGIN + 2 * MS)
    assert turn is not None and turn.outcome == "incomplete"


def test_a_late_pending_answer_joins_the_stored_turn_whose_steer_it_answers() -> None:
    recorder, conn = _ws_recorder()
    recorder.start_turn(conn, {"input": "weather?"}, ORIGIN + 10 * MS, transport="ws")
    recorder.on_event(conn, _created("resp_1"), ORIGIN + 11 * MS)
    steer = {"type": "response.steer", "previous_response_id": "resp_1", "input": "and Rome"}
    assert recorder.on_steer(conn, steer, ORIGIN + 12 * MS)
    accepted = {"type": "response.steer.accepted", "steer": {"id": "s1", "previous_response_id": "resp_1"}}
    recorder.on_event(conn, accepted, ORIGIN + 13 * MS)
    stored = recorder.on_event(conn, _terminal("response.completed", "resp_1"), ORIGIN + 14 * MS)
    assert stored is not None
    pending = {
        "type": "response.steer.pending",
        "reason": "waiting_for_required_input",
        "steer": {"id": "s1", "previous_response_id": "resp_1"},
    }
    assert recorder.on_event(conn, pending, ORIGIN + 15 * MS) is None
    (turn,) = recorder.turns
    assert [event.type for event in turn.events][-2:] == ["response.completed", "response.steer.pending"]
    assert turn.events[-1].offset_ms == 5.0
    # A failed steer of its own (no id this turn accepted) is not this turn's.
    other = {"type": "response.steer.failed", "steer": {"previous_response_id": "resp_1", "input": "x"}}
    recorder.on_event(conn, other, ORIGIN + 16 * MS)
    assert len(recorder.turns[0].events) == len(turn.events)
