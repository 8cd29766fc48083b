"""`make stepN` in a learner's real terminal (a pty with an interactive bash): closing the window, Ctrl-C
into `| tee`, Ctrl-C during the demo. Each ends with nothing of the session left running."""

from __future__ import annotations

import pytest

from tests.support.terminal_session import PROMPT, TerminalSession, venv_argument


@pytest.fixture
def terminal():
    sessions: list[TerminalSession] = []

    def open_terminal(**extra: str) -> TerminalSession:
        sessions.append(TerminalSession(**extra))
        return sessions[-1]

    yield open_terminal
    for session in sessions:
        session.end()


def test_closing_the_terminal_window_stops_make_the_runner_and_the_lesson(terminal):
    """Before: honcho's process runners (in the runner's process group) died of the terminal's SIGHUP without
    reporting, and `make` and the runner waited for them forever, deaf to kill and Ctrl-C."""
    session = terminal()
    session.wait_for(PROMPT)
    session.type(f"make step5 {venv_argument()}\n")
    session.wait_for("Press Ctrl-C to stop everything")
    assert session.processes()  # make, the runner, its runners, the lesson's processes
    session.close_window()
    left = session.wait_until_none_left()
    assert not left, "\n".join(left)


def test_closing_the_window_of_a_shell_that_passes_no_sighup_on_stops_everything_too(terminal):
    """A shell that ignores SIGHUP (as zsh with NO_HUP passes none to its jobs): the runner sees its terminal
    hung up (it can no longer open it) and stops as if the SIGHUP had come. Before, make, the runner and the
    lesson ran on with nobody to see them."""
    session = terminal()
    session.wait_for(PROMPT)
    session.type(f"trap '' HUP; make step2 {venv_argument()}\n")
    session.wait_for("Press Ctrl-C to stop everything")
    session.close_window()
    left = session.wait_until_none_left()
    assert not left, "\n".join(left)


def test_one_ctrl_c_stops_everything_even_into_a_pipe_that_closes(terminal, tmp_path):
    """`make step3 2>&1 | tee log`, then Ctrl-C: tee dies first, and the runner's next write fails (EPIPE).
    Before, that failure ended the runner's shutdown before it began: everything kept running."""
    log = tmp_path / "log"
    session = terminal()
    session.wait_for(PROMPT)
    session.type(f"make step3 {venv_argument()} 2>&1 | tee {log}\n")
    session.wait_for("Press Ctrl-C to stop everything")
    session.type("\x03")  # Ctrl-C: SIGINT to the whole foreground job (make, the runner, tee)
    session.wait_for(PROMPT)  # the prompt again: make has ended
    left = session.wait_until_none_left()
    assert not left, "\n".join(left) + "\n" + session.screen
    assert "Demo request" in log.read_text()  # (make's "Interrupt" line meets the closed pipe: its status is 141)


def test_ctrl_c_during_the_demo_says_it_was_asked_and_make_says_interrupt(terminal):
    """Before: "a process stopped before the stage was ready: see its log above" and make's "Error 1"."""
    session = terminal(DEMO_REPO="octocat/slow")  # the fake GitHub answers it after 10 s
    session.wait_for(PROMPT)
    session.type(f"make step2 {venv_argument()}\n")
    session.wait_for("GET http://")
    session.type("\x03")
    screen = session.wait_for(PROMPT)
    assert "stopped as asked (Ctrl-C), before the demo had finished" in screen
    assert "before the stage was ready" not in screen and "Error 1" not in screen
    assert "] Interrupt" in screen
    session.type("echo status=$?\n")
    session.wait_for("status=130")
    left = session.wait_until_none_left()
    assert not left, "\n".join(left)
