"""While a test replays, nothing it runs reaches beyond loopback, whatever the client.

Each project test below points a client at a host outside loopback (a TEST-NET address
or the real API's name), swallows whatever error the client raises, and must still fail
with the plugin's message naming that host. The suite's own loopback-only guard
(conftest.py) is a backstop behind the plugin's: it raises a different error, which
these tests do not accept, so a broken plugin guard fails them without a packet leaving.
"""

from __future__ import annotations

import socket

import pytest

from support.project import Project

#: A subprocess cannot see the suite's guard: this prelude is its own backstop.
SUBPROCESS_BACKSTOP = """
import ipaddress, socket
_connect = socket.socket.connect
def _loopback_only(self, address):
    if isinstance(address, tuple) and not ipaddress.ip_address(address[0]).is_loopback:
        raise OSError("backstop: the subprocess tried to reach " + repr(address))
    return _connect(self, address)
socket.socket.connect = _loopback_only
"""

CLIENTS = '''
import asyncio, os, subprocess, sys, time

import httpx, pytest, requests, urllib.request
import websocket as websocket_client
import websockets.legacy.client
from openai import OpenAI
# Bound at import time, before the plugin could patch anything:
from websockets.sync.client import connect as sync_connect
from websockets.asyncio.client import connect as async_connect

BACKSTOP = {backstop!r}


def swallow(call):
    """Run call; whatever it raises is ignored: the plugin must fail the test anyway."""
    start = time.monotonic()
    try:
        call()
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
    # Blocked at once, not after a connect timeout.
    assert time.monotonic() - start < 3, "the blocked client waited"


def test_requests(rws):
    session = requests.Session()
    session.trust_env = False  # straight to the socket, past any proxy
    swallow(lambda: session.get("http://203.0.113.1/v1/models", timeout=5))


def test_requests_through_the_environment(rws):
    swallow(lambda: requests.get("https://api.openai.com/v1/models", timeout=5))


def test_urllib(rws):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
    swallow(lambda: opener.open("http://203.0.113.2/v1/models", timeout=5))


def test_aiohttp_address(rws):
    import aiohttp

    async def get():
        async with aiohttp.ClientSession() as session:
            async with session.get("http://203.0.113.3/v1/models") as response:
                await response.read()

    swallow(lambda: asyncio.run(get()))


def test_aiohttp_name(rws):
    import aiohttp

    async def get():
        async with aiohttp.ClientSession() as session:
            async with session.get("https://api.openai.com./v1/models") as response:
                await response.read()

    swallow(lambda: asyncio.run(get()))


def test_websocket_client(rws):
    swallow(lambda: websocket_client.create_connection("ws://203.0.113.4/v1/responses", timeout=5))


def test_websockets_sync_connect_bound_early(rws):
    swallow(lambda: sync_connect("wss://203.0.113.5/v1/responses", proxy=None, open_timeout=5))


def test_websockets_async_connect_bound_early(rws):
    async def run():
        async with async_connect("ws://203.0.113.6/v1/responses", proxy=None, open_timeout=5):
            pass

    swallow(lambda: asyncio.run(run()))


def test_websockets_legacy(rws):
    async def run():
        async with websockets.legacy.client.connect("ws://203.0.113.7/v1/responses", open_timeout=5):
            pass

    swallow(lambda: asyncio.run(run()))


def test_openai_over_plain_http(rws):
    client = OpenAI(base_url="http://api.openai.com/v1", api_key="sk-hard-coded", max_retries=0)
    swallow(lambda: client.responses.create(model="gpt-5.2", input="hi"))


def test_openai_trailing_dot_host(rws):
    client = OpenAI(base_url="https://api.openai.com./v1", api_key="sk-hard-coded", max_retries=0)
    swallow(lambda: client.responses.create(model="gpt-5.2", input="hi"))


def test_httpx_without_respx(respx_hidden, rws):
    # How openai 2.x's httpx client went out when respx was not installed: now refused in-process.
    with httpx.Client(trust_env=False) as client:
        swallow(lambda: client.post("https://api.openai.com/v1/responses", json={{}}))


def test_subprocess_urllib(rws):
    script = BACKSTOP + "import urllib.request; urllib.request.urlopen('http://203.0.113.8/v1/models', timeout=5)"
    swallow(lambda: subprocess.run([sys.executable, "-c", script], check=True, timeout=20))


def test_subprocess_requests(rws):
    script = BACKSTOP + "import requests; requests.get('https://api.openai.com/v1/models', timeout=5)"
    swallow(lambda: subprocess.run([sys.executable, "-c", script], check=True, timeout=20))
'''

RESPX_HIDDEN = """
import sys
import socket

import pytest

@pytest.fixture
def respx_hidden(monkeypatch):
    # Requested before rws: the plugin sets up as if respx were not installed.
    monkeypatch.setitem(sys.modules, "respx", None)
"""

