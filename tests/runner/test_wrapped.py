"""What a learner's terminal shows of a long line: prose wrapped between words, a command never cut."""

from __future__ import annotations

import io

from rich.console import Console

from workshop.runner.wrapped import say_command, say_wrapped


def shown(write, width: int = 80) -> str:
    out = io.StringIO()
    write(Console(file=out, width=width, highlight=False))
    return out.getvalue()


def test_a_command_beside_its_label_when_it_fits_else_under_it_whole():
    url = "http://localhost:16686/trace/" + "ab" * 16  # an OpenTelemetry trace id: 32 hex digits
    assert shown(lambda c: say_command(c, "in the browser:", url), 120) == f"  in the browser: {url}\n"
    assert shown(lambda c: say_command(c, "in the browser:", url), 60) == f"  in the browser:\n    {url}\n"
    assert shown(lambda c: say_command(c, "asked:", "make step2", below=True)) == "  asked:\n    make step2\n"
    assert shown(lambda c: say_command(c, "", "make step2")) == "    make step2\n"
    long = "python -m workshop collector --journal /" + "x" * 100  # longer than the terminal: one line still
    assert shown(lambda c: say_command(c, "", long)) == f"    {long}\n"


def test_prose_wraps_between_words_its_later_lines_indented_without_padding():
    text = "This trace is kept in /tmp/some/long/folder/traces.jsonl. To look at it again:"
    lines = shown(lambda c: say_wrapped(c, 40, text, indent=2, hang=4), 40).splitlines()
    assert lines == ["  This trace is kept in", "    /tmp/some/long/folder/traces.jsonl.", "    To look at it again:"]
