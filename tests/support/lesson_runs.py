"""A lesson's folder (or a copy of it) served in memory, its requests sent, and the trace of each read back
through the store's own receivers, with the traces around it: what the trace doctor and the exercises'
checker read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import requests

from tests.conftest import serve_stage_app
from tests.support.memory_traces import traces
from tests.support.spans import settled
from workshop.lessons.checking import check
from workshop.lessons.stages import Stage
from workshop.tracestore.diagnosis import diagnose
from workshop.tracestore.model import Json

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
            answer = requests.get(url + path, headers=headers, timeout=20)
            every = traces(settled(spans))
            trace_id = answer.headers.get("X-Trace-Id", "")
            mine = next((t for t in every if trace_id and t.endswith(trace_id.lstrip("0"))), None)
            trace = every.pop(mine) if mine else None
            found[name] = (trace, list(every.values()))
    return found


def check_all(stage: Stage, ran: dict) -> list:
    """The checker's results over what `lesson_traces` gave, with the doctor's findings for each request."""
    found = {name: trace for name, (trace, _) in ran.items()}
    around = {name: others for name, (_, others) in ran.items()}
    findings = {name: diagnose(trace, others) if trace else [] for name, (trace, others) in ran.items()}
    return check(stage.name, found, around, findings)
