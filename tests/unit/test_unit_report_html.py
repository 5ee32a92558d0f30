"""Unit tests of ``report.html``: the self-contained HTML report built from the JSON report document."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from pytest_responses_ws.core.metrics import ToolSpan, TurnMetrics, TurnTrace, compute_turn_metrics
from pytest_responses_ws.report.html import render_html
from pytest_responses_ws.report.summary import report_document, summarize

MS = 1_000_000
VOID = {"meta", "link", "br", "hr", "img", "input", "wbr", "col", "area", "base", "source", "track", "embed"}


class StrictParser(HTMLParser):
    """Checks that every element is closed in order, and collects what the tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))  # <rect .../> and friends inside SVG

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def close(self) -> None:
        super().close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")


def parse(page: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.errors == []
    assert parser.doctype
    return parser


def classes(parser: StrictParser, tag: str, name: str) -> list[dict[str, str | None]]:
    return [attrs for t, attrs in parser.tags if t == tag and name in (attrs.get("class") or "").split()]


def svg_blocks(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


# -- documents ---------------------------------------------------------------------------------


def turn(index: int, **changes: Any) -> TurnMetrics:
    figures: dict[str, Any] = {
        "index": index,
        "transport": "http",
        "connection": 1,
        "lane": None,
        "overhead_ms": 1.5,
        "gap_ms": 2.0,
        "tool_ms": 0.5,
        "upstream_ms": 20.0,
        "end_to_end_ms": 22.0,
        "request_bytes": 1200,
        "input_items": 3,
        "chained": False,
        "resent_items": 0,
        "resent_bytes": 0,
        "new_connection": index == 0,
        "handshake_ms": None,
        "outcome": "completed",
        "arrived_at_ms": index * 22.0,
        "ended_at_ms": index * 22.0 + 20.0,
    }
    figures.update(changes)
    return TurnMetrics(**figures)


def run(test: str, transport: str, turns: list[TurnMetrics], **kwargs: Any) -> dict[str, Any]:
    counts = {
        "connections": len({t.connection for t in turns}),
        "handshakes": sum(t.handshake_ms is not None for t in turns),
    }
    return summarize(
        nodeid=f"{test}[{transport}]", test=test, transport=transport, turns=turns, counts=counts, **kwargs
    )


def http_turns() -> list[TurnMetrics]:
    return [
        turn(0, overhead_ms=None, gap_ms=None, tool_ms=0.0, end_to_end_ms=None),
        turn(1, resent_items=2, resent_bytes=640),
        turn(2, new_connection=True, connection=2, resent_items=4, resent_bytes=1300),
        turn(3, outcome="miss", upstream_ms=0.3, ended_at_ms=66.3, end_to_end_ms=2.3),
    ]


def ws_turns() -> list[TurnMetrics]:
    return [
        turn(
            i,
            transport="ws",
            handshake_ms=1.2 if i == 0 else None,
            chained=i > 0,
            overhead_ms=0.4,
            gap_ms=0.9,
        )
        for i in range(4)
    ]


@pytest.fixture
def document() -> dict[str, Any]:
    return report_document(
        [
            run(
                "tests/test_loop.py::test_agent",
                "http",
                http_turns(),
                outcome="failed",
                violations=["overhead_ms median [http] <= 1: got 1.5 ms"],
            ),
            run("tests/test_loop.py::test_agent", "ws", ws_turns()),
            run("tests/test_loop.py::test_other", "ws", ws_turns()),
        ]
    )


# -- structure ---------------------------------------------------------------------------------


def test_page_is_well_formed_with_one_waterfall_per_run(document: dict[str, Any]) -> None:
    page = render_html(document)
    parser = parse(page)
    assert len(classes(parser, "svg", "waterfall")) == len(document["tests"]) == 3
    assert len(svg_blocks(page)) == 3  # the legend is HTML, not more SVG
    assert classes(parser, "div", "legend")
    assert not [tag for tag, _ in parser.tags if tag in ("script", "link", "img", "iframe")]
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    text = "".join(parser.text)
    assert "HTTP + SSE" in text
    assert "WebSocket" in text
    assert "None" not in text


def test_header_totals_and_comparisons(document: dict[str, Any]) -> None:
    parser = parse(render_html(document, title="CI run 42"))
    text = " ".join(parser.text)
    assert "CI run 42" in text
    assert "requests measured" in text
    assert "median overhead \u00b7 HTTP + SSE" in text
    assert "1.50 ms" in text  # median over the HTTP turns that have an overhead
    assert "0.40 ms" in text  # ... and over the WebSocket ones
    compare = classes(parser, "table", "compare")
    assert len(compare) == 1
    # HTTP median overhead 1.5 / WebSocket 0.4
    assert "3.75\u00d7" in text


def test_per_turn_table_rows(document: dict[str, Any]) -> None:
    page = render_html(document)
    tables = re.findall(r'<details class="turns".*?</details>', page, flags=re.S)
    assert len(tables) == 3
    assert all("<th>overhead ms</th>" in t and "<th>upstream ms</th>" in t for t in tables)
    assert tables[0].count("<tr") == 1 + len(http_turns())


def test_markers_misses_and_violations(document: dict[str, Any]) -> None:
    page = render_html(document)
    http_svg, ws_svg, _ = svg_blocks(page)
    assert http_svg.count('class="mk-new"') == 2
    assert http_svg.count('class="mk-resent"') == 2
    assert 'class="seg miss"' in http_svg
    assert "MISS" in http_svg
    assert 'class="mk-chain"' not in http_svg
    assert ws_svg.count('class="mk-chain"') == 3
    assert 'class="seg handshake"' in ws_svg
    assert 'class="seg tool"' in ws_svg
    parser = parse(page)
    assert len(classes(parser, "div", "violations")) == 1
    assert "overhead_ms median [http] &lt;= 1: got 1.5 ms" in page


def test_runs_of_a_test_share_the_time_axis(document: dict[str, Any]) -> None:
    http_svg, ws_svg, other_svg = svg_blocks(render_html(document))

    def ticks(svg: str) -> list[str]:
        return re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', svg)

    def width(svg: str) -> str:
        match = re.search(r'viewBox="0 0 (\S+) ', svg)
        assert match
        return match[1]

    assert ticks(http_svg) == ticks(ws_svg)
    assert ticks(http_svg)[0] == "0"
    assert width(http_svg) == width(ws_svg)
    assert ticks(other_svg)


# -- escaping and odd input -----------------------------------------------------------------


def test_text_is_escaped() -> None:
    nasty = 'tests/t.py::test_x[<script>alert("x")</script>&amp]'
    summary = run(
        nasty, "http", [turn(0, lane="<b>lane</b>", outcome="<i>odd</i>")], violations=["a < b & c"]
    )
    page = render_html(report_document([summary]), title="<title>&")
    parser = parse(page)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "&amp;amp" in page
    assert "<b>" not in page
    assert "<i>odd" not in page
    assert "a &lt; b &amp; c" in page
    assert not [tag for tag, _ in parser.tags if tag in ("script", "b")]
    assert all(attrs.get("class") for tag, attrs in parser.tags if tag == "i")  # only the legend's swatches
    assert "<title>&lt;title&gt;&amp;</title>" in page
    assert nasty + "[http]" in "".join(parser.text).replace("\u200b", "")


def test_empty_document() -> None:
    page = render_html(report_document([]))
    parser = parse(page)
    assert "No Responses API traffic was measured" in "".join(parser.text)
    assert "<svg" not in page


def test_run_without_turns_and_single_transport() -> None:
    page = render_html(report_document([run("t.py::test_idle", "http", [])]))
    parser = parse(page)
    assert len(classes(parser, "svg", "waterfall")) == 1
    text = "".join(parser.text)
    assert "No turns were measured in this run." in text
    assert "nothing to compare" in text
    assert "HTTP + SSE only" in text


def test_none_values_and_unterminated_turns() -> None:
    turns = [
        turn(
            0,
            transport="ws",
            overhead_ms=None,
            gap_ms=None,
            upstream_ms=None,
            end_to_end_ms=None,
            ended_at_ms=None,
            tool_ms=0.0,
        ),
        turn(1, transport="ws", outcome="miss", upstream_ms=None, end_to_end_ms=None, ended_at_ms=None),
        turn(2, transport="ws", lane="worker-1", handshake_ms=0.7, new_connection=True, connection=2),
    ]
    summary = run("t.py::test_none", "ws", turns)
    page = render_html(report_document([summary]))
    parser = parse(page)
    text = "".join(parser.text)
    assert "None" not in text
    assert "\u2013" in text  # the dash of a missing figure
    assert 'class="stub miss"' in page
    assert "no end" in text
    assert "worker-1" in text


def test_tolerates_a_hand_edited_document() -> None:
    document: dict[str, Any] = {
        "version": 1,
        "tests": [
            {"test": "t", "transport": "grpc", "turn_metrics": [{"index": "x", "arrived_at_ms": "soon"}, 7]},
            "not a summary",
        ],
        "comparisons": [{"test": "t", "overhead_median_ratio": float("nan")}],
    }
    parser = parse(render_html(document))
    assert len(classes(parser, "svg", "waterfall")) == 1


def test_from_server_traces_and_deterministic() -> None:
    """Metrics as the server computes them: a WebSocket loop with a tool call between turns."""
    traces = []
    tools = [ToolSpan("grep", 30 * MS, 38 * MS)]
    for i, (arrived, end) in enumerate([(3, 28), (39, 60), (61, 80)]):
        traces.append(
            TurnTrace(
                transport="ws",
                connection=1,
                lane=None,
                arrived_ns=arrived * MS,
                request={"input": [{"type": "message", "role": "user", "content": f"q{i}"}]}
                | ({"previous_response_id": f"resp_{i}"} if i else {}),
                request_bytes=300 + i,
                new_connection=i == 0,
                connection_opened_ns=2 * MS,
                handshake_ns=2 * MS if i == 0 else None,
                terminal_ns=end * MS,
            )
        )
    summary = run("t.py::test_ws", "ws", compute_turn_metrics(traces, tools))
    document = report_document([summary])
    page = render_html(document)
    parse(page)
    assert page == render_html(document)
    (svg,) = svg_blocks(page)
    assert svg.count('class="seg upstream"') == 3
    assert svg.count('class="seg tool"') == 1
    assert svg.count('class="seg handshake"') == 1
    assert "tool time 8.000 ms" in svg
