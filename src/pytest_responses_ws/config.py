"""Settings as pytest sees them: the pytest-facing layer over :mod:`.settings`.

The settings, their defaults and the validation of each value live in the pytest-free
:mod:`.settings` module (the loopback server runs without pytest). Here each parser
raises a :class:`pytest.UsageError` instead of a :class:`~.settings.SettingsError`, with
the same one-line message, so a bad option stops the run, or errors the one test whose
marker or ``rws_config`` holds it, the way pytest shows usage errors. The names this
module has always exported stay importable from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import pytest

from . import settings as _settings
from .settings import (
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_UPSTREAM,
    DEFAULT_UPSTREAM_FIRST_EVENT_TIMEOUT_S,
    DEFAULT_UPSTREAM_IDLE_TIMEOUT_S,
    SETTING_KEYS,
    TIMEOUT_KEYS,
    BudgetMode,
    RecordMode,
    Settings,
    SettingsError,
    Timing,
)

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "DEFAULT_UPSTREAM",
    "DEFAULT_UPSTREAM_FIRST_EVENT_TIMEOUT_S",
    "DEFAULT_UPSTREAM_IDLE_TIMEOUT_S",
    "SETTING_KEYS",
    "TIMEOUT_KEYS",
    "BudgetMode",
    "RecordMode",
    "Settings",
    "SettingsError",
    "Timing",
    "check_keys",
    "parse_allow_hosts",
    "parse_budget_mode",
    "parse_budget_scale",
    "parse_connection_max_age",
    "parse_latency_model",
    "parse_lock_timeout",
    "parse_max_age",
    "parse_on_expiry",
    "parse_record_mode",
    "parse_save",
    "parse_seconds",
    "parse_switch",
    "parse_timing",
    "parse_transports",
    "parse_unplayed",
    "parse_upstream",
    "parse_verify_fail_on",
    "parse_volatile",
    "resolve_settings",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _usage_errors(parse: Callable[_P, _R]) -> Callable[_P, _R]:
    """``parse``, raising :class:`pytest.UsageError` with the message of its ``SettingsError``."""

    @functools.wraps(parse)
    def parse_for_pytest(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return parse(*args, **kwargs)
        except SettingsError as exc:
            raise pytest.UsageError(str(exc)) from None

    return parse_for_pytest


parse_record_mode = _usage_errors(_settings.parse_record_mode)
parse_budget_mode = _usage_errors(_settings.parse_budget_mode)
parse_budget_scale = _usage_errors(_settings.parse_budget_scale)
parse_lock_timeout = _usage_errors(_settings.parse_lock_timeout)
parse_connection_max_age = _usage_errors(_settings.parse_connection_max_age)
parse_latency_model = _usage_errors(_settings.parse_latency_model)
parse_timing = _usage_errors(_settings.parse_timing)
parse_seconds = _usage_errors(_settings.parse_seconds)
parse_transports = _usage_errors(_settings.parse_transports)
parse_upstream = _usage_errors(_settings.parse_upstream)
parse_allow_hosts = _usage_errors(_settings.parse_allow_hosts)
parse_switch = _usage_errors(_settings.parse_switch)
parse_unplayed = _usage_errors(_settings.parse_unplayed)
parse_save = _usage_errors(_settings.parse_save)
parse_max_age = _usage_errors(_settings.parse_max_age)
parse_on_expiry = _usage_errors(_settings.parse_on_expiry)
parse_verify_fail_on = _usage_errors(_settings.parse_verify_fail_on)
parse_volatile = _usage_errors(_settings.parse_volatile)
check_keys = _usage_errors(_settings.check_keys)
resolve_settings = _usage_errors(_settings.resolve_settings)
