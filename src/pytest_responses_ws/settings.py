"""Settings: what they are, their defaults, and the validation of each value.

Pure and pytest-free, so the loopback server (``server/``) and a command-line front end
can use them outside a pytest run. A bad value raises :class:`SettingsError`, one line
naming where the value came from and what would be valid; ``config.py``, the
pytest-facing layer, turns it into a :class:`pytest.UsageError`.

Precedence, highest first: command-line option, ``rws_cassette`` marker, ``rws_config``
fixture, ini file, built-in default (see :func:`resolve_settings`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .cassette.model import TRANSPORTS, Transport
from .core.latency import DEFAULT_PRESET, PARAMETERS, PRESETS, LatencyModel
from .core.lifecycle import ExpiryAction, SavePolicy, UnplayedPolicy, VerifyFailOn, parse_duration
from .core.service_errors import SERVICE_CONNECTION_MAX_AGE_S
from .core.volatile import VolatileRuleError, compile_volatile
from .errors import RwsError
from .guard import AllowList, split_host_list


class RecordMode(str, enum.Enum):
    """When to replay and when to record (vcrpy's meanings)."""

    NONE = "none"
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"
    REWRITE = "rewrite"
    #: Send every request live as a recording would, keep the cassette unchanged, report drift.
    VERIFY = "verify"


class BudgetMode(str, enum.Enum):
    """What a broken budget does."""

    ENFORCE = "enforce"
    WARN = "warn"
    OFF = "off"


DEFAULT_UPSTREAM = "https://api.openai.com/v1"
#: ``--rws-upstream=sim``: record from the package's simulator, served on loopback in-process.
SIM_UPSTREAM = "sim"
#: While recording, how long the upstream may take to send the first event of an answer
#: (for a non-streamed HTTP request, the whole answer), and how long it may then stay
#: silent between two events. Reasoning models think silently, so both are generous;
#: docs/errors.md explains the choice.
DEFAULT_UPSTREAM_FIRST_EVENT_TIMEOUT_S = 180.0
DEFAULT_UPSTREAM_IDLE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Timing:
    """How fast replayed events are sent: ``factor`` None sends at once.

    ``model`` sends each event when the service would (the test's latency model, see
    :class:`~.core.latency.LatencyModel`); ``factor`` is then None.
    """

    factor: float | None = None
    model: bool = False

    def __str__(self) -> str:
        if self.model:
            return "model"
        if self.factor is None:
            return "instant"
        return "recorded" if self.factor == 1.0 else f"{self.factor:g}"


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one test's cassette."""

    record_mode: RecordMode = RecordMode.NONE
    upstream: str = DEFAULT_UPSTREAM
    timing: Timing = Timing()
    cassette_dir: Path | None = None
    cassette_name: str | None = None
    ignore_fields: tuple[str, ...] = ()
    #: Parts of requests that vary between runs and do not decide a match (see core/volatile.py).
    volatile: tuple[str, ...] = ()
    filter_headers: tuple[str, ...] = ()
    allow_playback_repeats: bool = False
    redirect: bool = False
    #: Hosts a replaying test may reach besides loopback (see :class:`~.guard.AllowList`).
    allow_hosts: tuple[str, ...] = ()
    upstream_first_event_timeout: float = DEFAULT_UPSTREAM_FIRST_EVENT_TIMEOUT_S
    upstream_idle_timeout: float = DEFAULT_UPSTREAM_IDLE_TIMEOUT_S
    #: Replay refuses what the service refuses: a chain from a ``store: false`` response
    #: that is not in the connection's local cache gets ``previous_response_not_found``.
    strict: bool = True
    #: The service's age limit of a WebSocket connection in seconds: a ``response.create``
    #: on an older connection gets ``websocket_connection_limit_reached`` and the close.
    connection_max_age: float = SERVICE_CONNECTION_MAX_AGE_S
    #: What recorded turns a passing replaying test never played do.
    unplayed: UnplayedPolicy = UnplayedPolicy.WARN
    #: When a recording is written: only when its test passed (default), or always.
    save: SavePolicy = SavePolicy.PASSED
    #: A cassette older than this many seconds has expired (None: cassettes never expire).
    max_age: float | None = None
    #: What an expired cassette does.
    on_expiry: ExpiryAction = ExpiryAction.WARN
    #: In verify mode, which drift fails the test.
    verify_fail_on: VerifyFailOn = VerifyFailOn.STRUCTURE
    #: How the service's latency is modeled: replay's pacing under ``timing=model``, and the
    #: projection over both transports in reports and the ``ws_gain`` budget.
    latency_model: LatencyModel = PRESETS[DEFAULT_PRESET]


#: Keys accepted in ``rws_config`` and as ``rws_cassette`` marker options.
SETTING_KEYS = (
    "record_mode",
    "upstream",
    "timing",
    "cassette_dir",
    "ignore_fields",
    "volatile",
    "filter_headers",
    "allow_playback_repeats",
    "redirect",
    "allow_hosts",
    "upstream_first_event_timeout",
    "upstream_idle_timeout",
    "strict",
    "connection_max_age",
    "unplayed",
    "save",
    "max_age",
    "on_expiry",
    "verify_fail_on",
    "latency_model",
)
#: Settings that are a bound in seconds on a wait.
TIMEOUT_KEYS = ("upstream_first_event_timeout", "upstream_idle_timeout")


class SettingsError(RwsError, ValueError):
    """A setting has a value that can never work; the message names its source and the valid values."""


def _usage(source: str, message: str) -> SettingsError:
    return SettingsError(f"pytest-responses-ws: {source}: {message}")


_E = TypeVar("_E", RecordMode, BudgetMode, UnplayedPolicy, SavePolicy, ExpiryAction, VerifyFailOn)


def _parse_choice(kind: type[_E], value: Any, source: str, what: str) -> _E:
    """An enum member from its (case-insensitive) value, or a SettingsError listing the valid ones."""
    if isinstance(value, kind):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value.strip().lower())
    except ValueError:
        valid = ", ".join(member.value for member in kind)
        raise _usage(source, f"unknown {what} {value!r}; expected one of {valid}") from None


