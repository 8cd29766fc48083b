"""Jaeger's metrics API over the span metrics the store counts at ingest, on spans with known durations and errors."""

from __future__ import annotations

import itertools
import math
import random
import re
import time
from datetime import datetime

import pytest
from werkzeug.datastructures import MultiDict

from tests.support.metric_spans import GATEWAY, span
from workshop.tracestore.api.v1 import rfc3339
from workshop.tracestore.app import create_app
from workshop.tracestore.query import BadQuery, metrics_query
from workshop.tracestore.spanmetrics import BOUNDS_MS, SpanMetrics, histogram_cell, quantile_ms
from workshop.tracestore.store import TraceStore

NOW_MS = (int(time.time()) // 60) * 60_000  # on a minute: the points fall on known times


def hand_made_spans(now_ms: int) -> list:
    spans = [span(n, "GET /a", 5, now_ms, error=n <= 2) for n in range(1, 11)]  # 10 calls of 5 ms, 2 errors
    spans += [span(n, "GET /b", 300, now_ms) for n in range(11, 15)]  # 4 calls of 300 ms
    spans += [span(n, "github_request", 50, now_ms, kind="client") for n in range(15, 18)]  # client spans
    spans += [span(99, "GET /a", 5, now_ms, ago_s=3 * 3600)]  # three hours ago: outside the default hour
    return [(s, GATEWAY) for s in spans]


@pytest.fixture(scope="module")
def client():
    store = TraceStore()
    store.metrics.clock = lambda: NOW_MS / 1000 + 60  # a minute after NOW_MS: its windows are complete
    store.add_spans(hand_made_spans(NOW_MS))
    return create_app(store).test_client()


def ask(client, what: str, status: int = 200, **params):
    params = {"service": "gateway", "endTs": NOW_MS, "lookback": 60_000, "step": 60_000, "ratePer": 600_000} | params
    params = {name: value for name, value in params.items() if value is not None}
    response = client.get(f"/api/metrics/{what}", query_string=params)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def test_calls_per_second_by_service_as_jaeger_names_and_shapes_them(client):
    family = ask(client, "calls")
    assert family["name"] == "service_call_rate" and family["type"] == "GAUGE" and "calls/sec" in family["help"]
    (metric,) = family["metrics"]
    assert metric["labels"] == [{"name": "service_name", "value": "gateway"}]  # service_name first: Jaeger UI reads it
    point = metric["metricPoints"][-1]
    assert point["gaugeValue"]["doubleValue"] == pytest.approx(14 / 600)  # 14 server calls over 10 minutes
    assert point["timestamp"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW_MS / 1000))


def test_grouped_by_operation_error_rate_and_span_kinds(client):
    family = ask(client, "errors", groupByOperation="true")
    assert family["name"] == "service_operation_error_rate"
    rates = {m["labels"][1]["value"]: m["metricPoints"][-1]["gaugeValue"]["doubleValue"] for m in family["metrics"]}
    assert rates == {"GET /a": pytest.approx(0.2), "GET /b": 0.0}
    assert [m["labels"][0]["name"] for m in family["metrics"]] == ["service_name", "service_name"]
    clients = ask(client, "calls", groupByOperation="1", spanKind="client")["metrics"]
    assert [m["labels"][1]["value"] for m in clients] == ["github_request"]


def test_latency_quantiles_within_the_histogram_s_bucket(client):
    family = ask(client, "latencies", quantile="0.95", groupByOperation="true")
    assert family["name"] == "service_operation_latencies" and family["help"].startswith("0.95th quantile latency")
    p95 = {m["labels"][1]["value"]: m["metricPoints"][-1]["gaugeValue"]["doubleValue"] for m in family["metrics"]}
    assert 4 <= p95["GET /a"] <= 6 and 200 <= p95["GET /b"] <= 400  # the buckets 5 ms and 300 ms fall in
    counts = [0] * (len(BOUNDS_MS) + 1)
    counts[1] = 10  # ten spans between 2 and 4 ms
    assert quantile_ms(histogram_cell(counts), 0.5) == pytest.approx(3.0)
    counts[-1] = 10  # and ten past the last bound, 15 s: the median is the last of the first ten
    assert quantile_ms(histogram_cell(counts), 0.5) == pytest.approx(4.0)
    assert quantile_ms(histogram_cell(counts), 0.99) == 15_000.0
    assert math.isnan(quantile_ms(histogram_cell([0] * (len(BOUNDS_MS) + 1)), 0.5))  # no calls


