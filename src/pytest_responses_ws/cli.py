"""The ``pytest-responses-ws`` command: tools that run outside pytest.

``import`` converts recordings made by other tools (``import-vcr`` is its first name, kept);
``serve`` replays cassettes on a loopback server for clients in any language.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cassette.store import write_cassette_atomically
from .errors import CassetteFormatError, RwsError

if TYPE_CHECKING:
    from .cassette.vcr_import import ImportResult


def _import(args: argparse.Namespace) -> int:
    from .cassette.vcr_import import import_recording

    sources = [Path(source) for source in args.cassettes]
    inputs = {source.resolve() for source in sources}
    failed = 0
    for source in sources:
        target = Path(args.output) if args.output else source.with_suffix(".json")
        if args.output and len(sources) > 1:
            target = Path(args.output) / source.with_suffix(".json").name
        problem = _import_one(import_recording, source, target, inputs)
        if problem:
            print(f"error: {source}: {problem}", file=sys.stderr)
            failed += 1
    if failed:
        print(f"{failed} of {len(sources)} cassettes not converted", file=sys.stderr)
    return 1 if failed else 0


def _import_one(
    convert: Callable[[Path], ImportResult], source: Path, target: Path, inputs: set[Path]
) -> str:
    """Convert ``source`` into ``target``; returns what went wrong, in one line, or ``""``."""
    if target.resolve() in inputs:
        return f"the output {target} is one of the inputs; choose another with -o"
    try:
        result = convert(source)
        if not result.cassette.turns:
            return (
                "no Responses turns (POST /responses interactions or response.create frames); nothing written"
            )
        write_cassette_atomically(target, result.cassette)
    except CassetteFormatError as exc:
        return f"{exc.problem} (at {exc.pointer or '/'})"
    except (RwsError, OSError) as exc:
        return str(exc).splitlines()[0]
    note = f" (left out {len(result.skipped)} other interactions or frames)" if result.skipped else ""
    print(f"{source} -> {target}: {len(result.cassette.turns)} turns{note}")
    return ""


def _serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .serve import ServeError, ServeOptions, open_server, parse_budget, run, settings_for_serve
    from .settings import SettingsError, parse_budget_scale, resolve_settings

    try:
        settings = settings_for_serve(
            {
                "timing": args.timing,
                "strict": args.strict,
                "volatile": args.volatile,
                "ignore_fields": args.ignore_field,
                "allow_playback_repeats": True if args.allow_repeats else None,
                "connection_max_age": args.connection_max_age,
            },
            resolve_settings,
        )
        options = ServeOptions(
            target=Path(args.target),
            settings=settings,
            host=args.host,
            port=args.port,
            report=Path(args.report) if args.report else None,
            budget=parse_budget(args.budget or ()),
            budget_scale=parse_budget_scale(args.budget_scale, "--budget-scale"),
            max_time_s=args.max_time,
        )
    except (ServeError, SettingsError) as exc:
        print(f"pytest-responses-ws serve: error: {exc}", file=sys.stderr)
        return 2
    server = open_server(options, sys.stderr)
    if server is None:
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return run(server, stop, sys.stdout, sys.stderr)


def _positive(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be a positive number of seconds")
    return seconds


def _add_import(commands: Any, name: str, help: str) -> None:
    importer = commands.add_parser(
        name,
        help=help,
        description="Convert recordings made by other tools to pytest-responses-ws cassettes, told apart "
        "by their content: vcrpy / pytest-recording YAML cassettes (each POST /responses interaction "
        "becomes a turn) and WebSocket frame logs (direction sent/received and data, as pydantic-ai "
        "records them). Every turn replays over HTTP and WebSocket mode.",
    )
    importer.add_argument("cassettes", nargs="+", help="vcrpy YAML cassettes or WebSocket frame logs")
    importer.add_argument(
        "-o",
        "--output",
        help="output file (one input) or folder (several); default: next to each input, .json",
    )
    importer.set_defaults(run=_import)


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="replay cassettes on a loopback server for clients in any language",
        description="Replay one cassette, or every cassette under a folder, on a loopback server: a path per "
        "cassette, over HTTP (SSE) and WebSocket mode, as strict as in pytest. Misses are printed to stderr "
        "with the miss report; the exit status is 1 if any request failed or a budget broke. Stops on "
        "SIGINT or SIGTERM.",
    )
    serve.add_argument("target", help="a cassette file, or a folder of cassettes")
    serve.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--timing", help="instant (default), recorded, or a factor such as 0.5")
    serve.add_argument("--strict", choices=("on", "off"), help="refuse what the service refuses (default on)")
    serve.add_argument("--volatile", action="append", metavar="RULE", help="a volatile rule; repeat for more")
    serve.add_argument(
        "--ignore-field", action="append", metavar="FIELD", help="a field left out of matching"
    )
    serve.add_argument(
        "--allow-repeats", action="store_true", help="let a recorded turn answer more than once"
    )
    serve.add_argument("--connection-max-age", metavar="SECONDS", help="WebSocket age limit (default 3600)")
    serve.add_argument("--report", metavar="PATH", help="write the per-turn measurements as JSON at the end")
    serve.add_argument(
        "--budget", action="append", metavar="METRIC=VALUE", help="a budget such as overhead_ms=5; repeatable"
    )
    serve.add_argument(
        "--budget-scale", default="1", metavar="FACTOR", help="multiply time budgets (default 1)"
    )
    serve.add_argument("--max-time", type=_positive, metavar="SECONDS", help="stop after this long")
    serve.set_defaults(run=_serve)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pytest-responses-ws", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_import(commands, "import", "convert vcrpy / pytest-recording cassettes and WebSocket frame logs")
    _add_import(commands, "import-vcr", "the same as import (its first name)")
    _add_serve(commands)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
