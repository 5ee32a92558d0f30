"""The loopback Responses server: a plain ASGI app routing each test's mount.

URLs look like ``http://127.0.0.1:PORT/rws/<mount>/v1/responses``; the same path
serves the WebSocket upgrade (WebSocket mode) and, for HTTP, ``POST`` with SSE.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from ..errors import RecordingError, RwsError
from .common import error_body
from .http import HttpExchange
from .mount import Mount
from .runner import LoopbackRunner, Receive, Scope, Send
from .websocket import WebSocketSession


class UnsupportedEndpointError(RwsError, AssertionError):
    """A test's client called an endpoint the loopback server does not replay."""


MOUNT_PREFIX = "/rws/"
#: How long the end of a recording test waits for connections to finish closing: briefly,
#: or longer while an answer is still arriving.
CLOSE_GRACE_S = 0.25
CLOSE_WAIT_S = 2.0
#: Bound on writing a cassette at the end of a test.
STOP_FINISH_S = 30.0


class LoopbackApp:
    """Routes requests to the mount named in their path."""

    def __init__(self) -> None:
        self.mounts: dict[str, Mount] = {}

    def resolve(self, path: str) -> tuple[Mount | None, str, str]:
        """(mount, mount id, path below the mount) for a request path."""
        if not path.startswith(MOUNT_PREFIX):
            return None, "", path
        mount_id, _, rest = path[len(MOUNT_PREFIX) :].partition("/")
        return self.mounts.get(mount_id), mount_id, "/" + rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("websocket", "http"):
            return
        mount, mount_id, rest = self.resolve(scope.get("path", ""))
        if mount is None:
            await _not_found(scope, receive, send, mount_id, rest)
            return
        if not rest.rstrip("/").endswith("/responses"):
            # A live test asked for an endpoint that is not replayed (retrieve, files, ...).
            method = "WebSocket" if kind == "websocket" else scope.get("method", "?")
            message = (
                f"{method} {rest} is not replayed: pytest-responses-ws serves POST /v1/responses and its "
                "WebSocket mode only"
            )
            mount.fail(UnsupportedEndpointError(message))
            await _not_found(scope, receive, send, "", rest, message)
            return
        if kind == "websocket":
            await WebSocketSession(mount, scope, receive, send).run()
        else:
            await HttpExchange(mount, scope, receive, send).run()


async def _json_response(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _not_found(
    scope: Scope, receive: Receive, send: Send, mount_id: str, rest: str, message: str = ""
) -> None:
    if not message and mount_id:
        message = (
            f"no running test owns mount {mount_id!r}: the client was probably created by a test that has "
            "finished. Create clients inside the test (or from the rws fixture)."
        )
    elif not message:
        message = f"unknown path {scope.get('path')!r}; point clients at rws.base_url"
    if scope["type"] == "websocket":
        await receive()
        payload = json.dumps(error_body("rws_unknown_mount", message)).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": payload})
        return
    await _json_response(send, 404, error_body("rws_unknown_mount", message))


def _spawn(closer: Callable[[], Any]) -> Callable[[], object]:
    """A callback that starts ``closer()`` (a coroutine) as a task on the running loop."""
    return lambda: asyncio.ensure_future(closer())


class LoopbackServer:
    """The session's loopback server: the app, its uvicorn thread, and mount bookkeeping."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = LoopbackApp()
        self.runner = LoopbackRunner(self.app, host=host, port=port, name="rws-loopback")
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self) -> LoopbackServer:
        self.runner.start()
        return self

    def stop(self) -> None:
        self.runner.stop()

    @property
    def origin(self) -> str:
        return f"http://{self.runner.host}:{self.runner.port}"

    def new_mount_id(self) -> str:
        with self._lock:
            return f"t{next(self._ids)}"

    def add(self, mount: Mount) -> None:
        self.app.mounts[mount.id] = mount

    def base_url(self, mount: Mount) -> str:
        return f"{self.origin}{MOUNT_PREFIX}{mount.id}/v1"

    def websocket_base_url(self, mount: Mount) -> str:
        return "ws" + self.base_url(mount)[len("http") :]

    def remove(self, mount: Mount) -> list[Any]:
        """End a test's mount: let its connections close, write its cassette, return its failures."""
        if mount.records:
            mount.wait_faulted_turns()  # an answer cut short for the client is still recorded whole
            # Close codes are part of the recording: give clients a moment to finish closing,
            # longer only while an answer is still arriving (clients may keep sockets open).
            mount.wait_idle(CLOSE_WAIT_S if mount.recording_in_flight() else CLOSE_GRACE_S)
            # Waiting for another process's write happens here, not on the server loop.
            mount.lock_cassette()
            try:
                # The recorder is the server loop's: finish (and write) there, not from this thread.
                failures = self.runner.run_on_loop(mount.finish, STOP_FINISH_S)
            except concurrent.futures.TimeoutError:
                with mount.lock:
                    failures = list(mount.failures)
                failures.append(
                    RecordingError(
                        f"recording failed: the loopback server did not finish writing {mount.path} within "
                        f"{STOP_FINISH_S:g} s (its event loop was busy or blocked); the cassette may not "
                        "have been written. Run the test again."
                    )
                )
            finally:
                mount.unlock_cassette()
        else:
            failures = mount.finish()
        for closer in mount.take_closers():
            self.runner.call_soon(_spawn(closer))
        self.app.mounts.pop(mount.id, None)
        return failures
