"""Run an ASGI app under uvicorn on a loopback port, in a background thread.

The socket is bound and listening before the thread starts, so the port is known
at once and early connections wait in the backlog instead of being refused.
Readiness is signalled through the ASGI lifespan protocol, and every wait has a bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

import uvicorn

from ..errors import ServerStartError

_T = TypeVar("_T")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Largest WebSocket frame the server accepts; a bigger one closes the connection with 1009.
#: The SDK sends frames over 1 MiB routinely (it never negotiates compression).
WS_MAX_FRAME_BYTES = 64 * 1024 * 1024
#: How long start and stop may take before the runner gives up.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class _LifespanSignal:
    """Wraps an app so the runner learns when uvicorn has finished starting."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.started = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                self.started.set()
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


class LoopbackRunner:
    """Serves one ASGI app on ``127.0.0.1`` from a daemon thread.

    ``start()`` returns once the server accepts connections; ``stop()`` shuts it
    down and joins the thread. ``call_soon(fn)`` runs ``fn`` on the server's loop.
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, name: str = "rws") -> None:
        self._app = _LifespanSignal(app)
        self._host = host
        self._requested_port = port
        self._name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return self._host

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LoopbackRunner:
        try:
            # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
            # listening socket says so. Without it Nagle meets the client's delayed ACK and
            # every turn stalls ~40 ms after its first frame.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._requested_port))
            sock.listen(128)
        except OSError as exc:
            raise ServerStartError(
                f"could not listen on {self._host}:{self._requested_port}: {exc}. "
                "Loopback must be available; no other address is ever used."
            ) from exc
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="on",
            ws="websockets-sansio",
            ws_max_size=WS_MAX_FRAME_BYTES,
            ws_per_message_deflate=False,
            ws_ping_interval=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-uvicorn", daemon=True)
        self._thread.start()
        if not self._app.started.wait(START_TIMEOUT_S) or self._failure is not None:
            self.stop()
            raise ServerStartError(
                f"the loopback server did not start within {START_TIMEOUT_S:.0f}s"
                + (f": {self._failure!r}" if self._failure else "")
            )
        return self

    def _run(self) -> None:
        assert self._server is not None
        assert self._socket is not None
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # surfaced to start() or stop()
            self._failure = exc
            self._app.started.set()  # wake start() now rather than at its timeout
        finally:
            loop.close()

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Schedule ``callback`` on the server's event loop from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:  # the loop closed between the check and the call
                pass

    def run_on_loop(self, fn: Callable[[], _T], timeout: float) -> _T:
        """Run ``fn`` on the server's loop (where the app's state changes) and return its result."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.running:
            return fn()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return future.result(timeout)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._thread = None
        self._server = None

    def __enter__(self) -> LoopbackRunner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
