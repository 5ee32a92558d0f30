"""Fuzzing: mutated cassettes and client frames either work or give the documented error.

Seeds are real recordings (tests/data/real-recordings). A cassette is decoded, mutated
(fields dropped, retyped, nested; odd numbers and strings) and encoded again; loading it
must either give a cassette that mounts and replays over both transports, or raise
:class:`CassetteFormatError`. Events are decoded when first used, so a value inside an
event that only a full decode refuses (a number too long, a lone surrogate, deep nesting)
raises that error when its turn is mounted or played instead, naming the event. A client's ``response.create`` frame or HTTP body, mutated
the same way, must either be a request the matcher handles (a hit or an explained miss)
or be rejected with a problem the server reports as a ``ProtocolViolation``. Bounded so
the whole file runs in a few seconds.
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette.codec import check_replayable, decode_cassette, encode_cassette
from pytest_responses_ws.cassette.model import Cassette
from pytest_responses_ws.config import RecordMode, Settings
from pytest_responses_ws.core.explain import explain_miss
from pytest_responses_ws.core.jsontext import JsonTextError, parse_json
from pytest_responses_ws.core.normalize import request_problem
from pytest_responses_ws.errors import CassetteFormatError
from pytest_responses_ws.server.mount import Mount
from pytest_responses_ws.server.websocket import _decode_frame

from support.recordings import real_cassettes

#: Examples per test; raise it for a longer hunt: RWS_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py
FUZZ = settings(
    max_examples=int(os.environ.get("RWS_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def _seeds() -> tuple[dict[str, Any], ...]:
    """Every real recording as a decoded cassette document."""
    return tuple(json.loads(encode_cassette(c)) for c in real_cassettes().values() if c.turns)


ODD_STRINGS = st.sampled_from(
    ["", "\ud800", "\udfff", "x" * 5000, "é\u2028\x00", "[[[", "NaN", "response.completed"]
)
#: Stands for an integer too long to convert (Python cannot even repr it): put in by ``_encode``.
HUGE_INTEGER = "<huge integer>"
ODD_NUMBERS = st.sampled_from([0, -1, 1.5, HUGE_INTEGER, -(10**30), float("nan"), float("inf"), True, False])
SCALARS = st.one_of(st.none(), ODD_STRINGS, ODD_NUMBERS, st.text(max_size=8), st.integers(), st.floats())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["type", "status", "output", "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (the root excluded)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutate(document: Any, data: st.DataObject, rounds: int) -> Any:
    document = copy.deepcopy(document)
    for _ in range(rounds):
        paths = _paths(document)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        operation = data.draw(st.sampled_from(["drop", "retype", "nest", "odd"]))
        if operation == "drop":
            del parent[last]
        elif operation == "retype":
            parent[last] = data.draw(VALUES)
        elif operation == "nest":
            parent[last] = data.draw(
                st.sampled_from([[parent[last]], {"x": parent[last]}, [[[parent[last]]]]])
            )
        else:
            parent[last] = data.draw(st.one_of(ODD_STRINGS, ODD_NUMBERS))
    return document


def _encode(document: Any) -> str:
    # ``ensure_ascii`` writes a lone surrogate as its escape, as a hand-edited file would have it.
    return json.dumps(document, ensure_ascii=True).replace(json.dumps(HUGE_INTEGER), "7" * 5000)


def _load(text: str) -> Cassette | CassetteFormatError:
    """The cassette as the plugin loads it for replay, or the error it reports."""
    try:
        cassette = decode_cassette(text, "fuzz.json")
        check_replayable(cassette, "fuzz.json")
    except CassetteFormatError as exc:
        return exc
    return cassette


def _replay_everything(cassette: Cassette) -> None:
    """Mount the cassette for both transports and build every answer replay could send."""
    for transport in ("http", "ws"):
        mount = Mount("fuzz", Settings(record_mode=RecordMode.NONE), Path("fuzz.json"), cassette,
                      record_command="pytest", transport=transport)  # fmt: skip
        for position, turn in enumerate(mount.index.turns):
            for frame in mount.playback(position, turn.lane).frames + mount.sse_playback(position).frames:
                frame.encode("utf-8")  # what the server sends must be encodable
            for wants_stream in (True, False):
                answer = mount.http_answer(position, wants_stream)
                if answer.body is not None:
                    json.dumps(answer.body, ensure_ascii=False).encode("utf-8")
            mount.turn_output(position)
            result = mount.lookup(turn.request)
            if result.turn is None:
                explain_miss(
                    mount.index, turn.request, result, where="fuzz", cassette="fuzz.json", record_hint=""
                )
        encode_cassette(cassette)


@FUZZ
@given(data=st.data(), rounds=st.integers(1, 4))
def test_a_mutated_cassette_replays_or_is_a_cassette_format_error(data: st.DataObject, rounds: int) -> None:
    seed = data.draw(st.sampled_from(_seeds()))
    loaded = _load(_encode(_mutate(seed, data, rounds)))
    if isinstance(loaded, CassetteFormatError):
        assert str(loaded).startswith("corrupt cassette fuzz.json at /")
        return
    deferred = _deferred_problem(loaded)
    if deferred is not None:
        # Found when the event was first decoded: only what the load could not see, named there.
        assert re.fullmatch(r"/turns/\d+/events/\d+/data(/.*)?", deferred.pointer), deferred.pointer
        assert deferred.problem.startswith(DEFERRED_PROBLEMS), deferred.problem


def _deferred_problem(cassette: Cassette) -> CassetteFormatError | None:
    try:
        _replay_everything(cassette)
    except CassetteFormatError as exc:
        return exc
    return None


#: What the checking parser refuses that only decoding an event's whole value finds.
DEFERRED_PROBLEMS = (
    "not usable JSON: a number has more digits",
    "not usable JSON: arrays and objects nested deeper",
    "a string holds a lone UTF-16 surrogate",
)


@FUZZ
@given(data=st.data(), rounds=st.integers(1, 4))
def test_a_mutated_non_streamed_answer_replays_or_is_a_cassette_format_error(
    data: st.DataObject, rounds: int
) -> None:
    # Turns answered with a JSON body are streamed by synthesizing events from it.
    seeds = [s for s in _seeds() if any("body" in turn for turn in s["turns"])]
    document = copy.deepcopy(data.draw(st.sampled_from(seeds)))
    position = next(i for i, turn in enumerate(document["turns"]) if "body" in turn)
    document["turns"][position]["body"] = _mutate(document["turns"][position]["body"], data, rounds)
    loaded = _load(_encode(document))
    if isinstance(loaded, CassetteFormatError):
        assert loaded.pointer.startswith(f"/turns/{position}/body") or loaded.pointer == ""
        return
    _replay_everything(loaded)


@cache
def _replay_mount() -> Mount:
    return Mount("fuzz", Settings(), Path("fuzz.json"), decode_cassette(json.dumps(_seeds()[0])),
                 record_command="pytest", transport="ws")  # fmt: skip


def _requests() -> list[dict[str, Any]]:
    return [{"type": "response.create", **turn["request"]} for seed in _seeds() for turn in seed["turns"]]


@FUZZ
@given(data=st.data(), rounds=st.integers(1, 4))
def test_a_mutated_client_frame_is_served_or_rejected_as_a_protocol_violation(
    data: st.DataObject, rounds: int
) -> None:
    frame = _mutate(data.draw(st.sampled_from(_requests())), data, rounds)
    text = _encode(frame)
    decoded = _decode_frame(text)
    if isinstance(decoded, str):
        assert decoded  # the problem the ProtocolViolation and the error event carry
        return
    if decoded["type"] == "response.create":  # other events are forwarded or refused, never matched
        _match_or_explain(decoded)


@FUZZ
@given(data=st.data(), rounds=st.integers(1, 4))
def test_a_mutated_http_body_is_served_or_rejected_with_a_400(data: st.DataObject, rounds: int) -> None:
    body = _mutate(data.draw(st.sampled_from(_requests())), data, rounds)
    try:
        request = parse_json(_encode(body).encode("utf-8"))
    except JsonTextError:
        return
    if not isinstance(request, dict) or request_problem(request):
        return
    _match_or_explain(request)


def _match_or_explain(request: dict[str, Any]) -> None:
    mount = _replay_mount()
    result = mount.lookup(request)
    if result.turn is None:
        explain_miss(mount.index, request, result, where="fuzz", cassette="fuzz.json", record_hint="")
