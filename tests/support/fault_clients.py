"""What the real openai SDK sees of a turn, sync and async, over HTTP and WebSocket.

Used by the inner projects of ``tests/test_e2e_faults.py``: each turn's events and the
exception that ended it (if any) are collected, so a test asserts exactly what a client
of the service would have to handle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MODEL = "gpt-5.2"
TERMINAL = {"response.completed", "response.failed", "response.incomplete"}

#: A request, or a function of the previous turn's response id making one.
Request = dict[str, Any] | Callable[[str | None], dict[str, Any]]


@dataclass
class Seen:
    """One turn as the client saw it."""

    events: list[Any] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]

    @property
    def response_id(self) -> str | None:
        for event in self.events:
            if event.type in TERMINAL:
                return str(event.response.id)
        return None

    @property
    def completed(self) -> bool:
        return bool(self.types) and self.types[-1] == "response.completed" and self.error is None


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "input": text, **extra}


def _request(request: Request, previous: str | None) -> dict[str, Any]:
    return request(previous) if callable(request) else request


class SyncSdk:
    """``openai.OpenAI``: HTTP streams and ``responses.connect()``."""

    def __init__(self, rws: Any, **options: Any) -> None:
        self.client = rws.openai_client(**options)

    def http(self, *requests: Request) -> list[Seen]:
        """Each request in its own HTTP request (streamed); stops at the first exception."""
        seen: list[Seen] = []
        previous = None
        for request in requests:
            turn = Seen()
            seen.append(turn)
            try:
                for event in self.client.responses.create(stream=True, **_request(request, previous)):
                    turn.events.append(event)
            except Exception as exc:
                turn.error = exc
                return seen
            previous = turn.response_id or previous
        return seen

    def ws(self, *requests: Request) -> list[Seen]:
        """The requests as turns on one WebSocket connection; stops at the first exception."""
        seen: list[Seen] = []
        previous = None
        try:
            with self.client.responses.connect() as connection:
                for request in requests:
                    turn = Seen()
                    seen.append(turn)
                    connection.response.create(**_request(request, previous))
                    ended = False
                    for event in connection:
                        turn.events.append(event)
                        if event.type in TERMINAL or event.type == "error":
                            ended = True
                            break
                    if not ended:
                        return seen  # the server closed the connection (a normal close)
                    previous = turn.response_id or previous
        except Exception as exc:
            if not seen:
                seen.append(Seen())
            seen[-1].error = exc
        return seen


class AsyncSdk:
    """``openai.AsyncOpenAI``, run on a fresh event loop per call."""

    def __init__(self, rws: Any, **options: Any) -> None:
        self.options = {
            "base_url": rws.base_url,
            "websocket_base_url": rws.websocket_base_url,
            "api_key": "rws-test-key",
            "max_retries": 0,
            **options,
        }

    def http(self, *requests: Request) -> list[Seen]:
        return asyncio.run(self._http(requests))

    def ws(self, *requests: Request) -> list[Seen]:
        return asyncio.run(self._ws(requests))

    async def _http(self, requests: tuple[Request, ...]) -> list[Seen]:
        import openai

        seen: list[Seen] = []
        previous = None
        async with openai.AsyncOpenAI(**self.options) as client:
            for request in requests:
                turn = Seen()
                seen.append(turn)
                try:
                    stream = await client.responses.create(stream=True, **_request(request, previous))
                    async for event in stream:
                        turn.events.append(event)
                except Exception as exc:
                    turn.error = exc
                    return seen
                previous = turn.response_id or previous
        return seen

    async def _ws(self, requests: tuple[Request, ...]) -> list[Seen]:
        import openai

        seen: list[Seen] = []
        previous = None
        async with openai.AsyncOpenAI(**self.options) as client:
            try:
                async with client.responses.connect() as connection:
                    for request in requests:
                        turn = Seen()
                        seen.append(turn)
                        await connection.response.create(**_request(request, previous))
                        ended = False
                        async for event in connection:
                            turn.events.append(event)
                            if event.type in TERMINAL or event.type == "error":
                                ended = True
                                break
                        if not ended:
                            return seen
                        previous = turn.response_id or previous
            except Exception as exc:
                if not seen:
                    seen.append(Seen())
                seen[-1].error = exc
        return seen


def sdk(rws: Any, flavor: str, **options: Any) -> SyncSdk | AsyncSdk:
    """The SDK client of ``flavor`` (``sync`` or ``async``) pointed at the test's mount."""
    return SyncSdk(rws, **options) if flavor == "sync" else AsyncSdk(rws, **options)


def turns(client: SyncSdk | AsyncSdk, transport: str, *requests: Request) -> list[Seen]:
    """The requests over ``transport``: one HTTP request each, or one WebSocket connection."""
    return client.http(*requests) if transport == "http" else client.ws(*requests)
