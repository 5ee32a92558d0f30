"""The service's own error answers, built in one place for replay, faults and the engine (sans I/O).

Each :class:`ServiceError` is an error the Responses API itself gives a client (not a
failure of the test): the engine answers with one when replay is as strict as the
service, and fault injection sends one on demand. Over WebSocket it is the wrapped
``error`` event (``{"type": "error", "status": ..., "error": {...}}``); over HTTP it is
the status with the JSON error body. Codes and messages follow the service's (see the
project's protocol notes, "Errors").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .error_events import error_body, error_event

#: ``previous_response_id`` the service cannot resolve (on this connection, for ``store: false``).
NOT_FOUND_CODE = "previous_response_not_found"
#: A WebSocket connection reached the service's age limit.
CONNECTION_LIMIT_CODE = "websocket_connection_limit_reached"
#: A ``stream_id`` that is not a lane name.
INVALID_STREAM_ID_CODE = "invalid_stream_id"
#: More named lanes on one connection than the service allows.
STREAM_LIMIT_CODE = "websocket_stream_limit_reached"
#: The service's limit on one WebSocket connection's age, in seconds.
SERVICE_CONNECTION_MAX_AGE_S = 3600.0
#: Named lanes (``stream_id``) one connection may use.
SERVICE_MAX_LANES = 32
#: Responses one connection may have generating at once; more are queued.
SERVICE_MAX_ACTIVE_RESPONSES = 16


@dataclass(frozen=True)
class ServiceError:
    """One error answer of the service, in both transports' shapes."""

    code: str | None
    message: str
    status: int = 400
    error_type: str = "invalid_request_error"
    param: str | None = None

    def event(self, lane: str | None = None) -> dict[str, Any]:
        """The WebSocket ``error`` event (named lanes echo their ``stream_id``)."""
        return error_event(
            self.code,
            self.message,
            status=self.status,
            lane=lane,
            error_type=self.error_type,
            param=self.param,
        )

    def body(self) -> dict[str, Any]:
        """The HTTP JSON error body."""
        return error_body(self.code, self.message, error_type=self.error_type, param=self.param)


def previous_response_not_found(response_id: str) -> ServiceError:
    """A ``previous_response_id`` the service does not hold (status 400)."""
    return ServiceError(
        NOT_FOUND_CODE,
        f"Previous response with id '{response_id}' not found.",
        param="previous_response_id",
    )


def connection_limit_reached(max_age_s: float = SERVICE_CONNECTION_MAX_AGE_S) -> ServiceError:
    """The WebSocket connection is older than the service allows (status 400)."""
    minutes = max_age_s / 60
    shown = f"{minutes:g} minutes" if max_age_s >= 60 else f"{max_age_s:g} seconds"
    return ServiceError(
        CONNECTION_LIMIT_CODE,
        f"Responses websocket connection limit reached ({shown}). "
        "Create a new websocket connection to continue.",
    )


def invalid_stream_id(value: object) -> ServiceError:
    """A ``stream_id`` that is not 1-256 characters of ``[A-Za-z0-9_.-]`` (status 400)."""
    shown = repr(value) if not isinstance(value, str) or len(value) <= 80 else repr(value[:80] + "…")
    return ServiceError(
        INVALID_STREAM_ID_CODE,
        f"Invalid stream_id {shown}: expected 1 to 256 characters of letters, digits, '_', '.' or '-'.",
        param="stream_id",
    )


def stream_limit_reached(max_lanes: int = SERVICE_MAX_LANES) -> ServiceError:
    """One more named lane than a connection may have (status 400)."""
    return ServiceError(
        STREAM_LIMIT_CODE,
        f"Responses websocket stream limit reached ({max_lanes} streams per connection).",
        param="stream_id",
    )
