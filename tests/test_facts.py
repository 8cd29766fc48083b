"""Each fact written once: every port's default in workshop/ports.py, every lesson's facts in LESSONS
(workshop/lessons/stages.py); what else says them (the lessons' own code, docker-compose.yml, the README)
agrees with the tables, and nothing decides by a lesson's number."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from tests.support.stage_loader import ROOT
from workshop.cli import build_parser
from workshop.lessons.environment import QUIET_WARNINGS, lesson_environment
from workshop.lessons.stages import JAEGER_CLIENT, LESSONS, NO_TRACER, OPENTELEMETRY, all_stages
from workshop.ports import ENDPOINT, ENDPOINTS, TRACE_STORE
from workshop.runner.run import Settings
from workshop.tracestore.collector import CollectorConfig, running_collector
from workshop.tracestore.web.receivers import RECEIVERS

DEFAULTS = {str(endpoint.default) for endpoint in ENDPOINTS}
# Defaults still written outside the table, in files this change did not touch (the trace store's read side,
# the terminal client): each is to read workshop.ports instead. Remove an entry once it does.
NOT_YET: set[tuple[str, str]] = set()  # every default is read from workshop.ports


def written_ports(path: Path) -> set[str]:
    """The default ports a Python file writes as code: a number, a string that is one ("6831"), or an
    address with one ("127.0.0.1:16686"). Comments and docstrings that name a port for a reader are prose."""
    found = set()
    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.NUMBER and token.string in DEFAULTS:
            found.add(token.string)
        elif token.type == tokenize.STRING and previous not in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            found |= {port for port in re.findall(r"(?:['\"]|:)(\d+)\b", token.string) if port in DEFAULTS}
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return found


def test_each_port_default_is_written_once_in_the_toolkit():
    written = {
        (str(path.relative_to(ROOT)), port)
        for path in sorted((ROOT / "workshop").rglob("*.py"))
        if path.name != "ports.py"  # the table
        for port in written_ports(path)
    }
    assert written - NOT_YET == set(), "read these from workshop.ports"


def test_the_scan_would_catch_a_default_written_again(tmp_path):
    source = tmp_path / "a.py"
    source.write_text('"""On port 6831, as Jaeger."""\nPORT = 6831  # 16686\nURL = "http://127.0.0.1:16686/x"\n')
    assert written_ports(source) == {"6831", "16686"}


def test_one_name_per_port_for_its_flag_config_field_setting_and_stats_key():
    config = {field.name: field.default for field in dataclasses.fields(CollectorConfig)}
    assert {endpoint.field: endpoint.default for endpoint in TRACE_STORE}.items() <= config.items()
    settings = {field.name for field in dataclasses.fields(Settings)}
    assert {endpoint.field for endpoint in ENDPOINTS} <= settings
    commands = next(action for action in build_parser()._actions if action.dest == "command").choices
    flags = {flag: action.dest for action in commands["collector"]._actions for flag in action.option_strings}
    assert {endpoint.flag: endpoint.field for endpoint in TRACE_STORE}.items() <= flags.items()
    with running_collector(CollectorConfig.on_free_ports()) as collector:
        statistics = collector.statistics()
    assert set(statistics["ports"]) == {endpoint.name for endpoint in TRACE_STORE}
    assert {receiver.endpoint for receiver in RECEIVERS} <= set(statistics) & set(ENDPOINT)
    assert statistics["ports"] == {endpoint.name: getattr(collector, endpoint.field) for endpoint in TRACE_STORE}


def test_help_works_whatever_the_environment_holds_and_a_bad_value_is_said_when_the_command_runs():
    env = {**os.environ, **{endpoint.variable: "abc" for endpoint in ENDPOINTS}, "FAKE_GITHUB_RATE_LIMIT": "lots"}
    env["TRACE_STORE_MAX_TRACES"] = "many"
    commands = next(action for action in build_parser()._actions if action.dest == "command").choices
    for command in ["", *commands]:
        args = [sys.executable, "-m", "workshop", *command.split(), "--help"]
        result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.startswith("usage:"), (command, result.stderr)
    args = [sys.executable, "-m", "workshop", "collector"]
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "must be a" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_lessons_own_defaults_are_the_table_s():
    """The lessons are programs of their own (no import of the toolkit): their defaults agree with it."""
    url_of = {"GITHUB_API_URL": "fake_github", "PROXY_URL": "github_proxy", "REDIS_URL": "redis"}
    port_of = {endpoint.variable: endpoint for endpoint in ENDPOINTS}
    checked = 0
    for path in sorted(ROOT.glob("step[0-9]_*/*.py")):
        for variable, default in re.findall(r'environ\.get\("([A-Z_]+)", "([^"]+)"\)', path.read_text()):
            if variable in port_of:
                assert default == str(port_of[variable].default), f"{path.relative_to(ROOT)}: {variable}"
                checked += 1
            elif variable in url_of:
                assert default.split(":")[2].split("/")[0] == str(ENDPOINT[url_of[variable]].default), path
                checked += 1
    assert checked > 20


def test_docker_compose_and_the_readme_move_each_port_with_its_variable_from_its_default():
    compose = (ROOT / "docker-compose.yml").read_text()
    published = re.findall(r'^\s*- "\$\{([A-Z_]+):-(\d+)\}:', compose, re.MULTILINE)  # each service's ports
    assert {variable for variable, _ in published} == {endpoint.variable for endpoint in ENDPOINTS}
    defaults = {endpoint.variable: str(endpoint.default) for endpoint in ENDPOINTS}
    assert all(defaults[variable] == default for variable, default in published), published
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## What runs, and on which port") :].split("\n\n")[1]
    rows = re.findall(r"\| `localhost:(\d+)` \| `([A-Z_]+)`", table)
    assert sorted((variable, port) for port, variable in rows) == sorted(defaults.items())


def test_every_lesson_has_its_facts_and_they_agree_with_its_folder():
    stages = all_stages()
    assert [stage.number for stage in stages] == sorted(LESSONS)
    for stage in stages:
        facts, processes = stage.facts, stage.processes()
        tracing = stage.folder / "tracing.py"
        source = tracing.read_text() if tracing.exists() else ""
        assert facts.tracer in (NO_TRACER, JAEGER_CLIENT, OPENTELEMETRY)
        assert stage.traced == tracing.exists(), stage.name
        assert ("jaeger_client" in source) == (facts.tracer == JAEGER_CLIENT), stage.name
        assert ("opentelemetry.sdk" in source) == (facts.tracer == OPENTELEMETRY), stage.name
        assert ("opentracing_shim" in source) == facts.opentracing_shim, stage.name
        assert ("def instrument_libraries" in source) == facts.instrumented_libraries, stage.name
        assert stage.needs_redis == ("worker" in processes) == ("REDIS_URL" in (stage.folder / "app.py").read_text())
        assert set(stage.http_ports) <= set(processes) and set(stage.http_ports.values()) <= set(ENDPOINT)
        assert (stage.edge_process is not None) == ("traefik" in processes), stage.name
        node = [name for name, command in processes.items() if command.split()[0] == "node"]
        assert node == ([facts.node_process] if facts.node_process else []), stage.name
        if node:
            script = Path(processes[facts.node_process].split()[-1])
            assert stage.folder / script.parent == stage.node_project and (stage.node_project / "package.json").exists()
        if facts.screenshot_span:
            assert f"`{facts.screenshot_span}`" in (stage.folder / "README.md").read_text(), stage.name


def test_a_lesson_s_environment_is_built_from_the_table():
    env = lesson_environment({"app": 1, "github_proxy": 2, "jaeger_compact": 3, "otlp_http": 4}, "http://github")
    assert (env["APP_PORT"], env["PROXY_PORT"], env["JAEGER_AGENT_PORT"], env["EDGE_PORT"]) == ("1", "2", "3", "8483")
    assert env["PROXY_URL"] == "http://127.0.0.1:2" and env["GATEWAY_URL"] == "http://127.0.0.1:1"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4" and "REDIS_URL" not in env
    assert env["GITHUB_API_URL"] == "http://github" and env["PYTHONWARNINGS"] == QUIET_WARNINGS


def test_the_warnings_filter_is_written_once():
    sources = [*(ROOT / "workshop").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
    written = [path.name for path in sources if "no longer supported:" in path.read_text()]
    assert written == ["environment.py", "test_facts.py"]


NUMBER_THRESHOLD = re.compile(r"(stage|self)\.number\s*(>=|<=|<|>)\s*[2-9]|int\(folder\[4:|tuple\(range\([2-9],")


@pytest.mark.parametrize("folder", ["workshop", "tests"])
def test_nothing_decides_by_a_lesson_s_number(folder):
    """Which lessons are traced, need Redis, have Traefik or Node.js: the facts say, not `number >= 5`."""
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.name == "test_facts.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if NUMBER_THRESHOLD.search(line.split("#")[0]):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_the_trace_doctor_links_each_traced_lesson_to_its_folder():
    """The doctor sits below the lessons (the store knows nothing of them), so it keeps its own list of the
    lessons' READMEs: it must name the folders as they are."""
    from workshop.tracestore.diagnosis import LESSONS as DOCTOR_LINKS

    traced = {stage.name: f"{stage.folder.name}/README.md" for stage in all_stages() if stage.traced}
    assert traced == DOCTOR_LINKS


def test_the_lessons_fake_github_allows_the_same_calls_with_docker():
    """make stepN's fake GitHub and DOCKER=1's allow the same calls an hour (FAKE_GITHUB_RATE_LIMIT sets both)."""
    from workshop.runner.run import LESSON_GITHUB_RATE_LIMIT

    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"FAKE_GITHUB_RATE_LIMIT: ${{FAKE_GITHUB_RATE_LIMIT:-{LESSON_GITHUB_RATE_LIMIT}}}" in compose
