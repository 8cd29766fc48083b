"""The span metrics' own rules, on a clock the test moves: what is kept, for how long, what goes first when
full, and that a steady rate reads as itself."""

from __future__ import annotations

import pytest

from workshop.tracestore import spanmetrics
from workshop.tracestore.query import MetricsQuery
from workshop.tracestore.spanmetrics import BUCKET_S, SpanMetrics, grouped_points

NOW = 1_800_000_000  # a Unix second on a 10-minute boundary (2027-01-15)
US = 1_000_000


class Clock:
    def __init__(self, at: float = NOW):
        self.at = at

    def __call__(self) -> float:
        return self.at


def calls_per_second(metrics: SpanMetrics, service: str, end_s: float, width_s: int, kinds=("server",)) -> float:
    """The call rate of `service` over the `width_s` before `end_s` (0 if none), as the metrics API answers it."""
    query = MetricsQuery([service], end_ms=int(end_s * 1000), lookback_ms=0, step_ms=1, rate_per_ms=width_s * 1000)
    query.span_kinds = list(kinds)
    found = grouped_points(metrics, query, "calls", lambda series: series[:1])
    return found[(service,)][-1][1] if found else 0.0


def test_a_span_far_in_the_future_or_older_than_a_day_is_not_counted_and_does_not_move_time():
    clock = Clock()
    metrics = SpanMetrics(clock=clock)
    metrics.record("gateway", "GET /", "server", (NOW - 60) * US, 1000, False)
    metrics.record("gateway", "GET /", "server", 4_102_444_800 * US, 1000, False)  # a span dated 2100
    metrics.record("gateway", "GET /", "server", (NOW - 25 * 3600) * US, 1000, False)  # a day and an hour ago
    metrics.record("gateway", "GET /", "server", (NOW + 60) * US, 1000, False)  # a minute ahead: a skewed clock
    stats = metrics.stats
    assert (stats.in_future, stats.too_old, stats.dropped, stats.cells) == (1, 1, 2, 2)
    assert calls_per_second(metrics, "gateway", NOW, 120) * 120 == pytest.approx(1)  # today's span is still there


def test_the_clock_forgets_what_is_older_than_a_day_without_any_pressure():
    clock = Clock()
    metrics = SpanMetrics(clock=clock)
    for n in range(100):
        metrics.record(f"service-{n}", "op", "server", (NOW - 3600) * US, 1000, False)
    assert (metrics.stats.series, metrics.stats.cells) == (100, 100)
    clock.at = NOW + 23 * 3600  # 24 hours after the spans: still kept (merged into their 10-minute bucket)
    metrics.record("gateway", "GET /", "server", int(clock.at * US), 1000, False)
    assert metrics.stats.series == 101
    clock.at = NOW + 23 * 3600 + 700  # past 24 hours: forgotten, and their series with them
    assert metrics.snapshot(["service-1"], {"server"}, 0, int(clock.at * US)).timelines == {}
    assert (metrics.stats.series, metrics.stats.cells) == (1, 1)


def test_after_a_flood_of_services_a_real_one_is_still_counted(monkeypatch):
    monkeypatch.setattr(spanmetrics, "MAX_SERIES", 100)
    clock = Clock()
    metrics = SpanMetrics(clock=clock)
    for n in range(20_000):  # 20,000 services at once, as the receivers already face
        metrics.record(f"flood-{n}", "op", "server", NOW * US, 1000, False)
    assert (metrics.stats.series, metrics.stats.too_many_series) == (100, 19_900)  # the flood did not churn
    clock.at = NOW + 60
    metrics.record("gateway", "GET /", "server", int(clock.at * US), 1000, False)  # a minute later: a real one
    assert metrics.stats.series_replaced == 1 and metrics.stats.series == 100
    assert calls_per_second(metrics, "gateway", clock.at + 30, 30) > 0
    clock.at = NOW + 24 * 3600 + 700  # a day later the flood's series are gone, the slots free
    metrics.record("worker", "job", "consumer", int(clock.at * US), 1000, False)
    assert metrics.stats.series == 1


