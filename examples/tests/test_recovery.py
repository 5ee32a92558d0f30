"""Recoveries agent code needs, tested with the failures injected where the service would send them.

Each test replays a cassette of the weather conversation, recorded from the simulator with
the same fault in front of it, while ``rws_faults`` makes the loopback server fail a turn
exactly as the Responses API would. The hardened agent in ``resilient_agent.py`` must still answer, and the tests check
which recovery it went through. A fault that exists on one transport only runs there.
"""

from __future__ import annotations

import pytest

import resilient_agent
from pytest_responses_ws import faults

QUESTION = "What's the weather in Paris and Oslo?"


def check_answer(result: resilient_agent.AgentResult) -> None:
    assert result.tool_calls == ["Paris", "Oslo"]
    assert "Paris" in result.answer and "Oslo" in result.answer


# Over WebSocket mode with store: false, the second turn chains from a response held only in
# the connection's cache. When the service has lost it, the agent resends the conversation.
@pytest.mark.rws_transports("ws")
@pytest.mark.rws_faults(faults.not_found(turn=2))
def test_resends_history_after_previous_response_not_found(rws):
    recoveries = resilient_agent.Recoveries()
    check_answer(resilient_agent.ask(rws.openai_client(), rws.transport, QUESTION, recoveries))
    assert recoveries.events == ["previous_response_not_found"]
    # The retry chained nothing: it resent the whole conversation (the question, the call and
    # its output, all sent before), and the turn after it chained again, resending nothing.
    assert [turn.resent_items for turn in rws.turns][-2:] == [3, 0]


# At the service's 60-minute limit the connection is closed; the agent opens a new one.
@pytest.mark.rws_transports("ws")
@pytest.mark.rws_faults(faults.connection_limit(turn=3))
def test_rotates_the_connection_at_its_age_limit(rws):
    recoveries = resilient_agent.Recoveries()
    check_answer(resilient_agent.ask(rws.openai_client(), rws.transport, QUESTION, recoveries))
    assert recoveries.events == ["websocket_connection_limit_reached"]
    assert rws.counts()["connections"] == 2


# A rate limit before the second turn's stream: HTTP 429 with retry-after, or over WebSocket
# the error event with status 429. The agent waits and sends the same request again.
@pytest.mark.rws_faults(faults.http_status(429, retry_after=0.05, turn=2))
def test_backs_off_and_retries_a_rate_limit(rws):
    recoveries = resilient_agent.Recoveries()
    check_answer(resilient_agent.ask(rws.openai_client(), rws.transport, QUESTION, recoveries))
    assert recoveries.events == (["HTTP 429"] if rws.transport == "http" else ["rate limited"])
    assert [fired.turn for fired in rws.faults.fired] == [2]


@pytest.mark.asyncio
@pytest.mark.rws_faults(faults.http_status(429, retry_after=0.05, turn=2))
async def test_backs_off_and_retries_a_rate_limit_async(rws):
    recoveries = resilient_agent.Recoveries()
    result = await resilient_agent.ask_async(rws.async_openai_client(), rws.transport, QUESTION, recoveries)
    check_answer(result)
    assert len(recoveries.events) == 1


# The openai SDK reconnects by itself after close code 1011 when given on_reconnecting; the
# hook resends the conversation, because the new connection holds no cached response.
@pytest.mark.rws_transports("ws")
@pytest.mark.rws_faults(faults.close(1011, turn=2, after_events=2))
def test_sdk_reconnect_hook_resends_the_conversation(rws):
    recoveries = resilient_agent.Recoveries()
    check_answer(resilient_agent.ask(rws.openai_client(), rws.transport, QUESTION, recoveries))
    assert recoveries.events == ["reconnect after close 1011"]
    assert rws.counts()["connections"] == 2


# Over HTTP a connection dropped mid-stream is retried like a 5xx.
@pytest.mark.rws_transports("http")
@pytest.mark.rws_faults(faults.cut(after_events=3, turn=2))
def test_retries_a_stream_cut_mid_answer(rws):
    recoveries = resilient_agent.Recoveries()
    check_answer(resilient_agent.ask(rws.openai_client(), rws.transport, QUESTION, recoveries))
    assert recoveries.events == ["connection lost"]
