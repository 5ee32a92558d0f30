"""Real vcrpy cassettes (recorded from the live API) import and replay over both transports.

The SDK must parse the same events from the HTTP replay, the WebSocket replay and the
original SSE body; non-streamed and error turns must give the same answer either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_responses_ws.cassette.store import load_cassette
from pytest_responses_ws.cassette.vcr_import import import_vcr_cassette, parse_sse
from pytest_responses_ws.cli import main

from support.project import Project

REAL = Path(__file__).parent / "data" / "real-recordings"
CASSETTES = sorted(p.name for p in REAL.glob("*.yaml"))

REPLAY_TEST = """
import json, os, pytest
import openai
from pathlib import Path

def turns(rws):
    return json.loads(rws.cassette_path.read_text())["turns"]

@pytest.mark.rws_cassette("imported")
def test_replay(rws):
    client = rws.openai_client()
    answers = []
    for turn in turns(rws):
        request = {k: v for k, v in turn["request"].items() if k not in ("stream", "type")}
        streamed = turn["request"].get("stream") is True
        try:
            if rws.transport == "ws":
                with client.responses.connect() as conn:
                    conn.response.create(**request)
                    events = []
                    for event in conn:
                        events.append(event.to_dict())
                        if event.type in ("response.completed", "response.failed", "response.incomplete", "error"):
                            break
                if events[-1]["type"] == "error":
                    answers.append({"error": events[-1]["error"]["code"]})
                elif streamed:
                    answers.append({"events": events})
                else:
                    answers.append({"response": events[-1]["response"]})
            elif streamed:
                answers.append({"events": [e.to_dict() for e in client.responses.create(**request, stream=True)]})
            else:
                answers.append({"response": client.responses.create(**request).to_dict()})
        except openai.APIStatusError as exc:
            answers.append({"error": exc.code})
    with open(os.environ["RWS_EVENTS_OUT"], "a") as out:
        out.write(json.dumps({"name": rws.transport, "events": answers}) + "\\n")
"""


def _expected(path: Path) -> list[dict[str, Any]]:
    """What the original cassette says each turn answered."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    answers: list[dict[str, Any]] = []
    for interaction in data["interactions"]:
        request, response = interaction["request"], interaction["response"]
        if not request["uri"].endswith("/responses"):
            continue
        if "parsed_body" in response:
            body = response["parsed_body"]
            answers.append({"error": body["error"]["code"]} if body.get("error") else {"response": body})
        else:
            answers.append({"events": parse_sse(response["body"]["string"])})
    return answers


@pytest.mark.parametrize("name", CASSETTES)
def test_real_vcr_cassette_replays_identically_over_both_transports(project: Project, name: str) -> None:
    target = project.path / "cassettes" / "test_replay" / "imported.json"
    assert main(["import-vcr", str(REAL / name), "-o", str(target)]) == 0
    project.write("test_replay", REPLAY_TEST)
    result = project.replay()
    result.assert_outcomes(passed=2)
    by_transport = project.events()
    assert by_transport["http"] == by_transport["ws"]
    expected = _expected(REAL / name)
    assert len(by_transport["http"]) == len(expected)
    for got, want in zip(by_transport["http"], expected, strict=True):
        if "response" in want:
            # A non-streamed answer replays as the recorded response object (over WebSocket
            # it is synthesized into events; its terminal event carries that same object).
            assert got["response"]["id"] == want["response"]["id"]
            assert got["response"]["output"] == want["response"]["output"]
        else:
            assert got == want


def test_import_keeps_secrets_out_and_reports_what_it_left_out(tmp_path: Path) -> None:
    source = tmp_path / "cassette.yaml"
    data = yaml.safe_load((REAL / "test_openai_responses_stream.yaml").read_text(encoding="utf-8"))
    secret = "fake-proj-LEAKED-0123456789abcdef"
    data["interactions"][0]["request"]["headers"]["authorization"] = [f"Bearer {secret}"]
    data["interactions"].append(
        {
            "request": {
                "method": "GET",
                "uri": "https://api.openai.com/v1/files",
                "body": None,
                "headers": {},
            },
            "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
        }
    )
    source.write_text(yaml.safe_dump(data))
    result = import_vcr_cassette(source)
    assert result.skipped == ("GET https://api.openai.com/v1/files",)
    assert main(["import-vcr", str(source)]) == 0
    written = source.with_suffix(".json").read_text(encoding="utf-8")
    assert secret not in written
    cassette = load_cassette(source.with_suffix(".json"))
    assert [t.transport for t in cassette.turns] == ["http", "http"]
    assert json.loads(written)["format"] == "pytest-responses-ws/cassette"


def test_import_of_something_else_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "not-vcr.yaml"
    source.write_text("just: a mapping\n")
    assert main(["import-vcr", str(source)]) == 1
    assert "not a vcrpy cassette (no interactions)" in capsys.readouterr().err
    assert not source.with_suffix(".json").exists()


