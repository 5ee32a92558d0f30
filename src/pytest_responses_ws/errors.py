"""Exceptions raised by pytest-responses-ws.

Every message says what happened, where (file, turn, JSON pointer) and how to fix it.
Failures that belong to the test under check (a cassette miss, a missing cassette)
subclass ``AssertionError`` so pytest reports them as test failures.
"""

from __future__ import annotations

from pathlib import Path


class RwsError(Exception):
    """Base class of every error this plugin raises."""


class ServerStartError(RwsError):
    """The loopback server could not start."""


class CassetteError(RwsError):
    """A cassette is missing, unreadable or malformed."""


class CassetteNotFoundError(CassetteError, AssertionError):
    """Replay was asked for, but the cassette file does not exist."""

    def __init__(self, path: Path, record_command: str) -> None:
        self.path = path
        self.record_command = record_command
        super().__init__(
            f"no cassette at {path}\n"
            "The test made a Responses API request while replaying (record mode 'none'), "
            "and nothing is recorded for it yet.\n"
            f"Record it once against the real API with:\n    {record_command}"
        )


class CassetteFormatError(CassetteError):
    """A cassette file exists but cannot be used as it is."""

    def __init__(self, path: Path | str, pointer: str, problem: str) -> None:
        self.path = path
        self.pointer = pointer
        self.problem = problem
        where = f"{path} at {pointer or '/'}"
        super().__init__(
            f"corrupt cassette {where}: {problem}\n"
            "Fix the file by hand, or delete it and record it again with --rws-record-mode=once."
        )


class CassettePathError(CassetteError):
    """The cassette path cannot hold a cassette file (a directory is in the way)."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(
            f"cannot use cassette path {path}: {problem}\n"
            "Move it out of the way, or give the test another cassette name with "
            "@pytest.mark.rws_cassette(name=...)."
        )


class CassetteLockTimeout(CassetteError):
    """Another process held a cassette's lock for longer than the wait bound."""

    def __init__(self, path: Path, waited_s: float, holder: str) -> None:
        self.path = path
        self.waited_s = waited_s
        super().__init__(
            f"gave up after {waited_s:g}s waiting for {holder} to finish recording {path}. "
            "Raise the bound with --rws-lock-timeout (or the rws_lock_timeout ini option), or run "
            "the tests that record this cassette in one process (-n 0)."
        )


class CassetteMissError(RwsError, AssertionError):
    """A request matched no recorded turn. The message is the full miss report."""


class UnroutedRequestError(RwsError, AssertionError):
    """A client tried to reach the real upstream while replaying."""


def refusal_message(url: str) -> str:
    """What a client refused on its way to the real upstream is told (and the test fails with)."""
    return (
        f"a client sent a request to {url} while replaying; it was refused so no request "
        "leaves the machine. Point the client at rws.base_url / rws.websocket_base_url "
        "(or create it with rws.openai_client()), or route hard-coded clients in-process "
        "with @pytest.mark.rws_cassette(redirect=True) or rws_config {'redirect': True}."
    )


class NetworkAccessError(RwsError, AssertionError):
    """A replaying test tried to reach a host beyond loopback; the network guard blocked it."""


class BudgetExceededError(RwsError, AssertionError):
    """Measured turns broke a budget. The message holds the per-turn table."""


class RecordingError(RwsError, AssertionError):
    """Recording through the upstream failed; nothing was written."""


class DriftError(RwsError, AssertionError):
    """Verify mode: the live API's answers differ from the cassette in a way that fails the test."""


class UnplayedTurnsError(RwsError, AssertionError):
    """Recorded turns a passing test never played, with ``unplayed='fail'``."""


class CassetteExpiredError(RwsError, AssertionError):
    """A cassette older than its ``max_age``, with ``on_expiry='fail'``."""


class MultipleFailures(RwsError, AssertionError):
    """Several problems in one test, reported together in the order they happened."""

    def __init__(self, failures: list[RwsError]) -> None:
        self.failures = failures
        parts = [f"[{i}] {type(f).__name__}: {f}" for i, f in enumerate(failures, 1)]
        super().__init__(
            f"{len(failures)} problems with Responses API traffic in this test:\n\n" + "\n\n".join(parts)
        )


def combine_failures(failures: list[RwsError]) -> RwsError:
    """One exception standing for ``failures`` (which must not be empty)."""
    return failures[0] if len(failures) == 1 else MultipleFailures(failures)