def parse_record_mode(value: Any, source: str) -> RecordMode:
    """A record mode from its name (any case)."""
    return _parse_choice(RecordMode, value, source, "record mode")


def parse_budget_mode(value: Any, source: str) -> BudgetMode:
    """What a broken budget does, from its name (any case)."""
    return _parse_choice(BudgetMode, value, source, "budgets mode")


def parse_unplayed(value: Any, source: str) -> UnplayedPolicy:
    """What never-played turns do: warn, fail or off."""
    return _parse_choice(UnplayedPolicy, value, source, "unplayed policy")


def parse_save(value: Any, source: str) -> SavePolicy:
    """When a recording is written: passed or always."""
    return _parse_choice(SavePolicy, value, source, "save policy")


def parse_on_expiry(value: Any, source: str) -> ExpiryAction:
    """What an expired cassette does: warn, fail or rerecord."""
    return _parse_choice(ExpiryAction, value, source, "expiry action")


def parse_verify_fail_on(value: Any, source: str) -> VerifyFailOn:
    """Which drift fails a verified test: structure, all or none."""
    return _parse_choice(VerifyFailOn, value, source, "verify_fail_on value")


def parse_max_age(value: Any, source: str) -> float | None:
    """A cassette's maximum age in seconds (``90d``, ``12h``, ``30m``, ``45s``, ``2w``, seconds), or
    None for ``off``/``none``."""
    if isinstance(value, str) and value.strip().lower() in ("off", "none", "never"):
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise _usage(
            source,
            f"max_age {value!r} must be a positive duration such as 90d, 12h, 30m or 3600 (seconds), or off",
        ) from None


def parse_budget_scale(value: Any, source: str) -> float:
    """The factor every budget is multiplied by: a positive, finite number."""
    try:
        scale = float(value)
    except (TypeError, ValueError):
        scale = math.nan
    if not math.isfinite(scale) or scale <= 0:
        raise _usage(source, f"budget scale {value!r} must be a positive number such as 2.5")
    return scale


#: How long a test waits for another process recording the same cassette (seconds).
DEFAULT_LOCK_TIMEOUT_S = 300.0


def parse_lock_timeout(value: Any, source: str) -> float:
    """How long to wait for another process's cassette lock: zero or more seconds."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise _usage(source, f"lock timeout {value!r} must be a number of seconds such as 300")
    return seconds


def parse_timing(value: Any, source: str) -> Timing:
    """``instant``, ``recorded``, ``model`` or a positive factor of the recorded pace."""
    if isinstance(value, Timing):
        return value
    text = str(value).strip().lower()
    if text == "instant":
        return Timing(None)
    if text == "recorded":
        return Timing(1.0)
    if text == "model":
        return Timing(None, model=True)
    try:
        factor = float(text)
    except ValueError:
        factor = math.nan
    if not math.isfinite(factor) or factor <= 0:
        raise _usage(
            source,
            f"unknown timing {value!r}; expected instant, recorded or a positive factor such as 0.5, "
            "or model (the latency model)",
        )
    return Timing(factor)


def parse_seconds(value: Any, source: str) -> float:
    """A bound on a wait: a positive, finite number of seconds."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise _usage(source, f"timeout {value!r} must be a positive number of seconds such as 30 or 0.5")
    return seconds


