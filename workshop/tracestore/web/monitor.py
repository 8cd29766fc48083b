"""What the Monitor page shows, from the store's span metrics: a service's request rate, error rate and latency
percentiles over a window, as charts whose points link to the traces behind them, and a table of every
service's operations. Plain data for the template; no HTML here."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from workshop.tracestore.durations import format_duration_us
from workshop.tracestore.query import MetricsQuery
from workshop.tracestore.spanmetrics import BOUNDS_MS, BUCKET_S, SpanMetrics, grouped_points, window_keys

DEFAULT_WINDOW = "15m"  # a workshop's load lasts a minute or two: on an hour's chart it is one point
WINDOWS = [
    ("5m", "last 5 minutes", 300),
    ("15m", "last 15 minutes", 900),
    ("1h", "last hour", 3600),
    ("6h", "last 6 hours", 21_600),
    ("24h", "last day", 86_400),
]
# The page's spans: every kind by default (jaeger-client's own steps, get_repo_contributors in lessons 2-6, carry
# no span.kind), or one; the metrics API keeps Jaeger's default, server spans only.
KINDS = {
    "all": ("every kind", ["server", "client", "producer", "consumer", "internal", ""]),
    "server": ("server", ["server"]),
    "client": ("client", ["client"]),
    "producer": ("producer", ["producer"]),
    "consumer": ("consumer", ["consumer"]),
    "internal": ("internal", ["internal"]),
    "unspecified": ("no kind", [""]),
}
POINTS = 60  # a chart's points across its window
QUANTILES = [(0.5, "p50"), (0.75, "p75"), (0.95, "p95")]
# a chart's own units: the SVG keeps this shape as it scales; the plot inside leaves room for the axes' labels
WIDTH, HEIGHT = 400, 190
LEFT, RIGHT, TOP, BOTTOM = 56, 392, 10, 162
SPARK_WIDTH, SPARK_HEIGHT = 160, 28
SORTS = {
    "service": "service",
    "name": "operation",
    "kind": "kind",
    "count": "calls",
    "calls": "per second",
    "errors": "errors",
    "p50": "p50",
    "p75": "p75",
    "p95": "p95",
}
TICKS_S = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600]  # a time axis' label every ...


@dataclass
class Dot:
    x: float
    y: float
    label: str  # the value, as the tooltip says it
    href: str  # the search for the traces behind this point
    value: float = 0.0


@dataclass
class Line:
    name: str
    dots: list[Dot] = field(default_factory=list)

    @property
    def points(self) -> str:
        return " ".join(f"{dot.x:.1f},{dot.y:.1f}" for dot in self.dots)


@dataclass
class Mark:
    at: float  # x or y, in the chart's units
    text: str


@dataclass
class Chart:
    title: str
    lines: list[Line]
    grid: list[Mark]  # horizontal lines, labelled with their value
    times: list[Mark]  # the time axis' labels


@dataclass
class Row:
    service: str
    operation: str
    kind: str  # as the span says it ("" when it names none)
    count: int  # calls in the window
    calls: float  # per second over the window
    errors: float  # a fraction
    p50_ms: float
    p75_ms: float
    p95_ms: float
    href: str  # the traces of this operation in the window
    p50_href: str = ""  # ... those at least as slow as the bucket its p50 is in
    p75_href: str = ""
    p95_href: str = ""
    spark: Line = field(default_factory=lambda: Line("p95"))  # its p95 across the window, each point a link

    @property
    def error_percent(self) -> str:
        return f"{100 * self.errors:.1f}%"

    @property
    def kind_text(self) -> str:
        return self.kind or "no kind"


def search_href(service: str, start_us: int, end_us: int, operation: str = "", min_ms: float | None = None) -> str:
    """The search page, for these traces: a service (and operation) in a window, at least so long."""
    params = {"service": service, "operation": operation, "start": start_us, "end": end_us, "lookback": "custom"}
    if min_ms is not None:
        params["minDuration"] = f"{max(min_ms, 0.001):.3f}ms"
    return "/search?" + urlencode({key: value for key, value in params.items() if value != ""})


def rate_window_s(window_s: int) -> int:
    """The rate window of a chart's points: a step (the window over POINTS), whole buckets, one at least."""
    step = window_s / POINTS
    return max(BUCKET_S, math.ceil(step / BUCKET_S) * BUCKET_S)


