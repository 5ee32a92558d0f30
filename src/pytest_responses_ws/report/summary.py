"""Per-test summaries of the measured turns, and how they are shown (pure: no pytest, no I/O).

A summary is a JSON-ready dict (it travels from xdist workers on the teardown report).
The same summaries feed the terminal section, the JSON report, the GitHub step summary
and the HTML report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.metrics import TurnMetrics, statistic

#: Schema version of the JSON report (``--rws-report``); bump on incompatible changes.
REPORT_VERSION = 1


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    return {name: statistic(values, name) for name in ("median", "p95", "max", "total")}


def summarize(
    *,
    nodeid: str,
    test: str,
    transport: str,
    turns: Sequence[TurnMetrics],
    counts: Mapping[str, int],
    outcome: str = "passed",
    violations: Sequence[str] = (),
    projection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary of one test run over one transport.

    ``projection`` is the latency model's projection of the turns over both transports
    (:meth:`~..core.latency.Projection.as_dict`), for a test that was modeled.
    """
    overhead = [t.overhead_ms for t in turns if t.overhead_ms is not None]
    end_to_end = [t.end_to_end_ms for t in turns if t.end_to_end_ms is not None]
    request_bytes = [float(t.request_bytes) for t in turns]
    total_e2e = sum(end_to_end)
    summary: dict[str, Any] = {
        "nodeid": nodeid,
        "test": test,
        "transport": transport,
        "outcome": outcome,
        "turns": len(turns),
        # Turns an injected fault touched (each turn's ``fault`` names it).
        "faulted_turns": sum(1 for t in turns if t.fault is not None),
        "connections": counts.get("connections", 0),
        "handshakes": counts.get("handshakes", 0),
        "overhead_ms": _stats(overhead),
        "end_to_end_ms": _stats(end_to_end),
        # Of the time between turns' ends, how much the client's own loop took.
        "overhead_share": (sum(overhead) / total_e2e) if total_e2e > 0 else None,
        "request_bytes": {
            "mean": (sum(request_bytes) / len(request_bytes)) if request_bytes else None,
            "max": max(request_bytes) if request_bytes else None,
            "total": sum(request_bytes),
        },
        "input_items_max": max((t.input_items for t in turns), default=0),
        "resent_items": sum(t.resent_items for t in turns),
        "resent_bytes": sum(t.resent_bytes for t in turns),
        "tool_ms": sum(t.tool_ms for t in turns),
        "budget_violations": list(violations),
        "turn_metrics": [dataclasses.asdict(t) for t in turns],
    }
    if projection is not None:
        summary["projection"] = dict(projection)
    return summary


