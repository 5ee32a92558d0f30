"""Unit tests of ``cassette.redact`` and ``core.record.redact_request``: secrets stay out of cassettes."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.redact import REDACTED, Redactor
from pytest_responses_ws.core.record import SessionRecorder, redact_request

API_KEY = "fake-proj-Abc123Def456Ghi789"
ORG = "org-7RqYbq2Xv0qLmN"
PROJECT = "proj_Q1w2E3r4T5y6"
COOKIE_VALUE = "c00kieSessionValue42"
AZURE_KEY = "0123456789abcdef0123456789abcdef"

_HEADERS = {
    "Authorization": f"Bearer {API_KEY}",
    "OpenAI-Organization": ORG,
    "OpenAI-Project": PROJECT,
    "Cookie": f"__cf_bm={COOKIE_VALUE}; theme=dark",
    "api-key": AZURE_KEY,
    "User-Agent": "OpenAI/Python 3.51.0",
    "Content-Type": "application/json",
}
_SECRETS = (API_KEY, ORG, PROJECT, COOKIE_VALUE, AZURE_KEY)


def _learned() -> Redactor:
    redactor = Redactor()
    redactor.learn(_HEADERS)
    return redactor


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# -- headers ------------------------------------------------------------------------------------------


def test_credential_headers_are_replaced_and_names_lowercased() -> None:
    redacted = Redactor().headers(_HEADERS)
    assert redacted == {
        "authorization": REDACTED,
        "openai-organization": REDACTED,
        "openai-project": REDACTED,
        "cookie": REDACTED,
        "api-key": REDACTED,
        "user-agent": "OpenAI/Python 3.51.0",
        "content-type": "application/json",
    }


@pytest.mark.parametrize(
    "name",
    ["Proxy-Authorization", "X-Api-Key", "Set-Cookie", "X-Auth-Token", "X-Client-Secret", "X-Session-Id"],
)
def test_other_secret_looking_headers_are_replaced(name: str) -> None:
    assert Redactor().headers({name: "whatever-value-123"}) == {name.lower(): REDACTED}


def test_extra_filter_header_names() -> None:
    redactor = Redactor(["X-Tenant", "x-customer-ref"])
    redacted = redactor.headers(
        {"x-tenant": "tenant-0001-abc", "X-Customer-Ref": "ref-99999999", "x-other": "1"}
    )
    assert redacted == {"x-tenant": REDACTED, "x-customer-ref": REDACTED, "x-other": "1"}
    assert redactor.scrub("for tenant-0001-abc and ref-99999999") == f"for {REDACTED} and {REDACTED}"
    assert not Redactor().is_secret_header("x-tenant")


def test_secret_in_a_non_secret_header_value_is_scrubbed() -> None:
    redacted = _learned().headers({"x-debug": f"used {API_KEY}"})
    assert redacted == {"x-debug": f"used {REDACTED}"}


# -- scrubbing free text --------------------------------------------------------------------------------


def test_upstream_error_echoing_the_key_is_scrubbed() -> None:
    event = {
        "type": "error",
        "status": 401,
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "message": f"Incorrect API key provided: {API_KEY}. You can find your API key at ...",
            "param": None,
        },
    }
    scrubbed = _learned().scrub(event)
    assert scrubbed["error"]["message"] == (
        f"Incorrect API key provided: {REDACTED}. You can find your API key at ..."
    )
    assert scrubbed["status"] == 401
    assert scrubbed["error"]["param"] is None


def test_every_learned_secret_is_scrubbed_from_nested_values_and_keys() -> None:
    body = {
        "metadata": {"org": ORG, "project": f"project={PROJECT}", AZURE_KEY: "as a key"},
        "input": [{"role": "user", "content": [{"type": "input_text", "text": f"cookie {COOKIE_VALUE}!"}]}],
        "numbers": [1, 2.5, True, None],
    }
    scrubbed = _learned().scrub(body)
    text = json.dumps(scrubbed)
    for secret in _SECRETS:
        assert secret not in text
    assert scrubbed["metadata"]["org"] == REDACTED
    assert scrubbed["metadata"]["project"] == f"project={REDACTED}"
    assert scrubbed["metadata"][REDACTED] == "as a key"
    assert scrubbed["input"][0]["content"][0]["text"] == f"cookie {REDACTED}!"
    assert scrubbed["numbers"] == [1, 2.5, True, None]


def test_scrub_does_not_mutate_its_argument() -> None:
    body = {"a": [f"x {API_KEY}"], "b": {"c": API_KEY}}
    original = copy.deepcopy(body)
    _learned().scrub(body)
    assert body == original


def test_bearer_token_without_scheme_is_learned() -> None:
    redactor = Redactor()
    redactor.learn({"authorization": API_KEY})
    assert redactor.scrub_text(f"key {API_KEY}") == f"key {REDACTED}"


def test_overlapping_secrets_prefer_the_longest() -> None:
    redactor = Redactor()
    redactor.learn({"api-key": "abcdefgh"})
    redactor.learn({"x-api-key": "abcdefgh-ijklmnop"})
    assert redactor.scrub_text("abcdefgh-ijklmnop abcdefgh") == f"{REDACTED} {REDACTED}"


def test_short_secrets_are_not_scrubbed_from_free_text() -> None:
    redactor = Redactor()
    redacted = redactor.headers({"Authorization": "Bearer abc1234", "Cookie": "a=1; lang=en"})
    assert redacted == {"authorization": REDACTED, "cookie": REDACTED}
    text = "the abc1234 thing; a=1 in en; lang 1"
    assert redactor.scrub_text(text) == text
    assert redactor.scrub({"t": text}) == {"t": text}


def test_eight_character_secrets_are_scrubbed() -> None:
    redactor = Redactor()
    redactor.learn({"api-key": "abcd1234"})
    assert redactor.scrub_text("x abcd1234 y") == f"x {REDACTED} y"


def test_secret_values_are_matched_literally() -> None:
    redactor = Redactor()
    redactor.learn({"api-key": "a.b*c+d?e(f)"})
    assert redactor.scrub_text("aXbbbcdde(f) a.b*c+d?e(f)") == f"aXbbbcdde(f) {REDACTED}"


def test_cookie_values_are_learned_one_by_one() -> None:
    redactor = Redactor()
    redactor.learn({"cookie": f"a={COOKIE_VALUE}; b=0ther-L0ng-Cookie-9f8e7d"})
    assert redactor.scrub_text(f"{COOKIE_VALUE} 0ther-L0ng-Cookie-9f8e7d a b") == f"{REDACTED} {REDACTED} a b"


def test_cookie_values_that_look_like_words_are_not_secrets() -> None:
    # A cookie is a credential only when it looks like one: ``onboarding=completed`` once
    # turned every ``response.completed`` of a cassette into ``response.[redacted]``.
    redactor = Redactor()
    redactor.learn({"cookie": "onboarding=completed; theme=dark-mode; lang=en-US; consent=accepted-all"})
    assert redactor.secrets == frozenset()
    text = "response.completed in dark-mode, en-US, consent accepted-all"
    assert redactor.scrub_text(text) == text


def test_set_cookie_attributes_are_not_secrets() -> None:
    # Only the cookie's value is a credential; Domain, Path and Expires are public attributes.
    redactor = Redactor()
    redactor.learn(
        {
            "set-cookie": f"__cf_bm={COOKIE_VALUE}; path=/v1/responses; "
            "expires=Sat, 01-Nov-26 10:00:00 GMT; domain=.api.openai.com; HttpOnly; Secure"
        }
    )
    assert redactor.scrub_text(f"v={COOKIE_VALUE}") == f"v={REDACTED}"
    text = "POST /v1/responses on www.api.openai.com before Sat, 01-Nov-26 10:00:00 GMT"
    assert redactor.scrub_text(text) == text


def test_without_learned_secrets_scrub_is_the_identity() -> None:
    value = {"a": ["b", 1]}
    assert Redactor().scrub(value) is value


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(_json)
def test_scrub_leaves_non_secret_data_identical(value: Any) -> None:
    text = json.dumps(value)
    assume(not any(secret in s for s in _strings(value) for secret in _SECRETS))
    scrubbed = _learned().scrub(value)
    assert scrubbed == value
    assert json.dumps(scrubbed) == text


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.tuples(st.text(max_size=10), st.sampled_from(_SECRETS), st.text(max_size=10)), min_size=1),
    st.booleans(),
)
def test_no_secret_survives_scrubbing(parts: list[tuple[str, str, str]], as_keys: bool) -> None:
    strings = [f"{before}{secret}{after}" for before, secret, after in parts]
    # Secrets as keys: only the user's maps (metadata) may have them; keys elsewhere are protocol.
    value: Any = (
        {"metadata": {s: i for i, s in enumerate(strings)}} if as_keys else [{"text": s} for s in strings]
    )
    scrubbed = _learned().scrub(value)
    for s in _strings(scrubbed):
        for secret in _SECRETS:
            assert secret not in s


# -- tool credentials in requests -------------------------------------------------------------------------


def _mcp_request() -> dict[str, Any]:
    return {
        "model": "gpt-5.2",
        "input": "list my repos",
        "tools": [
            {
                "type": "mcp",
                "server_label": "github",
                "server_url": "https://mcp.example.com",
                "authorization": "ghp_secretToken1234567",
                "headers": {"X-Token": "tok_abcdefgh"},
                "require_approval": "never",
            },
            {"type": "function", "name": "lookup", "parameters": {"type": "object"}},
            "not-a-dict",
        ],
    }


def test_redact_request_replaces_tool_credentials() -> None:
    redacted = redact_request(_mcp_request())
    mcp, function, other = redacted["tools"]
    assert mcp == {
        "type": "mcp",
        "server_label": "github",
        "server_url": "https://mcp.example.com",
        "authorization": "[redacted]",
        "headers": "[redacted]",
        "require_approval": "never",
    }
    assert function == _mcp_request()["tools"][1]
    assert other == "not-a-dict"
    assert {k: v for k, v in redacted.items() if k != "tools"} == {
        k: v for k, v in _mcp_request().items() if k != "tools"
    }
    assert "ghp_secretToken1234567" not in json.dumps(redacted)
    assert "tok_abcdefgh" not in json.dumps(redacted)


def test_redact_request_does_not_mutate_the_request() -> None:
    request = _mcp_request()
    redact_request(request)
    assert request == _mcp_request()


@pytest.mark.parametrize(
    "request_",
    [
        {"model": "m", "input": "hi"},
        {"model": "m", "tools": []},
        {"model": "m", "tools": [{"type": "function", "name": "f"}]},
        {"model": "m", "tools": "weird"},
    ],
)
def test_redact_request_without_tool_credentials_is_an_equal_copy(request_: dict[str, Any]) -> None:
    redacted = redact_request(request_)
    assert redacted == request_
    assert redacted is not request_


# -- structure and positions ------------------------------------------------------------------------------

TOKEN = "Tk7qZ2xLm9Wp4Rb8Nc3Vd6"


def test_structure_is_never_rewritten() -> None:
    redactor = Redactor()
    # Even a credential that is an ordinary word only changes free text, never the protocol.
    redactor.learn({"authorization": "Bearer response", "api-key": "completed-item"})
    event = {
        "type": "response.completed",
        "sequence_number": 7,
        "response": {"id": "resp_completed-item", "status": "completed", "output": []},
        "item_id": "msg_completed-item",
        "text": "response: completed-item",
    }
    scrubbed = redactor.scrub(event)
    assert scrubbed == {**event, "text": f"{REDACTED}: {REDACTED}"}


@pytest.mark.parametrize(
    "name", ["X-Client-Credential", "X-Id-Jwt", "X-Saml-Assertion", "X-Request-Signature", "X-Auth-Token"]
)
def test_credential_named_headers_are_redacted_and_their_tokens_learned(name: str) -> None:
    redactor = Redactor()
    assert redactor.headers({name: TOKEN}) == {name.lower(): REDACTED}
    assert redactor.scrub_text(f"echo {TOKEN}") == f"echo {REDACTED}"


def test_query_string_credentials_are_learned() -> None:
    redactor = Redactor()
    redactor.learn_query(f"api-version=2025-04-01-preview&api-key=plainwordkey&other={TOKEN}")
    assert redactor.scrub_text("plainwordkey 2025-04-01-preview") == f"{REDACTED} 2025-04-01-preview"
    assert redactor.scrub_text(TOKEN) == REDACTED


def test_request_credentials_are_learned() -> None:
    redactor = Redactor()
    redactor.learn_request(
        {
            "tools": [
                {
                    "type": "mcp",
                    "server_url": f"https://mcp.example/v1/{TOKEN}/sse",
                    "authorization": "Bearer tok-12345678",
                },
                {
                    "type": "mcp",
                    "server_url": "https://mcp.example/sse",
                    "headers": {"X-Key": "hdr-secret-1"},
                },
            ],
            "stream_id": "lane-Ln2LaneNameToken6Xb9Fq",
            "input": "my key is sk-" + "proj-abcdefgh12345678ijkl",
        }
    )
    text = (
        f"{TOKEN} tok-12345678 hdr-secret-1 Ln2LaneNameToken6Xb9Fq sk-"
        + "proj-abcdefgh12345678ijkl https://mcp.example/sse"
    )
    assert redactor.scrub_text(text) == " ".join([REDACTED] * 5) + " https://mcp.example/sse"


def test_the_recorder_scrubs_lanes_close_reasons_and_the_user_agent() -> None:
    recorder = SessionRecorder(0)
    connection = recorder.open_connection("ws", {"user-agent": f"my-agent/1.0 (+{TOKEN})"}, 0)
    lane = "worker-Ln2LaneNameToken6Xb9Fq"
    pending = recorder.start_turn(
        connection, {"type": "response.create", "stream_id": lane}, 0, transport="ws"
    )
    assert pending.lane is None  # the server passes the lane; here the default lane
    recorder.start_turn(
        connection, {"type": "response.create", "stream_id": lane}, 0, transport="ws", lane=lane
    )
    done = {"type": "response.completed", "response": {"id": "resp_1", "output": []}, "stream_id": lane}
    turn = recorder.on_event(connection, done, 1)
    assert turn is not None and turn.lane == lane  # as sent while the test runs: traces are routed by it
    recorder.close_connection(connection, 1000, "bye Cr7CloseReasonToken3Kw8Pz", "client", 2)
    recorder.scrub_all()
    (stored,) = recorder.turns
    assert stored.lane == REDACTED
    assert stored.request["stream_id"] == REDACTED
    assert stored.events[0].data["stream_id"] == REDACTED
    (record,) = recorder.connections()
    assert record.close is not None and record.close.reason == f"bye {REDACTED}"
    assert record.headers["user-agent"] == f"my-agent/1.0 (+{REDACTED})"
    assert recorder.user_agent == f"my-agent/1.0 (+{REDACTED})"


def test_a_basic_credentials_password_is_learned() -> None:
    redactor = Redactor()
    redactor.learn({"authorization": "Basic " + base64.b64encode(b"me:hunter2-Pa55word").decode()})
    assert redactor.scrub_text("the password hunter2-Pa55word") == f"the password {REDACTED}"
