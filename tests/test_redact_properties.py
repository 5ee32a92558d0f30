"""Hypothesis properties of redaction on real recorded traffic.

Real cassettes (pydantic-ai's recordings of the live API, decoded with the project's vcrpy
importer, and its WebSocket frame cassettes) go through the recorder as if they had just been
recorded, with headers, a query string, a lane and a close reason drawn by Hypothesis:

- with only harmless values around (cookies and credential-named headers holding words the
  cassette itself uses, ordinary user agents), scrubbing is the identity: no key, event type,
  id or text changes;
- a secret planted in any position a request can carry one never survives, anywhere in the
  written cassette or in a miss report, the protocol structure is unchanged, and the
  recording still matches the request as sent, with the secret or with another value in its
  place (a CI run has other keys).
"""

from __future__ import annotations

import dataclasses
import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.codec import encode_cassette
from pytest_responses_ws.cassette.model import Cassette, RecordedEvent, RecordedWith, Turn
from pytest_responses_ws.cassette.redact import Redactor, redact_request, shaped_secrets, token_parts
from pytest_responses_ws.core.explain import explain_miss
from pytest_responses_ws.core.match import TurnIndex
from pytest_responses_ws.core.record import SessionRecorder

from support.recordings import real_cassettes

CASSETTES = {name: list(cassette.turns) for name, cassette in real_cassettes().items()}


def test_the_real_cassettes_are_all_there() -> None:
    assert len(CASSETTES) == 10
    assert all(CASSETTES.values())
    assert {t.transport for turns in CASSETTES.values() for t in turns} == {"http", "ws"}


# -- running turns through the recorder ----------------------------------------------------------


@dataclasses.dataclass
class Session:
    """What a client brought along besides its requests."""

    headers: dict[str, str]
    query: str = ""
    lane: str | None = None
    close_reason: str = ""


def _with_lane(data: dict[str, Any], lane: str | None) -> dict[str, Any]:
    return data if lane is None else {**data, "stream_id": lane}


def record(turns: list[Turn], session: Session) -> tuple[SessionRecorder, Cassette]:
    """Feed ``turns`` to a recorder as the server would, and build the cassette it writes."""
    recorder = SessionRecorder(0, Redactor())
    recorder.redactor.learn_query(session.query)  # the server does this for every request
    transport = turns[0].transport
    connection = recorder.open_connection(transport, session.headers, 0)
    for turn in turns:
        lane = session.lane if transport == "ws" else None
        request = _with_lane(turn.request, lane)
        pending = recorder.start_turn(connection, request, 1, transport=transport, lane=lane)
        if turn.body is not None:
            recorder.discard(pending)
            recorder.store(pending, outcome=turn.outcome, status=turn.status, body=turn.body)
            continue
        for event in turn.events:
            if transport == "ws":
                recorder.on_event(connection, _with_lane(event.data, lane), 2)
            else:
                recorder.on_http_event(pending, event.data, 2)
    recorder.close_connection(connection, 1000, session.close_reason, "client", 3)
    recorder.scrub_all()
    cassette = Cassette(
        turns=tuple(recorder.turns),
        recorded_with=RecordedWith("test", transport, "api.openai.com", recorder.user_agent),
        recorded_at="2026-01-01T00:00:00+00:00",
        connections=recorder.connections(),
    )
    return recorder, cassette


# -- strategies ------------------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits


@st.composite
def tokens(draw: st.DrawFn) -> str:
    """A generated-looking secret: 20 to 40 characters mixing cases and digits."""
    body = draw(st.text(_ALNUM, min_size=17, max_size=37))
    return (
        draw(st.sampled_from("ABCXYZ"))
        + draw(st.sampled_from("abcxyz"))
        + body
        + draw(st.sampled_from("0123456789"))
    )


def _vocabulary(turns: list[Turn]) -> list[str]:
    """The cassette's own words (keys, event types, short strings) that are not secrets."""
    words: set[str] = {"completed", "response", "response.completed", "output_text", "delta", "message"}

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    for turn in turns:
        for text in [*walk(turn.request), *(s for e in turn.events for s in walk(e.data)), *walk(turn.body)]:
            if 3 <= len(text) <= 40 and " " not in text and ";" not in text and "," not in text:
                words.add(text)
    return sorted(w for w in words if not token_parts(w) and not shaped_secrets(w))


