"""Helpers around the client libraries tests drive (imported lazily: all are optional)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import itertools
import json
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from .core.replay import compact, sse_block
from .core.synthesize import synthesize_events

_warmed = False
_agents_warmed = False
_tls_context: Any = None


def _http_library() -> Any:
    """The HTTP library the installed openai SDK runs on: httpx2 (3.x) or httpx (2.x)."""
    import openai

    if hasattr(openai, "DefaultHttpx2Client"):
        import httpx2

        return httpx2
    import httpx

    return httpx


def sdk_http_client(*, asynchronous: bool, **options: Any) -> Any:
    """The SDK's default HTTP client, sharing one verifying TLS context across clients.

    A new ``OpenAI()`` loads the system's CA certificates into a fresh TLS context (15-30 ms
    here), a cost every test would pay though the loopback server speaks plain HTTP.
    Verification is kept as the SDK sets it up: the context is only built once.
    ``options`` go to the client class (the warm-up passes an in-memory ``transport``).
    """
    global _tls_context
    import openai

    http_library = _http_library()
    if http_library.__name__ == "httpx2":
        client_class: Any = openai.DefaultAsyncHttpx2Client if asynchronous else openai.DefaultHttpx2Client
    else:
        client_class = openai.DefaultAsyncHttpxClient if asynchronous else openai.DefaultHttpxClient
    if _tls_context is None:
        _tls_context = http_library.create_ssl_context()
    return client_class(verify=_tls_context, **options)


_Loops = Callable[[], list[asyncio.AbstractEventLoop]]


class OwnedClients:
    """The clients the plugin made for one test, their connections closed when it ends.

    HTTP clients of the SDK clients it made, and openai-agents providers (whose WebSocket
    model keeps its connection open across runs). An HTTP client's pooled connections are
    closed, not the client: one kept past its test stays usable and gets the server's clear
    "test has finished" answer. Async connections belong to the event loop that used them,
    and pytest-asyncio closes a test's loop before sync fixtures tear down: so async clients
    note their loop, and are closed on it right after the test body (:meth:`close_async`);
    the rest at teardown (:meth:`close`). A test that closed a client itself is fine.
    """

    def __init__(self) -> None:
        self._sync: list[Any] = []
        # (close, loops): a coroutine function closing the resource, the loops it used.
        self._async: list[tuple[Callable[[], Coroutine[Any, Any, None]], _Loops]] = []

    def http_client(self, *, asynchronous: bool) -> Any:
        """A new SDK HTTP client (see :func:`sdk_http_client`) closed with the test."""
        if not asynchronous:
            client = sdk_http_client(asynchronous=False)
            self._sync.append(client)
            return client
        loops: list[asyncio.AbstractEventLoop] = []

        async def note_loop(request: Any) -> None:
            loop = asyncio.get_running_loop()
            if loop not in loops:
                loops.append(loop)

        client = sdk_http_client(asynchronous=True, event_hooks={"request": [note_loop]})
        self._async.append((lambda: _close_async_connections(client), lambda: loops))
        return client

    def agents_provider(self, provider: Any) -> None:
        """Close this openai-agents provider's cached WebSocket models with the test."""
        if not hasattr(provider, "aclose"):
            return
        created_in = _running_loop()

        def loops() -> list[asyncio.AbstractEventLoop]:
            # The provider caches its WebSocket models per event loop.
            cached = list(getattr(provider, "_ws_model_cache_by_loop", {}))
            return [*cached, created_in] if created_in is not None else cached

        self._async.append((provider.aclose, loops))

    def close_async(self) -> None:
        """Close async resources on the loop they used, if it is still open and idle."""
        for close, loops in self._async:
            for loop in loops():
                if not loop.is_closed() and not loop.is_running():
                    # A connection the peer already dropped may fail to close: nothing to do.
                    with contextlib.suppress(OSError, RuntimeError):
                        loop.run_until_complete(close())
                    break

    def close(self) -> None:
        """Close what is still open (at teardown)."""
        for client in self._sync:
            with contextlib.suppress(OSError, RuntimeError):
                _close_connections(client)
        self.close_async()
        self._sync.clear()
        self._async.clear()


def _close_connections(client: Any) -> None:
    transport = getattr(client, "_transport", None)  # the connection pool, reusable after
    if transport is None:
        client.close()
    elif not client.is_closed:
        transport.close()


async def _close_async_connections(client: Any) -> None:
    transport = getattr(client, "_transport", None)
    if transport is None:
        await client.aclose()
    elif not client.is_closed:
        await transport.aclose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _run_in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    # Its own thread and loop: the caller may already be inside a running event loop.
    worker = threading.Thread(target=asyncio.run, args=(coroutine,), name="rws-clients")
    worker.start()
    worker.join()


