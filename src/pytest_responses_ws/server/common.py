"""Pieces both sides of the loopback server use: headers, error bodies, failure kinds."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..core.replay import error_body as error_body  # built in core: the turn engine answers errors
from ..errors import RecordingError, RwsError
from .runner import Scope

#: Error code of the answer a client gets when the upstream stopped answering while recording.
UPSTREAM_TIMEOUT_ERROR_CODE = "rws_upstream_timeout"


class ProtocolViolation(RwsError, AssertionError):
    """The client sent something the Responses API does not allow."""


class ServerError(RwsError, AssertionError):
    """The loopback server failed on a request (a bug to report, with the request)."""


#: Upstream statuses that mean the credentials were refused: nothing worth recording.
AUTH_FAILURE_STATUSES = frozenset({401, 403})


def auth_failure(status: int, where: str, path: Path) -> RecordingError:
    """The failure of a recording the upstream refused (its message may quote the key: left out)."""
    return RecordingError(
        f"recording failed: the upstream refused the credentials of {where} (HTTP {status}). "
        f"Nothing was written; {path} is unchanged. Check the API key the test's client sends "
        "(OPENAI_API_KEY) and record again."
    )


def scope_headers(scope: Scope) -> dict[str, str]:
    """An ASGI scope's headers, names lower-cased."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])
    }


def shown_url(url: str) -> str:
    """A URL for messages: no credentials, no query string (Azure puts api-key there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
