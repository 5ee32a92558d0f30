"""Replay is as strict as the service about connection-local state.

A ``store: false`` response lives only in the cache of the WebSocket connection that
created it. A client that reconnects and chains the old ``previous_response_id`` gets
``previous_response_not_found`` from the service, so it gets it from the replay too:
its test fails unless it recovers (resends the whole history without the chain).
Over HTTP such a chain is always a 400. ``strict`` off resolves every recorded chain.
"""

from __future__ import annotations

import pytest

from pytest_responses_ws.sim import Script, serve_simulator

from support.project import Project

# One tool call, then the answer: two turns, the second chained from the first.
LOOP_TEST = """
import os

import agent_loops as loops
import openai
import pytest

MODE = os.environ["LOOP_MODE"]


def ws_turn(connection, **request):
    connection.response.create(model=loops.MODEL, tools=loops.TOOLS, store=False, **request)
    for event in connection:
        if event.type == "error":
            raise RuntimeError(f"error event: {event.to_dict()}")
        if event.type == "response.completed":
            return event.response


def calls_answered(response):
    return [loops.tool_output(item) for item in response.output if item.type == "function_call"]


@pytest.mark.rws_transports(os.environ.get("LOOP_TRANSPORT", "ws"))
def test_loop(rws):
    client = rws.openai_client()
    if rws.transport == "http":
        first = client.responses.create(model=loops.MODEL, tools=loops.TOOLS, store=False, input=loops.PROMPT)
        final = client.responses.create(
            model=loops.MODEL, tools=loops.TOOLS, store=False,
            input=calls_answered(first), previous_response_id=first.id,
        )
        assert final.output_text
        return
    with client.responses.connect() as connection:
        first = ws_turn(connection, input=loops.PROMPT)
        outputs = calls_answered(first)
        if MODE == "record":
            final = ws_turn(connection, input=outputs, previous_response_id=first.id)
    if MODE != "record":
        # A reconnect: the new connection's cache is empty.
        with client.responses.connect() as connection:
            try:
                final = ws_turn(connection, input=outputs, previous_response_id=first.id)
            except RuntimeError as exc:
                if MODE != "fixed" or "previous_response_not_found" not in str(exc):
                    raise
                # The recovery: the whole history, no chain, on the same (still open) connection.
                history = [*loops.PROMPT, *(item.to_dict() for item in first.output), *outputs]
                final = ws_turn(connection, input=history)
    assert final.output_text == "Mild everywhere."
"""


@pytest.fixture
def recorded(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    project.write("test_agent", LOOP_TEST)
    monkeypatch.setenv("LOOP_MODE", "record")
    with serve_simulator(Script.tool_loop(1, final_text="Mild everywhere.")) as sim:
        project.record(sim).assert_outcomes(passed=1)
    return project


def test_reconnect_chaining_an_unstored_response_fails_the_naive_client(
    recorded: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOP_MODE", "naive")
    result = recorded.replay()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    # The client got the service's own error (the SDK's event), not a failure of the plugin.
    assert "'code': 'previous_response_not_found'" in output
    assert "Previous response with id 'resp_" in output
    assert "rws_cassette_miss" not in output
    assert "matched no recorded turn" not in output


def test_reconnect_resending_the_history_passes(recorded: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOP_MODE", "fixed")
    recorded.replay().assert_outcomes(passed=1)


@pytest.mark.parametrize("switch", ["--no-rws-strict", "--rws-strict=off"])
def test_not_strict_lets_the_naive_client_chain_across_connections(
    recorded: Project, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    monkeypatch.setenv("LOOP_MODE", "naive")
    recorded.replay(switch).assert_outcomes(passed=1)


def test_not_strict_from_the_ini_and_the_marker(recorded: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOP_MODE", "naive")
    recorded.replay("-o", "rws_strict=off").assert_outcomes(passed=1)
    source = LOOP_TEST.replace(
        "def test_loop(rws):", "@pytest.mark.rws_cassette(strict=False)\ndef test_loop(rws):"
    )
    recorded.write("test_agent", source)
    recorded.replay().assert_outcomes(passed=1)
    # The command line wins over the marker.
    recorded.replay("--rws-strict").assert_outcomes(failed=1)


def test_http_chain_from_an_unstored_response_is_a_400(
    recorded: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOP_MODE", "naive")
    monkeypatch.setenv("LOOP_TRANSPORT", "http")
    result = recorded.replay()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    # The SDK raised on the service's 400 (its message is the service's, the body its shape).
    assert "openai.BadRequestError: Error code: 400 - Previous response with id 'resp_" in output
    assert "rws_cassette_miss" not in output
