"""Request normalization: what makes two Responses requests "the same turn".

Transport-only fields are dropped, volatile item fields (ids, statuses, empty
annotation lists) are removed, and shorthand forms are expanded (``input: "hi"`` and
``{"role": "user", "content": "hi"}`` mean the same as the full message item), so a
request matches its recording whichever client or transport sent it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from ..cassette.redact import redact_request

JSONDict = dict[str, Any]

#: Fields that only say how a turn travels, never what it asks.
TRANSPORT_FIELDS = frozenset({"type", "stream", "stream_options", "stream_id"})
#: Fields that carry the conversation; matched through the effective context instead.
CONTEXT_FIELDS = frozenset({"input", "previous_response_id"})
#: Item fields that the service assigns and clients may or may not echo back.
VOLATILE_ITEM_FIELDS = frozenset({"id", "status"})

_USER_SIDE_ROLES = frozenset({"user", "system", "developer"})


_SORTED = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON: equal values give equal text, different values different text.

    msgspec writes it about ten times faster than ``json.dumps`` (matching digests every item
    of every turn), but as ``null`` for a NaN or an infinity. So any text with ``null`` in it
    (a null, a NaN, or the word in a string) is ``json.dumps``'s, which writes ``NaN``: texts
    of the two writers never meet, and each is faithful. A value msgspec cannot write (keys that
    are not strings) is ``json.dumps``'s too. The same value always gives the same text.
    """
    try:
        text = _SORTED.encode(value)
    except (TypeError, ValueError, OverflowError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if b"null" in text:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.decode("utf-8")


def request_problem(request: Mapping[str, Any]) -> str | None:
    """What makes a create request unusable for matching, or None.

    The service rejects these too; catching them here keeps a malformed request from
    reaching the matcher (an unhashable ``previous_response_id``, say).
    """
    parent = request.get("previous_response_id")
    if parent is not None and not isinstance(parent, str):
        return f"previous_response_id must be a string or null, not {type(parent).__name__}"
    value = request.get("input")
    if value is not None and not isinstance(value, (str, list)):
        return f"input must be a string or an array of items, not {type(value).__name__}"
    if isinstance(value, list) and not all(isinstance(item, (dict, str)) for item in value):
        return "input items must be objects (or strings)"
    return None


def _without_none(mapping: Mapping[str, Any]) -> JSONDict:
    return {key: value for key, value in mapping.items() if value is not None}


def _normalize_part(part: Any, role: str | None) -> Any:
    if isinstance(part, str):
        kind = "output_text" if role == "assistant" else "input_text"
        return {"type": kind, "text": part}
    if not isinstance(part, Mapping):
        return part
    result = _without_none(part)
    # Output text parts gain empty annotation and logprob lists when they come back
    # from the service; a client that resends them may or may not keep those.
    for key in ("annotations", "logprobs"):
        if result.get(key) == []:
            del result[key]
    return result


def normalize_item(item: Any) -> Any:
    """One input or output item in its canonical form."""
    if isinstance(item, str):
        return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": item}]}
    if not isinstance(item, Mapping):
        return item
    result = _without_none(item)
    if "type" not in result and "role" in result:
        result["type"] = "message"
    if result.get("type") != "item_reference":
        for key in VOLATILE_ITEM_FIELDS:
            result.pop(key, None)
    if result.get("type") == "message":
        role = result.get("role")
        content = result.get("content")
        if isinstance(content, str):
            content = [content]
        if isinstance(content, list):
            result["content"] = [_normalize_part(p, role if isinstance(role, str) else None) for p in content]
        if isinstance(role, str) and role in _USER_SIDE_ROLES:
            result.pop("phase", None)
    return result


def normalize_input(value: Any) -> list[Any]:
    """The request's ``input`` as a list of canonical items."""
    if value is None:
        return []
    if isinstance(value, str):
        return [normalize_item(value)]
    if isinstance(value, Sequence):
        return [normalize_item(item) for item in value]
    return [value]


def _remove_pointer(document: JSONDict, pointer: str) -> None:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.lstrip("/").split("/")]
    node: Any = document
    for token in tokens[:-1]:
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return
    if isinstance(node, dict):
        node.pop(tokens[-1], None)


def normalize_params(request: Mapping[str, Any], ignore: Iterable[str] = ()) -> JSONDict:
    """Every field except transport and context fields, minus ``ignore``.

    ``ignore`` entries are top-level field names (``"metadata"``) or JSON pointers
    into the request (``"/metadata/run_id"``).
    """
    params = {
        key: value
        for key, value in redact_request(request).items()
        if key not in TRANSPORT_FIELDS and key not in CONTEXT_FIELDS and value is not None
    }
    pointers = [entry for entry in ignore if entry.startswith("/")]
    for entry in ignore:
        if not entry.startswith("/"):
            params.pop(entry, None)
    if pointers:
        # Pointer removal edits nested values: work on a copy, never on the caller's request.
        params = json.loads(json.dumps(params))
        for pointer in pointers:
            _remove_pointer(params, pointer)
    return params


def response_output(response: Mapping[str, Any] | None) -> list[Any]:
    """The output items of a response object, canonical, as a client would resend them."""
    if not response:
        return []
    output = response.get("output")
    return [normalize_item(item) for item in output] if isinstance(output, list) else []