def test_import_reports_each_bad_file_in_one_line_and_converts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "broken.yaml": "hello: [1, 2\n",
        "number.yaml": "interactions: 7\n",
        "scalar.yaml": "interactions:\n- request: 5\n",
        "body.yaml": (
            "interactions:\n- {request: {method: POST, uri: 'https://x/v1/responses', body: '{', headers: {}},"
            " response: {status: {code: 200}, headers: {}, body: {string: 'x'}}}\n"
        ),
        "ours.json": '{"format": "pytest-responses-ws/cassette"}\n',
        "binary.yaml": b"\xff\xfe\x00".decode("latin-1"),
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text, encoding="latin-1" if name == "binary.yaml" else "utf-8")
    good = tmp_path / "good.yaml"
    good.write_text(
        (REAL / "test_openai_responses_stream.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    out = tmp_path / "out"
    names = [
        "broken.yaml",
        "number.yaml",
        "good.yaml",
        "scalar.yaml",
        "body.yaml",
        "ours.json",
        "binary.yaml",
    ]
    assert main(["import-vcr", *(str(tmp_path / n) for n in names), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad)
    assert "Traceback" not in captured.err
    expected = {
        "broken.yaml": "not a readable YAML cassette: expected ',' or ']'",
        "number.yaml": "expected a list of interactions (at /interactions)",
        "scalar.yaml": "expected a mapping (at /interactions/0/request)",
        "body.yaml": "cannot read this interaction: not valid JSON",
        "ours.json": "not a vcrpy cassette (no interactions)",
        "binary.yaml": "not a readable YAML cassette",
    }
    for name, text in expected.items():
        (line,) = [e for e in errors if e.startswith(f"error: {tmp_path / name}: ")]
        assert text in line
    assert "6 of 7 cassettes not converted" in captured.err
    assert load_cassette(out / "good.json").turns
    assert sorted(p.name for p in out.iterdir()) == ["good.json"]


def test_import_never_writes_over_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # vcrpy can store cassettes as JSON: the default output name would be the input itself.
    source = tmp_path / "cassette.json"
    data = yaml.safe_load((REAL / "test_openai_responses_stream.yaml").read_text(encoding="utf-8"))
    source.write_text(json.dumps(data), encoding="utf-8")
    before = source.read_bytes()
    assert main(["import-vcr", str(source)]) == 1
    assert "is one of the inputs; choose another with -o" in capsys.readouterr().err
    assert source.read_bytes() == before
    other = tmp_path / "other.yaml"
    other.write_text("interactions: []\n", encoding="utf-8")
    assert main(["import-vcr", str(source), str(other), "-o", str(tmp_path)]) == 1
    assert source.read_bytes() == before
    assert main(["import-vcr", str(source), "-o", str(tmp_path / "converted.json")]) == 0
    assert load_cassette(tmp_path / "converted.json").turns


def test_an_imported_error_answer_keeps_the_headers_clients_back_off_on(tmp_path: Path) -> None:
    source = tmp_path / "cassette.yaml"
    data = yaml.safe_load((REAL / "test_openai_responses_stream.yaml").read_text(encoding="utf-8"))
    limited = data["interactions"][0]
    error = {
        "message": "Rate limit reached",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    limited["response"] = {
        "status": {"code": 429, "message": "Too Many Requests"},
        "headers": {
            "Content-Type": ["application/json"],
            "Retry-After": ["2"],
            "x-ratelimit-remaining-requests": ["0"],
            "Set-Cookie": ["__cf_bm=imported-cookie; path=/"],
            "x-request-id": ["req_imported"],
        },
        "body": {"string": json.dumps({"error": error})},
    }
    data["interactions"] = [limited]
    source.write_text(yaml.safe_dump(data))
    (turn,) = import_vcr_cassette(source).cassette.turns
    assert (turn.status, turn.outcome, turn.body) == (429, "http_error", {"error": error})
    assert turn.headers == {"retry-after": "2", "x-ratelimit-remaining-requests": "0"}


FRAME_LOGS = sorted(p.name for p in (REAL / "more" / "ws").glob("*.yaml"))


@pytest.mark.parametrize("name", FRAME_LOGS)
def test_real_frame_log_imports_and_replays_identically_over_both_transports(
    project: Project, name: str
) -> None:
    target = project.path / "cassettes" / "test_replay" / "imported.json"
    # Told apart from a vcrpy cassette by its content, by either name of the command.
    command = "import" if name == FRAME_LOGS[0] else "import-vcr"
    assert main([command, str(REAL / "more" / "ws" / name), "-o", str(target)]) == 0
    assert [t.transport for t in load_cassette(target).turns] == ["ws"]
    project.write("test_replay", REPLAY_TEST)
    result = project.replay()
    result.assert_outcomes(passed=2)
    by_transport = project.events()
    assert by_transport["http"] == by_transport["ws"]
    frames = yaml.safe_load((REAL / "more" / "ws" / name).read_text(encoding="utf-8"))["interactions"]
    received = [frame["data"] for frame in frames if frame["direction"] == "received"]
    assert by_transport["ws"] == [{"events": received}]


def test_a_frame_log_cut_short_or_malformed_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = yaml.safe_load((REAL / "more" / "ws" / FRAME_LOGS[0]).read_text(encoding="utf-8"))
    cut = tmp_path / "cut.yaml"
    cut.write_text(yaml.safe_dump({**frames, "interactions": frames["interactions"][:-1]}))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"interactions": [{"direction": "sent", "data": "text"}]}))
    assert main(["import", str(cut), str(bad), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert (
        f"error: {cut}: this response.create has no terminal event in the log (cut short?) (at /interactions/0)"
        in err
    )
    assert f"error: {bad}: expected a JSON object with a string type (at /interactions/0/data)" in err
    assert "Traceback" not in err
