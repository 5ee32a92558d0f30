"""Per-turn metrics from what the server observed (sans I/O: timestamps are passed in).

The server records a :class:`TurnTrace` per request: when it arrived complete, when its
terminal event left, its size, and which connection carried it. Everything else is
computed here, after the fact, so the turn path only takes timestamps.

**Overhead** is the client-side gap between the previous turn's terminal event leaving
the server and this turn's request arriving complete, minus the time the test spent in
``rws.tool(...)`` blocks. It holds the client's stream parsing, agent logic, request
building and serialization, and for HTTP any new connection. Over WebSocket the gap
runs from the latest terminal event the server sent on the same connection, on any
lane (while the server streams one lane the client is not idle on another), or from
the connection's opening for its first turn. Over HTTP it runs from the latest answer
of the test; the first HTTP turn of a test has no overhead (nothing to measure from).

**Resent** input is input the server already holds for this conversation (sent in an
earlier turn or produced as an earlier turn's output) that is sent again: the leading
items of the request that repeat the conversation so far, in order. The conversation
is the ``previous_response_id`` chain for a chained request, and otherwise the earlier
turn whose context (its input and output) the request continues furthest. Over
WebSocket with ``previous_response_id`` it should be zero; a loop that resends its
whole history shows every old item here, and a new message that merely repeats an
earlier one ("continue") does not count.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cassette.model import Transport, Turn
from .latency import ContextTokens, estimate_tokens, sent_items, text_length, turn_tokens
from .match import turn_response
from .normalize import canonical_json, normalize_input, normalize_item

if TYPE_CHECKING:
    from .faults import Injection


@dataclass
class TurnTrace:
    """What the server saw of one request (monotonic nanoseconds, this process's clock)."""

    transport: Transport
    connection: int
    lane: str | None
    arrived_ns: int
    request: dict[str, Any]
    request_bytes: int
    new_connection: bool
    #: When the connection carrying it was opened (WebSocket), for the first turn's overhead.
    connection_opened_ns: int | None = None
    #: Server-side cost of the WebSocket opening handshake that preceded this turn, if any.
    handshake_ns: int | None = None
    terminal_ns: int | None = None
    #: The output items of the response (as recorded), for resent-input accounting.
    output: list[Any] = field(default_factory=list)
    #: ``completed``, ``failed``, ``incomplete``, ``error``, ``miss`` ...
    outcome: str = "completed"
    #: The id of the response this turn produced, so chained turns find their context.
    response_id: str | None = None
    #: The injected faults that fired on it (``close(1011) after 3 events``), if any.
    fault: str | None = None
    #: Time an injected delay added to it: neither the client's overhead nor the server's.
    injected_delay_ns: int = 0
    #: While recording: the injection riding on the turn, until its recorded events are known.
    injection: Injection | None = None
    #: WebSocket: the request chains from a response held on its connection (the service's
    #: connection-local cache), so the service processes only what it sends.
    held: bool = False
    #: The recorded turn that answered it (replayed, or recorded now): its token counts.
    recorded: Turn | None = None


def finish_recorded(trace: TurnTrace, turn: Turn, at_ns: int) -> None:
    """Complete ``trace`` from the turn just recorded for it (its terminal event leaves now)."""
    trace.terminal_ns = at_ns
    trace.outcome = turn.outcome
    trace.response_id = turn.response_id
    trace.recorded = turn
    response = turn_response(turn) or {}
    output = response.get("output")
    trace.output = list(output) if isinstance(output, list) else []


@dataclass(frozen=True)
class ToolSpan:
    """Time the test spent inside ``rws.tool(name)``."""

    name: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class TurnMetrics:
    """Measured figures of one turn. Times in milliseconds; None where not defined."""

    index: int
    transport: Transport
    connection: int
    lane: str | None
    #: Client-side time before this request, minus tool time (see the module docs).
    overhead_ms: float | None
    #: The gap before tool time was taken out.
    gap_ms: float | None
    tool_ms: float
    #: Request arrived complete -> terminal event handed to the transport (the replayed upstream).
    upstream_ms: float | None
    #: Previous turn's end (or the connection's opening) -> this turn's terminal event.
    end_to_end_ms: float | None
    request_bytes: int
    input_items: int
    chained: bool
    resent_items: int
    resent_bytes: int
    new_connection: bool
    handshake_ms: float | None
    outcome: str
    #: When the request arrived and when its terminal event left, in ms from the test's first
    #: activity (its first connection opening or request): the axis of a waterfall.
    arrived_at_ms: float = 0.0
    ended_at_ms: float | None = None
    #: The injected faults that fired on this turn (``outcome`` is ``fault`` when one ended it).
    fault: str | None = None
    #: Latency an injected delay added; left out of ``upstream_ms`` and ``end_to_end_ms``.
    injected_delay_ms: float = 0.0
    #: Token figures for the latency model (None for a turn no recorded answer ended):
    #: the whole effective context (recorded usage, else estimated), the tokens of the input
    #: items the request sent, of those past what the conversation already holds, and of
    #: the output (reasoning included).
    input_tokens: int | None = None
    sent_tokens: int = 0
    new_tokens: int = 0
    output_tokens: int | None = None
    reasoning_tokens: int = 0
    #: WebSocket: chained from a response held on its connection (see :class:`TurnTrace`).
    held: bool = False


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 4)