_USER_AGENTS = [
    "OpenAI/Python 2.8.1",
    "AsyncOpenAI/Python 2.8.1",
    "python-httpx/0.28.1",
    "Python/3.12 websockets/15.0.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "agents/0.3.2 (x86_64-linux-gnu; CPython 3.11.7)",
]


@st.composite
def harmless_sessions(draw: st.DrawFn, turns: list[Turn]) -> Session:
    """Headers, query, lane and close reason with real credentials absent from the cassette,
    and words the cassette itself uses in the places that only *might* hold a secret."""
    word = st.sampled_from(_vocabulary(turns))
    cookies = draw(
        st.lists(st.tuples(st.sampled_from(["onboarding", "theme", "lang", "ab"]), word), max_size=3)
    )
    headers = {
        "authorization": "Bearer sk-proj-" + draw(tokens()),
        "openai-organization": "org-" + draw(tokens()),
        "cookie": "; ".join(f"{name}={value}" for name, value in cookies) or "onboarding=completed",
        "x-session-kind": draw(word),
        "x-auth-mode": draw(word),
        "x-token-type": draw(word),
        "user-agent": draw(st.sampled_from(_USER_AGENTS)),
    }
    return Session(
        headers=headers,
        query=f"api-version=2025-04-01-preview&mode={draw(word)}",
        lane=draw(st.none() | st.sampled_from(["planner", "worker-1", "agent:research"])),
        close_reason=draw(st.sampled_from(["", "bye", "going away", "the test has finished"])),
    )


_FAST = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the identity ------------------------------------------------------------------------------------


@_FAST
@given(st.data())
def test_scrubbing_a_cassette_without_secrets_is_the_identity(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(CASSETTES)))
    turns = CASSETTES[name]
    session = data.draw(harmless_sessions(turns))
    recorder, _ = record(turns, session)
    assert len(recorder.turns) == len(turns)
    for original, scrubbed in zip(turns, recorder.turns, strict=True):
        assert scrubbed.request == _with_lane(redact_request(original.request), scrubbed.lane)
        assert [e.data for e in scrubbed.events] == [
            _with_lane(e.data, scrubbed.lane) for e in original.events
        ]
        assert scrubbed.body == original.body
        assert scrubbed.lane == (session.lane if original.transport == "ws" else None)
    (connection,) = recorder.connections()
    assert connection.close is not None and connection.close.reason == session.close_reason
    assert connection.headers["user-agent"] == session.headers["user-agent"]
    assert recorder.user_agent == session.headers["user-agent"]


def test_the_reported_corruptions_are_gone() -> None:
    # ``onboarding=completed`` renamed every response.completed; ``X-Session-Kind: response``
    # renamed every event's ``response`` key.
    turns = CASSETTES["test_openai_responses_stream.yaml"]
    session = Session({"cookie": "onboarding=completed", "x-session-kind": "response"})
    recorder, cassette = record(turns, session)
    assert [[e.data for e in t.events] for t in recorder.turns] == [[e.data for e in t.events] for t in turns]
    assert "response.[redacted]" not in encode_cassette(cassette)
    assert cassette.connections[0].headers["x-session-kind"] == "[redacted]"


# -- planted secrets ---------------------------------------------------------------------------------

#: Where a client can carry a credential (besides the body, where each is echoed too).
POSITIONS = (
    "authorization",
    "api-key",
    "x-api-key",
    "openai-organization",
    "openai-project",
    "cookie",
    "x-client-credential",
    "x-id-jwt",
    "x-saml-assertion",
    "x-request-signature",
    "x-auth-token",
    "query api-key",
    "query key",
    "user-agent",
    "mcp authorization",
    "mcp headers",
    "mcp server_url",
    "stream_id",
    "close reason",
    "prompt only",
)
#: Prefixes of credentials that are recognized by their shape alone.
SHAPED_PREFIXES = ("sk-proj-", "sk-", "sess-", "org-", "proj_", "ghp_", "github_pat_", "xoxb-1234-")
#: Where the secret is echoed in the request body.
ECHOES = ("metadata", "prompt", "instructions")


