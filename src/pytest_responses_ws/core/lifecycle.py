"""The life of a cassette around a test: what to report at its end, when to write, when it is stale.

Pure decisions (sans-I/O: no clock reads, no files, no pytest), called by thin adapters in
``session.py``, ``plugin.py`` and ``server/mount.py``:

- :func:`unplayed_to_report`: the recorded turns a test never played, when they are to be reported;
- :func:`should_save`: whether a recording is written, by the ``save`` policy and the test's outcome;
- :func:`check_expiry`: whether a cassette is older than ``max_age`` (the caller passes "now");
- :func:`find_orphans`: cassette files no collected test uses.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..cassette.model import Turn


class UnplayedPolicy(str, enum.Enum):
    """What recorded turns a passing test never played do."""

    WARN = "warn"
    FAIL = "fail"
    OFF = "off"


class SavePolicy(str, enum.Enum):
    """When a recording is written: only when its test passed, or whatever happened."""

    PASSED = "passed"
    ALWAYS = "always"


class ExpiryAction(str, enum.Enum):
    """What a cassette older than ``max_age`` does."""

    WARN = "warn"
    FAIL = "fail"
    RERECORD = "rerecord"


class VerifyFailOn(str, enum.Enum):
    """Which drift fails a verified test (see :mod:`.drift`); here so settings need not import it."""

    STRUCTURE = "structure"  # everything but text
    ALL = "all"  # text too
    NONE = "none"  # report only


# -- unplayed turns -------------------------------------------------------------------------------


def unplayed_to_report(
    policy: UnplayedPolicy, *, replayed: bool, test_passed: bool, unplayed: Sequence[int]
) -> tuple[int, ...]:
    """The positions to report as never played; empty when nothing is to be reported.

    Only a test that replayed and passed is judged: a failed test stopped early, so turns it never
    reached say nothing about the cassette, and a recording test played nothing from it.
    """
    if policy is UnplayedPolicy.OFF or not replayed or not test_passed:
        return ()
    return tuple(unplayed)


_PREVIEW_CHARS = 60


def _first_text(value: object) -> str | None:
    """The first string found in an input item (its text, or a tool output), depth first."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("text", "content", "output", "arguments"):
            found = _first_text(value.get(key))
            if found:
                return found
    if isinstance(value, list):
        for entry in value:
            found = _first_text(entry)
            if found:
                return found
    return None


def describe_turn(position: int, turn: Turn) -> str:
    """One line naming a recorded turn: position, where it ran, and the start of its last input."""
    where = f"{turn.transport}" + (f" connection {turn.connection}" if turn.transport == "ws" else "")
    if turn.lane is not None:
        where += f" lane {turn.lane!r}"
    items = turn.request.get("input")
    last = items[-1] if isinstance(items, list) and items else items
    text = _first_text(last) or ""
    if len(text) > _PREVIEW_CHARS:
        text = text[: _PREVIEW_CHARS - 3] + "..."
    kind = last.get("type", "message") if isinstance(last, Mapping) else "message"
    return f"turn {position} ({where}, {turn.outcome}): last input {kind} {text!r}"


def unplayed_message(cassette: Path | str, turns: Sequence[Turn], positions: Sequence[int]) -> str:
    """The report of turns never played, each named on its own line, ending with what to do."""
    lines = [
        f"pytest-responses-ws: {len(positions)} recorded turn(s) of {cassette} were never played:",
        *(f"  {describe_turn(p, turns[p])}" for p in positions),
        "  The test no longer sends these requests: re-record the cassette (--rws-record-mode=rewrite),",
        "  or set unplayed='off' on the test (@pytest.mark.rws_cassette(unplayed='off')) if it plays a",
        "  shared cassette in part.",
    ]
    return "\n".join(lines)


# -- client events a cassette cannot hold ----------------------------------------------------------


def unreplayable_event_message(event_type: str, connection: int, cassette: Path | str) -> str:
    """Why a recording fails when the client sent an event replay could not answer."""
    return (
        f"recording failed: the client sent {event_type!r} on WebSocket connection {connection}; it went "
        "to the upstream, but a cassette holds response.create turns and their steers only, so the "
        f"replay could not answer it. Nothing was written; {cassette} is unchanged. Send only "
        "response.create and response.steer in recorded tests."
    )


