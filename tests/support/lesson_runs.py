"""A lesson's folder (or a copy of it) served in memory, its requests sent, and the trace of each read back
through the store's own receivers, with the traces around it: what the trace doctor and the exercises'
checker read."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import github_gives_up_soon, serve_stage_app, untraced_get
from tests.support.memory_traces import traces
from workshop.lessons.checking import check
from workshop.lessons.stages import Stage
from workshop.tracestore.diagnosis import diagnose
from workshop.tracestore.model import Json, TraceTree

Request = tuple[str, dict[str, str]]  # (path, headers)


def lesson_traces(
    stage: Stage,
    folder: Path,
    github_url: str,
    monkeypatch,
    spans,
    asked: Mapping[str, Request],
    token: str = "",
) -> dict[str, tuple[Json | None, list[Json]]]:
    """name -> (the trace its answer names, or None; every other trace that came of it)."""
    found = {}
    copy = Stage(stage.number, folder)
    with serve_stage_app(str(folder), monkeypatch, github_url, token, stage=copy) as url:
        for name, (path, headers) in asked.items():
            spans.clear()
            with github_gives_up_soon(str(folder)) if path.endswith("/slow") else contextlib.nullcontext():
                answer = untraced_get(url + path, headers=headers, timeout=20)  # a client of its own, as make check
            every = whole_traces(spans)
            trace_id = answer.headers.get("X-Trace-Id", "")
            mine = next((t for t in every if trace_id and t.endswith(trace_id.lstrip("0"))), None)
            if not trace_id and every:  # as make check-stepN finds it: the trace that began first
                mine = min(every, key=lambda t: TraceTree(every[t]).start)
            trace = every.pop(mine) if mine else None
            found[name] = (trace, list(every.values()))
    return found


def whole_traces(spans, poll_s: float = 0.1, give_up_s: float = 2.0, timeout_s: float = 10.0) -> dict[str, Json]:
    """The reporter's traces once each span's parent is there (a worker answers from inside its span, so its
    span can finish after the answer, however late a busy machine makes it); or, when one never comes (a
    mistake), once nothing new has come for `give_up_s`. Not a fixed wait: how fast the machine is does not
    decide what the test sees."""
    deadline = time.monotonic() + timeout_s
    count, changed = -1, time.monotonic()
    while True:
        now = spans.get_spans()
        found = traces(now)
        whole = all(not node.missing_parent for trace in found.values() for node in TraceTree(trace).roots)
        if len(now) == count and (whole or time.monotonic() - changed >= give_up_s):
            return found
        if len(now) != count:
            count, changed = len(now), time.monotonic()
        if time.monotonic() > deadline:
            return found
        time.sleep(poll_s)


def check_all(stage: Stage, ran: dict) -> list:
    """The checker's results over what `lesson_traces` gave, with the doctor's findings for each request."""
    found = {name: trace for name, (trace, _) in ran.items()}
    around = {name: others for name, (_, others) in ran.items()}
    findings = {name: diagnose(trace, others) if trace else [] for name, (trace, others) in ran.items()}
    return check(stage.name, found, around, findings)
