"""Matching requests to recorded turns on their effective context.

A turn's key is two digests: one of its parameters (model, tools, instructions, ...)
and one folded over its effective input items, where a ``previous_response_id`` stands
for the parent's effective input followed by the parent's output. Folding is
incremental: a chained request costs only its new items, and an HTTP client that
resends the whole history lands on the same key as a WebSocket client that chained ids.
Lookup is a dict access. On a miss, :func:`explain_miss` ranks the recorded turns by
how much they differ and shows where.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import msgspec

from ..cassette.model import EventLog, RecordedEvent, Turn
from ..cassette.redact import REDACTED
from .collector import collector_paused
from .normalize import (
    CONTEXT_FIELDS,
    TRANSPORT_FIELDS,
    canonical_json,
    normalize_input,
    normalize_item,
    normalize_params,
    response_output,
)
from .placeholders import Placeholders
from .synthesize import response_from_events
from .volatile import NO_RULES, VolatileRules

_ROOT = b"rws-context-v1"
#: Fields that are not parameters (see normalize_params).
_NOT_PARAMETERS = TRANSPORT_FIELDS | CONTEXT_FIELDS
#: Writes an item as sent (key order kept): equal output, equal item.
_AS_SENT = msgspec.json.Encoder()


def _fold_text(state: bytes, text: str) -> bytes:
    return hashlib.blake2b(state + text.encode("utf-8"), digest_size=16).digest()


def _fold(state: bytes, items: Iterable[Any]) -> bytes:
    return _fold_texts(state, (canonical_json(item) for item in items))


def _fold_texts(state: bytes, texts: Iterable[str]) -> bytes:
    for text in texts:
        state = _fold_text(state, text)
    return state


def _params_digest(params: Mapping[str, Any]) -> bytes:
    return hashlib.blake2b(canonical_json(params).encode("utf-8"), digest_size=16).digest()


def turn_response(turn: Turn, *, as_copy: bool = True) -> dict[str, Any] | None:
    """The final response object a turn produced (from its body or terminal event).

    ``as_copy=False`` gives the recorded object's own parts, for readers that never change them.
    """
    if turn.body is not None and "output" in turn.body:
        return turn.body
    return response_from_events(_EventData(turn.events), as_copy=as_copy)


def recorded_output(turn: Turn) -> list[Any]:
    """The output items of a turn's final response, canonical (as a client would resend them)."""
    return [normalize_item(item) for item in output_as_recorded(turn, as_copy=False)]


def output_as_recorded(turn: Turn, *, as_copy: bool = True) -> list[Any]:
    """The output items of a turn's final response as recorded (``[]`` when it has none).

    Events read from a file answer from their heads, decoding only the output itself (a new
    value each time); ``as_copy=False`` may give a recorded response's own items otherwise.
    """
    if isinstance(turn.events, EventLog) and not (turn.body is not None and "output" in turn.body):
        output = turn.events.final_output()
    else:
        output = (turn_response(turn, as_copy=as_copy) or {}).get("output")
    return list(output) if isinstance(output, list) else []


class _EventData(Sequence[Mapping[str, Any]]):
    """The ``data`` of recorded events, read one at a time (a read from the end decodes only the end)."""

    __slots__ = ("_events",)

    def __init__(self, events: Sequence[RecordedEvent]) -> None:
        self._events = events

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Mapping[str, Any] | Sequence[Mapping[str, Any]]:
        if isinstance(index, slice):
            return [event.data for event in self._events[index]]
        return self._events[index].data


@dataclass(frozen=True)
class RequestKey:
    """What a request is matched on."""

    params: bytes
    context: bytes


@dataclass
class MatchResult:
    """The outcome of a lookup: ``turn`` is set on a hit, else ``reason`` says why not."""

    key: RequestKey
    turn: int | None = None
    reason: str = ""
    #: Recorded turns with the same key that were already played (when that caused the miss).
    exhausted: tuple[int, ...] = ()

    @property
    def hit(self) -> bool:
        return self.turn is not None


#: Turns of a cassette read from a file that an index digests when built; later ones are
#: digested when a lookup first needs them (see :meth:`TurnIndex.build`). Small cassettes are
#: indexed whole, once, and shared by every test replaying them; a long one costs what is played.
INDEX_AHEAD_TURNS = 256


