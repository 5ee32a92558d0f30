"""The HTML report: one self-contained page (inline CSS and SVG, no scripts, no network).

Input is the JSON report document (:func:`.summary.report_document`). The page shows the
totals and the HTTP-vs-WebSocket ratios, then, per test, a waterfall of its turns for each
transport on a time axis shared within the test (so the two runs compare by eye), the
budget violations, and a table of the per-turn figures.

Rendering is pure and deterministic (no clock, no I/O); every piece of text from the
document is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.metrics import statistic

__all__ = ["render_html"]

_DASH = "\u2013"
_TRANSPORT_LABELS = {"http": "HTTP + SSE", "ws": "WebSocket"}
_TRANSPORT_ORDER = {"http": 0, "ws": 1}
_COMPLETED = frozenset({"completed", "ok", "done"})

# -- waterfall geometry (SVG user units; the SVG scales to the page width) -----------------
_WIDTH = 1120.0
_LABEL_W = 150.0
_MARKER_W = 84.0
_VALUE_W = 92.0
_PLOT_X0 = _LABEL_W + _MARKER_W
_PLOT_X1 = _WIDTH - _VALUE_W - 12.0
_AXIS_H = 30.0
_ROW_H = 24.0
_BAR_H = 12.0
_BOTTOM = 8.0
_MIN_SEGMENT = 1.5
_MIN_MISS = 8.0


# -- small helpers ---------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _esc_id(value: object) -> str:
    """A test id, escaped, with line-break opportunities after its path and name separators."""
    text = _esc(value)
    return text.replace("/", "/<wbr>").replace("::", "::<wbr>").replace("[", "<wbr>[")


def _num(value: object) -> float | None:
    """A finite number, or None (bools, strings, NaN and missing values are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: object) -> int:
    number = _num(value)
    return int(number) if number is not None else 0


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: object) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _text(value: object, default: str = "") -> str:
    return default if value is None else str(value)


def _fmt_ms(value: object, digits: int = 2) -> str:
    number = _num(value)
    return _DASH if number is None else f"{number:,.{digits}f}"


def _fmt_ms_unit(value: object, digits: int = 2) -> str:
    """``1.23 ms``, or a dash without a unit when there is no figure."""
    text = _fmt_ms(value, digits)
    return text if text == _DASH else f"{text} ms"


def _fmt_count(value: object) -> str:
    number = _num(value)
    return _DASH if number is None else f"{number:,.0f}"


def _fmt_bytes(value: object) -> str:
    number = _num(value)
    if number is None:
        return _DASH
    if abs(number) < 1024:
        return f"{number:,.0f} B"
    if abs(number) < 1024 * 1024:
        return f"{number / 1024:,.1f} KiB"
    return f"{number / (1024 * 1024):,.2f} MiB"


def _fmt_ratio(value: object) -> str:
    number = _num(value)
    return _DASH if number is None else f"{number:,.2f}\u00d7"


def _fmt_share(value: object) -> str:
    number = _num(value)
    return _DASH if number is None else f"{number * 100:.1f}%"


def _transport_label(transport: str) -> str:
    return _TRANSPORT_LABELS.get(transport, transport or "?")


