"""Recorded errors replay as the service answered them, and unknown events pass through.

Each test records from a scripted upstream on loopback (``support.scripted``), then
replays offline, and checks what the real openai SDK, sync and async, saw over each
transport the error exists on: WebSocket ``error`` events (before and after a created
response), both HTTP mid-stream error shapes, an HTTP 429 with the headers clients back
off on, and event types and fields no SDK knows.
"""

from __future__ import annotations

import json
from typing import Any

from support.project import SUPPORT, Project
from support.scripted import Reply, ScriptedServer, serve_scripted, sse_bytes

MODEL = "gpt-5.2"
FLAVOURS = ("sync", "async")


def _response(response_id: str, status: str, output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": 1764547200,
        "status": status,
        "model": MODEL,
        "output": output or [],
        "error": None,
    }


def _created(response_id: str) -> dict[str, Any]:
    return {
        "type": "response.created",
        "response": _response(response_id, "in_progress"),
        "sequence_number": 0,
    }


def _in_progress(response_id: str) -> dict[str, Any]:
    return {
        "type": "response.in_progress",
        "response": _response(response_id, "in_progress"),
        "sequence_number": 1,
    }


MESSAGE = {
    "type": "message",
    "id": "msg_1",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "ok", "annotations": []}],
}
SERVER_ERROR = {
    "type": "server_error",
    "code": "server_error",
    "message": "The server had an error while processing your request. Sorry about that!",
    "param": None,
}


def _error_clients(project: Project, name: str, source: str) -> None:
    project.pytester.makepyfile(error_clients=(SUPPORT / "error_clients.py").read_text(encoding="utf-8"))
    project.write(name, source)


def _record(project: Project, upstream: ScriptedServer, *args: str, passed: int) -> dict[str, Any]:
    result = project.record(upstream, *args)  # type: ignore[arg-type]
    result.assert_outcomes(passed=passed)
    return project.events()


def _replay(project: Project, *args: str, passed: int) -> dict[str, Any]:
    project.replay(*args).assert_outcomes(passed=passed)
    return project.events()


def _raised(name: str, status: int | None, body: dict[str, Any], **headers: str) -> list[dict[str, Any]]:
    return [{"raised": name, "status": status, "body": body, "headers": headers}]


# -- 1. WebSocket error events -------------------------------------------------------------------------

WS_EARLY = {
    "type": "error",
    "status": 400,
    "error": {
        "type": "invalid_request_error",
        "code": "invalid_prompt",
        "message": "Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
        "param": "input",
    },
}
WS_LATE = {"type": "error", "status": 500, "error": SERVER_ERROR}
WS_LATE_EVENTS = [_created("resp_late"), _in_progress("resp_late"), WS_LATE]

OBSERVING_TESTS = """
import error_clients, pytest

INPUTS = {inputs!r}

@pytest.mark.rws_cassette(allow_playback_repeats=True)
def test_sync(rws):
    error_clients.observe(rws, INPUTS, plain=not rws.recording)

@pytest.mark.asyncio
@pytest.mark.rws_cassette(allow_playback_repeats=True)
async def test_async(rws):
    await error_clients.observe_async(rws, INPUTS, plain=not rws.recording)
"""


def test_websocket_error_events_replay_as_recorded_and_as_the_services_http_answers(project: Project) -> None:
    _error_clients(project, "test_ws_errors", OBSERVING_TESTS.format(inputs=("ws-early", "ws-late")))
    replies = {"ws-early": [Reply(events=(WS_EARLY,))], "ws-late": [Reply(events=tuple(WS_LATE_EVENTS))]}
    with serve_scripted(replies) as upstream:
        recorded = _record(project, upstream, "--rws-transports=ws", passed=2)
    turns = json.loads(project.cassettes()[0].read_text())["turns"]
    assert [turn["outcome"] for turn in turns] == ["error", "error"]
    seen = _replay(project, passed=4)
    for flavour in FLAVOURS:
        # Live, and replayed over WebSocket: the recorded events exactly; the connection
        # stays open after an error, so the second turn runs on it.
        assert recorded[f"{flavour} ws ws-early"] == seen[f"{flavour} ws ws-early"] == [WS_EARLY]
        assert recorded[f"{flavour} ws ws-late"] == seen[f"{flavour} ws ws-late"] == WS_LATE_EVENTS
        # Over HTTP an error before any response is the non-2xx JSON error, streamed or not.
        for mode in ("http-stream", "http-plain"):
            assert seen[f"{flavour} {mode} ws-early"] == _raised("BadRequestError", 400, WS_EARLY["error"])
        # After a created response: the stream ends with the documented flat error event,
        # which the SDK yields as an event (as it yields the WebSocket one).
        flat = {"type": "error", **{k: SERVER_ERROR[k] for k in ("code", "message", "param")}}
        assert seen[f"{flavour} http-stream ws-late"] == [*WS_LATE_EVENTS[:2], {**flat, "sequence_number": 2}]
        # A plain request gets the error that ended the turn, with its status.
        assert seen[f"{flavour} http-plain ws-late"] == _raised("InternalServerError", 500, SERVER_ERROR)


