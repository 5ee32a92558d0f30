"""Explaining a cassette miss: the request, the nearest recorded turns, and why each differs.

Requests are compared in their normalized, effective form (the whole conversation, with
``previous_response_id`` expanded), so the diff shows what matching actually saw.

A miss report goes to the terminal and to JUnit XML, so it never shows a secret: values
are masked with what the caller's :class:`Redactor` learned (the incoming request's
headers and query), credentials in the request body, anything with a credential's shape,
and whatever the request has where the recorded side was redacted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..cassette.redact import REDACTED, Redactor, redact_request
from .match import MatchResult, TurnIndex
from .normalize import canonical_json
from .volatile import VOLATILE

_ABSENT = object()
#: How many recorded turns a miss report shows, and how many differences per turn.
NEAREST_TURNS = 3
DIFFS_PER_TURN = 6
_VALUE_WIDTH = 100
#: How much of a long string a report shows before the first character that differs.
_CONTEXT_BEFORE = 30


@dataclass(frozen=True)
class Difference:
    """One place where the recorded request and the sent one disagree."""

    pointer: str
    recorded: Any
    sent: Any

    def describe(self, mask: Callable[[Any], Any] = lambda value: value) -> str:
        """One line for the report; ``mask`` hides secrets in the values shown."""
        recorded, sent = mask(self.recorded), mask(self.sent)
        if isinstance(self.recorded, str) and REDACTED in self.recorded and isinstance(sent, str):
            sent = _hide_unrecorded_runs(self.recorded, sent)
        if self.recorded is _ABSENT:
            return f"{self.pointer or '/'}: not recorded, sent {_show(sent)}"
        if self.sent is _ABSENT:
            return f"{self.pointer or '/'}: recorded {_show(recorded)}, not sent"
        if isinstance(recorded, str) and isinstance(sent, str):
            return f"{self.pointer or '/'}: {_show_strings(recorded, sent)}"
        return f"{self.pointer or '/'}: recorded {_show(recorded)}, sent {_show(sent)}"


def _hide_unrecorded_runs(recorded: str, sent: str) -> str:
    """``sent`` with the long runs the recorded text does not have hidden.

    The recorded text had a secret where it now says ``[redacted]``; where the sent text
    does not fit it, which of its runs is the secret is unknown, so every run of 8 or
    more non-space characters missing from the recorded text is hidden.
    """
    known = set(recorded.replace(REDACTED, " ").split())

    def hide(run: re.Match[str]) -> str:
        text = run.group(0)
        return text if text in known or REDACTED in text else REDACTED

    return re.sub(r"\S{8,}", hide, sent)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _show_strings(recorded: str, sent: str) -> str:
    """Two different strings, as much of each as the report has room for around where they differ.

    Long strings are cut to a window starting a little before the first difference (with
    ``…`` where text was left out), so a changed date deep inside a long prompt shows.
    """
    if (
        len(json.dumps(recorded, ensure_ascii=False)) <= _VALUE_WIDTH
        and len(json.dumps(sent, ensure_ascii=False)) <= _VALUE_WIDTH
    ):
        return f"recorded {_show(recorded)}, sent {_show(sent)}"
    if recorded == sent:
        return f"differ only where secrets are hidden ({len(sent)} characters)"
    start = 0
    limit = min(len(recorded), len(sent))
    while start < limit and recorded[start] == sent[start]:
        start += 1
    where = f"differ from character {start} (of {len(recorded)} recorded, {len(sent)} sent)"
    return f"{where}: recorded {_window(recorded, start)}, sent {_window(sent, start)}"


def _window(text: str, start: int) -> str:
    """``text`` around ``start``: some context before it, and up to the report's width in all."""
    begin = max(0, start - _CONTEXT_BEFORE)
    end = begin + _VALUE_WIDTH - _CONTEXT_BEFORE // 2
    body = json.dumps(text[begin:end], ensure_ascii=False)[1:-1]
    return f'"{"…" if begin > 0 else ""}{body}{"…" if end < len(text) else ""}"'


