"""Span metrics, computed as spans are stored (never by scanning traces when asked): for each service,
operation and span kind, per time bucket, the calls, the errors and a latency histogram with fixed buckets.
What Jaeger's `spanmetrics` connector feeds Prometheus with, and what its Monitor tab reads.

How long: a span is counted in its 30-second bucket (by its start); buckets older than FINE_S (2 hours) are
merged into 10-minute ones as they age, and those are forgotten after RETENTION_S (24 hours). The clock says
what is old, not the spans: a span that started more than RETENTION_S ago, or more than FUTURE_S (5 minutes)
ahead of the clock, is not counted (`too_old`, `in_future` in the stats).

How much: at most MAX_SERIES (5,000) (service, operation, kind) series and MAX_CELLS (200,000) buckets with
data in all, about 300 bytes each with their indexes: some 60 MB at most, whatever the traffic (`make bench`:
a million spans of 1,000 operations over a day fill it, in 60 MB). A busy series holds 372 buckets a day, so
200,000 is a day of some 530 busy operations. When MAX_CELLS are held, the oldest
bucket of all (every series' cell in it) is forgotten to make room, never the new span; a span older than every
bucket kept is then not counted (`too_old`). When MAX_SERIES are held, a new series takes the place of the
series seen least recently, if that one was not seen in the new span's bucket or later (`series_replaced`);
else the span is not counted (`too_many_series`). A series whose last bucket goes is forgotten. Each of these
costs what it frees, not a scan of everything held. Spans are counted a thousand at a time (record_many), or
when anything is read: a query always sees every span recorded.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from workshop.tracestore.query import MetricsQuery

BUCKET_S = 30
BUCKET_US = BUCKET_S * 1_000_000
COARSE = 20  # buckets in one 10-minute bucket, which older buckets are merged into
FINE_S = 2 * 3600
RETENTION_S = 24 * 3600
FUTURE_S = 300
MAX_SERIES = 5_000
MAX_CELLS = 200_000
PENDING = 1_024  # spans recorded before they are counted (see SpanMetrics.record_many)
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
# ... by its latency in whole ms, up to past the last bound (+Inf): a list index costs less than a bisection
ADDING_BY_MS = tuple([row[bisect.bisect_left(BOUNDS_MS, ms)] for ms in range(BOUNDS_MS[-1] + 2)] for row in ADDING)
# For the quantile: every histogram counter's top bit (counts stay below 2**(WIDTH - 1)), a 1 in every one of them,
# and all of their bits. Subtracting n from each counter at once leaves its top bit set where it held at least n.
GUARDS = sum(1 << ((LE + j) * WIDTH + WIDTH - 1) for j in range(len(BOUNDS_MS) + 1))
EACH = AT_MOST[0]
HISTOGRAM = sum(MASK << ((LE + j) * WIDTH) for j in range(len(BOUNDS_MS) + 1))
# the quantile's histogram bucket, from the bit length of the lowest guard left: (its lower bound in ms, its width,
# the shift of the counter below it or None, its own counter's shift); the +Inf bucket answers the last bound
REACHED = {
    (LE + i) * WIDTH + WIDTH: (
        (BOUNDS_MS[i - 1] if i else 0.0),
        (BOUNDS_MS[i] - (BOUNDS_MS[i - 1] if i else 0)) if i < len(BOUNDS_MS) else 0,
        (LE + i - 1) * WIDTH if i else None,
        (LE + i) * WIDTH,
    )
    for i in range(len(BOUNDS_MS) + 1)
}

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
    dropped: int = 0  # spans not counted, for one of these reasons:
    too_old: int = 0  # ... started before what is kept (RETENTION_S, or every bucket kept when MAX_CELLS are held)
    in_future: int = 0  # ... started more than FUTURE_S after the clock
    too_many_series: int = 0  # ... a new series while MAX_SERIES were held, each seen as recently
    forgotten_early: int = 0  # buckets forgotten before RETENTION_S, to make room for newer ones (MAX_CELLS)
    series_replaced: int = 0  # series forgotten for a new one (MAX_SERIES)


@dataclass
class Snapshot:
    """What a query reads, copied under the lock: each matching series' bucket keys and cells, oldest first."""

    timelines: dict[Series, Timeline]
    horizon: int  # keys below it are 10-minute buckets (multiples of COARSE), from it on 30-second ones
    now_us: int


Timeline = tuple[list[int], list[int]]  # a series' bucket keys (start // BUCKET_US), and their cells