# -- 2. HTTP mid-stream errors in both shapes ----------------------------------------------------------

DELTA = {
    "type": "response.output_text.delta",
    "sequence_number": 2,
    "item_id": "msg_1",
    "output_index": 0,
    "content_index": 0,
    "delta": "o",
    "logprobs": [],
}
HTTP_FLAT = {
    "type": "error",
    **{k: SERVER_ERROR[k] for k in ("code", "message", "param")},
    "sequence_number": 3,
}
HTTP_NESTED = {"type": "error", "sequence_number": 2, "error": SERVER_ERROR}
FLAT_EVENTS = [_created("resp_flat"), _in_progress("resp_flat"), DELTA, HTTP_FLAT]
NESTED_EVENTS = [_created("resp_nested"), _in_progress("resp_nested"), HTTP_NESTED]
#: A response the service ends after the error too: the events after it stay with the turn.
THEN_FAILED_RESPONSE = {**_response("resp_failed", "failed"), "error": SERVER_ERROR}
THEN_FAILED_EVENTS = [
    _created("resp_failed"),
    _in_progress("resp_failed"),
    HTTP_NESTED,
    {"type": "response.failed", "response": THEN_FAILED_RESPONSE, "sequence_number": 3},
]

RAW_SSE_TEST = """

import agent_loops, httpx, os

@pytest.mark.rws_transports("http")
@pytest.mark.rws_cassette(allow_playback_repeats=True)
def test_raw(rws):
    key = os.environ.get("OPENAI_API_KEY", "replaying")
    for text in INPUTS:
        answer = httpx.post(
            rws.base_url + "/responses",
            json={{"model": "gpt-5.2", "input": text, "stream": True}},
            headers={{"authorization": "Bearer " + key}},
            timeout=10,
        )
        agent_loops.save_events(
            f"raw {{text}}",
            [{{"status": answer.status_code, "type": answer.headers["content-type"], "body": answer.text}}],
        )
"""


def test_http_mid_stream_errors_replay_byte_for_byte_and_in_the_websocket_shape(project: Project) -> None:
    # The turn with events after its error goes last: a WebSocket client stops reading at the
    # error, so the rest of that turn stays unread on the connection (as it would live).
    scripts = {"http-flat": FLAT_EVENTS, "http-nested": NESTED_EVENTS, "http-then-failed": THEN_FAILED_EVENTS}
    _error_clients(
        project, "test_http_errors", (OBSERVING_TESTS + RAW_SSE_TEST).format(inputs=tuple(scripts))
    )
    replies = {text: [Reply(events=tuple(events))] for text, events in scripts.items()}
    with serve_scripted(replies) as upstream:
        recorded = _record(project, upstream, "--rws-transports=http", passed=3)
    turns = json.loads((project.cassettes()[0].parent / "test_sync.json").read_text())["turns"]
    # One turn per request, each with every event of its body.
    assert [[event["data"] for event in turn["events"]] for turn in turns] == list(scripts.values())
    assert [turn["outcome"] for turn in turns] == ["error", "error", "failed"]
    seen = _replay(project, passed=5)
    raised = _raised("APIError", None, SERVER_ERROR)
    for views in (recorded, seen):
        # The same bytes as the upstream sent, live and replayed.
        for text, events in scripts.items():
            raw = views[f"raw {text}"][0]
            assert raw["status"] == 200 and raw["type"].startswith("text/event-stream")
            assert raw["body"] == sse_bytes(events).decode("utf-8")
        for flavour in FLAVOURS:
            # The SDK yields the flat error as an event and raises APIError on the nested one.
            assert views[f"{flavour} http-stream http-flat"] == FLAT_EVENTS
            assert views[f"{flavour} http-stream http-nested"] == [*NESTED_EVENTS[:2], *raised]
            assert views[f"{flavour} http-stream http-then-failed"] == [*THEN_FAILED_EVENTS[:2], *raised]
    wrapped = {"type": "error", "status": 500, "error": SERVER_ERROR}
    for flavour in FLAVOURS:
        # A plain request gets the error the stream ended with as a 500, or the failed response.
        for text in ("http-flat", "http-nested"):
            assert seen[f"{flavour} http-plain {text}"] == _raised("InternalServerError", 500, SERVER_ERROR)
        assert seen[f"{flavour} http-plain http-then-failed"] == [THEN_FAILED_RESPONSE]
        # Over WebSocket each becomes the service's wrapped error event; sequence_number stays.
        assert seen[f"{flavour} ws http-flat"] == [*FLAT_EVENTS[:3], {**wrapped, "sequence_number": 3}]
        for text, events in (("http-nested", NESTED_EVENTS), ("http-then-failed", THEN_FAILED_EVENTS)):
            assert seen[f"{flavour} ws {text}"] == [*events[:2], {**wrapped, "sequence_number": 2}]