def reference_quantile(counts: list[int], q: float) -> float:
    """Prometheus's histogram_quantile, written out plainly over per-bucket counts."""
    rank, seen = q * sum(counts), 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index == len(BOUNDS_MS):
                return float(BOUNDS_MS[-1])
            lower = BOUNDS_MS[index - 1] if index else 0
            return lower + (BOUNDS_MS[index] - lower) * (rank - seen) / count
        seen += count
    raise AssertionError("unreachable")


def test_the_packed_cells_quantile_is_prometheus_s():
    """A cell holds its counters side by side in one int, compared all at once: the same answers, always."""
    draw = random.Random(7)
    for _ in range(500):
        counts = [draw.choice([0, 0, 1, 3, 1000, 2**30]) for _ in range(len(BOUNDS_MS) + 1)]
        if not any(counts):
            continue
        cell = histogram_cell(counts, errors=draw.randrange(10))
        for q in (0.01, 0.5, 0.75, 0.95, 0.99, 1.0):
            assert quantile_ms(cell, q) == pytest.approx(reference_quantile(counts, q)), (counts, q)


def test_the_service_wide_error_rate_and_latency(client):
    errors = ask(client, "errors")
    assert errors["name"] == "service_error_rate" and errors["help"].startswith("error rate")
    (metric,) = errors["metrics"]
    assert metric["labels"] == [{"name": "service_name", "value": "gateway"}]
    assert metric["metricPoints"][-1]["gaugeValue"]["doubleValue"] == pytest.approx(2 / 14)  # server spans only
    latencies = ask(client, "latencies", quantile="0.95")
    assert (
        latencies["name"] == "service_latencies" and latencies["help"] == "0.95th quantile latency, grouped by service"
    )
    (metric,) = latencies["metrics"]
    # 10 calls in (4, 6] ms and 4 in (200, 400]: the 13.3rd of 14 is 3.3/4 of the way through the second bucket
    assert metric["metricPoints"][-1]["gaugeValue"]["doubleValue"] == pytest.approx(200 + 200 * 3.3 / 4)


def test_jaegers_defaults_are_in_the_answer():
    """No endTs, lookback, step or ratePer: now, an hour, a point every 5 s, each over the 10 minutes before it."""
    now_ms = int(time.time() * 1000)
    store = TraceStore()
    store.add_spans(hand_made_spans(now_ms + 30_000 - 60_000))  # (they start 30 s before what it is given)
    family = create_app(store).test_client().get("/api/metrics/calls?service=gateway").get_json()
    points = [(stamp_ms(p["timestamp"]), p["gaugeValue"]["doubleValue"]) for p in family["metrics"][0]["metricPoints"]]
    assert abs(points[-1][0] - now_ms) < 5_000  # endTs: now
    assert {later - earlier for (earlier, _), (later, _) in itertools.pairwise(points)} == {5_000}  # step: 5 s
    held = (now_ms - 60_000) // 30_000 * 30_000 + 30_000  # the end of the spans' 30-second bucket
    complete = [value for at, value in points if held <= at <= held + 30_000]  # windows over finished buckets
    assert complete and all(value == pytest.approx(14 / 600) for value in complete)  # ratePer: 10 minutes
    assert points[0][0] >= held - 30_000  # lookback: the hour before, which the span of 3 hours ago is not in


def stamp_ms(stamp: str) -> int:
    return round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_an_empty_window_a_service_never_seen_and_a_window_without_points(client):
    assert ask(client, "calls", endTs=NOW_MS - 7200_000)["metrics"] == []  # two hours ago: nothing then
    assert ask(client, "calls", service="nobody")["metrics"] == []
    assert ask(client, "calls", service="")["metrics"] == []  # Jaeger accepts `service=`, and finds nothing
    # the spans' bucket is just before the only point's 30-second window: no point, so no series (as Prometheus)
    assert ask(client, "latencies", quantile="0.5", lookback=0, ratePer=30_000, endTs=NOW_MS + 30_000)["metrics"] == []
    old = ask(client, "calls", endTs=NOW_MS - 3 * 3600_000 + 60_000)["metrics"][0]["metricPoints"]
    assert old[-1]["gaugeValue"]["doubleValue"] == pytest.approx(1 / 600)  # the span of three hours ago