def _f(value: float) -> str:
    """An SVG coordinate."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# -- turns -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    kind: str  # handshake | overhead | tool | upstream | failed | miss
    start: float
    end: float
    title: str


@dataclass
class _TurnView:
    """One turn, with what the waterfall draws of it (times in ms on the test's axis)."""

    index: int
    connection: str
    lane: str | None
    outcome: str
    new_connection: bool
    chained: bool
    resent_items: int
    resent_bytes: int
    overhead: float | None
    #: The turn's figures as the document has them (for the table).
    source: Mapping[str, Any]
    segments: list[_Segment] = field(default_factory=list)
    #: Where the connection carrying it opened (first turn of a new connection), if drawn.
    connection_at: float | None = None
    #: Where the request arrived; an unterminated turn is drawn as a stub from here.
    arrived: float = 0.0
    terminated: bool = True
    title: str = ""

    @property
    def extent(self) -> tuple[float, float]:
        points = [self.arrived]
        for segment in self.segments:
            points += [segment.start, segment.end]
        if self.connection_at is not None:
            points.append(self.connection_at)
        return min(points), max(points)


def _turn_view(turn: Mapping[str, Any], position: int, transport: str) -> _TurnView:
    index = _int(turn.get("index")) if _num(turn.get("index")) is not None else position
    label = f"Turn {index}"
    arrived = _num(turn.get("arrived_at_ms")) or 0.0
    ended = _num(turn.get("ended_at_ms"))
    gap = _num(turn.get("gap_ms"))
    tool = max(0.0, _num(turn.get("tool_ms")) or 0.0)
    overhead = _num(turn.get("overhead_ms"))
    upstream = _num(turn.get("upstream_ms"))
    handshake = _num(turn.get("handshake_ms"))
    outcome = _text(turn.get("outcome"), "completed")
    new_connection = bool(turn.get("new_connection"))
    lane = turn.get("lane")
    view = _TurnView(
        index=index,
        connection=_text(turn.get("connection"), "?"),
        lane=None if lane is None else str(lane),
        outcome=outcome,
        new_connection=new_connection,
        chained=bool(turn.get("chained")),
        resent_items=_int(turn.get("resent_items")),
        resent_bytes=_int(turn.get("resent_bytes")),
        overhead=overhead,
        source=turn,
        arrived=arrived,
    )

    gap_start = None if gap is None else arrived - gap
    if gap is not None and gap_start is not None and gap > 0:
        tool_part = min(tool, gap)
        client_part = gap - tool_part
        if client_part > 0:
            view.segments.append(
                _Segment(
                    "overhead",
                    gap_start,
                    gap_start + client_part,
                    f"{label} \u00b7 client overhead {_fmt_ms(overhead if overhead is not None else client_part, 3)} ms\n"
                    f"gap {_fmt_ms(gap, 3)} ms \u2212 tool {_fmt_ms(tool, 3)} ms\n"
                    f"{_fmt_ms(gap_start, 3)} \u2192 {_fmt_ms(gap_start + client_part, 3)} ms",
                )
            )
        if tool_part > 0:
            view.segments.append(
                _Segment(
                    "tool",
                    arrived - tool_part,
                    arrived,
                    f"{label} \u00b7 tool time {_fmt_ms(tool, 3)} ms (rws.tool blocks, not overhead)\n"
                    f"within the {_fmt_ms(gap, 3)} ms gap before the request",
                )
            )
    if handshake is not None and handshake > 0:
        handshake_end = gap_start if gap_start is not None else arrived
        view.segments.insert(
            0,
            _Segment(
                "handshake",
                handshake_end - handshake,
                handshake_end,
                f"{label} \u00b7 connection setup / handshake {_fmt_ms(handshake, 3)} ms\n"
                f"connection {view.connection}"
                f" {_fmt_ms(handshake_end - handshake, 3)} \u2192 {_fmt_ms(handshake_end, 3)} ms",
            ),
        )
    if new_connection:
        if handshake is not None and handshake > 0:
            view.connection_at = (gap_start if gap_start is not None else arrived) - handshake
        elif transport == "ws" and gap_start is not None:
            view.connection_at = gap_start
        else:
            view.connection_at = arrived

    kind = "upstream" if outcome in _COMPLETED else ("miss" if outcome == "miss" else "failed")
    what = {
        "upstream": "request \u2192 terminal event (replayed upstream)",
        "miss": "cassette MISS: no recorded turn matched",
        "failed": f"request \u2192 terminal event, outcome {outcome}",
    }[kind]
    if ended is not None and ended >= arrived:
        view.segments.append(
            _Segment(
                kind,
                arrived,
                ended,
                f"{label} \u00b7 {what}\n{_fmt_ms(upstream if upstream is not None else ended - arrived, 3)} ms"
                f" ({_fmt_ms(arrived, 3)} \u2192 {_fmt_ms(ended, 3)} ms)",
            )
        )
    else:
        view.terminated = False

    lane_text = f", lane {view.lane}" if view.lane is not None else ""
    facts = [
        f"{label} over {_transport_label(transport)}: connection {view.connection}{lane_text},"
        f" outcome {outcome}",
        f"overhead {_fmt_ms_unit(overhead, 3)} (gap {_fmt_ms_unit(gap, 3)}, tool {_fmt_ms_unit(tool, 3)})",
        f"upstream {_fmt_ms_unit(upstream, 3)}, end to end {_fmt_ms_unit(turn.get('end_to_end_ms'), 3)}",
        f"request {_fmt_count(turn.get('request_bytes'))} bytes, {_fmt_count(turn.get('input_items'))} input items",
    ]
    if new_connection:
        facts.append(
            "new connection" + ("" if handshake is None else f", handshake {_fmt_ms(handshake, 3)} ms")
        )
    if view.chained:
        facts.append("chained with previous_response_id")
    if view.resent_items:
        facts.append(f"resent {view.resent_items} items ({view.resent_bytes:,} bytes)")
    view.title = "\n".join(facts)
    return view


def _turn_views(summary: Mapping[str, Any]) -> list[_TurnView]:
    transport = _text(summary.get("transport"))
    turns = [t for t in _seq(summary.get("turn_metrics")) if isinstance(t, Mapping)]
    views = [_turn_view(turn, position, transport) for position, turn in enumerate(turns)]
    return sorted(views, key=lambda v: v.index)


# -- the time axis ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    low: float
    high: float
    step: float

    @classmethod
    def spanning(cls, low: float, high: float) -> _Axis:
        """From ``low`` (or 0) to ``high``, with 1-2-2.5-5 ticks; a whole step is not added either side."""
        low, high = min(low, 0.0), max(high, 0.0)
        if high - low <= 0:
            high = low + 1.0
        raw = (high - low) / 8
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
        # Round the end up to a tick when that is close, so the last label sits at the edge.
        rounded = math.ceil(high / step) * step
        high = rounded if rounded - high <= 0.35 * step else high + 0.02 * (high - low)
        return cls(low, high, step)

    def x(self, ms: float) -> float:
        return _PLOT_X0 + (ms - self.low) / (self.high - self.low) * (_PLOT_X1 - _PLOT_X0)

    def ticks(self) -> list[float]:
        first = math.ceil(self.low / self.step - 1e-9)
        last = math.floor(self.high / self.step + 1e-9)
        return [i * self.step for i in range(first, last + 1)]

    def label(self, ms: float) -> str:
        decimals = 0 if self.step >= 1 else max(0, -math.floor(math.log10(self.step)) + 1)
        text = f"{ms:,.{decimals}f}"
        if decimals:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text


def _group_axis(views: Sequence[Sequence[_TurnView]]) -> _Axis:
    lows, highs = [0.0], [0.0]
    for run in views:
        for view in run:
            low, high = view.extent
            lows.append(low)
            highs.append(high)
    return _Axis.spanning(min(lows), max(highs))


# -- the waterfall SVG -----------------------------------------------------------------------


def _waterfall(summary: Mapping[str, Any], views: Sequence[_TurnView], axis: _Axis, uid: str) -> str:
    transport = _text(summary.get("transport"))
    rows = len(views)
    aria = (
        f"Waterfall of {rows} turn{'s' if rows != 1 else ''} over {_transport_label(transport)}"
        f" for {_text(summary.get('nodeid'))}"
    )
    if not views:
        height = 56.0
        return (
            f'<svg class="waterfall" role="img" aria-label="{_esc(aria)}" viewBox="0 0 {_f(_WIDTH)} {_f(height)}"'
            ' xmlns="http://www.w3.org/2000/svg">'
            f'<text class="empty" x="{_f(_WIDTH / 2)}" y="32" text-anchor="middle">'
            "No turns were measured in this run.</text></svg>"
        )
    height = _AXIS_H + rows * _ROW_H + _BOTTOM
    plot_top, plot_bottom = _AXIS_H - 4, _AXIS_H + rows * _ROW_H
    out = [
        f'<svg class="waterfall" role="img" aria-label="{_esc(aria)}" viewBox="0 0 {_f(_WIDTH)} {_f(height)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(aria)}</title>",
        "<defs>"
        f'<pattern id="{uid}-miss" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)">'
        '<rect class="miss-bg" width="6" height="6"/><rect class="miss-fg" width="3" height="6"/></pattern>'
        "</defs>",
    ]
    # Row backgrounds: shaded by connection (and lane), so the turns each one carried stand together.
    shade = False
    previous: tuple[str, str | None] | None = None
    for row, view in enumerate(views):
        key = (view.connection, view.lane)
        if previous is not None and key != previous:
            shade = not shade
        previous = key
        y = _AXIS_H + row * _ROW_H
        out.append(
            f'<rect class="row{" alt" if shade else ""}" x="0" y="{_f(y)}" width="{_f(_WIDTH)}" height="{_f(_ROW_H)}">'
            f"<title>{_esc(view.title)}</title></rect>"
        )
    # Axis: grid lines and tick labels.
    out.append(
        f'<text class="axis-title" x="8" y="18">time, ms</text>'
        f'<text class="axis-title" x="{_f(_WIDTH - 8)}" y="18" text-anchor="end">overhead ms</text>'
    )
    for tick in axis.ticks():
        x = axis.x(tick)
        zero = " zero" if abs(tick) < axis.step / 1e6 else ""
        out.append(
            f'<line class="grid{zero}" x1="{_f(x)}" y1="{_f(plot_top)}" x2="{_f(x)}" y2="{_f(plot_bottom)}"/>'
            f'<text class="tick" x="{_f(x)}" y="18" text-anchor="middle">{_esc(axis.label(tick))}</text>'
        )
    # Turns.
    for row, view in enumerate(views):
        top = _AXIS_H + row * _ROW_H
        mid = top + _ROW_H / 2
        bar_y = mid - _BAR_H / 2
        lane = f" \u00b7 {_shorten(view.lane, 14)}" if view.lane is not None else ""
        out.append(
            f'<text class="label" x="8" y="{_f(mid + 4)}"><tspan class="turn">#{view.index}</tspan>'
            f'<tspan class="conn" dx="6">conn {_esc(view.connection)}{_esc(lane)}</tspan></text>'
        )
        # Markers column: new connection, chained, resent.
        mx = _LABEL_W + 8
        if view.new_connection:
            out.append(
                f'<path class="mk-new" d="M{_f(mx)} {_f(mid - 5)} L{_f(mx + 10)} {_f(mid - 5)} L{_f(mx + 5)} {_f(mid + 5)} Z">'
                "<title>New connection</title></path>"
            )
        if view.chained:
            cx = mx + 22
            out.append(
                f'<g class="mk-chain"><title>Chained: previous_response_id</title>'
                f'<rect x="{_f(cx - 5)}" y="{_f(mid - 3.5)}" width="8" height="7" rx="3.5"/>'
                f'<rect x="{_f(cx + 1)}" y="{_f(mid - 3.5)}" width="8" height="7" rx="3.5"/></g>'
            )
        if view.resent_items:
            text = str(view.resent_items) if view.resent_items < 1000 else "999+"
            width = 12 + 6.5 * len(text)
            rx = mx + 38
            out.append(
                f'<g class="mk-resent"><title>Resent {view.resent_items} items ({view.resent_bytes:,} bytes)'
                "</title>"
                f'<rect x="{_f(rx)}" y="{_f(mid - 7)}" width="{_f(width)}" height="14" rx="7"/>'
                f'<text x="{_f(rx + width / 2)}" y="{_f(mid + 3.5)}" text-anchor="middle">{_esc(text)}</text></g>'
            )
        if view.connection_at is not None:
            x = axis.x(view.connection_at)
            out.append(
                f'<line class="conn-open" x1="{_f(x)}" y1="{_f(top + 2)}" x2="{_f(x)}" y2="{_f(top + _ROW_H - 2)}">'
                f"<title>Connection {_esc(view.connection)} opens</title></line>"
            )
        for segment in view.segments:
            x0, x1 = axis.x(segment.start), axis.x(segment.end)
            miss = segment.kind == "miss"
            width = max(x1 - x0, _MIN_MISS if miss else _MIN_SEGMENT)
            fill = f' fill="url(#{uid}-miss)"' if miss else ""
            out.append(
                f'<rect class="seg {segment.kind}" x="{_f(x0)}" y="{_f(bar_y)}" width="{_f(width)}"'
                f' height="{_f(_BAR_H)}" rx="2"{fill}><title>{_esc(segment.title)}</title></rect>'
            )
            if miss:
                out.append(
                    f'<text class="miss-label" x="{_f(x0 + width + 5)}" y="{_f(mid + 4)}">MISS'
                    f"<title>{_esc(segment.title)}</title></text>"
                )
        if not view.terminated:
            x = axis.x(view.arrived)
            miss = view.outcome == "miss"
            stub = _shorten("no end" if view.outcome in _COMPLETED else view.outcome, 12)
            # Drawn to the right of the arrival, or to its left near the plot's right edge.
            d = -1 if x > _PLOT_X1 - 110 else 1
            anchor = ' text-anchor="end"' if d < 0 else ""
            what = (
                "cassette MISS: no recorded turn matched" if miss else f"no terminal event ({view.outcome})"
            )
            out.append(
                f'<g class="{"stub miss" if miss else "stub"}"><title>Turn {view.index} \u00b7 {_esc(what)}'
                f" (request arrived at {_fmt_ms(view.arrived, 3)} ms)</title>"
                f'<line x1="{_f(x)}" y1="{_f(mid)}" x2="{_f(x + 18 * d)}" y2="{_f(mid)}"/>'
                f'<path d="M{_f(x + 20 * d)} {_f(mid - 4)} l{_f(8 * d)} 8 M{_f(x + 28 * d)} {_f(mid - 4)}'
                f' l{_f(-8 * d)} 8"/><text x="{_f(x + 34 * d)}" y="{_f(mid + 4)}"{anchor}>'
                f"{'miss' if miss else _esc(stub)}</text></g>"
            )
        out.append(
            f'<text class="value" x="{_f(_WIDTH - 8)}" y="{_f(mid + 4)}" text-anchor="end">'
            f"{_esc(_fmt_ms(view.overhead))}</text>"
        )
    out.append("</svg>")
    return "".join(out)


# -- the latency model's timelines ----------------------------------------------------------

_MODEL_ROW_H = 26.0
_MODEL_BAR_H = 14.0


def _model_rows(projection: Mapping[str, Any]) -> list[tuple[str, str, list[tuple[float, float, str]]]]:
    """(transport, label, segments) per transport: each turn's service part, then its inference."""
    played = _text(projection.get("played"))
    turns = [t for t in _seq(projection.get("turns")) if isinstance(t, Mapping)]
    rows = []
    for transport in ("http", "ws"):
        segments: list[tuple[float, float, str]] = []
        for turn in turns:
            total = _num(turn.get(f"{transport}_ms")) or 0.0
            service = min(total, _num(turn.get(f"{transport}_service_ms")) or 0.0)
            tokens = turn.get("input_tokens") if transport == "http" else turn.get("ws_input_tokens")
            held = transport == "ws" and bool(turn.get("held"))
            title = (
                f"Turn {_int(turn.get('index'))} \u00b7 {_transport_label(transport)}"
                f"{' (projected)' if transport != played else ''}\n"
                f"service {_fmt_ms(service, 1)} ms for {_fmt_count(tokens)} input tokens"
                f"{' (chained on its connection: only what it sent)' if held else ''}\n"
                f"inference {_fmt_ms(total - service, 1)} ms ({_fmt_count(turn.get('output_tokens'))} output tokens)"
            )
            segments.append((service, total - service, title))
        label = _transport_label(transport) + ("" if transport == played else " *")
        rows.append((transport, label, segments))
    return rows


def _model_block(projection: Mapping[str, Any], uid: str) -> str:
    """Both transports' modeled timelines on one scale, side by side, with the gain."""
    http_ms, ws_ms = _num(projection.get("http_ms")), _num(projection.get("ws_ms"))
    if http_ms is None or ws_ms is None:
        return ""
    model = _map(projection.get("model"))
    gain = _num(projection.get("gain"))
    played = _text(projection.get("played"))
    other = "ws" if played == "http" else "http"
    axis = _Axis.spanning(0.0, max(http_ms, ws_ms))
    rows = _model_rows(projection)
    height = _AXIS_H + len(rows) * _MODEL_ROW_H + _BOTTOM
    aria = f"Modeled service time over HTTP and WebSocket, gain {_fmt_share(gain)}"
    out = [
        f'<svg class="waterfall model" role="img" aria-label="{_esc(aria)}" viewBox="0 0 {_f(_WIDTH)} {_f(height)}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{_esc(aria)}</title>',
        '<text class="axis-title" x="8" y="18">modeled, ms</text>',
    ]
    for tick in axis.ticks():
        x = axis.x(tick)
        out.append(
            f'<line class="grid" x1="{_f(x)}" y1="{_f(_AXIS_H - 4)}" x2="{_f(x)}" y2="{_f(height - _BOTTOM)}"/>'
            f'<text class="tick" x="{_f(x)}" y="18" text-anchor="middle">{_esc(axis.label(tick))}</text>'
        )
    for row, (transport, label, segments) in enumerate(rows):
        mid = _AXIS_H + row * _MODEL_ROW_H + _MODEL_ROW_H / 2
        y = mid - _MODEL_BAR_H / 2
        out.append(f'<text class="label" x="8" y="{_f(mid + 4)}">{_esc(label)}</text>')
        at = 0.0
        for turn, (service, inference, title) in enumerate(segments):
            shade = " alt" if turn % 2 else ""
            for kind, width in (("service", service), ("inference", inference)):
                if width > 0:
                    x0, x1 = axis.x(at), axis.x(at + width)
                    out.append(
                        f'<rect class="seg {kind}{shade}" x="{_f(x0)}" y="{_f(y)}" width="{_f(max(x1 - x0, 0.5))}"'
                        f' height="{_f(_MODEL_BAR_H)}"><title>{_esc(title)}</title></rect>'
                    )
                at += width
        total = http_ms if transport == "http" else ws_ms
        out.append(
            f'<text class="value" x="{_f(_WIDTH - 8)}" y="{_f(mid + 4)}" text-anchor="end">'
            f"{_esc(_fmt_ms(total, 0))} ms</text>"
        )
    out.append("</svg>")
    verdict = (
        f"WebSocket mode saves {_fmt_share(gain)} of the HTTP time"
        if gain is not None and gain >= 0
        else f"WebSocket mode is {_fmt_share(-gain if gain is not None else None)} slower"
    )
    return (
        f'<div class="model" id="{uid}-model"><div class="model-head"><strong>{_esc(verdict)}</strong>'
        f'<span class="gain">{_esc(_fmt_ratio(_num(projection.get("ratio"))))} WebSocket/HTTP</span>'
        f'<span class="muted">latency model {_esc(_text(model.get("name"), "?"))}: '
        f"{_esc(_fmt_ms(model.get('ttft_ms'), 0))} ms to first token, {_esc(_fmt_count(model.get('tokens_per_s')))} tok/s;"
        f" * {_esc(_transport_label(other))} projected from this {_esc(_transport_label(played))} run</span></div>"
        f"{''.join(out)}</div>"
    )


# -- tables and blocks -----------------------------------------------------------------------


def _turn_table(views: Sequence[_TurnView]) -> str:
    head = (
        "<thead><tr><th>turn</th><th>conn</th><th>new conn</th><th>chained</th><th>bytes</th><th>items</th>"
        "<th>resent</th><th>overhead ms</th><th>tool ms</th><th>upstream ms</th><th>e2e ms</th>"
        "<th>outcome</th></tr></thead>"
    )
    body = []
    for view in views:
        turn = view.source
        conn = view.connection + ("" if view.lane is None else f" \u00b7 {view.lane}")
        handshake = _num(turn.get("handshake_ms"))
        new = (
            ("yes" + ("" if handshake is None else f" ({_fmt_ms(handshake)} ms)"))
            if view.new_connection
            else ""
        )
        resent = (
            f"{view.resent_items} ({_fmt_bytes(view.resent_bytes)})"
            if view.resent_items or view.resent_bytes
            else "0"
        )
        outcome_class = (
            "" if view.outcome in _COMPLETED else (" miss" if view.outcome == "miss" else " failed")
        )
        body.append(
            f'<tr class="{"bad" if outcome_class else ""}">'
            f'<td class="num">{view.index}</td><td>{_esc(conn)}</td><td>{_esc(new)}</td>'
            f"<td>{'yes' if view.chained else ''}</td>"
            f'<td class="num">{_esc(_fmt_count(turn.get("request_bytes")))}</td>'
            f'<td class="num">{_esc(_fmt_count(turn.get("input_items")))}</td>'
            f'<td class="num{" warn" if view.resent_items else ""}">{_esc(resent)}</td>'
            f'<td class="num strong">{_esc(_fmt_ms(view.overhead))}</td>'
            f'<td class="num">{_esc(_fmt_ms(turn.get("tool_ms")))}</td>'
            f'<td class="num">{_esc(_fmt_ms(turn.get("upstream_ms")))}</td>'
            f'<td class="num">{_esc(_fmt_ms(turn.get("end_to_end_ms")))}</td>'
            f'<td><span class="outcome{outcome_class}">{_esc(view.outcome)}</span>{_fault_note(turn)}</td></tr>'
        )
    if not body:
        body.append('<tr><td colspan="12" class="muted">No turns.</td></tr>')
    return (
        '<details class="turns" open><summary>Per-turn figures</summary>'
        f'<div class="scroll"><table class="data">{head}<tbody>{"".join(body)}</tbody></table></div></details>'
    )


def _stat(label: str, value: str, extra: str = "") -> str:
    return f'<div class="stat{extra}"><span class="k">{_esc(label)}</span><span class="v">{_esc(value)}</span></div>'


def _fault_note(turn: Mapping[str, Any]) -> str:
    """The injected fault that touched a turn, after its outcome (nothing for other turns)."""
    fault = turn.get("fault")
    if not isinstance(fault, str):
        return ""
    delay = _num(turn.get("injected_delay_ms"))
    extra = f", +{_fmt_ms(delay)} ms injected" if delay else ""
    return f' <span class="muted">injected: {_esc(fault)}{_esc(extra)}</span>'


def _outcome_badge(outcome: str) -> str:
    kind = "ok" if outcome == "passed" else ("skip" if outcome in ("skipped", "xfailed") else "bad")
    return f'<span class="badge {kind}">{_esc(outcome)}</span>'


def _run_block(summary: Mapping[str, Any], views: Sequence[_TurnView], axis: _Axis, uid: str) -> str:
    transport = _text(summary.get("transport"))
    overhead = _map(summary.get("overhead_ms"))
    end_to_end = _map(summary.get("end_to_end_ms"))
    request_bytes = _map(summary.get("request_bytes"))
    violations = [str(v) for v in _seq(summary.get("budget_violations"))]
    stats = "".join(
        [
            _stat("turns", _fmt_count(summary.get("turns", len(views)))),
            _stat("connections", _fmt_count(summary.get("connections"))),
            _stat("handshakes", _fmt_count(summary.get("handshakes"))),
            _stat(
                "overhead median / p95 / max",
                (
                    f"{_fmt_ms(overhead.get('median'))} / {_fmt_ms(overhead.get('p95'))}"
                    f" / {_fmt_ms(overhead.get('max'))} ms"
                )
                if _num(overhead.get("median")) is not None
                else _DASH,
                " key",
            ),
            _stat("end to end total", _fmt_ms_unit(end_to_end.get("total"))),
            _stat("overhead share", _fmt_share(summary.get("overhead_share"))),
            _stat("tool", _fmt_ms_unit(summary.get("tool_ms"))),
            _stat(
                "request bytes mean / total",
                f"{_fmt_bytes(request_bytes.get('mean'))} / {_fmt_bytes(request_bytes.get('total'))}",
            ),
            _stat(
                "resent",
                f"{_fmt_count(summary.get('resent_items'))} items, {_fmt_bytes(summary.get('resent_bytes'))}",
                " warn" if _int(summary.get("resent_items")) else "",
            ),
        ]
    )
    violation_block = ""
    if violations:
        items = "".join(f"<li>{_esc(v)}</li>" for v in violations)
        violation_block = (
            f'<div class="violations" role="alert"><strong>Budget exceeded'
            f" ({len(violations)})</strong><ul>{items}</ul></div>"
        )
    return (
        f'<article class="run t-{_esc(transport)}" id="{uid}">'
        f'<header class="run-head"><span class="transport t-{_esc(transport)}">{_esc(_transport_label(transport))}</span>'
        f"{_outcome_badge(_text(summary.get('outcome'), '?'))}"
        f'<code class="nodeid">{_esc_id(_text(summary.get("nodeid")))}</code></header>'
        f'<div class="stats">{stats}</div>'
        f"{_model_block(_map(summary.get('projection')), uid) if summary.get('projection') else ''}"
        f"{_waterfall(summary, views, axis, uid)}"
        f"{violation_block}"
        f"{_turn_table(views)}"
        "</article>"
    )


_LEGEND = (
    '<div class="legend" aria-label="Legend">'
    '<span><i class="sw handshake"></i>connection setup / handshake</span>'
    '<span><i class="sw overhead"></i>client overhead (gap minus tool time)</span>'
    '<span><i class="sw tool"></i>tool time (rws.tool)</span>'
    '<span><i class="sw upstream"></i>request \u2192 terminal event (replayed upstream)</span>'
    '<span><i class="sw failed"></i>failed / incomplete / error</span>'
    '<span><i class="sw miss"></i>cassette miss</span>'
    '<span><i class="mk new"></i>new connection</span>'
    '<span><i class="mk chain"></i>chained (previous_response_id)</span>'
    '<span><i class="mk resent">n</i>resent input items</span>'
    "</div>"
)


def _median_overhead(tests: Sequence[Mapping[str, Any]], transport: str) -> float | None:
    values = [
        v
        for s in tests
        if s.get("transport") == transport
        for t in _seq(s.get("turn_metrics"))
        if isinstance(t, Mapping) and (v := _num(t.get("overhead_ms"))) is not None
    ]
    return statistic(values, "median")


def _header_cards(tests: Sequence[Mapping[str, Any]]) -> str:
    names = {_text(s.get("test")) for s in tests}
    transports = sorted(
        {_text(s.get("transport")) for s in tests}, key=lambda t: (_TRANSPORT_ORDER.get(t, 9), t)
    )
    turns = sum(_int(s.get("turns")) for s in tests)
    violations = sum(len(_seq(s.get("budget_violations"))) for s in tests)
    misses = sum(
        1
        for s in tests
        for t in _seq(s.get("turn_metrics"))
        if isinstance(t, Mapping) and t.get("outcome") == "miss"
    )
    cards = [
        ("tests", f"{len(names):,}", f"{len(tests):,} run{'s' if len(tests) != 1 else ''}", ""),
        ("turns", f"{turns:,}", "requests measured", ""),
    ]
    for transport in transports:
        cards.append(
            (
                f"median overhead \u00b7 {_transport_label(transport)}",
                _fmt_ms_unit(_median_overhead(tests, transport)),
                "per turn, over all its turns",
                "",
            )
        )
    cards.append(
        ("budget violations", f"{violations:,}", "limits exceeded", " bad" if violations else " good")
    )
    if misses:
        cards.append(("cassette misses", f"{misses:,}", "turns with no recording", " bad"))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card{cls}"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div>'
            f'<div class="sub">{_esc(sub)}</div></div>'
            for k, v, sub, cls in cards
        )
        + "</div>"
    )


