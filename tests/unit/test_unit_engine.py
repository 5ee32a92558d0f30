"""Unit tests of ``core.engine``: the per-turn decision, with no socket and no clock."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_responses_ws.cassette.model import RecordedEvent, RecordedSteer, Transport, Turn
from pytest_responses_ws.core.engine import (
    MISS_HTTP_STATUS,
    TEST_FAILED_CLOSE_CODE,
    EngineSettings,
    FailTurn,
    Forward,
    ForwardSteer,
    PlayFrames,
    PlayHttp,
    RejectTurn,
    ResumeSteer,
    SteerRequest,
    TurnEngine,
    TurnRequest,
)
from pytest_responses_ws.core.replay import MISS_ERROR_CODE
from pytest_responses_ws.errors import CassetteFormatError, CassetteMissError, CassetteNotFoundError, RwsError

CASSETTE = Path("cassettes") / "test_engine.json"
COMMAND = "pytest tests/test_x.py --rws-record-mode=once"


def _request(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "input": text, **extra}


def _turn(text: str, response_id: str, *, lane: str | None = None, terminal: bool = True) -> Turn:
    def tagged(event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "stream_id": lane} if lane is not None else event

    response = {
        "id": response_id,
        "object": "response",
        "status": "completed",
        "output": [{"type": "message"}],
    }
    events = [
        RecordedEvent(
            0.0, tagged({"type": "response.created", "response": {**response, "status": "in_progress"}})
        ),
        RecordedEvent(5.0, tagged({"type": "response.output_text.delta", "delta": text.upper()})),
    ]
    if terminal:
        events.append(RecordedEvent(10.0, tagged({"type": "response.completed", "response": response})))
    return Turn(request=_request(text), events=tuple(events), lane=lane)


def _engine(
    turns: tuple[Turn, ...] = (),
    *,
    replays: bool = True,
    records: bool = False,
    missing: bool = False,
    timing_factor: float | None = None,
    strict: bool = True,
) -> TurnEngine:
    settings = EngineSettings(
        cassette=CASSETTE,
        record_command=COMMAND,
        replays=replays,
        records=records,
        missing_cassette=missing,
        timing_factor=timing_factor,
        strict=strict,
    )
    return TurnEngine(settings, turns)


def _create(
    request: dict[str, Any],
    *,
    transport: Transport = "ws",
    connection: int = 0,
    lane: str | None = None,
    at_ns: int = 1_000,
    wants_stream: bool = False,
) -> TurnRequest:
    return TurnRequest(
        transport=transport,
        connection=connection,
        request=request,
        raw=json.dumps(request).encode(),
        arrived_ns=at_ns,
        where=f"request on {transport} connection {connection}",
        lane=lane,
        wants_stream=wants_stream,
    )


def _forward(engine: TurnEngine, create: TurnRequest) -> Forward:
    action = engine.on_create(create)
    assert isinstance(action, Forward)
    return action


# -- replay ----------------------------------------------------------------------------------------


def test_ws_hit_plays_the_recorded_frames_at_once() -> None:
    engine = _engine((_turn("hello", "resp_1"),))
    action = engine.on_create(_create(_request("hello"), at_ns=42))
    assert isinstance(action, PlayFrames)
    assert [json.loads(f)["type"] for f in action.frames] == [
        "response.created",
        "response.output_text.delta",
        "response.completed",
    ]
    assert action.schedule is None and action.then is None and action.failures == ()
    trace = action.trace
    assert (trace.transport, trace.arrived_ns, trace.response_id, trace.outcome) == (
        "ws",
        42,
        "resp_1",
        "completed",
    )
    assert trace.output == [{"type": "message"}]
    assert engine.traces == [trace]


def test_ws_frames_are_encoded_once_per_turn() -> None:
    engine = _engine((_turn("hello", "resp_1"),), replays=True)
    engine.prepare("ws")
    prepared = engine.playback(0, None)
    action = engine.on_create(_create(_request("hello")))
    assert isinstance(action, PlayFrames)
    assert action.frames is prepared.frames


@pytest.mark.parametrize(("wants_stream", "stream"), [(True, True), (False, False)])
def test_http_hit_answers_a_stream_or_the_final_response(wants_stream: bool, stream: bool) -> None:
    engine = _engine((_turn("hello", "resp_1"),))
    action = engine.on_create(_create(_request("hello"), transport="http", wants_stream=wants_stream))
    assert isinstance(action, PlayHttp)
    assert action.answer.stream is stream
    if stream:
        assert action.playback.sse_body.startswith(b"event: response.created\ndata: ")
    else:
        assert action.answer.status == 200
        assert action.answer.body is not None and action.answer.body["id"] == "resp_1"
    assert action.trace.transport == "http" and action.trace.response_id == "resp_1"


def test_paced_timing_gives_each_frame_its_send_time() -> None:
    engine = _engine((_turn("hello", "resp_1"),), timing_factor=2.0)
    action = engine.on_create(_create(_request("hello")))
    assert isinstance(action, PlayFrames)
    assert action.schedule == [0.0, 0.01, 0.02]


def test_a_turn_plays_once_then_misses() -> None:
    engine = _engine((_turn("hello", "resp_1"),))
    assert isinstance(engine.on_create(_create(_request("hello"))), PlayFrames)
    assert isinstance(engine.on_create(_create(_request("hello"))), FailTurn)


# -- misses ----------------------------------------------------------------------------------------


def test_miss_fails_with_the_documented_code_and_closes_1008_or_answers_400() -> None:
    engine = _engine((_turn("hello", "resp_1"),))
    action = engine.on_create(_create(_request("something else"), lane="side"))
    assert isinstance(action, FailTurn)
    assert len(action.failures) == 1 and isinstance(action.failures[0], CassetteMissError)
    assert str(CASSETTE) in str(action.failures[0])
    assert "--rws-record-mode=new_episodes" in str(action.failures[0])
    # WebSocket: an error event on the request's lane, then close 1008.
    assert action.event["type"] == "error" and action.event["error"]["code"] == MISS_ERROR_CODE
    assert action.event["stream_id"] == "side"
    assert action.close_code == TEST_FAILED_CLOSE_CODE == 1008
    # HTTP: status 400 (the SDK does not retry it) with the same code.
    assert action.status == MISS_HTTP_STATUS == 400
    assert action.body["error"]["code"] == MISS_ERROR_CODE
    assert action.body["error"]["message"] == action.event["error"]["message"]
    assert action.trace is not None and action.trace.outcome == "miss"


def test_miss_message_hides_the_request_credentials() -> None:
    secret = "-".join(["fake", "engine", "credential", "0042"])
    engine = _engine((_turn("hello", "resp_1"),))
    request = _request(f"token {secret}")
    turn = TurnRequest(
        transport="http",
        connection=3,
        request=request,
        raw=json.dumps(request).encode(),
        arrived_ns=0,
        where="HTTP request 1 (connection 3)",
        headers={"authorization": f"Bearer {secret}"},
    )
    action = engine.on_create(turn)
    assert isinstance(action, FailTurn)
    assert secret not in str(action.failures[0]) and secret not in json.dumps(action.body)


def test_without_a_cassette_every_request_names_the_record_command() -> None:
    engine = _engine(missing=True)
    action = engine.on_create(_create(_request("hello")))
    assert isinstance(action, FailTurn)
    assert isinstance(action.failures[0], CassetteNotFoundError)
    assert COMMAND in action.event["error"]["message"]


# -- unterminated turns ------------------------------------------------------------------------------


def test_ws_turn_without_terminal_event_is_played_then_failed() -> None:
    engine = _engine((_turn("hello", "resp_1", terminal=False),))
    action = engine.on_create(_create(_request("hello")))
    assert isinstance(action, PlayFrames)
    assert len(action.frames) == 2
    assert len(action.failures) == 1 and isinstance(action.failures[0], CassetteFormatError)
    assert "/turns/0/events" in str(action.failures[0])
    assert action.then is not None
    assert action.then.event["error"]["code"] == "rws_corrupt_cassette"
    assert action.then.close_code == 1008


def test_http_turn_without_terminal_event_is_answered_and_reported() -> None:
    engine = _engine((_turn("hello", "resp_1", terminal=False),))
    action = engine.on_create(_create(_request("hello"), transport="http", wants_stream=True))
    assert isinstance(action, PlayHttp)
    assert [type(f) for f in action.failures] == [CassetteFormatError]


def test_paced_turn_with_an_impossible_wait_is_sent_at_once_and_reported() -> None:
    turn = _turn("hello", "resp_1")
    slow = Turn(
        request=turn.request,
        events=(turn.events[0], RecordedEvent(3_600_000.0, turn.events[2].data)),
    )
    action = _engine((slow,), timing_factor=1.0).on_create(_create(_request("hello")))
    assert isinstance(action, PlayFrames)
    assert action.schedule is None
    assert [type(f) for f in action.failures] == [CassetteFormatError]
    assert "/turns/0/events/1/offset_ms" in str(action.failures[0])


def test_a_factor_that_stretches_a_wait_past_the_bounds_is_reported() -> None:
    turn = _turn("hello", "resp_1")
    slow = Turn(request=turn.request, events=(turn.events[0], RecordedEvent(40_000.0, turn.events[2].data)))
    action = _engine((slow,), timing_factor=2.0).on_create(_create(_request("hello")))
    assert isinstance(action, PlayFrames) and action.schedule is None
    assert [type(f) for f in action.failures] == [RwsError]
    assert "--rws-timing=2" in str(action.failures[0])


# -- recording ---------------------------------------------------------------------------------------


def test_record_mode_forwards_the_request_as_sent() -> None:
    engine = _engine(replays=False, records=True)
    create = _create(_request("hello"), at_ns=7)
    action = engine.on_create(create)
    assert isinstance(action, Forward)
    assert action.body is create.raw
    assert action.trace.arrived_ns == 7 and engine.traces == [action.trace]


def test_new_episodes_replays_what_it_has_and_forwards_the_rest() -> None:
    engine = _engine((_turn("hello", "resp_1"),), replays=True, records=True)
    assert isinstance(engine.on_create(_create(_request("hello"))), PlayFrames)
    assert isinstance(engine.on_create(_create(_request("new"))), Forward)


def test_chaining_from_a_replayed_response_sends_the_whole_conversation_upstream() -> None:
    engine = _engine((_turn("hello", "resp_1"),), replays=True, records=True)
    engine.on_create(_create(_request("hello")))
    action = engine.on_create(
        _create({"model": "gpt-test", "input": "more", "previous_response_id": "resp_1"})
    )
    assert isinstance(action, Forward)
    sent = json.loads(action.body)
    assert "previous_response_id" not in sent
    # The replayed turn's input, its output, then the new input.
    assert sent["input"] == ["hello", {"type": "message"}, "more"]


def test_ids_the_upstream_created_resolve_on_their_websocket_connection_only() -> None:
    engine = _engine((_turn("hello", "resp_1"),), replays=True, records=True)
    recorded = Turn(request=_request("hello"), events=_turn("hello", "resp_1").events, connection=5)
    engine.on_recorded(recorded, at_ns=2_000)
    chained = {"model": "gpt-test", "input": "more", "previous_response_id": "resp_1"}
    same = engine.on_create(_create(chained, connection=5))
    other = engine.on_create(_create(chained, connection=6))
    assert isinstance(same, Forward) and json.loads(same.body)["previous_response_id"] == "resp_1"
    assert isinstance(other, Forward) and "previous_response_id" not in json.loads(other.body)
    # Over HTTP, an id the upstream created anywhere in the test resolves.
    http = engine.on_create(_create(chained, transport="http", connection=9))
    assert isinstance(http, Forward) and json.loads(http.body)["previous_response_id"] == "resp_1"


def test_a_recorded_turn_counts_as_played_in_new_episodes() -> None:
    engine = _engine((), replays=True, records=True)
    engine.on_recorded(_turn("hello", "resp_9"), at_ns=2_000)
    assert engine.index.knows_response("resp_9")
    assert isinstance(engine.on_create(_create(_request("hello"))), Forward)


def test_a_recorded_websocket_turn_completes_the_oldest_trace_of_its_connection_and_lane() -> None:
    engine = _engine(replays=False, records=True)
    first = _forward(engine, _create(_request("one"), connection=1, lane="a", at_ns=10))
    second = _forward(engine, _create(_request("two"), connection=1, lane="a", at_ns=20))
    other = _forward(engine, _create(_request("three"), connection=1, lane="b", at_ns=30))
    recorded = _turn("one", "resp_1", lane="a")
    engine.on_recorded(
        Turn(request=recorded.request, events=recorded.events, connection=1, lane="a"), at_ns=99
    )
    assert (first.trace.terminal_ns, first.trace.response_id, first.trace.output) == (
        99,
        "resp_1",
        [{"type": "message"}],
    )
    assert second.trace.terminal_ns is None and other.trace.terminal_ns is None


def test_failed_forwards_end_their_traces_in_an_error() -> None:
    engine = _engine(replays=False, records=True)
    a1, a2, b1 = (
        _forward(engine, _create(_request(text), connection=1, lane=lane))
        for text, lane in (("one", "a"), ("two", "a"), ("three", "b"))
    )
    elsewhere = _forward(engine, _create(_request("four"), connection=2, lane="a"))
    engine.lane_failed(1, "a", at_ns=50)
    assert (a1.trace.outcome, a1.trace.terminal_ns) == ("error", 50)
    assert a2.trace.terminal_ns is None
    engine.connection_failed(1, at_ns=60)
    assert [(t.trace.outcome, t.trace.terminal_ns) for t in (a2, b1)] == [("error", 60), ("error", 60)]
    assert elsewhere.trace.terminal_ns is None


def test_http_forwards_are_ended_through_their_own_trace() -> None:
    engine = _engine(replays=False, records=True)
    refused = _forward(engine, _create(_request("one"), transport="http", connection=3))
    plain = _forward(engine, _create(_request("two"), transport="http", connection=3))
    answered = _forward(engine, _create(_request("three"), transport="http", connection=3))
    engine.forward_ended(refused.trace, at_ns=5)
    engine.forward_ended(plain.trace, at_ns=6, outcome=None)
    recorded = _turn("three", "resp_3")
    engine.on_recorded(
        Turn(request=recorded.request, events=recorded.events, transport="http", connection=3),
        7,
        answered.trace,
    )
    assert (refused.trace.outcome, refused.trace.terminal_ns) == ("error", 5)
    assert (plain.trace.outcome, plain.trace.terminal_ns) == ("completed", 6)
    assert (answered.trace.response_id, answered.trace.terminal_ns) == ("resp_3", 7)


# -- lanes and connections -----------------------------------------------------------------------------


def test_a_turn_recorded_on_the_default_lane_plays_on_a_named_lane_with_its_stream_id() -> None:
    engine = _engine((_turn("hello", "resp_1"),))
    action = engine.on_create(_create(_request("hello"), lane="lane-b"))
    assert isinstance(action, PlayFrames)
    assert action.lane == "lane-b" and action.trace.lane == "lane-b"
    assert {json.loads(f).get("stream_id") for f in action.frames} == {"lane-b"}


def test_a_turn_recorded_on_a_lane_plays_on_the_default_lane_without_stream_id() -> None:
    engine = _engine((_turn("hello", "resp_1", lane="lane-a"),))
    action = engine.on_create(_create(_request("hello")))
    assert isinstance(action, PlayFrames)
    assert all("stream_id" not in json.loads(f) for f in action.frames)


def test_lanes_on_one_connection_play_independently() -> None:
    engine = _engine((_turn("one", "resp_1"), _turn("two", "resp_2")))
    first = engine.on_create(_create(_request("two"), lane="b"))
    second = engine.on_create(_create(_request("one"), lane="a"))
    assert isinstance(first, PlayFrames) and isinstance(second, PlayFrames)
    assert (first.trace.response_id, second.trace.response_id) == ("resp_2", "resp_1")
    assert (first.lane, second.lane) == ("b", "a")


def test_only_the_first_turn_of_a_connection_is_new_and_carries_the_handshake() -> None:
    engine = _engine((_turn("one", "resp_1"), _turn("two", "resp_2"), _turn("three", "resp_3")))

    def traced(text: str, connection: int) -> tuple[bool, int | None]:
        create = _create(_request(text), connection=connection)
        action = engine.on_create(
            TurnRequest(**{**create.__dict__, "handshake_ns": 50, "connection_opened_ns": 10})
        )
        assert isinstance(action, PlayFrames)
        return action.trace.new_connection, action.trace.handshake_ns

    assert traced("one", 1) == (True, 50)
    assert traced("two", 1) == (False, None)
    assert traced("three", 2) == (True, 50)


def test_the_adapter_can_say_whether_an_http_request_opened_its_connection() -> None:
    engine = _engine((_turn("one", "resp_1"),))
    create = _create(_request("one"), transport="http", connection=4)
    action = engine.on_create(TurnRequest(**{**create.__dict__, "new_connection": False}))
    assert isinstance(action, PlayHttp) and action.trace.new_connection is False


# -- connection-local state (strict) ----------------------------------------------------------------


def _unstored(text: str, response_id: str, parent: str | None = None, *, outcome: str = "completed") -> Turn:
    """A turn whose request had ``store: false`` (chaining from ``parent`` when given)."""
    request = _request(text, store=False)
    if parent is not None:
        request["previous_response_id"] = parent
    return replace(_turn(text, response_id), request=request, outcome=outcome)


def _chain(text: str, parent: str) -> dict[str, Any]:
    return _request(text, store=False, previous_response_id=parent)


def _assert_not_found(action: object, parent: str) -> RejectTurn:
    assert isinstance(action, RejectTurn)
    message = f"Previous response with id '{parent}' not found."
    error = {
        "type": "invalid_request_error",
        "code": "previous_response_not_found",
        "message": message,
        "param": "previous_response_id",
    }
    assert action.event == {"type": "error", "status": 400, "error": error}
    assert action.status == 400
    assert action.body == {"error": {**error}}
    assert action.failures == ()  # the service's answer, not a failure of the test
    assert action.trace.outcome == "error"
    return action


LOOP = (_unstored("first", "resp_1"), _unstored("second", "resp_2", "resp_1"))


def test_ws_chain_from_an_unstored_response_played_on_the_same_connection_plays() -> None:
    engine = _engine(LOOP)
    assert isinstance(engine.on_create(_create(_request("first", store=False), connection=1)), PlayFrames)
    assert isinstance(engine.on_create(_create(_chain("second", "resp_1"), connection=1)), PlayFrames)


def test_ws_chain_from_an_unstored_response_of_another_connection_is_not_found() -> None:
    engine = _engine(LOOP)
    assert isinstance(engine.on_create(_create(_request("first", store=False), connection=1)), PlayFrames)
    _assert_not_found(engine.on_create(_create(_chain("second", "resp_1"), connection=2)), "resp_1")
    # The refused request consumed nothing: the recovery (full history, no chain) still plays.
    assert engine.index.played_count(1) == 0
    assert isinstance(engine.on_create(_create(_chain("second", "resp_1"), connection=1)), PlayFrames)


def test_ws_rejection_carries_the_lane() -> None:
    engine = _engine(LOOP)
    action = engine.on_create(_create(_chain("second", "resp_1"), connection=3, lane="b"))
    assert isinstance(action, RejectTurn)
    assert action.event["stream_id"] == "b"


def test_http_chain_from_an_unstored_response_is_not_found_even_after_playing_it() -> None:
    engine = _engine(LOOP)
    assert isinstance(engine.on_create(_create(_request("first", store=False), transport="http")), PlayHttp)
    _assert_not_found(engine.on_create(_create(_chain("second", "resp_1"), transport="http")), "resp_1")


def test_chain_from_a_stored_response_resolves_on_any_connection() -> None:
    stored = (
        _turn("first", "resp_1"),
        replace(_turn("second", "resp_2"), request=_chain("second", "resp_1")),
    )
    engine = _engine(stored)
    assert isinstance(engine.on_create(_create(_request("first"), connection=1)), PlayFrames)
    assert isinstance(engine.on_create(_create(_chain("second", "resp_1"), connection=2)), PlayFrames)
    http = _engine(stored)
    assert isinstance(http.on_create(_create(_chain("second", "resp_1"), transport="http")), PlayHttp)


def test_not_strict_resolves_every_recorded_chain() -> None:
    engine = _engine(LOOP, strict=False)
    assert isinstance(engine.on_create(_create(_chain("second", "resp_1"), connection=2)), PlayFrames)
    http = _engine(LOOP, strict=False)
    assert isinstance(http.on_create(_create(_chain("second", "resp_1"), transport="http")), PlayHttp)


def test_failed_continuation_evicts_its_parent_from_the_connection() -> None:
    turns = (
        _unstored("first", "resp_1"),
        _unstored("second", "resp_2", "resp_1", outcome="failed"),
        _unstored("second", "resp_3", "resp_1"),
    )
    engine = _engine(turns)
    assert isinstance(engine.on_create(_create(_request("first", store=False))), PlayFrames)
    assert isinstance(engine.on_create(_create(_chain("second", "resp_1"))), PlayFrames)  # fails
    _assert_not_found(engine.on_create(_create(_chain("second", "resp_1"))), "resp_1")


def test_failed_response_is_not_cached() -> None:
    turns = (_unstored("first", "resp_1", outcome="failed"), _unstored("second", "resp_2", "resp_1"))
    engine = _engine(turns)
    assert isinstance(engine.on_create(_create(_request("first", store=False))), PlayFrames)
    _assert_not_found(engine.on_create(_create(_chain("second", "resp_1"))), "resp_1")


def test_recorded_unstored_response_resolves_only_on_its_connection() -> None:
    engine = _engine(replays=True, records=True)  # new_episodes
    live = replace(_unstored("first", "resp_live"), connection=4)
    engine.on_recorded(live, at_ns=10)
    assert isinstance(engine.on_create(_create(_chain("next", "resp_live"), connection=4)), Forward)
    _assert_not_found(engine.on_create(_create(_chain("next", "resp_live"), connection=5)), "resp_live")


def test_record_only_never_rejects() -> None:
    engine = _engine(replays=False, records=True)
    engine.on_recorded(replace(_unstored("first", "resp_live"), connection=4), at_ns=10)
    assert isinstance(engine.on_create(_create(_chain("next", "resp_live"), connection=5)), Forward)


# -- the service's connection rules: lanes, the age limit ------------------------------------------


def _error_code(event: dict[str, Any]) -> str:
    return str(event["error"]["code"])


@pytest.mark.parametrize("bad", ["", "has space", "x" * 257, "émoji", 7, ["lane"]])
def test_a_stream_id_that_is_not_a_lane_name_gets_invalid_stream_id(bad: object) -> None:
    engine = _engine((_turn("hello", "resp_1"),))
    action = engine.on_create(_create(_request("hello", stream_id=bad)))
    assert isinstance(action, RejectTurn)
    assert _error_code(action.event) == "invalid_stream_id"
    assert "stream_id" not in action.event  # never echoed
    assert action.close_code is None and action.failures == ()
    # The connection goes on, and the recorded turn is still there for the next request.
    assert isinstance(engine.on_create(_create(_request("hello"))), PlayFrames)


def test_the_33rd_named_lane_of_a_connection_gets_the_stream_limit() -> None:
    engine = _engine((_turn("hello", "resp_1"),), strict=False)
    engine.index.allow_repeats = True
    for n in range(32):
        assert isinstance(
            engine.on_create(_create(_request("hello", stream_id=f"l{n}"), lane=f"l{n}")), PlayFrames
        )
    action = engine.on_create(_create(_request("hello", stream_id="l32"), lane="l32"))
    assert isinstance(action, RejectTurn)
    assert _error_code(action.event) == "websocket_stream_limit_reached"
    assert action.event["stream_id"] == "l32"
    # Lanes it has, the default lane and another connection are unaffected.
    assert isinstance(engine.on_create(_create(_request("hello", stream_id="l5"), lane="l5")), PlayFrames)
    assert isinstance(engine.on_create(_create(_request("hello"))), PlayFrames)
    other = _create(_request("hello", stream_id="l32"), lane="l32", connection=1)
    assert isinstance(engine.on_create(other), PlayFrames)


def test_lane_rules_are_the_upstreams_while_recording() -> None:
    engine = _engine(replays=False, records=True)
    assert isinstance(engine.on_create(_create(_request("hello", stream_id="not a lane"))), Forward)


def test_recorded_rule_refusals_are_never_served_from_the_cassette() -> None:
    refusal = Turn(
        request=_request("hello", stream_id="bad lane"),
        events=(
            RecordedEvent(0.0, {"type": "error", "status": 400, "error": {"code": "invalid_stream_id"}}),
        ),
        outcome="error",
    )
    engine = _engine((refusal, _turn("hello", "resp_1")))
    # The same content on a good lane gets the recorded answer, not the refusal.
    action = engine.on_create(_create(_request("hello", stream_id="good"), lane="good"))
    assert isinstance(action, PlayFrames)
    assert '"resp_1"' in action.frames[0]


def _aged(create: TurnRequest, opened_ns: int) -> TurnRequest:
    return replace(create, connection_opened_ns=opened_ns)


def _engine_max_age(max_age_s: float, **kwargs: Any) -> TurnEngine:
    engine = _engine(**kwargs)
    engine.settings = replace(engine.settings, connection_max_age_s=max_age_s)
    return TurnEngine(engine.settings, kwargs.get("turns", (_turn("hello", "resp_1"),)))


def test_a_create_on_a_connection_past_its_age_gets_the_limit_and_a_normal_close() -> None:
    engine = _engine_max_age(0.05)
    at_limit = _aged(_create(_request("hello"), at_ns=50_000_000), opened_ns=0)
    assert isinstance(engine.on_create(at_limit), PlayFrames)
    past = _aged(_create(_request("hello"), at_ns=50_000_001, lane="l1"), opened_ns=0)
    action = engine.on_create(past)
    assert isinstance(action, RejectTurn)
    assert _error_code(action.event) == "websocket_connection_limit_reached"
    assert "(0.05 seconds)" in action.event["error"]["message"]
    assert action.event["stream_id"] == "l1"
    assert action.close_code == 1000 and action.failures == ()
    assert action.trace.outcome == "error"


def test_the_age_limit_stands_in_front_of_the_upstream_while_recording() -> None:
    engine = _engine_max_age(1.0, replays=False, records=True, turns=())
    past = _aged(_create(_request("hello"), at_ns=2_000_000_000), opened_ns=0)
    action = engine.on_create(past)
    assert isinstance(action, RejectTurn) and action.close_code == 1000
    young = _aged(_create(_request("hello"), at_ns=2_000_000_000), opened_ns=1_500_000_000)
    assert isinstance(engine.on_create(young), Forward)


def test_the_default_age_limit_is_the_services_hour() -> None:
    engine = _engine((_turn("hello", "resp_1"), _turn("hello", "resp_2")))
    assert engine.settings.connection_max_age_s == 3600
    hour_ns = 3600 * 10**9
    assert isinstance(engine.on_create(_aged(_create(_request("hello"), at_ns=hour_ns), 0)), PlayFrames)
    assert isinstance(engine.on_create(_aged(_create(_request("hello"), at_ns=hour_ns + 1), 0)), RejectTurn)


# -- steers ------------------------------------------------------------------------------------------


def _steer_request(parent: str, text: str) -> dict[str, Any]:
    return {
        "type": "response.steer",
        "previous_response_id": parent,
        "input": [{"role": "user", "content": text}],
    }


def _steered_turn() -> Turn:
    base = _turn("story", "resp_1", terminal=False)
    incomplete = {"id": "resp_1", "status": "incomplete", "incomplete_details": {"reason": "steered"}}
    successor = {"id": "resp_2", "object": "response", "status": "completed", "output": []}
    events = (
        *base.events,
        RecordedEvent(20.0, {"type": "response.steer.accepted", "steer": {"id": "steer_1"}}),
        RecordedEvent(21.0, {"type": "response.incomplete", "response": incomplete}),
        RecordedEvent(22.0, {"type": "response.created", "response": {**successor, "status": "in_progress"}}),
        RecordedEvent(30.0, {"type": "response.completed", "response": successor}),
    )
    return replace(
        base, events=events, steers=(RecordedSteer(2, 15.0, _steer_request("resp_1", "in French")),)
    )


def _steer(request: dict[str, Any], connection: int = 0) -> SteerRequest:
    return SteerRequest(
        connection, request, json.dumps(request).encode(), f"request 2 on WebSocket connection {connection}"
    )


def test_a_steered_turn_plays_with_a_hold_at_the_recorded_steer() -> None:
    engine = _engine((_steered_turn(),), timing_factor=2.0)
    action = engine.on_create(_create(_request("story")))
    assert isinstance(action, PlayFrames)
    assert len(action.frames) == 6
    (hold,) = action.holds
    assert hold.index == 2  # the steer's answers and the successor wait for it
    assert hold.at_s == pytest.approx(0.030)  # 15 ms, paced at 2x
    assert hold.timeout_s == engine.settings.idle_timeout_s
    assert "was steered in the recording after event 2" in str(hold.missed.failures[0])
    assert hold.missed.close_code == TEST_FAILED_CLOSE_CODE
    # The client's steer releases it, once.
    resumed = engine.on_steer(_steer(_steer_request("resp_1", "in French")))
    assert isinstance(resumed, ResumeSteer) and resumed.token == hold.token
    again = engine.on_steer(_steer(_steer_request("resp_1", "in French")))
    assert isinstance(again, FailTurn)
    assert "recorded steers were all used" in str(again.failures[0])


def test_a_turn_without_steers_has_no_hold() -> None:
    engine = _engine((_turn("hello", "resp_1"),))
    action = engine.on_create(_create(_request("hello")))
    assert isinstance(action, PlayFrames) and action.holds == ()


def test_a_steer_with_other_input_is_a_miss_naming_both() -> None:
    engine = _engine((_steered_turn(),))
    engine.on_create(_create(_request("story")))
    action = engine.on_steer(_steer(_steer_request("resp_1", "in German")))
    assert isinstance(action, FailTurn)
    (failure,) = action.failures
    assert isinstance(failure, CassetteMissError)
    report = str(failure)
    assert "response.steer (request 2 on WebSocket connection 0) matched no recorded steer" in report
    assert "recorded turn 0 was steered with different input" in report
    assert "in French" in report and "in German" in report
    assert _error_code(action.event) == MISS_ERROR_CODE
    assert action.close_code == TEST_FAILED_CLOSE_CODE


def test_a_steer_on_another_connection_or_for_an_unknown_response_is_a_miss() -> None:
    engine = _engine((_steered_turn(),))
    engine.on_create(_create(_request("story")))
    for steer in (
        _steer(_steer_request("resp_1", "in French"), connection=1),
        _steer(_steer_request("resp_unknown", "in French")),
    ):
        action = engine.on_steer(steer)
        assert isinstance(action, FailTurn)
        assert "no turn replaying on this connection was steered from response" in str(action.failures[0])


def test_steers_go_upstream_while_recording() -> None:
    engine = _engine(replays=False, records=True)
    steer = _steer(_steer_request("resp_9", "in French"))
    action = engine.on_steer(steer)
    assert isinstance(action, ForwardSteer) and action.body == steer.raw


def test_each_recorded_steer_of_a_turn_is_a_hold_released_by_its_own_steer() -> None:
    once = _steered_turn()
    later = RecordedSteer(4, 25.0, _steer_request("resp_2", "shorter"))
    twice = replace(once, steers=(later, *once.steers))  # listed out of order: played front to back
    engine = _engine((twice,))
    action = engine.on_create(_create(_request("story")))
    assert isinstance(action, PlayFrames)
    assert [hold.index for hold in action.holds] == [2, 4]
    first = engine.on_steer(_steer(_steer_request("resp_1", "in French")))
    second = engine.on_steer(_steer(_steer_request("resp_2", "shorter")))
    assert isinstance(first, ResumeSteer) and isinstance(second, ResumeSteer)
    assert [first.token, second.token] == [hold.token for hold in action.holds]


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_an_event_damaged_past_what_the_load_checks_fails_the_turn_that_plays_it(
    transport: Transport,
) -> None:
    # Events are decoded when their turn is first played; one the checking parser refuses then
    # fails that turn (and the test) naming the event, with the connection closed as for a miss.
    from pytest_responses_ws.cassette.codec import decode_cassette, encode_cassette
    from pytest_responses_ws.cassette.model import Cassette, RecordedWith

    cassette = Cassette((_turn("hello", "resp_1"),), RecordedWith("0"), "2026-12-01T00:00:00Z")
    text = encode_cassette(cassette).replace('"delta": "HELLO"', '"delta": ' + "9" * 5000)
    engine = _engine(decode_cassette(text, CASSETTE).turns)
    action = engine.on_create(_create(_request("hello"), transport=transport))
    assert isinstance(action, FailTurn)
    (failure,) = action.failures
    assert isinstance(failure, CassetteFormatError)
    assert failure.pointer == "/turns/0/events/1/data"
    assert action.close_code == TEST_FAILED_CLOSE_CODE and action.status == 500
    assert action.event["error"]["code"] == "rws_corrupt_cassette"
