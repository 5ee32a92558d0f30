"""The simulator as a test's upstream: ``rws_script``, ``rws.script()`` and ``--rws-upstream=sim``.

Pytester runs with the real openai SDK (and openai-agents) over both transports, with no
cassette and no key: the script is what the model answers, and the simulator answers as the
service does (ids, ``sequence_number``, usage, ``previous_response_id`` and the
connection-local cache of ``store: false`` responses).
"""

from __future__ import annotations

import json

import pytest

from support.project import Project

SCRIPTED = """
import json
import time
import openai
import pytest
from pytest_responses_ws.sim import Error, FunctionCall, Text

TOOLS = [{"type": "function", "name": "get_weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def weather(request):
    # A callable step: it sees the request, its effective input and the tool results so far.
    results = [json.loads(item["output"]) for item in request.tool_outputs]
    return Text(", ".join(f"{r['city']} is {r['temp_c']}C" for r in results) + f" ({request.transport})")


def tool_output(call):
    city = json.loads(call.arguments)["city"]
    return {"type": "function_call_output", "call_id": call.call_id,
            "output": json.dumps({"city": city, "temp_c": len(city) * 3})}


def create(client, transport, conn, items, previous):
    # One turn; a 429 is retried once after its retry-after, as an agent would.
    for attempt in range(2):
        if transport == "ws":
            conn.response.create(model="gpt-5.2", input=items, tools=TOOLS, store=False,
                                 previous_response_id=previous)
            event = next(e for e in conn if e.type in ("response.completed", "error"))
            if event.type == "response.completed":
                return event.response
            assert event.error.code == "rate_limit_exceeded" and attempt == 0, event
        else:
            try:
                return client.responses.create(model="gpt-5.2", input=items, tools=TOOLS, store=False)
            except openai.RateLimitError as exc:
                assert exc.response.headers["retry-after"] == "0.01" and attempt == 0
        time.sleep(0.01)
    raise AssertionError("no answer")


def loop(rws):
    client = rws.openai_client()
    conn_cm = client.responses.connect() if rws.transport == "ws" else None
    conn = conn_cm.__enter__() if conn_cm else None
    history, items, previous, seen = [{"role": "user", "content": "Weather?"}], None, None, []
    items = list(history)
    try:
        while True:
            response = create(client, rws.transport, conn, items if rws.transport == "ws" else history, previous)
            seen.append(response)
            calls = [item for item in response.output if item.type == "function_call"]
            if not calls:
                return response.output_text, seen
            outputs = [tool_output(call) for call in calls]
            history += [item.to_dict() for item in response.output] + outputs
            previous, items = response.id, outputs
    finally:
        if conn_cm:
            conn_cm.__exit__(None, None, None)


@pytest.mark.rws_script(
    [FunctionCall("get_weather", {"city": "Paris"}), FunctionCall("get_weather", {"city": "Oslo"})],
    Error(429, retry_after=0.01),
    weather,
)
def test_parallel_calls_an_error_and_a_callable(rws):
    answer, responses = loop(rws)
    assert answer == f"Paris is 15C, Oslo is 12C ({rws.transport})"
    first = responses[0]
    assert [item.name for item in first.output] == ["get_weather", "get_weather"]
    assert first.id.startswith("resp_") and first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert rws.simulated and not rws.cassette_path.exists()
    assert [turn.outcome != "completed" for turn in rws.turns] == [False, True, False]


def test_scripted_at_run_time(rws):
    rws.script(Text("Scripted in the test body."))
    answer, _ = loop(rws)
    assert answer == "Scripted in the test body."
"""


def test_a_scripted_test_runs_over_both_transports_with_no_cassette_and_no_key(project: Project) -> None:
    project.write("test_scripted", SCRIPTED)
    result = project.replay("-p", "no:randomly")  # replay(): OPENAI_API_KEY unset
    result.assert_outcomes(passed=4)
    assert project.cassettes() == []


def test_events_are_the_services_sequence_numbers_ids_and_usage(project: Project) -> None:
    project.write(
        "test_events",
        """
import pytest
from pytest_responses_ws.sim import Text

@pytest.mark.rws_script(Text("Twelve words of text make a turn that streams a few deltas."))
def test_events(rws):
    client = rws.openai_client()
    if rws.transport == "ws":
        with client.responses.connect() as conn:
            conn.response.create(model="gpt-5.2", input="hi")
            events = []
            for event in conn:
                events.append(event)
                if event.type == "response.completed":
                    break
    else:
        events = list(client.responses.create(model="gpt-5.2", input="hi", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert sum(e.type == "response.output_text.delta" for e in events) > 3
    final = events[-1].response
    assert final.output_text.startswith("Twelve words") and final.usage.total_tokens > 0
    assert final.output[0].id.startswith("msg_")
""",
    )
    project.replay().assert_outcomes(passed=2)


def test_the_simulator_keeps_the_services_connection_state(project: Project) -> None:
    project.write(
        "test_state",
        """
import openai
import pytest
from pytest_responses_ws.sim import Text

@pytest.mark.rws_script(Text("one"), Text("two"))
@pytest.mark.rws_transports("ws")
def test_store_false_lives_on_its_connection(rws):
    client = rws.openai_client()
    with client.responses.connect() as conn:
        conn.response.create(model="gpt-5.2", input="first", store=False)
        first = next(e for e in conn if e.type == "response.completed").response
        conn.response.create(model="gpt-5.2", input="again", store=False, previous_response_id=first.id)
        assert next(e for e in conn if e.type == "response.completed").response.output_text == "two"
    with client.responses.connect() as fresh:  # a reconnect loses the connection-local cache
        fresh.response.create(model="gpt-5.2", input="again", store=False, previous_response_id=first.id)
        error = next(e for e in fresh if e.type in ("error", "response.completed"))
    assert error.type == "error" and error.error.code == "previous_response_not_found"

@pytest.mark.rws_script(Text("one"), Text("two"))
@pytest.mark.rws_transports("http")
def test_stored_responses_chain_over_http(rws):
    client = rws.openai_client()
    first = client.responses.create(model="gpt-5.2", input="first")
    assert client.responses.create(model="gpt-5.2", input="more", previous_response_id=first.id).output_text == "two"
    unstored = client.responses.create(model="gpt-5.2", input="first", store=False)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gpt-5.2", input="more", previous_response_id=unstored.id)
    assert refused.value.code == "previous_response_not_found"
""",
    )
    project.replay().assert_outcomes(passed=2)


