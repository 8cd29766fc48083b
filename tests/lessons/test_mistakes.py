"""Each lesson's classic mistakes (workshop/lessons/mistakes): the catalogue, the patches, and what the trace
doctor says about each one's trace. The lessons run in memory (their services in threads, real HTTP and Redis
between them, the spans read back through the store's own receivers); lesson 9's, which needs Traefik, and
the runner's `MISTAKE=` run end to end in tests/runner/test_run.py."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.lesson9_tools import require_lesson9_tools
from tests.support.lesson_runs import check_all, lesson_traces
from workshop.cli import main
from workshop.errors import WorkshopError
from workshop.lessons.checking import requests_of
from workshop.lessons.expected import REQUESTS, TASKS
from workshop.lessons.mistakes import MADE_UP_TOKEN, MISTAKES, PATCHES, find_mistake, mistakes_of, scratch_copy
from workshop.lessons.stages import all_stages, find_stage
from workshop.tracestore.diagnosis import Finding, diagnose

IN_MEMORY = [name for name, mistake in MISTAKES.items() if mistake.lesson < 9]  # lesson 9's needs Traefik


def test_the_catalogue_has_a_mistake_for_every_traced_lesson_and_a_patch_for_every_mistake():
    assert all(bool(m.carrier) == (m.finding == "lost_context") for m in MISTAKES.values())  # a hop's, each
    traced = [stage.name for stage in all_stages() if stage.traced]
    assert traced == [f"step{n}" for n in range(2, 10)]
    assert all(mistakes_of(stage) for stage in traced)
    assert len(MISTAKES) >= 12
    assert sorted(path.stem for path in PATCHES.glob("*.patch")) == sorted(MISTAKES)
    assert all(len(mistake.says) < 100 and not mistake.says.endswith(".") for mistake in MISTAKES.values())


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_patch_applies_to_its_lesson_and_changes_only_its_code(name):
    mistake = MISTAKES[name]
    stage = find_stage(mistake.stage)
    outside_the_repository = {**os.environ, "GIT_CEILING_DIRECTORIES": str(stage.folder.parent)}
    check = subprocess.run(
        ["git", "apply", "--check", "--numstat", str(mistake.patch)],
        cwd=stage.folder,
        env=outside_the_repository,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    changed = [line.split("\t")[2] for line in check.stdout.splitlines()]
    assert changed and all((stage.folder / path).is_file() and not path.endswith(".md") for path in changed)


def test_a_scratch_copy_has_the_mistake_and_the_lesson_stays_as_it_was():
    stage = find_stage("step5")
    before = (stage.folder / "app.py").read_text()
    with scratch_copy(stage, MISTAKES["job-without-context"]) as broken:
        assert broken.name == "step5" and broken.folder != stage.folder
        assert "inject(span.context, Format.TEXT_MAP" not in (broken.folder / "app.py").read_text()
        assert broken.processes() == stage.processes()
    assert (stage.folder / "app.py").read_text() == before
    assert not broken.folder.exists()


def test_lesson_9s_copy_links_its_node_packages():
    require_lesson9_tools()
    stage = find_stage("step9")
    with scratch_copy(stage, MISTAKES["traefik-speaks-b3"]) as broken:
        assert (broken.node_project / "node_modules").resolve() == (stage.node_project / "node_modules").resolve()
        assert "OTEL_PROPAGATORS=b3multi" in (broken.folder / "traefik.sh").read_text()


def test_a_name_that_is_not_the_lessons_says_which_are():
    with pytest.raises(
        WorkshopError, match="job-without-context is a mistake of step5, not step4:\n  make step5 MISTAKE="
    ):
        find_mistake("job-without-context", find_stage("step4"))
    with pytest.raises(WorkshopError, match="step5's: job-without-context, worker-ignores-the-context") as typo:
        find_mistake("job-without-contxt", find_stage("step5"))
    assert "Did you mean job-without-context (step5)?" in str(typo.value)


# --- what the trace doctor says about each one --------------------------------------------------------------------


@pytest.mark.parametrize("name", IN_MEMORY)
def test_the_trace_doctor_names_each_mistake_and_the_checker_the_tasks_it_undoes(name, fake_github, monkeypatch, spans):
    mistake = MISTAKES[name]
    stage = find_stage(mistake.stage)
    for variable, value in mistake.environment.items():
        monkeypatch.setenv(variable, value)
    shown_by = "error" if mistake.demo_repo == "a/server-error" else "demo"  # the request its demo makes
    asked = {request: REQUESTS[request] for request in {*requests_of(stage.name), shown_by}}
    with scratch_copy(stage, mistake) as broken:
        token = mistake.environment.get("GITHUB_TOKEN", "")
        ran = lesson_traces(stage, broken.folder, fake_github.url, monkeypatch, spans, asked, token)
    trace, others = ran[shown_by]
    findings = diagnose(trace, others)
    made: list[Finding] = [f for f in findings if f.kind == mistake.finding]
    assert made, [f.title for f in findings]
    assert all(words in made[0].title for words in mistake.names), made[0].title
    assert made[0].lesson == mistake.stage, made[0].lesson  # the lesson that teaches its fix
    assert MADE_UP_TOKEN not in repr([f.as_json() for f in findings])  # never the value
    if mistake.finding == "lost_context":  # the other half of the hop is another trace, which it names
        (other,) = made[0].traces
        assert other in {o["traceID"] for o in others} and mistake.carrier in made[0].carrier, made[0].carrier
    results = check_all(stage, ran)
    failed = {result.task.number for result in results if not result.done}
    assert failed == {task.number for task in TASKS[stage.name] if name in task.mistakes}, failed
    assert all(name in result.mistakes for result in results if not result.done)  # the checklist names it


VARIANTS = {
    repo: (f"/contributors/{repo}", {"X-Client": "make check"})
    for repo in ("a/does-not-exist", "a/rate-limited", "a/slow", "a/empty")
}
TRUE_FINDINGS = {  # what is really wrong with a lesson's own traces: lesson 2 does not mark errors yet (lesson 3)
    ("step2", "error"): {"error_not_marked"},  # a/server-error: 502
    ("step2", "a/slow"): {"error_not_marked"},  # 504: the fake is slower than the test's GitHub timeout
}  # (a 4xx, such as rate-limited's 429 or does-not-exist's 404, is the caller's: not a server error)


@pytest.mark.parametrize("stage", [f"step{n}" for n in range(2, 9)])
def test_a_lessons_own_traces_give_no_false_alarm_and_do_every_task(stage, fake_github, monkeypatch, spans):
    """The lessons' demo, baggage's request and every error variant of the fake GitHub: no finding but the
    true ones; and the lesson's own code does every task of its exercise."""
    lesson = find_stage(stage)
    ran = lesson_traces(lesson, lesson.folder, fake_github.url, monkeypatch, spans, {**REQUESTS, **VARIANTS})
    for request, (trace, others) in ran.items():
        kinds = {finding.kind for finding in diagnose(trace, others)}
        assert kinds == TRUE_FINDINGS.get((stage, request), set()), (request, kinds)
    assert [(r.task.number, r.problems) for r in check_all(lesson, ran) if not r.done] == []


def test_make_mistakes_lists_each_lessons_at_80_columns(capsys):
    assert main(["mistakes"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name}\n" in listed for name in MISTAKES) and max(map(len, listed.splitlines())) <= 80
    assert "Run one: make step5 MISTAKE=job-without-context" in listed
    assert main(["mistakes", "step5"]) == 0
    assert capsys.readouterr().out.startswith("step5:\n  job-without-context\n")
