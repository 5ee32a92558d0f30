"""pytest hooks and fixtures of pytest-responses-ws (entry point ``responses_ws``).

Each hook and fixture is a few lines delegating to :class:`~.session.RwsSession`,
the mount and the pure core.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .cassette.model import TRANSPORTS, Transport
from .config import SETTING_KEYS
from .errors import CassetteError, NetworkAccessError, RwsError, combine_failures
from .session import SUMMARY_ATTRIBUTE, TRANSPORT_PARAM, RwsSession

# The server, the handle, the guards and the fault plan are imported by the hooks and fixtures
# that use them: a run that loads the plugin without using it pays only for what is above.
if TYPE_CHECKING:
    from .core.faults import Fault
    from .handle import RwsHandle
    from .server.app import LoopbackServer
    from .server.mount import Mount
    from .settings import Settings
    from .sim.script import Script

SESSION_KEY = pytest.StashKey[RwsSession]()
MOUNT_KEY: pytest.StashKey[Mount] = pytest.StashKey()
HANDLE_KEY: pytest.StashKey[RwsHandle] = pytest.StashKey()
SUMMARY_KEY = pytest.StashKey[dict[str, Any]]()
#: Every collected item, before deselection (the orphan options judge cassettes by them).
ALL_ITEMS_KEY = pytest.StashKey[list[pytest.Item]]()
#: Failures already raised in the call phase, so teardown does not report them twice.
REPORTED_KEY = pytest.StashKey[int]()
#: Whether the test's call phase passed (the ``save`` policy reads it at teardown).
PASSED_KEY = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("responses-ws", "pytest-responses-ws: record and replay Responses API sessions")

    def option(flag: str, dest: str, help: str, metavar: str) -> None:
        group.addoption(flag, dest=dest, default=None, metavar=metavar, help=help)
        parser.addini(dest, help=f"{help} (ini twin of {flag})", default=None)

    option(
        "--rws-record-mode",
        "rws_record_mode",
        "none (replay only, default), once, new_episodes, all, rewrite, or verify (send requests live, "
        "keep the cassette, report drift)",
        "MODE",
    )
    option(
        "--rws-upstream",
        "rws_upstream",
        "API base URL recorded from (default https://api.openai.com/v1)",
        "URL",
    )
    option(
        "--rws-transports",
        "rws_transports",
        "comma-separated transports to run tests over (default http,ws)",
        "LIST",
    )
    option(
        "--rws-timing",
        "rws_timing",
        "replay pacing: instant (default), recorded, a factor such as 0.5, or model (the latency "
        "model's service time, see --rws-latency-model)",
        "TIMING",
    )
    option(
        "--rws-cassette-dir",
        "rws_cassette_dir",
        "cassette folder (default: cassettes/ next to each test file)",
        "DIR",
    )
    option(
        "--rws-upstream-first-event-timeout",
        "rws_upstream_first_event_timeout",
        "while recording, seconds the upstream may take to start answering a request before the "
        "test fails (default 180)",
        "SECONDS",
    )
    option(
        "--rws-upstream-idle-timeout",
        "rws_upstream_idle_timeout",
        "while recording, seconds the upstream may stay silent in the middle of an answer before the "
        "test fails (default 180)",
        "SECONDS",
    )
    # --rws-strict[=on|off] and --no-rws-strict share one dest: None means not given.
    group.addoption(
        "--rws-strict",
        dest="rws_strict",
        default=None,
        nargs="?",
        const="on",
        metavar="on|off",
        help="replay refuses what the service refuses: a chain from a store:false response not on the "
        "same WebSocket connection gets previous_response_not_found (default on)",
    )
    group.addoption(
        "--no-rws-strict",
        dest="rws_strict",
        action="store_const",
        const="off",
        help="replay resolves every recorded previous_response_id (same as --rws-strict=off)",
    )
    parser.addini("rws_strict", help="on (default) or off: the ini twin of --rws-strict", default=None)
    option(
        "--rws-connection-max-age",
        "rws_connection_max_age",
        "seconds a WebSocket connection may live, as the service's 60-minute limit: a response.create "
        "on an older one gets websocket_connection_limit_reached and the close (default 3600)",
        "SECONDS",
    )
    group.addoption(
        "--rws-volatile",
        dest="rws_volatile",
        default=None,
        action="append",
        metavar="RULE",
        help="a part of requests that varies between runs and must not decide a match: a JSON pointer "
        "(/prompt_cache_key, /input/*/content/*/text), re:PATTERN, or a preset (codex, dates, uuids, "
        "temp_paths); repeat for more (default: none)",
    )
    parser.addini(
        "rws_volatile",
        help="volatile rules, one per line: the ini twin of --rws-volatile",
        type="linelist",
        default=None,
    )
    option(
        "--rws-latency-model",
        "rws_latency_model",
        "the service's latency model for --rws-timing=model and the projected WebSocket gain: a "
        "preset (fast, ~1,000 tok/s, default; slow, ~65 tok/s) and overrides such as "
        "fast,ttft_ms=150,scale=0.01",
        "SPEC",
    )
    option(
        "--rws-budgets", "rws_budgets", "enforce (default), warn or off: what a broken budget does", "MODE"
    )
    option(
        "--rws-budget-scale",
        "rws_budget_scale",
        "multiply time budgets by this factor on slow machines (default 1, or $RWS_BUDGET_SCALE)",
        "FACTOR",
    )
    option(
        "--rws-allow-hosts",
        "rws_allow_hosts",
        "hosts a replaying test may reach besides loopback: names, *.domain, addresses or "
        "networks, comma-separated (default: none)",
        "HOSTS",
    )
    option(
        "--rws-lock-timeout",
        "rws_lock_timeout",
        "seconds a test waits for another process recording the same cassette (default 300)",
        "SECONDS",
    )
    _lifecycle_options(group, option)
    option("--rws-report", "rws_report", "write every test's per-turn measurements as JSON to PATH", "PATH")
    option(
        "--rws-report-html", "rws_report_html", "write a self-contained HTML waterfall report to PATH", "PATH"
    )


def _lifecycle_options(group: Any, option: Any) -> None:
    """The options of a cassette's life: unplayed turns, saving, expiry, verify, orphans."""
    option(
        "--rws-unplayed",
        "rws_unplayed",
        "warn (default), fail or off: what recorded turns a passing test never played do",
        "POLICY",
    )
    option(
        "--rws-save",
        "rws_save",
        "passed (default: write a recording only when its test passed) or always",
        "POLICY",
    )
    option(
        "--rws-max-age",
        "rws_max_age",
        "cassettes older than this expire: 90d, 12h, 30m, seconds, or off (default)",
        "AGE",
    )
    option(
        "--rws-on-expiry",
        "rws_on_expiry",
        "warn (default), fail or rerecord: what an expired cassette does",
        "ACTION",
    )
    option(
        "--rws-verify-fail-on",
        "rws_verify_fail_on",
        "in verify mode, the drift that fails a test: structure (default; text drift is reported), all "
        "or none",
        "WHAT",
    )
    # Actions on files, not settings: no ini twin, so deleting is never a configured default.
    group.addoption(
        "--rws-list-orphans",
        dest="rws_list_orphans",
        action="store_true",
        default=False,
        help="list cassette files that no collected test uses (run without -n)",
    )
    group.addoption(
        "--rws-delete-orphans",
        dest="rws_delete_orphans",
        action="store_true",
        default=False,
        help="delete the cassette files --rws-list-orphans lists (run without -n)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "rws_cassette(name=None, **options): name this test's cassette and override settings "
        f"({', '.join(SETTING_KEYS)})",
    )
    config.addinivalue_line(
        "markers",
        "rws_faults(*faults): inject these failures (pytest_responses_ws.faults.close(), "
        "http_status(429), ...) into this test's turns",
    )
    config.addinivalue_line(
        "markers", "rws_transports(*names): run this test over only these transports (http, ws)"
    )
    config.addinivalue_line(
        "markers",
        "rws_script(*steps): answer this test from the simulator, one step per model turn "
        "(pytest_responses_ws.sim Text, FunctionCall, a list of them, Error, or a callable); no "
        "cassette or key needed",
    )
    config.addinivalue_line(
        "markers",
        "rws_budget(**limits): fail the test when its turns break these limits, e.g. overhead_ms=5, "
        "resent_items=0, connections=1, overhead_ms={'http': 20, 'ws': 2} (see the budgets docs)",
    )
    orphans = config.getoption("rws_list_orphans") or config.getoption("rws_delete_orphans")
    if orphans and getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        raise pytest.UsageError(
            "pytest-responses-ws: --rws-list-orphans and --rws-delete-orphans judge every collected "
            "test at once: run them without -n (for example pytest --collect-only -q --rws-list-orphans)"
        )
    session = RwsSession(config)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(ReportHooks(session), "responses_ws_reports")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.stop()


