"""A minimal streaming HTTP/1.1 client for the recording proxy (asyncio streams + h11).

The proxy cannot use httpx: vcrpy, respx and this plugin's own redirect patch httpx and
httpcore classes process-wide while a test runs, and would capture or reroute the
proxy's traffic to the upstream. Plain asyncio streams are patched by none of them.
One connection per exchange is plenty for recording, which happens rarely.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import h11

from ..core.stall import Bound

#: Bound on opening the connection (TCP and TLS).
CONNECT_TIMEOUT_S = 30.0
_CHUNK = 65536


class UpstreamHttpError(OSError):
    """The upstream could not be reached, or broke the exchange."""


class UpstreamStall(UpstreamHttpError):
    """The upstream stayed silent longer than ``bound`` allows, or, with ``unfinished``,
    had sent part of a non-streamed answer but not all of it within ``bound``."""

    def __init__(self, bound: Bound, host: str, *, unfinished: bool = False) -> None:
        self.bound = bound
        self.unfinished = unfinished
        what = "the rest of the answer" if unfinished else "no data"
        super().__init__(f"{what} from {host} within {bound.seconds:g} s ({bound.setting})")


class UpstreamResponse:
    """Status and headers of an upstream answer; the body is read as it arrives
    (:meth:`aiter_bytes`, a stream) or whole (:meth:`aread`, an answer that is not)."""

    def __init__(
        self, status_code: int, headers: dict[str, str], body: Callable[[bool], AsyncIterator[bytes]]
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self._body = body

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive, each within the idle bound of the one before."""
        return self._body(False)

    async def aread(self) -> bytes:
        """The whole body, due within the first-event bound of the request."""
        return b"".join([chunk async for chunk in self._body(True)])


@asynccontextmanager
async def post(
    url: str,
    body: bytes,
    headers: Sequence[tuple[str, str]],
    *,
    first_event: Bound,
    idle: Bound,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> AsyncIterator[UpstreamResponse]:
    """POST ``body`` to ``url`` and yield the response with a streaming body.

    The first byte of the body must arrive within ``first_event`` of the request, however
    the head trickles in; then the upstream may stay silent for ``idle`` between chunks of
    a stream. A body read whole (:meth:`UpstreamResponse.aread`, a non-streamed answer,
    whose one event is the whole body) must be complete within ``first_event``, however
    it trickles in. Sending the request counts against ``first_event`` too.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=ssl.create_default_context() if secure else None,
                server_hostname=host if secure else None,
            ),
            connect_timeout,
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise UpstreamHttpError(f"could not connect to {host}:{port}: {exc!r}") from exc
    connection = h11.Connection(h11.CLIENT)
    skip = {"host", "content-length", "connection", "transfer-encoding"}
    request_headers = [
        ("host", parts.netloc),
        ("content-length", str(len(body))),
        ("connection", "close"),
        *((name, value) for name, value in headers if name.lower() not in skip),
    ]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    body_started = False
    loop = asyncio.get_running_loop()
    # The first event is due by a deadline, not within a bound per read: an upstream that
    # trickles its head a byte at a time must not keep the test waiting forever.
    first_event_due = loop.time() + first_event.seconds

    async def next_event(*, whole_body: bool = False) -> object:
        while True:
            event = connection.next_event()
            if event is not h11.NEED_DATA:
                return event
            if body_started and not whole_body:
                bound, wait_s = idle, idle.seconds
            else:
                bound, wait_s = first_event, max(0.0, first_event_due - loop.time())
            try:
                data = await asyncio.wait_for(reader.read(_CHUNK), wait_s)
            except asyncio.TimeoutError:
                raise UpstreamStall(bound, f"{host}:{port}", unfinished=whole_body and body_started) from None
            connection.receive_data(data)

    try:
        writer.write(connection.send(h11.Request(method="POST", target=target, headers=request_headers)))
        writer.write(connection.send(h11.Data(data=body)))
        writer.write(connection.send(h11.EndOfMessage()))
        try:
            await asyncio.wait_for(writer.drain(), first_event.seconds)
        except asyncio.TimeoutError:
            raise UpstreamStall(first_event, f"{host}:{port}") from None
        event = await next_event()
        while isinstance(event, h11.InformationalResponse):
            event = await next_event()
        if not isinstance(event, h11.Response):
            raise UpstreamHttpError(f"unexpected answer from {host}:{port}: {event!r}")
        response_headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers
        }

        async def chunks(whole_body: bool) -> AsyncIterator[bytes]:
            nonlocal body_started
            while True:
                item = await next_event(whole_body=whole_body)
                if isinstance(item, h11.Data):
                    body_started = True
                    yield bytes(item.data)
                elif isinstance(item, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return
                else:
                    raise UpstreamHttpError(f"unexpected event from {host}:{port}: {item!r}")

        yield UpstreamResponse(event.status_code, response_headers, chunks)
    except (h11.ProtocolError, ConnectionError) as exc:
        raise UpstreamHttpError(f"the exchange with {host}:{port} broke: {exc!r}") from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 5)
