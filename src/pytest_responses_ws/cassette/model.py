"""The cassette model: what one recorded test session holds.

A cassette stores *turns*, not transport frames: the request as sent (redacted),
the server events with their time offsets, and where the turn ran (transport,
connection, lane). One recording therefore serves both transports.
Times are milliseconds from the start of the recording (connections) or from the
moment the request was complete (events), kept as floats with microsecond precision.
"""

from __future__ import annotations

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
    events: tuple[RecordedEvent, ...]
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

    @property
    def response_id(self) -> str | None:
        """The id of the response this turn created, if one was created."""
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
