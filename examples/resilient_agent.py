"""The weather agent of ``weather_agent.py``, hardened against the failures clients meet live.

Each recovery is one the Responses API asks of its clients:

* ``previous_response_not_found``: the service no longer holds the response a turn chains
  from (over WebSocket mode with ``store: false`` it lives only in the connection's cache,
  lost on a reconnect or evicted by a failed turn). Resend the whole conversation, without
  ``previous_response_id``.
* ``websocket_connection_limit_reached``: a WebSocket connection lives at most 60 minutes.
  The service closes it; open a new one and resend the whole conversation there.
* A rate limit (HTTP 429, or the ``error`` event with status 429 over WebSocket) or a
  dropped HTTP connection: wait (the ``retry-after`` header says how long, when there is
  one) and send the same request again.
* The openai SDK's own WebSocket reconnect (``on_reconnecting``, after close codes such as
  1011): the turn in flight is lost with the old connection and so is the cache, so the
  hook resends the whole conversation; the SDK sends it on the new connection.

The conversation is kept in full (``history``) so any turn can be resent without a chain.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import openai

from weather_agent import INSTRUCTIONS, MAX_TURNS, MODEL, TOOLS, AgentResult, _as_input, _run_tools

#: Recoveries allowed per run before the agent gives up (a real outage must still fail).
MAX_RECOVERIES = 5
#: First back-off after a rate limit without ``retry-after``, doubled on each retry.
FIRST_BACKOFF_S = 0.05
#: Error codes after which the conversation must be resent in full.
STATE_LOST_CODES = frozenset({"previous_response_not_found", "websocket_connection_limit_reached"})


@dataclass
class Recoveries:
    """What the agent had to recover from, in order (tests assert on it)."""

    events: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.events.append(what)
        if len(self.events) > MAX_RECOVERIES:
            raise RuntimeError(f"giving up after {MAX_RECOVERIES} recoveries: {self.events}")


@dataclass
class Conversation:
    """The whole conversation, and what the next WebSocket turn sends."""

    history: list[Any]
    #: The response the next turn chains from, and the items new since it.
    previous: str | None = None
    new_items: list[Any] = field(default_factory=list)

    @classmethod
    def opening(cls, question: str) -> Conversation:
        """A conversation that starts with the user's question (its first turn sends just that)."""
        first = [{"role": "user", "content": question}]
        return cls(history=first, new_items=list(first))

    def request(self, *, resend: bool) -> dict[str, Any]:
        """The next ``response.create``: chained, or (``resend``) the whole conversation."""
        chained = not resend and self.previous is not None
        request: dict[str, Any] = {
            "model": MODEL,
            "instructions": INSTRUCTIONS,
            "tools": TOOLS,
            "store": False,
        }
        if chained:
            request.update(input=self.new_items, previous_response_id=self.previous)
        else:
            request["input"] = self.history
        return request

    def answered(self, response: Any, result: AgentResult) -> bool:
        """Take a completed response; True when it is the final answer."""
        tool_outputs = _run_tools(response.output, result)
        if not tool_outputs:
            result.answer = response.output_text
            return True
        items = [_as_input(item) for item in response.output] + tool_outputs
        self.history += items
        self.previous, self.new_items = response.id, tool_outputs
        return False


def _error_of(event: Any) -> tuple[str | None, int | None]:
    """(code, status) of an ``error`` event, in either of its shapes."""
    data = event.to_dict()
    error = data.get("error") if isinstance(data.get("error"), dict) else data
    return error.get("code"), data.get("status")


def _backoff(attempt: int, retry_after: float | None = None) -> float:
    return retry_after if retry_after is not None else FIRST_BACKOFF_S * 2 ** (attempt - 1)


@dataclass(frozen=True)
class NextStep:
    """What a WebSocket loop does after an ``error`` event."""

    #: Open a new connection (the service closes this one).
    rotate: bool = False
    #: Send the whole conversation instead of a chain.
    resend: bool = False
    #: Wait this long before sending again.
    wait_s: float = 0.0


def recover_from(event: Any, recoveries: Recoveries) -> NextStep:
    """The recovery for an ``error`` event over WebSocket mode; raises for errors not to retry."""
    code, status = _error_of(event)
    if code == "websocket_connection_limit_reached":
        recoveries.note(code)
        return NextStep(rotate=True, resend=True)
    if code in STATE_LOST_CODES:
        recoveries.note(code)
        return NextStep(resend=True)
    if status == 429:
        recoveries.note("rate limited")
        return NextStep(wait_s=_backoff(len(recoveries.events)))
    raise RuntimeError(f"the API answered with an error: {event.to_dict()}")


