"""What the per-turn measurement costs, and how small an overhead change it detects.

1. Cost: the work the server adds to a turn to measure it (two clock reads, a trace
   record, the request size), timed in isolation, and the after-the-test computation of
   the metrics per turn (normalization and digests for resent-input accounting).
2. Resolution: real 20-turn WebSocket sessions (openai SDK -> loopback server), with a
   known client-side delay injected between turns by spinning on the clock (sleep is
   too coarse for sub-millisecond steps). For each delay the plugin's own measured
   overhead is compared with the no-delay runs: the shift should equal the delay, and
   the smallest delay whose sessions separate from the no-delay ones is the resolution.

    python benchmarks/bench_measurement.py [--sessions 25] [--turns 20] [--json out.json] [--quick]

Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from openai import OpenAI
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).parent))
from bench_replay_ws import API_KEY, Workload, build_workload
from pytest_responses_ws.clients import warm_openai_parsers
from pytest_responses_ws.config import RecordMode, Settings
from pytest_responses_ws.core.metrics import TurnTrace, compute_turn_metrics
from pytest_responses_ws.server.app import LoopbackServer
from pytest_responses_ws.server.mount import Mount

DELAYS_US = (0, 50, 100, 200, 500, 1000)


def spin(ns: int) -> None:
    """Busy-wait ``ns`` nanoseconds: a precise, repeatable client-side delay."""
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


def hot_path_cost_ns(request: dict[str, Any], text: str, mount: Mount) -> float:
    """ns per turn of what the server does to measure a turn, without the turn itself."""
    clock = time.perf_counter_ns

    def measure() -> None:
        arrived = clock()
        trace = TurnTrace(
            transport="ws",
            connection=0,
            lane=None,
            arrived_ns=arrived,
            request=request,
            request_bytes=len(text.encode("utf-8")),
            new_connection=False,
            connection_opened_ns=arrived,
        )
        with mount.lock:
            mount.traces.append(trace)
        trace.terminal_ns = clock()

    runs = 200_000
    best = min(timeit.repeat(measure, number=runs, repeat=5))
    mount.traces.clear()
    return best / runs * 1e9


def session(
    server: LoopbackServer, workload: Workload, delay_ns: int, client_kind: str = "sdk"
) -> list[float]:
    """One chained session with ``delay_ns`` of client work between turns; measured overheads.

    ``sdk`` drives the openai SDK (its own per-turn work is part of the overhead);
    ``raw`` sends the recorded frames with the websockets library, so the measured
    overhead is as small as a client can make it and the instrument's resolution shows.
    """
    mount = Mount(
        server.new_mount_id(),
        Settings(record_mode=RecordMode.NONE),
        workload.cassette_path,
        workload.cassette,
        record_command="bench",
        transport="ws",
    )
    server.add(mount)
    if client_kind == "raw":
        frames = [json.dumps(r) for r in workload.ws_requests]
        try:
            with connect(server.websocket_base_url(mount) + "/responses", open_timeout=10) as ws:
                for index, frame in enumerate(frames):
                    if index:
                        spin(delay_ns)
                    ws.send(frame)
                    while '"response.completed"' not in ws.recv(timeout=10)[:40]:
                        pass
        finally:
            failures = server.remove(mount)
        if failures:
            raise SystemExit(f"replay failed: {failures[0]}")
        return [t.overhead_ms for t in mount.turn_metrics()[1:] if t.overhead_ms is not None]
    client = OpenAI(
        base_url=server.base_url(mount),
        websocket_base_url=server.websocket_base_url(mount),
        api_key=API_KEY,
        max_retries=0,
    )
    try:
        with client.responses.connect() as conn:
            events = iter(conn)
            for index, request in enumerate(workload.ws_requests):
                if index:
                    spin(delay_ns)
                conn.response.create(**{k: v for k, v in request.items() if k != "type"})
                for event in events:
                    if event.type == "response.completed":
                        break
    finally:
        client.close()
        failures = server.remove(mount)
    if failures:
        raise SystemExit(f"replay failed: {failures[0]}")
    return [t.overhead_ms for t in mount.turn_metrics()[1:] if t.overhead_ms is not None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=25, help="sessions per delay (default 25)")
    parser.add_argument("--turns", type=int, default=20, help="turns per session (default 20)")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="a smoke run (8 sessions per delay)")
    parser.add_argument("--client", choices=("sdk", "raw"), default="sdk", help="client driving the turns")
    args = parser.parse_args()
    sessions = 8 if args.quick else args.sessions
    warm_openai_parsers()
    with tempfile.TemporaryDirectory(prefix="rws-bench-") as tmp:
        workload = build_workload(args.turns, Path(tmp))
        server = LoopbackServer().start()
        try:
            probe = Mount("probe", Settings(), workload.cassette_path, workload.cassette, record_command="")
            request = dict(workload.ws_requests[-1])
            hot_ns = hot_path_cost_ns(request, json.dumps(request), probe)

            for _ in range(3):  # warm-up sessions, also a source of realistic traces
                session(server, workload, 0)
            # Teardown cost: metrics from a real session's traces, per turn.
            mount = Mount(
                server.new_mount_id(),
                Settings(),
                workload.cassette_path,
                workload.cassette,
                record_command="",
            )
            server.add(mount)
            client = OpenAI(
                base_url=server.base_url(mount),
                websocket_base_url=server.websocket_base_url(mount),
                api_key=API_KEY,
            )
            with client.responses.connect() as conn:
                events = iter(conn)
                for request_frame in workload.ws_requests:
                    conn.response.create(**{k: v for k, v in request_frame.items() if k != "type"})
                    for event in events:
                        if event.type == "response.completed":
                            break
            client.close()
            server.remove(mount)
            traces = list(mount.traces)
            runs = 200
            teardown_us = min(timeit.repeat(lambda: compute_turn_metrics(traces), number=runs, repeat=5))
            teardown_us = teardown_us / runs / len(traces) * 1e6

            medians: dict[int, list[float]] = {d: [] for d in DELAYS_US}
            for _ in range(sessions):  # interleaved, so drift hits every delay alike
                for delay in DELAYS_US:
                    overheads = session(server, workload, delay * 1000, args.client)
                    medians[delay].append(statistics.median(overheads))
        finally:
            server.stop()

    base = medians[0]
    base_median = statistics.median(base)
    q = statistics.quantiles(base, n=10)
    base_p10, base_p90 = q[0], q[-1]  # shown as the spread of the no-delay runs
    rows = []
    resolution = None
    for delay in DELAYS_US:
        values = medians[delay]
        shift_us = (statistics.median(values) - base_median) * 1000
        low = statistics.quantiles(values, n=10)[0] if len(values) > 1 else values[0]
        # Detected: at least 90% of these sessions sit above the no-delay median, and the
        # measured shift is at least half the injected delay.
        above = sum(v > base_median for v in values) / len(values)
        separated = delay > 0 and above >= 0.9 and shift_us >= delay / 2
        if separated and resolution is None:
            resolution = delay
        rows.append(
            {
                "injected_us": delay,
                "measured_median_overhead_us": round(statistics.median(values) * 1000, 1),
                "shift_us": round(shift_us, 1),
                "shift_error_us": round(shift_us - delay, 1),
                "sessions_p10_us": round(low * 1000, 1),
                "separated_from_zero": separated,
            }
        )
    print(f"client: {args.client}")
    print(f"measurement cost on the turn path: {hot_ns:.0f} ns per turn (trace, two clock reads, size)")
    print(f"metrics computed after the test: {teardown_us:.1f} us per turn ({len(traces)}-turn session)")
    print(
        f"no-delay session medians of overhead: median {base_median * 1000:.0f} us, "
        f"p10..p90 {base_p10 * 1000:.0f}..{base_p90 * 1000:.0f} us ({sessions} sessions x {args.turns} turns)"
    )
    print(
        f"{'injected us':>12} {'measured median us':>19} {'shift us':>9} {'error us':>9} {'p10 us':>8}  separated"
    )
    for row in rows:
        print(
            f"{row['injected_us']:>12} {row['measured_median_overhead_us']:>19} {row['shift_us']:>9} "
            f"{row['shift_error_us']:>9} {row['sessions_p10_us']:>8}  {'yes' if row['separated_from_zero'] else 'no'}"
        )
    print(
        "resolution over 20 turns: "
        + (f"{resolution} us (smallest injected delay separated from none)" if resolution else "above 1 ms")
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "client": args.client,
                    "hot_path_ns_per_turn": hot_ns,
                    "teardown_us_per_turn": teardown_us,
                    "sessions": sessions,
                    "turns": args.turns,
                    "rows": rows,
                    "resolution_us": resolution,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