# -- 3. HTTP error statuses with the headers clients act on --------------------------------------------

LIMIT_ERROR = {
    "message": "Rate limit reached for gpt-5.2 on requests per min (RPM): Limit 3, Used 3, Requested 1.",
    "type": "requests",
    "param": None,
    "code": "rate_limit_exceeded",
}
KEPT = {
    "retry-after": "1",
    "retry-after-ms": "800",
    "x-should-retry": "true",
    "x-ratelimit-remaining-requests": "0",
}
LIMITED = Reply(
    status=429,
    body={"error": LIMIT_ERROR},
    headers=(
        *KEPT.items(),
        ("x-request-id", "req_upstream_429"),
        ("set-cookie", "__cf_bm=scripted-cookie-value; path=/"),
        ("openai-organization", "org-scripted"),
    ),
)
DONE = Reply(body=_response("resp_done", "completed", [MESSAGE]))

RATE_LIMIT_TESTS = """
import agent_loops, error_clients, httpx, os, time, pytest

@pytest.mark.rws_cassette(allow_playback_repeats=True)
def test_sync(rws):
    error_clients.observe(rws, ["limited"])

@pytest.mark.asyncio
@pytest.mark.rws_cassette(allow_playback_repeats=True)
async def test_async(rws):
    await error_clients.observe_async(rws, ["limited"])

@pytest.mark.rws_transports("http")
def test_raw(rws):
    key = os.environ.get("OPENAI_API_KEY", "replaying")
    answer = httpx.post(
        rws.base_url + "/responses",
        json={"model": "gpt-5.2", "input": "limited"},
        headers={"authorization": "Bearer " + key},
        timeout=10,
    )
    names = ("retry-after", "retry-after-ms", "x-should-retry", "x-ratelimit-remaining-requests", "set-cookie")
    headers = {name: answer.headers.get(name) for name in names}
    agent_loops.save_events("raw", [{"status": answer.status_code, "headers": headers, "id": answer.headers["x-request-id"]}])

# The SDK's own first back-off is 0.375-0.5 s: waiting 0.8 s shows it took retry-after-ms.

@pytest.mark.rws_transports("http")
def test_backoff(rws):
    started = time.monotonic()
    response = rws.openai_client(max_retries=1).responses.create(model="gpt-5.2", input="once-sync")
    assert response.output_text == "ok"
    assert time.monotonic() - started >= 0.8

@pytest.mark.asyncio
@pytest.mark.rws_transports("http")
async def test_backoff_async(rws):
    started = time.monotonic()
    response = await rws.async_openai_client(max_retries=1).responses.create(model="gpt-5.2", input="once-async")
    assert response.output_text == "ok"
    assert time.monotonic() - started >= 0.8
"""


def test_a_recorded_429_replays_with_its_retry_headers_and_the_sdk_backs_off(project: Project) -> None:
    _error_clients(project, "test_limits", RATE_LIMIT_TESTS)
    replies = {"limited": [LIMITED], "once-sync": [LIMITED, DONE], "once-async": [LIMITED, DONE]}
    with serve_scripted(replies) as upstream:
        recorded = _record(project, upstream, "--rws-transports=http", passed=5)
        # One retry each, after the header's delay.
        assert upstream.app.seen.count(("http", "once-sync")) == 2
        assert upstream.app.seen.count(("http", "once-async")) == 2
    cassettes = {path.stem: path.read_text() for path in project.cassettes()}
    for text in cassettes.values():
        # Only the allow-listed headers are kept: no cookie, organization or request id.
        for absent in ("scripted-cookie-value", "set-cookie", "org-scripted", "req_upstream_429"):
            assert absent not in text
    turns = json.loads(cassettes["test_backoff"])["turns"]
    assert [(turn["status"], turn.get("headers")) for turn in turns] == [(429, KEPT), (200, None)]
    seen = _replay(project, passed=7)
    limited = _raised("RateLimitError", 429, LIMIT_ERROR, **KEPT)
    for views in (recorded, seen):
        for flavour in FLAVOURS:
            for mode in ("http-stream", "http-plain"):
                assert views[f"{flavour} {mode} limited"] == limited
    # The client acts on the same headers live and replayed; replay gives its own request id.
    assert recorded["raw"] == [
        {"status": 429, "headers": {**KEPT, "set-cookie": None}, "id": "req_upstream_429"}
    ]
    assert seen["raw"][0]["headers"] == {**KEPT, "set-cookie": None}
    assert seen["raw"][0]["id"].startswith("req_rws_")
    # Over WebSocket the 429 is the service's wrapped error event with its status.
    for flavour in FLAVOURS:
        assert seen[f"{flavour} ws limited"] == [{"type": "error", "status": 429, "error": LIMIT_ERROR}]


