"""Docs are product: every command a README shows exists, and every lesson README has its sections."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from tests.support.stage_loader import ROOT
from workshop.cli import build_parser
from workshop.lessons.expected import TASKS
from workshop.lessons.mistakes import MISTAKES, mistakes_of
from workshop.lessons.stages import all_stages
from workshop.ports import ENDPOINT

READMES = [ROOT / "README.md", ROOT / "HOSTS.md", *(stage.folder / "README.md" for stage in all_stages())]
# the ports a README's curl may ask (the README's table of ports says each)
DOCUMENTED_PORTS = {
    str(ENDPOINT[name].default) for name in ("app", "github_proxy", "fake_github", "edge", "query", "redis")
}
ROUTES = ("/contributors/", "/stats/", "/api/services", "/api/traces", "/api/dependencies", "/api/operations")


def code_lines(path) -> list[str]:
    """Lines inside ``` blocks, and commands quoted inline like `make step3`."""
    text = path.read_text()
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL):
        lines += [line.split("#")[0].strip() for line in block.splitlines()]
    lines += re.findall(r"`((?:make|\.venv/bin/python -m workshop|python -m workshop|curl|docker) [^`]+)`", text)
    return [line for line in lines if line]


def make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([a-z0-9][a-z0-9 -]*):(?!=)", line)
        if match:
            targets |= set(match.group(1).split())
    return targets


def workshop_commands() -> set[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    return set(subparsers.choices)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_shown_exists(readme):
    targets, commands = make_targets(), workshop_commands()
    profiles = {
        p
        for service in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"].values()
        for p in service.get("profiles", [])
    }
    checked = 0
    for line in code_lines(readme):
        words = line.split()
        assignments = [w for w in words if re.fullmatch(r"[A-Z_]+=\S*", w)]
        words = [w for w in words if w not in assignments]
        if not words:
            continue
        if words[0] == "make":
            assert words[1].replace("stepN", "step2") in targets, f"{readme.name}: `{line}` names no Makefile target"
            checked += 1
        elif words[:3] in (["python", "-m", "workshop"], [".venv/bin/python", "-m", "workshop"]):
            assert words[3] in commands, f"{readme.name}: `{line}` names no workshop command"
            checked += 1
        elif words[:3] == ["docker", "compose", "--profile"]:
            assert words[3] in profiles, f"{readme.name}: `{line}` names no profile of docker-compose.yml"
            checked += 1
        elif words[0] == "curl":
            urls = [w for w in shlex.split(line.replace("$(", "").replace(")", "")) if "localhost" in w]
            if not urls and "..." in line:
                continue  # an elided example, like `curl -H "X-Client: ..." ...`
            assert urls, f"{readme.name}: `{line}` has no localhost URL"
            url = urls[0]
            port = re.search(r"localhost:(\d+)", url).group(1)
            assert port in DOCUMENTED_PORTS, f"{readme.name}: `{line}` uses an undocumented port"
            assert any(route in url for route in ROUTES), f"{readme.name}: `{line}` names no route"
            checked += 1
    assert checked, f"{readme.name} shows no command"


@pytest.mark.parametrize("stage", all_stages(), ids=lambda stage: stage.name)
def test_each_lesson_readme_tells_what_changed_how_to_run_what_to_look_for_and_what_next(stage):
    text = (stage.folder / "README.md").read_text()
    assert text.startswith(f"# Lesson {stage.number} ")
    assert "**What you will learn:**" in text
    assert f"make {stage.name}" in text
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    if stage.number > 1:
        assert "What changed" in headings and f"make diff-{stage.name}" in text
    assert "Run it" in headings
    assert any(h.startswith("What to look for") for h in headings)
    assert "Try next" in headings


def test_top_readme_indexes_every_lesson():
    text = (ROOT / "README.md").read_text()
    for stage in all_stages():
        assert f"[`{stage.folder.name}/`]({stage.folder.name}/README.md)" in text
        assert f"`make {stage.name}`" in text


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_picture_a_readme_shows_exists(readme):
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme.read_text()):
        picture = (readme.parent / target).resolve()
        assert picture.is_file() and picture.stat().st_size > 10_000, f"{readme.name}: {target}"


def test_every_traced_lesson_shows_its_trace_page():
    for stage in all_stages():
        if stage.traced:
            text = (stage.folder / "README.md").read_text()
            assert f"](../docs/{stage.name}-trace.png)" in text and "Open it in your browser" in text, stage.name


def test_the_hosts_agenda_reads_each_readme_at_150_words_a_minute():
    rows = re.findall(r"^\| (\d) [^|]+\| (\d+) min \|", (ROOT / "HOSTS.md").read_text(), re.MULTILINE)
    assert [int(number) for number, _ in rows] == [stage.number for stage in all_stages()]
    for stage, (_, minutes) in zip(all_stages(), rows, strict=True):
        words = len((stage.folder / "README.md").read_text().split())
        assert int(minutes) == -(-words // 150), f"lesson {stage.number}: {words} words"


def test_the_hosts_agenda_counts_each_exercise_s_tasks():
    from workshop.lessons.exercises import to_do

    rows = re.findall(r"^\| (\d) .*\| (\d+) tasks, (\d+) min \|$", (ROOT / "HOSTS.md").read_text(), re.MULTILINE)
    assert [int(number) for number, _, _ in rows] == [stage.number for stage in all_stages() if stage.name in TASKS]
    for number, tasks, minutes in rows:
        count = len(to_do(all_stages()[int(number) - 1]))
        assert (int(tasks), int(minutes)) == (count, 10 * count), f"lesson {number}"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_mistake_shown_is_one_of_its_lessons(readme):
    for stage, name in re.findall(r"make (step\d) MISTAKE=([a-z0-9-]+)", readme.read_text()):
        assert MISTAKES.get(name) is not None and MISTAKES[name].stage == stage, f"{readme.name}: {stage} {name}"


@pytest.mark.parametrize("stage", [s for s in all_stages() if s.traced], ids=lambda stage: stage.name)
def test_each_lessons_try_next_names_its_mistakes(stage):
    text = (stage.folder / "README.md").read_text()
    try_next = text[text.index("## Try next") :]
    for mistake in mistakes_of(stage):
        assert f"make {stage.name} MISTAKE={mistake.name}" in try_next


@pytest.mark.parametrize("stage", [stage for stage in all_stages() if stage.name in TASKS], ids=lambda s: s.name)
def test_each_lesson_readme_says_how_to_do_it_as_an_exercise(stage):
    from workshop.lessons.exercises import to_do

    text = " ".join((stage.folder / "README.md").read_text().split())
    section = text[text.index("## As an exercise") :]
    tasks = len(to_do(stage))
    for said in (f"make exercise-{stage.name}", f"make check-{stage.name}", f"make solution-{stage.name}"):
        assert said in section
    assert f"lesson {stage.number - 1}'s code" in section and f"the lesson's {tasks} tasks" in section