#: Host named in each project test's failure.
EXPECTED = {
    "test_requests": "203.0.113.1:80",
    "test_requests_through_the_environment": "api.openai.com:443",
    "test_urllib": "203.0.113.2:80",
    "test_aiohttp_address": "203.0.113.3:80",
    "test_aiohttp_name": "api.openai.com",
    "test_websocket_client": "203.0.113.4:80",
    "test_websockets_sync_connect_bound_early": "203.0.113.5:443",
    "test_websockets_async_connect_bound_early": "203.0.113.6:80",
    "test_websockets_legacy": "203.0.113.7:80",
    "test_openai_over_plain_http": "http://api.openai.com/v1/responses",
    "test_openai_trailing_dot_host": "https://api.openai.com./v1/responses",
    "test_httpx_without_respx": "https://api.openai.com/v1/responses",
    "test_subprocess_urllib": "203.0.113.8:80",
    "test_subprocess_requests": "api.openai.com:443",
}


def failures(project: Project, *args: str) -> dict[str, str]:
    """Failure text of each project test (by function name) of a replaying run."""
    reprec = project.pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly", *args)
    reports = reprec.getreports("pytest_runtest_logreport")
    return {
        report.nodeid.split("::")[-1].split("[")[0]: str(report.longrepr)
        for report in reports
        if report.failed
    }


def test_every_kind_of_client_is_blocked_while_replaying_with_the_plugins_message(project: Project) -> None:
    project.write("test_clients", CLIENTS.format(backstop=SUBPROCESS_BACKSTOP))
    project.pytester.makeconftest(RESPX_HIDDEN)
    failed = failures(project, "--rws-transports=http")
    assert sorted(failed) == sorted(EXPECTED)
    for test, host in EXPECTED.items():
        text = failed[test]
        assert host in text, f"{test}: {text}"
        assert "while replaying" in text, f"{test}: {text}"
        # Not the suite's backstop (conftest.py) nor the subprocess's: the plugin stopped it.
        assert "loopback only" not in text and "loopback names only" not in text, f"{test}: {text}"
        assert "backstop" not in text, f"{test}: {text}"
    # The socket guard's message says how to fix it, naming the host in the allow-list option.
    assert "--rws-allow-hosts=203.0.113.1" in failed["test_requests"]
    assert "rws.base_url" in failed["test_requests"]


GATEWAY = """
import requests
from openai import OpenAI

REAL = "https://api.openai.com/v1"


def test_sdk_hard_coded_to_the_real_api(rws):
    client = OpenAI(base_url=REAL, api_key="sk-hard-coded", max_retries=0)
    try:
        client.responses.create(model="gpt-5.2", input="hi")
    except Exception:
        pass


def test_raw_client_hard_coded_to_the_real_api(rws):
    session = requests.Session()
    session.trust_env = False
    try:
        session.post(REAL + "/responses", json={}, timeout=5)
    except Exception:
        pass
"""


def test_clients_hard_coded_to_the_real_api_are_blocked_when_the_upstream_is_a_gateway(
    project: Project,
) -> None:
    project.write("test_gateway", GATEWAY)
    # A gateway on loopback (nothing listens there: replay never contacts the upstream).
    failed = failures(project, "--rws-transports=http", "--rws-upstream=http://127.0.0.1:9/openai/v1")
    assert sorted(failed) == [
        "test_raw_client_hard_coded_to_the_real_api",
        "test_sdk_hard_coded_to_the_real_api",
    ]
    assert (
        "a client sent a request to https://api.openai.com/v1/responses while replaying"
        in (failed["test_sdk_hard_coded_to_the_real_api"])
    )
    assert (
        "tried to reach api.openai.com:443 while replaying"
        in failed["test_raw_client_hard_coded_to_the_real_api"]
    )


ALIAS_CONFTEST = """
import socket
import socket

import pytest

_resolve = socket.getaddrinfo


def _with_alias(host, *args, **kwargs):
    # An /etc/hosts line of this project only: db.test is this machine.
    return _resolve("127.0.0.1" if host == "db.test" else host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def db_test_alias():
    patch = pytest.MonkeyPatch()
    patch.setattr(socket, "getaddrinfo", _with_alias)
    yield
    patch.undo()


@pytest.fixture
def database():
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()
"""

DATABASE_TESTS = """
import os
import socket
import socket

import pytest


def connect(port):
    with socket.create_connection(("db.test", port), timeout=5):
        pass


@pytest.mark.rws_cassette(allow_hosts=["db.test"])
def test_allowed_by_marker(rws, database):
    connect(database)


def test_not_allowed(rws, database):
    connect(database)


def test_environment_restored_after_the_test():
    assert "HTTPS_PROXY" not in os.environ and "https_proxy" not in os.environ
    assert socket.getaddrinfo.__name__ == "_with_alias"
"""


