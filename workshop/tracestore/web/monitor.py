"""What the Monitor page shows, from the store's span metrics: a service's request rate, error rate and latency
percentiles over a window, as charts whose points link to the traces behind them, and a table of its operations.
Plain data for the template; no HTML here."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from workshop.tracestore.durations import format_duration_us
from workshop.tracestore.query import MetricsQuery
from workshop.tracestore.spanmetrics import BOUNDS_MS, BUCKET_S, SpanMetrics, series_points

WINDOWS = [
    ("5m", "last 5 minutes", 300),
    ("15m", "last 15 minutes", 900),
    ("1h", "last hour", 3600),
    ("6h", "last 6 hours", 21_600),
    ("24h", "last day", 86_400),
]
KINDS = ["server", "client", "producer", "consumer", "internal"]
# The page's "internal" is also the spans that name no kind: jaeger-client's own steps (get_repo_contributors in
# lessons 2-6) carry no span.kind tag. (The metrics API keeps Jaeger's distinction: spanKind=unspecified.)
ALSO = {"internal": [""]}
POINTS = 60  # a chart's points across its window
QUANTILES = [(0.5, "p50"), (0.75, "p75"), (0.95, "p95")]
WIDTH, HEIGHT, PAD = 600, 150, 8  # a chart's own units (the SVG scales to the page)
SORTS = {"name": "operation", "calls": "requests/s", "errors": "errors", "p50": "p50", "p95": "p95"}


@dataclass
class Dot:
    x: float
    y: float
    label: str  # the value, as the tooltip says it
    href: str  # the search for the traces behind this point


@dataclass
class Line:
    name: str
    dots: list[Dot] = field(default_factory=list)

    @property
    def points(self) -> str:
        return " ".join(f"{dot.x:.1f},{dot.y:.1f}" for dot in self.dots)


@dataclass
class Chart:
    title: str
    lines: list[Line]
    top: str  # the value at the chart's top, as text


@dataclass
class Row:
    operation: str
    calls: float  # per second over the window
    errors: float  # a fraction
    p50_ms: float
    p95_ms: float
    href: str  # the traces of this operation in the window
    p50_href: str = ""  # ... those at least as slow as the bucket its p50 is in
    p95_href: str = ""  # ... and its p95

    @property
    def error_percent(self) -> str:
        return f"{100 * self.errors:.1f}%"


def search_href(service: str, start_us: int, end_us: int, operation: str = "", min_ms: float | None = None) -> str:
    """The search page, for these traces: a service (and operation) in a window, at least so long."""
    params = {"service": service, "operation": operation, "start": start_us, "end": end_us, "lookback": "custom"}
    if min_ms is not None:
        params["minDuration"] = f"{max(min_ms, 0.001):.3f}ms"
    return "/search?" + urlencode({key: value for key, value in params.items() if value != ""})


def charts(metrics: SpanMetrics, service: str, kind: str, window_s: int, end_ms: int) -> list[Chart]:
    step_ms = window_s * 1000 // POINTS
    rate_ms = max(step_ms, 60_000)
    base = MetricsQuery([service], end_ms=end_ms, lookback_ms=window_s * 1000, step_ms=step_ms, rate_per_ms=rate_ms)
    base.span_kinds = [kind, *ALSO.get(kind, [])]
    start_ms = end_ms - window_s * 1000

    def line(name: str, what: str, scale: float, quantile: float | None = None) -> Line:
        query = MetricsQuery(**{**vars(base), "quantile": quantile})
        found = series_points(metrics, query, what)
        drawn = Line(name)
        for _, points in found:
            for at_ms, value in points:
                # the traces behind the point: its window, and a bucket earlier (a bucket counts from its start);
                # from a latency point, those at least as slow as its histogram bucket's lower bound
                window = ((at_ms - rate_ms - BUCKET_S * 1000) * 1000, at_ms * 1000)
                min_ms = bucket_floor_ms(value) if quantile is not None else None
                drawn.dots.append(
                    Dot(
                        PAD + (at_ms - start_ms) / (window_s * 1000) * (WIDTH - 2 * PAD),
                        value * scale,
                        _text(what, value),
                        search_href(service, *window, min_ms=min_ms),
                    )
                )
        return drawn

    rate = line("requests/s", "calls", 1)
    errors = line("errors", "errors", 100)
    latencies = [line(name, "latencies", 1, q) for q, name in QUANTILES]
    return [
        _scaled("requests per second", [rate], "{:.2f}/s"),
        _scaled("error rate", [errors], "{:.0f}%"),
        _scaled("latency", latencies, "{:.0f} ms"),
    ]


def bucket_floor_ms(value: float) -> float:
    """The lower bound of the latency histogram's bucket that holds `value`: what a quantile is known to exceed."""
    index = bisect.bisect_left(BOUNDS_MS, value)
    return float(BOUNDS_MS[index - 1]) if index else 0.0


def _text(what: str, value: float) -> str:
    if what == "calls":
        return f"{value:.2f} requests/s"
    if what == "errors":
        return f"{100 * value:.1f}% errors"
    return format_duration_us(int(value * 1000))


def _scaled(title: str, lines: list[Line], unit: str) -> Chart:
    """The lines fitted to the chart's height (y from the top, as SVG counts it)."""
    top = max((dot.y for line in lines for dot in line.dots), default=0) or 1
    for line in lines:
        for dot in line.dots:
            dot.y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * dot.y / top
    return Chart(title, lines, unit.format(top))


def operations(metrics: SpanMetrics, service: str, kind: str, window_s: int, end_ms: int, sort: str) -> list[Row]:
    """Each operation over the whole window: one point, the window wide."""
    query = MetricsQuery(
        [service],
        group_by_operation=True,
        end_ms=end_ms,
        lookback_ms=0,
        step_ms=1,
        rate_per_ms=window_s * 1000,
        span_kinds=[kind, *ALSO.get(kind, [])],
    )

    def values(what: str, quantile: float | None = None) -> dict[str, float]:
        query.quantile = quantile
        return {labels[1][1]: points[-1][1] for labels, points in series_points(metrics, query, what) if points}

    calls, errors, p50, p95 = values("calls"), values("errors"), values("latencies", 0.5), values("latencies", 0.95)
    start_us, end_us = (end_ms - window_s * 1000) * 1000, end_ms * 1000
    rows = [
        Row(
            name,
            rate,
            errors.get(name, 0.0),
            p50.get(name, 0.0),
            p95.get(name, 0.0),
            search_href(service, start_us, end_us, operation=name),
            search_href(service, start_us, end_us, name, bucket_floor_ms(p50.get(name, 0.0))),
            search_href(service, start_us, end_us, name, bucket_floor_ms(p95.get(name, 0.0))),
        )
        for name, rate in calls.items()
    ]
    key = {
        "calls": lambda r: -r.calls,
        "errors": lambda r: -r.errors,
        "p50": lambda r: -r.p50_ms,
        "p95": lambda r: -r.p95_ms,
        "name": lambda r: r.operation,
    }.get(sort, lambda r: -r.calls)
    return sorted(rows, key=key)


def clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M")
