"""Pieces both sides of the loopback server use: headers, error bodies, failure kinds."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import RwsError
from .runner import Scope

#: Error code of the answer a client gets when the upstream stopped answering while recording.
UPSTREAM_TIMEOUT_ERROR_CODE = "rws_upstream_timeout"


class ProtocolViolation(RwsError, AssertionError):
    """The client sent something the Responses API does not allow."""


class ServerError(RwsError, AssertionError):
    """The loopback server failed on a request (a bug to report, with the request)."""


def scope_headers(scope: Scope) -> dict[str, str]:
    """An ASGI scope's headers, names lower-cased."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])
    }


def error_body(
    code: str | None, message: str, error_type: str = "invalid_request_error", param: str | None = None
) -> dict[str, Any]:
    """A JSON error body in the Responses API's shape."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def shown_url(url: str) -> str:
    """A URL for messages: no credentials, no query string (Azure puts api-key there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
