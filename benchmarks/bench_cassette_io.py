"""Load time and peak memory of large synthetic cassettes (issue 9, "Fast cassette I/O").

Run: ``python benchmarks/bench_cassette_io.py [turns ...]`` (default 10 1000 10000). Mount set-up is not
measured yet.
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from pytest_responses_ws.cassette.codec import encode_cassette
from pytest_responses_ws.cassette.model import Cassette, RecordedEvent, RecordedWith, Turn
from pytest_responses_ws.cassette.store import load_cassette


def _turn(i: int) -> Turn:
    """A turn of about 12 KB: text deltas then a completed output item."""
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


def main(sizes: list[int]) -> None:
    """Print load seconds (best of 3), file size and peak traced memory per size."""
    print(f"{'turns':>7} {'file MB':>8} {'load s':>8} {'peak MB':>8}")
    for size in sizes:
        cassette = Cassette(
            turns=tuple(_turn(i) for i in range(size)),
            recorded_with=RecordedWith("0.1.0", "ws", "api.openai.com", "pytest"),
            recorded_at="2026-12-01T00:00:00Z",
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "big.json"
            path.write_text(encode_cassette(cassette), encoding="utf-8")
            del cassette
            best = min(_timed(path) for _ in range(3))
            tracemalloc.start()
            load_cassette(path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"{size:>7} {path.stat().st_size / 1e6:>8.1f} {best:>8.2f} {peak / 1e6:>8.0f}")


def _timed(path: Path) -> float:
    start = time.perf_counter()
    load_cassette(path)
    return time.perf_counter() - start


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 1000, 10000])
