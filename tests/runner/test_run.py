"""`make stepN` (`python -m workshop run stepN`): start, demo, trace, stop; and its failures, said clearly."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.processes import (
    distinct_free_ports,
    run_stage_folder,
    run_workshop,
    runner_env,
    running_stage,
    wait_until_gone,
)
from tests.support.stage_loader import ROOT
from workshop.errors import WorkshopError
from workshop.tracestore.collector import CollectorConfig, running_collector


@pytest.mark.parametrize(
    "stage, services",
    [  # one lesson of each shape (lesson 3 --once runs at its stage tag, lesson 5 --once in the WITHOUT test)
        ("step2", "1 service: contributors"),
        ("step4", "2 services: gateway, github-proxy"),
        ("step6", "3 services: gateway, github-proxy, worker"),
    ],
)
def test_once_prints_the_waterfall_and_exits_0(stage, services, tmp_path):
    journal = tmp_path / "kept.jsonl"  # lesson 6 keeps its traces in a file (TRACE_STORE_FILE)
    env = runner_env(**({"TRACE_STORE_FILE": str(journal)} if stage == "step6" else {}))
    # lesson 2 as a learner's workspace would run (make step2 FOLDER=...), here its own folder
    folder = ["--folder", "step2_spans"] if stage == "step2" else []
    result = run_workshop("run", stage, "--once", *folder, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Demo request: GET http://127.0.0.1:" in out and "200 OK" in out
    assert "contributors of pallets/flask" in out
    assert "trace " in out and services in out
    for operation in ["get_repo_contributors", "github_request", "clean_github_data"]:
        assert operation in out
    assert f"http://127.0.0.1:{env['JAEGER_QUERY_PORT']}/api/traces/" not in out  # it stops: nothing answers there
    assert ("make step2 FOLDER=step2_spans" in out) == (stage == "step2")  # how to run it again
    # only what still works once everything has stopped
    command = "make step2 FOLDER=step2_spans" if stage == "step2" else f"make {stage}"
    assert f"Everything stops now (ONCE=1). To keep it running and ask again:\n    {command}\n" in out
    if stage == "step6":
        said = " ".join(out.split())  # (a long path wraps: between words)
        assert f"This trace is kept in {journal}. To look at it again:" in said and journal.stat().st_size > 0
        assert re.search(rf"\n    \S+ -m workshop collector --journal {re.escape(str(journal))}\n", out), out
    else:
        assert f"TRACE_STORE_FILE=traces.jsonl {command} ONCE=1" in out
        assert "workshop trace" not in out  # nothing answers it after the run
    # no noise that hides the lesson
    for noise in ("(rc=-15)", "development server", "Memory overcommit must be enabled", "cannot take jobs"):
        assert noise not in out, noise
    assert out.count("stopped\n") >= 3 and out.count("harmless here") == (stage in ("step5", "step6"))
    # the lesson's processes stop first, what they use (the store, the fake GitHub, Redis) once they have
    lines = out.splitlines()
    last_of_lesson = max(
        i for i, line in enumerate(lines) if line.endswith(("gateway stopped", "contributors stopped"))
    )
    first_signal_to_infrastructure = min(
        i for i, line in enumerate(lines) if "sending SIGTERM to trace-store" in line or "to fake-github" in line
    )
    assert last_of_lesson < first_signal_to_infrastructure, out
    assert not wait_until_gone(env)


def test_step1_once_answers_without_a_trace():
    env = runner_env()
    result = run_workshop("run", "step1", "--once", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "200 OK" in result.stdout and "Why was it slow?" in result.stdout
    assert "Ask again: it is fast now" not in result.stdout  # nothing runs to ask, after ONCE=1
    assert "trace-store" not in result.stdout  # lesson 1 has nothing to trace yet


def test_once_fails_when_the_trace_does_not_arrive(tmp_path):
    """A stage whose spans go nowhere: the runner waits (bounded) and exits 1."""
    stage = tmp_path / "step2_lost"
    shutil.copytree(ROOT / "step2_spans", stage, ignore=shutil.ignore_patterns("__pycache__"))
    (stage / "Procfile").write_text("contributors: JAEGER_AGENT_PORT=9 python app.py\n")  # port 9: discard
    started = time.monotonic()
    result = run_stage_folder(stage, 2, settings="trace_timeout=2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not arrive" in result.stdout
    assert time.monotonic() - started < 30


def test_ctrl_c_stops_every_process_and_the_store_answers_meanwhile():
    env = runner_env(COLUMNS="80")
    with running_stage("step3", env) as (runner, output):
        # at 80 columns, a command or link that does not fit beside its label goes under it, whole
        said = "".join(output)
        query = f"http://127.0.0.1:{env['JAEGER_QUERY_PORT']}"
        assert f"\n  Jaeger's JSON:\n    curl '{query}/api/traces?service=contributors&prettyPrint=true'\n" in said
        assert re.search(r"\n  this trace, in your browser: http://localhost:\d+/trace/[0-9a-f]{16}\n", said), said
        _store_and_app_answer_then_ctrl_c_stops_everything(runner, output, env, "contributors")


def _store_and_app_answer_then_ctrl_c_stops_everything(runner, output: list[str], env: dict, service: str) -> None:
    # What the README shows while `make step3` runs:
    body = requests.get(f"http://127.0.0.1:{env['JAEGER_QUERY_PORT']}/api/traces?service={service}", timeout=5).json()
    assert list(body) == ["data", "total", "limit", "offset", "errors"] and len(body["data"]) == 1
    assert requests.get(f"http://127.0.0.1:{env['APP_PORT']}/contributors/a/b", timeout=15).status_code == 200
    runner.send_signal(signal.SIGINT)
    rest, _ = runner.communicate(timeout=20)
    assert runner.returncode == -signal.SIGINT, "".join(output) + rest  # it ends as Ctrl-C ends a process
    assert f"{service} stopped\n" in rest  # it exited 0, after closing its tracer
    assert not wait_until_gone(env)  # (judged by the environment it gave them: only this test's processes)
    for variable in ["APP_PORT", "PROXY_PORT", "JAEGER_QUERY_PORT", "FAKE_GITHUB_PORT", "REDIS_PORT"]:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
            sock.bind(("127.0.0.1", int(env[variable])))  # free again


def test_port_in_use_is_named_with_its_variable():
    env = runner_env()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["APP_PORT"])))
        taken.listen()
        result = run_workshop("run", "step2", "--once", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: port {env['APP_PORT']} is already in use (APP_PORT): pid {os.getpid()} (")
    assert re.fullmatch(r"or move them: APP_PORT=\d+ make step2", lines[-1]), lines[-1]
    suggested = int(lines[-1].split("=")[1].split()[0])
    assert suggested != int(env["APP_PORT"])


def test_every_taken_port_is_named_at_once_with_another_run_as_the_likely_holder():
    """Another `make step5` still running (here: with the same ports): all its ports at once, and how to stop it.
    Then that first run (lesson 5's three services) still answers, and Ctrl-C stops all of it."""
    env = runner_env()
    with running_stage("step5", env) as (first, output):
        result = run_workshop("run", "step5", "--once", env=env)
        _store_and_app_answer_then_ctrl_c_stops_everything(first, output, env, "gateway")
    assert result.returncode == 2
    error = result.stderr
    for variable in ("APP_PORT", "PROXY_PORT", "FAKE_GITHUB_PORT", "REDIS_PORT"):
        assert f"port {env[variable]} is already in use ({variable})" in error, error
        assert f"{variable}=" in error.splitlines()[-1]  # one line to paste, every taken port moved
    assert error.splitlines()[-1].endswith(" make step5")
    assert (
        f"another `make stepN` is still running (pid {first.pid}): Ctrl-C in its terminal, or `kill {first.pid}`"
        in error
    )


def test_sighup_stops_every_process_like_ctrl_c():
    """Closing the terminal sends SIGHUP: before, the runner died and left the lesson's processes running.
    Sent three times at once, as a hurried window and shell may: the handler only queues it (see Run)."""
    env = runner_env()
    with running_stage("step2", env) as (runner, _):  # (lesson 5's processes: the terminal's own test)
        for _ in range(3):
            runner.send_signal(signal.SIGHUP)
        runner.communicate(timeout=20)
    assert runner.returncode == -signal.SIGHUP
    assert not wait_until_gone(env)


def test_udp_port_in_use_without_a_store_is_named():
    env = runner_env()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", int(env["JAEGER_AGENT_PORT"])))
        result = run_workshop("run", "step2", "--once", env=env)
    assert result.returncode == 2
    assert f"UDP port {env['JAEGER_AGENT_PORT']} is in use" in result.stderr and "JAEGER_AGENT_PORT" in result.stderr


def test_a_store_already_running_is_used():
    with running_collector(CollectorConfig.on_free_ports()) as store:
        env = runner_env(JAEGER_AGENT_PORT=str(store.jaeger_compact_port), JAEGER_QUERY_PORT=str(store.query_port))
        result = run_workshop("run", "step2", "--once", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"using the Jaeger API already answering at {store.url}" in result.stdout
        assert "trace-store" not in result.stdout
        assert store.store.services() == ["contributors"]
        assert f"The trace stays in the Jaeger that was already running: {store.url}" in result.stdout
        assert "The trace store stops too" not in result.stdout


def test_bad_stage_and_bad_port_variable_are_clear_errors():
    result = run_workshop("run", "step10", env=runner_env())
    assert result.returncode == 2 and "no stage 'step10': the stages are step1" in result.stderr
    result = run_workshop("run", "step2", env=runner_env(APP_PORT="http"))
    assert result.returncode == 2 and "APP_PORT must be a port number" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_leaves_a_process_out_and_the_gateway_times_out():
    env = runner_env(WITHOUT="worker", WORKER_TIMEOUT="1")
    result = run_workshop("run", "step5", "--once", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not started: worker (WITHOUT)" in result.stdout
    assert "504 GATEWAY TIMEOUT" in result.stdout and "no worker answered within 1 s (trace " in result.stdout
    bad = run_workshop("run", "step5", "--once", env=runner_env(WITHOUT="nobody"))
    assert bad.returncode == 2 and "WITHOUT names no process of step5: nobody" in bad.stderr


def test_missing_setup_says_which_command_to_run(monkeypatch):
    from workshop.lessons.stages import find_stage
    from workshop.runner.run import run_stage

    monkeypatch.setitem(sys.modules, "honcho", None)
    with pytest.raises(WorkshopError, match="run `make setup`"):
        run_stage(find_stage("step2"))


def test_a_screenshot_of_the_demo_trace_page(tmp_path):
    """What `make screenshots` does for each lesson, in a real Chromium."""
    from workshop.runner.screenshot import find_chromium

    if find_chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no Chromium in CI: .ci/run installs it")
        pytest.skip("no Chromium found (install Debian's `chromium`, or set CHROMIUM=<path>): no screenshot taken")
    picture = tmp_path / "step3.png"
    result = run_workshop("run", "step3", "--screenshot", str(picture), env=runner_env(), timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 1280
    assert "the trace page, as a browser shows it:" in result.stdout


def test_spans_sent_where_nothing_listens_keep_the_lesson_running_and_say_why_the_trace_is_missing():
    """Lesson 7's "try next", as its README says: the demo is answered, the runner says why its trace will not
    arrive, and the services log "spans dropped". Before, the runner waited for the trace, said it did not
    arrive and stopped everything (exit 0), so the learner never saw the services' "spans dropped" lines."""
    nowhere = distinct_free_ports(1)[0]
    env = runner_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://localhost:{nowhere}")
    with running_stage("step7", env) as (runner, output):
        assert runner.poll() is None
        guard = threading.Timer(30, runner.send_signal, (signal.SIGINT,))  # the lines below end with the run
        guard.start()
        for line in runner.stdout:  # (the exporter gives up after its 2 s)
            output.append(line)
            if "spans dropped" in line:
                break
        guard.cancel()
    said = " ".join("".join(output).split())
    assert "200 OK" in said
    assert f"The spans go to http://localhost:{nowhere} (OTEL_EXPORTER_OTLP_ENDPOINT), where nothing listens" in said
    assert "its links below stay empty" in said and "did not arrive" not in said
    assert "spans dropped: no trace store took them (said at most once a minute)" in said
    assert "Traceback" not in said


def test_a_borrowed_store_that_stops_is_said():
    """The runner's own advice for a port clash (lesson 3 on other ports while lesson 9 runs) makes lesson 3
    use lesson 9's store; before, stopping lesson 9 left lesson 3 running without one and without a word."""
    with running_collector(CollectorConfig.on_free_ports()) as store:
        env = runner_env(JAEGER_AGENT_PORT=str(store.jaeger_compact_port), JAEGER_QUERY_PORT=str(store.query_port))
        with running_stage("step2", env) as (runner, output):
            store.server.shutdown()  # its query API stops answering (as when its `make step9` ends)
            store.server.server_close()
            for line in runner.stdout:  # (running_stage stops it if the line never comes)
                output.append(line)
                if "make step2 again." in line:
                    break
    said = " ".join("".join(output).split())
    assert f"The trace store at {store.url}, which this lesson borrowed (it was running already), has stopped" in said
    assert "For a store of its own: Ctrl-C, then make step2 again." in said


def test_the_runner_waits_for_a_store_that_is_loading_its_journal():
    """A large journal loads while the store answers: the runner waits as long as it reads on, not 20 s."""
    from flask import Flask

    from workshop.runner.run import wait_for_journal
    from workshop.serving import serve_in_thread

    answers = iter(
        [{"journal": {"path": "j", "read_bytes": n, "done": False}} for n in range(5)] + [{"journal": {"done": True}}]
    )
    stalled = {"journal": {"path": "j", "read_bytes": 7, "done": False}}
    app, said = Flask("stats"), []
    app.add_url_rule("/api/stats", "stats", lambda: next(answers, stalled))
    with serve_in_thread(app) as url:
        assert wait_for_journal(url, said.append, poll_s=0.01) is True  # five polls of progress, then done
        assert wait_for_journal(url, said.append, poll_s=0.01, stall_s=0.1) is False  # reads nothing more
    assert said == ["[red]the trace store read no more of its journal j for 0.1 s[/red]"]
    assert wait_for_journal("http://127.0.0.1:9", said.append) is False and "stopped answering" in said[-1]


def test_a_mistake_runs_from_a_scratch_copy_and_the_doctor_names_it(tmp_path):
    """`make step5 MISTAKE=job-without-context`: the patch, then the lesson run with it; the doctor's words in
    the terminal, with the link to the worker's trace, and on the trace page, with the lesson's."""
    env = runner_env(TMPDIR=str(tmp_path), COLUMNS="200")
    with running_stage("step5", env, "--mistake", "job-without-context") as (runner, output):
        out = "".join(output)
        query = f"http://127.0.0.1:{env['JAEGER_QUERY_PORT']}"
        assert "step5 with a mistake, job-without-context: the gateway puts the job in Redis without its" in out
        assert "-        global_tracer().inject(span.context, Format.TEXT_MAP, carrier)\n" in out  # the patch, first
        said = re.search(
            r"✗ the trace doctor: worker's handle_clean_job started a trace of its own \d+ ms into gateway's "
            r"send_clean_job: the job carried no trace context \(or worker did not read it\) \(taught in lesson 5\)"
            rf"\n  the other trace:\n    http://localhost:{env['JAEGER_QUERY_PORT']}/trace/([0-9a-f]{{16}})\n"
            r"  the lesson: step5_queue/README\.md\n",
            out,
        )
        assert said, out
        assert "The spans of worker are missing from this trace: that is the mistake." in out
        assert "That is the mistake job-without-context" in out and "make step5 MISTAKE=job-without-context" not in out
        gateway_trace = re.search(r"this trace, in your browser: http://localhost:\d+/trace/([0-9a-f]+)", out).group(1)
        page = requests.get(f"{query}/trace/{gateway_trace}", timeout=5).text
        assert "What's wrong with this trace?" in page and f"/trace/{said.group(1)}" in page
        assert '<a href="/docs/step5_queue/README.md">step5_queue/README.md</a>' in page  # the runner's --docs
        assert "<h1>" in requests.get(f"{query}/docs/step5_queue/README.md", timeout=5).text
        assert len(list(tmp_path.iterdir())) == 1  # the scratch copy, while it runs
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=30)
    assert list(tmp_path.iterdir()) == []  # gone with the run
    assert not wait_until_gone(env)


def test_a_mistake_of_another_lesson_or_with_docker_is_a_clear_error():
    bad = run_workshop("run", "step4", "--mistake", "job-without-context", "--once", env=runner_env())
    assert bad.returncode == 2 and "job-without-context is a mistake of step5, not step4" in bad.stderr
    docker = run_workshop("run", "step5", "--mistake", "job-without-context", "--docker", env=runner_env())
    assert docker.returncode == 2 and "MISTAKE= runs without Docker" in docker.stderr


def test_the_lessons_processes_stop_before_what_they_use_and_one_that_ignores_sigterm_is_killed(monkeypatch):
    """The runner's manager on its own (no lesson): 'lesson' ignores SIGTERM, so it is killed KILL_WAIT seconds
    after it, and only then does 'store' (what the lesson uses) get its SIGTERM (KILL_WAIT: 1 s here)."""
    import io

    import honcho.manager

    from workshop.runner.run import _honcho_manager

    monkeypatch.setattr(honcho.manager, "KILL_WAIT", 1)  # (5 s in a run)
    output = io.StringIO()
    manager = _honcho_manager(after_start=lambda: None, output=output, on_signal=lambda s: None, stop_first=["lesson"])
    manager.add_process("lesson", "trap '' TERM; echo ready; while true; do sleep 0.1; done")
    manager.add_process("store", "exec sleep 60")
    stopper = threading.Timer(0.5, manager.terminate)
    stopper.start()
    started = time.monotonic()
    manager.loop()  # returns once both have stopped
    assert time.monotonic() - started < 15
    lines = [line.split("| ", 1)[1] for line in output.getvalue().splitlines() if "| " in line]
    sent = [line for line in lines if line.startswith("sending")]
    assert [line.split(" (")[0] for line in sent] == [
        "sending SIGTERM to lesson",
        "sending SIGKILL to lesson",
        "sending SIGTERM to store",
    ], lines
    assert lines.index("lesson stopped (rc=-9)") < lines.index(sent[2])


def test_a_manager_whose_own_loop_fails_leaves_no_process_running():
    """Whatever breaks the runner's loop (here: its output raises), its processes are killed before the error
    goes on: the runners waiting for them would otherwise keep the runner, and everything, alive."""
    from workshop.runner.run import _honcho_manager

    class Breaking:
        def write(self, text: str) -> int:
            if "boom" in text:
                raise RuntimeError("the output broke")
            return len(text)

        def flush(self) -> None:
            pass

    manager = _honcho_manager(after_start=lambda: None, output=Breaking(), on_signal=lambda s: None)
    manager.add_process("lesson", "sleep 0.5; echo boom; exec sleep 60")
    with pytest.raises(RuntimeError, match="the output broke"):
        manager.loop()
    pid = manager._processes["lesson"]["pid"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid)
    manager.join_runners()


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie, whose parent has not yet read its end, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_the_lessons_fake_github_allows_what_github_allows_a_token(monkeypatch):
    """5,000 calls an hour, so that `make load` after `make step6` is answered; FAKE_GITHUB_RATE_LIMIT still rules."""
    from workshop.lessons.stages import find_stage
    from workshop.ports import ENDPOINTS
    from workshop.runner.run import Settings, plan_run

    ports = dict(zip([endpoint.field for endpoint in ENDPOINTS], distinct_free_ports(len(ENDPOINTS)), strict=True))

    def fake_github(**environment: str) -> str:
        monkeypatch.delenv("FAKE_GITHUB_RATE_LIMIT", raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        plan = plan_run(find_stage("step3"), Settings(**ports))
        return next(process.command for process in plan.processes if process.name == "fake-github")

    assert fake_github().endswith(" --rate-limit 5000")
    assert "--rate-limit" not in fake_github(FAKE_GITHUB_RATE_LIMIT="100000")  # it reads the variable itself
