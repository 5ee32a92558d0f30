"""Unit tests of ``core.placeholders`` and of matching and miss reports with redacted recordings."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_responses_ws.cassette.model import RecordedEvent, Turn
from pytest_responses_ws.cassette.redact import REDACTED, Redactor, looks_like_token, token_parts
from pytest_responses_ws.core.explain import explain_miss
from pytest_responses_ws.core.match import TurnIndex
from pytest_responses_ws.core.placeholders import Placeholders, placeholder_strings, slot_pattern

KEY = "sk-" + "proj-9fQ2xLm7Tz0aB4cD8eF1gH6j"
CI_KEY = "sk-" + "proj-CIkeyCIkey0123456789abc"


def _message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _turn(request: dict[str, Any], response_id: str = "resp_1") -> Turn:
    response = {"id": response_id, "object": "response", "status": "completed", "output": []}
    return Turn(
        request=request, events=(RecordedEvent(0.0, {"type": "response.completed", "response": response}),)
    )


def test_placeholder_strings_and_patterns() -> None:
    value = {"a": [f"x {REDACTED} y", "plain"], "b": REDACTED}
    assert list(placeholder_strings(value)) == [(("a", 0), f"x {REDACTED} y"), (("b",), REDACTED)]
    pattern = slot_pattern(f"key={REDACTED}; org={REDACTED}.")
    assert pattern.fullmatch(f"key={KEY}; org=org-abcdefgh1234.")
    assert not pattern.fullmatch("key=short; org=org-abcdefgh1234.")  # a secret is 8 or more characters
    assert not pattern.fullmatch(f"key={KEY}; org=org-abcdefgh1234!")
    assert not pattern.fullmatch(f"key=two words here; org={KEY}.")


def test_fill_replaces_a_unit_equal_outside_its_redacted_parts() -> None:
    placeholders = Placeholders()
    assert not placeholders
    template = _message(f"my key is {REDACTED}, keep it")
    placeholders.add(template)
    placeholders.add(_message("no secret here"))  # nothing to learn from
    assert placeholders
    assert placeholders.fill(_message(f"my key is {KEY}, keep it")) is template
    assert placeholders.fill(_message(f"my key is {CI_KEY}, keep it")) is template
    for other in (
        _message(f"my key is {KEY}, lose it"),
        {**_message(f"my key is {KEY}, keep it"), "role": "developer"},
        _message("hello"),
    ):
        assert placeholders.fill(other) == other


def test_a_whole_value_placeholder_does_not_swallow_ordinary_text() -> None:
    # A recorded prompt that was nothing but a secret must not make every prompt match it.
    placeholders = Placeholders()
    placeholders.add(_message(REDACTED))
    assert placeholders.fill(_message(KEY)) == _message(REDACTED)
    assert placeholders.fill(_message("what is the weather?")) == _message("what is the weather?")
    assert placeholders.fill(_message("short")) == _message("short")


def test_secrets_in_reads_the_redacted_positions_loosely() -> None:
    placeholders = Placeholders()
    placeholders.add({"model": "m", "metadata": {"org": REDACTED}})
    # The rest differs (so no template fits), but the org position still names the secret.
    assert placeholders.secrets_in({"model": "other", "metadata": {"org": "org-Zx81234567abcd"}}) == [
        "org-Zx81234567abcd"
    ]


def test_a_recording_with_a_redacted_body_secret_replays_with_the_secret_or_another() -> None:
    sent = {
        "model": "gpt-5.2",
        "metadata": {"org": "org-Zx81234567abcdEF"},
        "input": [_message(f"key {KEY} ok")],
    }
    recorded = {"model": "gpt-5.2", "metadata": {"org": REDACTED}, "input": [_message(f"key {REDACTED} ok")]}
    chained = {
        "model": "gpt-5.2",
        "metadata": {"org": REDACTED},
        "previous_response_id": "resp_1",
        "input": [],
    }
    index = TurnIndex.build([_turn(recorded), _turn(chained, "resp_2")])
    assert index.lookup(sent).turn == 0
    assert index.lookup({**sent, "previous_response_id": "resp_1", "input": []}).turn == 1
    ci = {**sent, "metadata": {"org": "org-CIorgCIorg0123"}, "input": [_message(f"key {CI_KEY} ok")]}
    index = TurnIndex.build([_turn(recorded)])
    assert index.lookup(ci).turn == 0
    assert not index.lookup({**sent, "input": [_message(f"key {KEY} changed")]}).hit


def test_an_http_client_resending_history_with_the_live_secret_matches() -> None:
    # new_episodes: the live answer had the secret; the recording has the placeholder.
    answer = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": f"set {REDACTED}"}],
    }
    first = Turn(
        request={"model": "m", "input": [_message("hi")]},
        events=(
            RecordedEvent(
                0.0,
                {
                    "type": "response.completed",
                    "response": {"id": "resp_1", "status": "completed", "output": [answer]},
                },
            ),
        ),
    )
    second = _turn({"model": "m", "previous_response_id": "resp_1", "input": [_message("thanks")]}, "resp_2")
    index = TurnIndex.build([first, second])
    live = {**answer, "content": [{"type": "output_text", "text": f"set {KEY}"}]}
    resent = {"model": "m", "input": [_message("hi"), live, _message("thanks")]}
    assert index.lookup({"model": "m", "input": [_message("hi")]}).turn == 0
    assert index.lookup(resent).turn == 1


def test_a_cassette_without_redactions_has_no_templates() -> None:
    index = TurnIndex.build([_turn({"model": "m", "input": "hi", "metadata": {"org": "plain"}})])
    assert not index.placeholder_params and not index.placeholder_items


def test_a_miss_report_hides_secrets_from_headers_shapes_and_redacted_positions() -> None:
    header_key = "Hk3aZ9qL0pW8xV2cB7nM4"
    org = "org-Zx81234567abcdEF"
    recorded = {"model": "gpt-5.2", "metadata": {"org": REDACTED}, "input": [_message(f"key {REDACTED} ok")]}
    index = TurnIndex.build([_turn(recorded)])
    sent = {
        "model": "gpt-4.1",
        "metadata": {"org": org, "echo": header_key},
        "input": [_message(f"key {KEY} now different")],
        "stream_id": f"lane-{header_key}",
    }
    redactor = Redactor()
    redactor.learn({"x-api-key": header_key})
    report = explain_miss(
        index,
        sent,
        index.lookup(sent),
        where="request 1",
        cassette="c.json",
        record_hint="hint",
        redactor=redactor,
    )
    for secret in (header_key, org, KEY):
        assert secret not in report
    assert '"gpt-4.1"' in report
    assert "/model" in report
    assert "now different" in report  # the parts that differ and are no secret stay readable


@pytest.mark.parametrize(
    ("part", "token"),
    [
        ("c00kieSessionValue42", True),
        ("0123456789abcdef0123456789abcdef", True),
        ("3f2a9c1e-5b7d-4e2a-9c1e-5b7d4e2a9c1e", True),
        ("sk-" + "proj-abcdefgh12345678ijkl", True),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM", True),
        ("completed", False),
        ("response.completed", False),
        ("x86_64-linux-gnu", False),
        ("gpt-4o-mini-2024-07-18", False),
        ("worker-1", False),
        ("AppleWebKit", False),
        ("sk-" + "learn-documentation-page", False),
    ],
)
def test_looks_like_token(part: str, token: bool) -> None:
    assert looks_like_token(part) is token


def test_token_parts_find_a_token_inside_a_joined_name() -> None:
    assert token_parts("leak-check/1.0 (+Ua3UserAgentToken6Jr2Yn8T)") == ["Ua3UserAgentToken6Jr2Yn8T"]
    assert token_parts("worker-Ln2LaneNameToken6Xb9Fq") == [
        "worker-Ln2LaneNameToken6Xb9Fq",
        "Ln2LaneNameToken6Xb9Fq",
    ]
    assert token_parts("OpenAI/Python 2.8.1") == []


def test_a_unit_recorded_as_is_is_never_taken_for_another_turns_template() -> None:
    # Turn 0 was recorded for user alice (no secret); turn 1 had a secret in the same place.
    alice = {"model": "m", "input": "hi", "metadata": {"user": "alice-0001"}}
    redacted = {"model": "m", "input": "hi", "metadata": {"user": REDACTED}}
    index = TurnIndex.build([_turn(alice), _turn(redacted, "resp_2")])
    assert index.lookup(alice).turn == 0
    assert index.lookup({**alice, "metadata": {"user": "sk-" + "proj-9fQ2xLm7Tz0aB4cD8eF1"}}).turn == 1
    # Whatever the order they were recorded in.
    index = TurnIndex.build([_turn(redacted, "resp_2"), _turn(alice)])
    assert index.lookup(alice).turn == 1
