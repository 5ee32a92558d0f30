"""Volatile input: rules, presets, their use in matching and merging, and the miss report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.model import RecordedEvent, Turn
from pytest_responses_ws.core.engine import EngineSettings, PlayFrames, PlayHttp, TurnEngine, TurnRequest
from pytest_responses_ws.core.explain import Difference, explain_miss
from pytest_responses_ws.core.match import TurnIndex, conversation_keys
from pytest_responses_ws.core.merge import merge_recording
from pytest_responses_ws.core.volatile import (
    NO_RULES,
    PRESETS,
    VOLATILE,
    VolatileRuleError,
    compile_volatile,
)
from pytest_responses_ws.settings import SettingsError, resolve_settings

CONTEXT = (
    "<environment_context>\n  <cwd>{cwd}</cwd>\n  <shell>bash</shell>\n"
    "  <current_date>{date}</current_date>\n  <timezone>{zone}</timezone>\n</environment_context>"
)


def _codex_request(date: str, cwd: str, session: str, *, zone: str = "Etc/UTC") -> dict[str, Any]:
    """A request shaped like the Codex CLI's: long instructions, then its environment context."""
    return {
        "model": "gpt-5.2",
        "instructions": "You are a coding agent. " * 40,
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": CONTEXT.format(cwd=cwd, date=date, zone=zone)}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hi"}]},
        ],
        "prompt_cache_key": session,
        "client_metadata": {"session_id": session, "turn_started_at_unix_ms": "1796673905699"},
        "store": False,
    }


def _turn(request: dict[str, Any], response_id: str, text: str = "hi") -> Turn:
    response = {
        "id": response_id,
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
        ],
    }
    events = (
        RecordedEvent(0.0, {"type": "response.created", "response": {**response, "status": "in_progress"}}),
        RecordedEvent(1.0, {"type": "response.completed", "response": response}),
    )
    return Turn(request=request, events=events)


# -- the rules ------------------------------------------------------------------------------------


def test_pointers_reach_parameters_and_every_item_with_wildcards() -> None:
    rules = compile_volatile(["/client_metadata/*", "/input/*/content/*/text", "/metadata/run"])
    params = rules.params({"client_metadata": {"a": "1", "b": {"c": 2}}, "metadata": {"run": "7", "x": "y"}})
    assert params == {
        "client_metadata": {"a": VOLATILE, "b": VOLATILE},
        "metadata": {"run": VOLATILE, "x": "y"},
    }
    item = {
        "type": "message",
        "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
    }
    assert rules.item(item)["content"] == [
        {"type": "input_text", "text": VOLATILE},
        {"type": "input_text", "text": VOLATILE},
    ]
    # The caller's values are never changed.
    assert item["content"][0]["text"] == "a"
    # A pointer that reaches nothing changes nothing.
    assert rules.item({"type": "function_call_output", "output": "x"}) == {
        "type": "function_call_output",
        "output": "x",
    }


def test_patterns_replace_their_groups_or_whole_matches_in_every_string() -> None:
    rules = compile_volatile(["re:<cwd>(.*?)</cwd>", "re:run-[0-9]+"])
    assert (
        rules.text("in <cwd>/a/b</cwd> for run-42, run-7")
        == f"in <cwd>{VOLATILE}</cwd> for {VOLATILE}, {VOLATILE}"
    )
    assert rules.params({"instructions": "run-1", "tools": [{"description": "run-2"}]}) == {
        "instructions": VOLATILE,
        "tools": [{"description": VOLATILE}],
    }


