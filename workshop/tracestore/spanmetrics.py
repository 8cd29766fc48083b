"""Span metrics, computed as spans are stored (never by scanning traces when asked): for each service,
operation and span kind, per 30-second bucket, the calls, the errors and a latency histogram with fixed
buckets. What Jaeger's `spanmetrics` connector feeds Prometheus with, and what its Monitor tab reads.

Memory is bounded whatever the traffic: at most MAX_SERIES (service, operation, kind) series and MAX_CELLS
buckets with data in all, each about 200 bytes (about 40 MB when full: a day of 70 busy operations); buckets
older than RETENTION_S are forgotten. A span past either bound is counted in `dropped`, not recorded.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from workshop.tracestore.query import MetricsQuery

BUCKET_S = 30
BUCKET_US = BUCKET_S * 1_000_000
RETENTION_S = 24 * 3600
MAX_SERIES = 5_000
MAX_CELLS = 200_000
# the latency histogram's upper bounds, in ms (Jaeger's spanmetrics default buckets, from 2 ms to 15 s), then +Inf
BOUNDS_MS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1_000, 1_400, 2_000, 5_000, 10_000, 15_000)

# A cell (one series' bucket) is one Python int holding its counters side by side, WIDTH bits each: the errors,
# then the histogram as Prometheus keeps it, cumulative (latencies at most BOUNDS_MS[i]; the last, +Inf, counts
# every call). Adding two cells adds every counter at once, so summing a window of cells costs one addition a
# cell, in C: what makes a day's query fast without NumPy.
WIDTH = 40  # bits a counter: a trillion spans in one window before it would overflow
MASK = (1 << WIDTH) - 1
ERRORS, LE = 0, 1  # the counters: errors, then one per histogram bucket (cumulative)
CALLS = LE + len(BOUNDS_MS)  # the +Inf bucket: every call
ERROR = 1 << (ERRORS * WIDTH)
AT_MOST = [sum(1 << ((LE + j) * WIDTH) for j in range(i, len(BOUNDS_MS) + 1)) for i in range(len(BOUNDS_MS) + 1)]
BOUNDS_US = tuple(bound * 1000 for bound in BOUNDS_MS)
ADDING = (AT_MOST, [one + ERROR for one in AT_MOST])  # what one span adds to its cell: [error][its bucket]
# For the quantile: every histogram counter's top bit (counts stay below 2**(WIDTH - 1)), a 1 in every one of them,
# and all of their bits. Subtracting n from each counter at once leaves its top bit set where it held at least n.
GUARDS = sum(1 << ((LE + j) * WIDTH + WIDTH - 1) for j in range(len(BOUNDS_MS) + 1))
EACH = AT_MOST[0]
HISTOGRAM = sum(MASK << ((LE + j) * WIDTH) for j in range(len(BOUNDS_MS) + 1))

Series = tuple[str, str, str]  # (service, operation, span kind: server, client, ... or "" unspecified)
Recorded = tuple[str, str, str, int, int, bool]  # a span, as counted: series, start and duration in µs, error


def counter(cell: int, index: int) -> int:
    return (cell >> (index * WIDTH)) & MASK


def histogram_cell(counts: list[int], errors: int = 0) -> int:
    """A cell from per-bucket counts (len(BOUNDS_MS) + 1 of them, +Inf last), as spans would make it."""
    return sum(count * AT_MOST[index] for index, count in enumerate(counts)) + errors * ERROR


@dataclass
class MetricsStats:
    series: int = 0
    cells: int = 0
    dropped: int = 0  # spans not recorded: past MAX_SERIES or MAX_CELLS


@dataclass
class SpanMetrics:
    stats: MetricsStats = field(default_factory=MetricsStats)
    _cells: dict[Series, dict[int, list[int]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _newest: int = 0  # the newest bucket recorded: what "older than RETENTION_S" is measured from

    def record(self, service: str, operation: str, kind: str, start_us: int, duration_us: int, error: bool) -> None:
        self.record_many([(service, operation, kind, start_us, duration_us, error)])

    def record_many(self, spans: Iterable[Recorded]) -> None:
        """Count each (service, operation, kind, start in µs, duration in µs, error): a stored batch at once."""
        series_of, stats, adding, at_least = self._cells, self.stats, ADDING, bisect.bisect_left
        with self._lock:
            for service, operation, kind, start_us, duration_us, error in spans:
                bucket = start_us // BUCKET_US
                cells = series_of.get((service, operation, kind))
                if cells is None:
                    if len(series_of) >= MAX_SERIES:
                        stats.dropped += 1
                        continue
                    cells = series_of[(service, operation, kind)] = {}
                    stats.series += 1
                cell = cells.get(bucket)
                if cell is None:  # (cells are ints: an update replaces one)
                    if stats.cells >= MAX_CELLS and not self._forget_old():
                        stats.dropped += 1
                        continue
                    cell = 0
                    stats.cells += 1
                    if bucket > self._newest:
                        self._newest = bucket
                cells[bucket] = cell + adding[1 if error else 0][at_least(BOUNDS_US, duration_us)]

    def _forget_old(self) -> bool:
        """Forget the buckets older than RETENTION_S (under the lock); whether any was."""
        oldest = self._newest - RETENTION_S // BUCKET_S
        forgotten = 0
        for cells in self._cells.values():
            for bucket in [b for b in cells if b < oldest]:
                del cells[bucket]
                forgotten += 1
        self.stats.cells -= forgotten
        return forgotten > 0

    def timeline(self, services: list[str], kinds: set[str], start_us: int, end_us: int) -> dict[Series, Timeline]:
        """Each matching series' buckets from `start_us` to `end_us` and their cells, oldest first."""
        first, last = start_us // BUCKET_US, end_us // BUCKET_US
        wanted = set(services)
        with self._lock:
            found = {
                series: cells.copy()
                for series, cells in self._cells.items()
                if series[0] in wanted and series[2] in kinds
            }
        out = {}
        for series, cells in found.items():
            buckets = sorted(cells)
            low, high = bisect.bisect_left(buckets, first), bisect.bisect_right(buckets, last)
            if high > low:
                out[series] = (buckets[low:high], list(map(cells.__getitem__, buckets[low:high])))
        return out