def test_timestamps_keep_their_milliseconds_as_jaeger_writes_them(client):
    assert rfc3339(1631271823806) == "2021-09-10T11:03:43.806Z"  # Jaeger UI's own fixtures' form
    assert rfc3339(1631271823000) == "2021-09-10T11:03:43Z"  # no fraction when there is none
    assert rfc3339(-62_135_596_800_000) == "0001-01-01T00:00:00Z"
    family = ask(client, "calls", endTs=NOW_MS + 1234, lookback=1000, step=250)
    stamps = [p["timestamp"] for p in family["metrics"][0]["metricPoints"]]
    assert len(stamps) == len(set(stamps)) == 5 and stamps[-1].endswith(".234Z")  # 4 steps under a second apart


@pytest.mark.parametrize(
    "what, params, message",
    [  # Jaeger's own words where Jaeger refuses it
        ("calls", {"service": None}, "unable to parse param 'service': please provide at least one service name"),
        (
            "calls",
            {"groupByOperation": "maybe"},
            "param 'groupByOperation': strconv.ParseBool: parsing \"maybe\": invalid syntax",
        ),
        ("calls", {"spanKind": "sideways"}, "unable to parse param 'spanKind': unsupported span kind: 'sideways'"),
        ("calls", {"spanKind": ""}, "unable to parse param 'spanKind': unsupported span kind: ''"),
        (
            "calls",
            {"endTs": "soon"},
            "unable to parse param 'endTs': strconv.ParseInt: parsing \"soon\": invalid syntax",
        ),
        ("calls", {"endTs": "1_000"}, 'strconv.ParseInt: parsing "1_000": invalid syntax'),
        ("calls", {"lookback": "99999999999999999999"}, 'parsing "99999999999999999999": value out of range'),
        ("calls", {"ratePer": "1e3"}, "unable to parse param 'ratePer': strconv.ParseInt"),
        ("latencies", {}, "unable to parse param 'quantile': strconv.ParseFloat: parsing \"\": invalid syntax"),
        ("latencies", {"quantile": " 0.5"}, 'strconv.ParseFloat: parsing " 0.5": invalid syntax'),
        ("latencies", {"quantile": "1_0"}, 'strconv.ParseFloat: parsing "1_0": invalid syntax'),
        ("latencies", {"quantile": "1e400"}, 'strconv.ParseFloat: parsing "1e400": value out of range'),
        ("latencies", {"quantile": "+nan"}, "invalid syntax"),
        # what Prometheus would refuse (Jaeger's 500) or Jaeger would wrap around: a 400 here, with why
        ("latencies", {"quantile": "NaN"}, "is not a quantile, from 0 to 1"),
        ("latencies", {"quantile": "2"}, "is not a quantile, from 0 to 1"),
        ("latencies", {"quantile": "-Infinity"}, "is not a quantile, from 0 to 1"),
        ("calls", {"step": "-5"}, "unable to parse param 'step': -5 ms: it must be at least 1 ms"),
        ("calls", {"step": "0"}, "it must be at least 1 ms"),
        ("calls", {"ratePer": "0"}, "it must be at least 1 ms"),
        ("calls", {"lookback": "-1"}, "it must be at least 0 ms"),
        ("calls", {"ratePer": str(2**63 - 1)}, "longer than Jaeger can hold"),
        ("calls", {"endTs": "253402300800000"}, "unable to parse param 'endTs': 253402300800000 is not a time"),
        ("calls", {"endTs": "-62135596800001"}, "is not a time Jaeger can read"),
        ("calls", {"endTs": "-62135596799000", "lookback": "2000"}, "reaches before the year 1"),
        ("calls", {"lookback": 86_400_000 * 30, "step": 1}, "exceeded maximum resolution of 11,000 points"),
    ],
)
def test_bad_parameters_are_400_never_500(client, what, params, message):
    body = ask(client, what, 400, **params)
    assert body["errors"][0]["code"] == 400 and message in body["errors"][0]["msg"], body
    assert body["data"] is None and set(body) == {"data", "total", "limit", "offset", "errors"}  # Jaeger's envelope


def test_the_audit_s_year_10000_and_huge_rate_is_a_400(client):
    answer = client.get(
        "/api/metrics/calls?service=gateway&endTs=253402300800000&lookback=1000&step=1000&ratePer=9223372036854775807"
    )
    assert answer.status_code == 400 and "endTs" in answer.get_json()["errors"][0]["msg"]