def test_when_full_the_oldest_bucket_goes_never_the_new_span(monkeypatch):
    monkeypatch.setattr(spanmetrics, "MAX_CELLS", 100)
    clock = Clock()
    metrics = SpanMetrics(clock=clock)
    for minute in range(50):  # 50 minutes ago to now, two series: 100 buckets
        for operation in ("a", "b"):
            metrics.record("gateway", operation, "server", (NOW - 3000 + 60 * minute) * US, 1000, False)
    assert metrics.stats.cells == 100
    metrics.record("gateway", "c", "server", NOW * US, 1000, False)  # new data: the oldest bucket makes room
    assert metrics.stats.cells == 99 and metrics.stats.forgotten_early == 1 and metrics.stats.dropped == 0
    oldest = metrics.snapshot(["gateway"], {"server"}, 0, NOW * US).timelines[("gateway", "a", "server")][0][0]
    assert oldest * BUCKET_S == NOW - 3000 + 60  # the first minute's bucket went, for both series
    metrics.record("gateway", "d", "server", NOW * US, 1000, False)  # full again
    metrics.record("gateway", "a", "server", (NOW - 3000) * US, 1000, False)  # older than all kept: not counted
    assert metrics.stats.too_old == 1 and metrics.stats.cells == 100


def test_buckets_older_than_two_hours_are_merged_and_still_count_every_call():
    clock = Clock(NOW + 600)
    metrics = SpanMetrics(clock=clock)
    for second in range(0, 600, 10):  # a call every 10 s for 10 minutes: 20 buckets of 30 s, 3 calls each
        metrics.record("gateway", "GET /", "server", (NOW + second) * US, 1000, False)
    assert metrics.stats.cells == 20
    assert calls_per_second(metrics, "gateway", NOW + 600, 600) == pytest.approx(0.1)
    clock.at = NOW + 3 * 3600
    assert calls_per_second(metrics, "gateway", NOW + 600, 600) == pytest.approx(0.1)  # the same, from one bucket
    assert metrics.stats.cells == 1
    assert calls_per_second(metrics, "gateway", NOW + 300, 60) == pytest.approx(0.1)  # a narrower window: its bucket


def test_a_steady_rate_reads_as_itself_even_in_the_bucket_still_filling():
    clock = Clock(NOW + 75)  # 15 s into a bucket
    metrics = SpanMetrics(clock=clock)
    for n in range(300):  # five a second for 60 s, from 15 s into a bucket: a one-minute `make load`
        metrics.record("gateway", "GET /", "server", (NOW + 15) * US + n * 200_000 + 1, 1000, False)
    for end in (NOW + 45, NOW + 75):  # a bucket the load filled, and the one still filling
        assert calls_per_second(metrics, "gateway", end, 30) == pytest.approx(5.0, rel=0.02)


def test_the_services_of_a_query_only_and_their_kinds():
    metrics = SpanMetrics(clock=Clock())
    metrics.record("gateway", "GET /", "server", NOW * US, 1000, False)
    metrics.record("gateway", "get_repo_contributors", "", NOW * US, 1000, False)
    metrics.record("other", "GET /", "server", NOW * US, 1000, False)
    assert calls_per_second(metrics, "gateway", NOW + 30, 30, kinds=("server", "")) == pytest.approx(2 / 30)
    assert calls_per_second(metrics, "gateway", NOW + 30, 30, kinds=("",)) == pytest.approx(1 / 30)


def test_a_span_s_latency_lands_in_the_histogram_bucket_of_its_bound():
    """Each bound holds the latencies at most it (Prometheus's `le`): 2 ms in the first, 2.001 ms in the next;
    a negative duration in the first, anything past 15 s in +Inf."""
    from workshop.tracestore.spanmetrics import BOUNDS_MS, CALLS, LE, counter

    metrics = SpanMetrics(clock=Clock())
    for duration_us in [-5, 0, 1, 1999, 2000, 2001, 4000, 14_999_999, 15_000_000, 15_000_001, 10**12]:
        metrics.record("gateway", str(duration_us), "server", NOW * US, duration_us, False)
        timelines = metrics.snapshot(["gateway"], {"server"}, 0, NOW * US).timelines
        (cell,) = timelines[("gateway", str(duration_us), "server")][1]
        first = next(i for i in range(len(BOUNDS_MS) + 1) if counter(cell, LE + i))  # (cumulative counters)
        expected = next((i for i, bound in enumerate(BOUNDS_MS) if duration_us <= bound * 1000), len(BOUNDS_MS))
        assert (first, counter(cell, CALLS)) == (expected, 1), duration_us
