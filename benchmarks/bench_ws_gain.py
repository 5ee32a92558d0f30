#!/usr/bin/env python
"""End to end: how much faster does an agent loop run over WebSocket mode, under the latency model?

For agent loops of 2, 5, 20 and 50 tool calls, on the slow (~65 tok/s) and fast (~1,000 tok/s)
presets, the loop runs through the real openai SDK over HTTP + SSE, over WebSocket chaining
``previous_response_id`` on one connection, and over WebSocket resending its whole history;
and through openai-agents (whose WebSocket model resends its history) over both. Each loop is
first recorded from the simulator, then replayed by the plugin's loopback server under
``--rws-timing=model``, and its wall-clock time measured from the first request to the
final answer, the client's own time included. The figure is WebSocket time / HTTP time,
medians over ``--runs`` runs (alternating the transports, so drift in machine load lands
on both).

Time is scaled: the replay sends each event at ``scale`` times the service's modeled time
(``--fast-scale``, ``--slow-scale``), so a run takes seconds. The model's ratios do not change
with the scale; the client's own time does not scale. So each run is split: the replay
server's time (request to terminal event, summed over the turns: the scaled service time)
and the rest (the client's own time, measured). "End to end, real time" adds the client's
measured time to the server's time unscaled: the loop as it would run against the service.
The table also gives the raw wall-clock ratio at the scale, the server's ratio and the
model's own.

    python benchmarks/bench_ws_gain.py                # the table, and the plot in docs/
    python benchmarks/bench_ws_gain.py --quick        # one run, 2 and 20 tool calls
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

try:
    import pytest_responses_ws  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openai import AsyncOpenAI, OpenAI

from pytest_responses_ws.cassette.store import load_cassette
from pytest_responses_ws.clients import warm_openai_parsers
from pytest_responses_ws.core.latency import PRESETS, LatencyModel, project
from pytest_responses_ws.core.metrics import compute_turn_metrics
from pytest_responses_ws.server.app import LoopbackServer
from pytest_responses_ws.server.mount import Mount
from pytest_responses_ws.settings import RecordMode, Settings, Timing
from pytest_responses_ws.sim import Script, serve_simulator

ROOT = Path(__file__).resolve().parents[1]


def _support(name: str) -> Any:
    """A module of tests/support: the loops the end-to-end tests run, so both measure one loop."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "support" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model_loops = _support("model_loops")
API_KEY = "sk-bench-not-a-key"
TOOL_CALLS = (2, 5, 20, 50)
#: (client, mode, transport) of each way of running a loop; the first is the HTTP baseline.
SDK_WAYS = (("sdk", "chained", "http"), ("sdk", "chained", "ws"), ("sdk", "resend", "ws"))
AGENT_WAYS = (("agents", "agents", "http"), ("agents", "agents", "ws"))
PLOT = ROOT / "docs" / "img" / "ws-gain.svg"


class BenchError(RuntimeError):
    """A run that cannot be measured (a miss, a wrong answer)."""


@dataclass
class Handle:
    """What the loops ask of ``rws``: the transport and clients pointed at one mount."""

    transport: str
    base_url: str
    websocket_base_url: str

    def openai_client(self) -> OpenAI:
        return OpenAI(
            base_url=self.base_url, websocket_base_url=self.websocket_base_url, api_key=API_KEY, max_retries=0
        )

    def agents_run_config(self) -> Any:
        from agents import RunConfig
        from agents.models.openai_provider import OpenAIProvider

        self.async_client = AsyncOpenAI(
            base_url=self.base_url, websocket_base_url=self.websocket_base_url, api_key=API_KEY, max_retries=0
        )
        self.provider = OpenAIProvider(
            openai_client=self.async_client,
            use_responses=True,
            use_responses_websocket=self.transport == "ws",
        )
        return RunConfig(model_provider=self.provider, tracing_disabled=True)

    async def run_agent(self) -> str:
        """The openai-agents loop, its connections closed on the loop that opened them."""
        try:
            return str(await model_loops.run_agent(self))
        finally:
            await self.provider.aclose()
            await self.async_client.close()


def run_loop(handle: Handle, mode: str) -> str:
    if mode == "agents":
        return asyncio.run(handle.run_agent())
    return model_loops.run(handle, mode)


def record(server: LoopbackServer, directory: Path, calls: int, client: str) -> Path:
    """Record the loop from the simulator (over WebSocket, chained; agents: its own way)."""
    path = directory / f"{client}-{calls}.json"
    with serve_simulator(Script(model_loops.script_steps(calls)), require_auth=False) as sim:
        settings = Settings(record_mode=RecordMode.ONCE, upstream=sim.url)
        mount = Mount(server.new_mount_id(), settings, path, None, record_command="bench")
        server.add(mount)
        handle = Handle("ws", server.base_url(mount), server.websocket_base_url(mount))
        run_loop(handle, "agents" if client == "agents" else "chained")
        failures = server.remove(mount)
    if failures or not path.exists():
        raise BenchError(f"recording {path.name} failed: {failures}")
    return path


