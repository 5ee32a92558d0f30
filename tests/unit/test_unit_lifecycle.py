"""Unit tests of ``core.lifecycle``: unplayed turns, the save policy, expiry, orphans."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_responses_ws.cassette.model import Turn
from pytest_responses_ws.config import parse_max_age, resolve_settings
from pytest_responses_ws.core.lifecycle import (
    CassetteRoot,
    ExpiryAction,
    SavePolicy,
    UnplayedPolicy,
    check_expiry,
    describe_turn,
    find_orphans,
    format_duration,
    parse_duration,
    should_save,
    unplayed_message,
    unplayed_to_report,
)

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("policy", "replayed", "passed", "expected"),
    [
        (UnplayedPolicy.WARN, True, True, (3, 4)),
        (UnplayedPolicy.FAIL, True, True, (3, 4)),
        (UnplayedPolicy.OFF, True, True, ()),
        (UnplayedPolicy.WARN, True, False, ()),  # a failed test stopped early: nothing said
        (UnplayedPolicy.FAIL, False, True, ()),  # a recording test played nothing from a cassette
    ],
)
def test_unplayed_turns_are_judged_only_for_a_passing_replay(
    policy: UnplayedPolicy, replayed: bool, passed: bool, expected: tuple[int, ...]
) -> None:
    assert unplayed_to_report(policy, replayed=replayed, test_passed=passed, unplayed=[3, 4]) == expected


def test_unplayed_turns_are_named() -> None:
    turns = [
        Turn(
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "x" * 100}]}]},
            (),
            lane="plan",
        ),
        Turn(
            {"input": [{"type": "function_call_output", "call_id": "c", "output": "22 C"}]},
            (),
            transport="http",
        ),
    ]
    assert (
        describe_turn(0, turns[0])
        == f"turn 0 (ws connection 0 lane 'plan', completed): last input message {'x' * 57 + '...'!r}"
    )
    assert describe_turn(1, turns[1]) == "turn 1 (http, completed): last input function_call_output '22 C'"
    message = unplayed_message("c.json", turns, [1])
    assert message.splitlines()[:2] == [
        "pytest-responses-ws: 1 recorded turn(s) of c.json were never played:",
        "  turn 1 (http, completed): last input function_call_output '22 C'",
    ]


def test_save_policy() -> None:
    assert should_save(SavePolicy.PASSED, test_passed=True)
    assert not should_save(SavePolicy.PASSED, test_passed=False)
    assert should_save(SavePolicy.ALWAYS, test_passed=False)


@given(st.integers(1, 10**6), st.sampled_from(["", "s", "m", "h", "d", "w"]))
def test_durations_round_trip_their_unit(amount: int, unit: str) -> None:
    size = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{amount}{unit.upper() if amount % 2 else unit}") == amount * size


@pytest.mark.parametrize("bad", ["", "0", "-3d", "3y", "d", "inf", True, float("nan")])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_max_age_setting_in_every_layer() -> None:
    assert parse_max_age("off", "cli") is None
    assert (
        resolve_settings(cli={}, marker={"max_age": "2w"}, fixture={}, ini={"max_age": "1d"}).max_age
        == 1209600
    )
    with pytest.raises(pytest.UsageError, match=r"max_age 'soon' must be a positive duration"):
        resolve_settings(cli={}, marker={"max_age": "soon"}, fixture={}, ini={})
    chosen = resolve_settings(
        cli={"on_expiry": "rerecord", "save": "ALWAYS"}, marker={"unplayed": "fail"}, fixture={}, ini={}
    )
    assert (chosen.on_expiry, chosen.save, chosen.unplayed) == (
        ExpiryAction.RERECORD,
        SavePolicy.ALWAYS,
        UnplayedPolicy.FAIL,
    )


def test_expiry() -> None:
    def expiry(recorded_at: str, max_age: float | None = 86400 * 30) -> object:
        return check_expiry(
            cassette="c.json", recorded_at=recorded_at, recorded_by="rws 1", max_age_s=max_age, now=NOW
        )

    assert expiry("2026-05-20T00:00:00+00:00") is None
    assert expiry("2020-01-01T00:00:00+00:00", None) is None
    old = expiry("2026-01-01T00:00:00Z")
    assert old is not None and format_duration(old.age_s) == "151d"  # type: ignore[attr-defined]
    assert "max_age is 30d; re-record it" in old.message(ExpiryAction.FAIL)  # type: ignore[attr-defined]
    assert old.message(ExpiryAction.RERECORD).endswith("re-recording it (on_expiry='rerecord')")  # type: ignore[attr-defined]
    assert expiry("2026-01-01T00:00:00") is not None  # no zone: UTC
    assert expiry("last tuesday") is not None  # an age that cannot be told is never fresh


def test_orphans(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    used = root / "test_a" / "test_x.json"
    stale = root / "test_a" / "test_old.json"
    gone = root / "test_gone" / "test_y.json"
    elsewhere = root / "test_b" / "test_z.json"
    loose = root / "notes.json"
    files = {root: [used, stale, gone, elsewhere, loose]}
    test_files = {tmp_path / "test_a.py", tmp_path / "test_b.py"}
    found = find_orphans([CassetteRoot(root, tmp_path)], {used}, {(root, "test_a")}, files, test_files)
    assert found == [stale, gone]
