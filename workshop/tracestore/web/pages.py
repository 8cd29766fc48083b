"""The trace viewer: HTML pages at Jaeger UI's own paths, so every link works against the store and against a
real Jaeger alike.

/  and  /search?service=&operation=&tags=&minDuration=&maxDuration=&lookback=&limit=   search, newest first
/search/results?...   the same results alone (the search page asks for them every few seconds: live)
/trace/<traceID>      the waterfall; /trace/<idA>...<idB> compares two traces span by span
/dependencies         the services and their calls
/monitor?service=&spanKind=&window=&sort=   a service's rates, errors and latencies, every operation's too (the
                      span metrics: Jaeger UI's Monitor tab); /monitor/results: the same alone, for its live refresh
/receivers            what each receiver took (not in Jaeger UI: the store's own page)
/docs/<path>.md       a lesson's README, when the store is told where they are (the trace doctor links them)
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from workshop.tracestore.api import stats_of, store_of
from workshop.tracestore.diagnosis import NEIGHBOURS_US, diagnose
from workshop.tracestore.durations import format_duration_us
from workshop.tracestore.model import Json, TraceTree, normalize_trace_id
from workshop.tracestore.query import MAX_LIMIT, BadQuery, TraceQuery, v1_trace_query
from workshop.tracestore.web import monitor as monitoring
from workshop.tracestore.web.docs import find_doc, lesson_url, render_doc
from workshop.tracestore.web.model import (
    HOW_COMPARE_MATCHES,
    colours,
    compare,
    dependency_graph,
    duration_bars,
    summary,
    trace_view,
)
from workshop.tracestore.web.receivers import receiver_rows

LOOKBACKS = [
    ("5m", "last 5 minutes"),
    ("1h", "last hour"),
    ("6h", "last 6 hours"),
    ("24h", "last day"),
    ("", "any time"),
]
LIVE_SECONDS = 2
MONITOR_LIVE_SECONDS = 5  # the Monitor's shortest step: its 5-minute window's points are 5 s apart
FORM_FIELDS = ("operation", "tags", "minDuration", "maxDuration", "limit", "start", "end")  # start, end: µs

pages = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static")
pages.add_app_template_filter(format_duration_us, "duration")


def search_context() -> dict:
    args = request.args
    store = store_of()
    services = store.services()
    chosen = args.get("service") or (services[0] if services else "")
    form = {name: args.get(name, "") for name in FORM_FIELDS}
    form["lookback"] = args.get("lookback", "1h")
    context = {
        "services": services,
        "service": chosen,
        "form": form,
        "lookbacks": LOOKBACKS,
        "operations": sorted({name for name, _ in store.operations(chosen)}) if chosen else [],
        "summaries": [],
        "bars": [],
        "problem": None,
        "live_seconds": LIVE_SECONDS,
    }
    if not chosen:
        return context
    try:
        query = v1_trace_query(MultiDict({"service": chosen, **{k: v for k, v in form.items() if v}}))
    except BadQuery as problem:
        context["problem"] = str(problem)
        return context
    found = [summary(trace) for trace in store.find_lazily(query)]
    context["summaries"] = sorted(found, key=lambda s: s.start_us, reverse=True)
    context["bars"] = duration_bars(found)
    context["colours"] = colours(sorted({name for s in found for name in s.services}))
    return context


@pages.get("/")
def home():
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if best != "text/html":  # `curl localhost:16686/` gets the JSON index, a browser the search page
        return jsonify(
            {
                "trace_store": "the workshop's Jaeger-compatible trace store",
                "pages": ["/search", "/trace/<traceID>", "/dependencies"],
                "api": ["/api/services", "/api/traces?service=<service>", "/api/traces/<traceID>"],
                "traces": store_of().trace_count(),
            }
        )
    return search()


@pages.get("/search")
def search():
    context = search_context()
    status = 400 if context["problem"] else 200
    return render_template("search.html", **context), status


@pages.get("/search/results")
def search_results():
    context = search_context()
    return render_template("results.html", **context), 400 if context["problem"] else 200


@pages.get("/compare")
def compare_form():
    """The search page's "compare" button: the two ticked traces, at Jaeger UI's compare address."""
    chosen = request.args.getlist("trace")
    if len(chosen) != 2:
        return _problem("Compare needs exactly two traces: tick two in the search results.", 400)
    return redirect(url_for("web.trace", trace_id=f"{chosen[0]}...{chosen[1]}"))


@pages.get("/trace/<trace_id>")
def trace(trace_id: str):
    if "..." in trace_id:
        first, _, second = trace_id.partition("...")
        return _compare(first, second)
    found = _find(trace_id)
    if isinstance(found, Response):
        return found
    return render_template(
        "trace.html", view=trace_view(found), findings=diagnose(found, _around(found)), lesson_url=lesson_url
    )


def _around(trace: Json) -> list[Json]:
    """The traces the doctor compares this one with: those that began in its own time, give or take
    NEIGHBOURS_US, however old it is."""
    tree = TraceTree(trace)
    window = TraceQuery(start_us=tree.start - NEIGHBOURS_US, end_us=tree.end + NEIGHBOURS_US, limit=MAX_LIMIT)
    return store_of().find(window)


@pages.get("/docs/<path:path>")
def doc(path: str):
    found, problem = find_doc(path)
    if found is None:
        return _problem(problem, 404)
    return render_doc(found)


def _compare(first: str, second: str):
    views = []
    for trace_id in (first, second):
        found = _find(trace_id)
        if isinstance(found, Response):
            return found
        views.append(trace_view(found))
    a, b = views
    both = colours(sorted(set(a.services) | set(b.services)))
    return render_template("compare.html", a=a, b=b, rows=compare(a, b), colours=both, how=HOW_COMPARE_MATCHES)


def _find(trace_id: str):
    try:
        normalized = normalize_trace_id(trace_id)
    except ValueError as problem:
        return _problem(str(problem), 400)
    found = store_of().get(normalized)
    if found is None:
        return _problem(
            f"No trace {trace_id} here. The store keeps the newest traces while it runs; a trace from an "
            "earlier run is gone unless the store keeps a journal (TRACE_STORE_FILE).",
            404,
        )
    return found


@pages.get("/dependencies")
def dependencies():
    store = store_of()
    links = store.dependencies()
    graph = dependency_graph(links, store.services())
    return render_template("dependencies.html", graph=graph, links=links, colours=colours(list(graph.nodes)))


@pages.get("/monitor")
def monitor():
    """Jaeger UI's Monitor tab, at its path: a service's rates and latencies from the span metrics."""
    return render_template("monitor.html", **monitor_context())


@pages.get("/monitor/results")
def monitor_results():
    return render_template("monitor_results.html", **monitor_context())


def monitor_context() -> dict:
    args, store = request.args, store_of()
    services = store.services()
    service = args.get("service") if args.get("service") in services else (services[0] if services else "")
    kind = args.get("spanKind") if args.get("spanKind") in monitoring.KINDS else "all"
    windows = {value: (text, seconds) for value, text, seconds in monitoring.WINDOWS}
    window = args.get("window") if args.get("window") in windows else monitoring.DEFAULT_WINDOW
    sort = args.get("sort") if args.get("sort") in monitoring.SORTS else "count"
    text, seconds = windows[window]
    end_ms = int(time.time() * 1000)
    metrics = store.metrics
    rows = monitoring.operations(metrics, services, kind, seconds, end_ms, sort) if services else []
    charts = monitoring.charts(metrics, service, kind, seconds, end_ms) if service else []
    return {
        "services": services,
        "service": service,
        "kinds": monitoring.KINDS,
        "span_kind": kind,
        "kind_text": monitoring.KINDS[kind][0],
        "windows": monitoring.WINDOWS,
        "window": window,
        "window_text": text,
        "sort": sort,
        "sorts": monitoring.SORTS,
        "charts": charts,
        "drawn": any(line.dots for chart in charts for line in chart.lines),
        "rows": rows,
        "spans": sum(row.count for row in rows),
        "width": monitoring.WIDTH,
        "height": monitoring.HEIGHT,
        "left": monitoring.LEFT,
        "right": monitoring.RIGHT,
        "spark_width": monitoring.SPARK_WIDTH,
        "spark_height": monitoring.SPARK_HEIGHT,
        "start": monitoring.clock(end_ms - seconds * 1000),
        "end": monitoring.clock(end_ms),
        "rate_window": format_duration_us(monitoring.rate_window_s(seconds) * 1_000_000),
        "live_seconds": MONITOR_LIVE_SECONDS,
    }


@pages.get("/receivers")
def receivers():
    figures, store = stats_of(), store_of()
    return render_template(
        "receivers.html",
        rows=receiver_rows(figures),
        sampling_port=figures.get("ports", {}).get("sampling", "?"),
        sampling_requests=figures.get("sampling", {}).get("requests", 0),
        sampling_answers=sorted(figures.get("sampling", {}).get("answers", {}).items()),
        sampling_not_shown=figures.get("sampling", {}).get("services_not_shown", 0),
        traces=store.trace_count(),
        spans=store.span_count(),
        max_traces=store.max_traces,
    )


def _problem(message: str, status: int) -> Response:
    response = Response(render_template("problem.html", message=message, status=status), status=status)
    response.mimetype = "text/html"
    return response