def test_allowed_hosts_are_reachable_and_others_are_not(project: Project) -> None:
    project.pytester.makeconftest(ALIAS_CONFTEST)
    project.write("test_db", DATABASE_TESTS)
    failed = failures(project, "--rws-transports=http")
    assert list(failed) == ["test_not_allowed"]
    assert "tried to reach db.test" in failed["test_not_allowed"]
    assert "--rws-allow-hosts=db.test" in failed["test_not_allowed"]
    # The command-line option and the ini option allow it for every test.
    assert failures(project, "--rws-transports=http", "--rws-allow-hosts=*.test,10.0.0.0/8") == {}
    ini = (project.path / "tox.ini").read_text(encoding="utf-8")
    project.pytester.makeini(ini.rstrip() + "\nrws_allow_hosts = 203.0.113.9\n    db.test\n")
    assert failures(project, "--rws-transports=http") == {}


@pytest.mark.parametrize("value", ["10.0.0.0/33", "db.test:5432", "a*b"])
def test_a_malformed_allow_list_entry_is_a_usage_error(project: Project, value: str) -> None:
    project.write("test_x", "def test_x(rws):\n    pass\n")
    result = project.run(f"--rws-allow-hosts={value}")
    result.stderr.fnmatch_lines(["*allow_hosts*is not a*"])


RECORDING = """
import os, socket


def test_reaches_the_database_while_recording(rws, database):
    assert rws.transport == "http"
    assert "HTTPS_PROXY" not in os.environ
    with socket.create_connection(("db.test", database), timeout=5):
        pass
"""


@pytest.mark.parametrize("mode", ["once", "new_episodes"])
def test_recording_is_not_guarded(project: Project, sim: object, mode: str) -> None:
    project.pytester.makeconftest(ALIAS_CONFTEST)
    project.write("test_rec", RECORDING)
    result = project.record(sim, "--rws-transports=http", mode=mode)  # type: ignore[arg-type]
    result.assert_outcomes(passed=1)


LOOPBACK_SUBPROCESS = """
import json, subprocess, sys

SCRIPT = '''
import json, os, urllib.request
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"] + "/responses",
    data=json.dumps({"model": "gpt-5.2", "input": "What's the weather in Paris?"}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]},
)
print(json.load(urllib.request.urlopen(request, timeout=10))["object"])
'''


def test_subprocess_reaches_the_loopback_server(rws):
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "response", done.stderr
"""


def test_subprocesses_still_reach_the_loopback_server_directly(project: Project, sim: object) -> None:
    project.write("test_sub", LOOPBACK_SUBPROCESS)
    project.record(sim, "--rws-transports=http").assert_outcomes(passed=1)  # type: ignore[arg-type]
    project.replay("--rws-transports=http").assert_outcomes(passed=1)


LOCAL_SERVERS = """
import asyncio, http.server, socket, socketserver, threading

import aiohttp, httpx, pytest, requests


@pytest.fixture(params=[("0.0.0.0", socket.AF_INET), ("::", socket.AF_INET6), ("::1", socket.AF_INET6),
                        ("127.0.0.1", socket.AF_INET)], ids=["any4", "any6", "loop6", "loop4"])
def local_server(request):
    host, family = request.param

    class Server(socketserver.ThreadingTCPServer):
        address_family = family
        daemon_threads = True

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = Server((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Where a test reaches its own server: the address it is bound to, as printed.
    bound = server.server_address[0]
    yield ("[%s]" % bound if ":" in bound else bound), server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.rws_transports("http")
def test_sync_clients(rws, local_server):
    host, port = local_server
    assert requests.get(f"http://{host}:{port}/", timeout=5).text == "ok"
    assert httpx.get(f"http://{host}:{port}/", timeout=5).text == "ok"
    socket.create_connection((host.strip("[]"), port), timeout=5).close()


@pytest.mark.rws_transports("http")
@pytest.mark.asyncio
async def test_async_clients(rws, local_server):
    host, port = local_server
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{host}:{port}/") as response:
            assert await response.text() == "ok"
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://{host}:{port}/", timeout=5)).text == "ok"
"""


def test_servers_a_test_starts_on_this_machine_are_reachable_while_replaying_also_under_xdist(
    project: Project,
) -> None:
    """Connecting to the unspecified address (0.0.0.0, ::) reaches this machine: never blocked."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    project.write("test_local", LOCAL_SERVERS)
    # Workers are processes of their own: the suite's stricter guard does not apply there.
    project.replay("-n", "2").assert_outcomes(passed=8)
