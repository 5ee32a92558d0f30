"""The network guard's parts: the allow-list, the socket patches, the refusing proxy."""

from __future__ import annotations

import base64
import errno
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pytest_responses_ws.guard import (
    AllowList,
    BlockedConnectionError,
    NetworkGuard,
    RefusingProxy,
    is_loopback,
    proxy_environment,
)
from pytest_responses_ws.redirect import RedirectTarget


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("api.openai.com", False),
        ("203.0.113.1", False),
        ("0.0.0.0", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_allow_list_entries() -> None:
    allow = AllowList.parse(["DB.internal.", "*.cache.test", "10.0.0.0/8", "2001:db8::1", "198.51.100.7"])
    for host in ("db.internal", "db.internal.", "a.cache.test", "10.1.2.3", "2001:DB8::1", "198.51.100.7"):
        assert allow.allows(host), host
    for host in ("other.internal", "cache.test", "11.0.0.1", "198.51.100.8", "api.openai.com"):
        assert not allow.allows(host), host
    assert AllowList.parse(["*"]).allows("anything.example")
    assert not AllowList().allows("db.internal")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "db:5432", "a*b", "*"])
def test_malformed_allow_list_entries(entry: str) -> None:
    if entry == "*":
        assert AllowList.parse([entry]).everything
        return
    with pytest.raises(ValueError, match="is not a"):
        AllowList.parse([entry])


@pytest.fixture
def blocked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None]]:
    """Installs a guard allowing db.test, which a fake resolver maps to 198.51.100.7."""
    real_getaddrinfo = socket.getaddrinfo

    def fake_resolver(host: object, port: object, *args: object, **kwargs: object) -> object:
        if host == "db.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("198.51.100.7", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver)
    reports: list[tuple[str, int | None]] = []
    NetworkGuard(AllowList.parse(["db.test"]), lambda host, port: reports.append((host, port))).install(
        monkeypatch
    )
    return reports


def test_names_outside_loopback_are_not_resolved(blocked: list[tuple[str, int | None]]) -> None:
    with pytest.raises(BlockedConnectionError, match=r"api\.openai\.com:443"):
        socket.getaddrinfo("api.openai.com", 443)
    with pytest.raises(BlockedConnectionError):
        socket.gethostbyname("api.openai.com")
    assert blocked == [("api.openai.com", 443), ("api.openai.com", None)]
    # Loopback names resolve; listening addresses are not destinations.
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo(None, 80, flags=socket.AI_PASSIVE)


def test_connections_outside_loopback_are_refused_at_once(blocked: list[tuple[str, int | None]]) -> None:
    with socket.socket() as sock, pytest.raises(BlockedConnectionError) as raised:
        sock.connect(("203.0.113.1", 80))
    assert raised.value.errno == errno.ECONNREFUSED
    assert isinstance(raised.value, OSError)
    with socket.socket() as sock:
        assert sock.connect_ex(("203.0.113.2", 80)) == errno.ECONNREFUSED
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(BlockedConnectionError):
        sock.sendto(b"query", ("203.0.113.3", 53))
    assert blocked == [("203.0.113.1", 80), ("203.0.113.2", 80), ("203.0.113.3", 53)]


def test_loopback_and_unix_sockets_pass(blocked: list[tuple[str, int | None]], tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        socket.create_connection(server.getsockname()[:2], timeout=2).close()
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as listener, socket.socket(socket.AF_UNIX) as client:
        listener.bind(path)
        listener.listen()
        client.connect(path)
    assert blocked == []


def test_addresses_of_allowed_names_are_allowed(blocked: list[tuple[str, int | None]]) -> None:
    address = socket.getaddrinfo("db.test", 5432)[0][4]
    assert address == ("198.51.100.7", 5432)
    # The plugin's guard lets it through; the suite's own guard (conftest.py) stops it.
    with socket.socket() as sock, pytest.raises(OSError, match="loopback only") as raised:
        sock.connect(address)
    assert not isinstance(raised.value, BlockedConnectionError)
    assert blocked == []


def test_the_refusing_proxy_answers_403_and_tells_the_test_by_its_token() -> None:
    proxy = RefusingProxy()
    reports: list[tuple[str, int | None]] = []
    try:
        proxy.register("t1", lambda host, port: reports.append((host, port)))
        environment = proxy_environment(proxy.url("t1"), AllowList.parse(["db.test"]))
        assert environment["NO_PROXY"] == "localhost,127.0.0.1,::1,0.0.0.0,::,db.test"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": environment["http_proxy"]}))
        with pytest.raises(urllib.error.HTTPError) as raised:
            opener.open("http://api.openai.com/v1/models", timeout=5)
        assert raised.value.code == 403
        assert "tried to reach api.openai.com:80 while replaying" in raised.value.read().decode()
        # A tunnel request from another test's client (an unknown token) is refused, not reported.
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            token = base64.b64encode(b"rws:other").decode()
            sock.sendall(
                f"CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode()
            )
            assert sock.recv(100).startswith(b"HTTP/1.1 403")
        assert reports == [("api.openai.com", 80)]
    finally:
        proxy.stop()


def _target(upstream: str) -> RedirectTarget:
    return RedirectTarget(
        upstream=upstream,
        http_base="http://127.0.0.1:5000/rws/t1/v1",
        websocket_base="ws://127.0.0.1:5000/rws/t1/v1",
        route=True,
        refuse=str,
    )


@pytest.mark.parametrize(
    ("upstream", "url", "caught"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1/responses", True),
        ("https://api.openai.com/v1", "http://api.openai.com/v1/responses", True),
        ("https://api.openai.com/v1", "https://API.openai.com.:443/v1/responses", True),
        ("https://api.openai.com/v1", "wss://api.openai.com./v1/responses", True),
        ("https://api.openai.com/v1", "https://example.com/v1/responses", False),
        # A gateway upstream: the real API is still caught.
        ("https://gw.example/openai/v1", "https://api.openai.com/v1/responses", True),
        ("https://gw.example/openai/v1", "http://gw.example:8080/openai/v1/responses", True),
        # A loopback upstream is told apart from the plugin's own server by its port.
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1/responses", True),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:5000/rws/t1/v1/responses", False),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:bad/v1", False),
    ],
)
def test_redirect_catches_the_upstream_and_the_real_api(upstream: str, url: str, caught: bool) -> None:
    assert _target(upstream).caught(url) is caught


def test_redirect_rewrites_below_the_mount_whichever_base_caught_it() -> None:
    target = _target("https://gw.example/openai/v1")
    assert (
        target.rewrite("https://gw.example/openai/v1/responses")
        == "http://127.0.0.1:5000/rws/t1/v1/responses"
    )
    assert target.rewrite("https://api.openai.com/v1/responses?x=1") == (
        "http://127.0.0.1:5000/rws/t1/v1/responses?x=1"
    )
    assert target.rewrite("wss://api.openai.com./v1/responses") == "ws://127.0.0.1:5000/rws/t1/v1/responses"


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "http://api.example:notaport/v1?api-key=Sekr3tSekr3tSekr3t"),
        ("GET", "http://[::1/?k=Sekr3tSekr3tSekr3t"),
    ],
)
def test_a_proxied_request_the_proxy_cannot_parse_is_named_without_its_path_or_query(
    method: str, target: str
) -> None:
    from pytest_responses_ws.guard import _proxy_target

    host, port = _proxy_target(method, target)
    assert "Sekr3t" not in host and port is None