def _overlap_ns(start: int, end: int, spans: Sequence[ToolSpan]) -> int:
    return sum(max(0, min(end, s.end_ns) - max(start, s.start_ns)) for s in spans)


def _digest(item: Any) -> tuple[bytes, int]:
    text = canonical_json(item).encode("utf-8")
    return hashlib.blake2b(text, digest_size=16).digest(), len(text)


def _shared(held: Sequence[tuple[bytes, int]], digests: Sequence[tuple[bytes, int]]) -> int:
    """How many leading items of a request repeat the conversation held so far."""
    count = 0
    for known, sent in zip(held, digests, strict=False):
        if known[0] != sent[0]:
            break
        count += 1
    return count


def compute_turn_metrics(
    traces: Sequence[TurnTrace], tools: Sequence[ToolSpan] = (), *, tokens: bool = True
) -> list[TurnMetrics]:
    """Metrics for each traced turn, in the order the requests arrived.

    ``tokens=False`` leaves the latency model's token figures out (``input_tokens`` and
    ``output_tokens`` None): counting them reads every turn's recorded answer, which a test
    that is not modeled does not need.
    """
    ordered = sorted(traces, key=lambda t: t.arrived_ns)
    origin = min(
        (t.connection_opened_ns if t.connection_opened_ns is not None else t.arrived_ns for t in ordered),
        default=0,
    )
    #: response id -> (the conversation after that response: digests of its items in order,
    #: how many of them are the conversation's opening input, before any model output)
    contexts: dict[str, tuple[list[tuple[bytes, int]], int]] = {}
    # Terminal times seen so far: per WebSocket connection, and for all HTTP answers.
    ends_by_connection: dict[int, list[int]] = {}
    http_ends: list[int] = []
    context_tokens = ContextTokens()  # conversation sizes, for turns without usage
    metrics: list[TurnMetrics] = []
    for index, trace in enumerate(ordered):
        # The latest answer that had left before this request arrived (turns on other lanes,
        # or parallel HTTP requests, may still be streaming and do not count).
        ends = ends_by_connection.get(trace.connection, []) if trace.transport == "ws" else http_ends
        start = max((e for e in ends if e <= trace.arrived_ns), default=None)
        if start is None and trace.transport == "ws":
            start = trace.connection_opened_ns
        gap = None if start is None else trace.arrived_ns - start
        tool = 0 if start is None else _overlap_ns(start, trace.arrived_ns, tools)
        overhead = None if gap is None else max(0, gap - tool)

        items = normalize_input(trace.request.get("input"))
        digests = [_digest(item) for item in items]
        parent = trace.request.get("previous_response_id")
        if isinstance(parent, str):
            # Chained: the server holds the parent's conversation; new items follow it.
            held, opening = contexts.get(parent, ([], 0))
            shared = _shared(held, digests)
            context = [*held, *digests]
        else:
            # Unchained: the conversation this request continues furthest, if it continues one.
            held, opening = max(contexts.values(), key=lambda c: _shared(c[0], digests), default=([], 0))
            shared = _shared(held, digests)
            if shared <= opening:
                # At most the opening input repeats: a new conversation, nothing resent.
                shared, opening = 0, len(digests)
            context = list(digests)
        resent_items = shared
        resent_bytes = sum(size for _, size in digests[:shared])
        figures = _token_figures(trace, resent_items, context_tokens) if tokens else {}
        context += [_digest(normalize_item(item)) for item in trace.output]
        contexts[trace.response_id or f"\x00turn{index}"] = (context, opening)

        end = trace.terminal_ns
        # An injected delay is the test's doing: out of the server's time and the turn's.
        served = None if end is None else end - trace.injected_delay_ns
        metrics.append(
            TurnMetrics(
                index=index,
                transport=trace.transport,
                connection=trace.connection,
                lane=trace.lane,
                overhead_ms=_ms(overhead),
                gap_ms=_ms(gap),
                tool_ms=_ms(tool) or 0.0,
                upstream_ms=None if served is None else _ms(max(0, served - trace.arrived_ns)),
                end_to_end_ms=None if (served is None or start is None) else _ms(max(0, served - start)),
                request_bytes=trace.request_bytes,
                input_items=len(items),
                chained=trace.request.get("previous_response_id") is not None,
                resent_items=resent_items,
                resent_bytes=resent_bytes,
                new_connection=trace.new_connection,
                handshake_ms=_ms(trace.handshake_ns),
                outcome=trace.outcome,
                arrived_at_ms=_ms(trace.arrived_ns - origin) or 0.0,
                ended_at_ms=None if end is None else _ms(end - origin),
                fault=trace.fault,
                injected_delay_ms=_ms(trace.injected_delay_ns) or 0.0,
                **figures,
            )
        )
        if end is not None:
            (
                ends_by_connection.setdefault(trace.connection, []) if trace.transport == "ws" else http_ends
            ).append(end)
    return metrics


