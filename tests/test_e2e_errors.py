"""Bad input gets a clear error and loses nothing: misses, missing or corrupt cassettes,
bad option values, malformed client frames, and an upstream that drops mid-recording."""

from __future__ import annotations

import json
import shutil

import pytest

from pytest_responses_ws.sim import Script, serve_simulator

from support.project import Project

LOOP_TEST = """
import agent_loops
import pytest

@pytest.mark.rws_transports("ws")
def test_weather(rws):
    text, events = agent_loops.run(rws.openai_client(), rws.transport)
    assert text
"""


def _recorded(project: Project, sim: object, source: str = LOOP_TEST) -> None:
    project.write("test_agent", source)
    project.record(sim).assert_outcomes(passed=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_miss_fails_the_test_with_nearest_turns_and_a_diff(
    project: Project, sim: object, transport: str
) -> None:
    _recorded(project, sim, LOOP_TEST.replace('"ws"', f'"{transport}"'))
    # The agent now reports different tool output: turn 2 no longer matches its recording.
    agent = project.path / "agent_loops.py"
    agent.write_text(agent.read_text().replace("20 + len", "21 + len"))
    result = project.replay("-rN")  # no short summary: count what the failure section shows
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*request 2 * matched no recorded turn in *test_weather.json",
            "why: no recorded turn has this request",
            "nearest recorded turns (compared in effective, normalized form):",
            "  turn 1 (*): 1 difference",
            '    /input/2/output: recorded "{\\"city\\": \\"City 0\\", \\"temp_c\\": 26}", sent "{\\"city\\": \\"City 0\\", \\"temp_c\\": 27}"',
            "*pytest --rws-record-mode=new_episodes*test_agent.py::test_weather*",
        ]
    )
    # Failed in the call phase (a test failure), and only once.
    assert result.stdout.str().count("why: no recorded turn has this request") == 1
    assert "ERROR" not in result.stdout.str()


def test_miss_is_reported_even_when_the_client_swallows_the_error(project: Project) -> None:
    project.write(
        "test_agent",
        """
import pytest

@pytest.mark.rws_transports("ws")
def test_swallow(rws):
    with rws.openai_client().responses.connect() as conn:
        conn.response.create(model="gpt-5.2", input="never recorded")
        event = next(iter(conn))
        assert event.type == "error"  # the test is happy with the error event...
""",
    )
    result = project.replay()
    # ...but no cassette exists: the plugin fails it anyway, with the command that records it.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no cassette at *cassettes/test_agent/test_swallow.json",
            "*Record it once against the real API with:",
            "*pytest --rws-record-mode=once 'test_agent.py::test_swallow[[]ws[]]'",
        ]
    )


def test_missing_cassette_over_http_names_path_and_command(project: Project) -> None:
    project.write(
        "test_agent",
        """
import openai, pytest

@pytest.mark.rws_transports("http")
def test_plain(rws):
    with pytest.raises(openai.BadRequestError) as info:
        rws.openai_client().responses.create(model="gpt-5.2", input="hi")
    assert "no cassette at" in str(info.value)
""",
    )
    result = project.replay()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no cassette at *test_plain.json*", "*--rws-record-mode=once*"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "*corrupt cassette *test_weather.json at /: not valid JSON (line 1, column 2*"),
        (
            '{"format": "pytest-responses-ws/cassette", "version": 1, "recorded_at": "x",'
            ' "recorded_with": {}, "turns": [{"request": {}}]}',
            "*corrupt cassette *test_weather.json at /turns/0/events: required field is missing*",
        ),
        (
            '{"format": "pytest-responses-ws/cassette", "version": 99, "turns": []}',
            "*at /version: version 99 was written by a newer pytest-responses-ws*",
        ),
        ('{"interactions": [], "version": 1}', "*It looks like a vcrpy cassette*"),
    ],
    ids=["invalid-json", "missing-field", "newer-version", "vcrpy"],
)
def test_corrupt_cassette_names_file_and_pointer(project: Project, content: str, expected: str) -> None:
    project.write("test_agent", LOOP_TEST)
    path = project.path / "cassettes" / "test_agent" / "test_weather.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    result = project.replay()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([expected])
    assert path.read_text() == content  # nothing is lost or rewritten


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--rws-record-mode=sometimes"],
            "*unknown record mode 'sometimes'; expected one of none, once, new_episodes, all, rewrite*",
        ),
        (["--rws-timing=fast"], "*unknown timing 'fast'; expected instant, recorded or a positive factor*"),
        (["--rws-transports=grpc"], "*unknown transport 'grpc'; expected http or ws*"),
        (["--rws-upstream=api.openai.com"], "*must be an http(s):// or ws(s):// URL*"),
    ],
)
def test_bad_option_value_is_a_usage_error(project: Project, args: list[str], expected: str) -> None:
    project.write("test_agent", LOOP_TEST)
    result = project.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_bad_ini_value_is_a_usage_error(project: Project) -> None:
    project.write("test_agent", LOOP_TEST)
    project.pytester.makeini("[pytest]\nrws_record_mode = always\n")
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option rws_record_mode*unknown record mode 'always'*"])


