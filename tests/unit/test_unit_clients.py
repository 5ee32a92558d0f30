"""Clients handed out by the rws handle share one TLS context, and it still verifies."""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_responses_ws import clients


def test_shared_tls_context_is_built_once_and_verifies() -> None:
    first = clients.sdk_http_client(asynchronous=False)
    context = clients._tls_context
    clients.sdk_http_client(asynchronous=True)  # the async client reuses it
    try:
        assert clients._tls_context is context
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    finally:
        first.close()


# Run in a fresh interpreter: this test process has been warmed up already (conftest).
WARMED_PARSING_BUILDS_NOTHING = r"""
import json, sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openai._models import _CachedTypeAdapter, construct_type, construct_type_unchecked
from openai._utils import _transform
from openai.types.responses import Response, ResponseStreamEvent, response_create_params
from openai.types.responses.responses_client_event_param import ResponsesClientEventParam
from openai.types.responses.responses_server_event import ResponsesServerEvent

from pytest_responses_ws.clients import warm_openai_parsers


def lazy_builds():
    return (
        _CachedTypeAdapter.cache_info().currsize,
        _transform._get_annotated_type.cache_info().currsize,
        _transform.get_type_hints.cache_info().currsize,
        "openai.resources.responses" in sys.modules,
    )


assert warm_openai_parsers()
warmed = lazy_builds()
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    for turn in json.loads(path.read_text())["turns"]:
        request = {k: v for k, v in turn["request"].items() if k not in ("type", "stream")}
        _transform.maybe_transform({**request, "stream": True}, response_create_params.ResponseCreateParamsStreaming)
        _transform.maybe_transform(request, response_create_params.ResponseCreateParamsNonStreaming)
        _transform.maybe_transform({"type": "response.create", **request}, ResponsesClientEventParam)
        for event in (entry["data"] for entry in turn["events"]):
            construct_type(value=event, type_=ResponseStreamEvent)
            construct_type_unchecked(value=event, type_=ResponsesServerEvent)
            if event["type"] == "response.completed":
                construct_type(value=event["response"], type_=Response)
assert lazy_builds() == warmed, (warmed, lazy_builds())
print("nothing new built", warmed)
"""


def test_after_warm_up_parsing_real_turns_builds_nothing_new() -> None:
    """The SDK's lazy builds (validators, request transforms, the responses module) are all
    done by the warm-up: parsing the example suite's recorded turns adds none. What is
    built lazily is what a fresh process would otherwise pay inside its first test's turns."""
    cassettes = Path(__file__).parents[2] / "examples" / "tests" / "cassettes" / "test_weather_agent"
    done = subprocess.run(
        [sys.executable, "-c", WARMED_PARSING_BUILDS_NOTHING, str(cassettes)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "nothing new built" in done.stdout


def test_every_warm_up_step_runs_without_error() -> None:
    """The warm-up skips a failing step silently (it only saves time), so each step is run
    here directly: an SDK change that breaks one shows up as this test failing."""
    response = clients._sample_response()
    request = clients._sample_request(response)
    clients._run_in_memory(lambda transport: clients._warm_client_calls(transport, response))
    clients._warm_websocket_clients(request, agents=False)
    clients._run_in_memory(clients._warm_agents_run)
    clients._warm_websocket_clients(request, agents=True)


def test_the_agents_warm_up_completes_each_loop_often_enough_to_specialize(monkeypatch: Any) -> None:
    """CPython specializes a function's bytecode after several calls: one warm-up run left
    the agents run loop generic for the first tests. Each warm-up run completes both of
    its turns (a tool call, then the answer), HTTP streamed and not, and over WebSocket."""
    answered: list[dict[str, Any]] = []
    two_turns = clients._two_turns

    def counted() -> Iterator[dict[str, Any]]:
        for turn in two_turns():
            answered.append(turn)
            yield turn

    monkeypatch.setattr(clients, "_two_turns", counted)
    request = clients._sample_request(clients._sample_response())
    clients._run_in_memory(clients._warm_agents_run)
    over_http = len(answered)
    clients._warm_websocket_clients(request, agents=True)
    over_websocket = len(answered) - over_http
    runs = clients.AGENTS_WARMUP_RUNS
    assert runs >= 4
    assert over_http == 2 * 2 * runs  # streamed and not, two turns each
    assert over_websocket == 2 * 2 * runs
