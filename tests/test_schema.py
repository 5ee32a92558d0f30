"""The published JSON Schema (``cassette/schema.json``) agrees with the codec.

Everything ``encode_cassette`` writes validates, the file ships inside the package, and
documents the schema rejects for structural reasons are rejected by ``decode_cassette`` too
(and the other way round for the optional fields the decoder fills in).
"""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.codec import decode_cassette, encode_cassette
from pytest_responses_ws.cassette.model import (
    CASSETTE_FORMAT,
    CASSETTE_VERSION,
    TRANSPORTS,
    Cassette,
    ConnectionClose,
    ConnectionRecord,
    RecordedEvent,
    RecordedWith,
    Turn,
)
from pytest_responses_ws.cassette.redact import Redactor
from pytest_responses_ws.core.record import SessionRecorder
from pytest_responses_ws.errors import CassetteFormatError

jsonschema = pytest.importorskip("jsonschema")

MS = 1_000_000  # nanoseconds per millisecond
SECRET_KEY = "fake-schema-test-0123456789abcdef"


def _schema() -> dict[str, Any]:
    text = (files("pytest_responses_ws.cassette") / "schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: Any, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


# -- cassettes built the ways the plugin builds them ----------------------------------------------------


def _response(response_id: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "status": status, "output": output}


def hand_built_cassette() -> Cassette:
    """Two turns: a WebSocket one on a named lane with events, an HTTP 400 with a JSON body."""
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
        "status": "completed",
    }
    ws_turn = Turn(
        request={
            "type": "response.create",
            "model": "gpt-5.2",
            "stream_id": "research",
            "store": False,
            "input": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        },
        events=(
            RecordedEvent(
                0.5,
                {
                    "type": "response.created",
                    "response": _response("resp_1", "in_progress", []),
                    "sequence_number": 0,
                    "stream_id": "research",
                },
            ),
            RecordedEvent(
                2.25,
                {
                    "type": "response.function_call_arguments.delta",
                    "delta": '{"city":"Paris"}',
                    "item_id": "fc_1",
                    "obfuscation": "a1b2",
                    "sequence_number": 1,
                    "stream_id": "research",
                },
            ),
            RecordedEvent(
                4,
                {
                    "type": "response.completed",
                    "response": _response("resp_1", "completed", [call]),
                    "sequence_number": 2,
                    "stream_id": "research",
                },
            ),
        ),
        transport="ws",
        connection=0,
        lane="research",
        outcome="completed",
        status=200,
        started_at_ms=12.5,
    )
    http_turn = Turn(
        request={"model": "gpt-5.2", "input": "hi", "previous_response_id": "resp_gone"},
        events=(),
        transport="http",
        connection=1,
        lane=None,
        outcome="http_error",
        status=400,
        body={
            "error": {
                "message": "Previous response with id 'resp_gone' not found.",
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found",
            }
        },
        started_at_ms=40.0,
        headers={"x-should-retry": "false"},
    )
    return Cassette(
        turns=(ws_turn, http_turn),
        recorded_with=RecordedWith(
            plugin_version="0.1.0",
            transport="ws",
            upstream_host="api.openai.com",
            user_agent="OpenAI/Python 3.57.0",
        ),
        recorded_at="2026-11-24T10:00:00+00:00",
        connections=(
            ConnectionRecord(
                id=0,
                transport="ws",
                opened_at_ms=10.0,
                handshake_ms=3.25,
                headers={"authorization": "[redacted]", "user-agent": "OpenAI/Python 3.57.0"},
                close=ConnectionClose(code=1000, reason="", by="client", at_ms=30.0),
            ),
            ConnectionRecord(
                id=1, transport="http", opened_at_ms=39.0, headers={"accept": "application/json"}
            ),
        ),
    )


