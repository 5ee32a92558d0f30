"""Clients with hard-coded upstream URLs: refused while replaying, or routed with redirect=True.

A refused request never opens a socket: it is answered in-process, so these tests
reach no address but loopback even though the clients name the real API.
"""

from __future__ import annotations

import pytest

from support.project import Project

HARD_CODED = """
import agent_loops, httpx, openai, pytest
from openai import AsyncOpenAI, OpenAI

REAL = "https://api.openai.com/v1"
MODULE_CLIENT = httpx.Client(base_url=REAL)  # a module-level client the test cannot reconfigure


def test_sdk(rws):
    client = OpenAI(base_url=REAL, websocket_base_url=None, api_key="sk-hard-coded", max_retries=0)
    text, _ = agent_loops.run(client, rws.transport)
    assert text.startswith("The weather")


@pytest.mark.asyncio
async def test_sdk_async(rws):
    client = AsyncOpenAI(base_url=REAL, api_key="sk-hard-coded", max_retries=0)
    text, _ = await agent_loops.run_async(client, rws.transport)
    assert text.startswith("The weather")


@pytest.mark.rws_transports("http")
def test_module_level_httpx(rws):
    response = MODULE_CLIENT.post("/responses", json={"model": "gpt-5.2", "input": "hi"},
                                  headers={"Authorization": "Bearer sk-hard-coded"})
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "response"
"""


def test_hard_coded_clients_are_refused_while_replaying_with_how_to_route_them(
    project: Project, sim: object
) -> None:
    project.write("test_hard", HARD_CODED)
    project.pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef rws_config():\n    return {}\n")
    result = project.replay()
    result.assert_outcomes(failed=5)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*a client sent a request to https://api.openai.com/v1/responses while replaying; it was refused*",
            "*rws_cassette(redirect=True)*",
        ]
    )
    for transport in ("http", "ws"):
        assert f"test_sdk[{transport}]" in output
    # Refused in-process: nothing timed out or retried (the whole run is quick and reports 400s).
    assert "APITimeoutError" not in output


RESPX_HIDDEN = """
import sys
sys.modules["respx"] = None  # as if respx were not installed: httpx is routed at its transports
"""


@pytest.mark.parametrize("respx", ["installed", "hidden"])
def test_redirect_routes_hard_coded_clients_to_the_mount(project: Project, sim: object, respx: str) -> None:
    project.write("test_hard", HARD_CODED)
    project.pytester.makeconftest(
        (RESPX_HIDDEN if respx == "hidden" else "")
        + "import pytest\n\n@pytest.fixture(scope='module')\ndef rws_config():\n    return {'redirect': True}\n"
    )
    # The supported path: record with rws.openai_client(), replay hard-coded clients with redirect.
    project.write(
        "test_hard",
        HARD_CODED.replace(
            'OpenAI(base_url=REAL, websocket_base_url=None, api_key="sk-hard-coded", max_retries=0)',
            "rws.openai_client()",
        )
        .replace(
            'AsyncOpenAI(base_url=REAL, api_key="sk-hard-coded", max_retries=0)', "rws.async_openai_client()"
        )
        .replace("MODULE_CLIENT.post", "httpx.post")
        .replace('"/responses"', 'rws.base_url + "/responses"'),
    )
    project.record(sim).assert_outcomes(passed=5)  # type: ignore[arg-type]
    project.write("test_hard", HARD_CODED)
    project.replay().assert_outcomes(passed=5)


@pytest.mark.parametrize("value", ["yes", 1])
def test_redirect_must_be_a_boolean(project: Project, value: object) -> None:
    project.write(
        "test_x",
        f"import pytest\n\n@pytest.mark.rws_cassette(redirect={value!r})\ndef test_x(rws):\n    pass\n",
    )
    result = project.run()
    result.stdout.fnmatch_lines(["*redirect must be True or False*"])


def test_the_suite_itself_cannot_reach_beyond_loopback() -> None:
    import socket

    with pytest.raises(OSError, match=r"loopback (names )?only"):
        socket.create_connection(("api.openai.com", 443), timeout=1)