def _plant_in_text(request: dict[str, Any], text: str) -> dict[str, Any]:
    """``request`` with ``text`` appended to its first user text (or as its input)."""
    value = request.get("input")
    if isinstance(value, str) or not value:
        return {**request, "input": f"{value or ''} {text}"}
    items = [dict(item) if isinstance(item, dict) else item for item in value]
    for item in items:
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                item["content"] = f"{content} {text}"
                return {**request, "input": items}
            if isinstance(content, list) and content and isinstance(content[0], dict):
                item["content"] = [
                    {**content[0], "text": f"{content[0].get('text', '')} {text}"},
                    *content[1:],
                ]
                return {**request, "input": items}
    return {**request, "input": [{"role": "user", "content": text}, *items]}


def _plant(turns: list[Turn], position: str, secret: str, echo: str) -> tuple[list[Turn], Session]:
    """The turns and session with ``secret`` in ``position`` and echoed in the body (and events)."""
    headers = {
        "authorization": "Bearer sk-proj-" + "Q" * 8 + "0123456789abcdefXYZ",
        "user-agent": "OpenAI/Python 2.8.1",
    }
    session = Session(headers)
    tool: dict[str, Any] | None = None
    if position == "authorization":
        headers["authorization"] = f"Bearer {secret}"
    elif position.startswith(("api-key", "x-", "openai-")):
        headers[position] = secret
    elif position == "cookie":
        headers["cookie"] = f"theme=dark; __Secure-session={secret}; onboarding=completed"
    elif position == "user-agent":
        headers["user-agent"] = f"my-agent/1.0 (+{secret}) OpenAI/Python 2.8.1"
    elif position.startswith("query"):
        session.query = f"api-version=2025-04-01-preview&{position.split()[1]}={secret}"
    elif position == "mcp authorization":
        tool = {
            "type": "mcp",
            "server_label": "docs",
            "server_url": "https://mcp.example/sse",
            "authorization": secret,
        }
    elif position == "mcp headers":
        tool = {
            "type": "mcp",
            "server_label": "docs",
            "server_url": "https://mcp.example/sse",
            "headers": {"X-Token": secret},
        }
    elif position == "mcp server_url":
        tool = {"type": "mcp", "server_label": "docs", "server_url": f"https://mcp.example/v1/{secret}/sse"}
    elif position == "stream_id":
        session.lane = f"worker-{secret}"
    elif position == "close reason":
        session.close_reason = f"bye {secret}"
    planted = []
    for turn in turns:
        request = dict(turn.request)
        if tool is not None:
            request["tools"] = [*(request.get("tools") or []), tool]
        if echo == "metadata" or position == "prompt only":
            request["metadata"] = {**(request.get("metadata") or {}), "planted": secret}
        if echo == "prompt" or position == "prompt only":
            request = _plant_in_text(request, f"my key is {secret}, keep it safe")
        if echo == "instructions":
            request["instructions"] = f"{request.get('instructions') or ''} Use {secret} when asked.".strip()
        # The upstream echoes the request's settings (metadata, tools, instructions) in its answer.
        events = tuple(RecordedEvent(e.offset_ms, _echo(e.data, request)) for e in turn.events)
        body = None if turn.body is None else _echo_response(turn.body, request)
        planted.append(dataclasses.replace(turn, request=request, events=events, body=body))
    return planted, session


