"""The ``pytest-responses-ws`` command: cassette tools that run outside pytest."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .cassette.store import write_cassette_atomically
from .errors import RwsError


def _import_vcr(args: argparse.Namespace) -> int:
    from .cassette.vcr_import import import_vcr_cassette

    status = 0
    for source in args.cassettes:
        source_path = Path(source)
        target = Path(args.output) if args.output else source_path.with_suffix(".json")
        if args.output and len(args.cassettes) > 1:
            target = Path(args.output) / source_path.with_suffix(".json").name
        try:
            result = import_vcr_cassette(source_path)
        except RwsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        if not result.cassette.turns:
            print(f"{source_path}: no POST /responses interactions; nothing written", file=sys.stderr)
            status = 1
            continue
        write_cassette_atomically(target, result.cassette)
        note = f" (left out {len(result.skipped)} other interactions)" if result.skipped else ""
        print(f"{source_path} -> {target}: {len(result.cassette.turns)} turns{note}")
    return status


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
