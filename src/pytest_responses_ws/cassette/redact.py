"""Keep secrets out of cassettes.

Two layers: headers whose names carry credentials are replaced wholesale, and every
secret value seen in such a header (the key behind ``Bearer``, an org or project id,
cookie values) is scrubbed from every string in the cassette, because upstreams echo
keys back in error messages and users paste them into metadata.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"

#: Header names (lower case) that are always redacted.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "openai-organization",
        "openai-project",
        "cookie",
        "set-cookie",
    }
)
_SECRET_NAME_HINT = re.compile(r"(auth|token|secret|key|cookie|session|password)", re.IGNORECASE)
#: Secrets shorter than this are not scrubbed from free text: too likely to hit ordinary words.
_MIN_SCRUB_LENGTH = 8


def _header_secret_values(name: str, value: str) -> list[str]:
    if name == "authorization" or name == "proxy-authorization":
        scheme, _, credential = value.partition(" ")
        return [credential.strip() or scheme.strip()]
    if name == "set-cookie":
        # Only the cookie's own value is secret; path, domain and expiry attributes are not.
        return [value.split(";", 1)[0].partition("=")[2].strip()]
    if name == "cookie":
        return [part.partition("=")[2].strip() for part in value.split(";")]
    return [value.strip()]


class Redactor:
    """Collects secret values from headers and removes them from anything written."""

    def __init__(self, extra_header_names: Iterable[str] = ()) -> None:
        self._names = SECRET_HEADERS | {name.lower() for name in extra_header_names}
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def is_secret_header(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self._names or bool(_SECRET_NAME_HINT.search(lowered))

    def learn(self, headers: Mapping[str, str]) -> None:
        """Remember the secret values carried by ``headers``."""
        secrets = []
        for name, value in headers.items():
            lowered = name.lower()
            if self.is_secret_header(lowered):
                secrets += _header_secret_values(lowered, value)
        self._add(secrets)

    def _add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if len(s) >= _MIN_SCRUB_LENGTH} - self._values
        if not new:
            return
        self._values |= new
        alternatives = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def learn_tool_credentials(self, request: Mapping[str, Any]) -> None:
        """Remember credentials carried by tool definitions (MCP ``authorization``, ``headers``)."""
        values: list[str] = []
        tools = request.get("tools")
        for tool in tools if isinstance(tools, list) else []:
            if not isinstance(tool, Mapping):
                continue
            if isinstance(tool.get("authorization"), str):
                values.append(tool["authorization"])
            headers = tool.get("headers")
            if isinstance(headers, Mapping):
                values += [v for v in headers.values() if isinstance(v, str)]
        self._add(values)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """A copy of ``headers`` (names lower-cased) with credentials replaced."""
        self.learn(headers)
        return {
            name.lower(): REDACTED if self.is_secret_header(name) else self.scrub_text(value)
            for name, value in headers.items()
        }

    def scrub_text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def scrub(self, value: Any) -> Any:
        """``value`` with every known secret removed from its strings (keys included)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {self.scrub_text(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value


#: Tool fields that carry credentials for servers the model may call (MCP servers, connectors).
TOOL_SECRET_FIELDS = ("authorization", "headers")


def redact_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``request`` without credentials embedded in tool definitions.

    Matching applies the same redaction to incoming requests, so a turn recorded
    with such a credential still matches the request as the client sends it.
    """
    tools = request.get("tools")
    if not isinstance(tools, list) or not any(
        isinstance(tool, dict) and any(k in tool for k in TOOL_SECRET_FIELDS) for tool in tools
    ):
        return dict(request)
    cleaned = []
    for tool in tools:
        if isinstance(tool, dict):
            tool = {k: (REDACTED if k in TOOL_SECRET_FIELDS else v) for k, v in tool.items()}
        cleaned.append(tool)
    return {**request, "tools": cleaned}
