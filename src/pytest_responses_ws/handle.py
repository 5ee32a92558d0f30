"""The ``rws`` fixture's value: what a test needs to reach and inspect the loopback server."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .cassette.model import Transport
from .clients import OwnedClients, warm_openai_parsers, warm_sdks_in_use
from .core.budgets import MODEL_METRICS, BudgetSpecError, budget_report, evaluate, parse_limits
from .core.latency import Projection, project
from .core.metrics import ToolSpan, TurnMetrics
from .errors import BudgetExceededError
from .faults import FaultsHandle
from .settings import BudgetMode, RecordMode, Settings
from .sim.script import Script

if TYPE_CHECKING:
    from agents import RunConfig
    from agents.models.openai_provider import OpenAIProvider
    from openai import AsyncOpenAI, OpenAI

    from .server.mount import Mount

#: The API key clients get while replaying: recognizable, and useless anywhere else.
PLACEHOLDER_API_KEY = "rws-replay-placeholder-key"


class RwsBudgetWarning(UserWarning):
    """A budget was exceeded while budgets are in ``warn`` mode."""


class ToolTimer:
    """Marks time spent in a tool so it is not counted as the loop's own overhead.

    Use as ``with rws.tool("search"):`` (sync or async code) or ``async with``.
    """

    def __init__(self, name: str, spans: list[ToolSpan]) -> None:
        self.name = name
        self._spans = spans
        self._start = 0

    def __enter__(self) -> ToolTimer:
        self._start = time.perf_counter_ns()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._spans.append(ToolSpan(self.name, self._start, time.perf_counter_ns()))

    async def __aenter__(self) -> ToolTimer:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class RwsHandle:
    """Per-test handle on the loopback Responses server.

    Attributes:
        transport: ``"http"`` or ``"ws"``, the transport this run of the test uses.
        base_url: HTTP base URL (``.../v1``) of this test's mount; also in ``OPENAI_BASE_URL``.
        websocket_base_url: the same as ``ws://``; also in ``OPENAI_WEBSOCKET_BASE_URL``.
        cassette_path: where this test's cassette is read from and written to.
        settings: the resolved settings (record mode, timing, upstream, ...).
    """

    def __init__(
        self,
        *,
        transport: Transport,
        base_url: str,
        websocket_base_url: str,
        mount: Mount,
        budget_mode: BudgetMode = BudgetMode.ENFORCE,
        budget_scale: float = 1.0,
        scripter: Callable[[Script], None] | None = None,
    ) -> None:
        self.transport: Transport = transport
        self.base_url = base_url
        self.websocket_base_url = websocket_base_url
        self._mount = mount
        self._tools: list[ToolSpan] = []
        #: Budget failure reports of this test (marker and assert_budget), for the reports.
        self.violations: list[str] = []
        self.budget_mode = budget_mode
        self.budget_scale = budget_scale
        self._clients = OwnedClients()
        self._scripter = scripter
        #: Inject failures into this test's turns and see which fired (``rws.faults.add(...)``).
        self.faults = FaultsHandle(mount.engine.faults, mount.lock)

    @property
    def settings(self) -> Settings:
        """The resolved settings of this test's cassette."""
        return self._mount.settings

    @property
    def cassette_path(self) -> Path:
        """Where this test's cassette is read from and written to."""
        return self._mount.path

    @property
    def record_mode(self) -> RecordMode:
        """The record mode in force for this test."""
        return self._mount.settings.record_mode

    @property
    def recording(self) -> bool:
        """True when requests the cassette cannot answer go to the upstream."""
        return self._mount.records

    def _client_kwargs(self, overrides: dict[str, Any], *, asynchronous: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"base_url": self.base_url, "websocket_base_url": self.websocket_base_url}
        warm_sdks_in_use()  # the SDK is imported by now: its one-time costs land here, not in a turn
        if "http_client" not in overrides:
            kwargs["http_client"] = self._clients.http_client(asynchronous=asynchronous)
        # No retries behind the test's back: while replaying a miss is a 400 or an error
        # event, and while recording a failed upstream turn already failed the test (and a
        # retried stall would multiply the wait by the SDK's retry count).
        kwargs["max_retries"] = 0
        if not self._mount.reaches_upstream:
            kwargs["api_key"] = PLACEHOLDER_API_KEY
        kwargs.update(overrides)
        return kwargs

    def openai_client(self, **kwargs: Any) -> OpenAI:
        """An ``openai.OpenAI`` pointed at this test's mount (keyword arguments override)."""
        from openai import OpenAI

        return OpenAI(**self._client_kwargs(kwargs, asynchronous=False))

    def async_openai_client(self, **kwargs: Any) -> AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` pointed at this test's mount (keyword arguments override)."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(**self._client_kwargs(kwargs, asynchronous=True))

    def agents_model_provider(self, **kwargs: Any) -> OpenAIProvider:
        """An openai-agents ``OpenAIProvider`` on this test's transport and mount.

        ``use_responses_websocket`` follows :attr:`transport`, so one agent test runs over
        ``OpenAIResponsesModel`` (HTTP) and ``OpenAIResponsesWSModel`` (WebSocket).
        """
        from agents.models.openai_provider import OpenAIProvider

        # openai-agents is imported by now: its one-time costs land here, before the run's turns.
        warm_openai_parsers()
        # A client of our own rather than base_url/api_key: the agents SDK otherwise shares
        # one module-level HTTP client across event loops, and pytest-asyncio gives each
        # test a new loop, so the next test would reuse a connection of a closed loop.
        options: dict[str, Any] = {
            "openai_client": self.async_openai_client(),
            "use_responses": True,
            "use_responses_websocket": self.transport == "ws",
        }
        options.update(kwargs)
        provider = OpenAIProvider(**options)
        self._clients.agents_provider(provider)
        return provider

    def agents_run_config(self, **kwargs: Any) -> RunConfig:
        """A ``RunConfig`` for ``Runner.run(agent, input, run_config=...)`` on this test's transport.

        Tracing is disabled while replaying: the agents SDK exports traces to the real API
        on its own, which an offline replay must not try. Keyword arguments override.
        """
        from agents import RunConfig

        options: dict[str, Any] = {"model_provider": self.agents_model_provider()}
        if not self._mount.reaches_upstream:
            options["tracing_disabled"] = True
        options.update(kwargs)
        return RunConfig(**options)

    def close_clients(self, *, test_ended: bool) -> None:
        """Close the clients this handle made (the SDK clients' HTTP clients, agents providers).

        Right after the test body (``test_ended=False``) only async ones are closed, on
        their still-open event loop; at teardown everything left open.
        """
        if test_ended:
            self._clients.close()
        else:
            self._clients.close_async()

    # -- the simulator -------------------------------------------------------------

    def script(self, *steps: Any) -> None:
        """Answer this test from the simulator with these steps, one per model turn.

        Steps as ``@pytest.mark.rws_script`` takes them (``Text``, ``FunctionCall``, a list of
        them, ``Error``, a callable receiving the request, or one ``Script``), before the test's
        first request. A test replaying a cassette keeps replaying it; the script then answers
        the turns recorded from the simulator (``--rws-upstream=sim``, record modes).
        """
        if self._scripter is None:
            raise RuntimeError("rws.script(): this handle has no simulator to script")
        self._scripter(Script.of(steps) if steps else Script.default())

    @property
    def simulated(self) -> bool:
        """True when the test's upstream is the simulator (a script, or ``--rws-upstream=sim``)."""
        return self._mount.simulated

    # -- measurement -------------------------------------------------------------

    def tool(self, name: str) -> ToolTimer:
        """A context manager marking time spent in tool ``name`` (excluded from overhead)."""
        return ToolTimer(name, self._tools)

    @property
    def tool_spans(self) -> list[ToolSpan]:
        """The ``rws.tool(...)`` blocks this test has run, with their clock readings."""
        return list(self._tools)

    @property
    def turns(self) -> list[TurnMetrics]:
        """The turns measured so far in this test, in the order their requests arrived.

        Their token figures (``input_tokens``, ``output_tokens`` ...) are filled under
        ``--rws-timing=model`` only; :meth:`modeled_turns` always fills them.
        """
        return self._mount.turn_metrics(self._tools, tokens=self.settings.timing.model)

    def modeled_turns(self) -> list[TurnMetrics]:
        """:attr:`turns` with the token figures the latency model needs, whatever the timing."""
        return self._mount.turn_metrics(self._tools, tokens=True)

    def counts(self) -> dict[str, int]:
        """Connections and WebSocket handshakes this test opened so far."""
        return self._mount.counts()

    @property
    def projection(self) -> Projection:
        """The turns so far as the test's latency model times them over both transports.

        ``rws.projection.gain`` is the share of the HTTP time WebSocket mode saves. Over
        this run's transport the turns count as played; the other transport is projected
        (see "Will WebSocket mode speed up my agent?" in the docs).
        """
        return self.projection_of(self.modeled_turns())

    def projection_of(self, turns: list[TurnMetrics]) -> Projection:
        """The latency model's projection of ``turns`` (measured turns of this test)."""
        return project(turns, self.settings.latency_model, self.transport)

    def check_budget(self, limits: dict[str, Any]) -> str | None:
        """The failure report if the turns so far break ``limits``, else None."""
        parsed = parse_limits(limits)
        modeled = any(limit.metric in MODEL_METRICS for limit in parsed)
        turns = self.modeled_turns() if modeled else self.turns
        projection = self.projection_of(turns) if modeled else None
        violations = evaluate(
            parsed,
            turns,
            transport=self.transport,
            counts=self.counts(),
            scale=self.budget_scale,
            projection=projection,
        )
        if not violations:
            return None
        return budget_report(
            violations, turns, transport=self.transport, scale=self.budget_scale, projection=projection
        )

    def assert_budget(self, **limits: Any) -> None:
        """Fail the test now if the turns so far break these limits (see the budgets docs).

        ``--rws-budgets=warn`` turns the failure into a warning, ``off`` skips the check.
        """
        __tracebackhide__ = True
        try:
            if self.budget_mode is BudgetMode.OFF:
                parse_limits(limits)  # a malformed budget is an error in every mode
                return
            report = self.check_budget(limits)
        except BudgetSpecError as exc:
            raise TypeError(f"rws.assert_budget: {exc}") from None
        if report is None:
            return
        self.violations.append(report)
        if self.budget_mode is BudgetMode.WARN:
            warnings.warn(RwsBudgetWarning(report), stacklevel=2)
            return
        raise BudgetExceededError(report)

    def __repr__(self) -> str:
        return f"<RwsHandle {self.transport} {self.record_mode.value} {self.cassette_path}>"
