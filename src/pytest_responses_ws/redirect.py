"""In-process routing for clients that cannot be given a base URL.

Clients are normally pointed at the loopback server through their base URL (the
``rws`` fixture sets ``OPENAI_BASE_URL`` and ``OPENAI_WEBSOCKET_BASE_URL``). A client
with a hard-coded ``https://api.openai.com/v1`` (a module-level httpx client, a
library that ignores the environment) would go past it. While a test uses ``rws``,
requests to the upstream's host, and to the real API's, are caught at the client
libraries (see :meth:`RedirectTarget.caught`):

- httpx2 (openai-python 3.x) and httpx at their transports' send methods, and httpx through a
  respx router when routing (one route deciding for every request; the rest passes through),
- WebSocket connects through ``websockets`` (sync and asyncio) and openai's own
  subclasses of them (``_WebSocketConnect``, ``_SyncWebSocketConnect``).

With ``redirect=True`` a caught request goes to this test's mount instead. Otherwise,
while replaying, it is refused: the client gets an error at once (a 400, or a refused
connection) and the test fails saying how to route it. Everything is patched through
``monkeypatch``, so it is undone when the test ends. These patches come before the
socket-level network guard (``guard.py``), which stops every other connection.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

# Re-exported: it lived here before the pytest-free server needed it.
from .errors import refusal_message as refusal_message
from .guard import is_loopback, normalize_host
from .settings import DEFAULT_UPSTREAM

#: Error code of the answer a refused request gets.
UNROUTED_CODE = "rws_unrouted_request"


class UnroutedConnectionError(ConnectionRefusedError):
    """A WebSocket connect to the real upstream was refused during replay."""


@dataclass(frozen=True)
class RedirectTarget:
    """Where requests for the upstream should go, and what to do with them."""

    upstream: str
    http_base: str
    websocket_base: str
    route: bool
    #: Records a refused request as a test failure; returns the message for the client.
    refuse: Callable[[str], str]

    def caught(self, url: str) -> bool:
        """Whether ``url`` is on the upstream or the real API (see :func:`_same_server`)."""
        return self._base_for(url) is not None

    def _base_for(self, url: str) -> str | None:
        for base in (self.upstream, DEFAULT_UPSTREAM):
            if _same_server(url, base):
                return base
        return None

    def rewrite(self, url: str) -> str:
        """``url`` (on the upstream or the real API) as the same path below this test's mount."""
        parts = urlsplit(url)
        prefix = urlsplit(self._base_for(url) or self.upstream).path.rstrip("/")
        path = parts.path[len(prefix) :] if prefix and parts.path.startswith(prefix) else parts.path
        base = urlsplit(self.websocket_base if parts.scheme in ("ws", "wss") else self.http_base)
        return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + path, parts.query, ""))


_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _same_server(url: str, base: str) -> bool:
    """Whether ``url`` goes to the server of ``base``.

    Host names compare without case or a final dot (``api.openai.com.`` is the same
    host). A loopback host shares its address with the loopback server, so there the
    port tells them apart; elsewhere any scheme and port of the host counts
    (``http://api.openai.com`` is the real API too).
    """
    try:
        target, upstream = urlsplit(url), urlsplit(base)
        if normalize_host(target.hostname or "") != normalize_host(upstream.hostname or ""):
            return False
        if not is_loopback(upstream.hostname or ""):
            return True
        return (target.port or _DEFAULT_PORTS.get(target.scheme)) == (
            upstream.port or _DEFAULT_PORTS.get(upstream.scheme)
        )
    except ValueError:  # a malformed port: not a URL any client could have reached
        return False


def _error_json(message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": UNROUTED_CODE}
    }


def _patch_transports(monkeypatch: pytest.MonkeyPatch, target: RedirectTarget, module: Any) -> None:
    """Route or refuse caught requests at the send methods of an httpx-shaped library's transports.

    openai-python 3.x runs on httpx2, which respx does not reach; for httpx this refuses while
    replaying, and respx routes when ``redirect=True`` (see :func:`_respx_router`).
    """

    def redirected(request: Any) -> Any:
        """The request to send instead, or a refusal response."""
        url = str(request.url)
        if target.route:
            request.url = module.URL(target.rewrite(url))
            request.headers["host"] = request.url.netloc.decode("ascii")
            return request
        return module.Response(400, json=_error_json(target.refuse(url)), request=request)

    sync_send = module.HTTPTransport.handle_request
    async_send = module.AsyncHTTPTransport.handle_async_request

    def handle_request(self: Any, request: Any) -> Any:
        if target.caught(str(request.url)):
            request = redirected(request)
            if isinstance(request, module.Response):
                return request
        return sync_send(self, request)

    async def handle_async_request(self: Any, request: Any) -> Any:
        if target.caught(str(request.url)):
            request = redirected(request)
            if isinstance(request, module.Response):
                return request
        return await async_send(self, request)

    monkeypatch.setattr(module.HTTPTransport, "handle_request", handle_request)
    monkeypatch.setattr(module.AsyncHTTPTransport, "handle_async_request", handle_async_request)


