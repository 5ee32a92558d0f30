"""The plugin's per-run state: resolved options, the lazily started server, test mounts.

``plugin.py`` keeps to hooks and fixtures of a few lines; they delegate here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import shlex
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .cassette.model import TRANSPORTS, Transport
from .config import (
    DEFAULT_LOCK_TIMEOUT_S,
    BudgetMode,
    RecordMode,
    Settings,
    parse_allow_hosts,
    parse_budget_mode,
    parse_budget_scale,
    parse_connection_max_age,
    parse_latency_model,
    parse_lock_timeout,
    parse_max_age,
    parse_on_expiry,
    parse_record_mode,
    parse_save,
    parse_seconds,
    parse_switch,
    parse_timing,
    parse_transports,
    parse_unplayed,
    parse_upstream,
    parse_verify_fail_on,
    parse_volatile,
    resolve_settings,
)
from .core.lifecycle import (
    Expiry,
    ExpiryAction,
    UnplayedPolicy,
    check_expiry,
    should_save,
    unplayed_to_report,
)
from .errors import BudgetExceededError, CassetteError, CassetteExpiredError, UnplayedTurnsError
from .settings import SIM_UPSTREAM

# The server, the cassette store, the reports and the client helpers are imported when a test
# first needs them: runs that load the plugin without using it do not pay for them.
if TYPE_CHECKING:
    from .cassette.model import Cassette
    from .cassette.store import CassetteLock
    from .guard import RefusingProxy
    from .handle import RwsHandle
    from .server.app import LoopbackServer
    from .server.mount import Mount
    from .server.prepared import ReplayCache, ReplaySource
    from .sim.hub import SimulatorHub
    from .sim.script import Script
    from .sim.simulator import Simulator

#: CLI option dest / ini name for each setting, and the parser that validates it.
OPTIONS: dict[str, tuple[str, Any]] = {
    "record_mode": ("rws_record_mode", parse_record_mode),
    "upstream": ("rws_upstream", parse_upstream),
    "timing": ("rws_timing", parse_timing),
    "cassette_dir": ("rws_cassette_dir", None),
    "allow_hosts": ("rws_allow_hosts", parse_allow_hosts),
    "upstream_first_event_timeout": ("rws_upstream_first_event_timeout", parse_seconds),
    "upstream_idle_timeout": ("rws_upstream_idle_timeout", parse_seconds),
    "strict": ("rws_strict", parse_switch),
    "connection_max_age": ("rws_connection_max_age", parse_connection_max_age),
    "unplayed": ("rws_unplayed", parse_unplayed),
    "save": ("rws_save", parse_save),
    "max_age": ("rws_max_age", parse_max_age),
    "on_expiry": ("rws_on_expiry", parse_on_expiry),
    "verify_fail_on": ("rws_verify_fail_on", parse_verify_fail_on),
    "latency_model": ("rws_latency_model", parse_latency_model),
    "volatile": ("rws_volatile", parse_volatile),
}
TRANSPORT_PARAM = "rws_transport"
#: Attribute of a test's teardown report carrying its measurement summary. Extra report
#: attributes travel with the report to the xdist controller; unlike user_properties they
#: stay out of JUnit XML.
SUMMARY_ATTRIBUTE = "rws_summary"
BUDGET_SCALE_ENV = "RWS_BUDGET_SCALE"
#: The expiry found when a test's mount opened, for its summary.
EXPIRY_KEY = pytest.StashKey["Expiry"]()
#: The positions of the recorded turns a test never played, for its summary.
UNPLAYED_KEY = pytest.StashKey[list[int]]()


class RwsLifecycleWarning(UserWarning):
    """A cassette's life needs attention: turns never played, expired, or a recording not written."""


