"""`make check-stepN` end to end: the workspace run by the lesson's runner, its trace checked task by task.
(Lesson 9's, with Traefik and Node.js, is in tests/test_step9_edge_polyglot.py, beside its store.)"""

from __future__ import annotations

import json

from tests.support.processes import run_workshop, runner_env, wait_until_gone
from workshop.lessons.exercises import fill, to_do
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
        assert said["lesson"] == "step2" and said["ok"] is True and (said["done"], said["tasks"]) == (4, 4)
        assert said["summary"] == "all done: next, make exercise-step3" and said["first_failure"] is None
        assert f"using the Jaeger API already answering at {jaeger.url}" in result.stderr
        assert jaeger.store.services() == ["contributors"]
    assert not wait_until_gone(env)


def test_a_fresh_workspace_says_what_each_task_lacks_with_a_hint(tmp_path):
    """Lesson 4's starting point (the done-when's lesson): the gateway calls an untraced github-proxy."""
    env = runner_env(COLUMNS="80")
    result = run_workshop("check", "step4", "--folder", str(workspace(tmp_path, "step4")), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    words = " ".join(out.split())  # as wrapped at 80 columns
    assert "✗ 1 the gateway's call to the github-proxy as a span: call_github_proxy" in words
    assert "✗ 2 the github-proxy traces its requests" in words and "✗ 4 the context crosses HTTP" in words
    assert "✗ 3 errors marked on both sides" in words
    assert "the trace: no span gateway's call_github_proxy in the trace: it belongs under gateway's" in words
    assert "the trace: no span github-proxy's stats in the trace" in words
    assert out.count("hint:") == 4 and "MISTAKE=" not in out  # no mistake's mark in this trace
    assert "inject(span" not in out and "Format.HTTP_HEADERS" not in out  # a hint names the API, not the line
    assert out.rstrip().endswith("make check-step4: 0 of 4 done: next, task 1 (above)")  # last, after the stop
    checklist = [line for line in out.splitlines() if line.startswith(("✓", "✗", "    "))]
    assert checklist and max(map(len, checklist)) <= 80
    assert not wait_until_gone(env)


def test_spans_that_are_never_sent_are_said(tmp_path):
    """Lesson 7's starting point sends no span (task 1: the OTLP exporter), which no run in memory can show."""
    folder = workspace(tmp_path, "step7")
    env = runner_env()
    result = run_workshop("check", "step7", "--folder", str(folder), "--json", env=env)
    said = json.loads(result.stdout)
    assert result.returncode == 1 and [r["done"] for r in said["results"]] == [False, False, False], said
    assert said["results"][0]["problems"] == [
        "no trace of the request reached the store: do its services trace, send their spans?"
    ]
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
    assert "✗ your workspace did not start or answer:" in result.stdout
    assert "contributors: app.py, line 1, in <module>: ModuleNotFoundError: No module named" in result.stdout
    assert "Traceback" not in result.stderr  # not the runner's
    # a typo the request runs into: it answers 500, and the check says where, from the service's log
    folder = workspace(tmp_path / "typo", "step2", undone=to_do(find_stage("step2"))[1:])  # traced, task 1 done
    app = folder / "app.py"
    app.write_text(
        app.read_text().replace(
            "    return read_stats(response, owner, repo)", "    return read_stats(respons, owner, repo)"
        )
    )
    result = run_workshop("check", "step2", "--folder", str(folder), "--json", env=env)
    said = json.loads(result.stdout)
    number = next(n for n, line in enumerate(app.read_text().splitlines(), 1) if "respons," in line)
    assert said["errors"] == [
        "GET /contributors/pallets/flask answered 500 (internal error: see the app's log), not 200: "
        f"contributors: app.py, line {number}, in get_repo_contributors: NameError: name 'respons' is not defined"
    ]
    assert said["summary"] == "1 of 4 done, and a request failed: fix that first"
    assert not wait_until_gone(env)


def test_no_workspace_says_how_to_make_one(tmp_path):
    result = run_workshop("check", "step4", "--folder", str(tmp_path / "nothing"), env=runner_env())
    assert result.returncode == 2 and "make exercise-step4 makes your workspace" in result.stderr


def test_where_a_process_failed_is_read_from_its_log(tmp_path):
    """The last error at a file of the workspace, Python's or Node.js's; nothing until the error line came."""
    from workshop.runner.check import where_it_failed

    app, lib = tmp_path / "app.py", "/usr/lib/python3/requests/api.py"
    python = [
        "[trace=- span=-] ERROR gateway: unexpected error",
        "Traceback (most recent call last):",
        f'  File "{app}", line 40, in contributors',
        "    stats = call_github_proxy(owner, repo)",
        f'  File "{app}", line 97, in call_github_proxy',
        "    response = requests.get(url, timeout=PROXY_TIMOUT)",
        f'  File "{lib}", line 73, in get',
        "    return request('get', url)",
    ]
    assert where_it_failed(python, tmp_path) is None  # the error line has not come yet
    done = [*python, "NameError: name 'PROXY_TIMOUT' is not defined"]
    assert where_it_failed(done, tmp_path) == (
        "app.py, line 97, in call_github_proxy: NameError: name 'PROXY_TIMOUT' is not defined"
    )
    assert where_it_failed(done, tmp_path / "elsewhere") is None  # not the workspace's own code
    node = [
        f"{tmp_path}/github-proxy/server.js:12",
        "    foo();",
        "    ^",
        "ReferenceError: foo is not defined",
        f"    at Object.<anonymous> ({tmp_path}/github-proxy/server.js:12:5)",
        "    at Module._compile (node:internal/modules/cjs/loader:1364:14)",
    ]
    assert where_it_failed(node, tmp_path) == "github-proxy/server.js, line 12: ReferenceError: foo is not defined"
