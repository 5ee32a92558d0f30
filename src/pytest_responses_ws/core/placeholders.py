"""Redacted parts of recorded requests, filled by the incoming request.

A recorded request whose secrets were scrubbed (an org id in ``metadata``, a key pasted
in a prompt) holds ``[redacted]`` where the client sent the secret. On replay, the
client sends the secret (or, in CI, another value) again, so the two differ exactly
there. Each recorded unit with placeholders (the parameters of a request, or one input
or output item) becomes a *template*: the unit with its placeholder strings set aside,
plus a pattern per such string where each ``[redacted]`` stands for a run of 8 or more
non-space characters. An incoming unit equal to a template outside those strings, whose
strings fit the patterns, is replaced by the template before it is digested, so it gets
the recorded key.

A template is found by its *skeleton* (the canonical JSON of the unit with the
placeholder strings replaced by a marker): a dictionary lookup per distinct set of
placeholder positions, never a scan of every recorded turn. A cassette without
placeholders has no templates, and matching skips all of this.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..cassette.redact import MIN_SECRET_LENGTH, REDACTED
from .normalize import canonical_json

Path = tuple[str | int, ...]
_MARK = "\x00rws-placeholder\x00"
#: What one placeholder may stand for: a secret is at least 8 characters, without spaces.
_SECRET_RUN = rf"(\S{{{MIN_SECRET_LENGTH},}}?)"


def placeholder_strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """The position and text of every string in ``value`` that holds ``[redacted]``."""
    if isinstance(value, str):
        if REDACTED in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from placeholder_strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from placeholder_strings(item, (*path, i))


def slot_pattern(template: str) -> re.Pattern[str]:
    """A pattern matching what ``template`` was before its ``[redacted]`` parts replaced secrets."""
    return re.compile(_SECRET_RUN.join(re.escape(part) for part in template.split(REDACTED)), re.DOTALL)


def _get(value: Any, path: Path) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
        elif not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value


def _with(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``path`` (only the nodes along the path are copied)."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if isinstance(value, list) and isinstance(step, int):
        copy = list(value)
        copy[step] = _with(value[step], rest, new)
        return copy
    if isinstance(value, dict):
        return {**value, step: _with(value[step], rest, new)}
    return value


def _skeleton(value: Any, paths: tuple[Path, ...]) -> str | None:
    for path in paths:
        if not isinstance(_get(value, path), str):
            return None
        value = _with(value, path, _MARK)
    return canonical_json(value)


@dataclass(frozen=True)
class _Template:
    value: Any
    #: The canonical JSON of ``value``: what a filled unit is digested as.
    text: str
    slots: tuple[tuple[Path, re.Pattern[str]], ...]

    def fits(self, value: Any) -> bool:
        return all(pattern.fullmatch(_get(value, path)) for path, pattern in self.slots)


@dataclass
class Placeholders:
    """Templates of recorded units with redacted parts, by their placeholder positions."""

    _tables: dict[tuple[Path, ...], dict[str, list[_Template]]] = field(default_factory=dict)
    #: Recorded units without redacted parts (canonical JSON): sent verbatim, they are themselves.
    _plain: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self._tables)

    def copy(self) -> Placeholders:
        """The same templates, learning on apart from this one (templates are immutable)."""
        return Placeholders(
            {
                paths: {skeleton: list(found) for skeleton, found in table.items()}
                for paths, table in self._tables.items()
            },
            set(self._plain),
        )

    def add(self, value: Any) -> None:
        """Learn ``value`` (a recorded unit): a template if it has redacted parts.

        A unit recorded as is stays itself even if it fits another turn's template
        (``{"user": "alice-0001"}`` in one turn, a redacted user in another).
        """
        found = list(placeholder_strings(value))
        if not found:
            self._plain.add(canonical_json(value))
            return
        paths = tuple(path for path, _ in found)
        skeleton = _skeleton(value, paths)
        assert skeleton is not None  # every path was just found to hold a string
        slots = tuple((path, slot_pattern(text)) for path, text in found)
        template = _Template(value, canonical_json(value), slots)
        self._tables.setdefault(paths, {}).setdefault(skeleton, []).append(template)

    def fill(self, value: Any) -> Any:
        """The recorded form of ``value`` if it fits a template, else ``value`` itself."""
        if canonical_json(value) in self._plain:
            return value
        template = self._fitting(value)
        return value if template is None else template.value

    def fill_text(self, value: Any) -> str:
        """The canonical JSON of :meth:`fill`'s result (what matching digests), computed once."""
        text = canonical_json(value)
        if text in self._plain:
            return text
        template = self._fitting(value)
        return text if template is None else template.text

    def _fitting(self, value: Any) -> _Template | None:
        for paths, table in self._tables.items():
            skeleton = _skeleton(value, paths)
            for template in table.get(skeleton, ()) if skeleton is not None else ():
                if template.fits(value):
                    return template
        return None

    def secrets_in(self, value: Any) -> list[str]:
        """What ``value`` has where templates have placeholders (to hide it in a miss report).

        Positions are compared loosely (same path, whatever else differs), since the
        request of a miss fits no template as a whole.
        """
        found: list[str] = []
        for table in self._tables.values():
            for templates in table.values():
                for template in templates:
                    for path, pattern in template.slots:
                        text = _get(value, path)
                        match = pattern.fullmatch(text) if isinstance(text, str) else None
                        if match:
                            found += match.groups()
        return found
