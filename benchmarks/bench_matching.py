"""Matching cost per turn, for a cassette without redactions and one with a redacted key in its prompt.

A long agent loop (a prompt, then function calls and their outputs) is looked up turn by turn, as a
WebSocket client sends it (chained ids, one new item per turn) and as an HTTP client does (the whole
history every turn). A cassette without redactions must cost what it did before placeholders
existed; one with a redacted part pays for filling the placeholders of each item it folds. The
last row matches with the ``codex`` volatile preset (seven rules, patterns over every string of
each new item): resent items cost a lookup each, not the rules again.

    python benchmarks/bench_matching.py [--turns 200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from pytest_responses_ws.cassette.model import RecordedEvent, Turn
from pytest_responses_ws.cassette.redact import Redactor
from pytest_responses_ws.core.match import TurnIndex
from pytest_responses_ws.core.volatile import compile_volatile

TOOLS = [{"type": "function", "name": f"tool_{i}", "parameters": {"type": "object"}} for i in range(8)]


def _message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def session(turns: int, prompt: str) -> tuple[list[Turn], list[dict[str, Any]], list[dict[str, Any]]]:
    """The recorded turns (scrubbed as the recorder does), and the requests of both kinds of client."""
    redactor = Redactor()
    recorded, http, ws = [], [], []
    history: list[dict[str, Any]] = [_message(prompt)]
    for i in range(turns):
        call = {"type": "function_call", "call_id": f"call_{i}", "name": "tool_1", "arguments": "{}"}
        http.append({"model": "gpt-5.2", "tools": TOOLS, "input": list(history)})
        chained = {
            "model": "gpt-5.2",
            "tools": TOOLS,
            "previous_response_id": f"resp_{i - 1}",
            "input": history[-1:],
        }
        ws.append(chained if i else http[-1])
        response = {"id": f"resp_{i}", "status": "completed", "output": [call]}
        event = {"type": "response.completed", "response": response}
        recorded.append(Turn(request=redactor.scrub(ws[-1]), events=(RecordedEvent(0.0, event),)))
        history += [call, {"type": "function_call_output", "call_id": f"call_{i}", "output": "sunny " * 20}]
    return recorded, http, ws


def per_turn_us(
    recorded: list[Turn], requests: list[dict[str, Any]], rounds: int, volatile: tuple[str, ...] = ()
) -> float:
    """Best-of-``rounds`` lookup time per turn, in microseconds (a fresh index each round)."""
    best = float("inf")
    for _ in range(rounds):
        index = TurnIndex.build(recorded, volatile=compile_volatile(volatile))
        started = time.perf_counter()
        for request in requests:
            if not index.lookup(request).hit:
                raise SystemExit("benchmark bug: a request missed")
        best = min(best, (time.perf_counter() - started) / len(requests) * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    prompts = {
        "no redactions": ("plan a trip to Lisbon", ()),
        "redacted key": ("plan a trip to Lisbon, my key is sk-" + "proj-Abc123Def456Ghi789Jkl0", ()),
        "codex preset": (
            "<environment_context><cwd>/tmp/x</cwd></environment_context> plan a trip",
            ("codex",),
        ),
    }
    print(f"{args.turns} turns, best of {args.rounds}; microseconds per turn")
    print(f"{'cassette':<16}{'ws (chained)':>14}{'http (resent)':>15}")
    for label, (prompt, volatile) in prompts.items():
        recorded, http, ws = session(args.turns, prompt)
        ws_us = per_turn_us(recorded, ws, args.rounds, volatile)
        http_us = per_turn_us(recorded, http, args.rounds, volatile)
        print(f"{label:<16}{ws_us:>14.1f}{http_us:>15.1f}")


if __name__ == "__main__":
    main()