def recorded_cassette() -> Cassette:
    """A cassette made by ``SessionRecorder`` from traffic, as the recording proxy drives it."""
    recorder = SessionRecorder(origin_ns=0, redactor=Redactor(["x-gateway-token"]))
    headers = {
        "authorization": f"Bearer {SECRET_KEY}",
        "x-gateway-token": "gateway-secret-value",
        "user-agent": "OpenAI/Python 3.57.0",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "host": "127.0.0.1:54321",
    }
    ws = recorder.open_connection("ws", headers, at_ns=1 * MS, handshake_ns=2 * MS)
    request = {
        "type": "response.create",
        "model": "gpt-5.2",
        "store": False,
        "input": [{"role": "user", "content": f"my key is {SECRET_KEY}"}],
        "tools": [{"type": "mcp", "server_url": "https://mcp.example", "authorization": "mcp-token"}],
    }
    recorder.start_turn(ws, request, at_ns=5 * MS, transport="ws")
    for offset, data in enumerate(
        [
            {"type": "response.created", "response": _response("resp_a", "in_progress", [])},
            {"type": "response.output_text.delta", "delta": "Hello", "obfuscation": "x"},
            {
                "type": "response.completed",
                "response": _response(
                    "resp_a",
                    "completed",
                    [
                        {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": "Hello"}],
                        }
                    ],
                ),
            },
        ]
    ):
        assert (recorder.on_event(ws, data, at_ns=(6 + offset) * MS) is None) == (offset < 2)
    recorder.close_connection(ws, 1000, "", "client", at_ns=20 * MS)

    http = recorder.open_connection("http", {"authorization": f"Bearer {SECRET_KEY}"}, at_ns=30 * MS)
    pending = recorder.start_turn(
        http, {"model": "gpt-5.2", "input": "again"}, at_ns=31 * MS, transport="http"
    )
    recorder.discard(pending)
    recorder.store(
        pending,
        outcome="http_error",
        status=400,
        body={"error": {"message": f"bad key {SECRET_KEY}", "type": "invalid_request_error", "code": None}},
    )
    return Cassette(
        turns=tuple(recorder.turns),
        recorded_with=RecordedWith(
            "0.1.0", recorder.turns[0].transport, "api.openai.com", recorder.user_agent
        ),
        recorded_at="2026-11-24T10:00:00+00:00",
        connections=recorder.connections(),
    )


@pytest.mark.parametrize("build", [hand_built_cassette, recorded_cassette], ids=["hand-built", "recorded"])
def test_encoded_cassettes_validate(validator: Any, build: Any) -> None:
    text = encode_cassette(build())
    document = json.loads(text)
    assert _errors(validator, document) == []
    # The decoder accepts the same text, so the schema describes a readable file.
    assert decode_cassette(text) == decode_cassette(encode_cassette(decode_cassette(text)))


def test_recorded_cassette_is_redacted_and_still_valid(validator: Any) -> None:
    text = encode_cassette(recorded_cassette())
    assert SECRET_KEY not in text
    assert "gateway-secret-value" not in text
    assert "mcp-token" not in text
    document = json.loads(text)
    assert document["connections"][0]["headers"]["x-gateway-token"] == "[redacted]"
    assert _errors(validator, document) == []


REAL_RECORDINGS = sorted((Path(__file__).parent / "data" / "real-recordings").glob("*.yaml"))


@pytest.mark.parametrize("source", REAL_RECORDINGS, ids=[p.stem for p in REAL_RECORDINGS])
def test_imported_vcr_cassettes_validate(validator: Any, source: Path) -> None:
    pytest.importorskip("vcr")
    from pytest_responses_ws.cassette.vcr_import import import_vcr_cassette

    document = json.loads(encode_cassette(import_vcr_cassette(source).cassette))
    assert _errors(validator, document) == []


def test_schema_ships_in_the_package() -> None:
    resource = files("pytest_responses_ws.cassette") / "schema.json"
    assert resource.is_file()
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["format"]["const"] == CASSETTE_FORMAT
    assert schema["properties"]["version"]["const"] == CASSETTE_VERSION
    assert schema["$defs"]["transport"]["enum"] == list(TRANSPORTS)


# -- any cassette the encoder can write ----------------------------------------------------------------