def _sample_response() -> dict[str, Any]:
    """A completed response shaped like the API's: the fields it sends, and the item kinds
    agent loops meet most (reasoning, a function call, a message).

    The SDK builds a validator per field type on first use, so every field the API sends
    must be here for the warm-up to cover what a real answer needs.
    """
    return {
        "id": "resp_rws_warmup",
        "object": "response",
        "created_at": 0,
        "completed_at": 0,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": "warm",
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": "warmup",
        "output": [
            {"type": "reasoning", "id": "rs_rws_warmup", "summary": [], "encrypted_content": None},
            {
                "type": "function_call",
                "id": "fc_rws_warmup",
                "call_id": "call_rws_warmup",
                "name": "warmup",
                "arguments": '{"a": 1}',
                "status": "completed",
            },
            {
                "type": "message",
                "id": "msg_rws_warmup",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "warm", "annotations": [], "logprobs": []}],
            },
        ],
        "parallel_tool_calls": True,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": {"effort": "none", "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "tool_choice": "auto",
        "tools": [
            {
                "type": "function",
                "name": "warmup",
                "description": "warm",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "strict": True,
            }
        ],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 1,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 1,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 2,
        },
        "user": None,
        "metadata": {},
    }


def _sample_request(response: dict[str, Any]) -> dict[str, Any]:
    """The request an agent loop sends after ``response``: its history plus a tool output."""
    return {
        "model": "warmup",
        "instructions": "warm",
        "input": [
            {"role": "user", "content": "warm"},
            *response["output"],
            {"type": "function_call_output", "call_id": "call_rws_warmup", "output": "{}"},
        ],
        "tools": response["tools"],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "temperature": 1.0,
        "max_output_tokens": 100,
        "metadata": {"warm": "up"},
        "store": False,
    }


def warm_sdks_in_use() -> None:
    """Warm the client SDKs this process has imported, once each (see :func:`warm_openai_parsers`).

    Importing the openai SDK and warming it costs seconds and tens of MiB: a test session that
    never imports it (raw httpx or websockets clients, another language in a subprocess) never
    pays for it. Called when a test's mount is set up and when the handle makes a client, so the
    cost lands before the test's first turn, never inside one.
    """
    if "openai" in sys.modules and (not _warmed or ("agents" in sys.modules and not _agents_warmed)):
        warm_openai_parsers()


def warm_openai_parsers() -> bool:
    """Pay the openai SDK's one-time costs now, not inside the first test's turns.

    The SDK builds much of itself lazily: a pydantic validator per event and field type on
    first parse (hundreds of milliseconds), request-parameter transforms per type, the
    ``responses`` resource module, platform headers, the TLS context and the HTTP
    library's connection code. Left alone, all of it lands in the first test's turns and
    its overhead figures, so the same loop measures slower first than later. This drives
    every client path a test meets (sync and async, streamed and not, the stream helper,
    the WebSocket event types) over an in-memory transport, once per process. Returns
    False when openai is not installed.
    """
    global _warmed, _agents_warmed
    steps: list[Callable[[], None]] = []
    response = _sample_response()
    request = _sample_request(response)
    if not _warmed:
        if importlib.util.find_spec("openai") is None:
            return False
        events = synthesize_events(response)
        steps += [
            lambda: _warm_event_parsers(events),
            lambda: _warm_stream_helper(events),
            lambda: _warm_request_transforms(request),
            lambda: _run_in_memory(lambda transport: _warm_client_calls(transport, response)),
            lambda: _warm_websocket_clients(request, agents=False),
        ]
        _warmed = True
    # Importing openai-agents takes seconds: warm it only once something imported it.
    if not _agents_warmed and "agents" in sys.modules:
        steps += [
            lambda: _run_in_memory(_warm_agents_run),
            lambda: _warm_websocket_clients(request, agents=True),
        ]
        _agents_warmed = True
    for step in steps:
        # The warm-up leans on SDK internals that change between versions. It only
        # saves time: a step that no longer fits is skipped, never a failed run.
        with contextlib.suppress(Exception):
            step()
    # Also on later calls (rws.agents_model_provider() makes one per test): with the
    # libraries frozen the collection takes well under a millisecond, and the test's
    # turns then start from empty young generations, as the first test's do.
    _freeze_heap()
    return True


def _freeze_heap() -> None:
    # The SDKs' modules, validators and schemas are hundreds of thousands of long-lived
    # objects. A full collection walks them all (100-400 ms here), and one triggered inside
    # a turn would land in its overhead. Collect once now, then move what survives out of
    # the collector's reach: later collections only walk objects made after this point.
    gc.collect()
    gc.freeze()