class RwsSession:
    """State of one pytest run (one per xdist worker); registered on the config's stash."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._server: LoopbackServer | None = None
        self._replay_cache: ReplayCache | None = None
        self._simulators: SimulatorHub | None = None
        self._proxy: RefusingProxy | None = None
        self.cli = {key: config.getoption(dest) for key, (dest, _) in OPTIONS.items()}
        self.ini = {key: config.getini(dest) or None for key, (dest, _) in OPTIONS.items()}
        # Fail at start-up, not halfway through a run, on a value that can never work.
        for source, values in (("command line", self.cli), ("ini option", self.ini)):
            for key, value in values.items():
                parse = OPTIONS[key][1]
                if value is not None and parse is not None:
                    parse(value, f"{source} {OPTIONS[key][0]}")
        self.budget_mode = parse_budget_mode(
            config.getoption("rws_budgets") or config.getini("rws_budgets") or "enforce", "--rws-budgets"
        )
        scale = (
            config.getoption("rws_budget_scale")
            or os.environ.get(BUDGET_SCALE_ENV)
            or config.getini("rws_budget_scale")
        )
        self.budget_scale = (
            parse_budget_scale(scale, "--rws-budget-scale / $RWS_BUDGET_SCALE") if scale else 1.0
        )
        lock_timeout = config.getoption("rws_lock_timeout") or config.getini("rws_lock_timeout")
        self.lock_timeout_s = (
            parse_lock_timeout(lock_timeout, "--rws-lock-timeout / rws_lock_timeout")
            if lock_timeout
            else DEFAULT_LOCK_TIMEOUT_S
        )
        self.report_path = config.getoption("rws_report") or config.getini("rws_report") or None
        self.html_report_path = (
            config.getoption("rws_report_html") or config.getini("rws_report_html") or None
        )
        self.summaries: list[dict[str, Any]] = []
        self._call_outcomes: dict[str, str] = {}
        cli_transports = config.getoption("rws_transports")
        ini_transports = config.getini("rws_transports") or None
        self.transports: tuple[Transport, ...] = (
            parse_transports(cli_transports, "command line --rws-transports")
            if cli_transports
            else parse_transports(ini_transports, "ini option rws_transports")
            if ini_transports
            else TRANSPORTS
        )

    # -- server ------------------------------------------------------------------

    @property
    def server(self) -> LoopbackServer:
        """The loopback server, started on first use so runs that never need it pay nothing."""
        if self._server is None:
            from .server.app import LoopbackServer

            self._server = LoopbackServer().start()
        return self._server

    @property
    def replay_cache(self) -> ReplayCache:
        """Cassettes this process replays, decoded and prepared once while unchanged."""
        if self._replay_cache is None:
            from .server.prepared import ReplayCache

            self._replay_cache = ReplayCache()
        return self._replay_cache

    @property
    def simulators(self) -> SimulatorHub:
        """The simulated upstreams of scripted tests (``rws_script``, ``--rws-upstream=sim``)."""
        if self._simulators is None:
            from .sim.hub import SimulatorHub

            self._simulators = SimulatorHub()
        return self._simulators

    @property
    def server_port(self) -> int | None:
        """The loopback port, or None while the server has not started."""
        return None if self._server is None else self._server.runner.port

    @property
    def refusing_proxy(self) -> RefusingProxy:
        """The proxy replaying tests point their subprocesses at (started on first use)."""
        if self._proxy is None:
            from .guard import RefusingProxy

            self._proxy = RefusingProxy()
        return self._proxy

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        if self._simulators is not None:
            self._simulators.stop()
            self._simulators = None

    # -- collection -----------------------------------------------------------------

    def transports_for(self, marker_args: Sequence[Any] | None) -> tuple[Transport, ...]:
        """Transports a test runs over: the marker narrows the configured ones."""
        if marker_args is None:
            return self.transports
        wanted = parse_transports(list(marker_args), "@pytest.mark.rws_transports")
        return tuple(t for t in self.transports if t in wanted)

    # -- per test -----------------------------------------------------------------

    def settings_for(self, item: pytest.Item, fixture_config: Mapping[str, Any]) -> Settings:
        marker = item.get_closest_marker("rws_cassette")
        marker_options: dict[str, Any] = {}
        if marker is not None:
            if marker.args:
                marker_options["name"] = marker.args[0]
            marker_options.update(marker.kwargs)
        return resolve_settings(
            cli=self.cli, marker=marker_options, fixture=fixture_config or {}, ini=self.ini
        )

    def cassette_path_for(self, item: pytest.Item, settings: Settings) -> Path:
        """``<dir>/<module>/<test name and non-transport ids>.json``."""
        from .cassette.store import cassette_path, cassette_stem, clean_name

        module = Path(str(item.path)).stem
        if settings.cassette_dir is not None:
            directory = settings.cassette_dir
            if not directory.is_absolute():
                directory = self.config.rootpath / directory
            # Keep the test file's folder: tests/a/test_api.py and tests/b/test_api.py differ.
            folder = Path(str(item.path)).parent
            if folder.is_relative_to(self.config.rootpath):
                directory = directory / folder.relative_to(self.config.rootpath)
        else:
            directory = Path(str(item.path)).parent / "cassettes"
        if settings.cassette_name:
            return cassette_path(directory, module, clean_name(settings.cassette_name))
        function_name = getattr(item, "originalname", item.name)
        cls = getattr(item, "cls", None)
        if cls is not None:
            # TestA::test_x and TestB::test_x in one module must not share a cassette.
            function_name = f"{cls.__name__}.{function_name}"
        return cassette_path(directory, module, cassette_stem(function_name, non_transport_ids(item)))

    def record_command(self, item: pytest.Item) -> str:
        return f"pytest --rws-record-mode=once {shlex.quote(item.nodeid)}"

    def open_mount(
        self, item: pytest.Item, settings: Settings, transport: Transport, script: Script | None = None
    ) -> Mount:
        """The test's mount; with a ``script`` (or ``--rws-upstream=sim``) its upstream is a simulator."""
        from .cassette.store import check_cassette_path
        from .server.mount import Mount

        path = self.cassette_path_for(item, settings)
        check_cassette_path(path)  # before anything is recorded, not when it is written
        claim = self._claim_recording(path, settings)
        mount_id = ""
        try:
            source = self._existing_cassette(path, settings)
            expiry = self._expiry(path, settings, source.cassette if source is not None else None)
            found: Cassette | None = None
            if expiry is not None and settings.on_expiry is ExpiryAction.RERECORD:
                settings = dataclasses.replace(settings, record_mode=RecordMode.REWRITE)
                source, found = None, _found_cassette(path)
            elif settings.record_mode in (RecordMode.REWRITE, RecordMode.VERIFY):
                found = _found_cassette(path)
            mount_id = self.server.new_mount_id()
            simulator = None
            if script is not None or settings.upstream == SIM_UPSTREAM:
                simulator = self._simulator(mount_id, settings, script)
                settings = dataclasses.replace(settings, upstream=simulator[1])
            mount = Mount(
                mount_id,
                settings,
                path,
                source.cassette if source is not None else None,
                prepared=source.prepared if source is not None else None,
                record_command=self.record_command(item),
                transport=transport,
                cassette_lock=claim,
                lock_timeout_s=self.lock_timeout_s,
                found=found,
                simulated=simulator is not None,
            )
        except BaseException:
            if claim is not None:
                claim.release()
            self.release_simulator(mount_id)
            raise
        if simulator is not None:
            simulator[0].on_script_error = mount.fail  # a callable step that raised fails the test
        if expiry is not None:
            self._report_expiry(item, mount, expiry)
        return mount

    def _expiry(self, path: Path, settings: Settings, cassette: Cassette | None) -> Expiry | None:
        """The expiry of the cassette a test replays (None while fresh, or when it does not replay)."""
        if cassette is None or settings.max_age is None:
            return None
        recorded_with = cassette.recorded_with
        return check_expiry(
            cassette=str(path),
            recorded_at=cassette.recorded_at,
            recorded_by=f"pytest-responses-ws {recorded_with.plugin_version}"
            + (f" over {recorded_with.transport}" if recorded_with.transport else ""),
            max_age_s=settings.max_age,
            now=_dt.datetime.now(_dt.timezone.utc),
        )

    def _report_expiry(self, item: pytest.Item, mount: Mount, expiry: Expiry) -> None:
        item.stash[EXPIRY_KEY] = expiry
        action = mount.settings.on_expiry
        message = expiry.message(action)
        if mount.settings.record_mode is not RecordMode.REWRITE and action is ExpiryAction.FAIL:
            mount.fail(CassetteExpiredError(message))  # the test runs, then fails saying why
        else:
            self._warn(item, message)

    def _warn(self, item: pytest.Item, message: str) -> None:
        """A lifecycle warning attributed to the test, not to the plugin."""
        path, line, _ = item.location
        warnings.warn_explicit(
            RwsLifecycleWarning(message),
            RwsLifecycleWarning,
            str(self.config.rootpath / path),
            (line or 0) + 1,
        )

    # -- end of a test --------------------------------------------------------------

    def check_unplayed(self, item: pytest.Item, mount: Mount) -> None:
        """Report the recorded turns a passing test never played (``unplayed`` policy)."""
        __tracebackhide__ = True
        from .core.lifecycle import unplayed_message

        with mount.lock:
            unplayed = mount.index.unplayed()
        positions = unplayed_to_report(
            mount.settings.unplayed, replayed=mount.replays, test_passed=True, unplayed=unplayed
        )
        if not positions:
            return
        message = unplayed_message(mount.path, mount.index.turns, positions)
        item.stash[UNPLAYED_KEY] = list(positions)
        if mount.settings.unplayed is UnplayedPolicy.FAIL:
            raise UnplayedTurnsError(message)
        self._warn(item, message)

    def verify(self, mount: Mount) -> None:
        """Verify mode: compare the live answers with the cassette when the test body returns."""
        if mount.verifies and self._server is not None:
            import concurrent.futures

            from .server.app import STOP_FINISH_S

            with contextlib.suppress(concurrent.futures.TimeoutError):  # then finish compares
                self._server.runner.run_on_loop(mount.verify_live, STOP_FINISH_S)

    def decide_save(self, item: pytest.Item, mount: Mount, test_passed: bool) -> None:
        """Apply the ``save`` policy before the mount is removed (and its recording written)."""
        mount.save_recording = should_save(mount.settings.save, test_passed=test_passed)
        if not mount.save_recording and mount.recorder is not None and mount.recorder.turns:
            self._warn(
                item,
                f"pytest-responses-ws: the recording was not written to {mount.path}: the test did not "
                "pass (save='passed'); --rws-save=always writes it whatever happens",
            )

    def _simulator(self, key: str, settings: Settings, script: Script | None) -> tuple[Simulator, str]:
        """A simulator for one test, served under ``key``: (the simulator, its base URL)."""
        from .sim.app import SimulatorApp
        from .sim.simulator import Simulator

        simulator = Simulator(script)
        app = SimulatorApp(
            simulator,
            require_auth=False,
            latency=settings.latency_model if settings.timing.model else None,
        )
        return simulator, self.simulators.add(key, app)

    def script_mount(self, mount: Mount, script: Script) -> None:
        """``rws.script()``: the script answers the test from now on (see :meth:`Mount.simulate`)."""
        app = self.simulators.get(mount.id)
        if app is not None:
            app.simulator.script = script
            app.simulator.given_errors.clear()
            return
        if mount.replays and not mount.missing_cassette:
            return  # the test replays its cassette; nothing the simulator would answer
        simulator, url = self._simulator(mount.id, mount.settings, script)
        simulator.on_script_error = mount.fail
        try:
            mount.simulate(url)
        except BaseException:
            self.release_simulator(mount.id)
            raise

    def release(self, mount: Mount) -> None:
        """The test has ended: its simulator (if any) stops serving."""
        self.release_simulator(mount.id)

    def release_simulator(self, key: str) -> None:
        """Stop serving the simulator under ``key``, if one was started."""
        if self._simulators is not None:
            self._simulators.remove(key)

    def _claim_recording(self, path: Path, settings: Settings) -> CassetteLock | None:
        """In ``once`` mode, one process records a missing cassette; the others wait, then replay.

        Returns the held lock when this test is the one to record it.
        """
        if settings.record_mode is not RecordMode.ONCE or path.exists():
            return None
        from .cassette.store import CassetteLock

        claim = CassetteLock(path)
        claim.acquire(self.lock_timeout_s)
        if path.exists():  # recorded by another process while this one waited
            claim.release()
            return None
        return claim

    def _existing_cassette(self, path: Path, settings: Settings) -> ReplaySource | None:
        if settings.record_mode in (RecordMode.REWRITE, RecordMode.VERIFY) or not path.exists():
            return None
        return self.replay_cache.load(path)

    def lifecycle_summary(self, item: pytest.Item, mount: Mount) -> dict[str, Any]:
        """What the test's summary says of its cassette's life (only what happened)."""
        found: dict[str, Any] = {}
        expiry = item.stash.get(EXPIRY_KEY, None)
        if expiry is not None:
            found["expired"] = {**expiry.to_dict(), "action": mount.settings.on_expiry.value}
        unplayed = item.stash.get(UNPLAYED_KEY, None)
        if unplayed:
            found["unplayed"] = unplayed
        if mount.drift is not None:
            found["drift"] = {"cassette": str(mount.path), **mount.drift.to_dict()}
        return found

    # -- orphans --------------------------------------------------------------------

    def orphans(self, items: Sequence[pytest.Item]) -> list[Path]:
        """Cassette files under the cassette folders of ``items`` that none of them uses."""
        from .core.lifecycle import CassetteRoot, find_orphans

        roots: dict[Path, CassetteRoot] = {}
        used: set[Path] = set()
        modules: set[tuple[Path, str]] = set()
        for item in items:
            if "rws" not in getattr(item, "fixturenames", ()):
                continue
            path = self.cassette_path_for(item, self.settings_for(item, _collected_rws_config(item)))
            root = path.parent.parent
            roots.setdefault(root, CassetteRoot(root, Path(str(item.path)).parent))
            used.add(path)
            modules.add((root, path.parent.name))
        files = {root: sorted(root.rglob("*.json")) if root.is_dir() else [] for root in roots}
        test_files: set[Path] = set()
        for root, entry in roots.items():
            for found in files[root]:
                parts = found.relative_to(root).parts
                candidate = entry.test_folder / f"{parts[0]}.py"
                if len(parts) >= 2 and candidate.exists():
                    test_files.add(candidate)
        return find_orphans(roots.values(), used, modules, files, test_files)

    def handle_orphans(self, items: Sequence[pytest.Item], *, delete: bool) -> list[str]:
        """List (and with ``delete``, delete) the orphan cassettes; returns the lines to show."""
        orphans = self.orphans(items)
        root = self.config.rootpath
        verb = "deleted" if delete else "found"
        lines = [f"responses-ws: {len(orphans)} orphan cassette(s) {verb} (no collected test uses them)"]
        for path in orphans:
            shown = path.relative_to(root) if path.is_relative_to(root) else path
            if delete:
                try:
                    path.unlink()
                except OSError as exc:
                    lines.append(f"  {shown}: not deleted: {exc.strerror or exc}")
                    continue
            lines.append(f"  {shown}")
        if orphans and not delete:
            lines.append("  delete them with --rws-delete-orphans")
        return lines

    def lifecycle_sections(self) -> list[tuple[str, list[str]]]:
        """Run-summary sections: drift found by verify mode, expired cassettes, unplayed turns."""
        if not self.summaries:
            return []  # no test used rws: nothing to import or report
        from .report.lifecycle import drift_section, expired_section, unplayed_section

        sections = [
            ("drift against the live API (verify mode)", drift_section(self.summaries)),
            ("expired cassettes", expired_section(self.summaries)),
            ("recorded turns never played", unplayed_section(self.summaries)),
        ]
        return [(title, lines) for title, lines in sections if lines]

    # -- budgets ------------------------------------------------------------------

    def validate_budgets(self, items: list[pytest.Item]) -> None:
        """Reject a malformed ``rws_budget`` marker before any test runs."""
        for item in items:
            marker = item.get_closest_marker("rws_budget")
            if marker is None:
                continue
            if marker.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: rws_budget takes keyword limits only, got {marker.args!r}"
                )
            from .core.budgets import BudgetSpecError, parse_limits

            try:
                parse_limits(marker.kwargs)
            except BudgetSpecError as exc:
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.rws_budget: {exc}") from None

    def check_marker_budget(self, item: pytest.Item, handle: RwsHandle) -> None:
        """Apply the test's ``rws_budget`` marker to its measured turns."""
        __tracebackhide__ = True
        marker = item.get_closest_marker("rws_budget")
        if marker is None or self.budget_mode is BudgetMode.OFF:
            return
        report = handle.check_budget(dict(marker.kwargs))
        if report is None:
            return
        handle.violations.append(report)
        if self.budget_mode is BudgetMode.WARN:
            from .handle import RwsBudgetWarning

            # Attributed to the test, not to this hook.
            path, line, _ = item.location
            warnings.warn_explicit(
                RwsBudgetWarning(report), RwsBudgetWarning, str(self.config.rootpath / path), (line or 0) + 1
            )
            return
        raise BudgetExceededError(report)

    # -- reports ------------------------------------------------------------------

    def summary_for(self, item: pytest.Item, handle: RwsHandle) -> dict[str, Any]:
        from .core.budgets import MODEL_METRICS
        from .report.summary import summarize

        # Modeled tests (replayed under the model, or budgeting its gain) report its projection;
        # the others do not pay for counting tokens.
        marker = item.get_closest_marker("rws_budget")
        modeled = handle.settings.timing.model or (
            marker is not None and any(key in MODEL_METRICS for key in marker.kwargs)
        )
        turns = handle.modeled_turns() if modeled else handle.turns
        return summarize(
            nodeid=item.nodeid,
            test=transport_free_id(item),
            transport=handle.transport,
            turns=turns,
            counts=handle.counts(),
            violations=list(handle.violations),
            projection=handle.projection_of(turns).as_dict() if modeled else None,
        )

    def collect(self, report: pytest.TestReport) -> None:
        """Keep the summary a test's teardown report carries (from any xdist worker)."""
        if report.when == "call":
            self._call_outcomes[report.nodeid] = report.outcome
        summary = getattr(report, SUMMARY_ATTRIBUTE, None)
        if report.when == "teardown" and isinstance(summary, dict):
            outcome = self._call_outcomes.get(report.nodeid, report.outcome)
            self.summaries.append({**summary, "outcome": outcome})

    def summary_lines(self) -> list[str]:
        measured = [s for s in self.summaries if s["turns"]]
        if not measured:
            return []
        from .report.summary import terminal_lines

        return terminal_lines(measured)

    def model_lines(self) -> list[str]:
        """The terminal section of modeled service time per transport (modeled tests only)."""
        measured = [s for s in self.summaries if s["turns"]]
        if not measured:
            return []
        from .report.summary import model_lines

        return model_lines(measured)

    def write_reports(self) -> list[str]:
        """Write the reports asked for; returns one message per report that could not be written."""
        if not (self.report_path or self.html_report_path or self.summaries):
            return []  # none asked for, and no test used rws: nothing to import or write
        from .report import write_text_atomically
        from .report.summary import report_document

        measured = [s for s in self.summaries if s["turns"]]
        document = report_document(measured)
        problems: list[str] = []

        def attempt(path: Path, render: Callable[[], str], append: bool = False) -> None:
            try:
                if append:
                    with open(path, "a", encoding="utf-8") as handle:
                        handle.write(render())
                else:
                    write_text_atomically(path, render())
            except OSError as exc:
                problems.append(
                    f"pytest-responses-ws: could not write the report {path}: {exc.strerror or exc}"
                )

        from .report.lifecycle import drift_document

        drift = drift_document(self.summaries)
        if drift:
            document["drift"] = drift  # verify mode's findings; the HTML report shows them too
        if self.report_path:
            attempt(self._path(self.report_path), lambda: json.dumps(document, indent=2) + "\n")
        if self.html_report_path:
            from .report.html import render_html

            attempt(self._path(self.html_report_path), lambda: render_html(document))
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary and measured:
            attempt(Path(step_summary), lambda: _step_summary(measured), append=True)
        return problems

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.config.invocation_params.dir / path


