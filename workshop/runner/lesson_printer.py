"""What `make stepN` prints of its processes: honcho's lines, less the noise that hides the lesson."""

from __future__ import annotations

import re
import sys
from typing import TextIO

from honcho.printer import Message, Printer

# A process we stopped exits with one of these: 0, or by SIGINT/SIGTERM (as a signal, or as 128 + it).
STOPPED_AS_ASKED = re.compile(r" stopped \(rc=(0|-2|-15|130|143)\)")
REDIS_OVERCOMMIT = "(Redis warns about memory overcommit: advice for production servers, harmless here)"


class LessonPrinter(Printer):
    """honcho's printer, with two lines changed: a process that stopped as asked is just "stopped" (not
    "stopped (rc=-15)", which reads like a failure), and Redis's advice for production servers about memory
    overcommit, printed at every start, is said once, in one short line."""

    def __init__(self, output: TextIO = sys.stdout):
        super().__init__(output)
        self.overcommit_explained = False

    def write(self, message: Message) -> None:
        text = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
        if message.name == "system":
            text = STOPPED_AS_ASKED.sub(" stopped", text)
        elif message.name == "redis" and "overcommit" in text:
            if self.overcommit_explained:
                return
            self.overcommit_explained = True
            text = REDIS_OVERCOMMIT + "\n"
        super().write(message._replace(data=text))
