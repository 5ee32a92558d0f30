"""Unit tests of ``core.jsontext``: JSON from outside is usable or one clear error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.core.jsontext import MAX_DEPTH, JsonTextError, nesting_depth, parse_json


@pytest.mark.parametrize(
    ("text", "pointer", "problem"),
    [
        ("{oops", "", "not valid JSON (line 1, column 2: Expecting property name"),
        ("[" * 100_000, "", "not usable JSON: nested too deeply"),
        (
            "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
            "",
            "not usable JSON: arrays and objects nested deeper",
        ),
        ("7" * 5000, "", "not usable JSON: a number has more digits than Python converts"),
        ('{"a": [1, "x\\ud800"]}', "/a/1", "a string holds a lone UTF-16 surrogate escape"),
        ('{"a/b": {"\\udc00~": 1}}', "/a~1b/\\udc00~0", "a string holds a lone UTF-16 surrogate escape"),
        ('"\\uDFFF"', "/", "a string holds a lone UTF-16 surrogate escape"),
    ],
)
def test_unusable_json_is_one_error_naming_the_spot(text: str, pointer: str, problem: str) -> None:
    with pytest.raises(JsonTextError) as info:
        parse_json(text)
    assert info.value.pointer == pointer
    assert info.value.problem.startswith(problem)
    str(info.value).encode("utf-8")  # printable, whatever the input held


def test_usable_json_is_returned_as_json_loads_would() -> None:
    text = (
        '{"emoji": "\\ud83d\\ude00", "deep": '
        + "[" * (MAX_DEPTH - 1)
        + "]" * (MAX_DEPTH - 1)
        + ', "s": "[[[[{{{{"}'
    )
    assert parse_json(text) == json.loads(text)
    assert parse_json(text.encode("utf-8")) == json.loads(text)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_nesting_depth_counts_containers_not_brackets_in_strings(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        return 0

    assert nesting_depth(json.dumps(value)) == depth(value)
    assert nesting_depth(json.dumps(value, ensure_ascii=False)) == depth(value)
