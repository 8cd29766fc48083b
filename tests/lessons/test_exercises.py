"""Every lesson as an exercise: the workspace, and the checker that reads its trace against the lesson's tasks.
The lessons run in memory, as in test_mistakes.py (which also checks each lesson's own code, and each mistake,
against the tasks); `make check-stepN` itself runs end to end in tests/runner/test_check.py."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest

from tests.support.lesson_runs import check_all, lesson_traces
from workshop.lessons.checking import requests_of
from workshop.lessons.exercises import files_of, fill, make_exercise, solution_lines, to_do
from workshop.lessons.expected import REQUESTS
from workshop.lessons.stages import Stage, find_stage

IN_MEMORY = [f"step{n}" for n in range(2, 9)]  # lesson 9's runs Traefik and Node.js: tests/runner/test_check.py
# What a run in memory cannot show: the services' tracers are the tests' own there, so a task whose work is in the
# tracer's set-up (lesson 7's: sending the spans) is done from the start. make check-stepN shows it:
# tests/runner/test_check.py.
SET_UP_ONLY = {("step7", 1)}


def run_checks(stage: Stage, folder: Path, github_url: str, monkeypatch, spans, token: str = "") -> list:
    """The checker's results for `folder` (a copy of the lesson), its services in memory."""
    asked = {name: REQUESTS[name] for name in requests_of(stage.name)}
    ran = lesson_traces(stage, folder, github_url, monkeypatch, spans, asked, token)
    return check_all(stage, ran)


@contextlib.contextmanager
def workspace(stage: Stage, undone=None):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / stage.folder.name
        fill(stage, folder, undone)
        yield folder


@pytest.mark.parametrize("name", IN_MEMORY)
def test_a_fresh_workspace_does_none_and_says_why(name, fake_github, monkeypatch, spans):
    stage = find_stage(name)
    with workspace(stage) as folder:
        assert (folder / "TASKS.md").is_file() and not (folder / "README.md").exists()
        results = run_checks(stage, folder, fake_github.url, monkeypatch, spans)
    todo = [r for r in results if not r.task.guard and (name, r.task.number) not in SET_UP_ONLY]
    assert all(not r.done for r in todo), [(r.task.number, r.problems) for r in todo if r.done]
    assert all(r.problems for r in todo)  # each says what the trace lacks
    assert all(r.done for r in results if r.task.guard)  # what to keep holds from the start


