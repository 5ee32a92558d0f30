"""Unit tests of ``config``: value parsing and precedence (CLI > marker > fixture > ini > default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_responses_ws import config, settings
from pytest_responses_ws.config import (
    DEFAULT_UPSTREAM,
    SETTING_KEYS,
    RecordMode,
    Settings,
    Timing,
    check_keys,
    parse_record_mode,
    parse_timing,
    parse_transports,
    parse_upstream,
    resolve_settings,
)
from pytest_responses_ws.errors import RwsError

# -- record mode ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["none", "once", "new_episodes", "all", "rewrite"])
def test_record_modes(value: str) -> None:
    assert parse_record_mode(value, "cli").value == value
    assert parse_record_mode(f"  {value} ", "cli") is RecordMode(value)
    assert parse_record_mode(RecordMode(value), "cli") is RecordMode(value)


@pytest.mark.parametrize("value", ["sometimes", "", "new-episodes", None, 3])
def test_bad_record_mode_names_the_valid_ones(value: Any) -> None:
    with pytest.raises(pytest.UsageError) as info:
        parse_record_mode(value, "--rws-record-mode")
    message = str(info.value)
    assert "--rws-record-mode" in message
    assert repr(value) in message
    assert "none, once, new_episodes, all, rewrite" in message


# -- timing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "factor"),
    [
        ("instant", None),
        ("INSTANT", None),
        (" recorded ", 1.0),
        ("0.5", 0.5),
        ("2", 2.0),
        (3, 3.0),
        (0.25, 0.25),
        ("1e-3", 0.001),
    ],
)
def test_timings(value: Any, factor: float | None) -> None:
    assert parse_timing(value, "cli") == Timing(factor)


def test_timing_passes_through_and_prints() -> None:
    timing = Timing(0.5)
    assert parse_timing(timing, "cli") is timing
    assert str(Timing()) == "instant"
    assert str(Timing(1.0)) == "recorded"
    assert str(Timing(0.5)) == "0.5"


@pytest.mark.parametrize("value", ["fast", "0", "-1", "nan", "inf", "-inf", "", None, "1/2"])
def test_bad_timing_names_the_valid_ones(value: Any) -> None:
    with pytest.raises(pytest.UsageError) as info:
        parse_timing(value, "--rws-timing")
    message = str(info.value)
    assert "--rws-timing" in message
    assert "instant" in message
    assert "recorded" in message
    assert "positive factor" in message


# -- transports ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http,ws", ("http", "ws")),
        ("ws,http", ("ws", "http")),
        ("ws", ("ws",)),
        (" http , ws ,", ("http", "ws")),
        ("http,http", ("http",)),
        (["ws"], ("ws",)),
        (("http", "ws", "ws"), ("http", "ws")),
    ],
)
def test_transports(value: Any, expected: tuple[str, ...]) -> None:
    assert parse_transports(value, "cli") == expected


def test_names_are_case_insensitive() -> None:
    assert parse_transports("WS,Http", "cli") == ("ws", "http")
    assert parse_record_mode("New_Episodes", "cli") is RecordMode.NEW_EPISODES


@pytest.mark.parametrize("value", ["tcp", "http,sse", "wss", ["http", "grpc"]])
def test_unknown_transport_names_the_valid_ones(value: Any) -> None:
    with pytest.raises(pytest.UsageError) as info:
        parse_transports(value, "--rws-transports")
    message = str(info.value)
    assert "--rws-transports" in message
    assert "unknown transport" in message
    assert "http or ws" in message


@pytest.mark.parametrize("value", ["", " , ", []])
def test_empty_transports_are_rejected(value: Any) -> None:
    with pytest.raises(pytest.UsageError, match=r"no transport given.*http,ws"):
        parse_transports(value, "--rws-transports")


# -- upstream -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
        (" http://127.0.0.1:8000/v1 ", "http://127.0.0.1:8000/v1"),
        ("wss://api.x.ai/v1", "wss://api.x.ai/v1"),
        ("ws://localhost:9/v1//", "ws://localhost:9/v1"),
    ],
)
def test_upstreams(value: str, expected: str) -> None:
    assert parse_upstream(value, "cli") == expected


@pytest.mark.parametrize("value", ["api.openai.com/v1", "ftp://host/v1", "", "https:/x"])
def test_bad_upstream_says_what_a_url_looks_like(value: str) -> None:
    with pytest.raises(pytest.UsageError) as info:
        parse_upstream(value, "--rws-upstream")
    message = str(info.value)
    assert "--rws-upstream" in message
    assert "http(s)://" in message
    assert "ws(s)://" in message
    assert DEFAULT_UPSTREAM in message


# -- precedence -------------------------------------------------------------------------------------------------


def _resolve(
    cli: dict[str, Any] | None = None,
    marker: dict[str, Any] | None = None,
    fixture: dict[str, Any] | None = None,
    ini: dict[str, Any] | None = None,
) -> Settings:
    return resolve_settings(cli=cli or {}, marker=marker or {}, fixture=fixture or {}, ini=ini or {})


def test_defaults() -> None:
    assert _resolve() == Settings()
    assert Settings().record_mode is RecordMode.NONE
    assert Settings().upstream == DEFAULT_UPSTREAM
    assert Settings().timing == Timing(None)


def test_cli_beats_marker_beats_fixture_beats_ini() -> None:
    layers = {
        "ini": {"record_mode": "all", "timing": "4", "upstream": "http://ini/v1", "ignore_fields": ["i"]},
        "fixture": {"record_mode": "rewrite", "timing": "3", "upstream": "http://fixture/v1"},
        "marker": {"record_mode": "new_episodes", "timing": "2"},
        "cli": {"record_mode": "once"},
    }
    settings = _resolve(**layers)
    assert settings.record_mode is RecordMode.ONCE
    assert settings.timing == Timing(2.0)
    assert settings.upstream == "http://fixture/v1"
    assert settings.ignore_fields == ("i",)


@pytest.mark.parametrize("layer", ["cli", "marker", "fixture", "ini"])
def test_each_layer_alone_applies(layer: str) -> None:
    assert _resolve(**{layer: {"record_mode": "rewrite"}}).record_mode is RecordMode.REWRITE


def test_none_means_not_given() -> None:
    settings = _resolve(
        cli={"record_mode": None, "timing": None}, ini={"record_mode": "once", "timing": "recorded"}
    )
    assert settings.record_mode is RecordMode.ONCE
    assert settings.timing == Timing(1.0)


def test_cli_and_ini_may_carry_keys_that_are_not_per_test_settings() -> None:
    settings = _resolve(cli={"transports": "ws", "record_mode": "all"}, ini={"budgets": "warn"})
    assert settings.record_mode is RecordMode.ALL


def test_every_setting_key_is_parsed() -> None:
    settings = _resolve(
        fixture={
            "record_mode": "once",
            "upstream": "https://gateway.example/v1/",
            "timing": "recorded",
            "cassette_dir": "recordings",
            "ignore_fields": ["metadata", "/metadata/run_id"],
            "filter_headers": "x-tenant",
            "allow_playback_repeats": True,
            "upstream_first_event_timeout": "600",
            "upstream_idle_timeout": 0.25,
        },
        marker={"name": "shared_cassette"},
    )
    assert settings == Settings(
        record_mode=RecordMode.ONCE,
        upstream="https://gateway.example/v1",
        timing=Timing(1.0),
        cassette_dir=Path("recordings"),
        cassette_name="shared_cassette",
        ignore_fields=("metadata", "/metadata/run_id"),
        filter_headers=("x-tenant",),
        allow_playback_repeats=True,
        upstream_first_event_timeout=600.0,
        upstream_idle_timeout=0.25,
    )


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("record_mode", "later", "none, once"),
        ("timing", "slow", "instant"),
        ("upstream", "localhost", "http(s)://"),
        ("ignore_fields", [1, 2], "list of strings"),
        ("filter_headers", {"a": 1}, "list of strings"),
        ("allow_playback_repeats", "yes", "True or False"),
        ("upstream_first_event_timeout", 0, "positive number of seconds"),
        ("upstream_first_event_timeout", "soon", "positive number of seconds"),
        ("upstream_idle_timeout", float("inf"), "positive number of seconds"),
        ("upstream_idle_timeout", True, "positive number of seconds"),
        ("connection_max_age", 0, "positive number of seconds"),
        ("connection_max_age", "an hour", "positive number of seconds"),
        ("connection_max_age", float("nan"), "positive number of seconds"),
        ("connection_max_age", False, "positive number of seconds"),
    ],
)
def test_bad_values_name_their_source_and_key(key: str, value: Any, words: str) -> None:
    with pytest.raises(pytest.UsageError) as info:
        _resolve(fixture={key: value})
    message = str(info.value)
    assert f"rws_config fixture {key}" in message
    assert words in message


def test_bad_marker_value_names_the_marker() -> None:
    with pytest.raises(pytest.UsageError, match=r"@pytest.mark.rws_cassette record_mode"):
        _resolve(marker={"record_mode": "later"})


def test_unknown_fixture_keys_are_rejected_with_the_valid_keys() -> None:
    with pytest.raises(pytest.UsageError) as info:
        _resolve(fixture={"record_mode": "once", "recordmode": "once", "name": "x"})
    message = str(info.value)
    assert "rws_config fixture" in message
    assert "'recordmode'" in message
    assert "'name'" in message  # a cassette name is a marker option, not a fixture one
    assert ", ".join(SETTING_KEYS) in message


def test_unknown_marker_keys_are_rejected_with_the_valid_keys() -> None:
    with pytest.raises(pytest.UsageError) as info:
        _resolve(marker={"casette_dir": "x"})
    message = str(info.value)
    assert "@pytest.mark.rws_cassette" in message
    assert "'casette_dir'" in message
    assert ", ".join((*SETTING_KEYS, "name")) in message


def test_marker_name_must_be_a_string() -> None:
    with pytest.raises(pytest.UsageError, match="name must be a string"):
        _resolve(marker={"name": 3})


def test_check_keys_accepts_known_and_extra() -> None:
    check_keys({"record_mode": 1, "name": 2}, "src", extra=("name",))
    with pytest.raises(pytest.UsageError, match="src"):
        check_keys({"name": 2}, "src")


def test_usage_errors_are_prefixed_with_the_plugin_name() -> None:
    with pytest.raises(pytest.UsageError, match=r"^pytest-responses-ws: "):
        parse_timing("x", "cli")


# -- the pytest-free layer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        ("parse_record_mode", "sometimes"),
        ("parse_budget_mode", "loud"),
        ("parse_budget_scale", "-1"),
        ("parse_lock_timeout", "soon"),
        ("parse_timing", "fast"),
        ("parse_seconds", 0),
        ("parse_transports", "tcp"),
        ("parse_upstream", "localhost"),
        ("parse_allow_hosts", [3]),
        ("parse_connection_max_age", -1),
    ],
)
def test_settings_raise_a_plain_error_that_config_shows_as_a_usage_error(parse: str, value: Any) -> None:
    with pytest.raises(settings.SettingsError) as plain:
        getattr(settings, parse)(value, "--rws-option")
    assert isinstance(plain.value, RwsError) and isinstance(plain.value, ValueError)
    assert not isinstance(plain.value, pytest.UsageError)
    with pytest.raises(pytest.UsageError) as usage:
        getattr(config, parse)(value, "--rws-option")
    assert str(usage.value) == str(plain.value)
    assert str(plain.value).startswith("pytest-responses-ws: --rws-option: ")
    assert "\n" not in str(plain.value)


def test_resolving_settings_without_pytest_raises_the_plain_error() -> None:
    with pytest.raises(settings.SettingsError, match=r"^pytest-responses-ws: rws_config fixture timing: "):
        settings.resolve_settings(cli={}, marker={}, fixture={"timing": "slow"}, ini={})
    with pytest.raises(settings.SettingsError, match="unknown option"):
        settings.check_keys({"recordmode": 1}, "src")


def test_config_keeps_exporting_the_settings() -> None:
    for name in ("RecordMode", "BudgetMode", "Settings", "Timing", "SETTING_KEYS", "DEFAULT_UPSTREAM"):
        assert getattr(config, name) is getattr(settings, name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("on", True),
        ("off", False),
        ("False", False),
        (" yes ", True),
        ("0", False),
    ],
)
def test_strict_switch_parses(value: Any, expected: bool) -> None:
    resolved = config.resolve_settings(cli={}, marker={"strict": value}, fixture={}, ini={})
    assert resolved.strict is expected


def test_strict_defaults_on_and_rejects_other_words() -> None:
    assert config.resolve_settings(cli={}, marker={}, fixture={}, ini={}).strict is True
    with pytest.raises(pytest.UsageError, match=r"strict: expected on or off"):
        config.resolve_settings(cli={"strict": "maybe"}, marker={}, fixture={}, ini={})


def test_connection_max_age_defaults_to_the_services_hour_and_scales_down() -> None:
    assert _resolve().connection_max_age == 3600.0
    assert _resolve(marker={"connection_max_age": 0.05}).connection_max_age == 0.05
    assert (
        _resolve(fixture={"connection_max_age": "2"}, cli={"connection_max_age": "0.2"}).connection_max_age
        == 0.2
    )