def test_bad_marker_option_names_the_valid_ones(project: Project) -> None:
    project.write(
        "test_agent",
        """
import pytest

@pytest.mark.rws_cassette(record="once")
def test_x(rws):
    pass
""",
    )
    result = project.run()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.rws_cassette: unknown option(s) 'record'; valid: record_mode, *"]
    )


def test_malformed_client_frame_gets_an_error_event_and_fails_the_test(project: Project, sim: object) -> None:
    _recorded(project, sim)
    project.write(
        "test_raw",
        """
import json, pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

@pytest.mark.rws_cassette("test_weather")
@pytest.mark.rws_transports("ws")
def test_raw(rws):
    with connect(rws.websocket_base_url + "/responses", open_timeout=5) as ws:
        ws.send("this is not json")
        event = json.loads(ws.recv(timeout=5))
        assert event["type"] == "error"
        assert "malformed client frame" in event["error"]["message"]
        # The test has failed: the server ends the connection, so no client waits on.
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1008
    with connect(rws.websocket_base_url + "/responses", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "gpt-5.2", "input": "hi"}))
        assert json.loads(ws.recv(timeout=5))["error"]["code"] == "rws_cassette_miss"
""",
    )
    # A marker name is resolved in the module's own cassette folder.
    (project.path / "cassettes" / "test_raw").mkdir()
    shutil.copy(project.cassettes()[0], project.path / "cassettes" / "test_raw" / "test_weather.json")
    result = project.replay("test_raw.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*2 problems with Responses API traffic in this test:",
            "*ProtocolViolation: malformed client frame 1 on WebSocket connection 0: not valid JSON*",
            "*frame: this is not json",
            "*CassetteMissError: request 1 on WebSocket connection 1 matched no recorded turn*",
        ]
    )


def test_upstream_dropping_mid_recording_writes_nothing(project: Project) -> None:
    project.write("test_agent", LOOP_TEST)
    with serve_simulator(Script.tool_loop(2), close_after_events=4) as flaky:
        result = project.record(flaky)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*recording failed: the upstream closed WebSocket connection 0 (code 1011*before answering 1 request(s)*",
            "*the client saw: ConnectionClosedError*",
        ]
    )
    assert project.cassettes() == []


def test_a_client_left_over_from_a_finished_test_gets_a_clear_404(project: Project, sim: object) -> None:
    _recorded(project, sim)
    project.write(
        "test_leftover",
        """
import openai, pytest

state = {}

@pytest.mark.rws_transports("http")
def test_first(rws):
    state["client"] = rws.openai_client()

@pytest.mark.rws_transports("http")
def test_second(rws):
    with pytest.raises(openai.NotFoundError) as info:
        state["client"].responses.create(model="gpt-5.2", input="hi")
    assert "has finished" in str(info.value)
""",
    )
    project.replay("test_leftover.py").assert_outcomes(passed=2)