def unkept_steer_message(steer: Mapping[str, object], connection: int, cassette: Path | str) -> str:
    """Why a recording fails when a steer named no response streaming on its connection."""
    target = steer.get("previous_response_id")
    return (
        f"recording failed: a response.steer on WebSocket connection {connection} named response "
        f"{target!r}, which no turn on that connection was streaming (it had ended, or was never "
        "created there); it went to the upstream, but its answer belongs to no turn, so the replay "
        f"could not give it. Nothing was written; {cassette} is unchanged. Steer a response only "
        "while it streams."
    )


# -- save policy ----------------------------------------------------------------------------------


def should_save(policy: SavePolicy, *, test_passed: bool) -> bool:
    """Whether a test's recording is written when it ends."""
    return policy is SavePolicy.ALWAYS or test_passed


# -- expiry ---------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object) -> float:
    """Seconds from ``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or a number of seconds.

    Raises ValueError for anything else, or for a duration that is not positive and finite.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(value)
        seconds = float(match.group(1)) * _UNIT_S[match.group(2).lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(value)
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form: ``95d``, ``3h``, ``12m``, ``40s``."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@dataclass(frozen=True)
class Expiry:
    """A cassette found older than its ``max_age``."""

    cassette: str
    recorded_at: str
    age_s: float
    max_age_s: float
    recorded_by: str

    def message(self, action: ExpiryAction) -> str:
        """One line: which cassette, how old, by what, and what happens or what to do."""
        head = (
            f"pytest-responses-ws: cassette {self.cassette} expired: recorded {self.recorded_at} "
            f"({format_duration(self.age_s)} ago, by {self.recorded_by}), max_age is "
            f"{format_duration(self.max_age_s)}"
        )
        if action is ExpiryAction.RERECORD:
            return head + "; re-recording it (on_expiry='rerecord')"
        return head + "; re-record it (--rws-record-mode=rewrite) or check it (--rws-record-mode=verify)"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, for the per-test summary."""
        return {
            "cassette": self.cassette,
            "recorded_at": self.recorded_at,
            "age_s": round(self.age_s, 1),
            "max_age_s": self.max_age_s,
            "recorded_by": self.recorded_by,
        }


def parse_recorded_at(text: str) -> _dt.datetime | None:
    """The time a cassette says it was recorded (aware, UTC when it names no zone), or None."""
    try:
        when = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.timezone.utc)


def check_expiry(
    *, cassette: str, recorded_at: str, recorded_by: str, max_age_s: float | None, now: _dt.datetime
) -> Expiry | None:
    """The expiry of a cassette recorded at ``recorded_at``, or None while it is fresh.

    A ``recorded_at`` that cannot be read counts as expired (its age unknown, shown as max_age):
    a cassette whose age cannot be told cannot be trusted to be fresh.
    """
    if max_age_s is None:
        return None
    when = parse_recorded_at(recorded_at)
    age = (now - when).total_seconds() if when is not None else math.inf
    if age <= max_age_s:
        return None
    return Expiry(cassette, recorded_at, age if math.isfinite(age) else max_age_s, max_age_s, recorded_by)


# -- orphans --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CassetteRoot:
    """A folder of cassettes: ``<root>/<module>/<name>.json`` for the test files in ``test_folder``."""

    root: Path
    test_folder: Path


def find_orphans(
    roots: Iterable[CassetteRoot],
    used: Collection[Path],
    collected_modules: Collection[tuple[Path, str]],
    files: Mapping[Path, Sequence[Path]],
    test_files: Collection[Path],
) -> list[Path]:
    """Cassette files no collected test uses, sorted.

    ``files`` lists the ``.json`` files found under each root; ``collected_modules`` holds
    (root, module folder name) pairs of the modules collected; ``test_files`` the test files
    that exist. A module folder is judged only when its module was collected (every file no
    test used is an orphan) or its test file no longer exists (every file is): the cassettes of
    a module this run did not collect (``pytest tests/test_a.py``) are never called orphans.
    """
    orphans: set[Path] = set()
    for entry in roots:
        for path in files.get(entry.root, ()):
            relative = path.relative_to(entry.root)
            if len(relative.parts) < 2 or path in used:
                continue
            module = relative.parts[0]
            if (
                entry.root,
                module,
            ) in collected_modules or entry.test_folder / f"{module}.py" not in test_files:
                orphans.add(path)
    return sorted(orphans)