def chart_query(services: list[str], kind: str, window_s: int, end_ms: int, quantile: float | None = None):
    step_ms = window_s * 1000 // POINTS
    return MetricsQuery(
        services,
        end_ms=end_ms,
        lookback_ms=window_s * 1000,
        step_ms=step_ms,
        rate_per_ms=rate_window_s(window_s) * 1000,
        span_kinds=KINDS[kind][1],
        quantile=quantile,
    )


def point_window_us(metrics: SpanMetrics, at_ms: int, width_ms: int, now_us: int) -> tuple[int, int]:
    """The time a point's value counts (its bucket keys, as the span metrics add them up), up to now."""
    start, end = window_keys(at_ms * 1000, width_ms * 1000, metrics.horizon)
    return start * BUCKET_S * 1_000_000, min(end * BUCKET_S * 1_000_000, now_us)


def charts(metrics: SpanMetrics, service: str, kind: str, window_s: int, end_ms: int) -> list[Chart]:
    """The service's request rate, error rate and latency percentiles across the window."""
    start_ms, now_us = end_ms - window_s * 1000, end_ms * 1000
    x_of = _x_scale(start_ms, end_ms)

    def line(name: str, what: str, quantile: float | None = None) -> Line:
        query = chart_query([service], kind, window_s, end_ms, quantile)
        drawn = Line(name)
        for points in grouped_points(metrics, query, what, lambda series: series[:1]).values():
            for at_ms, value in points:
                window = point_window_us(metrics, at_ms, query.rate_per_ms, now_us)
                # from a latency point: the traces at least as slow as its histogram bucket's lower bound
                min_ms = bucket_floor_ms(value) if quantile is not None else None
                drawn.dots.append(
                    Dot(x_of(at_ms), 0, _text(what, value), search_href(service, *window, min_ms=min_ms), value)
                )
        return drawn

    times = _time_marks(start_ms, end_ms, x_of)
    requests = "requests per second" if kind == "server" else "calls per second"
    return [
        _linear(requests, [line(requests, "calls")], times, lambda v: f"{v:g}/s"),
        _linear("error rate", [line("errors", "errors")], times, lambda v: f"{100 * v:g}%", cap=1.0),
        _logarithmic("latency", [line(name, "latencies", q) for q, name in QUANTILES], times),
    ]


def bucket_floor_ms(value: float) -> float:
    """The lower bound of the latency histogram's bucket that holds `value`: what a quantile is known to exceed."""
    index = bisect.bisect_left(BOUNDS_MS, value)
    return float(BOUNDS_MS[index - 1]) if index else 0.0


def _text(what: str, value: float) -> str:
    if what == "calls":
        return f"{value:.2f} a second"
    if what == "errors":
        return f"{100 * value:.1f}% errors"
    return format_duration_us(int(value * 1000))


def _x_scale(start_ms: int, end_ms: int, left: float = LEFT, right: float = RIGHT):
    return lambda at_ms: left + (at_ms - start_ms) / max(end_ms - start_ms, 1) * (right - left)