@pytest.mark.parametrize("name", IN_MEMORY)
def test_half_done_shows_exactly_those_tasks_done(name, fake_github, monkeypatch, spans):
    stage = find_stage(name)
    todo = to_do(stage)
    undone = todo[len(todo) // 2 :]  # the later half still to do: a learner does the tasks in order
    with workspace(stage, undone=undone) as folder:
        results = run_checks(stage, folder, fake_github.url, monkeypatch, spans)
    not_done = {r.task.number for r in results if not r.done}
    assert not_done == {task.number for task in undone}, not_done


@pytest.mark.parametrize("name", [f"step{n}" for n in range(2, 10)])
def test_each_task_s_work_is_a_patch_on_the_tasks_before_it(name, tmp_path):
    """Every state a learner passes through exists: the lesson's code less its last tasks' work, for each
    number of tasks done; each compiles, and each task's work is in the files TASKS.md names."""
    from workshop.runner.check import syntax_errors

    stage = find_stage(name)
    todo = to_do(stage)
    for done in range(len(todo)):
        folder = tmp_path / f"{done}" / stage.folder.name
        fill(stage, folder, undone=todo[done:])
        assert syntax_errors(folder) == [], (done, syntax_errors(folder))
        markers = {f"TASKS.md, task {task.number}" for task in todo[done:]}
        text = "".join(path.read_text() for path in folder.rglob("*") if path.suffix in (".py", ".js", ".sh"))
        assert all(marker in text for marker in markers), (done, markers)  # each place to work is marked
        assert f"TASKS.md, task {todo[done - 1].number}:" not in text if done else True
    with pytest.raises(ValueError, match="only the last can be left undone"):
        fill(stage, tmp_path / "wrong", undone=todo[:1])
    tasks = (tmp_path / "0" / stage.folder.name / "TASKS.md").read_text()
    for task in todo:
        assert all(name in tasks for name in files_of(stage, task))


def test_a_workspace_is_never_overwritten(tmp_path):
    stage = find_stage("step4")
    folder, said = make_exercise(stage, tmp_path)
    assert (folder / "TASKS.md").read_text().startswith("# Lesson 4 as an exercise: step4_distributed")
    assert (
        "# TASKS.md, task 4: the trace context goes with the request, in its headers" in (folder / "app.py").read_text()
    )
    (folder / "app.py").write_text("# my work\n")
    again, said = make_exercise(stage, tmp_path)
    assert again == folder and (folder / "app.py").read_text() == "# my work\n"
    assert "make exercise-step4 FRESH=1" in said and "make check-step4" in said
    fresh, said = make_exercise(stage, tmp_path, fresh=True)
    assert (tmp_path / "step4_distributed.1" / "app.py").read_text() == "# my work\n"  # moved aside, kept
    assert "step4_distributed.1" in said and "TASKS.md, task 4" in (fresh / "app.py").read_text()


def test_a_follows_from_where_the_gateway_waits_is_said(fake_github, monkeypatch, spans):
    """Lesson 5's task 2 wants child_of (the gateway waits for the answer): follows_from is named as such."""
    stage = find_stage("step5")
    with workspace(stage, undone=[]) as folder:
        worker = folder / "worker.py"
        worker.write_text(
            worker.read_text().replace("[opentracing.child_of(context)]", "[opentracing.follows_from(context)]")
        )
        results = run_checks(stage, folder, fake_github.url, monkeypatch, spans)
    assert results[2].problems == [
        "worker's handle_clean_job refers to its parent as FOLLOWS_FROM; it should be CHILD_OF"
    ]


def test_the_solution_is_what_the_workspace_lacks(tmp_path):
    stage = find_stage("step4")
    folder, _ = make_exercise(stage, tmp_path)
    lines = list(solution_lines(stage, folder))
    assert "+        global_tracer().inject(span.context, Format.HTTP_HEADERS, headers)\n" in lines
    assert "-    # TASKS.md, task 4: the trace context goes with the request, in its headers\n" in lines
    assert not any("TASKS.md" in line and line.startswith(("---", "+++")) for line in lines)
    assert list(solution_lines(stage, stage.folder)) == []  # the lesson itself lacks nothing


@pytest.mark.parametrize("name", [f"step{n}" for n in range(2, 10)])
def test_a_workspace_that_does_not_compile_is_named_by_file_and_line(name, tmp_path):
    from workshop.runner.check import syntax_errors

    stage = find_stage(name)
    folder = tmp_path / stage.folder.name
    fill(stage, folder)
    assert syntax_errors(folder) == []
    app = folder / "app.py"
    text = app.read_text()
    app.write_text(text + "def broken(:\n")
    (problem,) = syntax_errors(folder)
    assert problem.startswith(f"app.py, line {text.count(chr(10)) + 1}: ") and problem.endswith("def broken(:")


def test_baggage_set_below_the_requests_span_is_named_where_it_is(fake_github, monkeypatch, spans):
    """Lesson 6's task 1 on the wrong span (a child of the request's): the checker says where it is."""
    stage = find_stage("step6")
    with workspace(stage, undone=[]) as folder:
        app = folder / "app.py"
        text = app.read_text().replace('    set_baggage(span, "client", client_name())\n', "")
        marker = (
            '    with global_tracer().start_active_span("call_github_proxy") as scope:\n        span = scope.span\n'
        )
        assert marker in text
        app.write_text(text.replace(marker, marker + '        set_baggage(span, "client", client_name())\n'))
        results = run_checks(stage, folder, fake_github.url, monkeypatch, spans)
    assert results[0].problems == [
        "gateway's contributors: the baggage item 'client' is set on gateway's call_github_proxy, a span below it; "
        "set it on gateway's contributors, so that everything after it carries it"
    ]


def test_a_node_js_file_that_does_not_compile_is_named_by_file_and_line(tmp_path):
    from tests.support.lesson9_tools import require_lesson9_tools
    from workshop.runner.check import syntax_errors

    require_lesson9_tools()  # node
    stage = find_stage("step9")
    folder = tmp_path / stage.folder.name
    fill(stage, folder)
    server = folder / "github-proxy" / "server.js"
    lines = server.read_text().splitlines()
    server.write_text("\n".join([*lines[:20], "function (", *lines[20:]]) + "\n")
    assert syntax_errors(folder) == [
        "github-proxy/server.js, line 21: SyntaxError: Function statements require a function name"
    ]
