"""The cassette model: what one recorded test session holds.

A cassette stores *turns*, not transport frames: the request as sent (redacted),
the server events with their time offsets, and where the turn ran (transport,
connection, lane). One recording therefore serves both transports.
Times are milliseconds from the start of the recording (connections) or from the
moment the request was complete (events), kept as floats with microsecond precision.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: The value of a cassette's ``format`` field; anything else is not ours.
CASSETTE_FORMAT = "pytest-responses-ws/cassette"
#: The cassette format version this package writes. Public API: bump with a migration.
CASSETTE_VERSION = 1

Transport = Literal["http", "ws"]
TRANSPORTS: tuple[Transport, ...] = ("http", "ws")

JSON = Any


@dataclass(frozen=True)
class RecordedEvent:
    """One server event, ``offset_ms`` after its request arrived complete."""

    offset_ms: float
    data: dict[str, JSON]

    @property
    def type(self) -> str:
        """The event's ``type`` (``""`` if it has none)."""
        value = self.data.get("type")
        return value if isinstance(value, str) else ""


class EventLog(Sequence[RecordedEvent]):
    """A turn's events as read from a file, decoded one at a time when first used.

    It also answers what indexing a cassette asks of every turn without decoding its events:
    an event's type, the first response id named, and the output of the final response.
    Equal to any sequence of the same events, as the tuple it stands for would be.
    """

    __slots__ = ()

    @abstractmethod
    def event_type(self, index: int) -> str:
        """The ``type`` of event ``index``."""

    @abstractmethod
    def first_response_id(self) -> str | None:
        """The id of the first ``response`` object an event carries, if any."""

    @abstractmethod
    def final_output(self) -> list[Any] | None:
        """The ``output`` of the final response (the last terminal event's, ``[]`` when it has
        none), or None when an ``error`` event ends the turn or no response ended it."""

    @abstractmethod
    def offsets_ms(self) -> list[float]:
        """Every event's ``offset_ms``."""

    @abstractmethod
    def tags_a_lane(self) -> bool:
        """Whether any event carries a ``stream_id`` (the lane it was sent on)."""

    @abstractmethod
    def compact_texts(self) -> tuple[str, ...]:
        """Each event's ``data`` as compact JSON: the recorded text with its spaces taken out.

        For a file this plugin wrote that is exactly the compact encoding of the decoded event (a
        hand-edited file keeps its own escapes and number spellings). Replay sends these as they
        are, so a turn played unchanged is not encoded again. An event the checking parser
        refuses raises as decoding it would.
        """

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ConnectionClose:
    """How a connection ended."""

    code: int | None
    reason: str = ""
    by: Literal["client", "server", "upstream", "test-end"] = "client"
    at_ms: float | None = None


@dataclass(frozen=True)
class ConnectionRecord:
    """One client connection to the (recording) server."""

    id: int
    transport: Transport
    opened_at_ms: float
    handshake_ms: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    close: ConnectionClose | None = None


@dataclass(frozen=True)
class RecordedSteer:
    """A ``response.steer`` the client sent while a turn's response was streaming.

    ``after_event`` events of the turn had arrived when it was sent, ``offset_ms`` after
    the turn's request. The events that answer it (``response.steer.accepted``, the
    steered ``response.incomplete``, the successor's events) are in the turn's events.
    """

    after_event: int
    offset_ms: float
    #: The client event as sent (``type``, ``previous_response_id``, ``input``), redacted.
    request: dict[str, JSON]


@dataclass(frozen=True)
class Turn:
    """One request and everything the server answered to it."""

    request: dict[str, JSON]
    #: A tuple, or (read from a file) a sequence that decodes each event when first used.
    events: Sequence[RecordedEvent]
    transport: Transport = "ws"
    connection: int = 0
    lane: str | None = None
    #: ``completed``, ``failed``, ``incomplete``, ``error`` or ``http_error``.
    outcome: str = "completed"
    #: HTTP status of the answer; 200 for a stream, the error status otherwise.
    status: int = 200
    #: For a non-streamed HTTP answer (JSON body) the body; events are then empty.
    body: dict[str, JSON] | None = None
    #: When the request arrived, in ms since the recording started.
    started_at_ms: float = 0.0
    #: Headers of an HTTP error answer that clients act on (``retry-after`` and the like),
    #: names in lower case; empty for every other turn. See ``core.record.KEPT_RESPONSE_HEADERS``.
    headers: dict[str, str] = field(default_factory=dict)
    #: Steers the client sent while this turn streamed (WebSocket only), in order.
    steers: tuple[RecordedSteer, ...] = ()
    #: True when the turn is known to hold no redaction placeholder (set by the decoder when the file
    #: holds none): matching then skips its search of the turn. Not part of the recording.
    redaction_free: bool = field(default=False, compare=False, repr=False)

    @property
    def unstored(self) -> bool:
        """Whether the request asked the service not to store its response (``store: false``)."""
        return self.request.get("store") is False

    @functools.cached_property
    def response_id(self) -> str | None:
        """The id of the response this turn created, if one was created (read once: turns are frozen)."""
        if isinstance(self.events, EventLog):
            found = self.events.first_response_id()
            if found is not None:
                return found
        else:
            for event in self.events:
                response = event.data.get("response")
                if isinstance(response, dict) and isinstance(response.get("id"), str):
                    return str(response["id"])
        if self.body is not None and isinstance(self.body.get("id"), str):
            return str(self.body["id"])
        return None


@dataclass(frozen=True)
class RecordedWith:
    """What produced a cassette (informational; never used for matching)."""

    plugin_version: str
    transport: Transport | None = None
    upstream_host: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Cassette:
    """A recorded session: turns in the order their requests arrived."""

    turns: tuple[Turn, ...]
    recorded_with: RecordedWith
    recorded_at: str
    connections: tuple[ConnectionRecord, ...] = ()
    version: int = CASSETTE_VERSION
