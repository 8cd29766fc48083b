"""Span metrics, computed as spans are stored (never by scanning traces when asked): for each service,
operation and span kind, per 30-second bucket, the calls, the errors and a latency histogram with fixed
buckets. What Jaeger's `spanmetrics` connector feeds Prometheus with, and what its Monitor tab reads.

Memory is bounded whatever the traffic: at most MAX_SERIES (service, operation, kind) series and MAX_CELLS
buckets with data in all, each about 300 bytes (about 60 MB when full: a day of 70 busy operations); buckets
older than RETENTION_S are forgotten. A span past either bound is counted in `dropped`, not recorded.
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass, field

from workshop.tracestore.query import MetricsQuery

BUCKET_S = 30
RETENTION_S = 24 * 3600
MAX_SERIES = 5_000
MAX_CELLS = 200_000
# the latency histogram's upper bounds, in ms (Jaeger's spanmetrics default buckets, from 2 ms to 15 s), then +Inf
BOUNDS_MS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1_000, 1_400, 2_000, 5_000, 10_000, 15_000)
CALLS, ERRORS, FIRST_BUCKET = 0, 1, 2  # a cell: [calls, errors, one count per histogram bucket (+Inf last)]

Series = tuple[str, str, str]  # (service, operation, span kind: server, client, ... or "" unspecified)


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
        bucket = start_us // 1_000_000 // BUCKET_S
        with self._lock:
            cells = self._cells.get((service, operation, kind))
            if cells is None:
                if len(self._cells) >= MAX_SERIES:
                    self.stats.dropped += 1
                    return
                cells = self._cells[(service, operation, kind)] = {}
                self.stats.series += 1
            cell = cells.get(bucket)
            if cell is None:
                if self.stats.cells >= MAX_CELLS and not self._forget_old():
                    self.stats.dropped += 1
                    return
                cell = cells[bucket] = [0] * (FIRST_BUCKET + len(BOUNDS_MS) + 1)
                self.stats.cells += 1
                self._newest = max(self._newest, bucket)
            cell[CALLS] += 1
            cell[ERRORS] += error
            cell[FIRST_BUCKET + bisect.bisect_left(BOUNDS_MS, duration_us / 1000)] += 1

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

    def timeline(self, services: list[str], kinds: set[str], start_us: int, end_us: int) -> dict[Series, list]:
        """Each matching series' cells from `start_us` to `end_us`, as (bucket start in µs, a copy of the cell),
        oldest first."""
        first, last = start_us // 1_000_000 // BUCKET_S, end_us // 1_000_000 // BUCKET_S
        wanted = set(services)
        with self._lock:
            found = {
                series: [(b * BUCKET_S * 1_000_000, c.copy()) for b, c in cells.items() if first <= b <= last]
                for series, cells in self._cells.items()
                if series[0] in wanted and series[2] in kinds
            }
        return {series: sorted(cells, key=lambda item: item[0]) for series, cells in found.items() if cells}


def sliding(cells: list[tuple[int, list[int]]], points: list[int], width_us: int) -> list[list[int] | None]:
    """For each point t, the sum of the cells whose bucket began in (t - width_us, t]; None where none did.
    One pass: each cell enters the window once and leaves it once."""
    total: list[int] | None = None
    inside = 0
    entering = leaving = 0
    out: list[list[int] | None] = []
    for point in points:
        while entering < len(cells) and cells[entering][0] <= point:
            cell = cells[entering][1]
            total = cell.copy() if total is None else [a + b for a, b in zip(total, cell, strict=True)]
            entering += 1
            inside += 1
        while leaving < entering and cells[leaving][0] <= point - width_us and total is not None:
            total = [a - b for a, b in zip(total, cells[leaving][1], strict=True)]
            leaving += 1
            inside -= 1
        out.append(total.copy() if inside and total is not None else None)
    return out


def merged(timelines: list[list[tuple[int, list[int]]]]) -> list[tuple[int, list[int]]]:
    """Several series' cells as one (a group: a service, or a service's operation, of several span kinds)."""
    by_bucket: dict[int, list[int]] = {}
    for timeline in timelines:
        for at, cell in timeline:
            known = by_bucket.get(at)
            by_bucket[at] = cell if known is None else [a + b for a, b in zip(known, cell, strict=True)]
    return sorted(by_bucket.items())


def quantile_ms(cell: list[int], q: float) -> float:
    """The q-quantile of a cell's latencies, in ms, interpolated within its histogram bucket as Prometheus's
    histogram_quantile does (past the last bound: the last bound)."""
    counts = cell[FIRST_BUCKET:]
    total = sum(counts)
    if total == 0:
        return math.nan
    rank, seen = q * total, 0
    for index, count in enumerate(counts):
        if seen + count >= rank and count:
            if index == len(BOUNDS_MS):
                return float(BOUNDS_MS[-1])
            lower = BOUNDS_MS[index - 1] if index else 0
            return lower + (BOUNDS_MS[index] - lower) * (rank - seen) / count
        seen += count
    return float(BOUNDS_MS[-1])


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
    groups: dict[tuple[str, ...], list[list[tuple[int, list[int]]]]] = {}
    for (service, operation, _), cells in found.items():
        groups.setdefault((service, operation) if query.group_by_operation else (service,), []).append(cells)
    out = []
    for key, timelines in sorted(groups.items()):
        values: Points = []
        for point, cell in zip(points, sliding(merged(timelines), points, width_us), strict=True):
            if cell is None or cell[CALLS] == 0:
                continue
            if what == "calls":
                value = cell[CALLS] / (query.rate_per_ms / 1000)
            elif what == "errors":
                value = cell[ERRORS] / cell[CALLS]
            else:
                value = quantile_ms(cell, query.quantile or 0.5)
            values.append((point // 1000, value))
        labels = [("service_name", key[0])] + ([("operation", key[1])] if len(key) > 1 else [])
        out.append((labels, values))
    return out
