"""Parsing JSON text that came from outside (cassettes, client frames, request bodies).

``json.loads`` accepts documents the rest of the plugin cannot use: a lone surrogate
escape (``"\\ud800"``) decodes to a string that no UTF-8 encoder will write back, and it
raises ``RecursionError`` on deep nesting and a bare ``ValueError`` on integers too long
to convert. :func:`parse_json` turns all of them into one :class:`JsonTextError` that
names the problem and, for a bad string, its JSON pointer.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import msgspec

__all__ = ["MAX_DEPTH", "JsonTextError", "lone_surrogate_pointer", "nesting_depth", "parse_json", "too_deep"]

#: Deepest nesting of arrays and objects accepted. Responses API data (tool schemas
#: included) stays far below it; far deeper values would overflow the recursion of the
#: copying and hashing code that handles them later.
MAX_DEPTH = 100

# Only text with a high or low surrogate escape can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonTextError(ValueError):
    """JSON text that cannot be used: ``pointer`` is where (``""`` for the whole text)."""

    def __init__(self, pointer: str, problem: str) -> None:
        self.pointer = pointer
        self.problem = problem
        super().__init__(f"{problem} at {pointer}" if pointer else problem)


def parse_json(text: str | bytes) -> Any:
    """Decode ``text``; raise :class:`JsonTextError` for anything the plugin could not use."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        # msgspec decodes to the same values as json.loads, several times faster, and refuses
        # what json.loads would let through for the checks below: a lone surrogate, an integer
        # past 64 bits, NaN and Infinity. Whatever it refuses is decoded as before.
        value = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        value = _parse_checked(text)
    else:
        if too_deep(data):
            raise JsonTextError(
                "", f"not usable JSON: arrays and objects nested deeper than {MAX_DEPTH} levels"
            )
    return value


def _parse_checked(text: str | bytes) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonTextError(
            "", f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise JsonTextError("", "not usable JSON: nested too deeply") from None
    except ValueError:  # an integer literal longer than Python converts
        raise JsonTextError("", "not usable JSON: a number has more digits than Python converts") from None
    source = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if too_deep(source.encode("utf-8", "surrogatepass")):
        raise JsonTextError("", f"not usable JSON: arrays and objects nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(source):
        pointer = lone_surrogate_pointer(value)
        if pointer is not None:
            raise JsonTextError(pointer, "a string holds a lone UTF-16 surrogate escape (not valid Unicode)")
    return value


_DECODER = msgspec.json.Decoder()
#: Every byte but brackets and quotes: what nesting depends on, strings' bounds included.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STRING_BYTES = re.compile(rb'"[^"]*"')
#: An innermost pair; one ``sub`` removes one level (a pair it forms is only matched next time).
_INNERMOST = re.compile(rb"\[\]|\{\}")


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` in valid JSON ``data``.

    Few brackets cannot nest deeply. Otherwise escaped backslashes, then escaped quotes, are
    dropped (what remains of a quote bounds a string), then every byte but brackets and
    quotes (all in C); strings are removed from what is left, and innermost pairs are
    removed a level at a time, at most ``limit`` times.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRING_BYTES.sub(b"", unescaped.translate(None, _NOT_STRUCTURE))
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)
    return bool(brackets)


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in valid JSON ``text`` (strings are skipped)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def lone_surrogate_pointer(value: Any, pointer: str = "") -> str | None:
    """The JSON pointer of the first string (value or key) holding a lone surrogate, or None."""
    stack: list[tuple[Any, str]] = [(value, pointer)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, str):
            if _has_surrogate(current):
                return where or "/"
        elif isinstance(current, dict):
            for key, item in reversed(current.items()):
                token = f"{where}/{_escape(key)}"
                if _has_surrogate(key):
                    return token
                stack.append((item, token))
        elif isinstance(current, list):
            stack.extend((item, f"{where}/{i}") for i, item in reversed(list(enumerate(current))))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _escape(token: str) -> str:
    # A pointer is shown to people: a lone surrogate in a key is written as its escape.
    shown = token.encode("utf-8", "backslashreplace").decode("utf-8")
    return shown.replace("~", "~0").replace("/", "~1")