def test_a_cassette_recorded_from_the_simulator_replays_identically(project: Project) -> None:
    project.write(
        "test_recorded",
        """
import json
import os
import pytest
import agent_loops
from pytest_responses_ws.sim import FunctionCall, Text

def test_default_script(rws):  # --rws-upstream=sim: the simulator's default answer
    text, events = agent_loops.run(rws.openai_client(), rws.transport)
    agent_loops.save_events(f"default-{rws.transport}", events)
    assert text == "Hello from the simulated Responses API."

@pytest.mark.rws_script(FunctionCall("get_weather", {"city": "Paris"}), FunctionCall("get_weather", {"city": "Oslo"}),
                        Text("Mild in both."))
def test_tool_loop(rws):
    text, events = agent_loops.run(rws.openai_client(), rws.transport)
    agent_loops.save_events(f"loop-{rws.transport}", events)
    assert text == "Mild in both."
""",
    )
    project.replay("--rws-upstream=sim", "--rws-record-mode=once").assert_outcomes(passed=4)
    recorded = project.events()
    cassettes = project.cassettes()
    assert [path.name for path in cassettes] == ["test_default_script.json", "test_tool_loop.json"]
    for path in cassettes:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["recorded_with"]["upstream_host"] == "pytest_responses_ws.sim"
    # Offline, no key: the cassettes answer (the script is not asked again), byte for byte.
    result = project.replay()
    result.assert_outcomes(passed=4)
    assert project.events() == recorded
    assert set(recorded) == {"default-http", "default-ws", "loop-http", "loop-ws"}


def test_openai_agents_runs_against_a_script(project: Project) -> None:
    project.write(
        "test_agents",
        """
import pytest
from agents import Agent, Runner, function_tool
from pytest_responses_ws.sim import FunctionCall, Text

@function_tool
def get_weather(city: str) -> str:
    \"\"\"Weather in a city.\"\"\"
    return f"{city}: 18C"

@pytest.mark.rws_script(FunctionCall("get_weather", {"city": "Paris"}), Text("Paris is 18C."))
@pytest.mark.asyncio
async def test_agent(rws):
    agent = Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model="gpt-5.2")
    result = await Runner.run(agent, "Weather in Paris?", run_config=rws.agents_run_config())
    assert result.final_output == "Paris is 18C."
    assert len(rws.turns) == 2
""",
    )
    project.replay().assert_outcomes(passed=2)


def test_a_script_step_that_raises_fails_the_test_naming_it(project: Project) -> None:
    project.write(
        "test_broken",
        """
import pytest

def broken(request):
    raise KeyError("city")

# A lone callable: pytest would take it for the function to mark, hence with_args.
@pytest.mark.rws_script.with_args(broken)
@pytest.mark.rws_transports("http")
def test_broken(rws):
    try:
        rws.openai_client().responses.create(model="gpt-5.2", input="hi")
    except Exception:
        pass  # the client got the service's 500; the test fails anyway
""",
    )
    result = project.replay()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest-responses-ws: script step 0 (broken) raised KeyError: 'city'*"])
    assert "Traceback" not in result.stdout.str().split("= FAILURES =")[1]


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        (
            "rws_script('hello')",
            "*rws_script: a script step is Text, FunctionCall, a list of them, Error or a callable, not 'hello'",
        ),
        ("rws_script(seed=3)", "*rws_script takes steps, not keywords (seed)"),
    ],
)
def test_a_bad_script_errors_the_test_in_one_line(project: Project, marker: str, expected: str) -> None:
    project.write("test_bad", f"import pytest\n\n@pytest.mark.{marker}\ndef test_bad(rws):\n    pass\n")
    result = project.replay()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([expected])


def test_scripted_tests_under_the_model_are_paced_by_the_simulator_and_projected(project: Project) -> None:
    project.write(
        "test_paced",
        """
import pytest
import agent_loops
from pytest_responses_ws.sim import FunctionCall, Text

@pytest.mark.rws_script(*[FunctionCall("get_weather", {"city": f"City {i}"}) for i in range(4)], Text("Done."))
@pytest.mark.rws_budget(ws_gain=0.1)
def test_paced(rws):
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text == "Done."
    projection = rws.projection
    # The simulator waited (scaled) at least as long as the model's time for each turn.
    played = {t.index: (t.ws_ms if rws.transport == "ws" else t.http_ms) for t in projection.turns}
    for turn in rws.turns:
        assert turn.upstream_ms >= played[turn.index] * 0.01 - 1.0
""",
    )
    result = project.replay(
        "--rws-timing=model", "--rws-latency-model=fast,scale=0.01", "--rws-report=r.json"
    )
    result.assert_outcomes(passed=2)
    document = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    gains = {summary["transport"]: summary["projection"]["gain"] for summary in document["tests"]}
    assert gains["ws"] == pytest.approx(gains["http"], abs=0.01) and gains["ws"] > 0.1