# -- WebSocket mode ------------------------------------------------------------------


def ask_over_websocket(client: Any, question: str, recoveries: Recoveries) -> AgentResult:
    """The WebSocket loop, recovering from lost state, rate limits, the age limit and reconnects."""
    result = AgentResult(answer="")
    conversation = Conversation.opening(question)
    resend = False

    def on_reconnecting(event: openai.ReconnectingEvent) -> None:
        # The SDK reconnects after a recoverable close (1011 here). The turn in flight died
        # with the old connection, and the new one holds no cached response: queue the
        # whole conversation, which the SDK sends once the new connection is open.
        # (``connection`` is the one the ``with`` below opened.)
        recoveries.note(f"reconnect after close {event.close_code}")
        connection.response.create(**conversation.request(resend=True))

    while True:  # one pass per connection
        with client.responses.connect(on_reconnecting=on_reconnecting, initial_delay=0.01) as connection:
            rotate = False
            while not rotate:
                if result.turns >= MAX_TURNS:
                    raise RuntimeError("the agent did not finish")
                result.turns += 1
                connection.response.create(**conversation.request(resend=resend))
                resend = False
                for event in connection:
                    if event.type == "response.completed":
                        if conversation.answered(event.response, result):
                            return result
                        break
                    if event.type == "error":
                        step = recover_from(event, recoveries)
                        rotate, resend = step.rotate, step.resend
                        time.sleep(step.wait_s)
                        break


async def ask_over_websocket_async(client: Any, question: str, recoveries: Recoveries) -> AgentResult:
    """The async WebSocket loop (the same recoveries but the SDK reconnect, shown sync)."""
    result = AgentResult(answer="")
    conversation = Conversation.opening(question)
    resend = False
    while True:
        async with client.responses.connect() as connection:
            rotate = False
            while not rotate:
                if result.turns >= MAX_TURNS:
                    raise RuntimeError("the agent did not finish")
                result.turns += 1
                await connection.response.create(**conversation.request(resend=resend))
                resend = False
                async for event in connection:
                    if event.type == "response.completed":
                        if conversation.answered(event.response, result):
                            return result
                        break
                    if event.type == "error":
                        step = recover_from(event, recoveries)
                        rotate, resend = step.rotate, step.resend
                        await asyncio.sleep(step.wait_s)
                        break


# -- HTTP ----------------------------------------------------------------------------

#: What an HTTP turn may fail with and be sent again: rate limits, 5xx, dropped connections.
RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)


def _retry_after(error: Exception) -> float | None:
    """The server's ``retry-after`` in seconds, if it sent one."""
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the back-off


def _failure_name(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    return f"HTTP {status}" if status is not None else "connection lost"


def ask_over_http(client: Any, question: str, recoveries: Recoveries) -> AgentResult:
    """The HTTP loop (the whole history every turn), retrying what the service asks to retry."""
    result = AgentResult(answer="")
    conversation = Conversation.opening(question)
    while result.turns < MAX_TURNS:
        result.turns += 1
        try:
            with client.responses.stream(**conversation.request(resend=True)) as stream:
                response = stream.get_final_response()
        except RETRYABLE as error:
            recoveries.note(_failure_name(error))
            time.sleep(_backoff(len(recoveries.events), _retry_after(error)))
            continue
        if conversation.answered(response, result):
            return result
    raise RuntimeError("the agent did not finish")


async def ask_over_http_async(client: Any, question: str, recoveries: Recoveries) -> AgentResult:
    """The async HTTP loop."""
    result = AgentResult(answer="")
    conversation = Conversation.opening(question)
    while result.turns < MAX_TURNS:
        result.turns += 1
        try:
            async with client.responses.stream(**conversation.request(resend=True)) as stream:
                response = await stream.get_final_response()
        except RETRYABLE as error:
            recoveries.note(_failure_name(error))
            await asyncio.sleep(_backoff(len(recoveries.events), _retry_after(error)))
            continue
        if conversation.answered(response, result):
            return result
    raise RuntimeError("the agent did not finish")


def ask(client: Any, transport: str, question: str, recoveries: Recoveries) -> AgentResult:
    """Run the hardened agent over ``transport`` (``"ws"`` or ``"http"``)."""
    if transport == "ws":
        return ask_over_websocket(client, question, recoveries)
    return ask_over_http(client, question, recoveries)


async def ask_async(client: Any, transport: str, question: str, recoveries: Recoveries) -> AgentResult:
    """The async hardened agent."""
    if transport == "ws":
        return await ask_over_websocket_async(client, question, recoveries)
    return await ask_over_http_async(client, question, recoveries)
