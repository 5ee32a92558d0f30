"""``pytest-responses-ws serve``: the loopback replay server outside pytest.

For test suites in other languages (vitest, jest, go test) and manual sessions: each
cassette gets a path of its own on one loopback port, replayed over HTTP and WebSocket mode
with the same matching and strictness as in pytest. Misses are printed to stderr as they
happen, with the miss report; the exit status is 1 when any request failed or a budget was
broken, so a CI step that wraps a foreign test suite fails too. Runs until SIGINT or SIGTERM
(or ``--max-time``). Pytest-free: it uses the server layer, the core and the settings only.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .cassette.model import TRANSPORTS, Cassette
from .cassette.store import load_cassette
from .core.budgets import BudgetSpecError, budget_report, evaluate, parse_limits
from .errors import CassetteError, RwsError, ServerStartError
from .report import write_text_atomically
from .report.summary import report_document, summarize
from .server.app import LoopbackServer
from .server.mount import Mount
from .settings import RecordMode, Settings, SettingsError

#: What marks a file as a cassette of this plugin (others in a folder are left alone).
CASSETTE_FORMAT = "pytest-responses-ws/cassette"
#: How often the main thread looks at the stop signal and the deadline (seconds).
POLL_S = 0.2
RECORD_HINT = (
    "(serve only replays: record the missing turns from a pytest test with --rws-record-mode=new_episodes)"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ServeError(RwsError):
    """``serve`` cannot start: a bad path, an unreadable cassette, a non-loopback host."""


@dataclass(frozen=True)
class ServeOptions:
    """What ``serve`` was asked for (validated by :func:`prepare`)."""

    target: Path
    settings: Settings = field(default_factory=Settings)
    host: str = "127.0.0.1"
    port: int = 0
    report: Path | None = None
    budget: Mapping[str, Any] = field(default_factory=dict)
    budget_scale: float = 1.0
    max_time_s: float | None = None


@dataclass(frozen=True)
class Served:
    """One cassette on the server."""

    path: Path
    name: str
    cassette: Cassette


def check_host(host: str) -> str:
    """The host to listen on: an IPv4 loopback address (never one reachable from outside)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise ServeError(f"--host {host!r}: serve listens on loopback only; use 127.0.0.1 (or 127.x.y.z)")
    return host


def find_cassettes(target: Path) -> list[Served]:
    """The cassettes at ``target`` (a file, or every cassette under a folder), each with its mount name."""
    if target.is_file():
        paths, root = [target], target.parent
    elif target.is_dir():
        root = target
        paths = [p for p in sorted(target.rglob("*.json")) if _is_cassette(p)]
    else:
        raise ServeError(f"{target}: no such file or folder")
    if not paths:
        raise ServeError(f"{target}: no pytest-responses-ws cassettes (*.json) under it")
    served, names = [], set()
    for path in paths:
        try:
            cassette = load_cassette(path)
        except CassetteError as exc:
            raise ServeError(str(exc).splitlines()[0]) from None
        name = _UNSAFE.sub("_", str(path.relative_to(root).with_suffix("")).replace("/", ".")) or "cassette"
        unique, count = name, 1
        while unique in names:
            count += 1
            unique = f"{name}-{count}"
        names.add(unique)
        served.append(Served(path, unique, cassette))
    return served