def test_go_s_float_syntax_and_jaeger_s_two_decimals(client):
    half = ask(client, "latencies", quantile="0x1p-1", groupByOperation="1")  # Go reads hex floats: 0.5
    assert half["help"].startswith("0.50th quantile")
    rounded = ask(client, "latencies", quantile="0.9549")  # Jaeger asks Prometheus for %.2f of it: 0.95
    assert rounded["metrics"] == ask(client, "latencies", quantile="0.95")["metrics"]
    assert ask(client, "latencies", quantile="1")["metrics"][0]["metricPoints"][-1]["gaugeValue"]["doubleValue"] == 400
    assert ask(client, "latencies", quantile="0")["metrics"]  # the lowest bound of the first bucket with calls


def test_an_unknown_metric_is_404():
    assert create_app(TraceStore()).test_client().get("/api/metrics/minstep?service=a").status_code == 404


def test_memory_is_bounded_whatever_the_traffic(monkeypatch):
    from workshop.tracestore import spanmetrics

    monkeypatch.setattr(spanmetrics, "MAX_SERIES", 100)
    metrics = SpanMetrics()
    for n in range(20_000):  # 20,000 services, as the receivers already face
        metrics.record(f"service-{n}", "op", "server", int(time.time() * 1e6), 1000, False)
    assert metrics.stats.series == 100 and metrics.stats.dropped == 19_900


def test_the_parser_reads_repeated_services_and_kinds():
    query = metrics_query(MultiDict([("service", "a"), ("service", "b"), ("spanKind", "unspecified")]))
    assert query.services == ["a", "b"] and query.span_kinds == [""] and query.step_ms == 5_000
    with pytest.raises(BadQuery):
        metrics_query(MultiDict({"service": "a"}), latencies=True)


def test_the_monitor_page_charts_the_metrics_and_links_each_point_to_its_traces(client):
    html = client.get("/monitor?service=gateway&window=1h", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "calls per second" in html and "error rate" in html and "latency" in html  # every kind, by default
    assert html.count("<circle") >= 5  # calls, errors, p50, p75, p95: a point each at least
    assert ">GET /a</a>" in html and ">GET /b</a>" in html and "20.0%" in html  # the operations' table
    assert ">github_request</a>" in html and "<td>client</td>" in html  # every kind, each row says which
    assert 'data-spans="17"' in html  # the calls in the window: 17 spans
    assert ">10 ms</text>" in html and ">1 s</text>" in html and ">10 s</text>" not in html  # log scale: 5 to 365 ms
    assert re.search(r'text-anchor="middle">\d\d:\d\d</text>', html)  # a time axis
    links = [link.replace("&amp;", "&") for link in re.findall(r'<a href="(/search\?[^"]*minDuration[^"]*)"', html)]
    assert links, "a latency point links to the traces at least that slow"
    found = client.get(links[-1], headers={"Accept": "text/html"}).get_data(as_text=True)
    assert found.count('name="trace"') >= 1
    sorted_by_p95 = client.get("/monitor/results?service=gateway&sort=p95").get_data(as_text=True)
    assert sorted_by_p95.index(">GET /b</a>") < sorted_by_p95.index(">GET /a</a>")  # the slower first
    p75 = re.search(r">GET /b</a></td>(.*?)</tr>", sorted_by_p95, re.S).group(1)
    assert len(re.findall(r">\d+\.\d ms</a>", p75)) == 3  # p50, p75, p95
    servers = client.get("/monitor/results?service=gateway&spanKind=server").get_data(as_text=True)
    assert "requests per second" in servers and ">github_request</a>" not in servers
    odd = client.get("/monitor?service=nobody&window=forever&spanKind=sideways&sort=x", headers={"Accept": "text/html"})
    assert odd.status_code == 200  # unknown choices fall back to the defaults


def test_the_monitor_page_s_scales():
    from workshop.tracestore.web import monitor

    assert [monitor._nice_top(v) for v in (0, 0.3, 4.08, 5, 5.01, 99)] == [1.0, 0.5, 5, 5, 10, 100]
    assert [monitor.rate_window_s(w) for w, _, _ in [(300, 0, 0), (3600, 0, 0), (86_400, 0, 0)]] == [30, 60, 1440]
    line = monitor.Line("p95", [monitor.Dot(0, 0, "", "", value) for value in (5, 4000)])
    chart = monitor._logarithmic("latency", [line], [])
    assert [mark.text for mark in chart.grid] == ["1 ms", "10 ms", "100 ms", "1 s", "10 s"]
    assert line.dots[0].y > line.dots[1].y and line.dots[1].y >= monitor.TOP  # 5 ms low, 4 s high, both shown