def report_document(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON report: every test's summary, plus HTTP-vs-WebSocket pairs."""
    tests = sorted(summaries, key=lambda s: (s["test"], s["transport"]))
    return {"version": REPORT_VERSION, "tests": tests, "comparisons": compare_transports(tests)}


def compare_transports(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """For tests that ran over both transports: the two side by side, with ratios."""
    by_test: dict[str, dict[str, Mapping[str, Any]]] = {}
    for summary in summaries:
        by_test.setdefault(summary["test"], {})[summary["transport"]] = summary
    pairs = []
    for test, runs in sorted(by_test.items()):
        if "http" not in runs or "ws" not in runs:
            continue
        http, ws = runs["http"], runs["ws"]

        def ratio(a: float | None, b: float | None) -> float | None:
            return (a / b) if (a is not None and b) else None

        pair: dict[str, Any] = {
            "test": test,
            "overhead_median_ratio": ratio(http["overhead_ms"]["median"], ws["overhead_ms"]["median"]),
            "end_to_end_total_ratio": ratio(http["end_to_end_ms"]["total"], ws["end_to_end_ms"]["total"]),
            "request_bytes_ratio": ratio(http["request_bytes"]["total"], ws["request_bytes"]["total"]),
        }
        if "projection" in http and "projection" in ws:
            # Each run as played: the [http] run's HTTP time against the [ws] run's WebSocket time.
            http_ms, ws_ms = http["projection"]["http_ms"], ws["projection"]["ws_ms"]
            pair["modeled"] = {
                "http_ms": http_ms,
                "ws_ms": ws_ms,
                "gain": (1 - ws_ms / http_ms) if http_ms else None,
            }
        pairs.append(pair)
    return pairs


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


_HEADER = (
    "test",
    "transport",
    "turns",
    "overhead median ms",
    "p95 ms",
    "bytes/turn",
    "resent items",
    "conns",
)


def _row(summary: Mapping[str, Any], label: str) -> tuple[str, ...]:
    mean_bytes = summary["request_bytes"]["mean"]
    return (
        label,
        summary["transport"],
        # Faulted turns are shown only where there are some: rows of other tests are unchanged.
        f"{summary['turns']} ({summary['faulted_turns']} faulted)"
        if summary.get("faulted_turns")
        else str(summary["turns"]),
        _ms(summary["overhead_ms"]["median"]),
        _ms(summary["overhead_ms"]["p95"]),
        "-" if mean_bytes is None else f"{mean_bytes:,.0f}",
        str(summary["resent_items"]),
        str(summary["connections"]),
    )


def table_rows(summaries: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Rows for the terminal and Markdown tables: each test, its transports, and a ratio row."""
    rows: list[tuple[str, ...]] = [_HEADER]
    ordered = sorted(summaries, key=lambda s: (s["test"], s["transport"]))
    pairs = {p["test"]: p for p in compare_transports(ordered)}
    previous = None
    for summary in ordered:
        test = summary["test"]
        rows.append(_row(summary, test if test != previous else ""))
        previous = test
        if summary["transport"] == "ws" and test in pairs:
            pair = pairs[test]
            http = next(s for s in ordered if s["test"] == test and s["transport"] == "http")
            ratio_bytes = (
                http["request_bytes"]["mean"] / summary["request_bytes"]["mean"]
                if http["request_bytes"]["mean"] and summary["request_bytes"]["mean"]
                else None
            )
            rows.append(
                ("", "http/ws", "", _ratio(pair["overhead_median_ratio"]), "", _ratio(ratio_bytes), "", "")
            )
    return rows


def terminal_lines(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    return _aligned(table_rows(summaries), 2)


_MODEL_HEADER = ("test", "run", "HTTP ms", "WebSocket ms", "gain", "latency model")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def model_rows(summaries: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Rows of the modeled-time table: per modeled run, both transports and the gain.

    The run's own transport is as played; the other is projected (marked ``*``).
    """
    rows: list[tuple[str, ...]] = [_MODEL_HEADER]
    previous = None
    for summary in sorted(summaries, key=lambda s: (s["test"], s["transport"])):
        projection = summary.get("projection")
        if not isinstance(projection, Mapping):
            continue
        test, played = summary["test"], summary["transport"]
        http_ms = f"{projection['http_ms']:,.1f}" + ("" if played == "http" else "*")
        ws_ms = f"{projection['ws_ms']:,.1f}" + ("" if played == "ws" else "*")
        model = projection.get("model", {})
        rows.append(
            (
                test if test != previous else "",
                played,
                http_ms,
                ws_ms,
                _share(projection.get("gain")),
                str(model.get("name", "?")) if isinstance(model, Mapping) else "?",
            )
        )
        previous = test
    return rows if len(rows) > 1 else []


def _aligned(rows: Sequence[tuple[str, ...]], left: int) -> list[str]:
    """Rows as text: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:left], widths[:left], strict=True)]
        cells += [cell.rjust(width) for cell, width in zip(row[left:], widths[left:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def model_lines(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The terminal section of modeled service time (empty when no test was modeled)."""
    rows = model_rows(summaries)
    if not rows:
        return []
    return [*_aligned(rows, 2), "* projected: the run went over the other transport (see docs: ws-speedup)"]


def markdown_table(summaries: Sequence[Mapping[str, Any]], rows: Sequence[tuple[str, ...]] = ()) -> str:
    """A Markdown table of the summaries (``rows``: other rows to lay out, header first)."""
    rows = rows or table_rows(summaries)
    header, body = rows[0], rows[1:]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)
