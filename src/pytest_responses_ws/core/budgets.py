"""Budgets: limits on per-turn metrics, parsed, checked, and explained (sans I/O).

Grammar (``@pytest.mark.rws_budget(...)`` and ``rws.assert_budget(...)``)::

    overhead_ms=5                      # median over the test's turns (the default statistic)
    overhead_ms={"p95": 8, "max": 20}  # several statistics
    overhead_ms={"http": 20, "ws": 2}  # per transport
    overhead_ms={"ws": {"p95": 3}}     # both
    statistic="p95"                    # default statistic for time limits in this call
    request_bytes=4096, input_items=3, resent_items=0, resent_bytes=0   # max per turn, exact
    connections=1, handshakes=1                                         # per test, exact
    ws_gain={"min": 0.25}              # the latency model's projected WebSocket gain, at least
    ws_gain={"ws": 0.3}                # per transport (a number is a minimum)

Time limits are multiplied by a scale factor (slow CI machines); exact ones never are, and
neither is ``ws_gain``: it is the latency model's (deterministic) projection of the turns,
``1 - WebSocket time / HTTP time`` (see :mod:`.latency`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cassette.model import TRANSPORTS, Transport
from .latency import Projection
from .metrics import TurnMetrics, statistic

#: Time metrics: checked with a statistic over the turns, scaled for slow machines.
TIME_METRICS = ("overhead_ms", "end_to_end_ms")
#: Exact per-turn metrics: the largest value over the turns is checked.
TURN_METRICS = ("request_bytes", "input_items", "resent_items", "resent_bytes")
#: Exact per-test metrics.
TEST_METRICS = ("connections", "handshakes")
#: Limits on measured figures, each an upper bound.
METRICS = (*TIME_METRICS, *TURN_METRICS, *TEST_METRICS)
#: Per-test figures of the latency model's projection, each a lower bound ("min").
MODEL_METRICS = ("ws_gain",)
#: Every name a budget takes.
ALL_METRICS = (*METRICS, *MODEL_METRICS)
STATISTICS = ("median", "p95", "max", "total")
DEFAULT_STATISTIC = "median"


class BudgetSpecError(ValueError):
    """A budget argument this plugin does not understand."""


@dataclass(frozen=True)
class Limit:
    """One limit: ``metric`` (with ``statistic`` for time metrics) at most ``value``."""

    metric: str
    value: float
    statistic: str | None = None
    transport: Transport | None = None

    @property
    def at_least(self) -> bool:
        """Whether the limit is a lower bound (the figure must reach it)."""
        return self.metric in MODEL_METRICS

    def describe(self) -> str:
        if self.at_least:
            where = f" [{self.transport}]" if self.transport else ""
            return f"{self.metric}{where} >= {self.value:g}"
        stat = (
            f" {self.statistic}"
            if self.statistic
            else (" max per turn" if self.metric in TURN_METRICS else "")
        )
        where = f" [{self.transport}]" if self.transport else ""
        return f"{self.metric}{stat}{where} <= {self.value:g}"


@dataclass(frozen=True)
class Violation:
    """A limit the measured turns broke."""

    limit: Limit
    actual: float
    scaled_value: float
    #: Turn indices whose value breaks the limit (the cells to mark).
    turns: tuple[int, ...]

    def describe(self) -> str:
        if self.limit.at_least:
            return f"{self.limit.describe()}: modeled {self.actual:.3f}, limit {self.scaled_value:g}"
        unit = " ms" if self.limit.metric in TIME_METRICS else ""
        scaled = f" (limit {self.limit.value:g} x scale)" if self.scaled_value != self.limit.value else ""
        return f"{self.limit.describe()}{scaled}: measured {self.actual:g}{unit}, limit {self.scaled_value:g}{unit}"


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise BudgetSpecError(f"{where}: expected a number >= 0, got {value!r}")
    return float(value)


def parse_limits(spec: Mapping[str, Any]) -> list[Limit]:
    """Validate and expand budget keyword arguments into limits."""
    default_stat = spec.get("statistic", DEFAULT_STATISTIC)
    if default_stat not in STATISTICS:
        raise BudgetSpecError(f"unknown statistic {default_stat!r}; expected one of {', '.join(STATISTICS)}")
    limits: list[Limit] = []
    for metric, raw in spec.items():
        if metric == "statistic":
            continue
        if metric not in ALL_METRICS:
            raise BudgetSpecError(
                f"unknown budget metric {metric!r}; expected one of {', '.join(ALL_METRICS)}"
            )
        limits.extend(_expand(metric, raw, None, default_stat))
    if not limits:
        raise BudgetSpecError(
            f"a budget needs at least one limit, such as overhead_ms=5; metrics: {', '.join(ALL_METRICS)}"
        )
    return limits


def _expand(metric: str, raw: Any, transport: Transport | None, default_stat: str) -> list[Limit]:
    if metric in MODEL_METRICS:
        return _expand_model(metric, raw, transport)
    timed = metric in TIME_METRICS
    if not isinstance(raw, Mapping):
        value = _number(raw, metric)
        return [Limit(metric, value, default_stat if timed else None, transport)]
    out: list[Limit] = []
    for key, value in raw.items():
        if key in TRANSPORTS and transport is None:
            out.extend(_expand(metric, value, key, default_stat))
        elif key in STATISTICS and timed:
            out.append(Limit(metric, _number(value, f"{metric}[{key}]"), key, transport))
        else:
            allowed: list[str] = [*TRANSPORTS] if transport is None else []
            if timed:
                allowed += list(STATISTICS)
            raise BudgetSpecError(
                f"{metric}: unknown key {key!r}; expected "
                + (", ".join(allowed) if allowed else "a number")
                + ("" if timed else f" ({metric} is exact: a transport map or a number)")
            )
    return out


def _expand_model(metric: str, raw: Any, transport: Transport | None) -> list[Limit]:
    """``ws_gain=0.25``, ``{"min": 0.25}`` or per transport ``{"ws": {"min": 0.3}}``."""
    if not isinstance(raw, Mapping):
        return [Limit(metric, _gain(raw, metric), None, transport)]
    out: list[Limit] = []
    for key, value in raw.items():
        if key == "min":
            out.append(Limit(metric, _gain(value, f"{metric}[min]"), None, transport))
        elif key in TRANSPORTS and transport is None:
            out.extend(_expand_model(metric, value, key))
        else:
            allowed = "min" if transport is not None else "min, http, ws"
            raise BudgetSpecError(
                f"{metric}: unknown key {key!r}; expected {allowed} (a lower bound such as 0.25)"
            )
    return out


def _gain(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1 <= value < 1:
        raise BudgetSpecError(
            f"{where}: expected a share of the HTTP time below 1 such as 0.25 (25% faster), got {value!r}"
        )
    return float(value)


def _measure(limit: Limit, turns: Sequence[TurnMetrics], counts: Mapping[str, int]) -> float | None:
    """The measured value a limit is checked against (None when no turn has one)."""
    if limit.metric in TEST_METRICS:
        return float(counts.get(limit.metric, 0))
    values = [v for v in (getattr(t, limit.metric) for t in turns) if v is not None]
    if not values:
        return None
    if limit.metric in TURN_METRICS:
        return float(max(values))
    assert limit.statistic is not None
    return statistic(values, limit.statistic)


def evaluate(
    limits: Sequence[Limit],
    turns: Sequence[TurnMetrics],
    *,
    transport: Transport,
    counts: Mapping[str, int],
    scale: float = 1.0,
    projection: Projection | None = None,
) -> list[Violation]:
    """The limits (for ``transport``) the turns break; ``ws_gain`` is checked on ``projection``."""
    violations = []
    for limit in limits:
        if limit.transport is not None and limit.transport != transport:
            continue
        if limit.at_least:
            gain = projection.gain if projection is not None else None
            if gain is not None and gain < limit.value:
                violations.append(Violation(limit, gain, limit.value, ()))
            continue
        allowed = limit.value * scale if limit.metric in TIME_METRICS else limit.value
        actual = _measure(limit, turns, counts)
        if actual is None or actual <= allowed:
            continue
        breaching: tuple[int, ...] = ()
        if limit.metric in TIME_METRICS or limit.metric in TURN_METRICS:
            breaching = tuple(
                t.index for t in turns if (v := getattr(t, limit.metric)) is not None and v > allowed
            )
        violations.append(Violation(limit, actual, allowed, breaching))
    return violations


_COLUMNS = (
    ("turn", "index"),
    ("conn", "connection"),
    ("new", "new_connection"),
    ("bytes", "request_bytes"),
    ("items", "input_items"),
    ("resent", "resent_items"),
    ("resent B", "resent_bytes"),
    ("overhead ms", "overhead_ms"),
    ("tool ms", "tool_ms"),
    ("upstream ms", "upstream_ms"),
    ("e2e ms", "end_to_end_ms"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def turn_table(turns: Sequence[TurnMetrics], violations: Sequence[Violation] = ()) -> str:
    """A fixed-width per-turn table; cells that break a limit are marked with ``!``."""
    marked = {(i, v.limit.metric) for v in violations for i in v.turns}
    rows = [[title for title, _ in _COLUMNS]]
    for turn in turns:
        rows.append(
            [
                _cell(getattr(turn, attr)) + ("!" if (turn.index, attr) in marked else "")
                for _, attr in _COLUMNS
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    )


def budget_report(
    violations: Sequence[Violation],
    turns: Sequence[TurnMetrics],
    *,
    transport: Transport,
    scale: float,
    projection: Projection | None = None,
) -> str:
    """The failure message of a breached budget (with the model's table for a ``ws_gain``)."""
    lines = [f"Responses API budget exceeded over {transport} ({len(turns)} turns, time scale {scale:g}):"]
    lines += [f"  {v.describe()}" for v in violations]
    lines += ["", turn_table(turns, violations), "", "cells marked ! break a limit; times in milliseconds"]
    if projection is not None and any(v.limit.at_least for v in violations):
        lines += ["", projection_table(projection)]
    return "\n".join(lines)


def projection_table(projection: Projection) -> str:
    """The latency model's figures per turn, and why WebSocket gains or does not."""
    played = projection.played
    header = ("turn", "held", "input tok", "ws input tok", "output tok", "http ms", "ws ms")
    rows = [header]
    for turn in projection.turns:
        rows.append(
            (
                str(turn.index),
                "yes" if turn.held else "no",
                str(turn.input_tokens),
                str(turn.ws_input_tokens),
                str(turn.output_tokens),
                f"{turn.http_ms:.1f}",
                f"{turn.ws_ms:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    table = "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    other = "http" if played == "ws" else "ws"
    gain = projection.gain
    return (
        f"latency model {projection.model.describe()}: HTTP {projection.http_ms:,.1f} ms, WebSocket "
        f"{projection.ws_ms:,.1f} ms, gain {'-' if gain is None else f'{gain:.3f}'} "
        f"(played over {played}, {other} projected)\n{table}\n"
        "held: the WebSocket request chains from a response held on its connection, so the service "
        "processes only what it sends; a turn not held (a reconnect, or history resent) pays in full"
    )