# -- 4. Unknown and future events pass through ---------------------------------------------------------

FUTURE_EVENT = {
    "type": "response.future_widget.delta",
    "sequence_number": 2,
    "item_id": "wg_1",
    "output_index": 0,
    "widget": {"shape": "hexagon", "sides": [6, {"größe": None}], "nested": {"deep": [True, 1.5, "✓"]}},
    "delta": "ünïcode ✓",
}
KNOWN_WITH_UNKNOWN_FIELDS = {
    **DELTA,
    "sequence_number": 3,
    "output_index": 1,
    "future_field": {"kind": "new", "n": [1, 2]},
}
FUTURE_COMPLETED = {
    "type": "response.completed",
    "response": {**_response("resp_future", "completed", [MESSAGE]), "future_usage": {"widgets": 1}},
    "sequence_number": 4,
}
FUTURE_EVENTS = [
    _created("resp_future"),
    _in_progress("resp_future"),
    FUTURE_EVENT,
    KNOWN_WITH_UNKNOWN_FIELDS,
    FUTURE_COMPLETED,
]

FUTURE_TESTS = """
import error_clients, pytest

INPUTS = ["future-http"]  # for test_raw

@pytest.mark.rws_cassette(allow_playback_repeats=True)
def test_from_http_sync(rws):
    error_clients.observe(rws, ["future-http"], plain=not rws.recording)

@pytest.mark.asyncio
@pytest.mark.rws_cassette(allow_playback_repeats=True)
async def test_from_http_async(rws):
    await error_clients.observe_async(rws, ["future-http"], plain=not rws.recording)

@pytest.mark.rws_cassette(allow_playback_repeats=True)
def test_from_ws_sync(rws):
    error_clients.observe(rws, ["future-ws"], plain=not rws.recording)

@pytest.mark.asyncio
@pytest.mark.rws_cassette(allow_playback_repeats=True)
async def test_from_ws_async(rws):
    await error_clients.observe_async(rws, ["future-ws"], plain=not rws.recording)
"""


def test_unknown_event_types_and_fields_pass_through_both_transports_untouched(project: Project) -> None:
    _error_clients(project, "test_future", FUTURE_TESTS + RAW_SSE_TEST.format())
    reply = Reply(events=tuple(FUTURE_EVENTS))
    with serve_scripted({"future-http": [reply], "future-ws": [reply]}) as upstream:
        recorded = _record(project, upstream, "-k", "from_http or raw", "--rws-transports=http", passed=3)
        recorded.update(_record(project, upstream, "-k", "from_ws", "--rws-transports=ws", passed=2))
    for path in project.cassettes():
        if path.stem == "test_raw":
            continue
        # Recorder and redactor keep every event as the upstream sent it.
        events = [event["data"] for event in json.loads(path.read_text())["turns"][0]["events"]]
        assert events == FUTURE_EVENTS, path.stem
    seen = _replay(project, passed=9)
    for views in (recorded, seen):
        assert views["raw future-http"][0]["body"] == sse_bytes(FUTURE_EVENTS).decode("utf-8")
    for flavour in FLAVOURS:
        for source in ("future-http", "future-ws"):
            for mode in ("ws", "http-stream"):
                if f"{flavour} {mode} {source}" in recorded:
                    assert recorded[f"{flavour} {mode} {source}"] == FUTURE_EVENTS
                assert seen[f"{flavour} {mode} {source}"] == FUTURE_EVENTS, (flavour, mode, source)
            # A plain request gets the final response with its unknown fields.
            assert seen[f"{flavour} http-plain {source}"] == [FUTURE_COMPLETED["response"]]