def _is_cassette(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return CASSETTE_FORMAT in handle.read(4096)
    except (OSError, UnicodeDecodeError):
        return False


class ServedMount(Mount):
    """A mount that tells ``serve`` about each failure as it happens."""

    def __init__(self, *args: Any, on_failure: Callable[[Mount, RwsError], None], **kwargs: Any) -> None:
        self._on_failure = on_failure
        super().__init__(*args, **kwargs)

    def fail(self, error: RwsError) -> None:
        super().fail(error)
        self._on_failure(self, error)


class Server:
    """The cassettes of one ``serve`` run, mounted on a loopback server."""

    def __init__(self, options: ServeOptions, err: TextIO) -> None:
        check_host(options.host)
        try:
            self.limits = parse_limits(options.budget) if options.budget else []
        except BudgetSpecError as exc:
            raise ServeError(f"--budget: {exc}") from None
        self.options = options
        self.served = find_cassettes(options.target)
        self._err = err
        self._print_lock = threading.Lock()
        self.failures = 0
        self.server = LoopbackServer(host=options.host, port=options.port)
        self.mounts: list[tuple[Served, ServedMount]] = []

    def start(self) -> None:
        try:
            self.server.start()
        except ServerStartError as exc:
            raise ServeError(str(exc)) from None
        for served in self.served:
            mount = ServedMount(
                served.name,
                self.options.settings,
                served.path,
                served.cassette,
                record_command=RECORD_HINT,
                on_failure=self._report_failure,
            )
            self.server.add(mount)
            self.mounts.append((served, mount))

    def _report_failure(self, mount: Mount, error: RwsError) -> None:
        with self._print_lock:
            self.failures += 1
            print(f"pytest-responses-ws serve: FAILED ({mount.path}):\n{error}\n", file=self._err, flush=True)

    def urls(self) -> list[tuple[Served, str, str]]:
        """(cassette, HTTP base URL, WebSocket base URL) of each mount."""
        return [
            (served, self.server.base_url(mount), self.server.websocket_base_url(mount))
            for served, mount in self.mounts
        ]

    def stop(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Stop serving: every mount's summaries (per transport used) and budget breaches."""
        summaries: list[dict[str, Any]] = []
        breaches: list[str] = []
        for served, mount in self.mounts:
            failures = self.server.remove(mount)
            turns = mount.turn_metrics()
            for transport in TRANSPORTS:
                used = [t for t in turns if t.transport == transport]
                if not used:
                    continue
                violations = evaluate(
                    self.limits,
                    used,
                    transport=transport,
                    counts=mount.counts(),
                    scale=self.options.budget_scale,
                )
                report = (
                    [budget_report(violations, used, transport=transport, scale=self.options.budget_scale)]
                    if violations
                    else []
                )
                breaches += [f"{served.path}: {line}" for line in report]
                summary = summarize(
                    nodeid=str(served.path),
                    test=served.name,
                    transport=transport,
                    turns=used,
                    counts=mount.counts(),
                    outcome="failed" if failures or report else "passed",
                    violations=report,
                )
                summaries.append(summary)
        self.server.stop()
        return summaries, breaches


def open_server(options: ServeOptions, err: TextIO) -> Server | None:
    """The started server, or None after printing why it cannot start."""
    try:
        server = Server(options, err)
        server.start()
    except (ServeError, SettingsError) as exc:
        print(f"pytest-responses-ws serve: error: {exc}", file=err, flush=True)
        return None
    return server


def run(server: Server, stop: threading.Event, out: TextIO, err: TextIO) -> int:
    """Serve until ``stop`` is set (or ``max_time_s`` passes); the exit status (0: no failure)."""
    options = server.options
    _print_urls(server, out)
    deadline = None if options.max_time_s is None else time.monotonic() + options.max_time_s
    while not stop.wait(POLL_S):
        if deadline is not None and time.monotonic() >= deadline:
            break
    summaries, breaches = server.stop()
    for breach in breaches:
        print(f"pytest-responses-ws serve: budget exceeded: {breach}\n", file=err, flush=True)
    status = 1 if server.failures or breaches else 0
    if options.report is not None:
        try:
            write_text_atomically(options.report, _json(report_document(summaries)))
        except OSError as exc:
            print(f"pytest-responses-ws serve: could not write {options.report}: {exc}", file=err, flush=True)
            status = 1
    turns = sum(s["turns"] for s in summaries)
    print(
        f"pytest-responses-ws serve: stopped; {turns} requests, {server.failures} failures, "
        f"{len(breaches)} budgets exceeded",
        file=err,
        flush=True,
    )
    return status


def _print_urls(server: Server, out: TextIO) -> None:
    urls = server.urls()
    print(f"pytest-responses-ws serve: {len(urls)} cassette(s) on {server.server.origin}", file=out)
    for served, http, ws in urls:
        print(f"{served.path}\n  http: {http}\n  ws:   {ws}", file=out)
    if len(urls) == 1:
        print(f"export OPENAI_BASE_URL={urls[0][1]} OPENAI_WEBSOCKET_BASE_URL={urls[0][2]}", file=out)
    print("ready (Ctrl-C or SIGTERM to stop)", file=out, flush=True)


def _json(document: Mapping[str, Any]) -> str:
    import json

    return json.dumps(document, indent=2) + "\n"


def settings_for_serve(values: Mapping[str, Any], parse: Callable[..., Settings]) -> Settings:
    """Settings from command-line values (validated as the plugin's), for replay only."""
    given = {key: value for key, value in values.items() if value is not None}
    return parse(cli={**given, "record_mode": RecordMode.NONE.value}, marker={}, fixture={}, ini={})


def parse_budget(entries: Sequence[str]) -> dict[str, Any]:
    """``--budget METRIC=VALUE`` entries as the marker's keywords (VALUE as JSON, else text)."""
    import json

    limits: dict[str, Any] = {}
    for entry in entries:
        metric, sep, raw = entry.partition("=")
        if not sep or not metric.strip():
            raise ServeError(f"--budget {entry!r}: expected METRIC=VALUE such as overhead_ms=5")
        try:
            limits[metric.strip()] = json.loads(raw)
        except ValueError:
            limits[metric.strip()] = raw.strip()
    return limits
