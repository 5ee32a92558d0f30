"""The network guard: while a test replays, nothing it runs reaches beyond loopback.

The loopback server answers every Responses request a test makes, so a replaying test
has no reason to open a connection anywhere else; one that does is a client the test
forgot to point at the server, about to spend tokens and leak a prompt. The guard
stops it before a packet leaves, whatever library opened it:

- in the test process, at the :mod:`socket` level: connecting a TCP/UDP socket (and
  sending a datagram) to an address outside loopback, and resolving a host outside
  loopback (for a name, the DNS query is itself traffic), raise :class:`BlockedConnectionError`
  at once. Threads and asyncio event loops (which resolve through
  :func:`socket.getaddrinfo` and connect through :meth:`socket.socket.connect`) are
  covered alike;
- in subprocesses, through their environment: the proxy variables point at
  :class:`RefusingProxy`, a loopback proxy that forwards nothing, with ``NO_PROXY``
  keeping the loopback server direct. A program that honours neither proxies nor base
  URLs is not covered.

Each blocked host is reported once to the test's mount, so the test fails with one
message saying how to fix it, whatever the client did with the error it got. Hosts a
test legitimately needs (a database on another machine) are let through by an
:class:`AllowList`.
"""

from __future__ import annotations

import base64
import binascii
import errno
import ipaddress
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the server imports the allow-list and runs without pytest
    import pytest

#: Names that resolve to loopback without asking a DNS server.
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
#: The environment variables that tell programs which proxy to use, in both spellings.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
LOOPBACK_NO_PROXY = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "::")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Called with the host (and port) a blocked client tried to reach.
Report = Callable[[str, "int | None"], None]


class BlockedConnectionError(ConnectionRefusedError):
    """What a client gets for a connection the network guard blocked."""


def normalize_host(host: str) -> str:
    """``host`` as compared: lower case, without IPv6 brackets or a final dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 scope id
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) stays on this machine."""
    name = normalize_host(host)
    if name in LOOPBACK_NAMES:
        return True
    address = _ip(name)
    return address is not None and address.is_loopback


def is_unspecified(host: str) -> bool:
    """Whether ``host`` is ``0.0.0.0`` or ``::``.

    A server bound there is often reached at the address it reports, and connecting
    there reaches this machine (or nothing): never a connection out.
    """
    address = _ip(normalize_host(host))
    return address is not None and address.is_unspecified


