"""The ``pytest-responses-ws`` command: cassette tools that run outside pytest."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .cassette.store import write_cassette_atomically
from .errors import CassetteFormatError, RwsError

if TYPE_CHECKING:
    from .cassette.vcr_import import ImportResult


def _import_vcr(args: argparse.Namespace) -> int:
    from .cassette.vcr_import import import_vcr_cassette

    sources = [Path(source) for source in args.cassettes]
    inputs = {source.resolve() for source in sources}
    failed = 0
    for source in sources:
        target = Path(args.output) if args.output else source.with_suffix(".json")
        if args.output and len(sources) > 1:
            target = Path(args.output) / source.with_suffix(".json").name
        problem = _import_one(import_vcr_cassette, source, target, inputs)
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
            return "no POST /responses interactions; nothing written"
        write_cassette_atomically(target, result.cassette)
    except CassetteFormatError as exc:
        return f"{exc.problem} (at {exc.pointer or '/'})"
    except (RwsError, OSError) as exc:
        return str(exc).splitlines()[0]
    note = f" (left out {len(result.skipped)} other interactions)" if result.skipped else ""
    print(f"{source} -> {target}: {len(result.cassette.turns)} turns{note}")
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pytest-responses-ws", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    importer = commands.add_parser(
        "import-vcr",
        help="convert vcrpy / pytest-recording YAML cassettes with /v1/responses traffic",
        description="Convert vcrpy / pytest-recording YAML cassettes to pytest-responses-ws cassettes. "
        "Each POST /responses interaction becomes a turn that replays over HTTP and WebSocket mode.",
    )
    importer.add_argument("cassettes", nargs="+", help="vcrpy YAML cassette files")
    importer.add_argument(
        "-o",
        "--output",
        help="output file (one input) or folder (several); default: next to each input, .json",
    )
    importer.set_defaults(run=_import_vcr)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
