"""How a new recording joins the cassette already on disk (sans I/O).

The merge runs when the cassette is written, against the file as it is *then* (read
under the cassette's lock), not as it was when the test started: another process
(``pytest -n``) may have written the same cassette in between, and its turns must
survive. Each record mode keeps something different:

- ``once`` and ``new_episodes`` keep every turn on disk and append the new ones;
- ``all`` replaces the conversations recorded again (see :func:`conversation_keys`)
  and keeps the rest;
- ``rewrite`` drops what the test found on disk when it started, keeps what other
  processes wrote since, and then replaces conversations like ``all``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..cassette.model import Cassette, ConnectionRecord, Turn
from .match import conversation_keys
from .volatile import NO_RULES, VolatileRules

__all__ = ["MERGE_MODES", "Merged", "merge_recording"]

#: The record modes that write a cassette, each with its merge policy.
MERGE_MODES = ("once", "new_episodes", "all", "rewrite")


@dataclass(frozen=True)
class Merged:
    """The turns and connections of the cassette to write."""

    turns: tuple[Turn, ...]
    connections: tuple[ConnectionRecord, ...]


def merge_recording(
    mode: str,
    recorded: Sequence[Turn],
    recorded_connections: Sequence[ConnectionRecord],
    *,
    on_disk: Cassette | None,
    at_start: Cassette | None = None,
    ignore_fields: Sequence[str] = (),
    volatile: VolatileRules = NO_RULES,
) -> Merged:
    """Merge a test's recording into the cassette on disk, as record ``mode`` says.

    ``recorded`` turns refer to ``recorded_connections`` by id; they are renumbered after
    the connections kept from disk, so ids stay unique. ``at_start`` is the cassette the
    test found when it started (only ``rewrite`` uses it). Connections from disk that no
    kept turn uses are dropped; every recorded connection is kept.
    """
    if mode not in MERGE_MODES:
        raise ValueError(f"record mode {mode!r} writes no cassette; expected one of {', '.join(MERGE_MODES)}")
    old = list(on_disk.turns) if on_disk is not None else []
    if mode == "rewrite":
        # What the test found is replaced; what others wrote meanwhile is not its to drop.
        found = {_turn_key(turn) for turn in (at_start.turns if at_start is not None else ())}
        old = [turn for turn in old if _turn_key(turn) not in found]
    if mode in ("all", "rewrite") and old:
        # A conversation recorded again replaces its earlier recording (re-recording brings
        # new ids, so turns cannot be paired one by one); the rest are kept.
        renewed = set(conversation_keys(recorded, ignore_fields, volatile))
        old = [
            turn
            for turn, key in zip(old, conversation_keys(old, ignore_fields, volatile), strict=True)
            if key not in renewed
        ]
    disk_connections = on_disk.connections if on_disk is not None else ()
    used_old = {turn.connection for turn in old}
    kept_connections = [c for c in disk_connections if c.id in used_old]
    offset = max((*used_old, *(c.id for c in disk_connections)), default=-1) + 1
    new_turns = [dataclasses.replace(turn, connection=turn.connection + offset) for turn in recorded]
    new_connections = [dataclasses.replace(c, id=c.id + offset) for c in recorded_connections]
    return Merged((*old, *new_turns), (*kept_connections, *new_connections))


def _turn_key(turn: Turn) -> str:
    """A turn's identity for telling the same recorded turn apart from others."""
    return json.dumps(dataclasses.asdict(turn), sort_keys=True, default=str)
