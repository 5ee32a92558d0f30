"""Cassette <-> JSON text.

The text is laid out for reviewers: one event per line, one input item or tool per
line, so a re-recording shows up in ``git diff`` as the lines that really changed.
Decoding validates the structure and names the JSON pointer of the first problem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn, overload

import msgspec

from ..core.collector import collector_paused
from ..core.jsontext import JsonTextError, parse_json, too_deep
from ..core.synthesize import RESPONSE_TERMINALS, streamable_problem
from ..errors import CassetteFormatError
from .model import (
    CASSETTE_FORMAT,
    CASSETTE_VERSION,
    TRANSPORTS,
    Cassette,
    ConnectionClose,
    ConnectionRecord,
    EventLog,
    RecordedEvent,
    RecordedSteer,
    RecordedWith,
    Transport,
    Turn,
)
from .redact import REDACTED

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


def decode_cassette(text: str | bytes, source: Path | str = "<cassette>") -> Cassette:
    """Parse and validate cassette text; raise :class:`CassetteFormatError` naming the problem.

    A well-formed cassette takes the fast path: two typed passes that check the layout and every
    event's ``type`` and leave the rest of each event undecoded until it is first used (see
    :class:`LazyEvents`). Anything that pass cannot
    vouch for is decoded again by the checking parser, which names the first problem.
    """
    with collector_paused():
        fast = _decode_fast(text, source)
        return fast if fast is not None else _decode_cassette(text, source)


def _decode_cassette(text: str | bytes, source: Path | str) -> Cassette:
    r = _Reader(source)
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError: the caller says where
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


# --------------------------------------------------------------------------- fast path
#
# The layout is decoded by msgspec into the structs below, each event's ``data`` kept as raw JSON. The
# structs check what the checking parser checks for the layout; what they cannot express (the format
# marker, the version, header names, steer positions, nesting depth) is checked after. Any failure means
# "take the checking parser", never an error of its own: the error a user sees always comes from one
# place, with its JSON pointer.


class _FastEvent(msgspec.Struct, gc=False):
    offset_ms: float
    data: msgspec.Raw


class _FastSteer(msgspec.Struct, gc=False):
    after_event: int
    offset_ms: float
    request: msgspec.Raw


class _FastTurn(msgspec.Struct, gc=False):
    transport: Literal["http", "ws"]
    connection: int
    outcome: str
    status: int
    request: msgspec.Raw
    events: list[_FastEvent]
    lane: str | None = None
    started_at_ms: float = 0.0
    headers: dict[str, str] | None = None
    body: msgspec.Raw | None = None
    steers: list[_FastSteer] = []


class _FastClose(msgspec.Struct, gc=False):
    code: int | None = None
    reason: str = ""
    by: Literal["client", "server", "upstream", "test-end"] = "client"
    at_ms: float | None = None


class _FastConnection(msgspec.Struct, gc=False):
    id: int
    transport: Literal["http", "ws"]
    opened_at_ms: float
    handshake_ms: float | None = None
    headers: dict[str, str] = {}
    close: _FastClose | None = None


class _FastRecordedWith(msgspec.Struct, gc=False):
    plugin_version: str = "unknown"
    transport: Literal["http", "ws"] | None = None
    upstream_host: str | None = None
    user_agent: str | None = None


class _FastDocument(msgspec.Struct, gc=False):
    format: str
    version: int
    recorded_at: str
    recorded_with: _FastRecordedWith
    turns: list[_FastTurn]
    connections: list[_FastConnection] = []


_DOCUMENT = msgspec.json.Decoder(_FastDocument)
_VALUE = msgspec.json.Decoder()


class _NotFast(Exception):
    """The fast path cannot vouch for this cassette: decode it with the checking parser."""


def _fast_value(raw: msgspec.Raw | bytes) -> Any:
    """Decode one JSON value of a cassette with the checking parser's limits (nesting depth)."""
    text = bytes(raw)
    if too_deep(text):
        raise _NotFast
    try:
        return _VALUE.decode(text)
    except (msgspec.DecodeError, RecursionError):
        raise _NotFast from None


#: The redaction placeholder as it appears in JSON text, and the start of an escape that could spell
#: it otherwise.
_REDACTED_TEXT = json.dumps(REDACTED, ensure_ascii=False)[1:-1].encode("utf-8")
_LOW_ESCAPE = b"\\u00"


class _ResponseHead(msgspec.Struct, gc=False):
    id: Any = None
    output: msgspec.Raw = msgspec.Raw(b"null")


class _EventHead(msgspec.Struct, gc=False):
    type: str
    response: _ResponseHead | None = None
    #: Only whether it is there matters (see LazyEvents.tags_a_lane).
    stream_id: Any = msgspec.UNSET


class _HeadEvent(msgspec.Struct, gc=False):
    data: _EventHead


class _HeadTurn(msgspec.Struct, gc=False):
    events: list[_HeadEvent]