def _warm_event_parsers(events: list[dict[str, Any]]) -> None:
    from openai._models import construct_type, construct_type_unchecked
    from openai.types.responses import Response, ResponseStreamEvent

    for event in events:
        construct_type(value=event, type_=ResponseStreamEvent)
    construct_type(value=events[-1]["response"], type_=Response)  # a non-streamed answer
    try:
        from openai.types.responses.responses_server_event import ResponsesServerEvent
    except ImportError:  # SDKs without WebSocket mode
        return
    for event in events:
        construct_type_unchecked(value=event, type_=ResponsesServerEvent)  # type: ignore[arg-type]


def _warm_request_transforms(request: dict[str, Any]) -> None:
    # The SDK builds its request-parameter transforms lazily, per type (~6 ms each).
    from openai._utils import maybe_transform
    from openai.types.responses import response_create_params

    maybe_transform({**request, "stream": True}, response_create_params.ResponseCreateParamsStreaming)
    maybe_transform(request, response_create_params.ResponseCreateParamsNonStreaming)
    try:
        from openai.types.responses.responses_client_event_param import ResponsesClientEventParam
    except ImportError:  # SDKs without WebSocket mode
        return
    maybe_transform({"type": "response.create", **request}, ResponsesClientEventParam)


def _warm_stream_helper(events: list[dict[str, Any]]) -> None:
    # ``client.responses.stream()`` accumulates events into parsed snapshots, another
    # lazily built path (~60 ms on its first response).
    try:
        from openai import omit
        from openai._models import construct_type
        from openai.lib.streaming.responses._responses import ResponseStreamState
        from openai.types.responses import ResponseStreamEvent
    except ImportError:  # an SDK without the helper: nothing to warm
        return
    state: Any = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(construct_type(value=event, type_=ResponseStreamEvent))


def _run_in_memory(warm: Callable[[Any], Coroutine[Any, Any, None]]) -> None:
    """Run ``warm(transport)`` with an in-memory transport factory, in a thread of its own.

    ``transport()`` gives a transport answering each request with :func:`_two_turns`.
    """
    import openai  # noqa: F401  (the SDK decides the HTTP library)

    http_library = _http_library()

    def transport() -> Any:
        turns = _two_turns()

        def answer(request: Any) -> Any:
            body = next(turns)
            if json.loads(request.content).get("stream"):
                stream = "".join(sse_block(event) for event in synthesize_events(body)).encode()
                return http_library.Response(
                    200, content=stream, headers={"content-type": "text/event-stream"}
                )
            return http_library.Response(200, json=body)

        return http_library.MockTransport(answer)

    _run_in_thread(warm(transport))


def _two_turns() -> Iterator[dict[str, Any]]:
    """Answers for successive requests: a function call, then the final text, and again,
    so an agent loop runs a tool and finishes."""
    response = _sample_response()
    calling = {**response, "output": response["output"][:2]}
    answering = {**response, "output": response["output"][2:]}
    return itertools.cycle([calling, answering])


_WARMUP_CLIENT_OPTIONS: dict[str, Any] = {
    "api_key": "rws-warmup",
    "base_url": "http://rws-warmup.invalid/v1",
    "max_retries": 0,
}


async def _warm_client_calls(transport: Callable[[], Any], response: dict[str, Any]) -> None:
    """``responses.create`` (streamed and not) and ``responses.stream`` on a sync and an
    async client over an in-memory transport: client set-up, request building, headers,
    the HTTP client's send path and response parsing, without a socket."""
    import openai

    request = _sample_request(response)
    http_client = sdk_http_client(asynchronous=False, transport=transport())
    with openai.OpenAI(http_client=http_client, **_WARMUP_CLIENT_OPTIONS) as client:
        created = client.responses.create(**request)
        for _ in client.responses.create(**request, stream=True):
            pass
        with client.responses.stream(**request) as stream:
            final = stream.get_final_response()
        # Loops send output items back as input: their serializers are built lazily too.
        for item in [*created.output, *final.output]:
            item.to_dict()
    async_http_client = sdk_http_client(asynchronous=True, transport=transport())
    async with openai.AsyncOpenAI(http_client=async_http_client, **_WARMUP_CLIENT_OPTIONS) as async_client:
        await async_client.responses.create(**request)
        async for _ in await async_client.responses.create(**request, stream=True):
            pass
        async with async_client.responses.stream(**request) as async_stream:
            await async_stream.get_final_response()


