"""`make check-stepN` end to end: the workspace run by the lesson's runner, its trace checked task by task.
(Lesson 9's, with Traefik and Node.js, is in tests/test_step9_edge_polyglot.py, beside its store.)"""

from __future__ import annotations

import json

from tests.support.processes import run_workshop, runner_env, wait_until_gone
from workshop.lessons.exercises import fill
from workshop.lessons.stages import find_stage
from workshop.ports import ENDPOINT
from workshop.tracestore.collector import CollectorConfig, running_collector


def workspace(tmp_path, stage: str, undone=None):
    lesson = find_stage(stage)
    folder = tmp_path / lesson.folder.name
    fill(lesson, folder, undone)
    return folder


def test_the_lessons_own_folder_does_every_task_against_a_jaeger_named_by_query_url_in_json():
    """A store (a Jaeger) already running elsewhere, named with --query-url: the lesson's spans go there (its
    ports' variables), and the checker reads them back from it; a host gets one JSON result."""
    with running_collector(CollectorConfig.on_free_ports()) as jaeger:
        env = runner_env(**{ENDPOINT[name].variable: str(port) for name, port in jaeger.ports.items()})
        del env["JAEGER_QUERY_PORT"]  # (this run's own is free): the store is the one --query-url names
        result = run_workshop("check", "step2", "--folder", "step2_spans", "--json", "--query-url", jaeger.url, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        said = json.loads(result.stdout)  # stdout is the result alone: the processes' lines went to stderr
        assert said["lesson"] == "step2" and said["ok"] is True and (said["done"], said["tasks"]) == (3, 3)
        assert said["summary"] == "all done: next, make exercise-step3" and said["first_failure"] is None
        assert f"using the Jaeger API already answering at {jaeger.url}" in result.stderr
        assert jaeger.store.services() == ["contributors"]
    assert not wait_until_gone(env)


def test_a_fresh_workspace_says_what_each_task_lacks_with_a_hint(tmp_path):
    env = runner_env(COLUMNS="80")
    result = run_workshop("check", "step4", "--folder", str(workspace(tmp_path, "step4")), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "✗ 1 tag the gateway's call_github_proxy span as the client of the call" in out
    assert "✗ 2 the context crosses HTTP" in out
    assert "the trace: gateway's call_github_proxy has no span.kind; it should be client" in out
    assert "the trace: github-proxy's stats is in a trace of its own" in out
    assert out.count("hint:") == 2 and "make step4 MISTAKE=proxy-call-without-headers" in out
    assert "0 of 2 done: next, task 1 (above)" in out
    checklist = [line for line in out.splitlines() if line.startswith(("✓", "✗", "    "))]
    assert checklist and max(map(len, checklist)) <= 80
    assert not wait_until_gone(env)


def test_a_syntax_error_or_a_workspace_that_dies_at_start_is_named_by_file_and_line(tmp_path):
    folder = workspace(tmp_path, "step2")
    app = folder / "app.py"
    good = app.read_text()
    app.write_text(good.replace("def contributors(owner, repo):", "def contributors(owner, repo)"))
    result = run_workshop("check", "step2", "--folder", str(folder), env=runner_env())
    assert result.returncode == 1 and "✗ a file of your workspace does not compile:" in result.stdout
    assert "app.py, line " in result.stdout and "def contributors(owner, repo)" in result.stdout
    app.write_text("import no_such_module  # a typo\n" + good)
    env = runner_env()
    result = run_workshop("check", "step2", "--folder", str(folder), env=env)
    assert result.returncode == 1, result.stdout
    assert "ModuleNotFoundError: No module named 'no_such_module'" in result.stdout
    assert f'File "{app}", line 1' in result.stdout
    assert "✗ your workspace did not start or answer: its error is above (file and line)" in result.stdout
    assert "Traceback" not in result.stderr  # not the runner's
    assert not wait_until_gone(env)


def test_no_workspace_says_how_to_make_one(tmp_path):
    result = run_workshop("check", "step4", "--folder", str(tmp_path / "nothing"), env=runner_env())
    assert result.returncode == 2 and "make exercise-step4 makes your workspace" in result.stderr
