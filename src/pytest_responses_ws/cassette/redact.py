"""Keep secrets out of cassettes, without touching what replay needs.

Which values are secrets is decided by **where they came from** and **what they look
like**, never by searching for every string seen in a header:

- credential positions (the ``Authorization`` credential, ``api-key`` headers and query
  parameters, organization and project headers, headers named in ``filter_headers``,
  MCP ``authorization`` and credential-named MCP ``headers``) hold secrets whatever they
  look like, if they are long enough to find again (8 characters);
- weaker positions (cookie values, headers whose *name* hints at a credential, other
  query parameters, the user agent, MCP ``server_url`` paths, lane names, close
  reasons) hold a secret only where a part of them looks like a token
  (:func:`looks_like_token`);
- anywhere in free text, values with a known credential prefix (``sk-``, ``sess-``,
  ``org-``, ``proj_``, ``ghp_``, a JWT, ``Bearer <token>`` ...) are secrets.

Learned secrets are then removed from every string of the cassette, **except** where
the protocol needs the value as it is: object keys (but those of ``metadata`` and prompt
``variables``, which are the user's), event ``type``\\ s, ids (``id`` and every ``*_id``
but ``stream_id``), ``status``, ``role``, ``sequence_number``, ``encrypted_content``.
Lane names (``stream_id``) are scrubbed with the weak-position rules: replay re-tags
events with the lane of the incoming request, so a redacted lane still plays.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

REDACTED = "[redacted]"

#: Header names (lower case) that are always redacted, and whose values are secrets.
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
#: Header (and query parameter) names that hint at a credential: the value is redacted wholesale.
_SECRET_NAME_HINT = re.compile(
    r"(auth|token|secret|key|cookie|session|password|passwd|credential|jwt|assertion|signature|sig\b)",
    re.IGNORECASE,
)
#: Query parameters that carry a credential (Azure's ``api-key``, ``?key=``, ``?access_token=`` ...).
_CREDENTIAL_QUERY = re.compile(r"(^|[-_])(api[-_]?key|key|access[-_]?token|token|secret|password|sig)$", re.I)

#: Secrets shorter than this are not scrubbed from free text: too likely to hit ordinary words.
MIN_SECRET_LENGTH = 8
#: A token-looking part of a weak position is at least this long.
MIN_TOKEN_LENGTH = 16

#: Values of these keys are protocol structure: never rewritten.
_PROTECTED_KEYS = frozenset(
    {
        "type",
        "object",
        "id",
        "status",
        "role",
        "sequence_number",
        "output_index",
        "content_index",
        "summary_index",
        "encrypted_content",
    }
)
#: Maps whose keys are the user's data, not the protocol's.
_USER_KEYED_MAPS = frozenset({"metadata", "variables"})
#: Keys whose values are names chosen by the client for routing (replay re-tags them).
_LANE_KEYS = frozenset({"stream_id"})

#: Credentials with a recognizable shape, found anywhere in free text. Generic prefixes
#: need a digit in the tail, so a word like ``sk-learn-documentation`` stays.
_DIGIT_AHEAD = r"(?=[A-Za-z_-]*[0-9])"
_SHAPED_SECRET = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    rf"(?:sk|rk|pk)-(?:proj-|svcacct-|admin-)?{_DIGIT_AHEAD}[A-Za-z0-9_-]{{16,}}"
    # OpenAI session, organization and project ids: an alphanumeric tail, no dashes.
    rf"|(?:sess-|org-|proj_){_DIGIT_AHEAD}[A-Za-z0-9]{{16,}}"
    r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_-]{30,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r")"
    # What follows "Bearer " is a credential if it has a digit ("Bearer authentication" is prose).
    r"|(?<=Bearer )(?=[^\s\"'<>]*[0-9])[^\s\"'<>]{8,}",
)
#: What separates the parts of a weak position (a user agent, a URL, a cookie string).
_PART_SEPARATORS = re.compile(r"[\s;,()<>\"'\[\]{}/=&?:@|\\]+")
_PIECE_SEPARATORS = re.compile(r"[-_.]+")
_EDGE_PUNCTUATION = "+-_.~!*#$%^"
_HEX = re.compile(r"[0-9a-fA-F-]+")


def looks_like_token(part: str) -> bool:
    """Whether ``part`` (no separators inside) looks like a generated credential.

    A known credential prefix, or at least 16 characters mixing upper case, lower case
    and digits (base62/base64 keys), or hex with both digits and letters (hex keys,
    UUIDs). Versions, platform names and words (``x86_64-linux-gnu``,
    ``AppleWeb/537.36`` split at ``/``, ``completed``) are not tokens.
    """
    if _SHAPED_SECRET.fullmatch(part):
        return True
    if len(part) < MIN_TOKEN_LENGTH:
        return False
    has_digit = any(c.isdigit() for c in part)
    has_alpha = any(c.isalpha() for c in part)
    if _HEX.fullmatch(part):
        return has_digit and has_alpha and sum(c != "-" for c in part) >= MIN_TOKEN_LENGTH
    return has_digit and any(c.isupper() for c in part) and any(c.islower() for c in part)


def token_parts(text: str) -> list[str]:
    """The parts of ``text`` that look like tokens (see :func:`looks_like_token`).

    A part joined to words by ``-``, ``_`` or ``.`` (``worker-<token>``) yields both the
    whole part and the token inside it, so the token is found where it appears alone.
    """
    found = []
    for part in _PART_SEPARATORS.split(text):
        part = part.strip(_EDGE_PUNCTUATION)
        if not part or not looks_like_token(part):
            continue
        found.append(part)
        found += [
            piece for piece in _PIECE_SEPARATORS.split(part) if piece != part and looks_like_token(piece)
        ]
    return found


def shaped_secrets(text: str) -> list[str]:
    """Credentials with a known shape anywhere in ``text`` (``sk-...``, a JWT, ``Bearer x``)."""
    return _SHAPED_SECRET.findall(text)


def _authorization_credential(value: str) -> str:
    scheme, _, credential = value.strip().partition(" ")
    return credential.strip() or scheme.strip()


def _basic_password(value: str) -> str | None:
    """The password of a ``Basic`` credential (base64 of ``user:password``), if it is one."""
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def _cookie_values(header: str, value: str) -> list[str]:
    # Of a set-cookie, only the cookie's own value is secret; path, domain and expiry are not.
    pairs = [value.split(";", 1)[0]] if header == "set-cookie" else value.split(";")
    return [unquote(pair.partition("=")[2].strip().strip('"')) for pair in pairs]


class Redactor:
    """Learns secret values from where requests carry credentials, and removes them."""

    def __init__(self, extra_header_names: Iterable[str] = ()) -> None:
        self._names = SECRET_HEADERS | {name.lower() for name in extra_header_names}
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    @property
    def secrets(self) -> frozenset[str]:
        """Every value learned so far."""
        return frozenset(self._values)

    def is_secret_header(self, name: str) -> bool:
        """Whether a header (or query parameter) of this name is stored as ``[redacted]``."""
        lowered = name.lower()
        return lowered in self._names or bool(_SECRET_NAME_HINT.search(lowered))

    # -- learning -------------------------------------------------------------------

    def _add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH} - self._values
        if not new:
            return
        self._values |= new
        alternatives = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def learn_credential(self, value: str) -> None:
        """``value`` came from a credential position: a secret, whatever it looks like."""
        self._add([value.strip()])

    def learn_weak(self, text: str) -> None:
        """``text`` came from a weak position: its token-looking parts are secrets."""
        self._add(token_parts(text))
        self._add(shaped_secrets(text))

    def learn(self, headers: Mapping[str, str]) -> None:
        """Remember the secret values carried by ``headers``."""
        for name, value in headers.items():
            lowered = name.lower()
            if lowered in ("authorization", "proxy-authorization"):
                credential = _authorization_credential(value)
                self.learn_credential(credential)
                self.learn_weak(credential)  # the parts of a compound credential, too
                password = _basic_password(value)
                if password:
                    self.learn_credential(password)
            elif lowered in ("cookie", "set-cookie"):
                for cookie in _cookie_values(lowered, value):
                    self.learn_weak(cookie)
            elif lowered in self._names:
                self.learn_credential(value)
            else:
                # The user agent, hinted names (x-session-id) and the rest: tokens only.
                self.learn_weak(value)

    def learn_query(self, query: str) -> None:
        """Remember the secrets of a URL query string (``?api-key=...`` for Azure, say)."""
        for name, value in parse_qsl(query, keep_blank_values=False):
            if _CREDENTIAL_QUERY.search(name) or self.is_secret_header(name):
                self.learn_credential(value)
            self.learn_weak(value)

    def learn_url(self, url: str) -> None:
        """Remember the secrets of a URL: its password, token-like path parts, its query."""
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            self.learn_weak(url)
            return
        if password:
            self.learn_credential(unquote(password))
        self.learn_weak(unquote(parts.path))
        self.learn_query(parts.query)

    def learn_request(self, request: Mapping[str, Any]) -> None:
        """Remember credentials a request body carries.

        Tool definitions (MCP ``authorization``, ``headers``, a token in ``server_url``),
        the lane name, and anything in the body with a credential's shape.
        """
        tools = request.get("tools")
        for tool in tools if isinstance(tools, list) else []:
            if not isinstance(tool, Mapping):
                continue
            authorization = tool.get("authorization")
            if isinstance(authorization, str):
                self.learn_credential(_authorization_credential(authorization))
                self.learn_credential(authorization)
            headers = tool.get("headers")
            for name, value in headers.items() if isinstance(headers, Mapping) else ():
                if not isinstance(value, str):
                    continue
                # Headers given to a tool are there to authenticate it: a credential-named
                # one is a secret whatever it looks like.
                if self.is_secret_header(str(name)):
                    self.learn_credential(value)
                    self.learn_credential(_authorization_credential(value))
                self.learn_weak(value)
            for field in ("server_url", "connector_url"):
                if isinstance(tool.get(field), str):
                    self.learn_url(tool[field])
        lane = request.get("stream_id")
        if isinstance(lane, str):
            self.learn_weak(lane)
        self._add(_shaped_in(request))

    # Kept for callers of the earlier API (the vcrpy importer).
    learn_tool_credentials = learn_request

    # -- removing ---------------------------------------------------------------------

    def scrub_text(self, text: str) -> str:
        """``text`` without learned secrets and without shaped credentials."""
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        return _SHAPED_SECRET.sub(REDACTED, text)

    def scrub_loose(self, text: str) -> str:
        """:meth:`scrub_text`, and token-looking parts removed too (weak positions)."""
        text = self.scrub_text(text)
        for part in token_parts(text):
            text = text.replace(part, REDACTED)
        return text

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """A copy of ``headers`` (names lower-cased) with credentials replaced."""
        self.learn(headers)
        return {
            name.lower(): REDACTED if self.is_secret_header(name) else self.scrub_loose(value)
            for name, value in headers.items()
        }

    def scrub(self, value: Any) -> Any:
        """``value`` with every secret removed from its strings, protocol structure untouched.

        Keys stay (except in ``metadata`` and ``variables``), and so do the values of
        ``type``, ``id``, ``*_id``, ``status`` and the other fields replay needs.
        Lane names (``stream_id``) lose their token-looking parts too.
        """
        return self._scrub(value, None)

    def _scrub(self, value: Any, key: str | None) -> Any:
        # Returns ``value`` itself when nothing in it changed: no copies of clean data.
        if isinstance(value, str):
            if key is not None and _is_protected(key):
                return value
            scrubbed = self.scrub_loose(value) if key in _LANE_KEYS else self.scrub_text(value)
            return value if scrubbed == value else scrubbed
        if isinstance(value, dict):
            user_keys = key in _USER_KEYED_MAPS
            changed = False
            out = {}
            for k, v in value.items():
                new_key = self.scrub_text(k) if user_keys else k
                new_value = self._scrub(v, None if user_keys else k)
                changed = changed or new_key != k or new_value is not v
                out[new_key] = new_value
            return out if changed else value
        if isinstance(value, list):
            items = [self._scrub(v, key) for v in value]
            return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        return value


def _is_protected(key: str) -> bool:
    return key in _PROTECTED_KEYS or (key.endswith("_id") and key not in _LANE_KEYS)


def _shaped_in(value: Any) -> list[str]:
    """Every shaped credential in the strings of a JSON value (keys of user maps included)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found += _SHAPED_SECRET.findall(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(k for k in item if isinstance(k, str))
        elif isinstance(item, list):
            stack.extend(item)
    return found


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
