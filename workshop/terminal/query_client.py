"""A small client for Jaeger's query API: the workshop's trace store or any real Jaeger."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import requests

from workshop.errors import WorkshopError
from workshop.ports import ENDPOINT
from workshop.tracestore.model import Json, normalize_trace_id

DEFAULT_QUERY_URL = f"http://127.0.0.1:{ENDPOINT['query'].default}"


class QueryClient:
    def __init__(self, base_url: str = DEFAULT_QUERY_URL, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict | None = None) -> Json:
        url = self.base_url + path
        try:
            response = requests.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise WorkshopError(
                f"no trace store answers at {self.base_url} ({type(error).__name__}): "
                "start one with `make step3` or `.venv/bin/python -m workshop collector` (add `--journal "
                "traces.jsonl` to read back a file a run kept), or pass --query-url"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise WorkshopError(f"{url} answered {response.status_code} without JSON: is it Jaeger?") from None
        if response.status_code >= 400:
            messages = "; ".join(e.get("msg", "") for e in body.get("errors") or []) or response.reason
            raise WorkshopError(f"{url} answered {response.status_code}: {messages}")
        return body

    def services(self) -> list[str]:
        return self._get("/api/services").get("data") or []

    def find_traces(
        self,
        service: str,
        limit: int = 20,
        min_duration: str | None = None,
        tags: dict | None = None,
        lookback: str | None = "1h",
    ) -> list[Json]:
        params: dict = {"service": service, "limit": limit}
        if lookback:
            params["lookback"] = lookback
        if min_duration:
            params["minDuration"] = min_duration
        if tags:
            params["tags"] = json.dumps(tags)
        return self._get("/api/traces", params).get("data") or []

    def traces_between(self, start_us: int, end_us: int, limit: int = 10_000) -> list[Json]:
        """Every service's traces that began between these times (at most `limit` a service: the store's
        largest answer, which holds as many as it keeps)."""
        found: dict[str, Json] = {}
        for service in self.services():
            params = {"service": service, "start": start_us, "end": end_us, "limit": limit}
            for trace in self._get("/api/traces", params).get("data") or []:
                found[trace["traceID"]] = trace
        return list(found.values())

    def trace(self, trace_id: str) -> Json:
        data = self._get(f"/api/traces/{quote(checked_trace_id(trace_id), safe='')}").get("data") or []
        if not data:
            raise WorkshopError(f"trace {trace_id} not found")
        return data[0]

    def wait_for_trace(
        self, trace_id: str, services: set[str], timeout: float, quiet: float | None = None
    ) -> Json | None:
        """Poll until the trace has a span from every service and stops growing (spans arrive in
        batches, each service on its own schedule). With `quiet`: also once it got no new span for that
        long (a broken trace never gets all its services). The trace as it stands at the timeout, or None."""
        deadline = time.monotonic() + timeout
        found: Json | None = None
        previous_count, changed = -1, time.monotonic()
        while time.monotonic() < deadline:
            try:
                found = self.trace(trace_id)
            except WorkshopError:
                found = None
            count = len(found["spans"]) if found else 0
            still = found is not None and count == previous_count
            if still and (services <= trace_services(found) or (quiet and time.monotonic() - changed >= quiet)):
                return found
            if count != previous_count:
                previous_count, changed = count, time.monotonic()
            time.sleep(0.25)
        return found


def checked_trace_id(text: str) -> str:
    """`text` if it is a trace id (1 to 32 hex digits), as given; else a clear error, before anything is asked."""
    try:
        normalize_trace_id(text)
    except ValueError as problem:
        raise WorkshopError(f"{problem}: copy the id from `make stepN`, `traces` or a trace page") from None
    return text.strip()


def trace_services(trace: Json) -> set[str]:
    processes = trace.get("processes") or {}
    return {
        processes[span["processID"]]["serviceName"] for span in trace.get("spans", []) if span["processID"] in processes
    }
