"""Cassette <-> JSON text.

The text is laid out for reviewers: one event per line, one input item or tool per
line, so a re-recording shows up in ``git diff`` as the lines that really changed.
Decoding validates the structure and names the JSON pointer of the first problem.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from ..core.jsontext import JsonTextError, parse_json
from ..core.synthesize import streamable_problem
from ..errors import CassetteFormatError
from .model import (
    CASSETTE_FORMAT,
    CASSETTE_VERSION,
    TRANSPORTS,
    Cassette,
    ConnectionClose,
    ConnectionRecord,
    RecordedEvent,
    RecordedSteer,
    RecordedWith,
    Transport,
    Turn,
)

# --------------------------------------------------------------------------- encode


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _lines(items: list[str], indent: str, open_: str = "[", close: str = "]") -> str:
    if not items:
        return open_ + close
    inner = ",\n".join(indent + "  " + item for item in items)
    return f"{open_}\n{inner}\n{indent}{close}"


def _object(fields: list[tuple[str, str]], indent: str) -> str:
    return _lines([f"{_compact(key)}: {text}" for key, text in fields], indent, "{", "}")


def _request_text(request: Mapping[str, Any], indent: str) -> str:
    fields = []
    for key, value in request.items():
        if key in ("input", "tools") and isinstance(value, list):
            fields.append((key, _lines([_compact(item) for item in value], indent + "  ")))
        else:
            fields.append((key, _compact(value)))
    return _object(fields, indent)


def _turn_text(turn: Turn, indent: str) -> str:
    fields: list[tuple[str, str]] = [
        ("transport", _compact(turn.transport)),
        ("connection", _compact(turn.connection)),
        ("lane", _compact(turn.lane)),
        ("started_at_ms", _compact(turn.started_at_ms)),
        ("outcome", _compact(turn.outcome)),
        ("status", _compact(turn.status)),
    ]
    if turn.headers:
        fields.append(("headers", _compact(turn.headers)))
    fields.append(("request", _request_text(turn.request, indent + "  ")))
    if turn.body is not None:
        fields.append(("body", _compact(turn.body)))
    if turn.steers:
        # Written only for steered turns: older cassettes (and readers) never see the field.
        steers = [
            _compact({"after_event": s.after_event, "offset_ms": s.offset_ms, "request": s.request})
            for s in turn.steers
        ]
        fields.append(("steers", _lines(steers, indent + "  ")))
    events = [_compact({"offset_ms": event.offset_ms, "data": event.data}) for event in turn.events]
    fields.append(("events", _lines(events, indent + "  ")))
    return _object(fields, indent)


def _connection_dict(connection: ConnectionRecord) -> dict[str, Any]:
    close = connection.close
    return {
        "id": connection.id,
        "transport": connection.transport,
        "opened_at_ms": connection.opened_at_ms,
        "handshake_ms": connection.handshake_ms,
        "headers": connection.headers,
        "close": None
        if close is None
        else {"code": close.code, "reason": close.reason, "by": close.by, "at_ms": close.at_ms},
    }


def encode_cassette(cassette: Cassette) -> str:
    """Render ``cassette`` as the JSON text written to disk (ends with a newline)."""
    with_ = cassette.recorded_with
    recorded_with = {
        "plugin_version": with_.plugin_version,
        "transport": with_.transport,
        "upstream_host": with_.upstream_host,
        "user_agent": with_.user_agent,
    }
    fields = [
        ("format", _compact(CASSETTE_FORMAT)),
        ("version", _compact(CASSETTE_VERSION)),
        ("recorded_at", _compact(cassette.recorded_at)),
        ("recorded_with", _compact(recorded_with)),
        ("connections", _lines([_compact(_connection_dict(c)) for c in cassette.connections], "")),
        ("turns", _lines([_turn_text(turn, "  ") for turn in cassette.turns], "")),
    ]
    return _object(fields, "") + "\n"


# --------------------------------------------------------------------------- decode


class _Reader:
    """Typed access to decoded JSON that reports problems as JSON pointers."""

    def __init__(self, source: Path | str) -> None:
        self.source = source

    def fail(self, pointer: str, problem: str) -> NoReturn:
        raise CassetteFormatError(self.source, pointer, problem)

    def obj(self, value: Any, pointer: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(pointer, f"expected an object, found {_kind(value)}")
        return value

    def arr(self, value: Any, pointer: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(pointer, f"expected an array, found {_kind(value)}")
        return value

    def field(self, parent: dict[str, Any], key: str, pointer: str, *, required: bool = True) -> Any:
        if key not in parent:
            if required:
                self.fail(f"{pointer}/{key}", "required field is missing")
            return None
        return parent[key]

    def typed(self, value: Any, kinds: tuple[type, ...], pointer: str, what: str) -> Any:
        if isinstance(value, bool) and bool not in kinds:
            self.fail(pointer, f"expected {what}, found a boolean")
        if not isinstance(value, kinds):
            self.fail(pointer, f"expected {what}, found {_kind(value)}")
        return value

    def number(self, value: Any, pointer: str) -> float:
        return float(self.typed(value, (int, float), pointer, "a number"))

    def optional(self, value: Any, convert: Callable[[Any, str], Any], pointer: str) -> Any:
        return None if value is None else convert(value, pointer)

    def text(self, value: Any, pointer: str) -> str:
        return str(self.typed(value, (str,), pointer, "a string"))

    def integer(self, value: Any, pointer: str) -> int:
        return int(self.typed(value, (int,), pointer, "an integer"))

    def transport(self, value: Any, pointer: str) -> Transport:
        if value not in TRANSPORTS:
            self.fail(pointer, f"expected one of {', '.join(TRANSPORTS)}, found {_compact(value)}")
        return value  # type: ignore[no-any-return]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _decode_event(r: _Reader, raw: Any, pointer: str) -> RecordedEvent:
    event = r.obj(raw, pointer)
    offset = r.number(r.field(event, "offset_ms", pointer), f"{pointer}/offset_ms")
    if not math.isfinite(offset):
        # Paced replay would wait forever (Infinity) or never (NaN) for this event.
        r.fail(f"{pointer}/offset_ms", f"expected a finite number of milliseconds, found {offset}")
    data = r.obj(r.field(event, "data", pointer), f"{pointer}/data")
    r.text(r.field(data, "type", f"{pointer}/data"), f"{pointer}/data/type")
    return RecordedEvent(offset, data)


def _decode_steer(r: _Reader, raw: Any, pointer: str, events: int) -> RecordedSteer:
    steer = r.obj(raw, pointer)
    after = r.integer(r.field(steer, "after_event", pointer), f"{pointer}/after_event")
    if not 0 <= after <= events:
        r.fail(f"{pointer}/after_event", f"expected 0 to {events} (the turn's event count), found {after}")
    offset = r.number(r.field(steer, "offset_ms", pointer), f"{pointer}/offset_ms")
    if not math.isfinite(offset):
        r.fail(f"{pointer}/offset_ms", f"expected a finite number of milliseconds, found {offset}")
    request = r.obj(r.field(steer, "request", pointer), f"{pointer}/request")
    if request.get("type") != "response.steer":
        r.fail(f"{pointer}/request/type", f"expected 'response.steer', found {_compact(request.get('type'))}")
    return RecordedSteer(after, offset, request)


def _decode_turn(r: _Reader, raw: Any, pointer: str) -> Turn:
    turn = r.obj(raw, pointer)
    request = r.obj(r.field(turn, "request", pointer), f"{pointer}/request")
    parent = request.get("previous_response_id")
    if parent is not None and not isinstance(parent, str):
        # Anything else in a request is matched as it is; an id must be hashable.
        r.fail(f"{pointer}/request/previous_response_id", f"expected a string or null, found {_kind(parent)}")
    events_raw = r.arr(r.field(turn, "events", pointer), f"{pointer}/events")
    events = tuple(_decode_event(r, e, f"{pointer}/events/{i}") for i, e in enumerate(events_raw))
    body = r.optional(r.field(turn, "body", pointer, required=False), r.obj, f"{pointer}/body")
    lane = r.field(turn, "lane", pointer, required=False)
    headers = _decode_answer_headers(r, turn.get("headers"), f"{pointer}/headers")
    steers_raw = r.arr(turn.get("steers", []), f"{pointer}/steers")
    steers = tuple(
        _decode_steer(r, s, f"{pointer}/steers/{i}", len(events)) for i, s in enumerate(steers_raw)
    )
    return Turn(
        request=request,
        events=events,
        transport=r.transport(r.field(turn, "transport", pointer), f"{pointer}/transport"),
        connection=r.integer(r.field(turn, "connection", pointer), f"{pointer}/connection"),
        lane=r.optional(lane, r.text, f"{pointer}/lane"),
        outcome=r.text(r.field(turn, "outcome", pointer), f"{pointer}/outcome"),
        status=r.integer(r.field(turn, "status", pointer), f"{pointer}/status"),
        body=body,
        started_at_ms=r.number(turn.get("started_at_ms", 0.0), f"{pointer}/started_at_ms"),
        headers=headers,
        steers=steers,
    )


#: An HTTP header name (a token) in lower case, and a value that fits on a header line.
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def _decode_answer_headers(r: _Reader, raw: Any, pointer: str) -> dict[str, str]:
    """A turn's answer headers (optional; absent or null is none): names lower-case tokens,
    values text that can go on a header line."""
    if raw is None:
        return {}
    headers = r.obj(raw, pointer)
    for name, value in headers.items():
        where = f"{pointer}/{_escape(name)}"
        if not _HEADER_NAME.fullmatch(name):
            r.fail(where, f"expected a lower-case header name, found {_compact(name)}")
        text = r.text(value, where)
        if not _HEADER_VALUE.fullmatch(text):
            r.fail(where, "a header value must be printable text on one line (no control characters)")
    return dict(headers)


def _decode_connection(r: _Reader, raw: Any, pointer: str) -> ConnectionRecord:
    conn = r.obj(raw, pointer)
    headers = r.obj(conn.get("headers", {}), f"{pointer}/headers")
    for name, value in headers.items():
        r.text(value, f"{pointer}/headers/{_escape(name)}")
    close_raw = conn.get("close")
    close = None
    if close_raw is not None:
        c = r.obj(close_raw, f"{pointer}/close")
        by = c.get("by", "client")
        if by not in ("client", "server", "upstream", "test-end"):
            r.fail(f"{pointer}/close/by", f"expected client, server, upstream or test-end, found {by!r}")
        close = ConnectionClose(
            code=r.optional(c.get("code"), r.integer, f"{pointer}/close/code"),
            reason=r.text(c.get("reason", ""), f"{pointer}/close/reason"),
            by=by,
            at_ms=r.optional(c.get("at_ms"), r.number, f"{pointer}/close/at_ms"),
        )
    return ConnectionRecord(
        id=r.integer(r.field(conn, "id", pointer), f"{pointer}/id"),
        transport=r.transport(r.field(conn, "transport", pointer), f"{pointer}/transport"),
        opened_at_ms=r.number(r.field(conn, "opened_at_ms", pointer), f"{pointer}/opened_at_ms"),
        handshake_ms=r.optional(conn.get("handshake_ms"), r.number, f"{pointer}/handshake_ms"),
        headers=headers,
        close=close,
    )


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic collector while a decode builds many fresh containers.

    The decode allocates only acyclic dicts and lists, yet each allocation threshold crossed makes the
    collector rescan everything built so far (most of a large cassette's load time). The previous state is
    restored on every exit, including a failed decode.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_cassette(text: str, source: Path | str = "<cassette>") -> Cassette:
    """Parse and validate cassette text; raise :class:`CassetteFormatError` naming the problem."""
    with _collector_paused():
        return _decode_cassette(text, source)


def _decode_cassette(text: str, source: Path | str) -> Cassette:
    r = _Reader(source)
    try:
        raw = parse_json(text)
    except JsonTextError as exc:
        r.fail(exc.pointer, exc.problem)
    root = r.obj(raw, "")
    fmt = root.get("format")
    if fmt != CASSETTE_FORMAT:
        hint = (
            " It looks like a vcrpy cassette: convert it with `pytest-responses-ws import-vcr`."
            if ("interactions" in root)
            else ""
        )
        r.fail("/format", f"expected {CASSETTE_FORMAT!r}, found {_compact(fmt)}.{hint}")
    version = r.integer(r.field(root, "version", ""), "/version")
    if version > CASSETTE_VERSION:
        r.fail(
            "/version",
            f"version {version} was written by a newer pytest-responses-ws (this one reads up to "
            f"{CASSETTE_VERSION}); upgrade the plugin",
        )
    if version < 1:
        r.fail("/version", f"unknown version {version}")
    with_raw = r.obj(r.field(root, "recorded_with", ""), "/recorded_with")
    recorded_with = RecordedWith(
        plugin_version=r.text(with_raw.get("plugin_version", "unknown"), "/recorded_with/plugin_version"),
        transport=r.optional(with_raw.get("transport"), r.transport, "/recorded_with/transport"),
        upstream_host=r.optional(with_raw.get("upstream_host"), r.text, "/recorded_with/upstream_host"),
        user_agent=r.optional(with_raw.get("user_agent"), r.text, "/recorded_with/user_agent"),
    )
    connections = r.arr(root.get("connections", []), "/connections")
    turns = r.arr(r.field(root, "turns", ""), "/turns")
    return Cassette(
        turns=tuple(_decode_turn(r, t, f"/turns/{i}") for i, t in enumerate(turns)),
        recorded_with=recorded_with,
        recorded_at=r.text(r.field(root, "recorded_at", ""), "/recorded_at"),
        connections=tuple(_decode_connection(r, c, f"/connections/{i}") for i, c in enumerate(connections)),
        version=version,
    )


def check_replayable(cassette: Cassette, source: Path | str = "<cassette>") -> None:
    """Raise :class:`CassetteFormatError` for a turn replay could not send.

    A turn recorded as a plain JSON body is streamed from its final response object,
    which therefore needs a terminal ``status`` and an ``output`` array of item objects.
    """
    for index, turn in enumerate(cassette.turns):
        if turn.events or turn.body is None or "output" not in turn.body:
            continue
        problem = streamable_problem(turn.body)
        if problem is not None:
            raise CassetteFormatError(source, f"/turns/{index}/body{problem[0]}", problem[1])