def _client_library(name: str, import_missing: bool) -> Any:
    """The library if the process has it loaded (or, with ``import_missing``, installed)."""
    module = sys.modules.get(name)
    if module is None and import_missing and importlib.util.find_spec(name) is not None:
        module = importlib.import_module(name)
    return module


def _bypass_proxies(monkeypatch: pytest.MonkeyPatch, target: RedirectTarget, import_missing: bool) -> None:
    """Send caught requests through the client's own connection pool, never a proxy.

    A client picks its transport by URL before the request is routed or refused, and a
    replaying test's environment names a proxy (see :mod:`.guard`): a request rewritten
    to the mount must not then be sent to that proxy.
    """
    for name in ("httpx", "httpx2"):
        module = _client_library(name, import_missing)
        if module is None:
            continue
        for client in (module.Client, module.AsyncClient):
            choose = client._transport_for_url

            def transport_for_url(self: Any, url: Any, choose: Any = choose) -> Any:
                return self._transport if target.caught(str(url)) else choose(self, url)

            monkeypatch.setattr(client, "_transport_for_url", transport_for_url)


@contextmanager
def _respx_router(target: RedirectTarget) -> Iterator[None]:
    """Route caught httpx requests to the mount (``redirect=True``) with a respx router."""
    import httpx
    import respx

    def side_effect(request: httpx.Request) -> httpx.Request | httpx.Response:
        url = str(request.url)
        if target.route:
            # respx passes a request through only when the side effect returns that same
            # request object, so it is pointed at the mount in place; its stream stays live.
            request.url = httpx.URL(target.rewrite(url))
            request.headers["host"] = request.url.netloc.decode("ascii")
            return request
        return httpx.Response(400, json=_error_json(target.refuse(url)))

    # The "httpx" mocker hands the very request object it matched to the real transport on
    # pass-through, so the in-place rewrite above takes effect (the httpcore mocker would not).
    router = respx.MockRouter(assert_all_called=False, assert_all_mocked=False, using="httpx")
    # One route for every request, deciding with the same predicate as the other adapters
    # (any port, a final dot); returning the request unchanged passes it through.
    router.route().mock(
        side_effect=lambda request: side_effect(request) if target.caught(str(request.url)) else request
    )
    with router:
        yield


def _patch_websockets(monkeypatch: pytest.MonkeyPatch, target: RedirectTarget) -> None:
    import websockets.asyncio.client
    import websockets.sync.client

    def resolve(uri: str) -> str:
        if not target.caught(uri):
            return uri
        if target.route:
            return target.rewrite(uri)
        raise UnroutedConnectionError(target.refuse(uri))

    sync_connect = websockets.sync.client.connect

    def connect(uri: str, *args: Any, **kwargs: Any) -> Any:
        return sync_connect(resolve(uri), *args, **kwargs)

    monkeypatch.setattr(websockets.sync.client, "connect", connect)

    def subclass(base: type[Any]) -> type[Any]:
        class Redirected(base):  # type: ignore[misc]
            def __init__(self, uri: str, *args: Any, **kwargs: Any) -> None:
                super().__init__(resolve(uri), *args, **kwargs)

        Redirected.__name__ = Redirected.__qualname__ = base.__name__
        return Redirected

    monkeypatch.setattr(websockets.asyncio.client, "connect", subclass(websockets.asyncio.client.connect))
    if hasattr(websockets.sync.client, "reconnect"):  # websockets 17.1+: a class, like asyncio's connect
        monkeypatch.setattr(websockets.sync.client, "reconnect", subclass(websockets.sync.client.reconnect))
    # An SDK imported later subclasses the patched classes above, so it is caught too.
    if "openai" in sys.modules:
        try:
            import openai.lib._websocket as openai_websocket
        except ImportError:  # an SDK without WebSocket mode
            return
        # Subclasses openai made of websockets' classes at import: the asyncio connect, and
        # since openai 3.6x the sync reconnect (looked up by ``_connect_sync`` at call time).
        for name in ("_WebSocketConnect", "_SyncWebSocketConnect"):
            base = getattr(openai_websocket, name, None)
            if isinstance(base, type):
                monkeypatch.setattr(openai_websocket, name, subclass(base))


@contextmanager
def guard_upstream(
    monkeypatch: pytest.MonkeyPatch, target: RedirectTarget, *, import_missing: bool = True
) -> Iterator[None]:
    """Catch client requests to the upstream for the duration of the ``with`` block.

    HTTP libraries the process has not loaded are left alone unless ``import_missing``: the
    network guard stops a library imported later while replaying. Routing (``redirect=True``)
    and a replay without the guard import them. A respx router is built only to route.
    """
    _bypass_proxies(monkeypatch, target, import_missing)
    httpx = _client_library("httpx", import_missing)
    with_respx = target.route and httpx is not None and importlib.util.find_spec("respx") is not None
    for module in (_client_library("httpx2", import_missing), None if with_respx else httpx):
        if module is not None:
            _patch_transports(monkeypatch, target, module)
    _patch_websockets(monkeypatch, target)
    if with_respx:
        with _respx_router(target):
            yield
    else:
        yield