def test_presets_cover_what_they_name_and_no_more() -> None:
    text = "on 2026-12-07T10:00:00Z, id 01a2521c-2408-7a73-9eef-9e987da9b0d3, file /tmp/pytest-of-me/p0/x.txt"
    assert compile_volatile(["dates"]).text(text).startswith(f"on {VOLATILE}, id 01a2521c")
    assert "id [volatile], file /tmp" in compile_volatile(["uuids"]).text(text)
    assert compile_volatile(["temp_paths"]).text(text).endswith(f"file {VOLATILE}")
    # Not a date, not an id, not a temporary path: left alone.
    plain = "version 2026.12, 42 items, ./tmp/x, see /tmpfile"
    assert compile_volatile(["dates", "uuids", "temp_paths"]).text(plain) == plain
    codex = compile_volatile(["codex"])
    assert codex.text(
        CONTEXT.format(cwd="/home/me/repo", date="2026-12-07", zone="Europe/Oslo")
    ) == CONTEXT.format(cwd=VOLATILE, date=VOLATILE, zone=VOLATILE)
    assert codex.text("- `r0` = `/home/me/.codex/skills/.system`") == f"- `r0` = `{VOLATILE}`"
    # The user's own words keep deciding the match, dates in them included.
    assert (
        codex.text("What happened on 2026-12-07 in /home/me?") == "What happened on 2026-12-07 in /home/me?"
    )


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("codx", "unknown volatile rule 'codx'"),
        ("re:(", "not a valid regular expression"),
        ("re:x*", "matches the empty string"),
        ("/input/0/content", "with * for the item"),
        ("/input", "with * for the item"),
        ("/", "unknown volatile rule '/'"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_in_one_line(rule: str, problem: str) -> None:
    with pytest.raises(VolatileRuleError, match="volatile rule") as caught:
        compile_volatile([rule])
    assert problem in str(caught.value)
    with pytest.raises(
        SettingsError, match=r"rws_config fixture volatile: .*" + re.escape(problem.split("'")[0])
    ):
        resolve_settings(cli={}, marker={}, fixture={"volatile": [rule]}, ini={})


def test_settings_take_lists_or_one_rule_per_line_with_the_usual_precedence() -> None:
    resolved = resolve_settings(
        cli={},
        marker={"volatile": ["codex"]},
        fixture={"volatile": ["dates"]},
        ini={"volatile": "uuids\n re:x+ \n"},
    )
    assert resolved.volatile == ("codex",)
    assert resolve_settings(cli={}, marker={}, fixture={}, ini={"volatile": "uuids\n re:x+ \n"}).volatile == (
        "uuids",
        "re:x+",
    )
    assert resolve_settings(cli={}, marker={}, fixture={}, ini={}).volatile == ()
    assert compile_volatile([]) is NO_RULES and not NO_RULES
    assert compile_volatile(["codex"]) is compile_volatile(["codex"])  # compiled once per rule set


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(value=st.dictionaries(_TEXT, _JSON, max_size=5), preset=st.sampled_from(sorted(PRESETS)))
def test_rules_are_idempotent_and_keep_the_shape(value: dict[str, Any], preset: str) -> None:
    rules = compile_volatile([preset, "/input/*/content/*/text"])
    once = rules.params(value)
    assert rules.params(once) == once
    assert set(once) == set(value)
    item = rules.item(value)
    assert rules.item(item) == item


# -- matching and merging ---------------------------------------------------------------------------


def test_a_recording_from_yesterday_matches_today_with_the_codex_preset_only() -> None:
    recorded = _turn(_codex_request("2026-12-07", "/tmp/tmpaaaa", "session-1"), "resp_1")
    today = _codex_request("2026-12-08", "/tmp/tmpbbbb", "session-2")
    assert not TurnIndex.build([recorded]).lookup(today).hit
    index = TurnIndex.build([recorded], volatile=compile_volatile(["codex"]))
    assert index.lookup(today).turn == 0
    # A different question is still a different turn.
    other = _codex_request("2026-12-08", "/tmp/tmpbbbb", "session-2")
    other["input"][1]["content"][0]["text"] = "say bye"
    assert not TurnIndex.build([recorded], volatile=compile_volatile(["codex"])).lookup(other).hit


def test_history_resent_with_volatile_parts_lands_on_the_chained_key() -> None:
    rules = compile_volatile(["codex"])
    first = _codex_request("2026-12-07", "/tmp/a", "s1")
    chained = {**first, "input": [{"type": "function_call_output", "call_id": "c1", "output": "ok"}]}
    chained["previous_response_id"] = "resp_1"
    index = TurnIndex.build([_turn(first, "resp_1"), _turn(chained, "resp_2")], volatile=rules)
    later = _codex_request("2026-12-09", "/tmp/b", "s2")
    resent = [*later["input"], *index.effective_input({"previous_response_id": "resp_1", "input": []})[2:]]
    resent.append({"type": "function_call_output", "call_id": "c1", "output": "ok"})
    assert index.lookup(later).turn == 0
    assert index.lookup({**later, "input": resent}).turn == 1


def test_mode_all_replaces_a_conversation_recorded_again_on_another_day() -> None:
    rules = compile_volatile(["codex"])
    old = _turn(_codex_request("2026-12-07", "/tmp/a", "s1"), "resp_old")
    new = _turn(_codex_request("2026-12-08", "/tmp/b", "s2"), "resp_new")
    assert conversation_keys([old], volatile=rules) == conversation_keys([new], volatile=rules)
    assert conversation_keys([old]) != conversation_keys([new])
    from pytest_responses_ws.cassette.model import Cassette, RecordedWith

    on_disk = Cassette((old,), RecordedWith("test"), "2026-12-07")
    merged = merge_recording("all", [new], (), on_disk=on_disk, volatile=rules)
    assert [t.response_id for t in merged.turns] == ["resp_new"]


# -- the miss report --------------------------------------------------------------------------------


def test_a_long_string_shows_where_it_differs() -> None:
    recorded = "You are a coding agent. " * 20 + "Today is 2026-12-07. Answer briefly."
    sent = recorded.replace("2026-12-07", "2026-12-08")
    line = Difference("/instructions", recorded, sent).describe()
    start = recorded.index("2026-12-07") + len("2026-12-0")
    assert f"differ from character {start}" in line
    assert 'recorded "…ding agent. Today is 2026-12-07. Answer briefly."' in line
    assert "Today is 2026-12-08. Answer briefly." in line
    # Short strings are shown whole, as before.
    assert Difference("/model", "gpt-a", "gpt-b").describe() == '/model: recorded "gpt-a", sent "gpt-b"'


def test_the_miss_report_names_the_rules_and_shows_the_part_they_do_not_cover() -> None:
    recorded = _turn(_codex_request("2026-12-07", "/tmp/a", "s1"), "resp_1")
    sent = _codex_request("2026-12-08", "/tmp/b", "s2")
    sent["input"][0]["content"][0]["text"] = sent["input"][0]["content"][0]["text"].replace("bash", "zsh")
    index = TurnIndex.build([recorded], volatile=compile_volatile(["codex"]))
    result = index.lookup(sent)
    report = explain_miss(index, sent, result, where="request 1", cassette="c.json", record_hint="record it")
    assert "volatile input (not matched, shown as [volatile]): codex" in report
    (line,) = [line for line in report.splitlines() if "/input/0/content/0/text" in line]
    assert "<shell>bash</shell>" in line and "<shell>zsh</shell>" in line
    assert "2026-12-0" not in line and "/prompt_cache_key" not in report.split("nearest")[1]


# -- warm-ups (generate: false) --------------------------------------------------------------------


def _engine(turns: tuple[Turn, ...]) -> TurnEngine:
    return TurnEngine(
        EngineSettings(cassette=Path("c.json"), record_command="record", replays=True, records=False), turns
    )


def _create(request: dict[str, Any], transport: str = "ws", connection: int = 1) -> TurnRequest:
    return TurnRequest(
        transport=transport,  # type: ignore[arg-type]
        connection=connection,
        request=request,
        raw=json.dumps(request).encode(),
        arrived_ns=0,
        where="request",
    )


def _frames(action: Any) -> list[dict[str, Any]]:
    assert isinstance(action, PlayFrames), action
    return [json.loads(frame) for frame in action.frames]


INSTRUCTIONS = {
    "type": "message",
    "role": "developer",
    "content": [{"type": "input_text", "text": "be brief"}],
}
QUESTION = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hi"}]}


def test_a_warm_up_without_a_recorded_turn_gets_the_service_s_answer_and_its_id_chains() -> None:
    # Recorded over HTTP: one request with the whole conversation, no warm-up.
    engine = _engine((_turn({"model": "m", "input": [INSTRUCTIONS, QUESTION], "store": False}, "resp_http"),))
    warm_up = _frames(
        engine.on_create(
            _create(
                {
                    "type": "response.create",
                    "model": "m",
                    "generate": False,
                    "input": [INSTRUCTIONS],
                    "store": False,
                }
            )
        )
    )
    assert [e["type"] for e in warm_up] == ["response.created", "response.in_progress", "response.completed"]
    final = warm_up[-1]["response"]
    assert final["output"] == [] and final["status"] == "completed" and final["store"] is False
    chained = {
        "type": "response.create",
        "model": "m",
        "previous_response_id": final["id"],
        "input": [QUESTION],
        "store": False,
    }
    answer = _frames(engine.on_create(_create(chained)))
    assert answer[-1]["response"]["id"] == "resp_http"
    # A second connection warms up again: another id, and the recorded turn is used up.
    again = _frames(
        engine.on_create(
            _create(
                {"type": "response.create", "model": "m", "generate": False, "input": [INSTRUCTIONS]},
                connection=2,
            )
        )
    )
    assert again[-1]["response"]["id"] != final["id"]
    # Strict as the service: a store:false warm-up is not chained from over another connection.
    assert not isinstance(engine.on_create(_create(chained, connection=3)), PlayFrames)


def test_a_recorded_warm_up_plays_as_recorded_and_http_warm_ups_get_json() -> None:
    warm_request = {"model": "m", "generate": False, "input": [INSTRUCTIONS]}
    recorded_warm_up = Turn(
        request=warm_request,
        events=(),
        body={"id": "resp_warm", "object": "response", "status": "completed", "output": []},
    )
    chained = {"model": "m", "previous_response_id": "resp_warm", "input": [QUESTION]}
    engine = _engine((recorded_warm_up, _turn(chained, "resp_answer")))
    assert _frames(engine.on_create(_create({"type": "response.create", **warm_request})))[-1]["response"][
        "id"
    ] == ("resp_warm")
    assert _frames(engine.on_create(_create({"type": "response.create", **chained})))[-1]["response"][
        "id"
    ] == ("resp_answer")
    # Over HTTP, a second warm-up (the recorded one is used) is answered as a JSON response.
    action = engine.on_create(_create(warm_request, transport="http"))
    assert isinstance(action, PlayHttp)
    body = action.answer.body
    assert body is not None
    assert body["output"] == [] and body["id"].startswith("resp_rws_warmup_")


def test_a_synthesized_warm_up_is_never_shown_as_a_recorded_turn() -> None:
    engine = _engine((_turn({"model": "m", "input": [QUESTION]}, "resp_1"),))
    engine.on_create(_create({"model": "m", "generate": False, "input": [INSTRUCTIONS]}))
    miss = engine.on_create(_create({"model": "m", "input": "something else"}))
    report = str(miss.failures[0])
    assert "turn 0 (" in report and "turn 1 (" not in report
