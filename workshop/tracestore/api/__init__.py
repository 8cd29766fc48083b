"""Jaeger's query APIs over the store: API v1 (`/api/...`, Jaeger UI's classic calls) and API v3
(`/api/v3/...`, what Jaeger v2 and Jaeger UI v2.19+ call). Each is a Flask blueprint reading the store the
app holds (`store_of`); `workshop.tracestore.app` mounts them beside the pages."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from workshop.tracestore.store import TraceStore

STORE, STATS = "workshop.trace_store", "workshop.trace_store_stats"  # keys in app.extensions


def store_of() -> TraceStore:
    """The store the running app serves."""
    return current_app.extensions[STORE]


def stats_of() -> dict:
    """What the receivers counted (`/api/stats`): {} for an app made without them."""
    stats: Callable[[], dict] | None = current_app.extensions.get(STATS)
    return stats() if stats else {}