def _collected_rws_config(item: pytest.Item) -> Mapping[str, Any]:
    """The ``rws_config`` fixture's value for ``item`` at collection, when it takes no fixtures.

    Orphans are found before any test runs, so no fixture can be set up; an ``rws_config``
    that needs other fixtures is a usage error for the orphan options.
    """
    import inspect

    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.get("rws_config") if info is not None else None
    if not definitions:
        return {}
    function = definitions[-1].func
    if inspect.signature(function).parameters:
        raise pytest.UsageError(
            f"{item.nodeid}: the rws_config fixture takes fixtures, so --rws-list-orphans and "
            "--rws-delete-orphans cannot know its cassette folder; set cassette_dir in the ini file"
        )
    value = function()
    return value if isinstance(value, Mapping) else {}


def _step_summary(measured: Sequence[Mapping[str, Any]]) -> str:
    """The GitHub step summary: the per-turn table, and the modeled times when a test was modeled."""
    from .report.summary import markdown_table, model_rows

    text = "### Responses API per-turn overhead (ms)\n\n" + markdown_table(measured) + "\n\n"
    modeled = model_rows(measured)
    if modeled:
        text += (
            "### Modeled service time, HTTP vs WebSocket (* projected)\n\n"
            + markdown_table(measured, modeled)
            + "\n\n"
        )
    return text


def _found_cassette(path: Path) -> Cassette | None:
    """The cassette at ``path`` if it can be read (a rewrite replaces an unreadable one)."""
    from .cassette.store import load_cassette

    try:
        return load_cassette(path) if path.is_file() else None
    except CassetteError:
        return None


def transport_free_id(item: pytest.Item) -> str:
    """The item's node id without the transport id: the same for its [http] and [ws] runs."""
    base = item.nodeid.split("[", 1)[0]
    ids = non_transport_ids(item)
    return f"{base}[{'-'.join(ids)}]" if ids else base


def non_transport_ids(item: pytest.Item) -> list[str]:
    """The item's parametrize ids without the transport's, in order.

    Built from the callspec's id list (not the node name) because ids may contain
    ``-``; removing one occurrence of the transport id gives the same list whichever
    of several equal ids is removed.
    """
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return []
    ids = list(getattr(callspec, "_idlist", None) or callspec.id.split("-"))
    transport = callspec.params.get(TRANSPORT_PARAM)
    if transport in ids:
        ids.remove(transport)
    return ids