class _HeadDocument(msgspec.Struct, gc=False):
    turns: list[_HeadTurn]


# The second pass: every event's data is an object with a string ``type`` (checked for every event at
# load, as the checking parser does), and what indexing needs of it, read without building the rest.
_HEADS = msgspec.json.Decoder(_HeadDocument)


def _decode_fast(text: str | bytes, source: Path | str) -> Cassette | None:
    """The cassette, or None when the checking parser must decide."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    # One search of the file spares matching a search of every turn.
    redaction_free = _REDACTED_TEXT not in data and _LOW_ESCAPE not in data
    try:
        document = _DOCUMENT.decode(data)
        if document.format != CASSETTE_FORMAT or not 1 <= document.version <= CASSETTE_VERSION:
            return None
        heads = _HEADS.decode(data).turns
        if len(heads) != len(document.turns):
            return None
        turns = tuple(
            _fast_turn(turn, head.events, source, f"/turns/{i}", redaction_free)
            for i, (turn, head) in enumerate(zip(document.turns, heads, strict=True))
        )
        connections = tuple(_fast_connection(c) for c in document.connections)
    except (msgspec.DecodeError, RecursionError, _NotFast):
        return None
    with_ = document.recorded_with
    return Cassette(
        turns=turns,
        recorded_with=RecordedWith(
            with_.plugin_version, with_.transport, with_.upstream_host, with_.user_agent
        ),
        recorded_at=document.recorded_at,
        connections=connections,
        version=document.version,
    )


class _RequestHead(msgspec.Struct, gc=False):
    previous_response_id: str | None = None
    store: Any = None


# What loading checks of a request (an object, its parent id a string or null); the rest of it
# is decoded when first used (see FileTurn).
_REQUEST_HEAD = msgspec.json.Decoder(_RequestHead)


def _fast_turn(
    turn: _FastTurn, heads: list[_HeadEvent], source: Path | str, pointer: str, redaction_free: bool
) -> Turn:
    request = _REQUEST_HEAD.decode(turn.request)  # a DecodeError: the checking parser says what is wrong
    body = None if turn.body is None else _fast_value(turn.body)
    if body is not None and not isinstance(body, dict):
        raise _NotFast
    headers = turn.headers or {}
    if any(not _HEADER_NAME.fullmatch(k) or not _HEADER_VALUE.fullmatch(v) for k, v in headers.items()):
        raise _NotFast
    if len(heads) != len(turn.events):
        raise _NotFast
    return FileTurn(
        raw_request=(turn.request, source, pointer),
        unstored=request.store is False,
        events=LazyEvents(turn.events, [head.data for head in heads], source, pointer) if heads else (),
        transport=turn.transport,
        connection=turn.connection,
        lane=turn.lane,
        outcome=turn.outcome,
        status=turn.status,
        body=body,
        started_at_ms=turn.started_at_ms,
        headers=headers,
        steers=tuple(_fast_steer(steer, len(turn.events)) for steer in turn.steers),
        redaction_free=redaction_free,
    )


def _fast_steer(steer: _FastSteer, events: int) -> RecordedSteer:
    request = _fast_value(steer.request)
    if not 0 <= steer.after_event <= events or not isinstance(request, dict):
        raise _NotFast
    if request.get("type") != "response.steer":
        raise _NotFast
    return RecordedSteer(steer.after_event, steer.offset_ms, request)


def _fast_connection(connection: _FastConnection) -> ConnectionRecord:
    close = connection.close
    return ConnectionRecord(
        id=connection.id,
        transport=connection.transport,
        opened_at_ms=connection.opened_at_ms,
        handshake_ms=connection.handshake_ms,
        headers=connection.headers,
        close=None if close is None else ConnectionClose(close.code, close.reason, close.by, close.at_ms),
    )


class FileTurn(Turn):
    """A turn read from a file, its request decoded when first used.

    An index digests the turns a test reaches (see ``TurnIndex.build``), so a long cassette's
    other requests are never built. Loading checked that the request is an object with a
    string or null ``previous_response_id``; anything else the checking parser refuses in it
    raises its :class:`CassetteFormatError`, with its pointer, when the request is first used.
    Equal to a :class:`Turn` with the same fields.
    """

    def __init__(
        self,
        *args: Any,
        raw_request: tuple[msgspec.Raw, Path | str, str] | None = None,
        unstored: bool = False,
        **fields: Any,
    ) -> None:
        """``raw_request``: the request's JSON, the file and the turn's pointer, and ``unstored``
        its ``store: false``; without them, the arguments of a :class:`Turn` (as
        ``dataclasses.replace`` passes them)."""
        if raw_request is None:
            super().__init__(*args, **fields)
            return
        super().__init__({}, *args, **fields)
        # The dataclass set a placeholder; the property below stands in for it until first used.
        del self.__dict__["request"]
        self.__dict__["_raw_request"] = raw_request
        self.__dict__["_unstored"] = unstored

    @property
    def unstored(self) -> bool:
        if "_raw_request" in self.__dict__:  # not decoded yet: loading read it
            return bool(self.__dict__["_unstored"])
        return super().unstored

    @functools.cached_property
    def request(self) -> dict[str, Any]:  # the field, read when first used
        source_of = self.__dict__.get("_raw_request")  # kept until decoded: a retry fails alike
        if source_of is None:  # another thread decoded it meanwhile
            return self.__dict__["request"]  # type: ignore[no-any-return]
        raw, source, pointer = source_of
        where = f"{pointer}/request"
        request = _Reader(source).obj(_object_when_used(raw, source, where), where)
        self.__dict__.pop("_raw_request", None)
        return request

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Turn):
            return all(getattr(self, f.name) == getattr(other, f.name) for f in _COMPARED_FIELDS)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_COMPARED_FIELDS = tuple(f for f in dataclasses.fields(Turn) if f.compare)


class LazyEvents(EventLog):
    """A turn's recorded events, each decoded from the cassette's JSON when first used.

    A test plays a few turns of a cassette; decoding only those keeps a large cassette's load
    proportional to what is replayed. The layout, the offsets and each event's ``type`` were checked
    when the cassette was read, and the heads read then (type, the response's id and raw output)
    answer :class:`EventLog`'s questions without decoding. The rest of an event is checked when it is
    decoded: a value the checking parser refuses (nested too deeply, say) raises the
    :class:`CassetteFormatError` it would have raised at load, with its pointer. Decoded events are
    kept, so each is decoded once (a race decodes it twice, to equal values).
    """

    __slots__ = ("_decoded", "_heads", "_pointer", "_raw", "_source")

    def __init__(
        self, raw: list[_FastEvent], heads: list[_EventHead], source: Path | str, turn_pointer: str
    ) -> None:
        self._raw = raw
        self._heads = heads
        self._decoded: list[RecordedEvent | None] = [None] * len(raw)
        self._source = source
        self._pointer = turn_pointer

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> RecordedEvent: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[RecordedEvent, ...]: ...

    def __getitem__(self, index: int | slice) -> RecordedEvent | tuple[RecordedEvent, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self._raw))))
        event = self._decoded[index]
        if event is None:
            position = index % len(self._raw) if -len(self._raw) <= index < len(self._raw) else index
            event = self._decoded[index] = self._decode(position)
        return event

    def __iter__(self) -> Iterator[RecordedEvent]:
        return (self[i] for i in range(len(self._raw)))

    def __repr__(self) -> str:
        return f"LazyEvents({len(self._raw)} events of {self._pointer})"

    def event_type(self, index: int) -> str:
        return self._heads[index].type

    def first_response_id(self) -> str | None:
        for head in self._heads:
            if head.response is not None and isinstance(head.response.id, str):
                return head.response.id
        return None

    def final_output(self) -> list[Any] | None:
        for index in range(len(self._heads) - 1, -1, -1):
            head = self._heads[index]
            if head.type == "error":
                return None
            if head.type in RESPONSE_TERMINALS and head.response is not None:
                try:
                    output = _fast_value(head.response.output)
                except _NotFast:  # decoding the whole event names the problem (or gives the value)
                    output = self[index].data["response"].get("output")
                return output if isinstance(output, list) else []
        return None

    def offsets_ms(self) -> list[float]:
        return [raw.offset_ms for raw in self._raw]

    def tags_a_lane(self) -> bool:
        return any(head.stream_id is not msgspec.UNSET for head in self._heads)

    def compact_texts(self) -> tuple[str, ...]:
        texts = []
        for index, raw in enumerate(self._raw):
            if self._decoded[index] is None:
                self[index]  # checked as a use would check it (and kept: it is being played)
            texts.append(msgspec.json.format(raw.data, indent=-1).decode("utf-8"))
        return tuple(texts)

    def _decode(self, index: int) -> RecordedEvent:
        raw = self._raw[index]
        pointer = f"{self._pointer}/events/{index}"
        data = _object_when_used(raw.data, self._source, f"{pointer}/data")
        if type(data) is dict:
            return RecordedEvent(raw.offset_ms, data)
        return _decode_event(_Reader(self._source), {"offset_ms": raw.offset_ms, "data": data}, pointer)


def _object_when_used(raw: msgspec.Raw, source: Path | str, pointer: str) -> Any:
    """A value of a cassette left undecoded at load: a dict on the fast path, else what the
    checking parser makes of it (its error names ``pointer`` and the place inside)."""
    with contextlib.suppress(_NotFast):
        value = _fast_value(raw)
        if type(value) is dict:
            return value
    try:
        return parse_json(bytes(raw))
    except JsonTextError as exc:
        _Reader(source).fail(f"{pointer}{exc.pointer}", exc.problem)