def test_recorded_http_error_replays_with_its_status_and_body(project: Project, sim: object) -> None:
    project.write(
        "test_agent",
        """
import openai, pytest

@pytest.mark.parametrize("stream", [False, True])
def test_not_found(rws, stream):
    client = rws.openai_client()
    if rws.transport == "ws":
        with client.responses.connect() as conn:
            conn.response.create(model="gpt-5.2", input="hi", previous_response_id="resp_gone")
            event = next(iter(conn))
            assert event.type == "error" and event.error.code == "previous_response_not_found"
        return
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-5.2", input="hi", previous_response_id="resp_gone", stream=stream)
    assert info.value.code == "previous_response_not_found"
""",
    )
    project.record(sim, "--rws-transports=http").assert_outcomes(passed=2)  # type: ignore[arg-type]
    turns = json.loads(project.cassettes()[0].read_text())["turns"]
    assert turns[0]["status"] == 400
    assert turns[0]["outcome"] == "http_error"
    # The HTTP 400 replays over HTTP as a 400 and over WebSocket as the wrapped error event.
    project.replay().assert_outcomes(passed=4)


def test_unknown_transport_in_marker_is_a_one_line_collection_error(project: Project) -> None:
    project.write(
        "test_x", "import pytest\n\n@pytest.mark.rws_transports('grpc')\ndef test_x(rws):\n    pass\n"
    )
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.rws_transports: unknown transport 'grpc'; expected http or ws"]
    )
    assert "Traceback" not in result.stdout.str()


def test_corrupt_cassette_message_is_shown_once(project: Project) -> None:
    project.write("test_agent", LOOP_TEST)
    path = project.path / "cassettes" / "test_agent" / "test_weather.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    result = project.replay("-rN")  # no short summary: count what the error section shows
    assert result.stdout.str().count("Fix the file by hand") == 1  # the report, shown once
    assert "During handling" not in result.stdout.str()


def test_http_upstream_failure_while_recording_writes_nothing(project: Project) -> None:
    project.write("test_agent", LOOP_TEST.replace('"ws"', '"http"'))
    with serve_simulator(Script.tool_loop(2)) as gone:
        url = gone.url
    result = project.record(type("Gone", (), {"url": url})())  # the simulator has stopped: refused
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*recording failed: the upstream request to *failed*Nothing was written*"])
    assert project.cassettes() == []


@pytest.mark.parametrize("where", ["a-directory", "a-file.txt/report"])
def test_a_report_that_cannot_be_written_fails_the_run_with_one_line_and_the_other_is_written(
    project: Project, where: str
) -> None:
    project.write("test_x", "def test_x(rws):\n    pass\n")
    (project.path / "a-directory").mkdir()
    (project.path / "a-file.txt").write_text("not a directory")
    result = project.replay(f"--rws-report={where}", "--rws-report-html=out/report.html")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    result.stdout.fnmatch_lines(
        [f"*pytest-responses-ws: could not write the report {project.path / where}: *"]
    )
    assert (project.path / "out" / "report.html").is_file()
    assert not list(project.path.rglob(".*.tmp"))


BAD_TEST_SETTINGS = """
import pytest

@pytest.mark.rws_cassette(record_mode=5)
def test_marker(rws):
    pass

@pytest.mark.rws_cassette(allow_hosts=["db.test:5432"])
def test_allow_hosts(rws):
    pass

class TestFixture:
    @pytest.fixture
    def rws_config(self):
        return {"timing": "fast"}

    def test_fixture(self, rws):
        pass
"""


def test_a_bad_setting_of_one_test_errors_that_test_in_one_line_without_the_plugins_frames(
    project: Project,
) -> None:
    project.write("test_settings", BAD_TEST_SETTINGS)
    result = project.run("--rws-transports=http")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.rws_cassette record_mode: unknown record mode 5*",
            "*is not a host name*",
            "*rws_config fixture timing: unknown timing 'fast'*",
        ],
        consecutive=False,
    )
    output = result.stdout.str()
    assert "pytest_responses_ws/" not in output and "UsageError" not in output, output
