"""Run-summary sections of a cassette's life: drift (verify mode), expiry, unplayed turns.

Pure: each takes the per-test summaries (JSON-ready dicts, from any xdist worker) and returns
lines, or the ``drift`` section of the JSON report.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.drift import drift_lines


def _label(summary: Mapping[str, Any]) -> str:
    return f"{summary['test']} [{summary['transport']}]"


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def timing_figures(timings: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Median time to first event and total time per turn, recorded and live (ms)."""
    return {
        key: _median(t.get(key) for t in timings)
        for key in ("recorded_first_ms", "live_first_ms", "recorded_total_ms", "live_total_ms")
    }


def drift_document(summaries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The JSON report's ``drift`` section: one entry per verified test run, in test order."""
    entries = []
    for summary in summaries:
        drift = summary.get("drift")
        if isinstance(drift, Mapping):
            entries.append(
                {
                    "nodeid": summary["nodeid"],
                    "test": summary["test"],
                    "transport": summary["transport"],
                    **drift,
                    "timing": timing_figures(drift.get("timings", ())),
                }
            )
    return sorted(entries, key=lambda entry: (entry["test"], entry["transport"]))


def drift_section(summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Per verified test: its differences, one a line, and its timing against the recording."""
    lines: list[str] = []
    for entry in drift_document(summaries):
        differences = entry.get("differences", ())
        figures = entry["timing"]
        lines.append(
            f"{entry['test']} [{entry['transport']}]: {len(differences)} difference(s) over "
            f"{entry['recorded_turns']} recorded / {entry['live_turns']} live turn(s); median first event "
            f"{_ms(figures['recorded_first_ms'])} -> {_ms(figures['live_first_ms'])} ms, turn "
            f"{_ms(figures['recorded_total_ms'])} -> {_ms(figures['live_total_ms'])} ms"
        )
        lines += [f"  {line}" for line in drift_lines(entry)]
    return lines


def expired_section(summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each expired cassette once, with its age and what was done."""
    seen: dict[str, str] = {}
    for summary in summaries:
        expired = summary.get("expired")
        if isinstance(expired, Mapping) and expired["cassette"] not in seen:
            days = float(expired["age_s"]) / 86400
            seen[expired["cassette"]] = (
                f"{expired['cassette']}: recorded {expired['recorded_at']} ({days:.0f} days ago, by "
                f"{expired['recorded_by']}); on_expiry={expired['action']} ({_label(summary)})"
            )
    return list(seen.values())


def unplayed_section(summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each test run that left recorded turns unplayed, with their positions."""
    return [
        f"{_label(summary)}: turn(s) {', '.join(map(str, summary['unplayed']))}"
        for summary in summaries
        if summary.get("unplayed")
    ]