def parse_connection_max_age(value: Any, source: str) -> float:
    """The WebSocket connection age limit: a positive, finite number of seconds."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise _usage(
            source, f"connection max age {value!r} must be a positive number of seconds such as 3600 or 0.05"
        )
    return seconds


@dataclass(frozen=True)
class LatencySpec:
    """One source's say on the latency model: a preset (or a whole model) and values over it.

    Sources fold by precedence: a preset or model starts afresh, values replace those of
    the model below, so ``rws_latency_model = "slow,scale=0.01"`` in the ini file and a
    marker's ``latency_model={"tokens_per_s": 80}`` give the slow preset at 80 tokens/s,
    scaled to a hundredth.
    """

    base: LatencyModel | None = None
    values: tuple[tuple[str, float], ...] = ()

    def apply(self, below: LatencyModel) -> LatencyModel:
        """The model this source makes of the one below it."""
        return (self.base or below).with_values(**dict(self.values))


def _latency_number(name: str, raw: Any, source: str) -> float:
    try:
        number = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise _usage(source, f"latency model {name} must be a number, got {raw!r}")
    return number


def _latency_preset(name: Any, source: str) -> LatencyModel:
    model = PRESETS.get(str(name).strip().lower()) if isinstance(name, str) else None
    if model is None:
        raise _usage(source, f"unknown latency model preset {name!r}; expected {' or '.join(PRESETS)}")
    return model


def parse_latency_model(value: Any, source: str) -> LatencySpec:
    """A latency model from a preset name and ``key=value`` overrides (``"fast,scale=0.01"``),
    a mapping (``{"preset": "slow", "tokens_per_s": 80}``) or a :class:`LatencyModel`."""
    if isinstance(value, LatencySpec):
        return value
    if isinstance(value, LatencyModel):
        entries: dict[str, Any] = {}
        base: LatencyModel | None = value
    elif isinstance(value, Mapping):
        entries = {str(k): v for k, v in value.items() if k != "preset"}
        base = _latency_preset(value["preset"], source) if "preset" in value else None
    elif isinstance(value, str):
        base, entries = None, {}
        for part in value.replace(",", " ").split():
            name, equals, raw = part.partition("=")
            if not equals:
                if base is not None or entries:
                    raise _usage(source, f"latency model {value!r}: the preset ({part!r}) comes first, once")
                base = _latency_preset(name, source)
                continue
            entries[name.strip()] = raw
        if base is None and not entries:
            raise _usage(
                source,
                f"empty latency model; expected a preset ({' or '.join(PRESETS)}) and key=value overrides",
            )
    else:
        raise _usage(
            source, f"latency model must be a preset name, a mapping or a LatencyModel, got {value!r}"
        )
    unknown = [name for name in entries if name not in PARAMETERS]
    if unknown:
        raise _usage(
            source,
            f"unknown latency model parameter(s) {', '.join(map(repr, unknown))}; expected preset, {', '.join(PARAMETERS)}",
        )
    spec = LatencySpec(
        base, tuple((name, _latency_number(name, raw, source)) for name, raw in entries.items())
    )
    try:
        spec.apply(PRESETS[DEFAULT_PRESET])
    except ValueError as exc:
        raise _usage(source, f"latency model: {exc}") from None
    return spec


def parse_transports(value: Any, source: str) -> tuple[Transport, ...]:
    """Transport names (comma-separated text or a list), in order, without repeats."""
    names = value.split(",") if isinstance(value, str) else list(value)
    result: list[Transport] = []
    for raw in names:
        name = str(raw).strip().lower()
        if not name:
            continue
        if name not in TRANSPORTS:
            raise _usage(source, f"unknown transport {name!r}; expected {' or '.join(TRANSPORTS)}")
        if name not in result:
            result.append(name)
    if not result:
        raise _usage(
            source, f"no transport given; expected a comma-separated subset of {','.join(TRANSPORTS)}"
        )
    return tuple(result)


def parse_upstream(value: Any, source: str) -> str:
    """The upstream base URL, without a final slash; never with credentials or a query.

    ``sim`` is the package's simulator (on loopback, in-process).
    """
    text = str(value).strip().rstrip("/")
    if text.lower() == SIM_UPSTREAM:
        return SIM_UPSTREAM
    if "@" in text.split("://", 1)[-1].split("/", 1)[0]:
        raise _usage(
            source,
            "the upstream URL must not carry credentials (user:password@); the client's own "
            "Authorization header is passed through",
        )
    if "?" in text or "#" in text:
        # Not echoed: an Azure-style query carries the key.
        raise _usage(
            source,
            "the upstream URL must not carry a query or fragment (?...); the client's own query is "
            "passed through, so set it on the client (OpenAI(default_query={...}))",
        )
    if not text.startswith(("http://", "https://", "ws://", "wss://")):
        raise _usage(
            source,
            f"upstream {value!r} must be an http(s):// or ws(s):// URL such as {DEFAULT_UPSTREAM}, "
            f"or {SIM_UPSTREAM} (the simulator)",
        )
    return text


def _string_tuple(value: Any, source: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _usage(source, f"{key} must be a list of strings, got {value!r}")


def parse_allow_hosts(value: Any, source: str) -> tuple[str, ...]:
    """Allow-list entries from text (comma or space separated) or a list of strings."""
    entries = (
        split_host_list(value)
        if isinstance(value, str)
        else list(_string_tuple(value, source, "allow_hosts"))
    )
    try:
        AllowList.parse(entries)
    except ValueError as exc:
        raise _usage(source, f"allow_hosts: {exc}") from None
    return tuple(entries)


_TRUE_WORDS = ("on", "true", "yes", "1")
_FALSE_WORDS = ("off", "false", "no", "0")


def parse_switch(value: Any, source: str) -> bool:
    """An on/off setting from a bool or text (on/off, true/false, yes/no, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (*_TRUE_WORDS, *_FALSE_WORDS):
        return value.strip().lower() in _TRUE_WORDS
    raise _usage(source, f"expected on or off (true/false), got {value!r}")


def parse_volatile(value: Any, source: str) -> tuple[str, ...]:
    """Volatile rules from a list of strings, or text with one rule per line (ini, command line).

    Each rule is compiled here, so a bad pattern or pointer stops the run before any test.
    """
    if isinstance(value, str):
        rules = tuple(line.strip() for line in value.splitlines() if line.strip())
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        rules = tuple(rule for entry in value for rule in parse_volatile(entry, source))
    else:
        raise _usage(source, f"volatile must be a list of rules (strings), got {value!r}")
    try:
        compile_volatile(rules)
    except VolatileRuleError as exc:
        raise _usage(source, str(exc)) from None
    return rules


def _parse(key: str, value: Any, source: str) -> Any:
    if key == "record_mode":
        return parse_record_mode(value, source)
    if key == "upstream":
        return parse_upstream(value, source)
    if key == "timing":
        return parse_timing(value, source)
    if key == "cassette_dir":
        return Path(value)
    if key == "allow_hosts":
        return parse_allow_hosts(value, source)
    if key in ("ignore_fields", "filter_headers"):
        return _string_tuple(value, source, key)
    if key == "volatile":
        return parse_volatile(value, source)
    if key in TIMEOUT_KEYS:
        return parse_seconds(value, source)
    if key == "strict":
        return parse_switch(value, source)
    if key == "connection_max_age":
        return parse_connection_max_age(value, source)
    parser = _LIFECYCLE_PARSERS.get(key)
    if parser is not None:
        return parser(value, source)
    if key == "latency_model":
        return parse_latency_model(value, source)
    if key in ("allow_playback_repeats", "redirect"):
        if not isinstance(value, bool):
            raise _usage(source, f"{key} must be True or False, got {value!r}")
        return value
    raise AssertionError(key)


_LIFECYCLE_PARSERS: dict[str, Any] = {
    "unplayed": parse_unplayed,
    "save": parse_save,
    "max_age": parse_max_age,
    "on_expiry": parse_on_expiry,
    "verify_fail_on": parse_verify_fail_on,
}


def check_keys(options: Mapping[str, Any], source: str, extra: Sequence[str] = ()) -> None:
    """Reject keys this plugin does not know, listing the ones it does."""
    known = (*SETTING_KEYS, *extra)
    unknown = [key for key in options if key not in known]
    if unknown:
        raise _usage(source, f"unknown option(s) {', '.join(map(repr, unknown))}; valid: {', '.join(known)}")


def resolve_settings(
    *,
    cli: Mapping[str, Any],
    marker: Mapping[str, Any],
    fixture: Mapping[str, Any],
    ini: Mapping[str, Any],
    marker_source: str = "@pytest.mark.rws_cassette",
) -> Settings:
    """Merge the sources by precedence; ``None`` in ``cli``/``ini`` means "not given"."""
    check_keys(marker, marker_source, extra=("name",))
    check_keys(fixture, "rws_config fixture")
    resolved: dict[str, Any] = {}
    layers = (
        (ini, "ini option"),
        (fixture, "rws_config fixture"),
        (marker, marker_source),
        (cli, "command line"),
    )
    latency = PRESETS[DEFAULT_PRESET]
    for layer, source in layers:
        for key, value in layer.items():
            if key in SETTING_KEYS and value is not None:
                parsed = _parse(key, value, f"{source} {key}")
                if key == "latency_model":
                    # Each source refines the model of the sources below it (see LatencySpec).
                    latency = parsed.apply(latency)
                    parsed = latency
                resolved[key] = parsed
    name = marker.get("name")
    if name is not None and not isinstance(name, str):
        raise _usage(marker_source, f"name must be a string, got {name!r}")
    return Settings(cassette_name=name, **resolved)
