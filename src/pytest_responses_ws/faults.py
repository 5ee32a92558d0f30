"""Fault injection for tests: make the loopback server fail the way the service does.

Build faults with the factories here and give them to the ``rws_faults`` marker or to
``rws.faults.add(...)``::

    from pytest_responses_ws import faults

    @pytest.mark.rws_faults(faults.http_status(429, retry_after=0.05), faults.close(1011, turn=2))
    def test_agent_survives(rws): ...

Every factory takes the selection keywords ``turn`` (the first turn it may fire on: the
Nth ``response.create`` of the test, 1-based, over every connection and both transports;
None: the next one), ``connection`` (a connection id as in ``rws.turns``), ``transport``
(``"http"``, ``"ws"`` or None) and ``times`` (how many matching turns it fires on; None:
every one). ``rws.faults.fired`` lists what fired. See "Testing failure handling" in the
docs for what the openai SDK sees on each transport.
"""

from __future__ import annotations

import threading

from .core.faults import (
    MAX_DELAY_S,
    Fault,
    FaultError,
    FaultPlan,
    FiredFault,
    close,
    connection_limit,
    cut,
    delay,
    error_event,
    http_status,
    malformed,
    not_found,
)


class FaultsHandle:
    """``rws.faults``: arm faults during the test, and see which fired."""

    def __init__(self, plan: FaultPlan, lock: threading.Lock) -> None:
        self._plan = plan
        self._lock = lock

    def add(self, *faults: Fault) -> None:
        """Arm these faults from now on (a bad argument raises :class:`FaultError`, one line)."""
        with self._lock:
            self._plan.add(*faults)

    @property
    def fired(self) -> list[FiredFault]:
        """The faults that fired so far: each with its turn number, transport and connection."""
        with self._lock:
            return list(self._plan.fired)

    @property
    def pending(self) -> list[Fault]:
        """The faults still armed (a fault with ``times=None`` stays armed)."""
        with self._lock:
            return [armed.fault for armed in self._plan.pending]

    def __repr__(self) -> str:
        return f"<rws.faults fired={len(self.fired)} pending={len(self.pending)}>"


__all__ = [
    "MAX_DELAY_S",
    "Fault",
    "FaultError",
    "FaultsHandle",
    "FiredFault",
    "close",
    "connection_limit",
    "cut",
    "delay",
    "error_event",
    "http_status",
    "malformed",
    "not_found",
]
