"""The runner's log lines: whole, in one write each, readable at 80 columns, plain into a pipe."""

from __future__ import annotations

import datetime
import io

from honcho.printer import Message

from workshop.runner.lesson_printer import LessonPrinter

WERKZEUG = '127.0.0.1 - - [04/Dec/2026 19:05:55] "' + (
    '\x1b[35m\x1b[1mGET /repos/a/b/stats/contributors HTTP/1.1\x1b[0m" 202 -'
)


class Output(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty, self.writes = tty, 0

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def line(text: str, name: str = "contributors") -> Message:
    return Message(type="line", data=text + "\n", time=datetime.datetime(2026, 12, 4), name=name, colour="32")


def test_into_a_pipe_a_line_has_no_colour_codes_and_goes_out_in_one_write():
    """Before: werkzeug's colour codes in `make step3 | tee log`, and print()'s two writes (the line, then its
    newline), between which the demo's "200 OK in 0.32 s" once landed: `... 200 -200 OK in 0.32 s`."""
    out = Output(tty=False)
    LessonPrinter(out).write(line(WERKZEUG))
    assert "\x1b" not in out.getvalue() and out.getvalue().endswith('HTTP/1.1" 202 -\n')
    assert out.writes == 1


def test_in_an_80_column_terminal_a_long_line_wraps_between_words(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = Output(tty=True)
    printer = LessonPrinter(out)
    printer.width = len("contributors")
    words = "GitHub is computing the stats of pallets/flask: retrying in 1 s, and again, and once more"
    printer.write(line(f"[trace=81c307063a0efa5e span=7db73245a7194c27] INFO contributors: {words}"))
    plain = [row.replace("\x1b[0m", "").replace("\x1b[32m", "") for row in out.getvalue().splitlines()]
    assert len(plain) >= 2 and all(len(row) <= 80 for row in plain), plain
    assert " ".join(" ".join(row.split("| ", 1)[-1].split()) for row in plain).endswith(words)
    assert plain[1].startswith(" " * len("00:00:00 contributors | "))