@dataclass
class SpanMetrics:
    clock: Callable[[], float] = time.time
    _counts: MetricsStats = field(default_factory=MetricsStats)  # see `stats`
    _pending: list[Recorded] = field(default_factory=list)  # spans not counted yet (see record_many)
    _cells: dict[Series, dict[int, int]] = field(default_factory=dict)  # series -> bucket key -> cell
    _holders: dict[int, set[Series]] = field(default_factory=dict)  # bucket key -> the series with a cell in it
    _keys: list[int] = field(default_factory=list)  # a heap of the bucket keys (some gone since: skipped)
    _recent: OrderedDict[Series, int] = field(default_factory=OrderedDict)  # series -> its newest key, by use
    _horizon: int = -1  # see Snapshot
    _checked: int = -1  # the clock's bucket when the old ones were last forgotten
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, service: str, operation: str, kind: str, start_us: int, duration_us: int, error: bool) -> None:
        self.record_many([(service, operation, kind, start_us, duration_us, error)])

    def record_many(self, spans: Iterable[Recorded]) -> None:
        """Count each (service, operation, kind, start in µs, duration in µs, error): a stored batch at once.
        They are counted PENDING at a time, or as soon as anything is read (a query, the stats): one loop over
        a thousand spans, its data warm, costs a quarter less than one after each batch of ten, between which
        the store's own work has cooled the CPU's caches (3.4% of ingest, not 4.3%: make bench)."""
        with self._lock:
            self._pending.extend(spans)
            if len(self._pending) >= PENDING:
                self._count_pending()

    @property
    def stats(self) -> MetricsStats:
        """What is held and what was not counted, and why (every span recorded so far counted first)."""
        with self._lock:
            self._count_pending()
        return self._counts

    def _count_pending(self) -> None:
        spans, self._pending = self._pending, []
        cells_of, by_ms, last, width = self._cells, ADDING_BY_MS, len(ADDING_BY_MS[0]) - 1, BUCKET_US
        now = self._now_bucket()
        lowest, highest = self._horizon, now + FUTURE_S // BUCKET_S
        for service, operation, kind, start_us, duration_us, error in spans:
            key = start_us // width
            if key < lowest or key > highest:
                key = self._placed(key, now)
                if key is None:
                    continue
            series = (service, operation, kind)
            try:  # (a subscript costs less than .get(): this is every span's path)
                cells = cells_of[series]
                cell = cells[key]  # (cells are ints: an update replaces one)
            except KeyError:
                cells = self._new_cell(series, key)
                if cells is None:
                    continue
                cell = 0
            ms = -(-duration_us // 1000)  # in whole ms, up: a bucket counts the latencies at most its bound
            if ms > last:
                ms = last
            elif ms < 0:
                ms = 0
            cells[key] = cell + by_ms[error][ms]

    def snapshot(self, services: list[str], kinds: set[str], start_us: int, end_us: int) -> Snapshot:
        """Each matching series' buckets that hold any of `start_us` to `end_us`, and their cells, oldest first."""
        wanted = set(services)
        with self._lock:
            self._count_pending()
            self._now_bucket()
            found = {s: cells.copy() for s, cells in self._cells.items() if s[0] in wanted and s[2] in kinds}
            horizon = self._horizon
        first = start_us // BUCKET_US
        first -= first % COARSE  # the 10-minute bucket that holds it, if it is one
        last = end_us // BUCKET_US
        timelines = {}
        for series, cells in found.items():
            keys = sorted(cells)
            low, high = bisect.bisect_left(keys, first), bisect.bisect_right(keys, last)
            if high > low:
                timelines[series] = (keys[low:high], list(map(cells.__getitem__, keys[low:high])))
        return Snapshot(timelines, horizon, int(self.clock() * 1_000_000))

    @property
    def horizon(self) -> int:
        """The first 30-second bucket key: those before it are 10-minute ones."""
        return self._horizon

    # --- under the lock ----------------------------------------------------------------------------------

    def _now_bucket(self) -> int:
        """The clock's bucket; once a bucket, what is too old is forgotten and what is old enough merged."""
        now = int(self.clock() * 1_000_000) // BUCKET_US
        if now != self._checked:
            self._checked = now
            self._expire(now)
        return now

    def _expire(self, now: int) -> None:
        oldest = now - RETENTION_S // BUCKET_S
        while self._keys and self._keys[0] < oldest:
            self._forget_bucket(heapq.heappop(self._keys))
        merged = now - FINE_S // BUCKET_S
        merged -= merged % COARSE
        if self._horizon < oldest - oldest % COARSE:  # (a first start, or a clock that jumped: nothing between)
            self._horizon = oldest - oldest % COARSE
        while self._horizon < merged:
            self._merge(self._horizon)
            self._horizon += COARSE

    def _placed(self, key: int, now: int) -> int | None:
        """The bucket key of a span outside the 30-second buckets: its 10-minute one; None if not counted."""
        stats, coarse = self._counts, key - key % COARSE
        if key > now + FUTURE_S // BUCKET_S:
            stats.in_future += 1
        elif coarse < now - RETENTION_S // BUCKET_S:  # (a 10-minute bucket that began a day ago goes whole)
            stats.too_old += 1
        else:
            return coarse
        stats.dropped += 1
        return None

    def _new_cell(self, series: Series, key: int) -> dict[int, int] | None:
        """Room for a new cell of `series` at `key`: its cells, or None if the span is not counted."""
        stats = self._counts
        if stats.cells >= MAX_CELLS:
            oldest = self._oldest_key()
            if key <= oldest:
                stats.too_old += 1
                stats.dropped += 1
                return None
            self._forget_bucket(oldest)
            stats.forgotten_early += 1
        cells = self._cells.get(series)
        if cells is None:
            if stats.series >= MAX_SERIES and not self._replace_a_series(key):
                stats.too_many_series += 1
                stats.dropped += 1
                return None
            cells = self._cells[series] = {}
            self._recent[series] = key
            stats.series += 1
        elif key >= self._recent[series]:
            self._recent[series] = key
            self._recent.move_to_end(series)
        self._hold(key, series)
        stats.cells += 1
        return cells

    def _hold(self, key: int, series: Series) -> None:
        holders = self._holders.get(key)
        if holders is None:
            holders = self._holders[key] = set()
            heapq.heappush(self._keys, key)
        holders.add(series)

    def _oldest_key(self) -> int:
        keys = self._keys
        while keys[0] not in self._holders:  # gone since (merged, or its series replaced)
            heapq.heappop(keys)
        return keys[0]

    def _forget_bucket(self, key: int) -> None:
        """Forget every series' cell in bucket `key`, and each series left with none."""
        for series in self._holders.pop(key, ()):
            cells = self._cells[series]
            del cells[key]
            self._counts.cells -= 1
            if not cells:
                del self._cells[series]
                del self._recent[series]
                self._counts.series -= 1

    def _replace_a_series(self, key: int) -> bool:
        """Forget the series seen least recently, if not at `key` or later: whether one was."""
        victim, newest = next(iter(self._recent.items()))
        if newest >= key:
            return False
        for held in self._cells.pop(victim):
            holders = self._holders[held]
            holders.discard(victim)
            self._counts.cells -= 1
            if not holders:
                del self._holders[held]
        del self._recent[victim]
        self._counts.series -= 1
        self._counts.series_replaced += 1
        return True

    def _merge(self, first: int) -> None:
        """Merge the 30-second buckets from `first` (a multiple of COARSE) into one 10-minute bucket, `first`."""
        for key in range(first + 1, first + COARSE):
            for series in self._holders.pop(key, ()):
                cells = self._cells[series]
                cell = cells.pop(key)
                if first in cells:
                    cells[first] += cell
                    self._counts.cells -= 1
                else:
                    cells[first] = cell
                    self._hold(first, series)


def quantile_ms(cell: int, q: float, total: int | None = None) -> float:
    """The q-quantile of a cell's latencies, in ms, interpolated within its histogram bucket as Prometheus's
    histogram_quantile does (past the last bound: the last bound). `total`: its calls, if known."""
    total = counter(cell, CALLS) if total is None else total
    if total == 0:
        return math.nan
    rank = q * total
    return _quantile(cell, rank, max(1, math.ceil(rank)))


def _quantile(cell: int, rank: float, reach: int) -> float:
    """The latency at `rank` (the first bucket holding at least `reach` calls, interpolated within it)."""
    # the first bucket whose cumulative count reaches it: all seventeen compared at once (see GUARDS)
    reached = (((cell & HISTOGRAM) | GUARDS) - reach * EACH) & GUARDS
    lower, width, below_at, at = REACHED[(reached & -reached).bit_length()]
    if not width:
        return float(BOUNDS_MS[-1])
    below = (cell >> below_at) & MASK if below_at is not None else 0
    return lower + width * (rank - below) / (((cell >> at) & MASK) - below)


# --- what Jaeger's metrics API answers -------------------------------------------------------------------------

Points = list[tuple[int, float]]  # (Unix ms, value)


def window_keys(point_us: int, width_us: int, horizon: int) -> tuple[int, int]:
    """The buckets of a point's window (the `width_us` up to it): from the first that starts at or after its
    start to the one that holds the point, 10-minute ones before the horizon; at least the point's own. As
    keys: the first in it, and the one after it."""
    end = -(-point_us // BUCKET_US)
    if end <= horizon:
        end = -(-end // COARSE) * COARSE
    start = -(-(point_us - width_us) // BUCKET_US)
    if start < horizon:
        start = -(-start // COARSE) * COARSE
    if start >= end:  # narrower than a bucket: the point's own
        start = end - (COARSE if end <= horizon else 1)
    return start, end


def windows(points_us: Iterable[int], width_us: int, horizon: int, now_us: int) -> list[tuple[int, int, int, float]]:
    """The window of each point (see window_keys), as runs of points sharing one: (how many points, the first
    bucket key in it, the key after it, the seconds it covers). The seconds covered stop at the clock: a steady
    rate reads as itself, even in the bucket still filling."""
    runs: list[list[int]] = []
    for point in points_us:
        start, end = window_keys(point, width_us, horizon)
        if runs and runs[-1][1] == start and runs[-1][2] == end:
            runs[-1][0] += 1
        else:
            runs.append([1, start, end])
    out = []
    for count, start, end in runs:
        begins, ends = start * BUCKET_US, end * BUCKET_US
        covered = (min(ends, now_us) if now_us > begins else ends) - begins
        out.append((count, start, end, covered / 1e6))
    return out


def window_totals(timeline: Timeline, runs: list[tuple[int, int, int, float]]) -> list[int]:
    """Each run's window's cells, added up (from prefix sums: two bisections and a subtraction a run)."""
    keys, cells = timeline
    prefix = list(itertools.accumulate(cells, initial=0))
    at = bisect.bisect_left
    return [prefix[at(keys, end)] - prefix[at(keys, start)] for _, start, end, _ in runs]


def merged(timelines: list[Timeline]) -> Timeline:
    """Several series' cells as one (a group: a service, or a service's operation, of several span kinds)."""
    if len(timelines) == 1:
        return timelines[0]
    by_bucket: dict[int, int] = {}
    for keys, cells in timelines:
        for key, cell in zip(keys, cells, strict=True):
            by_bucket[key] = by_bucket.get(key, 0) + cell
    ordered = sorted(by_bucket.items())
    return [key for key, _ in ordered], [cell for _, cell in ordered]


def hundredths(q: float) -> int:
    """The quantile as Jaeger asks Prometheus for it: `histogram_quantile(%.2f, ...)`, in hundredths."""
    return round(float(f"{q:.2f}") * 100)


def grouped_points(
    metrics: SpanMetrics, query: MetricsQuery, what: str, key: Callable[[Series], tuple[str, ...]]
) -> dict[tuple[str, ...], Points]:
    """For `what` (latencies, calls, errors, or count): each group's points (the series grouped by `key`), from
    endTs - lookback to endTs every step, each over the ratePer before it, as Prometheus's rate() and
    histogram_quantile() compute them from Jaeger's spanmetrics. A point without calls is left out, and a group
    without points."""
    end_us, width_us = query.end_ms * 1000, query.rate_per_ms * 1000
    start_us = end_us - query.lookback_ms * 1000
    found = metrics.snapshot(query.services, set(query.span_kinds), start_us - width_us, end_us)
    groups: dict[tuple[str, ...], list[Timeline]] = {}
    for series, timeline in found.timelines.items():
        groups.setdefault(key(series), []).append(timeline)
    if not groups:
        return {}
    step_us = query.step_ms * 1000
    runs = windows(range(start_us, end_us + 1, step_us), width_us, found.horizon, found.now_us)
    at_ms = list(range(start_us // 1000, end_us // 1000 + 1, query.step_ms))
    q = hundredths(query.quantile or 0.5)
    out = {}
    for group, timelines in sorted(groups.items()):
        points: Points = []
        first = 0
        for total, (count, _, _, seconds) in zip(window_totals(merged(timelines), runs), runs, strict=True):
            calls = (total >> CALLS * WIDTH) & MASK
            if calls:
                if what == "calls":
                    value = calls / seconds
                elif what == "count":  # (not Jaeger's: how many, for the Monitor page)
                    value = calls
                elif what == "errors":
                    value = (total & MASK) / calls  # ERRORS is the first counter
                else:
                    value = _quantile(total, q * calls / 100, max(1, -(-q * calls // 100)))
                points.extend(zip(at_ms[first : first + count], itertools.repeat(value, count), strict=True))
            first += count
        if points:
            out[group] = points
    return out


def series_points(metrics: SpanMetrics, query: MetricsQuery, what: str) -> list[tuple[list[tuple[str, str]], Points]]:
    """What Jaeger's metrics API answers: each group's labels (service_name, and operation when grouped by
    it) and its points."""
    by = (lambda s: (s[0], s[1])) if query.group_by_operation else (lambda s: (s[0],))
    return [
        ([("service_name", group[0])] + ([("operation", group[1])] if len(group) > 1 else []), points)
        for group, points in grouped_points(metrics, query, what, by).items()
    ]