_text = st.text(max_size=6)
_ms = st.floats(0, 1e7, allow_nan=False, allow_infinity=False)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | _ms | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=5,
)
_objects = st.dictionaries(_text, _json, max_size=3)
_transports = st.sampled_from(TRANSPORTS)
_header_names = st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)
_header_values = st.from_regex(r"[ -~]{0,12}", fullmatch=True)


@st.composite
def _events(draw: st.DrawFn) -> RecordedEvent:
    return RecordedEvent(draw(_ms), {**draw(_objects), "type": draw(_text)})


@st.composite
def _turns(draw: st.DrawFn) -> Turn:
    request = draw(_objects)
    if draw(st.booleans()):
        request["input"] = draw(st.lists(_json, max_size=3))
    return Turn(
        request=request,
        events=tuple(draw(st.lists(_events(), max_size=3))),
        transport=draw(_transports),
        connection=draw(st.integers(0, 100)),
        lane=draw(st.none() | _text),
        outcome=draw(st.sampled_from(["completed", "failed", "incomplete", "error", "http_error"])),
        status=draw(st.sampled_from([200, 400, 404, 429, 500])),
        body=draw(st.none() | _objects),
        started_at_ms=draw(_ms),
        headers=draw(st.dictionaries(_header_names, _header_values, max_size=2)),
    )


@st.composite
def _connections(draw: st.DrawFn) -> ConnectionRecord:
    close = draw(
        st.none()
        | st.builds(
            ConnectionClose,
            code=st.none() | st.integers(1000, 4999),
            reason=_text,
            by=st.sampled_from(["client", "server", "upstream", "test-end"]),
            at_ms=st.none() | _ms,
        )
    )
    return ConnectionRecord(
        id=draw(st.integers(0, 100)),
        transport=draw(_transports),
        opened_at_ms=draw(_ms),
        handshake_ms=draw(st.none() | _ms),
        headers=draw(st.dictionaries(_text, _text, max_size=3)),
        close=close,
    )


@settings(max_examples=60, deadline=None)
@given(
    turns=st.lists(_turns(), max_size=3),
    connections=st.lists(_connections(), max_size=2),
    transport=st.none() | _transports,
    host=st.none() | _text,
)
def test_anything_the_encoder_writes_validates(
    validator: Any, turns: list[Turn], connections: list[ConnectionRecord], transport: Any, host: Any
) -> None:
    cassette = Cassette(
        turns=tuple(turns),
        recorded_with=RecordedWith("0.1.0", transport, host, None),
        recorded_at="2026-01-01T00:00:00+00:00",
        connections=tuple(connections),
    )
    assert _errors(validator, json.loads(encode_cassette(cassette))) == []


# -- schema and decoder agree on what is structurally wrong ---------------------------------------------


def _base() -> dict[str, Any]:
    return json.loads(encode_cassette(hand_built_cassette()))  # type: ignore[no-any-return]


def _delete(*path: Any) -> Any:
    def edit(document: dict[str, Any]) -> None:
        node: Any = document
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


def _set(value: Any, *path: Any) -> Any:
    def edit(document: dict[str, Any]) -> None:
        node: Any = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