@dataclass(frozen=True)
class AllowList:
    """Hosts a replaying test may reach besides loopback.

    Entries are host names (``db.internal``), wildcards over a domain's subdomains
    (``*.internal``), IP addresses, networks (``10.0.0.0/8``), or ``*`` for any host
    (the guard is then off).
    """

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()
    everything: bool = False

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """An allow-list from its entries; ``ValueError`` names an entry that is none of the above."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        everything = False
        for raw in entries:
            entry = normalize_host(raw)
            if not entry:
                continue
            if entry == "*":
                everything = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            elif "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"{raw!r} is not a network such as 10.0.0.0/8") from None
            elif "*" in entry or any(c.isspace() for c in entry) or (":" in entry and _ip(entry) is None):
                raise ValueError(
                    f"{raw!r} is not a host name, *.domain, IP address or network (ports are not allowed)"
                )
            else:
                names.add(str(_ip(entry) or entry))
        return cls(frozenset(names), tuple(suffixes), tuple(networks), everything)

    def allows(self, host: str) -> bool:
        """Whether ``host`` (a name or an address) is on the list."""
        if self.everything:
            return True
        name = normalize_host(host)
        address = _ip(name)
        if address is not None:
            return str(address) in self.names or any(address in network for network in self.networks)
        return name in self.names or name.endswith(self.suffixes)


def split_host_list(value: str) -> list[str]:
    """Entries of an allow-list written as text: separated by commas or white space."""
    return value.replace(",", " ").split()


@dataclass
class NetworkGuard:
    """Blocks a test's connections beyond loopback and the allow-list (see the module docs)."""

    allow: AllowList
    report: Report
    #: Addresses the allowed names resolved to: connecting to them is allowed too.
    _resolved: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reachable(self, host: str) -> bool:
        if is_loopback(host) or is_unspecified(host) or self.allow.allows(host):
            return True
        address = _ip(normalize_host(host))
        with self._lock:
            return address is not None and str(address) in self._resolved

    def check(self, host: str, port: int | None) -> None:
        """Raise :class:`BlockedConnectionError` (and report) unless ``host`` is reachable."""
        if not self.reachable(host):
            self.report(host, port)
            raise BlockedConnectionError(
                errno.ECONNREFUSED,
                f"pytest-responses-ws blocked a connection to {_where(host, port)}: the test is "
                "replaying, and nothing leaves the machine (see the test's failure for how to fix it)",
            )

    def remember(self, results: Iterable[Any]) -> None:
        """Allow the addresses in ``results`` (``getaddrinfo`` rows of an allowed name)."""
        with self._lock:
            self._resolved.update(str(_ip(str(result[4][0])) or result[4][0]) for result in results)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Patch :mod:`socket` through ``monkeypatch`` (undone when the test ends).

        The wrappers call whatever was installed before them, so they compose with other
        guards (a test suite's own loopback-only guard, say).
        """
        real_getaddrinfo = socket.getaddrinfo
        real_gethostbyname = socket.gethostbyname
        real_gethostbyname_ex = socket.gethostbyname_ex
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_sendto = socket.socket.sendto
        guard = self

        def resolving(host: Any, port: Any = None, flags: int = 0) -> str | None:
            """Check a host about to be resolved; returns it if it is a name (not an address)."""
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            if not isinstance(host, str) or not host or flags & socket.AI_PASSIVE:
                return None  # an address to listen on, not one to reach
            address = _ip(normalize_host(host))
            if address is not None and address.is_unspecified:
                return None
            if isinstance(port, (str, bytes)) and port.isdigit():
                port = int(port)
            guard.check(host, port if isinstance(port, int) else None)
            return host if address is None else None

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            flags = args[3] if len(args) > 3 else kwargs.get("flags", 0)
            name = resolving(host, port, flags if isinstance(flags, int) else 0)
            results = real_getaddrinfo(host, port, *args, **kwargs)
            if name is not None and not is_loopback(name):
                guard.remember(results)
            return results

        def gethostbyname(host: Any) -> str:
            name = resolving(host)
            address = real_gethostbyname(host)
            if name is not None and not is_loopback(name):
                guard.remember([(0, 0, 0, "", (address, 0))])
            return address

        def gethostbyname_ex(host: Any) -> tuple[str, list[str], list[str]]:
            name = resolving(host)
            result = real_gethostbyname_ex(host)
            if name is not None and not is_loopback(name):
                guard.remember([(0, 0, 0, "", (address, 0)) for address in result[2]])
            return result

        def destination(sock: socket.socket, address: Any) -> None:
            # Only internet sockets reach the network; Unix sockets and the like pass.
            if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
                host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
                guard.check(host, address[1] if len(address) > 1 and isinstance(address[1], int) else None)

        def connect(self: socket.socket, address: Any) -> None:
            destination(self, address)
            real_connect(self, address)

        def connect_ex(self: socket.socket, address: Any) -> int:
            try:
                destination(self, address)
            except BlockedConnectionError:
                return errno.ECONNREFUSED  # connect_ex reports failures as an errno
            return real_connect_ex(self, address)

        def sendto(self: socket.socket, data: Any, *args: Any) -> int:
            destination(self, args[-1] if args else None)
            return real_sendto(self, data, *args)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket, "gethostbyname", gethostbyname)
        monkeypatch.setattr(socket, "gethostbyname_ex", gethostbyname_ex)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket.socket, "sendto", sendto)


def _where(host: str, port: int | None) -> str:
    host = host.rstrip(".") or host
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def blocked_message(host: str, port: int | None) -> str:
    """The failure of a test that tried to reach ``host`` while replaying."""
    name = normalize_host(host) or host
    return (
        f"the test (or a program it started) tried to reach {_where(host, port)} while replaying; the connection was blocked, "
        "so nothing leaves the machine.\n"
        "Point the client at the loopback server: rws.base_url / rws.websocket_base_url or "
        "rws.openai_client() (OPENAI_BASE_URL and OPENAI_WEBSOCKET_BASE_URL are set for the test). "
        "Route a client with a hard-coded OpenAI URL in-process with "
        "@pytest.mark.rws_cassette(redirect=True).\n"
        f"If the test really needs {name} (a database on another machine, say), allow it with "
        f"--rws-allow-hosts={name}, the rws_allow_hosts ini option or "
        f"@pytest.mark.rws_cassette(allow_hosts=[{name!r}])."
    )


# --------------------------------------------------------------------------- subprocesses


class RefusingProxy:
    """A loopback HTTP proxy that forwards nothing.

    Replaying tests point the proxy variables of their environment here, so a
    subprocess whose client honours them (curl, requests, urllib, httpx, most
    others) is answered ``403`` instead of reaching the network, and the test that
    started it is told. The proxy URL carries the test's token as its user name (the
    client sends it back in ``Proxy-Authorization``): a refusal reaches the right test.
    """

    #: Bound on reading a client's request head: a stuck client does not hold a thread.
    READ_TIMEOUT_S = 5.0
    MAX_HEAD_BYTES = 64 * 1024

    def __init__(self) -> None:
        self._reports: dict[str, Report] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = RefusingProxy.READ_TIMEOUT_S

            def handle(self) -> None:
                proxy._refuse(self)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = False

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        # The poll interval bounds how long stop() waits (socketserver's default is 0.5 s,
        # which every run that used rws paid at its end).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="rws-refusing-proxy", daemon=True
        )
        self._thread.start()

    def url(self, token: str) -> str:
        """The proxy URL for the test ``token`` names."""
        return f"http://rws:{token}@127.0.0.1:{self.port}"

    def register(self, token: str, report: Report) -> None:
        with self._lock:
            self._reports[token] = report

    def unregister(self, token: str) -> None:
        with self._lock:
            self._reports.pop(token, None)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _refuse(self, handler: socketserver.StreamRequestHandler) -> None:
        try:
            head = handler.rfile.readline(self.MAX_HEAD_BYTES).decode("latin-1")
            headers: dict[str, str] = {}
            while len(headers) < 100:
                line = handler.rfile.readline(self.MAX_HEAD_BYTES).decode("latin-1").strip()
                if not line:
                    break
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        except OSError:
            return
        parts = head.split()
        if len(parts) < 2:
            return
        host, port = _proxy_target(parts[0], parts[1])
        with self._lock:
            report = self._reports.get(_token(headers.get("proxy-authorization", "")))
        if report is not None:
            report(host, port)
        body = (blocked_message(host, port) + "\n").encode()
        try:
            handler.wfile.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + f"Content-Length: {len(body)}\r\n".encode()
                + b"Connection: close\r\n\r\n"
                + body
            )
        except OSError:
            pass


def _proxy_target(method: str, target: str) -> tuple[str, int | None]:
    """The host and port a proxied request was for (``CONNECT host:port`` or an absolute URL)."""
    if method.upper() == "CONNECT":
        target = f"//{target}"
    try:
        parts = urlsplit(target if "//" in target else f"//{target}")
        return parts.hostname or target, parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        # Named by its authority only: the path and query may carry a key.
        return re.split(r"[/?#]", target.split("://", 1)[-1].lstrip("/"), maxsplit=1)[0], None


def _token(authorization: str) -> str:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded.strip()).decode("latin-1").partition(":")[2]
    except (binascii.Error, ValueError):
        return ""


def proxy_environment(proxy_url: str, allow: AllowList) -> dict[str, str]:
    """Environment variables sending a subprocess's proxied traffic to ``proxy_url``."""
    bypass = [*LOOPBACK_NO_PROXY, *sorted(allow.names), *allow.suffixes, *map(str, allow.networks)]
    environment = dict.fromkeys(PROXY_VARIABLES, proxy_url)
    environment.update(dict.fromkeys(NO_PROXY_VARIABLES, ",".join(bypass)))
    return environment


def reporting_once(fail: Callable[[str], None]) -> Report:
    """A report that fails the test once per host, however often its clients retry."""
    seen: set[str] = set()
    lock = threading.Lock()

    def report(host: str, port: int | None) -> None:
        with lock:
            key = normalize_host(host)
            if key in seen:
                return
            seen.add(key)
        fail(blocked_message(host, port))

    return report


@contextmanager
def guard_network(
    monkeypatch: pytest.MonkeyPatch,
    allow: AllowList,
    fail: Callable[[str], None],
    proxy: RefusingProxy,
    token: str,
) -> Iterator[None]:
    """Block connections beyond loopback and ``allow`` for the ``with`` block (a replaying test).

    ``fail`` is called with the message for each blocked host; ``token`` names the test
    to the proxy its subprocesses are pointed at.
    """
    report = reporting_once(fail)
    NetworkGuard(allow, report).install(monkeypatch)
    for name, value in proxy_environment(proxy.url(token), allow).items():
        monkeypatch.setenv(name, value)
    proxy.register(token, report)
    try:
        yield
    finally:
        proxy.unregister(token)