#: openai-agents runs per warm-up (per mode: HTTP streamed, HTTP not, WebSocket). CPython
#: 3.11 specializes a function's bytecode only once it has run several times (about 8
#: calls): after a single warm-up run, the run loop's once-per-run and per-turn code is
#: still generic, and the first tests pay the difference (measured: first/later 1.2x over
#: WebSocket with one run, 1.1x with several). Each run costs a few tens of milliseconds.
AGENTS_WARMUP_RUNS = 4


async def _warm_agents_run(transport: Callable[[], Any]) -> None:
    """Two-turn openai-agents runs (a tool call, then the answer) over an in-memory
    transport: its run loop, item conversion and tool paths, streamed and not."""
    import openai
    from agents import RunConfig, Runner
    from agents.models.openai_provider import OpenAIProvider

    agent = _warmup_agent()
    for streamed in (False, True) * AGENTS_WARMUP_RUNS:
        http_client = sdk_http_client(asynchronous=True, transport=transport())
        async with openai.AsyncOpenAI(http_client=http_client, **_WARMUP_CLIENT_OPTIONS) as client:
            config = RunConfig(
                model_provider=OpenAIProvider(openai_client=client, use_responses=True), tracing_disabled=True
            )
            if streamed:
                result = Runner.run_streamed(agent, "warm", run_config=config)
                async for _ in result.stream_events():
                    pass
            else:
                await Runner.run(agent, "warm", run_config=config)


def _warmup_agent() -> Any:
    from agents import Agent, function_tool

    @function_tool(name_override="warmup")
    def warmup(a: int) -> str:
        """Warm-up tool."""
        return str(a)

    return Agent(name="warmup", instructions="warm", tools=[warmup], model="warmup")


def _warm_websocket_clients(request: dict[str, Any], *, agents: bool) -> None:
    """WebSocket mode: the SDK's sync and async ``responses.connect()`` or, with ``agents``,
    openai-agents' WebSocket model, against a throwaway server on loopback that answers
    each ``response.create`` with :func:`_two_turns`: the connection set-up, the event
    parsing and the send paths of the WebSocket clients."""
    import openai
    from websockets.sync.server import ServerConnection, serve

    def answer(connection: ServerConnection) -> None:
        turns = _two_turns()
        for _ in connection:
            for event in synthesize_events(next(turns)):
                connection.send(compact(event))

    with serve(answer, "127.0.0.1", 0, compression=None) as server:
        serving = threading.Thread(target=server.serve_forever, name="rws-warmup-ws")
        serving.start()
        try:
            port = server.socket.getsockname()[1]
            options = {**_WARMUP_CLIENT_OPTIONS, "websocket_base_url": f"ws://127.0.0.1:{port}/v1"}
            if not agents:
                client = openai.OpenAI(http_client=sdk_http_client(asynchronous=False), **options)
                with client, client.responses.connect() as connection:
                    connection.response.create(**request)
                    for event in connection:
                        if event.type == "response.completed":
                            break
            _run_in_thread(_warm_async_websocket(options, request, agents=agents))
        finally:
            server.shutdown()
            serving.join()


async def _warm_async_websocket(options: dict[str, Any], request: dict[str, Any], *, agents: bool) -> None:
    import openai

    async with openai.AsyncOpenAI(http_client=sdk_http_client(asynchronous=True), **options) as client:
        if not agents:
            async with client.responses.connect() as connection:
                await connection.response.create(**request)
                async for event in connection:
                    if event.type == "response.completed":
                        break
            return
        from agents import RunConfig, Runner
        from agents.models.openai_provider import OpenAIProvider

        agent = _warmup_agent()
        for _ in range(AGENTS_WARMUP_RUNS * 2):  # a provider per run, as each test makes one
            provider = OpenAIProvider(openai_client=client, use_responses=True, use_responses_websocket=True)
            try:
                config = RunConfig(model_provider=provider, tracing_disabled=True)
                await Runner.run(agent, "warm", run_config=config)
            finally:
                await provider.aclose()  # its WebSocket model keeps the connection open


def exclude_loopback_from_vcr(vcr: Any, port: Callable[[], int | None]) -> None:
    """Keep a pytest-recording/vcrpy cassette from capturing the loopback server's traffic.

    The filter is added to every cassette this VCR builds, after the user's own
    ``before_record_request`` settings, so a ``vcr_config`` cannot drop it. A request
    vcrpy filters out is neither recorded nor looked up: it goes to the loopback server.
    """
    build = vcr._build_before_record_request

    def build_with_exclusion(options: Any) -> Callable[[Any], Any]:
        user_filter = build(options)

        def before_record_request(request: Any) -> Any:
            ours = port()
            if ours is not None and request.host in ("127.0.0.1", "localhost") and request.port == ours:
                return None
            return user_filter(request)

        return before_record_request

    vcr._build_before_record_request = build_with_exclusion