def _comparisons(
    document: Mapping[str, Any], tests: Sequence[Mapping[str, Any]], anchors: Mapping[str, str]
) -> str:
    pairs = [p for p in _seq(document.get("comparisons")) if isinstance(p, Mapping)]
    if not pairs:
        return (
            '<section class="panel"><h2>HTTP vs WebSocket</h2>'
            '<p class="muted">No test ran over both transports, so there is nothing to compare.</p></section>'
        )
    runs = {(_text(s.get("test")), _text(s.get("transport"))): s for s in tests}

    def figure(test: str, transport: str, key: str, stat: str) -> float | None:
        return _num(_map(runs.get((test, transport), {}).get(key)).get(stat))

    def ratio_cell(value: object) -> str:
        number = _num(value)
        cls = (
            ""
            if number is None
            else (" better-ws" if number > 1.05 else (" better-http" if number < 0.95 else ""))
        )
        return f'<td class="num ratio{cls}">{_esc(_fmt_ratio(value))}</td>'

    rows = []
    for pair in pairs:
        test = _text(pair.get("test"))
        anchor = anchors.get(test)
        name = f'<a href="#{anchor}">{_esc_id(test)}</a>' if anchor else _esc_id(test)
        rows.append(
            f'<tr><td class="test">{name}</td>'
            f'<td class="num">{_esc(_fmt_ms(figure(test, "http", "overhead_ms", "median")))}</td>'
            f'<td class="num">{_esc(_fmt_ms(figure(test, "ws", "overhead_ms", "median")))}</td>'
            f"{ratio_cell(pair.get('overhead_median_ratio'))}"
            f'<td class="num">{_esc(_fmt_ms(figure(test, "http", "end_to_end_ms", "total")))}</td>'
            f'<td class="num">{_esc(_fmt_ms(figure(test, "ws", "end_to_end_ms", "total")))}</td>'
            f"{ratio_cell(pair.get('end_to_end_total_ratio'))}"
            f'<td class="num">{_esc(_fmt_bytes(figure(test, "http", "request_bytes", "total")))}</td>'
            f'<td class="num">{_esc(_fmt_bytes(figure(test, "ws", "request_bytes", "total")))}</td>'
            f"{ratio_cell(pair.get('request_bytes_ratio'))}</tr>"
        )
    return (
        '<section class="panel"><h2>HTTP vs WebSocket</h2>'
        '<p class="muted">Ratio = HTTP \u00f7 WebSocket: above 1\u00d7 HTTP took more (time or bytes) than'
        " WebSocket for the same test.</p>"
        '<div class="scroll"><table class="data compare"><thead>'
        '<tr><th rowspan="2">test</th><th colspan="3">overhead median, ms</th>'
        '<th colspan="3">end to end total, ms</th><th colspan="3">request bytes total</th></tr>'
        "<tr><th>HTTP</th><th>WS</th><th>ratio</th><th>HTTP</th><th>WS</th><th>ratio</th>"
        "<th>HTTP</th><th>WS</th><th>ratio</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _runs_table(tests: Sequence[Mapping[str, Any]], run_ids: Sequence[str]) -> str:
    rows = []
    for summary, uid in zip(tests, run_ids, strict=True):
        overhead = _map(summary.get("overhead_ms"))
        violations = len(_seq(summary.get("budget_violations")))
        rows.append(
            f'<tr><td class="test"><a href="#{uid}">{_esc_id(_text(summary.get("test")))}</a></td>'
            f"<td>{_esc(_transport_label(_text(summary.get('transport'))))}</td>"
            f"<td>{_outcome_badge(_text(summary.get('outcome'), '?'))}</td>"
            f'<td class="num">{_esc(_fmt_count(summary.get("turns")))}</td>'
            f'<td class="num">{_esc(_fmt_count(summary.get("connections")))}</td>'
            f'<td class="num strong">{_esc(_fmt_ms(overhead.get("median")))}</td>'
            f'<td class="num">{_esc(_fmt_ms(overhead.get("p95")))}</td>'
            f'<td class="num">{_esc(_fmt_ms(_map(summary.get("end_to_end_ms")).get("total")))}</td>'
            f'<td class="num">{_esc(_fmt_bytes(_map(summary.get("request_bytes")).get("mean")))}</td>'
            f'<td class="num{" warn" if _int(summary.get("resent_items")) else ""}">'
            f"{_esc(_fmt_count(summary.get('resent_items')))}</td>"
            f'<td class="num{" bad-text" if violations else ""}">{violations or ""}</td></tr>'
        )
    return (
        '<section class="panel"><h2>Runs</h2><div class="scroll"><table class="data runs"><thead><tr>'
        "<th>test</th><th>transport</th><th>outcome</th><th>turns</th><th>conns</th>"
        "<th>overhead median ms</th><th>p95 ms</th><th>e2e total ms</th><th>bytes / turn</th>"
        "<th>resent items</th><th>violations</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


# -- the page --------------------------------------------------------------------------------

_CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--border:#d1d9e0;--panel:#f6f8fa;
--row:#ffffff;--row-alt:#f1f4f8;--grid:#e3e8ee;--grid-zero:#9aa5b1;--accent:#0b62c4;
--bad:#c0222c;--bad-bg:#fff0ef;--bad-border:#f3b9b5;--good:#1a7f37;--warn:#b4460b;
--c-upstream:#4c78a8;--c-overhead:#e8861a;--c-tool:#4f9a46;--c-handshake:#8b62c4;--c-failed:#8a8f98;
--c-miss:#d0312d;--c-miss-bg:#fde3e1;--c-new:#0f766e;--c-chain:#2f5f99;--c-resent:#c2410c;--on-resent:#fff;
--http:#6f42c1;--ws:#0b7a75}
@media (prefers-color-scheme:dark){:root{--bg:#0f1318;--fg:#e6edf3;--muted:#9ba6b2;--border:#30363d;
--panel:#161b22;--row:#0f1318;--row-alt:#161c24;--grid:#242b34;--grid-zero:#5b6673;--accent:#5aa5ff;
--bad:#ff7b72;--bad-bg:#2d1517;--bad-border:#6e2b2b;--good:#56d364;--warn:#f0883e;--c-upstream:#6a9bd1;
--c-overhead:#f5a04f;--c-tool:#72c066;--c-handshake:#b392d9;--c-failed:#9aa1ab;--c-miss:#ff6b63;
--c-miss-bg:#3a1515;--c-new:#2dd4bf;--c-chain:#79a8e0;--c-resent:#f0883e;--on-resent:#161b22;--http:#b392f0;--ws:#3fc1b8}}
*{box-sizing:border-box}
html{background:var(--bg);color:var(--fg)}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",
"Liberation Sans",sans-serif}
main{max-width:1320px;margin:0 auto;padding:28px 28px 48px}
h1{font-size:24px;margin:0 0 2px;font-weight:650;letter-spacing:-.01em}
h2{font-size:17px;margin:0 0 10px;font-weight:650}
h3{font-size:16px;margin:0;font-weight:650;overflow-wrap:anywhere}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
code,.nodeid{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;
font-size:12.5px}
.muted{color:var(--muted)}
.sub-title{color:var(--muted);margin:0 0 18px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px;margin:0 0 20px}
.card{border:1px solid var(--border);border-radius:10px;padding:12px 14px;background:var(--panel)}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums;margin-top:2px}
.card .sub{color:var(--muted);font-size:12px}
.card.bad{border-color:var(--bad-border);background:var(--bad-bg)}.card.bad .v{color:var(--bad)}
.card.good .v{color:var(--good)}
.panel{margin:0 0 22px}
.scroll{overflow-x:auto}
table.data{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:13px}
table.data th,table.data td{padding:5px 10px;border-bottom:1px solid var(--border);text-align:left;
white-space:nowrap}
table.data thead th{background:var(--panel);font-weight:600;color:var(--muted);font-size:12px}
table.data.compare thead th{text-align:center}table.data.compare thead th:first-child{text-align:left}
table.data td.num{text-align:right}
table.data td.test{white-space:normal;overflow-wrap:anywhere;font-family:ui-monospace,SFMono-Regular,Menlo,
Consolas,"Liberation Mono",monospace;font-size:12.5px}
table.data tbody tr:hover{background:var(--row-alt)}
td.strong{font-weight:600}
td.warn{color:var(--warn);font-weight:600}
td.bad-text{color:var(--bad);font-weight:700}
td.ratio{font-weight:650}td.better-ws{color:var(--ws)}td.better-http{color:var(--http)}
tr.bad td{background:var(--bad-bg)}
.badge{display:inline-block;padding:0 8px;border-radius:999px;font-size:12px;font-weight:600;line-height:20px;
border:1px solid transparent}
.badge.ok{color:var(--good);border-color:currentColor}
.badge.bad{color:var(--bad);border-color:currentColor;background:var(--bad-bg)}
.badge.skip{color:var(--muted);border-color:currentColor}
.legend{position:sticky;top:0;z-index:2;display:flex;flex-wrap:wrap;gap:6px 18px;padding:10px 14px;
margin:0 0 18px;background:var(--bg);border:1px solid var(--border);border-radius:10px;font-size:12.5px}
.legend span{display:inline-flex;align-items:center;gap:6px;white-space:nowrap}
.sw{display:inline-block;width:22px;height:11px;border-radius:2px}
.sw.handshake{background:var(--c-handshake)}.sw.overhead{background:var(--c-overhead)}
.sw.tool{background:var(--c-tool)}.sw.upstream{background:var(--c-upstream)}
.sw.failed{background:var(--c-failed)}
.sw.miss{background:repeating-linear-gradient(45deg,var(--c-miss) 0 2px,var(--c-miss-bg) 2px 4px);
outline:1px solid var(--c-miss);outline-offset:-1px}
.mk{display:inline-block;font-style:normal}
.mk.new{width:12px;height:10px;background:var(--c-new);clip-path:polygon(0 0,100% 0,50% 100%)}
.mk.chain{width:16px;height:8px;border:2px solid var(--c-chain);border-radius:5px;position:relative}
.mk.resent{min-width:18px;height:14px;border-radius:7px;background:var(--c-resent);color:var(--on-resent);font-size:10px;
font-weight:700;line-height:14px;text-align:center;padding:0 4px}
.group{border:1px solid var(--border);border-radius:12px;padding:16px 18px 6px;margin:0 0 24px}
.group-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 14px;margin:0 0 8px}
.group-head .scale{color:var(--muted);font-size:12.5px}
.run{margin:10px 0 16px;padding-top:12px;border-top:1px dashed var(--border)}
.group-head+.run{border-top:0;padding-top:0}
.run-head{display:flex;flex-wrap:wrap;align-items:center;gap:8px 10px;margin:0 0 8px}
.transport{font-weight:700;font-size:13px;padding:1px 10px;border-radius:6px;color:#fff;background:var(--muted)}
.transport.t-http{background:var(--http)}.transport.t-ws{background:var(--ws)}
@media (prefers-color-scheme:dark){.transport{color:#0f1318}}
.nodeid{color:var(--muted);overflow-wrap:anywhere}
.stats{display:flex;flex-wrap:wrap;gap:4px 18px;margin:0 0 8px;font-size:12.5px}
.stat .k{color:var(--muted);margin-right:5px}
.stat .v{font-weight:600;font-variant-numeric:tabular-nums}
.stat.key .v{color:var(--fg)}
.stat.warn .v{color:var(--warn)}
svg.waterfall{display:block;width:100%;height:auto;margin:4px 0 6px;font-family:system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif;font-size:11px}
svg.waterfall .row{fill:var(--row)}svg.waterfall .row.alt{fill:var(--row-alt)}
svg.waterfall .grid{stroke:var(--grid);stroke-width:1}svg.waterfall .grid.zero{stroke:var(--grid-zero)}
svg.waterfall .tick{fill:var(--muted);font-variant-numeric:tabular-nums}
svg.waterfall .axis-title{fill:var(--muted);font-size:10.5px;text-transform:uppercase;letter-spacing:.04em}
svg.waterfall .label{fill:var(--fg)}
svg.waterfall .label .turn{font-weight:700}
svg.waterfall .label .conn{fill:var(--muted)}
svg.waterfall .value{fill:var(--fg);font-weight:600;font-variant-numeric:tabular-nums}
svg.waterfall .empty{fill:var(--muted);font-size:13px}
svg.waterfall .seg.handshake{fill:var(--c-handshake)}svg.waterfall .seg.overhead{fill:var(--c-overhead)}
svg.waterfall .seg.tool{fill:var(--c-tool)}svg.waterfall .seg.upstream{fill:var(--c-upstream)}
svg.waterfall .seg.failed{fill:var(--c-failed)}
svg.waterfall .seg.miss{stroke:var(--c-miss);stroke-width:1}
svg.waterfall .miss-bg{fill:var(--c-miss-bg)}svg.waterfall .miss-fg{fill:var(--c-miss)}
svg.waterfall .seg:hover{stroke:var(--fg);stroke-width:1}
svg.waterfall .conn-open{stroke:var(--c-new);stroke-width:2;stroke-dasharray:3 2}
svg.waterfall .mk-new{fill:var(--c-new)}
svg.waterfall .mk-chain rect{fill:none;stroke:var(--c-chain);stroke-width:2}
svg.waterfall .mk-resent rect{fill:var(--c-resent)}
svg.waterfall .mk-resent text{fill:var(--on-resent);font-size:10px;font-weight:700}
svg.waterfall .stub line,svg.waterfall .stub path{stroke:var(--c-failed);stroke-width:2;fill:none}
svg.waterfall .stub text{fill:var(--muted);font-weight:600}
svg.waterfall .stub.miss line,svg.waterfall .stub.miss path{stroke:var(--c-miss)}
svg.waterfall .stub.miss text{fill:var(--c-miss)}
svg.waterfall .miss-label{fill:var(--c-miss);font-weight:700;font-size:10.5px;letter-spacing:.04em}
.model{margin:4px 0 10px}
.model-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 14px;font-size:13px}
.model-head .gain{font-weight:650;color:var(--ws);font-variant-numeric:tabular-nums}
svg.waterfall .seg.service{fill:var(--c-handshake)}svg.waterfall .seg.inference{fill:var(--c-upstream)}
svg.waterfall .seg.alt{opacity:.72}
.violations{border:1px solid var(--bad-border);background:var(--bad-bg);color:var(--bad);border-radius:8px;
padding:8px 12px;margin:6px 0 10px;font-size:13px}
.violations ul{margin:4px 0 0;padding-left:20px}
.violations li{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
details.turns{margin:4px 0 6px}
details.turns summary{cursor:pointer;color:var(--muted);font-size:12.5px;margin:0 0 4px}
.outcome.miss,.outcome.failed{color:var(--bad);font-weight:700}
.empty-page{border:1px dashed var(--border);border-radius:12px;padding:40px;text-align:center;
color:var(--muted);font-size:15px}
.empty-page strong{display:block;color:var(--fg);font-size:18px;margin-bottom:6px}
footer{color:var(--muted);font-size:12px;margin-top:28px}
@media print{.legend{position:static}details.turns{display:block}}
"""


def _group_order(tests: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[int]]]:
    groups: dict[str, list[int]] = {}
    for position, summary in enumerate(tests):
        groups.setdefault(_text(summary.get("test")), []).append(position)
    for members in groups.values():
        members.sort(key=lambda i: (_TRANSPORT_ORDER.get(_text(tests[i].get("transport")), 9), i))
    return list(groups.items())


def _drift_section(document: Mapping[str, Any]) -> str:
    """Verify mode's findings: per verified run, each difference and the timing against the recording."""
    entries = [e for e in _seq(document.get("drift")) if isinstance(e, Mapping)]
    if not entries:
        return ""
    rows = []
    for entry in entries:
        timing = _map(entry.get("timing"))
        label = f"{_text(entry.get('test'))} [{_text(entry.get('transport'))}]"
        differences = [d for d in _seq(entry.get("differences")) if isinstance(d, Mapping)]
        cells = "".join(
            f"<li><strong>turn {_esc(d.get('turn'))}</strong> {_esc(d.get('kind'))}: {_esc(d.get('detail'))}</li>"
            for d in differences
        )
        rows.append(
            f"<tr><td>{_esc_id(label)}</td><td>{len(differences)}</td>"
            f"<td>{_fmt_ms_unit(timing.get('recorded_first_ms'))} \u2192 {_fmt_ms_unit(timing.get('live_first_ms'))}</td>"
            f"<td>{_fmt_ms_unit(timing.get('recorded_total_ms'))} \u2192 {_fmt_ms_unit(timing.get('live_total_ms'))}</td>"
            f"<td><ul>{cells or '<li>none</li>'}</ul></td></tr>"
        )
    return (
        '<h2 id="drift">Drift against the live API</h2>'
        '<p class="sub-title">Verify mode: where the live answers differ from the cassette (text drift does '
        "not fail a test unless asked). Timing: median per turn, recorded \u2192 live.</p>"
        "<table><thead><tr><th>Test</th><th>Differences</th><th>First event</th><th>Turn</th>"
        f"<th>Where</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_html(document: Mapping[str, Any], *, title: str = "pytest-responses-ws report") -> str:
    """The report document as one self-contained HTML page (inline CSS and SVG, no scripts)."""
    tests = [s for s in _seq(document.get("tests")) if isinstance(s, Mapping)]
    version = _text(document.get("version"), "?")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="pytest-responses-ws">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_esc(title)}</h1>",
    ]
    if not tests:
        parts.append(
            '<p class="sub-title">Replayed OpenAI Responses API sessions: per-turn client overhead.</p>'
            '<div class="empty-page"><strong>No Responses API traffic was measured.</strong>'
            "No test in this session sent a request through the replay server, so there is nothing to"
            " show.</div>"
        )
    else:
        groups = _group_order(tests)
        run_ids = [""] * len(tests)
        anchors: dict[str, str] = {}
        for g, (name, members) in enumerate(groups):
            anchors[name] = f"g{g}"
            for m in members:
                run_ids[m] = f"g{g}-r{m}"
        parts.append(
            '<p class="sub-title">Replayed OpenAI Responses API sessions over HTTP + SSE and WebSocket: '
            "where each turn's time went. Hover a bar for its exact figures.</p>"
        )
        parts.append(_header_cards(tests))
        parts.append(_comparisons(document, tests, anchors))
        parts.append(_runs_table(tests, run_ids))
        parts.append(_drift_section(document))
        parts.append('<h2 id="waterfalls">Waterfalls</h2>')
        parts.append(_LEGEND)
        for g, (name, members) in enumerate(groups):
            views = [_turn_views(tests[m]) for m in members]
            axis = _group_axis(views)
            labels = [_transport_label(_text(tests[m].get("transport"))) for m in members]
            scale = (
                f"{' and '.join(labels)} on the same time scale" if len(labels) > 1 else f"{labels[0]} only"
            )
            if any(views):
                scale += f" (0\u2013{axis.label(axis.high)} ms)"
            parts.append(
                f'<section class="group" id="g{g}"><div class="group-head"><h3>{_esc_id(name)}</h3>'
                f'<span class="scale">{_esc(scale)}</span></div>'
            )
            for m, run_views in zip(members, views, strict=True):
                parts.append(_run_block(tests[m], run_views, axis, run_ids[m]))
            parts.append("</section>")
    parts.append(
        f"<footer>Generated by pytest-responses-ws \u00b7 report schema version {_esc(version)}."
        " Overhead: the client's time between a turn's terminal event and its next request, minus"
        " time in rws.tool() blocks.</footer>"
    )
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"
