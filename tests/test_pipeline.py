"""``ordered``: work on shared threads, results in the order of the items."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomsieve._pipeline import ordered


@settings(max_examples=40, deadline=None)
@given(
    delays=st.lists(st.sampled_from([0.0, 0.0005, 0.002]), max_size=30),
    threads=st.integers(min_value=1, max_value=3),
    ahead=st.one_of(st.none(), st.integers(min_value=0, max_value=6)),
)
def test_results_come_in_order(delays: list[float], threads: int, ahead: int | None) -> None:
    def work(item: tuple[int, float]) -> int:
        time.sleep(item[1])
        return item[0]

    assert list(ordered(work, enumerate(delays), threads=threads, ahead=ahead)) == list(
        range(len(delays))
    )


@pytest.mark.parametrize(("threads", "ahead", "bound"), [(2, None, 2), (2, 4, 4), (3, 1, 3)])
def test_calls_ahead_of_the_consumer_are_bounded(
    threads: int, ahead: int | None, bound: int
) -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            started.append(item)
        return item

    peak = 0
    for consumed, result in enumerate(ordered(work, range(40), threads=threads, ahead=ahead), 1):
        assert result == consumed - 1
        # A slow consumer: the threads get as far ahead as they are allowed to.
        deadline = time.monotonic() + 2.0
        while len(started) < min(40, consumed + bound) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.001)
        with lock:
            # Started and not yet consumed (the one just yielded counts as consumed).
            peak = max(peak, len(started) - consumed)
    assert peak == bound
    assert sorted(started) == list(range(40))


def test_a_failing_call_raises_and_no_call_runs_on() -> None:
    running = threading.Event()
    finished: list[int] = []

    def work(item: int) -> int:
        if item == 3:
            raise ValueError("item 3")
        running.set()
        time.sleep(0.01)
        finished.append(item)
        return item

    with pytest.raises(ValueError, match="item 3"):
        list(ordered(work, range(20), threads=2, ahead=4))
    count = len(finished)
    time.sleep(0.05)
    assert len(finished) == count  # nothing left running after the raise
    assert count < 20