@dataclass
class Sample:
    """One run: wall-clock seconds, the replay server's share, and the model's figure."""

    wall_s: float
    #: Request to terminal event, summed over the turns: the (scaled) service time replay gave.
    server_s: float
    modeled_ms: float
    scale: float

    @property
    def real_time_s(self) -> float:
        """End to end at the service's real pace: the client's own time (it does not scale)
        plus the service time replay gave, unscaled."""
        return (self.wall_s - self.server_s) + self.server_s / self.scale


def replay(server: LoopbackServer, path: Path, model: LatencyModel, transport: str, mode: str) -> Sample:
    """One replay of a recorded loop under the model; its wall-clock time and figures."""
    settings = Settings(timing=Timing(None, model=True), latency_model=model)
    mount = Mount(
        server.new_mount_id(),
        settings,
        path,
        load_cassette(path),
        record_command="bench",
        transport=transport,
    )
    server.add(mount)
    handle = Handle(transport, server.base_url(mount), server.websocket_base_url(mount))
    started = time.perf_counter()
    answer = run_loop(handle, mode)
    wall = time.perf_counter() - started
    failures = server.remove(mount)
    if failures or not answer.startswith("Fixed"):
        raise BenchError(f"replay of {path.name} over {transport} ({mode}) failed: {failures or answer!r}")
    turns = compute_turn_metrics(list(mount.traces))
    projection = project(turns, model, transport)  # type: ignore[arg-type]
    server_s = sum(t.upstream_ms or 0.0 for t in turns) / 1000
    return Sample(wall, server_s, projection.ws_ms if transport == "ws" else projection.http_ms, model.scale)


@dataclass
class Row:
    model: str
    calls: int
    client: str
    mode: str
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def median(self, transport: str, what: Callable[[Sample], float]) -> float:
        return statistics.median(what(s) for s in self.samples[transport])

    def ratios(self) -> dict[str, float]:
        """WebSocket over HTTP: end to end at real time, as measured at scale, the server's, the model's."""

        def ratio(what: Callable[[Sample], float]) -> float:
            return self.median("ws", what) / self.median("http", what)

        return {
            "real_time": ratio(lambda s: s.real_time_s),
            "measured": ratio(lambda s: s.wall_s),
            "server": ratio(lambda s: s.server_s),
            "modeled": ratio(lambda s: s.modeled_ms),
        }


def measure(args: argparse.Namespace, directory: Path) -> list[Row]:
    server = LoopbackServer().start()
    warm_openai_parsers()
    try:
        import agents  # noqa: F401  (its one-time costs before any run)

        warm_openai_parsers()
        cassettes = {
            (client, calls): record(server, directory, calls, client)
            for calls in args.calls
            for client in ("sdk", "agents")
        }
        rows: list[Row] = []
        for preset, scale in (("fast", args.fast_scale), ("slow", args.slow_scale)):
            model = replace(PRESETS[preset], scale=scale)
            for calls in args.calls:
                for client, ways in (("sdk", SDK_WAYS), ("agents", AGENT_WAYS)):
                    if client == "agents" and preset == "slow" and not args.agents_slow:
                        continue
                    http: list[Sample] = []
                    by_mode: dict[str, list[Sample]] = {}
                    for run in range(args.runs):
                        order = ways if run % 2 == 0 else tuple(reversed(ways))
                        for _, mode, transport in order:
                            sample = replay(server, cassettes[(client, calls)], model, transport, mode)
                            (http if transport == "http" else by_mode.setdefault(mode, [])).append(sample)
                    for mode, samples in by_mode.items():
                        row = Row(preset, calls, client, mode, {"http": http, "ws": samples})
                        rows.append(row)
                        log(f"{preset:4} {calls:2} calls {client:6} {mode:8} {row.ratios()}")
        return rows
    finally:
        server.stop()


# --------------------------------------------------------------------------- output