@dataclass
class TurnIndex:
    """Recorded turns indexed by :class:`RequestKey`, with per-turn play counts."""

    ignore: tuple[str, ...] = ()
    allow_repeats: bool = False
    #: What varies between runs and must not decide a match (see :mod:`.volatile`).
    volatile: VolatileRules = NO_RULES
    turns: list[Turn] = field(default_factory=list)
    #: The key of each indexed turn, by position (content digests: comparable across indexes).
    #: Turns past the last key are not indexed yet (see :meth:`build`); :attr:`keys` has them all.
    _keys: list[RequestKey] = field(default_factory=list)
    _by_key: dict[RequestKey, list[int]] = field(default_factory=dict)
    #: response id -> context digest after the response's output (what a child chains from)
    _after: dict[str, bytes] = field(default_factory=dict)
    #: response id -> index of the turn that created it
    _creator: dict[str, int] = field(default_factory=dict)
    _played: dict[int, int] = field(default_factory=dict)
    #: Played turns an injected fault cut short: a retry may replay them (see mark_interrupted).
    _interrupted: set[int] = field(default_factory=set)
    #: Turns replay made up (warm-ups the recording did not have): not recorded, never shown as such.
    synthesized: set[int] = field(default_factory=set)
    #: The last parameter set and its digest: an agent loop sends the same one every turn.
    _last_params: dict[str, Any] | None = None
    _last_params_digest: bytes = b""
    #: The JSON as sent of the last request's parameters (see _params_key).
    _last_sent_params: bytes = b""
    #: Items of the last request without a parent, and the fold state after each one:
    #: a client that resends its history shares a long prefix with its previous request.
    _last_texts: list[str] = field(default_factory=list)
    _last_states: list[bytes] = field(default_factory=list)
    #: The JSON of the last request's items as sent, when they were (see _fold_sent_history).
    _last_sent: list[bytes] = field(default_factory=list)
    _last_items: list[Any] = field(default_factory=list)
    #: Recorded parameters and items with redacted parts, which incoming requests fill.
    #: Empty for a cassette without redactions: then matching never looks at them.
    placeholder_params: Placeholders = field(default_factory=Placeholders)
    placeholder_items: Placeholders = field(default_factory=Placeholders)
    _has_redactions: bool = False
    #: Whether there are templates to fill (plain flags: the turn path checks them every time).
    _fill_items: bool = False
    _fill_params: bool = False
    #: Canonical JSON of an item as sent -> as matched, once volatile rules apply: a client
    #: resending its history costs a lookup per old item, not the rules again.
    _volatile_texts: dict[str, str] = field(default_factory=dict)
    #: Whether there are volatile rules (a plain flag: the turn path checks it every time).
    _volatile_on: bool = False

    def __post_init__(self) -> None:
        self._volatile_on = bool(self.volatile)

    @classmethod
    def build(
        cls,
        turns: Iterable[Turn],
        ignore: Sequence[str] = (),
        allow_repeats: bool = False,
        volatile: VolatileRules = NO_RULES,
    ) -> TurnIndex:
        """An index of ``turns``.

        Turns read from a file that holds no redaction are indexed ahead up to
        :data:`INDEX_AHEAD_TURNS`, the rest as lookups reach them, in order: a test that plays
        the first turns of a long cassette digests only those (a lookup that finds nothing
        indexes the rest before it says so). The response ids are read for every turn up
        front, so a chained request finds its parent's turn. A turn with a redaction makes
        every request fill placeholders learned from all turns, so such cassettes (and turns
        built in memory) are indexed whole here.
        """
        index = cls(ignore=tuple(ignore), allow_repeats=allow_repeats, volatile=volatile)
        turns = list(turns)
        if turns and all(turn.redaction_free for turn in turns):
            index.turns = turns
            for position, turn in enumerate(turns):
                if (response_id := turn.response_id) is not None:
                    index._creator[response_id] = position
            index._index_to(min(len(turns), INDEX_AHEAD_TURNS))
            return index
        with collector_paused():
            for turn in turns:
                index.add(turn)
        return index

    @property
    def keys(self) -> list[RequestKey]:
        """The key of each turn, by position."""
        self._index_to(len(self.turns))
        return self._keys

    def _index_to(self, end: int) -> None:
        """Index the turns not indexed yet before position ``end``."""
        if len(self._keys) < end:
            with collector_paused():
                while len(self._keys) < end:
                    self._index(len(self._keys))

    def _index_until(self, key: RequestKey) -> None:
        """Index the turns not indexed yet up to the next one with ``key`` (or all of them)."""
        with collector_paused():
            while len(self._keys) < len(self.turns):
                if self._index(len(self._keys)) == key:
                    return

    # -- keys -------------------------------------------------------------

    def key_for(self, request: Mapping[str, Any]) -> RequestKey:
        """The request's key.

        A parent id the cassette does not hold (a stored response made before recording,
        or one the upstream rejected) stands for itself: the chain folds from a digest of
        the id, so a recorded turn with that parent still matches, and so do its children.
        """
        parent = request.get("previous_response_id")
        raw_input = request.get("input")
        if parent is None and isinstance(raw_input, list) and not self._fill_items:
            return RequestKey(self._params_key(request), self._fold_sent_history(raw_input))
        texts = self._item_texts(normalize_input(raw_input))
        if parent is None:
            context = self._fold_history(texts)
        elif parent in self._after:
            context = _fold_texts(self._after[parent], texts)
        else:
            context = _fold_texts(_fold(_ROOT, [{"previous_response_id": parent}]), texts)
        return RequestKey(self._params_key(request), context)

    def _params_key(self, request: Mapping[str, Any]) -> bytes:
        """The digest of the request's parameters; a loop sends the same ones every turn.

        Parameters sent exactly as the previous request's (their JSON as sent: ``1`` and
        ``1.0`` differ there) have its digest without being normalized again. A null is
        written for a NaN too, so parameters written with one are always normalized.
        """
        sent = {k: v for k, v in request.items() if k not in _NOT_PARAMETERS and v is not None}
        try:
            text = _AS_SENT.encode(sent)
        except (TypeError, ValueError, OverflowError):
            text = b"null"
        if text == self._last_sent_params and not self._fill_params and b"null" not in text:
            return self._last_params_digest
        params = self.matched_params(request)
        if self._fill_params:
            params = self.placeholder_params.fill(params)
        digest = self._digest_params(params)
        self._last_sent_params = text
        return digest

    def matched_params(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The request's parameters as matching sees them (ignored fields out, volatile parts replaced)."""
        params = normalize_params(request, self.ignore)
        # Parameters sent again exactly as before never get here on the turn path (_params_key).
        return self.volatile.params(params) if self._volatile_on else params

    def matched_item(self, item: Any) -> Any:
        """A normalized item as matching sees it (volatile parts replaced)."""
        return self.volatile.item(item) if self._volatile_on else item

    def _item_texts(self, items: list[Any]) -> list[str]:
        """The canonical JSON each item is folded as: volatile parts replaced, placeholders filled."""
        if not self._volatile_on:
            if self._fill_items:
                return [self.placeholder_items.fill_text(item) for item in items]
            return [canonical_json(item) for item in items]
        texts = [self._volatile_text(item) for item in items]
        if self._fill_items:
            return [self.placeholder_items.fill_text(json.loads(text)) for text in texts]
        return texts

    def _item_text(self, item: Any) -> str:
        """The canonical JSON one normalized item is folded as (placeholders aside)."""
        return self._volatile_text(item) if self._volatile_on else canonical_json(item)

    def _volatile_text(self, item: Any) -> str:
        text = canonical_json(item)
        matched = self._volatile_texts.get(text)
        if matched is None:
            matched = self._volatile_texts[text] = canonical_json(self.volatile.item(item))
        return matched

    def _digest_params(self, params: dict[str, Any]) -> bytes:
        if params != self._last_params:
            self._last_params, self._last_params_digest = params, _params_digest(params)
        return self._last_params_digest

    def _fold_history(self, texts: list[str]) -> bytes:
        """Fold a whole conversation (its items' canonical JSON), reusing the prefix it shares
        with the previous one.

        Without this a client that resends its history makes each turn cost its whole
        length, and a session the square of it. Items are compared by their canonical
        JSON, as the digests are (``==`` would take 1 and 1.0, or true and 1, as equal).
        """
        known = self._last_texts
        shared = 0
        limit = min(len(texts), len(known))
        while shared < limit and texts[shared] == known[shared]:
            shared += 1
        self._last_sent = []  # the items as sent are not known for these texts
        return self._fold_from(shared, texts)

    def _fold_from(self, shared: int, texts: list[str]) -> bytes:
        """Fold ``texts`` past the first ``shared`` (whose states are known), and keep them."""
        states = self._last_states[:shared]
        state = states[-1] if states else _ROOT
        for text in texts[shared:]:
            state = _fold_text(state, text)
            states.append(state)
        self._last_texts, self._last_states = texts, states
        return state

    def _fold_sent_history(self, items: list[Any]) -> bytes:
        """:meth:`_fold_history` for a request's items as sent, normalizing only the new ones.

        A client resending its history sends the old items as it sent them before: an item
        whose JSON as sent equals the one at its place in the previous request normalizes to
        the same text, so only the items past that shared prefix are normalized and written
        canonically (writing JSON is far cheaper than normalizing an item).
        """
        try:
            sent = [_AS_SENT.encode(item) for item in items]
        except (TypeError, ValueError, OverflowError):  # not JSON-shaped: the general path
            return self._fold_history(self._item_texts(normalize_input(items)))
        known, known_items = self._last_sent, self._last_items
        shared = 0
        limit = min(len(sent), len(known))
        # A NaN is written as null: where a null is written, the items must also be equal.
        while shared < limit and sent[shared] == known[shared]:
            if b"null" in sent[shared] and items[shared] != known_items[shared]:
                break
            shared += 1
        texts = self._last_texts[:shared] + [self._item_text(normalize_item(item)) for item in items[shared:]]
        fold = self._fold_from(shared, texts)
        self._last_sent, self._last_items = sent, items
        return fold

    def add(self, turn: Turn) -> int:
        """Index a turn (recorded earlier or just now) and return its position."""
        self._index_to(len(self.turns))
        position = len(self.turns)
        self.turns.append(turn)
        self._index(position)
        return position

    def _index(self, position: int) -> RequestKey:
        """Digest the turn at ``position`` (the next one not indexed) and return its key."""
        turn = self.turns[position]
        output = recorded_output(turn)
        self._learn_placeholders(turn, output)
        key = self.key_for(turn.request)
        self._keys.append(key)
        # A new list, never an append: copies of this index share the lists (see copy()).
        self._by_key[key] = [*self._by_key.get(key, ()), position]
        response_id = turn.response_id
        if response_id is not None:
            self._after[response_id] = _fold_texts(key.context, self._item_texts(output))
            # The last turn creating an id names it (known for every turn of a lazy index).
            if self._creator.get(response_id, -1) < position:
                self._creator[response_id] = position
        return key

    def copy(self) -> TurnIndex:
        """An index of the same turns with nothing played: what each test replaying a cassette starts from.

        Building an index digests every turn; a copy shares those digests (its dictionaries are
        new, their values immutable), so the tests and transports replaying one cassette build it once.
        """
        index = TurnIndex(ignore=self.ignore, allow_repeats=self.allow_repeats, volatile=self.volatile)
        index._volatile_texts = dict(self._volatile_texts)
        index.turns = list(self.turns)
        index._keys = list(self._keys)
        index._by_key = dict(self._by_key)
        index._after = dict(self._after)
        index._creator = dict(self._creator)
        index.placeholder_params = self.placeholder_params.copy()
        index.placeholder_items = self.placeholder_items.copy()
        index._has_redactions = self._has_redactions
        index._fill_items, index._fill_params = self._fill_items, self._fill_params
        return index

    def _learn_placeholders(self, turn: Turn, output: list[Any]) -> None:
        if not self._has_redactions:
            # Until a turn has a redacted part, no templates are needed, nor a record of the
            # plain units: one search of the turn's JSON text decides.
            if turn.redaction_free or REDACTED not in json.dumps([turn.request, output], ensure_ascii=False):
                return
            self._has_redactions = True
            for earlier in self.turns[:-1]:
                self._add_units(earlier, recorded_output(earlier))
        self._add_units(turn, output)

    def _add_units(self, turn: Turn, output: list[Any]) -> None:
        # Output items count too: a client resending its history sends them back, with
        # the secret the live answer had where the recording has the placeholder.
        self.placeholder_params.add(self.matched_params(turn.request))
        for item in [*normalize_input(turn.request.get("input")), *output]:
            self.placeholder_items.add(self.matched_item(item))
        self._fill_items, self._fill_params = bool(self.placeholder_items), bool(self.placeholder_params)

    # -- lookup -----------------------------------------------------------

    def lookup(self, request: Mapping[str, Any]) -> MatchResult:
        """Find the first not-yet-played turn recorded for ``request`` and mark it played."""
        parent = request.get("previous_response_id")
        if parent is not None and parent in self._creator:
            self._index_to(self._creator[parent] + 1)  # a lazy index reaches the parent's turn first
        key = self.key_for(request)
        candidates = self._by_key.get(key)
        while len(self._keys) < len(self.turns) and not any(
            self._played.get(position, 0) == 0 for position in candidates or ()
        ):
            self._index_until(key)
            candidates = self._by_key.get(key)
        if not candidates:
            if parent is not None and parent not in self._after:
                return MatchResult(
                    key,
                    reason=f"previous_response_id {parent!r} is not a response recorded in this cassette, "
                    "and no recorded turn continues it with this input",
                )
            return MatchResult(key, reason="no recorded turn has this request")
        for position in candidates:
            if self._played.get(position, 0) == 0:
                self._played[position] = 1
                return MatchResult(key, position)
        for position in candidates:
            if position in self._interrupted:
                self._interrupted.discard(position)
                self._played[position] += 1
                return MatchResult(key, position)
        if self.allow_repeats:
            last = candidates[-1]
            self._played[last] += 1
            return MatchResult(key, last)
        return MatchResult(
            key,
            reason="every recorded turn with this request was already played once "
            "(a recorded turn answers once; set allow_playback_repeats=True to reuse them)",
            exhausted=tuple(candidates),
        )

    def knows_response(self, response_id: str) -> bool:
        return response_id in self._creator

    def mark_played(self, position: int) -> None:
        self._played[position] = self._played.get(position, 0) + 1

    def mark_interrupted(self, position: int) -> None:
        """A played turn never reached the client whole (an injected fault).

        The client's retry sends the same request again. A cassette recorded with the
        fault holds that retry as a later turn with the same key, which must answer it (the
        conversation goes on from the retry's response); only when there is none is the
        interrupted turn played again.
        """
        self._interrupted.add(position)

    def played_count(self, position: int) -> int:
        return self._played.get(position, 0)

    def unplayed(self) -> list[int]:
        return [i for i in range(len(self.turns)) if self._played.get(i, 0) == 0]

    # -- expansion (misses and upstream rewrites only) ----------------------

    def _ancestors(self, request: Mapping[str, Any]) -> list[Turn] | None:
        """The recorded turns a request chains from, oldest first; None if a parent is unknown."""
        chain: list[Turn] = []
        parent = request.get("previous_response_id")
        while parent is not None:
            if parent not in self._creator or len(chain) > len(self.turns):  # unknown, or a cycle
                return None
            turn = self.turns[self._creator[parent]]
            chain.append(turn)
            parent = turn.request.get("previous_response_id")
        return chain[::-1]

    def effective_input(self, request: Mapping[str, Any]) -> list[Any] | None:
        """The full conversation a request stands for (normalized), or None if its parent is unknown.

        Costs a walk up the chain: used to explain misses and to rewrite a chained
        request for an upstream that never saw its parent, not on the hot path.
        """
        chain = self._ancestors(request)
        if chain is None:
            return None
        items: list[Any] = []
        for turn in chain:
            items += normalize_input(turn.request.get("input"))
            items += response_output(turn_response(turn))
        return items + normalize_input(request.get("input"))

    def raw_effective_input(self, request: Mapping[str, Any]) -> list[Any] | None:
        """Like :meth:`effective_input`, with items as recorded (to send to an upstream)."""
        chain = self._ancestors(request)
        if chain is None:
            return None
        items: list[Any] = []
        for turn in chain:
            items += _raw_input(turn.request.get("input"))
            output = (turn_response(turn) or {}).get("output") or []
            items += [_strip_output_item(item) for item in output]
        return items + _raw_input(request.get("input"))


def _is_prompt_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") == "message"
        and item.get("role")
        in (
            "user",
            "system",
            "developer",
        )
    )


def conversation_keys(
    turns: Sequence[Turn], ignore: Sequence[str] = (), volatile: VolatileRules = NO_RULES
) -> list[bytes]:
    """For each turn, a digest of the conversation it belongs to.

    A conversation is known by its parameters and its opening prompt: the leading
    user/system/developer messages of the turn's effective input. Model output (and so
    generated call ids) is left out, so re-recording a conversation gives it the same key.
    Volatile parts (a date in the prompt) are left out too, as matching leaves them out.
    """
    index = TurnIndex.build(turns, ignore, volatile=volatile)
    keys = []
    for turn in turns:
        items = index.effective_input(turn.request) or normalize_input(turn.request.get("input"))
        prompt = []
        for item in items:
            if not _is_prompt_item(item):
                break
            prompt.append(index.matched_item(item))
        keys.append(_fold(_params_digest(index.matched_params(turn.request)), prompt))
    return keys


def _raw_input(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or [])


def _strip_output_item(item: Any) -> Any:
    # Output items go back upstream as input items; ``status`` is not accepted on all of them.
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if k != "status" and v is not None}
    return item
