"""The terminal waterfall and trace list at a learner's terminal width (80 columns), from hand-made traces."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from workshop.terminal.waterfall import render_trace, render_trace_list

T0 = 1_700_000_000_000_000  # microseconds


def kv(key: str, value) -> dict:
    kind = "bool" if isinstance(value, bool) else "int64" if isinstance(value, int) else "string"
    return {"key": key, "type": kind, "value": value}


def span(span_id: str, operation: str, start: int, duration: int, parent: str | None = None, **extra) -> dict:
    references = [{"refType": extra.pop("ref", "CHILD_OF"), "traceID": "ab" * 8, "spanID": parent}] if parent else []
    return {
        "traceID": "ab" * 8,
        "spanID": span_id,
        "operationName": operation,
        "references": references,
        "startTime": T0 + start,
        "duration": duration,
        "tags": extra.pop("tags", []),
        "logs": extra.pop("logs", []),
        "processID": extra.pop("process", "p1"),
        "warnings": None,
    }


def lesson_trace(trace_id: str = "ab" * 8, follows: bool = False) -> dict:
    ref = "FOLLOWS_FROM" if follows else "CHILD_OF"
    stack = 'Traceback (most recent call last):\n  File "worker.py", line 3\nValueError: ' + "x" * 900
    spans = [
        span(
            "01",
            "contributors_with_a_long_operation_name",
            0,
            2_030_000,
            tags=[kv("http.status_code", 200)],
            logs=[{"timestamp": T0 + 10, "fields": [kv("event", "baggage.dropped"), kv("key", "client")]}],
        ),
        span("02", "call_github_proxy", 200, 2_020_000, "01"),
        span("03", "stats", 4_100, 2_010_000, "02", process="p2"),
        span("04", "github_request", 4_200, 4_900, "03", process="p2"),
        span("05", "github_request", 1_010_000, 4_200, "03", process="p2"),
        span("06", "send_clean_job", 2_020_000, 3_800, "01"),
        span(
            "07",
            "handle_clean_job",
            2_021_000,
            950,
            "06",
            process="p3",
            ref=ref,
            logs=[{"timestamp": T0 + 2_021_500, "fields": [kv("event", "error"), kv("stack", stack)]}],
        ),
    ]
    processes = {
        "p1": {"serviceName": "gateway", "tags": []},
        "p2": {"serviceName": "github-proxy", "tags": []},
        "p3": {"serviceName": "worker", "tags": []},
    }
    trace = {"traceID": trace_id, "spans": spans, "processes": processes, "warnings": None}
    for s in spans:
        s["traceID"] = trace_id
    return trace


def draw(renderable, width: int = 80) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 100, 140])
def test_the_waterfall_fits_the_terminal_and_keeps_its_bars(width):
    lines = draw(render_trace(lesson_trace(), tags=True, logs=True, baggage=True, width=width), width)
    assert all(len(line) <= width for line in lines)
    rows = [line for line in lines if "github_request" in line and "█" in line]
    assert len(rows) == 2
    assert rows[0].index("█") < rows[1].index("█")  # the staircase is still drawn
    header = next(line for line in lines if line.startswith("span"))
    assert ("start" in header) == (width >= 100)


def test_a_long_root_name_cut_to_fit_80_columns_keeps_its_error_mark():
    """Lesson 8 with WITHOUT=worker: the root's name was cut before its ✗ error."""
    trace = lesson_trace()
    trace["spans"][0]["operationName"] = "GET /contributors/<owner>/<repo>"
    trace["spans"][0]["tags"].append(kv("error", True))
    root = draw(render_trace(trace, width=80))[3]
    assert "✗ error" in root and "█" in root and len(root) <= 80, root
    wide = draw(render_trace(trace, width=200))[3]
    assert "gateway GET /contributors/<owner>/<repo> ✗ error" in wide  # not cut where there is room


def test_a_stack_trace_in_a_log_stays_readable_and_long_values_are_cut():
    lines = draw(render_trace(lesson_trace(), logs=True, width=80))
    assert any("Traceback (most recent call last):" in line for line in lines)
    assert any(line.strip().startswith('File "worker.py", line 3') for line in lines)
    assert any("characters in all; --json shows them" in line for line in lines)


def test_baggage_shows_the_dropped_event():
    lines = "\n".join(draw(render_trace(lesson_trace(), baggage=True, width=80)))
    assert "event=baggage.dropped key=client" in lines


def test_a_follows_from_span_is_drawn_differently():
    child_of = "\n".join(draw(render_trace(lesson_trace(), width=80)))
    follows = "\n".join(draw(render_trace(lesson_trace(follows=True), width=80)))
    assert "░" not in child_of and "⇢" not in child_of
    assert "handle_clean_job ⇢" in follows and "░" in follows and "follows from its parent" in follows


def test_a_fixed_scale_shows_a_shorter_trace_as_a_shorter_bar():
    def bar(trace: dict) -> int:
        row = next(line for line in draw(render_trace(trace, width=80, scale_us=4_000_000)) if "contributors" in line)
        return row.count("█")

    slow, fast = lesson_trace(), lesson_trace()
    fast["spans"][0]["duration"] = 1_000_000
    assert bar(fast) < bar(slow)


def test_the_trace_list_never_cuts_an_id_at_80_columns():
    traces = [lesson_trace("1234567890abcdef1234567890abcdef"), lesson_trace("fedcba0987654321")]
    lines = "\n".join(draw(render_trace_list(traces), 80))
    assert "1234567890abcdef1234567890abcdef" in lines and "fedcba0987654321" in lines
    assert max(len(line) for line in lines.splitlines()) <= 80


def test_the_trace_list_says_what_its_error_mark_means():
    clean, failed = lesson_trace(), lesson_trace("fedcba0987654321")
    failed["spans"][0]["tags"].append({"key": "error", "type": "bool", "value": True})
    assert "marked as errors" not in "\n".join(draw(render_trace_list([clean]), 80))
    lines = "\n".join(draw(render_trace_list([clean, failed]), 80))
    assert " 1✗" in lines and "3✗: 10 spans, 3 of them marked as errors" in lines


def test_a_long_name_is_cut_before_its_error_mark_at_80_columns():
    trace = lesson_trace()
    trace["spans"][0]["operationName"] = "GET /contributors/<owner>/<repo>/and/a/much/longer/route/than/usual"
    trace["spans"][0]["tags"].append({"key": "error", "type": "bool", "value": True})
    root = next(line for line in draw(render_trace(trace, width=80)) if "GET /contributors" in line)
    assert "… ✗ error" in root and len(root) <= 80
