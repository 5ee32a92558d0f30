"""Connections from the recording proxy to the real (or simulated) upstream."""

from __future__ import annotations

from collections.abc import Mapping

from websockets.asyncio.client import ClientConnection, connect

#: Headers that belong to one hop (or to the WebSocket handshake) and are never forwarded.
HOP_HEADERS = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "content-length",
        "accept-encoding",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
#: Bound on opening an upstream WebSocket (TCP, TLS and handshake). The client waits for
#: its own handshake meanwhile (the openai SDK's client gives up after 10 s, websockets'
#: default), so this must be shorter for the test to fail with the plugin's message.
UPSTREAM_WEBSOCKET_OPEN_TIMEOUT_S = 8.0


def forwarded_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The client's headers as the upstream should see them (auth passes through)."""
    return [(name, value) for name, value in headers.items() if name.lower() not in HOP_HEADERS]


def http_url(upstream: str) -> str:
    """The upstream as an HTTP base URL: ``wss://`` -> ``https://`` (TLS kept), ``ws://`` -> ``http://``."""
    base = upstream.rstrip("/")
    if base.startswith("wss://"):
        return "https://" + base[len("wss://") :]
    if base.startswith("ws://"):
        return "http://" + base[len("ws://") :]
    return base


def websocket_url(upstream: str, path_suffix: str = "/responses", query: str = "") -> str:
    """``https://host/v1`` -> ``wss://host/v1/responses`` (``http`` -> ``ws``)."""
    base = upstream.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    url = base + path_suffix
    return f"{url}?{query}" if query else url


async def open_upstream_websocket(
    url: str, headers: Mapping[str, str], open_timeout: float = UPSTREAM_WEBSOCKET_OPEN_TIMEOUT_S
) -> ClientConnection:
    """Open the upstream WebSocket the way the openai SDK does (no compression, no size cap)."""
    return await connect(
        url,
        additional_headers=forwarded_headers(headers),
        user_agent_header=None,
        compression=None,
        max_size=None,
        open_timeout=open_timeout,
        close_timeout=5,
    )
