"""Unit tests of ``cassette.codec``: cassette <-> JSON text, layout and decode errors."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.codec import decode_cassette, encode_cassette
from pytest_responses_ws.cassette.model import (
    CASSETTE_FORMAT,
    CASSETTE_VERSION,
    Cassette,
    ConnectionClose,
    ConnectionRecord,
    RecordedEvent,
    RecordedSteer,
    RecordedWith,
    Turn,
)
from pytest_responses_ws.errors import CassetteError, CassetteFormatError

# -- strategies ---------------------------------------------------------------------------------------

# Any text the encoder may meet: unicode, quotes, backslashes, control characters, line separators.
_text = st.text(max_size=8)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _finite | _text
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=6,
)
_objects = st.dictionaries(_text, _json, max_size=3)


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    request = draw(_objects)
    # ``input`` and ``tools`` lists get a line per item; exercise that path as well as odd values.
    if draw(st.booleans()):
        request["input"] = draw(st.lists(_json, max_size=4) | _text)
    if draw(st.booleans()):
        request["tools"] = draw(st.lists(_objects, max_size=3))
    return request


@st.composite
def _events(draw: st.DrawFn) -> RecordedEvent:
    data = draw(_objects)
    data["type"] = draw(_text)
    return RecordedEvent(draw(st.floats(0, 1e9, allow_nan=False)), data)


@st.composite
def _turns(draw: st.DrawFn) -> Turn:
    return Turn(
        request=draw(_requests()),
        events=tuple(draw(st.lists(_events(), max_size=3))),
        transport=draw(st.sampled_from(["http", "ws"])),
        connection=draw(st.integers(0, 50)),
        lane=draw(st.none() | _text),
        outcome=draw(st.sampled_from(["completed", "failed", "incomplete", "error", "http_error"])),
        status=draw(st.sampled_from([200, 400, 429, 500])),
        body=draw(st.none() | _objects),
        started_at_ms=draw(_finite),
    )


_closes = st.builds(
    ConnectionClose,
    code=st.none() | st.integers(1000, 4999),
    reason=_text,
    by=st.sampled_from(["client", "server", "upstream", "test-end"]),
    at_ms=st.none() | _finite,
)
_connections = st.builds(
    ConnectionRecord,
    id=st.integers(0, 100),
    transport=st.sampled_from(["http", "ws"]),
    opened_at_ms=_finite,
    handshake_ms=st.none() | _finite,
    headers=st.dictionaries(_text, _text, max_size=4),
    close=st.none() | _closes,
)
_cassettes = st.builds(
    Cassette,
    turns=st.lists(_turns(), max_size=3).map(tuple),
    recorded_with=st.builds(
        RecordedWith,
        plugin_version=_text,
        transport=st.none() | st.sampled_from(["http", "ws"]),
        upstream_host=st.none() | _text,
        user_agent=st.none() | _text,
    ),
    recorded_at=_text,
    connections=st.lists(_connections, max_size=3).map(tuple),
)


# -- builders -----------------------------------------------------------------------------------------


def _cassette(*turns: Turn, connections: tuple[ConnectionRecord, ...] = ()) -> Cassette:
    return Cassette(
        turns=turns,
        recorded_with=RecordedWith("0.1.0", "ws", "api.openai.com", "pytest"),
        recorded_at="2026-11-02T10:00:00Z",
        connections=connections,
    )


def _turn(n_events: int = 2, **kw: Any) -> Turn:
    events = tuple(
        RecordedEvent(float(i), {"type": "response.output_text.delta", "delta": f"d{i}"})
        for i in range(n_events)
    )
    return Turn(request={"model": "gpt-5.2", "input": "hi"}, events=events, **kw)


def _valid_document() -> dict[str, Any]:
    """A decoded valid cassette with two turns of three events and one closed connection."""
    return json.loads(
        encode_cassette(
            _cassette(
                _turn(3),
                _turn(3),
                connections=(
                    ConnectionRecord(0, "ws", 1.5, 0.5, {"user-agent": "x"}, ConnectionClose(1000)),
                ),
            )
        )
    )


def _decode_error(document: Any, source: str = "cassettes/test_x.json") -> CassetteFormatError:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(CassetteFormatError) as info:
        decode_cassette(text, source)
    return info.value


# -- round trip ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(_cassettes)
def test_round_trip_preserves_every_field(cassette: Cassette) -> None:
    text = encode_cassette(cassette)
    assert text.endswith("\n")
    assert decode_cassette(text) == cassette


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(_cassettes)
def test_encoding_is_stable(cassette: Cassette) -> None:
    text = encode_cassette(cassette)
    assert encode_cassette(decode_cassette(text)) == text


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(_requests())
def test_request_key_order_survives(request: dict[str, Any]) -> None:
    decoded = decode_cassette(encode_cassette(_cassette(Turn(request=request, events=()))))
    assert list(decoded.turns[0].request) == list(request)


def test_unicode_is_written_as_is() -> None:
    turn = Turn(
        request={"input": "héllo — 日本語 🎉"},
        events=(RecordedEvent(0.25, {"type": "response.output_text.delta", "delta": "ça va? 🙂"}),),
    )
    text = encode_cassette(_cassette(turn))
    assert "héllo — 日本語 🎉" in text
    assert "ça va? 🙂" in text
    assert decode_cassette(text).turns[0] == turn


def test_fractional_offsets_round_trip_exactly() -> None:
    offsets = [0.0, 0.001, 1.234567, 12345.678901, 1e-6]
    turn = Turn(request={}, events=tuple(RecordedEvent(o, {"type": "x"}) for o in offsets))
    decoded = decode_cassette(encode_cassette(_cassette(turn)))
    assert [e.offset_ms for e in decoded.turns[0].events] == offsets


def test_integer_offsets_decode_as_floats() -> None:
    decoded = decode_cassette(
        encode_cassette(_cassette(_turn(1))).replace('"offset_ms": 0.0', '"offset_ms": 0')
    )
    offset = decoded.turns[0].events[0].offset_ms
    assert isinstance(offset, float)
    assert offset == 0.0


def test_body_is_kept_and_absent_body_is_none() -> None:
    with_body = Turn(request={}, events=(), body={"id": "resp_1", "output": []}, status=200)
    decoded = decode_cassette(encode_cassette(_cassette(with_body, _turn(1))))
    assert decoded.turns[0].body == {"id": "resp_1", "output": []}
    assert decoded.turns[1].body is None


def test_started_at_defaults_to_zero_when_missing() -> None:
    document = _valid_document()
    del document["turns"][0]["started_at_ms"]
    assert decode_cassette(json.dumps(document)).turns[0].started_at_ms == 0.0


def test_header_and_format_fields_are_written() -> None:
    document = json.loads(encode_cassette(_cassette()))
    assert document["format"] == CASSETTE_FORMAT
    assert document["version"] == CASSETTE_VERSION
    assert document["turns"] == []
    assert document["connections"] == []


# -- layout -------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(_cassettes)
def test_each_event_is_on_its_own_line(cassette: Cassette) -> None:
    text = encode_cassette(cassette)
    outside_events = encode_cassette(
        Cassette(
            turns=tuple(replace(turn, events=()) for turn in cassette.turns),
            recorded_with=cassette.recorded_with,
            recorded_at=cassette.recorded_at,
            connections=cassette.connections,
        )
    )
    assume('"offset_ms"' not in outside_events)  # the key may appear in generated payloads
    lines = text.split("\n")  # the file's own line ends: JSON escapes every raw newline
    n_events = sum(len(turn.events) for turn in cassette.turns)
    assert sum('"offset_ms"' in line for line in lines) == n_events
    # every event line parses on its own, in order
    event_lines = [
        json.loads(line.strip().removesuffix(","))
        for line in lines
        if line.lstrip().startswith('{"offset_ms":')
    ]
    expected = [{"offset_ms": e.offset_ms, "data": e.data} for t in cassette.turns for e in t.events]
    assert event_lines == expected


def test_event_lines_counted() -> None:
    cassette = _cassette(_turn(3), _turn(0), _turn(5))
    text = encode_cassette(cassette)
    assert sum('"offset_ms"' in line for line in text.split("\n")) == 8


def test_input_items_and_tools_get_a_line_each() -> None:
    request = {
        "model": "gpt-5.2",
        "input": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        "tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}],
    }
    lines = encode_cassette(_cassette(Turn(request=request, events=()))).split("\n")
    for item in [*request["input"], *request["tools"]]:
        assert sum(json.dumps(item, ensure_ascii=False) in line for line in lines) == 1


# -- decode errors ------------------------------------------------------------------------------------


def test_invalid_json_names_the_root_and_the_position() -> None:
    error = _decode_error('{\n  "format": ,\n}')
    assert isinstance(error, CassetteError)
    assert error.pointer == ""  # RFC 6901: the whole document
    assert error.path == "cassettes/test_x.json"
    message = str(error)
    assert "cassettes/test_x.json at /:" in message
    assert "line 2, column" in message
    assert "not valid JSON" in message


def test_root_must_be_an_object() -> None:
    error = _decode_error([1, 2])
    assert error.pointer == ""
    assert "expected an object, found an array" in str(error)


def test_wrong_format_field() -> None:
    document = _valid_document()
    document["format"] = "something-else"
    error = _decode_error(document)
    assert error.pointer == "/format"
    assert "/format" in str(error)
    assert "something-else" in str(error)
    assert "vcrpy" not in str(error)


def test_missing_format_field() -> None:
    document = _valid_document()
    del document["format"]
    error = _decode_error(document)
    assert error.pointer == "/format"
    assert "null" in error.problem


def test_vcrpy_cassette_gets_a_hint() -> None:
    error = _decode_error({"interactions": [], "version": 1})
    assert error.pointer == "/format"
    assert "vcrpy" in str(error)
    assert "import-vcr" in str(error)


def test_newer_version_says_upgrade() -> None:
    document = _valid_document()
    document["version"] = CASSETTE_VERSION + 1
    error = _decode_error(document)
    assert error.pointer == "/version"
    assert "newer" in error.problem
    assert "upgrade" in error.problem
    assert "/version" in str(error)


@pytest.mark.parametrize(("value", "found"), [(0, "unknown version"), ("1", "a string"), (True, "boolean")])
def test_bad_versions(value: Any, found: str) -> None:
    document = _valid_document()
    document["version"] = value
    error = _decode_error(document)
    assert error.pointer == "/version"
    assert found in error.problem


def test_missing_events_of_first_turn() -> None:
    document = _valid_document()
    del document["turns"][0]["events"]
    error = _decode_error(document)
    assert error.pointer == "/turns/0/events"
    assert "required field is missing" in error.problem
    assert "/turns/0/events" in str(error)


@pytest.mark.parametrize(
    ("value", "found"), [("5", "a string"), (None, "null"), (True, "a boolean"), ([1], "an array")]
)
def test_wrong_offset_type_deep_in_the_document(value: Any, found: str) -> None:
    document = _valid_document()
    document["turns"][1]["events"][2]["offset_ms"] = value
    error = _decode_error(document)
    assert error.pointer == "/turns/1/events/2/offset_ms"
    assert f"expected a number, found {found}" in error.problem
    assert "/turns/1/events/2/offset_ms" in str(error)


def test_event_type_must_be_a_string() -> None:
    document = _valid_document()
    document["turns"][0]["events"][1]["data"]["type"] = 7
    assert _decode_error(document).pointer == "/turns/0/events/1/data/type"
    del document["turns"][0]["events"][1]["data"]["type"]
    assert _decode_error(document).pointer == "/turns/0/events/1/data/type"


def test_event_must_be_an_object() -> None:
    document = _valid_document()
    document["turns"][0]["events"][0] = "response.created"
    error = _decode_error(document)
    assert error.pointer == "/turns/0/events/0"
    assert "expected an object, found a string" in error.problem


@pytest.mark.parametrize("value", ["sse", "HTTP", None, 1])
def test_bad_transport(value: Any) -> None:
    document = _valid_document()
    document["turns"][1]["transport"] = value
    error = _decode_error(document)
    assert error.pointer == "/turns/1/transport"
    assert "http, ws" in error.problem


def test_bad_connection_transport() -> None:
    document = _valid_document()
    document["connections"][0]["transport"] = "grpc"
    assert _decode_error(document).pointer == "/connections/0/transport"


@pytest.mark.parametrize("value", ["nobody", "Client", 3])
def test_bad_close_by(value: Any) -> None:
    document = _valid_document()
    document["connections"][0]["close"]["by"] = value
    error = _decode_error(document)
    assert error.pointer == "/connections/0/close/by"
    assert "client, server, upstream or test-end" in error.problem
    assert "/connections/0/close/by" in str(error)


def test_header_values_must_be_strings() -> None:
    document = _valid_document()
    document["connections"][0]["headers"]["x/y~z"] = 5
    error = _decode_error(document)
    assert error.pointer == "/connections/0/headers/x~1y~0z"


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        ("request", [], "/turns/0/request"),
        ("connection", 1.5, "/turns/0/connection"),
        ("status", "200", "/turns/0/status"),
        ("outcome", None, "/turns/0/outcome"),
        ("lane", 3, "/turns/0/lane"),
        ("body", "x", "/turns/0/body"),
        ("events", {}, "/turns/0/events"),
    ],
)
def test_turn_field_types(field: str, value: Any, pointer: str) -> None:
    document = _valid_document()
    document["turns"][0][field] = value
    assert _decode_error(document).pointer == pointer


@pytest.mark.parametrize("field", ["recorded_at", "recorded_with", "turns", "version"])
def test_required_top_level_fields(field: str) -> None:
    document = _valid_document()
    del document[field]
    assert _decode_error(document).pointer == f"/{field}"


def test_error_message_has_path_pointer_and_fix() -> None:
    error = CassetteFormatError("a/b.json", "/turns/3", "bad")
    assert str(error).startswith("corrupt cassette a/b.json at /turns/3: bad")
    assert "--rws-record-mode=once" in str(error)


# -- robustness -----------------------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a JSON document, the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


def _pointer(path: tuple[Any, ...]) -> str:
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in path)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_any_corruption_is_reported_as_a_format_error(data: st.DataObject) -> None:
    document = _valid_document()
    path = data.draw(st.sampled_from(_paths(document)))
    replacement = data.draw(_json | st.just(None))
    if path:
        parent = document
        for token in path[:-1]:
            parent = parent[token]
        if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
    else:
        document = replacement
    pointer = None
    try:
        decode_cassette(json.dumps(document))
    except CassetteFormatError as error:  # anything else (KeyError, TypeError, ...) fails the test
        pointer = error.pointer
    if pointer is not None:
        # the reported place exists in the document, or is a required field missing under one that does
        assert pointer == "" or any(
            pointer == _pointer(p) or pointer.rsplit("/", 1)[0] == _pointer(p) for p in _paths(document)
        )


# -- steers (additive, optional) ----------------------------------------------------------------------


_STEER = {"type": "response.steer", "previous_response_id": "resp_1", "input": "in French"}


def test_steers_round_trip_and_are_written_only_for_steered_turns() -> None:
    steered = _turn(3, steers=(RecordedSteer(2, 12.5, dict(_STEER)),))
    text = encode_cassette(_cassette(steered, _turn(2)))
    decoded = decode_cassette(text)
    assert decoded.turns[0].steers == steered.steers
    assert decoded.turns[1].steers == ()
    document = json.loads(text)
    assert "steers" in document["turns"][0] and "steers" not in document["turns"][1]


def test_a_cassette_without_steers_decodes_as_before() -> None:
    document = _valid_document()
    assert all("steers" not in turn for turn in document["turns"])
    assert all(turn.steers == () for turn in decode_cassette(json.dumps(document)).turns)


@pytest.mark.parametrize(
    ("steer", "pointer", "problem"),
    [
        ({"offset_ms": 1, "request": _STEER}, "/turns/0/steers/0/after_event", "required field is missing"),
        (
            {"after_event": 4, "offset_ms": 1, "request": _STEER},
            "/turns/0/steers/0/after_event",
            "expected 0 to 3",
        ),
        (
            {"after_event": 1, "offset_ms": 1, "request": {**_STEER, "type": "response.create"}},
            "/turns/0/steers/0/request/type",
            "expected 'response.steer'",
        ),
        (
            {"after_event": 1, "offset_ms": "soon", "request": _STEER},
            "/turns/0/steers/0/offset_ms",
            "a number",
        ),
    ],
)
def test_a_bad_steer_names_its_pointer(steer: dict[str, Any], pointer: str, problem: str) -> None:
    document = _valid_document()
    document["turns"][0]["steers"] = [steer]
    error = _decode_error(document)
    assert error.pointer == pointer
    assert problem in str(error)


# -- collector pause --------------------------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_state_is_restored_after_a_failed_decode(enabled: bool) -> None:
    import gc

    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        _decode_error({"format": "nope"})
        assert gc.isenabled() is enabled
        decode_cassette(encode_cassette(_cassette(_turn(2))))
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_a_large_cassette_still_names_the_bad_field() -> None:
    document = json.loads(encode_cassette(_cassette(*(_turn(5) for _ in range(2000)))))
    document["turns"][1999]["events"][4]["offset_ms"] = "late"
    error = _decode_error(document)
    assert error.pointer.startswith("/turns/1999/events/4")
