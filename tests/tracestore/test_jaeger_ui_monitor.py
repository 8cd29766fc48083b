"""The real Jaeger UI's Monitor tab, reading the store: its requests and its reading of the answers, written out
from jaeger-ui's source (packages/jaeger-ui/src/api/jaeger.ts `fetchMetrics`, and
src/components/Monitor/ServicesView/useMetricsQuery.ts `transformServiceMetrics`, `transformOperationMetrics`:
the fields it reads, in its order). Jaeger UI is not on PyPI and cannot run here (no network, no npm package of
it): this is the next best thing, the store's real answers through the UI's own reading."""

from __future__ import annotations

import itertools
import math
import time
from datetime import datetime
from urllib.parse import urlencode

import pytest

from tests.support.metric_spans import GATEWAY, span
from workshop.tracestore.app import create_app
from workshop.tracestore.store import TraceStore

NOW_MS = (int(time.time()) // 60) * 60_000


@pytest.fixture(scope="module")
def client():
    store = TraceStore()
    store.metrics.clock = lambda: NOW_MS / 1000 + 60
    spans = [span(n, "/PlaceOrder", 700, NOW_MS, error=n == 1, ago_s=90) for n in range(1, 6)]
    spans += [span(n, "/Checkout", 30, NOW_MS, ago_s=90) for n in range(6, 16)]
    store.add_spans([(s, GATEWAY) for s in spans])
    return create_app(store).test_client()


def fetch_metrics(client, metric_type: str, service: str, query: dict) -> dict:
    """jaeger.ts fetchMetrics: `service=NAME&` + query-string's stringify (keys sorted, true as "true"); a status
    below 400 is read as JSON, and the quantile asked is added to it."""
    stringified = urlencode(
        sorted((key, str(value).lower() if value is True else value) for key, value in query.items())
    )
    response = client.get(f"/api/metrics/{metric_type}?service={service}&{stringified}")
    if response.status_code >= 400:
        return {"status": "rejected", "reason": {"httpStatus": response.status_code}}
    return {"status": "fulfilled", "value": {**response.get_json(), "quantile": query.get("quantile")}}


def to_fixed_2(value) -> float | None:
    """parseFloat(p.gaugeValue.doubleValue.toFixed(2)), which is null when doubleValue is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(f"{value:.2f}")


def parse_metric_points(points: list[dict]) -> list[dict]:
    return [
        {"x": round(datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")).timestamp() * 1000),
         "y": to_fixed_2(p["gaugeValue"]["doubleValue"])}
        for p in points
    ]  # fmt: skip


def transform_service_metrics(payload: list[dict]) -> tuple[dict, dict]:
    service_metrics = {"service_latencies": None, "service_call_rate": None, "service_error_rate": None}
    errors = {}
    for i, result in enumerate(payload):
        if result["status"] == "fulfilled":
            metrics = result["value"]
            if metrics["metrics"]:
                points = parse_metric_points(metrics["metrics"][0]["metricPoints"])
                metric = {
                    "serviceName": metrics["metrics"][0]["labels"][0]["value"],
                    "quantile": metrics["quantile"],
                    "max": max([p["y"] for p in points if p["y"] is not None], default=0),
                    "metricPoints": points,
                }
                if metrics["name"] == "service_latencies":
                    service_metrics["service_latencies"] = (service_metrics["service_latencies"] or []) + [metric]
                else:
                    service_metrics[metrics["name"]] = metric
        else:
            errors[i] = result["reason"]
    return service_metrics, errors


def transform_operation_metrics(payload: list[dict]) -> list[dict]:
    ops: dict[str, dict] = {}
    for result in payload:
        if result["status"] != "fulfilled":
            continue
        metric = result["value"]
        for details in metric["metrics"]:
            name = next((label["value"] for label in details["labels"] if label["name"] == "operation"), None)
            if name:
                op = ops.setdefault(name, {"name": name, "metricPoints": {"avg": {}}})
                points = parse_metric_points(details["metricPoints"])
                op["metricPoints"][metric["name"]] = points
                ys = [p["y"] for p in points if p["y"] is not None]
                op["metricPoints"]["avg"][metric["name"]] = float(f"{sum(ys) / len(ys):.2f}") if ys else None
    return [
        {
            "name": op["name"],
            "latency": op["metricPoints"]["avg"].get("service_operation_latencies") or 0,
            "requests": op["metricPoints"]["avg"].get("service_operation_call_rate") or 0,
            "errRates": op["metricPoints"]["avg"].get("service_operation_error_rate") or 0,
        }
        for op in ops.values()
    ]


def ui_params(lookback_ms: int = 3_600_000, span_kind: str = "server") -> dict:
    """What the Monitor tab asks with (ServicesView: quantile 0.95, a step of a minute, rates over 10 minutes)."""
    return {"quantile": 0.95, "endTs": NOW_MS, "lookback": lookback_ms, "step": 60_000, "ratePer": 600_000,
            "spanKind": span_kind}  # fmt: skip


def test_the_monitor_tab_s_service_charts_read_the_store(client):
    params = ui_params()
    payload = [  # useServiceMetricsQuery: Promise.allSettled of these five, in this order
        fetch_metrics(client, "latencies", "gateway", {**params, "quantile": 0.5}),
        fetch_metrics(client, "latencies", "gateway", {**params, "quantile": 0.75}),
        fetch_metrics(client, "latencies", "gateway", {**params}),
        fetch_metrics(client, "calls", "gateway", {**params}),
        fetch_metrics(client, "errors", "gateway", {**params}),
    ]
    charts, errors = transform_service_metrics(payload)
    assert errors == {}  # (a 501 here is what makes the UI show "Get started with Service Performance Monitoring")
    latencies = charts["service_latencies"]
    assert [line["quantile"] for line in latencies] == [0.5, 0.75, 0.95]
    assert {line["serviceName"] for line in latencies} == {"gateway"}
    for line in [*latencies, charts["service_call_rate"], charts["service_error_rate"]]:
        xs = [point["x"] for point in line["metricPoints"]]
        assert xs and all(point["y"] is not None for point in line["metricPoints"])  # every value a number
        assert {later - earlier for earlier, later in itertools.pairwise(xs)} <= {60_000}  # a point a minute
        assert xs[-1] == NOW_MS
    assert charts["service_call_rate"]["metricPoints"][-1]["y"] == pytest.approx(15 / 600, abs=0.005)
    assert charts["service_error_rate"]["max"] == pytest.approx(1 / 15, abs=0.005)
    assert 400 <= latencies[2]["max"] <= 800  # the p95: a 700 ms /PlaceOrder, in its (400, 800] ms bucket


def test_the_monitor_tab_s_operations_table_reads_the_store(client):
    query = {**ui_params(), "groupByOperation": True}
    payload = [fetch_metrics(client, what, "gateway", query) for what in ("latencies", "calls", "errors")]
    table = {row["name"]: row for row in transform_operation_metrics(payload)}
    assert set(table) == {"/PlaceOrder", "/Checkout"}
    assert table["/PlaceOrder"]["errRates"] == pytest.approx(0.2) and table["/Checkout"]["errRates"] == 0
    assert table["/PlaceOrder"]["latency"] > table["/Checkout"]["latency"] > 0
    assert table["/Checkout"]["requests"] == pytest.approx(10 / 600, abs=0.005)


def test_a_service_without_metrics_is_no_data_not_an_error(client):
    charts, errors = transform_service_metrics([fetch_metrics(client, "calls", "nobody", ui_params())])
    assert errors == {} and charts["service_call_rate"] is None  # the UI's "No data yet!"