#: Outcomes of turns whose answer did not reach the client as recorded.
_UNANSWERED = frozenset({"miss", "fault"})


def _token_figures(trace: TurnTrace, resent: int, contexts: ContextTokens) -> dict[str, Any]:
    """The latency model's figures of a turn (see :class:`TurnMetrics`), or none."""
    if trace.recorded is None or trace.outcome in _UNANSWERED:
        return {}
    recorded = turn_tokens(trace.recorded, per_event=False)
    figures = contexts.figures(trace.request, recorded, trace.response_id)
    return {
        "input_tokens": figures.input_tokens,
        "sent_tokens": figures.sent_tokens,
        "new_tokens": estimate_tokens(text_length(sent_items(trace.request)[resent:])),
        "output_tokens": recorded.output_tokens,
        "reasoning_tokens": recorded.reasoning_tokens,
        "held": trace.held,
    }


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation; None for no values."""
    data = sorted(values)
    if not data:
        return None
    position = (len(data) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return data[low] + (data[high] - data[low]) * (position - low)


def statistic(values: Sequence[float], name: str) -> float | None:
    """``median``, ``p95``, ``max`` or ``total`` of ``values`` (None when there are none)."""
    if not values:
        return None
    if name == "median":
        return percentile(values, 0.5)
    if name == "p95":
        return percentile(values, 0.95)
    if name == "max":
        return max(values)
    if name == "total":
        return float(sum(values))
    raise ValueError(name)