def table(rows: Sequence[Row], args: argparse.Namespace) -> str:
    lines = [
        "| model | tool calls | client | WebSocket | end to end, real time | measured at scale | service "
        "(replay server) | model | HTTP s, real time | WS s, real time |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: (r.model, r.client, r.mode, r.calls)):
        ratios = row.ratios()
        mode = {"chained": "chained", "resend": "resends history", "agents": "agents' WS model"}[row.mode]
        lines.append(
            f"| {row.model} | {row.calls} | {row.client} | {mode} | **{ratios['real_time']:.2f}** | "
            f"{ratios['measured']:.2f} | {ratios['server']:.2f} | {ratios['modeled']:.2f} | "
            f"{row.median('http', lambda s: s.real_time_s):.2f} | {row.median('ws', lambda s: s.real_time_s):.2f} |"
        )
    return "\n".join(lines)


_COLORS = {
    ("fast", "sdk", "chained"): "#0b7a75",
    ("fast", "sdk", "resend"): "#c2410c",
    ("fast", "agents", "agents"): "#6f42c1",
    ("slow", "sdk", "chained"): "#4c78a8",
    ("slow", "sdk", "resend"): "#b08a2e",
    ("slow", "agents", "agents"): "#9a6fd6",
}
_LABELS = {
    ("fast", "sdk", "chained"): "fast model, openai SDK, chained",
    ("fast", "sdk", "resend"): "fast model, openai SDK, resends history",
    ("fast", "agents", "agents"): "fast model, openai-agents",
    ("slow", "sdk", "chained"): "slow model, openai SDK, chained",
    ("slow", "sdk", "resend"): "slow model, openai SDK, resends history",
    ("slow", "agents", "agents"): "slow model, openai-agents",
}


def plot_svg(rows: Sequence[Row], calls: Sequence[int]) -> str:
    """WebSocket/HTTP end-to-end time against tool calls: at real time (solid) and modeled (dashed)."""
    width, height, left, right, top, bottom = 760, 430, 64, 250, 34, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = 0.4, 1.1
    xs = {n: left + plot_w * i / max(1, len(calls) - 1) for i, n in enumerate(sorted(calls))}

    def y(value: float) -> float:
        return top + plot_h * (high - min(high, max(low, value))) / (high - low)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold" fill="#1f2328">'
        "WebSocket / HTTP end-to-end time, by tool calls (lower is faster)</text>",
    ]
    for tick in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1):
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{"#9aa5b1" if tick == 1.0 else "#e3e8ee"}"/>'
            f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#59636e">{tick:.1f}</text>'
        )
    for n, x in xs.items():
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#f1f4f8"/>'
            f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle" fill="#59636e">{n}</text>'
        )
    out.append(
        f'<text x="{left + plot_w / 2}" y="{height - 12}" text-anchor="middle" fill="#59636e">'
        "tool calls in the loop (not to scale)</text>"
    )
    legend_y = top + 6
    for key, color in _COLORS.items():
        series = sorted((r for r in rows if (r.model, r.client, r.mode) == key), key=lambda r: r.calls)
        if not series:
            continue
        for what, dash in (("real_time", ""), ("modeled", ' stroke-dasharray="5 4"')):
            points = " ".join(f"{xs[r.calls]:.1f},{y(r.ratios()[what]):.1f}" for r in series)
            out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for r in series:
            out.append(
                f'<circle cx="{xs[r.calls]:.1f}" cy="{y(r.ratios()["real_time"]):.1f}" r="3.5" fill="{color}"/>'
            )
        out.append(
            f'<line x1="{left + plot_w + 16}" x2="{left + plot_w + 40}" y1="{legend_y}" y2="{legend_y}" '
            f'stroke="{color}" stroke-width="3"/><text x="{left + plot_w + 46}" y="{legend_y + 4}" '
            f'fill="#1f2328">{_LABELS[key]}</text>'
        )
        legend_y += 20
    out.append(
        f'<line x1="{left + plot_w + 16}" x2="{left + plot_w + 40}" y1="{legend_y + 8}" y2="{legend_y + 8}" '
        f'stroke="#59636e" stroke-width="2" stroke-dasharray="5 4"/><text x="{left + plot_w + 46}" '
        f'y="{legend_y + 12}" fill="#59636e">dashed: the model alone</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of each loop and transport (median; default 3)"
    )
    parser.add_argument("--calls", type=int, nargs="+", default=list(TOOL_CALLS), help="tool calls per loop")
    parser.add_argument("--fast-scale", type=float, default=0.5, help="time scale of the fast model (0.5)")
    parser.add_argument("--slow-scale", type=float, default=0.2, help="time scale of the slow model (0.2)")
    parser.add_argument("--agents-slow", action="store_true", help="run openai-agents on the slow model too")
    parser.add_argument("--quick", action="store_true", help="one run, 2 and 20 tool calls")
    parser.add_argument(
        "--plot", type=Path, default=PLOT, help=f"where the SVG plot goes ({PLOT.relative_to(ROOT)})"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.calls = 1, [2, 20]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # it would export to the real API
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        rows = measure(args, Path(directory))
    print(
        f"\npytest-responses-ws bench_ws_gain: {args.runs} runs, scale fast {args.fast_scale:g} / slow "
        f"{args.slow_scale:g}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{time.perf_counter() - started:.0f} s\n"
    )
    print(table(rows, args))
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    args.plot.write_text(plot_svg(rows, args.calls), encoding="utf-8")
    print(f"\nplot: {args.plot}")
    if args.json:
        figures = [
            {"model": r.model, "calls": r.calls, "client": r.client, "mode": r.mode, **r.ratios()}
            for r in rows
        ]
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
