"""Volatile input: the parts of a request that change from run to run and must not decide a match.

A rule is one of:

* a JSON pointer into the request, ``*`` standing for any key or index: the value there is
  volatile (``/prompt_cache_key``, ``/client_metadata``, ``/metadata/*``,
  ``/input/*/content/*/text``). Pointers under ``/input/*/`` reach every input item one by one
  (and the output items a client resends as input), so they must use ``*`` for the item;
* ``re:PATTERN``: every match of the regular expression in any string of the request
  (parameters, ``instructions``, every input item) is volatile; when the pattern has groups,
  only what the groups match is (``re:<cwd>(.*?)</cwd>``);
* a preset name (:data:`PRESETS`): ``codex``, ``dates``, ``uuids``, ``temp_paths``.

A volatile part is replaced by :data:`VOLATILE` before the request is digested, on the
recorded side and the incoming side alike, so two requests that differ only there match.
No rule is on unless asked for: a rule that hid a real difference would replay the wrong
answer, which is worse than a miss.

Rules are compiled once (:func:`compile_volatile`, cached), and applied per item as it is
canonicalized, so a chained request still costs only its new items.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: What a volatile part reads as once a rule has applied.
VOLATILE = "[volatile]"
_WILDCARD = "*"

_DATE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_TEMP_PATH = (
    r"(?<![\w.~/-])(?:(?:/private)?/var/folders/|/tmp/|[A-Za-z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp\\)"
    r"[^\s\"'<>`,;()]*"
)

#: Named sets of rules. Each is off unless named: ``dates`` alone would make a question about
#: a given day match one about any other.
PRESETS: dict[str, tuple[str, ...]] = {
    # ISO 8601 dates, with an optional time of day.
    "dates": (f"re:\\b{_DATE}\\b",),
    # RFC 4122-shaped ids, in any case.
    "uuids": (f"re:\\b{_UUID}\\b",),
    # Paths below the usual temporary folders (pytest's tmp_path among them).
    "temp_paths": (f"re:{_TEMP_PATH}",),
    # The Codex CLI: its per-session cache key and client metadata (ids, timestamps), and
    # in its environment context the working folder, workspace roots, date and time zone,
    # and the skill roots under $CODEX_HOME.
    "codex": (
        "/prompt_cache_key",
        "/client_metadata",
        "re:<cwd>([^<]*)</cwd>",
        "re:<root>([^<]*)</root>",
        "re:<current_date>([^<]*)</current_date>",
        "re:<timezone>([^<]*)</timezone>",
        r"re:(?m)^- `r\d+` = `([^`]*)`",
    ),
}


class VolatileRuleError(ValueError):
    """A volatile rule that can never work; the message says which and why."""


Path = tuple[str, ...]


@dataclass(frozen=True)
class VolatileRules:
    """Compiled volatile rules: pointers into the parameters and into each item, and patterns."""

    #: The rules as given (preset names kept), for messages.
    names: tuple[str, ...] = ()
    param_paths: tuple[Path, ...] = ()
    item_paths: tuple[Path, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.param_paths or self.item_paths or self.patterns)

    def params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The request's parameters (input left out) with their volatile parts replaced."""
        result: Any = dict(params)
        for path in self.param_paths:
            result = _replace_at(result, path)
        return self._strings(result) if self.patterns else dict(result)

    def item(self, item: Any) -> Any:
        """One input or output item (normalized) with its volatile parts replaced."""
        for path in self.item_paths:
            item = _replace_at(item, path)
        return self._strings(item) if self.patterns else item

    def _strings(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self._strings(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._strings(item) for item in value]
        return value

    def text(self, text: str) -> str:
        """``text`` with what the patterns match replaced."""
        for pattern in self.patterns:
            if pattern.search(text) is not None:
                text = pattern.sub(_replacement, text)
        return text


NO_RULES = VolatileRules()


def _replacement(match: re.Match[str]) -> str:
    """The match with its groups (or, without groups, all of it) replaced by :data:`VOLATILE`."""
    if match.re.groups == 0:
        return VOLATILE
    text, start = match.group(0), match.start()
    pieces, cursor = [], 0
    for group in range(1, match.re.groups + 1):
        begin, end = match.span(group)
        if begin < 0 or begin - start < cursor:
            continue  # a group that did not take part, or one nested in a replaced one
        pieces += [text[cursor : begin - start], VOLATILE]
        cursor = end - start
    return "".join(pieces) + text[cursor:]


def _replace_at(value: Any, path: Path) -> Any:
    """A copy of ``value`` with whatever ``path`` reaches replaced (only the nodes on the way copied)."""
    if not path:
        return VOLATILE
    step, rest = path[0], path[1:]
    if isinstance(value, dict):
        keys = list(value) if step == _WILDCARD else [step] if step in value else []
        if not keys:
            return value
        return {**value, **{key: _replace_at(value[key], rest) for key in keys}}
    if isinstance(value, list):
        if step == _WILDCARD:
            return [_replace_at(item, rest) for item in value]
        if step.isdigit() and int(step) < len(value):
            copy = list(value)
            copy[int(step)] = _replace_at(value[int(step)], rest)
            return copy
    return value


def _pointer_path(rule: str) -> Path:
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in rule[1:].split("/"))


def _add_rule(rule: str, paths: tuple[list[Path], list[Path]], patterns: list[re.Pattern[str]]) -> None:
    param_paths, item_paths = paths
    if rule.startswith("re:"):
        try:
            patterns.append(re.compile(rule[3:]))
        except re.error as exc:
            raise VolatileRuleError(
                f"volatile rule {rule!r} is not a valid regular expression: {exc}"
            ) from None
        if patterns[-1].search("") is not None:
            raise VolatileRuleError(
                f"volatile rule {rule!r} matches the empty string: it would match anywhere"
            )
        return
    if not rule.startswith("/") or rule == "/":
        valid = ", ".join(PRESETS)
        raise VolatileRuleError(
            f"unknown volatile rule {rule!r}; expected a JSON pointer (/prompt_cache_key), "
            f"re:PATTERN, or a preset ({valid})"
        )
    path = _pointer_path(rule)
    if path[0] != "input":
        param_paths.append(path)
        return
    if len(path) < 3 or path[1] != _WILDCARD:
        raise VolatileRuleError(
            f"volatile rule {rule!r}: input items are matched one by one, so a pointer into input "
            "names a field of every item with * for the item: /input/*/content/*/text"
        )
    item_paths.append(path[2:])


@functools.lru_cache(maxsize=64)
def _compile(rules: tuple[str, ...]) -> VolatileRules:
    param_paths: list[Path] = []
    item_paths: list[Path] = []
    patterns: list[re.Pattern[str]] = []
    for rule in rules:
        for expanded in PRESETS.get(rule, (rule,)):
            _add_rule(expanded, (param_paths, item_paths), patterns)
    return VolatileRules(rules, tuple(param_paths), tuple(item_paths), tuple(patterns))


def compile_volatile(rules: Sequence[str]) -> VolatileRules:
    """The compiled form of ``rules`` (cached: a mount per test compiles nothing new).

    Raises :class:`VolatileRuleError` for a rule that can never work.
    """
    return _compile(tuple(rules)) if rules else NO_RULES