REJECTED = {
    "missing-events": (_delete("turns", 0, "events"), "/turns/0/events"),
    "missing-request": (_delete("turns", 1, "request"), "/turns/1/request"),
    "wrong-transport": (_set("grpc", "turns", 0, "transport"), "/turns/0/transport"),
    "wrong-connection-transport": (_set("sse", "connections", 1, "transport"), "/connections/1/transport"),
    "events-not-array": (_set({}, "turns", 0, "events"), "/turns/0/events"),
    "event-without-type": (_delete("turns", 0, "events", 1, "data", "type"), "/turns/0/events/1/data/type"),
    "event-type-not-string": (
        _set(7, "turns", 0, "events", 0, "data", "type"),
        "/turns/0/events/0/data/type",
    ),
    "offset-as-string": (_set("1.5", "turns", 0, "events", 0, "offset_ms"), "/turns/0/events/0/offset_ms"),
    "offset-as-boolean": (_set(True, "turns", 0, "events", 0, "offset_ms"), "/turns/0/events/0/offset_ms"),
    "status-as-string": (_set("400", "turns", 1, "status"), "/turns/1/status"),
    "connection-as-float": (_set(1.5, "turns", 1, "connection"), "/turns/1/connection"),
    "lane-as-number": (_set(3, "turns", 0, "lane"), "/turns/0/lane"),
    "body-as-array": (_set([], "turns", 1, "body"), "/turns/1/body"),
    "outcome-missing": (_delete("turns", 0, "outcome"), "/turns/0/outcome"),
    "close-by-unknown": (_set("nobody", "connections", 0, "close", "by"), "/connections/0/close/by"),
    "header-not-string": (
        _set(1, "connections", 0, "headers", "user-agent"),
        "/connections/0/headers/user-agent",
    ),
    "answer-header-not-string": (
        _set(1, "turns", 1, "headers", "x-should-retry"),
        "/turns/1/headers/x-should-retry",
    ),
    "answer-header-upper-case": (
        _set("1", "turns", 1, "headers", "Retry-After"),
        "/turns/1/headers/Retry-After",
    ),
    "answer-header-line-break": (
        _set("1\r\nx: y", "turns", 1, "headers", "x-should-retry"),
        "/turns/1/headers/x-should-retry",
    ),
    "wrong-format": (_set("vcrpy", "format"), "/format"),
    "missing-format": (_delete("format"), "/format"),
    "newer-version": (_set(CASSETTE_VERSION + 1, "version"), "/version"),
    "missing-turns": (_delete("turns"), "/turns"),
    "missing-recorded-with": (_delete("recorded_with"), "/recorded_with"),
    "recorded-at-number": (_set(0, "recorded_at"), "/recorded_at"),
    "steers-not-array": (_set({}, "turns", 0, "steers"), "/turns/0/steers"),
    "steer-without-request": (
        _set([{"after_event": 0, "offset_ms": 1.0}], "turns", 0, "steers"),
        "/turns/0/steers/0/request",
    ),
    "steer-of-another-type": (
        _set(
            [{"after_event": 0, "offset_ms": 1.0, "request": {"type": "response.create"}}],
            "turns",
            0,
            "steers",
        ),
        "/turns/0/steers/0/request/type",
    ),
}


@pytest.mark.parametrize(("edit", "pointer"), list(REJECTED.values()), ids=list(REJECTED))
def test_decoder_rejects_what_the_schema_rejects(validator: Any, edit: Any, pointer: str) -> None:
    document = copy.deepcopy(_base())
    edit(document)
    assert _errors(validator, document), "the schema should reject this document"
    with pytest.raises(CassetteFormatError) as info:
        decode_cassette(json.dumps(document), "cassette.json")
    assert info.value.pointer == pointer


ACCEPTED = {
    "no-connections": _delete("connections"),
    "no-lane": _delete("turns", 0, "lane"),
    "no-started-at": _delete("turns", 0, "started_at_ms"),
    "null-body": _set(None, "turns", 0, "body"),
    "open-connection": _set(None, "connections", 0, "close"),
    "no-headers": _delete("connections", 0, "headers"),
    "empty-recorded-with": _set({}, "recorded_with"),
    "integer-offsets": _set(3, "turns", 0, "events", 0, "offset_ms"),
    "unknown-field": _set("kept for later", "turns", 0, "note"),
    "no-answer-headers": _delete("turns", 1, "headers"),
    "null-answer-headers": _set(None, "turns", 1, "headers"),
    "steers": _set(
        [
            {
                "after_event": 1,
                "offset_ms": 2.5,
                "request": {"type": "response.steer", "previous_response_id": "resp_1", "input": "x"},
            }
        ],
        "turns",
        0,
        "steers",
    ),
}


@pytest.mark.parametrize("edit", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_optional_fields_are_optional_in_both(validator: Any, edit: Any) -> None:
    document = copy.deepcopy(_base())
    edit(document)
    assert _errors(validator, document) == []
    decode_cassette(json.dumps(document))
