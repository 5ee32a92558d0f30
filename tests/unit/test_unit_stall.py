"""The sans-I/O bookkeeping behind the upstream bounds: which turn waits, since when, on which bound."""

from __future__ import annotations

from pytest_responses_ws.core.stall import StallWatch, describe_stall, first_event_bound

S = 1_000_000_000  # nanoseconds per second


def test_nothing_waiting_has_no_deadline() -> None:
    watch = StallWatch(first_event_s=10, idle_s=2)
    assert watch.deadline_ns() is None
    assert watch.overdue(10**15) is None


def test_first_event_then_idle_bound() -> None:
    watch = StallWatch(first_event_s=10, idle_s=2)
    watch.start("request 1", None, 0)
    assert watch.deadline_ns() == 10 * S
    assert watch.overdue(10 * S - 1) is None
    stall = watch.overdue(10 * S)
    assert stall is not None
    assert (stall.where, stall.bound.setting, stall.events) == (
        "request 1",
        "upstream_first_event_timeout",
        0,
    )

    watch.on_event(None, "response.created", 3 * S)
    assert watch.deadline_ns() == 5 * S  # the idle bound runs from the latest event
    stall = watch.overdue(5 * S)
    assert stall is not None and stall.bound.setting == "upstream_idle_timeout" and stall.events == 1


def test_a_terminal_event_ends_the_wait_and_starts_the_next_on_the_lane() -> None:
    watch = StallWatch(first_event_s=10, idle_s=2)
    watch.start("request 1", "a", 0)
    watch.start("request 2", "a", 1 * S)  # queued behind request 1 on lane "a"
    watch.on_event("a", "response.created", 8 * S)
    watch.on_event("a", "response.completed", 9 * S)
    # Request 2 waits for its first event from the end of request 1, not from when it was sent.
    assert watch.deadline_ns() == 19 * S
    watch.on_event("a", "error", 12 * S)
    assert watch.deadline_ns() is None


def test_lanes_are_watched_separately_and_stray_events_are_ignored() -> None:
    watch = StallWatch(first_event_s=10, idle_s=2)
    watch.start("request 1", None, 0)
    watch.start("request 2", "b", 4 * S)
    watch.on_event("c", "response.created", 5 * S)  # no turn on lane "c"
    watch.on_event(None, "response.created", 6 * S)
    assert watch.deadline_ns() == 8 * S  # lane None's idle bound comes first
    stall = watch.overdue(14 * S)
    assert stall is not None and stall.where == "request 1"


def test_the_failure_says_what_stalled_and_how_to_raise_the_bound() -> None:
    watch = StallWatch(first_event_s=0.5, idle_s=30)
    watch.start("HTTP request 3 (connection 1)", None, 0)
    stall = watch.overdue(S)
    assert stall is not None
    assert stall.describe() == (
        "the upstream sent nothing for 0.5 s after HTTP request 3 (connection 1) was sent to it: "
        "upstream_first_event_timeout is 0.5 s. If the model needs longer, raise it with "
        "--rws-upstream-first-event-timeout=SECONDS, the rws_upstream_first_event_timeout ini option, or "
        "@pytest.mark.rws_cassette(upstream_first_event_timeout=SECONDS)."
    )


def test_an_unfinished_non_streamed_answer_says_its_whole_body_is_the_first_event() -> None:
    message = describe_stall("HTTP request 2 (connection 0)", first_event_bound(0.5), 0, unfinished=True)
    assert message.startswith(
        "the upstream had not finished its answer to HTTP request 2 (connection 0) 0.5 s after it was sent "
        "(a non-streamed answer is one event: its whole body is due within the first-event bound): "
        "upstream_first_event_timeout is 0.5 s. If the model needs longer, raise it with "
        "--rws-upstream-first-event-timeout=SECONDS"
    ), message
