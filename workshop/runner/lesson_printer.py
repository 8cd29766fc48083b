"""What `make stepN` prints of its processes: honcho's lines, less the noise that hides the lesson."""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import textwrap
from collections import deque
from typing import TextIO

from honcho.printer import Message, Printer

# A process we stopped exits with one of these: 0, or by SIGINT/SIGTERM (as a signal, or as 128 + it).
STOPPED_AS_ASKED = re.compile(r" stopped \(rc=(0|-2|-15|130|143)\)")
REDIS_OVERCOMMIT = "(Redis warns about memory overcommit: advice for production servers, harmless here)"
RECENT = 200  # lines kept of each process (make check-stepN names the file and line of an error from them)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # werkzeug colours its request lines, for a terminal


class LessonPrinter(Printer):
    """honcho's printer, with these lines changed: a process that stopped as asked is just "stopped" (not
    "stopped (rc=-15)", which reads like a failure), and Redis's advice for production servers about memory
    overcommit, printed at every start, is said once, in one short line. And, unlike honcho's: each line goes
    out in one write, under the output's lock (so the demo's lines, from another thread, never land inside
    it); in a terminal, a long line wraps between words, its rest indented under the first; into a pipe or
    a file, no colour codes and no wrapping."""

    def __init__(self, output: TextIO = sys.stdout):
        super().__init__(output)
        self.overcommit_explained = False
        self.recent: dict[str, deque[str]] = {}  # each process's last lines, as it wrote them

    def write(self, message: Message) -> None:
        text = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
        if message.name and message.name != "system":
            self.recent.setdefault(message.name, deque(maxlen=RECENT)).extend(ANSI_ESCAPE.sub("", text).splitlines())
        if message.name == "system":
            text = STOPPED_AS_ASKED.sub(" stopped", text)
        elif message.name == "redis" and "overcommit" in text:
            if self.overcommit_explained:
                return
            self.overcommit_explained = True
            text = REDIS_OVERCOMMIT + "\n"
        terminal = self._colours_supported
        if not terminal:
            text = ANSI_ESCAPE.sub("", text)
        name = (message.name or "").ljust(self.width)
        prefix = f"{message.time.strftime(self.time_format)} {name} | " if name else ""
        width = shutil.get_terminal_size().columns - len(prefix) if terminal else 0
        out = []
        for line in text.splitlines():
            pieces = _wrap(line, width) if width >= 20 else [line]
            first = prefix
            if self.colour and terminal and message.colour and prefix:
                first = f"\033[0m\033[{message.colour}m{prefix}\033[0m"
            out.append(first + pieces[0])
            out += [" " * len(prefix) + piece for piece in pieces[1:]]
        if not out:
            return
        lock = getattr(self.output, "lock", None) or contextlib.nullcontext()
        with lock:
            self.output.write("\n".join(out) + "\n")
            self.output.flush()


def _wrap(line: str, width: int) -> list[str]:
    """A line cut between words to `width` columns (a word longer than that, alone, is cut)."""
    if len(ANSI_ESCAPE.sub("", line)) <= width:
        return [line]
    return textwrap.wrap(line, width, break_on_hyphens=False, drop_whitespace=True) or [line]