def _time_marks(start_ms: int, end_ms: int, x_of) -> list[Mark]:
    """A few clock times along the bottom: on whole minutes (or hours), three to six of them."""
    span_s = (end_ms - start_ms) / 1000
    every = next((step for step in TICKS_S if span_s / step <= 6), TICKS_S[-1]) * 1000
    first = -(-start_ms // every) * every
    return [Mark(x_of(at), clock(at)) for at in range(first, end_ms + 1, every)]


def _nice_top(top: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `top`."""
    if top <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(top))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= top * (1 - 1e-9))


def _linear(title: str, lines: list[Line], times: list[Mark], label, cap: float | None = None) -> Chart:
    """The lines on a linear scale from 0 to a round top, with gridlines at its halves."""
    top = _nice_top(max((dot.value for line in lines for dot in line.dots), default=0))
    top = min(top, cap) if cap else top
    y_of = lambda value: BOTTOM - (BOTTOM - TOP) * min(value, top) / top  # noqa: E731
    for line in lines:
        for dot in line.dots:
            dot.y = y_of(dot.value)
    grid = [Mark(y_of(value), label(value)) for value in (0, top / 2, top)]
    return Chart(title, lines, grid, times)


def _logarithmic(title: str, lines: list[Line], times: list[Mark]) -> Chart:
    """Latencies on a log scale, decade to decade: a 4 s p95 no longer hides a 5 ms p50."""
    values = [dot.value for line in lines for dot in line.dots if dot.value > 0]
    low = 10 ** math.floor(math.log10(max(min(values, default=1), 0.1)))
    high = max(10 ** math.ceil(math.log10(max(values, default=10))), low * 10)
    span = math.log10(high) - math.log10(low)
    y_of = lambda value: BOTTOM - (BOTTOM - TOP) * (math.log10(max(value, low)) - math.log10(low)) / span  # noqa: E731
    for line in lines:
        for dot in line.dots:
            dot.y = y_of(dot.value)
    decades = range(round(math.log10(low)), round(math.log10(high)) + 1)
    grid = [Mark(y_of(10.0**power), _duration_label(10.0**power)) for power in decades]
    return Chart(title, lines, grid, times)


def _duration_label(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


def operations(
    metrics: SpanMetrics, services: list[str], kind: str, window_s: int, end_ms: int, sort: str
) -> list[Row]:
    """Each operation of every service, of each kind, over the whole window (one point, the window wide), with
    its p95 across the window as the charts draw it."""
    whole = MetricsQuery(
        services, end_ms=end_ms, lookback_ms=0, step_ms=1, rate_per_ms=window_s * 1000, span_kinds=KINDS[kind][1]
    )

    def values(what: str, quantile: float | None = None) -> dict[tuple[str, ...], float]:
        whole.quantile = quantile
        return {group: points[-1][1] for group, points in grouped_points(metrics, whole, what, tuple).items()}

    counts, calls, errors = values("count"), values("calls"), values("errors")
    p50, p75, p95 = (values("latencies", q) for q, _ in QUANTILES)
    start_us, end_us = (end_ms - window_s * 1000) * 1000, end_ms * 1000
    x_of = _x_scale(end_ms - window_s * 1000, end_ms, 2, SPARK_WIDTH - 2)
    sparks = grouped_points(metrics, chart_query(services, kind, window_s, end_ms, 0.95), "latencies", tuple)
    rows = []
    for group, count in counts.items():
        service, operation, span_kind = group
        row = Row(
            service,
            operation,
            span_kind,
            int(count),
            calls.get(group, 0.0),
            errors.get(group, 0.0),
            p50.get(group, 0.0),
            p75.get(group, 0.0),
            p95.get(group, 0.0),
            search_href(service, start_us, end_us, operation=operation),
        )
        row.p50_href, row.p75_href, row.p95_href = (
            search_href(service, start_us, end_us, operation, bucket_floor_ms(value))
            for value in (row.p50_ms, row.p75_ms, row.p95_ms)
        )
        rate_ms = rate_window_s(window_s) * 1000
        for at_ms, value in sparks.get(group, []):
            window = point_window_us(metrics, at_ms, rate_ms, end_us)
            href = search_href(service, *window, operation, bucket_floor_ms(value))
            row.spark.dots.append(Dot(x_of(at_ms), 0, format_duration_us(int(value * 1000)), href, value))
        _spark_heights(row.spark)
        rows.append(row)
    key = {
        "service": lambda r: (r.service, r.operation),
        "name": lambda r: (r.operation, r.service),
        "kind": lambda r: (r.kind_text, r.service, r.operation),
        "count": lambda r: -r.count,
        "calls": lambda r: -r.calls,
        "errors": lambda r: -r.errors,
        "p50": lambda r: -r.p50_ms,
        "p75": lambda r: -r.p75_ms,
        "p95": lambda r: -r.p95_ms,
    }.get(sort, lambda r: -r.count)
    return sorted(rows, key=key)


def _spark_heights(line: Line) -> None:
    """A row's p95 line, on a log scale from its lowest to its highest point."""
    values = [max(dot.value, 0.1) for dot in line.dots]
    if not values:
        return
    low, high = math.log10(min(values)), math.log10(max(values))
    for dot in line.dots:
        share = (math.log10(max(dot.value, 0.1)) - low) / (high - low) if high > low else 0.5
        dot.y = SPARK_HEIGHT - 4 - (SPARK_HEIGHT - 8) * share


def clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M")