Timeline = tuple[list[int], list[int]]  # a series' buckets (numbers: start // BUCKET_US), and their cells


def windows(timeline: Timeline, upto: list[int], since: list[int]) -> list[int]:
    """For each point, the sum of the cells of the buckets after since[i] up to upto[i] (bucket numbers); 0 where
    there are none. From prefix sums, with every loop in C (cells are ints; bisect, accumulate and map are C's)."""
    buckets, cells = timeline
    prefix = list(itertools.accumulate(cells, initial=0))
    at_most = functools.partial(bisect.bisect_right, buckets)  # how many buckets are at most bucket n
    return list(
        map(operator.sub, map(prefix.__getitem__, map(at_most, upto)), map(prefix.__getitem__, map(at_most, since)))
    )


def merged(timelines: list[Timeline]) -> Timeline:
    """Several series' cells as one (a group: a service, or a service's operation, of several span kinds)."""
    if len(timelines) == 1:
        return timelines[0]
    by_bucket: dict[int, int] = {}
    for buckets, cells in timelines:
        for bucket, cell in zip(buckets, cells, strict=True):
            by_bucket[bucket] = by_bucket.get(bucket, 0) + cell
    ordered = sorted(by_bucket.items())
    return [bucket for bucket, _ in ordered], [cell for _, cell in ordered]


def quantile_ms(cell: int, q: float, total: int | None = None) -> float:
    """The q-quantile of a cell's latencies, in ms, interpolated within its histogram bucket as Prometheus's
    histogram_quantile does (past the last bound: the last bound). `total`: its calls, if known."""
    total = counter(cell, CALLS) if total is None else total
    if total == 0:
        return math.nan
    rank = q * total
    # the first bucket whose cumulative count reaches the rank: all seventeen compared at once (see GUARDS)
    reached = (((cell & HISTOGRAM) | GUARDS) - math.ceil(rank) * EACH) & GUARDS
    index = ((reached & -reached).bit_length() - 1) // WIDTH - LE
    if index == len(BOUNDS_MS):
        return float(BOUNDS_MS[-1])
    below = counter(cell, LE + index - 1) if index else 0
    lower = BOUNDS_MS[index - 1] if index else 0
    return lower + (BOUNDS_MS[index] - lower) * (rank - below) / (counter(cell, LE + index) - below)


# --- what Jaeger's metrics API answers -------------------------------------------------------------------------

Points = list[tuple[int, float]]  # (Unix ms, value)


def series_points(metrics: SpanMetrics, query: MetricsQuery, what: str) -> list[tuple[list[tuple[str, str]], Points]]:
    """For `what` (latencies, calls or errors): each group's labels (service_name, and operation when grouped)
    and its points, from endTs - lookback to endTs every step, each over the ratePer before it, as Prometheus's
    rate() and histogram_quantile() compute them from Jaeger's spanmetrics. A point without calls is left out."""
    end_us, width_us = query.end_ms * 1000, query.rate_per_ms * 1000
    start_us = end_us - query.lookback_ms * 1000
    points = list(range(start_us, end_us + 1, query.step_ms * 1000))
    found = metrics.timeline(query.services, set(query.span_kinds), start_us - width_us, end_us)
    groups: dict[tuple[str, ...], list[Timeline]] = {}
    for (service, operation, _), cells in found.items():
        groups.setdefault((service, operation) if query.group_by_operation else (service,), []).append(cells)
    upto = [point // BUCKET_US for point in points]  # the window of a point: the buckets after since, up to upto
    since = [(point - width_us) // BUCKET_US for point in points]
    at_ms = [point // 1000 for point in points]
    per_second = 1000 / query.rate_per_ms
    q = query.quantile or 0.5
    out = []
    for key, timelines in sorted(groups.items()):
        totals = windows(merged(timelines), upto, since)
        calls = [(total >> CALLS * WIDTH) & MASK for total in totals]
        rows = zip(at_ms, totals, calls, strict=True)
        if what == "calls":
            values = [(ms, n * per_second) for ms, _, n in rows if n]
        elif what == "errors":
            values = [(ms, (total & MASK) / n) for ms, total, n in rows if n]  # ERRORS is the first counter
        else:
            values = [(ms, quantile_ms(total, q, n)) for ms, total, n in rows if n]
        labels = [("service_name", key[0])] + ([("operation", key[1])] if len(key) > 1 else [])
        out.append((labels, values))
    return out