def _token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def diff(recorded: Any, sent: Any, pointer: str = "") -> list[Difference]:
    """Leaf-level differences between two JSON values, as JSON pointers."""
    if isinstance(recorded, Mapping) and isinstance(sent, Mapping):
        out: list[Difference] = []
        for key in [*recorded.keys(), *(k for k in sent if k not in recorded)]:
            out.extend(
                diff(recorded.get(key, _ABSENT), sent.get(key, _ABSENT), f"{pointer}/{_token(str(key))}")
            )
        return out
    if isinstance(recorded, list) and isinstance(sent, list):
        out = []
        for i in range(max(len(recorded), len(sent))):
            left = recorded[i] if i < len(recorded) else _ABSENT
            right = sent[i] if i < len(sent) else _ABSENT
            out.extend(diff(left, right, f"{pointer}/{i}"))
        return out
    if recorded is _ABSENT and sent is _ABSENT:
        return []
    # Compare as JSON, like matching does: 1 and 1.0, or true and 1, are different requests.
    if recorded is not _ABSENT and sent is not _ABSENT and canonical_json(recorded) == canonical_json(sent):
        return []
    return [Difference(pointer, recorded, sent)]


def effective_view(index: TurnIndex, request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as matching sees it: parameters plus the whole conversation."""
    view = index.matched_params(request)
    if index.placeholder_params:
        view = dict(index.placeholder_params.fill(view))
    items = index.effective_input(request)
    if items is None:
        view["previous_response_id"] = request.get("previous_response_id")
        items = index.effective_input({"input": request.get("input")}) or []
    items = [index.matched_item(item) for item in items]
    if index.placeholder_items:
        # Parts that fill a recorded placeholder are not differences (matching fills them too).
        items = [index.placeholder_items.fill(item) for item in items]
    view["input"] = items
    return view


def nearest_turns(index: TurnIndex, request: Mapping[str, Any]) -> list[tuple[int, list[Difference]]]:
    """Recorded turns ordered by how few differences they have with ``request``."""
    sent = effective_view(index, request)
    scored = [
        (position, diff(effective_view(index, turn.request), sent))
        for position, turn in enumerate(index.turns)
        if position not in index.synthesized
    ]
    scored.sort(key=lambda pair: (len(pair[1]), pair[0]))
    return scored[:NEAREST_TURNS]


def explain_miss(
    index: TurnIndex,
    request: Mapping[str, Any],
    result: MatchResult,
    *,
    where: str,
    cassette: str,
    record_hint: str,
    redactor: Redactor | None = None,
) -> str:
    """The full miss report shown in the test failure.

    ``redactor`` holds what the incoming request's headers and query taught (see the
    module docs); it is taught the request's own credentials here, and not kept.
    """
    mask = _masker(index, request, redactor or Redactor())
    lines = [
        f"{where} matched no recorded turn in {cassette}",
        f"why: {mask(result.reason)}",
        "",
        "request sent (as received, transport fields included):",
        *("    " + line for line in _request_lines(mask(redact_request(request)))),
    ]
    if result.exhausted:
        played = ", ".join(f"turn {i}" for i in result.exhausted)
        lines += ["", f"it is the same request as {played}, already answered in this test"]
    if index.volatile:
        lines += [
            "",
            f"volatile input (not matched, shown as {VOLATILE}): {', '.join(index.volatile.names)}",
        ]
    if len(index.turns) == len(index.synthesized):
        lines += ["", "the cassette has no turns"]
    else:
        lines += ["", "nearest recorded turns (compared in effective, normalized form):"]
        for position, differences in nearest_turns(index, request):
            turn = index.turns[position]
            lane = f", lane {turn.lane}" if turn.lane else ""
            count = len(differences)
            label = "identical" if count == 0 else f"{count} difference{'s' if count != 1 else ''}"
            lines.append(f"  turn {position} ({turn.transport}, connection {turn.connection}{lane}): {label}")
            lines += [f"    {d.describe(mask)}" for d in differences[:DIFFS_PER_TURN]]
            if count > DIFFS_PER_TURN:
                lines.append(f"    … and {count - DIFFS_PER_TURN} more")
    lines += ["", record_hint]
    return "\n".join(lines)


def _masker(index: TurnIndex, request: Mapping[str, Any], redactor: Redactor) -> Callable[[Any], Any]:
    """A function hiding every secret the report could show, in any JSON value."""
    redactor.learn_request(request)
    sent = index.matched_params(request)
    captured = index.placeholder_params.secrets_in(sent)
    for item in index.effective_input({"input": request.get("input")}) or []:
        captured += index.placeholder_items.secrets_in(index.matched_item(item))
    for secret in captured:
        redactor.learn_credential(secret)

    def mask(value: Any) -> Any:
        if value is _ABSENT:
            return value
        return redactor.scrub(value)

    return mask


def _request_lines(request: Mapping[str, Any], limit: int = 40) -> list[str]:
    # Shown as received, masked by the caller (tool credentials, learned and shaped secrets).
    text = json.dumps(request, ensure_ascii=False, indent=2).splitlines()
    if len(text) > limit:
        return [*text[:limit], f"… ({len(text) - limit} more lines)"]
    return text