class ReportHooks:
    """Collects per-test summaries (from xdist workers too) and writes the reports once."""

    def __init__(self, session: RwsSession) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.session.collect(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = self.session.summary_lines()
        if lines:
            terminalreporter.write_sep("-", "responses-ws: per-turn overhead (ms)")
            for line in lines:
                terminalreporter.write_line(line)
        for title, section in self.session.lifecycle_sections():
            terminalreporter.write_sep("-", f"responses-ws: {title}")
            for line in section:
                terminalreporter.write_line(line)
        modeled = self.session.model_lines()
        if modeled:
            terminalreporter.write_sep("-", "responses-ws: modeled service time, HTTP vs WebSocket")
            for line in modeled:
                terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # the controller (or a run without xdist) writes the reports
        problems = self.session.write_reports()
        if problems:
            # CI reads the reports: a run that could not write one is not green.
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            for problem in problems:
                if reporter is not None:
                    reporter.write_line(problem, red=True, bold=True)
                else:
                    sys.stderr.write(problem + "\n")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    # pytest-recording in the same run: its cassettes must not capture our loopback traffic.
    from .clients import exclude_loopback_from_vcr

    session = config.stash[SESSION_KEY]
    exclude_loopback_from_vcr(vcr, lambda: session.server_port)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if TRANSPORT_PARAM not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION_KEY]
    marker = metafunc.definition.get_closest_marker("rws_transports")
    try:
        selected = session.transports_for(marker.args if marker else None)
    except pytest.UsageError as exc:
        # A collection error shows just this message, without the plugin's frames.
        raise pytest.Collector.CollectError(str(exc)) from None
    if selected:
        metafunc.parametrize(TRANSPORT_PARAM, list(selected), ids=list(selected), indirect=True)
        return
    # The test asks only for transports this run disabled: show it as skipped, saying why.
    wanted = [name for name in (marker.args if marker else ()) if name in TRANSPORTS]
    reason = (
        f"this test runs over {' and '.join(wanted)} only, which this run disables "
        "(--rws-transports or the rws_transports ini option)"
    )
    params = [pytest.param(name, marks=pytest.mark.skip(reason=reason)) for name in wanted]
    metafunc.parametrize(TRANSPORT_PARAM, params, ids=wanted, indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A malformed budget is a usage error, found before anything runs.
    config.stash[SESSION_KEY].validate_budgets(items)
    if config.getoption("rws_list_orphans") or config.getoption("rws_delete_orphans"):
        # Before -k and -m deselect: a deselected test's cassette is no orphan.
        config.stash[ALL_ITEMS_KEY] = list(items)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.getoption("rws_list_orphans") or config.getoption("rws_delete_orphans"):
        items: list[pytest.Item] = config.stash.get(ALL_ITEMS_KEY, [])
        lines = config.stash[SESSION_KEY].handle_orphans(items, delete=config.getoption("rws_delete_orphans"))
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:
                sys.stdout.write(line + "\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    # Misses and budgets are known when the test body returns: fail the test itself, not
    # its teardown, and whatever the client did with the error event it was sent.
    __tracebackhide__ = True
    item.stash[PASSED_KEY] = False
    try:
        result = yield
    except pytest.skip.Exception:
        # A test that skips itself did not fail: what it recorded is kept unless the server saw a problem.
        mount = item.stash.get(MOUNT_KEY, None)
        item.stash[PASSED_KEY] = mount is None or len(mount.failures) <= item.stash.get(REPORTED_KEY, 0)
        raise
    except (Exception, pytest.fail.Exception) as exc:
        _close_async_clients(item)
        failures = _new_failures(item)
        if failures:
            raise combine_failures(failures) from exc
        raise
    _close_async_clients(item)
    mount = item.stash.get(MOUNT_KEY, None)
    if mount is not None:
        item.config.stash[SESSION_KEY].verify(mount)
    failures = _new_failures(item)
    if failures:
        raise combine_failures(failures)
    handle = item.stash.get(HANDLE_KEY, None)
    if handle is not None:
        item.config.stash[SESSION_KEY].check_marker_budget(item, handle)
    if mount is not None:
        item.config.stash[SESSION_KEY].check_unplayed(item, mount)
    item.stash[PASSED_KEY] = True
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if call.when == "teardown" and SUMMARY_KEY in item.stash:
        setattr(report, SUMMARY_ATTRIBUTE, item.stash[SUMMARY_KEY])
    excinfo = call.excinfo
    if report.failed and excinfo is not None and isinstance(excinfo.value, RwsError):
        # Our messages are written for people: show them without the plugin's frames.
        text = str(excinfo.value)
        cause = excinfo.value.__cause__
        if cause is not None:
            # Clients quote the request (its URL, even its headers) in their errors.
            seen = f"{type(cause).__name__}: {cause}"
            mount = item.stash.get(MOUNT_KEY, None)
            if mount is None:
                from .cassette.redact import Redactor

                masked = Redactor().scrub_loose(seen)
            else:
                masked = mount.mask(seen)
            text += f"\n\nthe client saw: {masked}"
        report.longrepr = text
    return report


def _close_async_clients(item: pytest.Item) -> None:
    # pytest-asyncio closes the test's event loop before the rws fixture tears down, and
    # an async client can only be closed on the loop its connections belong to.
    handle = item.stash.get(HANDLE_KEY, None)
    if handle is not None:
        handle.close_clients(test_ended=False)


def _new_failures(item: pytest.Item) -> list[RwsError]:
    mount = item.stash.get(MOUNT_KEY, None)
    if mount is None:
        return []
    with mount.lock:
        failures = list(mount.failures)
    already = item.stash.get(REPORTED_KEY, 0)
    item.stash[REPORTED_KEY] = len(failures)
    return failures[already:]


def _marked_script(item: pytest.Item) -> Script | None:
    """The script of the test's ``rws_script`` marker (the closest), validated."""
    marker = item.get_closest_marker("rws_script")
    if marker is None:
        return None
    from .sim.script import Script

    if marker.kwargs:
        raise TypeError(
            f"@pytest.mark.rws_script takes steps, not keywords ({', '.join(sorted(marker.kwargs))})"
        )
    return Script.of(marker.args) if marker.args else Script.default()


def _marked_faults(item: pytest.Item) -> tuple[Fault, ...]:
    """The faults of the test's ``rws_faults`` markers (outermost first), validated."""
    from .core.faults import FaultError, validate_faults

    found: list[Fault] = []
    for marker in reversed(list(item.iter_markers("rws_faults"))):
        if marker.kwargs:
            raise FaultError(
                f"@pytest.mark.rws_faults takes faults, not keywords ({', '.join(sorted(marker.kwargs))}); "
                "give them to the fault: faults.close(1011, turn=2)"
            )
        found.extend(validate_faults(marker.args, "@pytest.mark.rws_faults"))
    return tuple(found)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def rws_server(pytestconfig: pytest.Config) -> LoopbackServer:
    """The session's loopback Responses server (one per xdist worker, started on first use)."""
    return pytestconfig.stash[SESSION_KEY].server


@pytest.fixture(scope="module")
def rws_config() -> dict[str, Any]:
    """Override to configure cassettes for a module or package (like ``vcr_config``).

    Keys: the settings the ``rws_cassette`` marker takes (``record_mode``, ``upstream``,
    ``timing``, ... ; the options reference lists them all). Command line and marker win
    over it; it wins over the ini file.
    """
    return {}


@pytest.fixture
def rws_transport(request: pytest.FixtureRequest) -> Transport:
    """``"http"`` or ``"ws"``: the transport this run of the test uses."""
    param = getattr(request, "param", None)
    if param is not None:
        return param  # type: ignore[no-any-return]
    return request.config.stash[SESSION_KEY].transports[0]


@pytest.fixture
def rws(
    request: pytest.FixtureRequest,
    rws_transport: Transport,
    rws_config: dict[str, Any],
    rws_server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Generator[RwsHandle, None, None]:
    """This test's handle on the loopback server; clients in the test are pointed at it."""
    from .clients import warm_sdks_in_use
    from .core.faults import FaultError

    item = request.node
    session = request.config.stash[SESSION_KEY]
    settings = _one_line(lambda: session.settings_for(item, rws_config), pytest.UsageError)
    marked_faults = _one_line(lambda: _marked_faults(item), FaultError)
    script = _one_line(lambda: _marked_script(item), TypeError, ValueError, prefix=SCRIPT_MARKER_PREFIX)
    mount = _one_line(lambda: session.open_mount(item, settings, rws_transport, script), CassetteError)
    mount.engine.faults.add(*marked_faults)
    warm_sdks_in_use()  # an SDK the test module imported is warmed before the test's first turn
    rws_server.add(mount)
    item.stash[MOUNT_KEY] = mount
    item.stash[REPORTED_KEY] = 0  # a rerun of the same item starts counting afresh
    handle = _handle(session, rws_server, mount, rws_transport)
    item.stash[HANDLE_KEY] = handle
    with _pointed_at(handle, mount, settings, session, monkeypatch):
        yield handle
    handle.close_clients(test_ended=True)
    session.decide_save(item, mount, item.stash.get(PASSED_KEY, False))
    failures = rws_server.remove(mount)
    session.release(mount)
    item.stash[SUMMARY_KEY] = {**session.summary_for(item, handle), **session.lifecycle_summary(item, mount)}
    # Items live until the session ends; the mount holds the whole cassette and index.
    del item.stash[MOUNT_KEY]
    del item.stash[HANDLE_KEY]
    late = failures[item.stash.get(REPORTED_KEY, 0) :]
    if late:
        item.stash[REPORTED_KEY] = len(failures)
        pytest.fail(str(combine_failures(late)), pytrace=False)


#: How a bad ``rws_script`` marker's message starts.
SCRIPT_MARKER_PREFIX = "pytest-responses-ws: @pytest.mark.rws_script: "

_T = TypeVar("_T")


def _one_line(get: Callable[[], _T], *errors: type[Exception], prefix: str = "") -> _T:
    """``get()``, or this test failed in one line with what it raised (one of ``errors``).

    For what the test's own markers, config or cassette got wrong: no traceback of ours.
    """
    try:
        return get()
    except errors as exc:
        message = f"{prefix}{exc}"
    pytest.fail(message, pytrace=False)  # outside the except: no chained traceback


def _handle(session: RwsSession, server: LoopbackServer, mount: Mount, transport: Transport) -> RwsHandle:
    from .handle import RwsHandle

    return RwsHandle(
        transport=transport,
        base_url=server.base_url(mount),
        websocket_base_url=server.websocket_base_url(mount),
        mount=mount,
        budget_mode=session.budget_mode,
        budget_scale=session.budget_scale,
        scripter=lambda script: session.script_mount(mount, script),
    )


@contextmanager
def _pointed_at(
    handle: RwsHandle, mount: Mount, settings: Settings, session: RwsSession, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The test's environment and clients pointed at its mount, and (replaying) the network closed."""
    from .guard import AllowList, guard_network
    from .handle import PLACEHOLDER_API_KEY
    from .redirect import RedirectTarget, guard_upstream

    monkeypatch.setenv("OPENAI_BASE_URL", handle.base_url)
    monkeypatch.setenv("OPENAI_WEBSOCKET_BASE_URL", handle.websocket_base_url)
    if not mount.reaches_upstream:
        monkeypatch.setenv("OPENAI_API_KEY", PLACEHOLDER_API_KEY)
    allow = AllowList.parse(settings.allow_hosts)
    guarded = not mount.reaches_upstream and not allow.everything
    with ExitStack() as guards:
        if settings.redirect or not mount.reaches_upstream:
            target = RedirectTarget(
                upstream=mount.settings.upstream,
                http_base=handle.base_url,
                websocket_base=handle.websocket_base_url,
                route=settings.redirect,
                refuse=mount.refuse,
            )
            # Without the network guard behind it, catch libraries the test may import later too.
            guards.enter_context(guard_upstream(monkeypatch, target, import_missing=not guarded))
        if guarded:
            # Replay (or a simulator) answers everything, so nothing else may be reached.
            # (A mount recording from a real upstream reaches it, so the guard stays off.)
            guards.enter_context(
                guard_network(
                    monkeypatch,
                    allow,
                    lambda message: mount.fail(NetworkAccessError(message)),
                    session.refusing_proxy,
                    token=mount.id,
                )
            )
        yield