def _echo_response(response: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    return {**response, **{k: request[k] for k in ("metadata", "tools", "instructions") if k in request}}


def _echo(event: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    response = event.get("response")
    return {**event, "response": _echo_response(response, request)} if isinstance(response, dict) else event


@st.composite
def planted_secrets(draw: st.DrawFn) -> tuple[str, str, str]:
    position = draw(st.sampled_from(POSITIONS))
    secret = draw(tokens())
    if position == "prompt only":
        # Learned from nowhere: only a credential's shape gives it away.
        prefix = draw(st.sampled_from(SHAPED_PREFIXES))
        secret = prefix + secret
    elif position == "openai-organization":
        secret = "org-" + secret
    elif position == "openai-project":
        secret = "proj_" + secret
    return position, secret, draw(st.sampled_from(ECHOES))


def _pieces(secret: str) -> list[str]:
    """Every 8-character piece of the secret but those that are its shape's prefix."""
    pieces = {secret[i : i + 8] for i in range(len(secret) - 7)}
    return sorted(p for p in pieces if not any(prefix.startswith(p) for prefix in SHAPED_PREFIXES))


def _structure(value: Any, key: str | None = None) -> Any:
    """Keys, types, ids and numbers of a JSON value; free text is left out."""
    if isinstance(value, dict):
        return {k: _structure(v, k) for k, v in value.items() if k != "metadata"}
    if isinstance(value, list):
        return [_structure(v, key) for v in value]
    if isinstance(value, str):
        protocol = key in ("type", "id", "object", "status", "role") or (
            key is not None and key.endswith("_id") and key != "stream_id"
        )
        return value if protocol else "*"
    return value


@_FAST
@given(st.data(), planted_secrets())
def test_a_planted_secret_never_survives_and_the_recording_still_matches(
    data: st.DataObject, planted: tuple[str, str, str]
) -> None:
    position, secret, echo = planted
    names = sorted(n for n, t in CASSETTES.items() if position != "stream_id" or t[0].transport == "ws")
    turns, session = _plant(CASSETTES[data.draw(st.sampled_from(names))], position, secret, echo)
    recorder, cassette = record(turns, session)

    text = encode_cassette(cassette)
    assert [p for p in _pieces(secret) if p in text] == []
    # Only text changed: keys, event types, ids and numbers are as the upstream sent them.
    for original, scrubbed in zip(turns, recorder.turns, strict=True):
        assert _structure(scrubbed.request) == _structure(
            _with_lane(redact_request(original.request), scrubbed.lane)
        )
        assert [_structure(e.data) for e in scrubbed.events] == [
            _structure(_with_lane(e.data, session.lane if original.transport == "ws" else None))
            for e in original.events
        ]

    # Replay: the request as sent matches its recording, and so does one with another
    # secret in its place (CI runs with other keys).
    other = turns_with_secret(turns, secret, "Zz9" + secret[3:][::-1])
    for requests in (turns, other):
        index = TurnIndex.build(recorder.turns)
        for position_in_cassette, turn in enumerate(requests):
            result = index.lookup(turn.request)
            assert result.turn == position_in_cassette, result.reason

    # A miss report shows the request, and never the secret.
    index = TurnIndex.build(recorder.turns)
    missed = {**turns[0].request, "model": "another-model"}
    redactor = Redactor()
    redactor.learn(session.headers)
    redactor.learn_query(session.query)
    report = explain_miss(
        index,
        missed,
        index.lookup(missed),
        where="request 1",
        cassette="c.json",
        record_hint="",
        redactor=redactor,
    )
    assert "another-model" in report
    assert [p for p in _pieces(secret) if p in report] == []


def turns_with_secret(turns: list[Turn], secret: str, replacement: str) -> list[Turn]:
    """The turns with every occurrence of ``secret`` in their requests replaced."""
    return [
        dataclasses.replace(turn, request=json.loads(json.dumps(turn.request).replace(secret, replacement)))
        for turn in turns
    ]


@pytest.mark.parametrize("name", sorted(CASSETTES))
def test_a_cassette_without_redactions_adds_nothing_to_matching(name: str) -> None:
    recorder, _ = record(
        CASSETTES[name], Session({"authorization": "Bearer sk-" + "proj-abcDEF0123456789xyzXYZ"})
    )
    index = TurnIndex.build(recorder.turns)
    # No templates: the turn path does no placeholder work at all.
    assert not index.placeholder_params and not index.placeholder_items
    for position, turn in enumerate(CASSETTES[name]):
        assert index.lookup(turn.request).turn == position
