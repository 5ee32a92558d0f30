"""Load and mount time, and peak memory, of large cassettes (issue 9, "Fast cassette I/O").

Run: ``python benchmarks/bench_cassette_io.py [--shape agent|deltas] [turns ...]`` (default 10 1000 10000).

Each size is a synthetic cassette written with the plugin's codec:

* ``agent`` (default): a chained tool loop as an agent records it. A turn sends one ``function_call_output``
  with ~900 characters of instructions and three tools, and streams ``response.created`` and
  ``response.in_progress`` (each echoing the request's settings), a function call's argument deltas, the
  done events and ``response.completed``: about 12 kB and 30 events a turn.
* ``deltas``: the first version of this benchmark, a text answer of 120 small deltas and no response
  objects (about 20 kB a turn), kept so its old figures stay comparable.

For each size it prints the file size, the best of three ``load_cassette`` times (wall, and this
process's CPU time, steadier on a shared machine), the best of three times to
load *and* open a replay mount (the engine's index over every turn, what a test pays before its first
request), the peak traced memory of one load + mount, and the time of one full collection of the
cyclic garbage collector with that mount alive ("gc after": what the containers the load leaves
behind cost every full collection the rest of the process makes).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from pytest_responses_ws.cassette.codec import encode_cassette
from pytest_responses_ws.cassette.model import Cassette, RecordedEvent, RecordedWith, Turn
from pytest_responses_ws.cassette.store import load_cassette
from pytest_responses_ws.server.mount import Mount
from pytest_responses_ws.settings import RecordMode, Settings

INSTRUCTIONS = "You are a careful assistant that plans, calls tools and checks their results. " * 12
TOOLS = [
    {
        "type": "function",
        "name": name,
        "description": f"{name} for the agent's task",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        "strict": True,
    }
    for name in ("search_docs", "read_file", "run_tests")
]


def _response(i: int, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": f"resp_{i:08d}",
        "object": "response",
        "created_at": 1_790_000_000 + i,
        "status": status,
        "model": "gpt-5.2",
        "instructions": INSTRUCTIONS,
        "tools": TOOLS,
        "previous_response_id": f"resp_{i - 1:08d}" if i else None,
        "store": False,
        "output": output,
        "usage": None if status != "completed" else {"input_tokens": 900 + i, "output_tokens": 60},
    }


def agent_turn(i: int) -> Turn:
    """One step of a chained tool loop: ~12 kB, ~30 events."""
    call = {
        "type": "function_call",
        "id": f"fc_{i:08d}",
        "call_id": f"call_{i:08d}",
        "name": "search_docs",
        "arguments": '{"query": "' + f"step {i} of the plan, " * 4 + '"}',
    }
    events = [
        {"type": "response.created", "response": _response(i, "in_progress", [])},
        {"type": "response.in_progress", "response": _response(i, "in_progress", [])},
        {"type": "response.output_item.added", "output_index": 0, "item": {**call, "arguments": ""}},
        *(
            {"type": "response.function_call_arguments.delta", "item_id": call["id"], "delta": f" part {n}"}
            for n in range(22)
        ),
        {
            "type": "response.function_call_arguments.done",
            "item_id": call["id"],
            "arguments": call["arguments"],
        },
        {"type": "response.output_item.done", "output_index": 0, "item": call},
        {"type": "response.completed", "response": _response(i, "completed", [call])},
    ]
    request: dict[str, Any] = {
        "model": "gpt-5.2",
        "instructions": INSTRUCTIONS,
        "tools": TOOLS,
        "store": False,
        "input": [{"type": "function_call_output", "call_id": f"call_{i - 1:08d}", "output": "found 3 pages"}]
        if i
        else "Plan the release.",
    }
    if i:
        request["previous_response_id"] = f"resp_{i - 1:08d}"
    return Turn(
        request=request,
        events=tuple(
            RecordedEvent(float(n), {**data, "sequence_number": n}) for n, data in enumerate(events)
        ),
    )


def deltas_turn(i: int) -> Turn:
    """The first version's turn: 120 text deltas then a completed output item, ~20 kB."""
    deltas = [
        RecordedEvent(
            float(n), {"type": "response.output_text.delta", "item_id": f"msg_{i}", "delta": "w" * 40}
        )
        for n in range(120)
    ]
    done = RecordedEvent(
        120.0, {"type": "response.output_item.done", "item": {"id": f"msg_{i}", "text": "w" * 2000}}
    )
    return Turn(request={"model": "gpt-5.2", "input": f"question {i}"}, events=(*deltas, done))


SHAPES = {"agent": agent_turn, "deltas": deltas_turn}


def load_and_mount(path: Path) -> Mount:
    """What a replaying test does before its first request: load the cassette, open its mount."""
    settings = Settings(record_mode=RecordMode.NONE)
    return Mount("bench", settings, path, load_cassette(path), record_command="(bench)", transport="ws")


def best_of(runs: int, action: Any) -> tuple[float, float]:
    """The best wall time and the best CPU time of this process over ``runs`` runs of ``action``.

    The work is single-threaded, so on an idle core the two agree; on a shared machine the CPU
    time is the steadier figure (waiting for a core is not counted).
    """
    walls, cpus = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="agent")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure, best kept (default 3)")
    parser.add_argument("sizes", type=int, nargs="*", default=[10, 1000, 10000])
    args = parser.parse_args(argv)
    make_turn = SHAPES[args.shape]
    print(f"shape {args.shape}")
    print(
        f"{'turns':>7} {'file MB':>8} {'load s':>8} {'(cpu)':>7} {'load+mount s':>13} {'(cpu)':>7} {'peak MB':>8}"
        f" {'gc after s':>10}"
    )
    for size in args.sizes:
        cassette = Cassette(
            turns=tuple(make_turn(i) for i in range(size)),
            recorded_with=RecordedWith("0.1.0", "ws", "api.openai.com", "pytest"),
            recorded_at="2026-12-01T00:00:00Z",
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "big.json"
            path.write_text(encode_cassette(cassette), encoding="utf-8")
            del cassette
            load = best_of(args.runs, lambda path=path: load_cassette(path))
            mount = best_of(args.runs, lambda path=path: load_and_mount(path))
            tracemalloc.start()
            mounted = load_and_mount(path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            gc.collect()
            start = time.perf_counter()
            gc.collect()
            collection = time.perf_counter() - start
            del mounted
            megabytes = path.stat().st_size / 1e6
            print(
                f"{size:>7} {megabytes:>8.1f} {load[0]:>8.2f} {load[1]:>7.2f} {mount[0]:>13.2f} "
                f"{mount[1]:>7.2f} {peak / 1e6:>8.0f} {collection:>10.3f}"
            )


if __name__ == "__main__":
    main()
