"""A learner's terminal, for real: an interactive bash on a pseudo-terminal of its own, commands typed into
it, Ctrl-C pressed, the window closed. Every process it starts carries a marker in its environment, so a
test judges only its own processes (never the whole machine's by port or by name)."""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import processes_started_with, runner_env
from tests.support.stage_loader import ROOT

PROMPT = "ready> "  # the shell's prompt, as this session waits for it


def venv_argument() -> str:
    """`VENV=...` for make: the virtualenv this test runs in, whatever its name (.venv, .venv-3.12)."""
    return f"VENV={Path(sys.prefix)}"


class TerminalSession:
    def __init__(self, cwd: Path = ROOT, **extra: str):
        if not sys.platform.startswith("linux"):
            pytest.skip("reads /proc to find the session's processes (Linux)")
        env = runner_env(**extra)  # with a marker of its own: processes_started_with
        for variable in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "COLUMNS", "PYTHONUNBUFFERED"):
            env.pop(variable, None)
        env.update({"TERM": "xterm", "PS1": PROMPT, "HISTFILE": "/dev/null"})
        self.env = env
        self.master, slave = os.openpty()
        # setsid -c: a session of its own, whose controlling terminal is this pty (as a terminal window's shell)
        self.shell = subprocess.Popen(
            ["setsid", "-c", "bash", "--norc", "--noprofile", "-i"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
        )
        os.close(slave)
        self.seen = b""
        self.read_up_to = 0
        self.closed = False

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """Read what the terminal shows until `text` appears after what the last wait found (generous timeout:
        a busy laptop is slow); returns the whole screen so far."""
        deadline = time.monotonic() + timeout
        while (found := self.seen.find(text.encode(), self.read_up_to)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} never appeared; the terminal showed:\n{self.screen}")
            ready, _, _ = select.select([self.master], [], [], min(left, 1))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the shell has gone
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the shell ended before {text!r}; it showed:\n{self.screen}")
                self.seen += chunk
        self.read_up_to = found + len(text)
        return self.screen

    @property
    def screen(self) -> str:
        """What it showed, as text: without colours and carriage returns."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", self.seen.decode("utf-8", "replace"))

    def close_window(self) -> None:
        """What closing a terminal window does: the pty's master goes, the kernel hangs up the session."""
        os.close(self.master)
        self.closed = True

    def processes(self) -> list[str]:
        """The processes this session started that still run (zombies too), but its shell."""
        shell = str(self.shell.pid)
        return [line for line in processes_started_with(self.env) if self.closed or line.split()[0] != shell]

    def wait_until_none_left(self, timeout: float = 60) -> list[str]:
        """Until no process of the session runs (or the timeout): those still left."""
        deadline = time.monotonic() + timeout
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left

    def end(self) -> None:
        """After the test: nothing of the session may outlive it."""
        if not self.closed:
            self.close_window()
        for line in self.processes():
            with contextlib.suppress(OSError):
                os.kill(int(line.split()[0]), 9)
        try:
            self.shell.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.shell.kill()
            self.shell.wait(timeout=10)
