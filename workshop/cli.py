"""`python -m workshop <command>`: the workshop's command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from workshop.errors import WorkshopError
from workshop.ports import ENDPOINT, TRACE_STORE, Endpoint


@dataclass(frozen=True)
class FromEnvironment:
    """An option's default, read from the environment when a command runs, not when the parser is made:
    `--help` works whatever the environment holds, and a bad value is said when it matters."""

    variable: str
    default: object
    read: Callable[[str], object]

    def value(self) -> object:
        raw = os.environ.get(self.variable)
        return self.read(raw) if raw else self.default


class Parser(argparse.ArgumentParser):
    def parse_known_args(self, args=None, namespace=None):
        namespace, rest = super().parse_known_args(args, namespace)
        for name, value in vars(namespace).items():
            if isinstance(value, FromEnvironment):
                setattr(namespace, name, value.value())
        return namespace, rest


def _number(variable: str, kind: type, digits_only: bool = False) -> Callable[[str], object]:
    def read(raw: str) -> object:
        try:
            if digits_only and not raw.isdigit():
                raise ValueError(raw)
            return kind(raw)
        except ValueError:
            noun = "whole number" if kind is int else "number"
            raise WorkshopError(f"{variable} must be a {noun}, not {raw!r}") from None

    return read


def _env_option(parser: argparse.ArgumentParser, flag: str, variable: str, default, kind, help: str) -> None:
    """An option whose default comes from an environment variable, else from `default`."""
    value = FromEnvironment(variable, default, _number(variable, kind))
    parser.add_argument(flag, type=kind, default=value, help=f"{help} (default {default}, or {variable})")


def _port_option(parser: argparse.ArgumentParser, endpoint: Endpoint, flag: str | None = None) -> None:
    """The option for one port of workshop.ports: its flag, its variable, its default."""
    value = FromEnvironment(endpoint.variable, endpoint.default, lambda raw: endpoint.port({endpoint.variable: raw}))
    parser.add_argument(
        flag or endpoint.flag,
        dest=endpoint.field,
        type=int,
        default=value,
        help=f"{endpoint.label}, {endpoint.protocol.upper()} (default {endpoint.default}, or {endpoint.variable})",
    )


def cmd_fake_github(args: argparse.Namespace) -> int:
    from workshop.fake_github import FakeGitHubConfig, create_app
    from workshop.serving import create_server, serve_forever

    config = FakeGitHubConfig(
        computing_calls=args.computing_calls,
        latency=args.latency,
        slow_seconds=args.slow_seconds,
        rate_limit=args.rate_limit,
    )
    if not args.access_log:  # like the real GitHub, whose logs nobody can read
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = args.fake_github_port
    server = create_server(create_app(config), args.host, port, ENDPOINT["fake_github"].variable)
    print(f"fake GitHub on http://{args.host}:{port} (first {config.computing_calls} calls per repo: 202)")
    sys.stdout.flush()
    serve_forever(server)
    return 0


def cmd_collector(args: argparse.Namespace) -> int:
    from workshop.tracestore.collector import CollectorConfig, main
    from workshop.tracestore.sampling import StrategiesError

    if args.max_traces < 1:
        raise WorkshopError("--max-traces must be at least 1")
    if args.max_spans < 1:
        raise WorkshopError("--max-spans must be at least 1")
    config = CollectorConfig(
        host=args.host,
        **{endpoint.field: getattr(args, endpoint.field) for endpoint in TRACE_STORE},
        sampling_strategies=Path(args.sampling_strategies) if args.sampling_strategies else None,
        max_traces=args.max_traces,
        max_spans=args.max_spans,
        journal=Path(args.journal) if args.journal else None,
        docs=_docs_folder(args.docs),
    )
    try:
        return main(config)
    except StrategiesError as error:  # the store says what is wrong; here, which option gave it
        raise WorkshopError(f"--sampling-strategies {error.path}: {error.problem}") from None


def _docs_folder(text: str | None) -> Path | None:
    if text is None:
        return None
    folder = Path(text)
    if not folder.is_dir():
        raise WorkshopError(f"--docs {text}: not a folder (the repository, whose lessons' READMEs the pages link)")
    return folder


def cmd_explain(args: argparse.Namespace) -> int:
    """Like a linter: 0 when nothing is wrong, 1 when a finding is."""
    from rich.console import Console

    from workshop.terminal import explain
    from workshop.terminal.query_client import QueryClient

    client = QueryClient(args.query_url)
    if args.recent is not None:
        traces = explain.recent(client, args.recent)
        found = explain.diagnose_recent(traces)
        if args.json:
            groups = [vars(group) for group in found.groups]
            print(json.dumps({"traces": found.traces, "since": found.since(), "groups": groups}, indent=2))
        else:
            Console().print(explain.render_groups(found))
        return 1 if found.groups else 0
    if not args.trace_id:
        raise WorkshopError("explain needs a trace id (from `make stepN` or `traces`), or --recent N")
    trace, findings = explain.findings_of(client, args.trace_id)
    if args.json:
        body = {"traceID": trace["traceID"], "findings": [finding.as_json() for finding in findings]}
        print(json.dumps(body, indent=2))
    else:
        Console().print(explain.render_findings(trace, findings, args.query_url))
    return 1 if findings else 0


def _recent_count(text: str) -> int:
    """--recent's N: how many of the newest traces, 1 to the store's largest answer."""
    from workshop.tracestore.query import MAX_LIMIT

    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"a number of traces from 1 to {MAX_LIMIT:,}, not {text!r}")
    return int(text)


def cmd_load(args: argparse.Namespace) -> int:
    import threading

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from workshop import load
    from workshop.tracestore.durations import format_duration_us, parse_duration_us

    try:
        duration_s = parse_duration_us(args.duration) / 1e6
    except ValueError as problem:
        raise WorkshopError(f"--duration: {problem}") from None
    total = load.planned(args.rate, duration_s, args.concurrency)  # every argument checked before the plan
    url = load.check_target(args.url or load.default_url(dict(os.environ)), args.allow_remote)
    console = Console()
    console.print(f"{total} requests to {url}: {args.rate:g} a second for {format_duration_us(int(duration_s * 1e6))}")
    stop, done, result = threading.Event(), threading.Event(), {}
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("answered", total=total)

        def work() -> None:
            try:
                result["summary"] = load.run_load(
                    url, args.rate, duration_s, args.concurrency, lambda _: progress.advance(task), stop
                )
            except WorkshopError as error:
                result["error"] = error
            finally:
                done.set()

        # waited for with an Event: a Thread.join() that Ctrl-C interrupts can take the thread for finished
        threading.Thread(target=work, name="load", daemon=True).start()
        try:
            while not done.wait(0.2):
                pass
        except KeyboardInterrupt:
            stop.set()
            console.print("stopping: the requests in flight finish first ...")
            done.wait(load.TIMEOUT_S + 5)
    if "error" in result:
        raise result["error"]
    summary = result["summary"]
    console.print(load_summary(summary, url))
    if summary.stopped:
        return 130
    return 0 if summary.answered() else 1


def load_summary(summary, url: str = "") -> str:
    from workshop.runner.run import LESSON_GITHUB_RATE_LIMIT

    lines = [
        f"sent {summary.sent}, answered {len(summary.answers)}" + (" (stopped with Ctrl-C)" if summary.stopped else "")
    ]
    lines.append("by status: " + ", ".join(f"{status} × {count}" for status, count in summary.by_status().items()))
    percentiles = summary.percentiles_ms()
    if percentiles:
        lines.append("latency: " + ", ".join(f"{name} {value:,.0f} ms" for name, value in percentiles.items()))
    if summary.answers and not summary.answered():
        lines.append(
            f"no request was answered: nothing answers at {url or 'that address'} (start the lesson in another "
            "terminal, make step6, or give its URL)"
        )
        return "\n".join(lines)
    refused = sum(1 for answer in summary.answers if answer.status in (403, 429, 502, 503))
    if summary.answers and refused > len(summary.answers) / 3:
        lines.append(
            f"many refusals: the lesson's fake GitHub allows {LESSON_GITHUB_RATE_LIMIT:,} calls an hour, as GitHub "
            "does a token: restart the lesson to reset it, or start it with FAKE_GITHUB_RATE_LIMIT=100000"
        )
    for answer in summary.slowest():
        lines.append(f"slow: {answer.seconds * 1000:,.0f} ms {answer.path}  trace {answer.trace_id}")
    query = ENDPOINT["query"].port(dict(os.environ))
    lines.append(f"Monitor: http://localhost:{query}/monitor (each point links to its traces)")
    return "\n".join(lines)


COUNT_LIMIT = 1000  # `traces --count` counts this many at most


def cmd_traces(args: argparse.Namespace) -> int:
    from rich.console import Console

    from workshop.terminal.query_client import QueryClient
    from workshop.terminal.waterfall import render_trace_list
    from workshop.tracestore.durations import parse_duration_us

    if args.min_duration:
        try:
            parse_duration_us(args.min_duration)
        except ValueError as problem:
            raise WorkshopError(f"--min-duration: {problem}") from None
    client = QueryClient(args.query_url)
    known = client.services()
    if not known and not args.count:
        print(f"no traces yet at {args.query_url}: run a stage (make step2) and send it a request")
        return 0
    found: dict[str, dict] = {}
    tags = {"error": "true"} if args.error else None
    limit = COUNT_LIMIT if args.count else args.limit
    for service in [args.service] if args.service else known:  # each service's newest, then the slowest of all
        for trace in client.find_traces(service, limit, args.min_duration, tags):
            found[trace["traceID"]] = trace
    if args.count:
        which = f" with a span of {args.service}" if args.service else ""
        print(f"{len(found)}{'+' if len(found) >= COUNT_LIMIT else ''} traces{which} in the last hour")
        return 0
    if not found:
        print("no trace matches")
        if args.service and args.service not in known:
            print(f"no service is called {args.service!r}; the services with traces: {', '.join(known)}")
        return 0
    Console().print(render_trace_list(list(found.values()), args.limit))
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from rich.console import Console

    from workshop.terminal.query_client import QueryClient
    from workshop.terminal.waterfall import render_trace
    from workshop.tracestore.durations import parse_duration_us

    scale = None
    if args.scale:
        try:
            scale = parse_duration_us(args.scale)
        except ValueError as problem:
            raise WorkshopError(f"--scale: {problem}") from None
        if scale <= 0:
            raise WorkshopError("--scale must be longer than 0")
    trace = QueryClient(args.query_url).trace(args.trace_id)
    if args.json:  # the shape Jaeger's UI loads with "Upload JSON"
        print(json.dumps({"data": [trace]}, indent=2))
        return 0
    details = {"tags": args.tags or args.all, "logs": args.logs or args.all, "baggage": args.baggage or args.all}
    Console().print(render_trace(trace, scale_us=scale, **details))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from workshop.lessons.stages import find_stage

    stage = find_stage(args.stage)
    if args.mistake:
        return _run_mistake(stage, args)
    if args.docker:
        from workshop.runner.docker import run_with_docker

        return run_with_docker(stage, once=args.once)
    from workshop.runner.run import exit_as_signalled, run_stage

    command = None
    if args.folder:  # a learner's workspace (make step4 FOLDER=exercises/step4_distributed), run as the lesson
        from workshop.lessons.stages import Stage
        from workshop.runner.check import shown

        folder = Path(args.folder).resolve()
        if not (folder / "Procfile").is_file():
            raise WorkshopError(f"{args.folder} is not a lesson's folder (no Procfile): FOLDER= names your workspace")
        stage, command = Stage(stage.number, folder), f"make {stage.name} FOLDER={shown(folder)}"
    screenshot = Path(args.screenshot) if args.screenshot else None
    code = run_stage(stage, once=args.once, screenshot=screenshot, command=command)
    return exit_as_signalled(code)


def _run_mistake(stage, args: argparse.Namespace) -> int:
    """`make step5 MISTAKE=job-without-context`: the mistake, as a diff, then the lesson run with it."""
    from workshop.lessons.diff import coloured
    from workshop.lessons.mistakes import find_mistake, scratch_copy
    from workshop.lessons.stages import ROOT
    from workshop.runner.run import exit_as_signalled, run_stage

    mistake = find_mistake(args.mistake, stage)
    if args.docker:
        raise WorkshopError("MISTAKE= runs without Docker (compose runs the lesson's own folder): leave out DOCKER=1")
    if stage.folder == ROOT:
        raise WorkshopError("MISTAKE= patches a copy of a lesson folder: run it on main (git checkout main)")
    paint = coloured if sys.stdout.isatty() else (lambda line: line)
    width = min(shutil.get_terminal_size((80, 24)).columns, 120)
    print(textwrap.fill(f"{stage.name} with a mistake, {mistake.name}: {mistake.says}.", width, break_on_hyphens=False))
    if "GITHUB_TOKEN" in mistake.environment:
        print(
            textwrap.fill("GITHUB_TOKEN: a made-up token, for this run (yours, if you have one, is not used).", width)
        )
    where = f"The mistake, as a diff against {stage.folder.name}/ (applied to a scratch copy: the lesson is untouched):"
    print(textwrap.fill(where, width, break_on_hyphens=False))
    sys.stdout.writelines(paint(line) for line in mistake.diff().splitlines(keepends=True))
    sys.stdout.flush()
    with scratch_copy(stage, mistake) as broken:
        code = run_stage(broken, once=args.once, mistake=mistake)
    return exit_as_signalled(code)


def cmd_exercise(args: argparse.Namespace) -> int:
    """`make exercise-stepN`: the learner's workspace for lesson N (never over their work)."""
    from workshop.lessons.exercises import make_exercise
    from workshop.lessons.stages import find_stage

    _, said = make_exercise(find_stage(args.stage), fresh=args.fresh)
    print(for_terminal(said, force=True))
    return 0


def for_terminal(text: str, stream: TextIO | None = None, force: bool = False, indent: int = 2) -> str:
    """`text`, each of its lines wrapped between words to the terminal's width (at most 100), the rest of a
    line indented under it; a command (make ...) is never cut in two. Into a pipe or a file (unless `force`),
    as it is."""
    if not (force or (stream or sys.stdout).isatty()):
        return text
    width = min(shutil.get_terminal_size((80, 24)).columns, 100)
    lines = []
    for line in text.splitlines() or [""]:
        kept = re.sub(r"\bmake (\S+)", "make\u00a0\\1", line)
        lead = " " * (len(line) - len(line.lstrip()))
        wrapped = textwrap.wrap(kept, width, subsequent_indent=lead + " " * indent, break_on_hyphens=False)
        lines += [piece.replace("\u00a0", " ") for piece in wrapped] or [""]
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    """`make check-stepN`: the workspace run as the lesson runs, its traces read against the lesson's tasks.
    With --json, what it prints on stdout is one JSON result, whatever happens (a host collects them)."""
    from workshop.lessons.stages import find_stage
    from workshop.runner.check import Checker

    try:
        checker = Checker(find_stage(args.stage), Path(args.folder or "."), as_json=args.json)
        return _check(args, checker)
    except WorkshopError as error:
        if not args.json:
            raise  # said as every command says an error (exit status 2)
        return _not_started(args, None, "the check could not run", str(error).splitlines())


def _check(args: argparse.Namespace, checker) -> int:
    from workshop.lessons.exercises import tasks_of, workspace_of
    from workshop.lessons.stages import Stage
    from workshop.runner.check import shown, syntax_errors
    from workshop.runner.run import Settings, exit_as_signalled, run_stage

    stage = checker.stage
    tasks_of(stage)
    folder = checker.workspace = Path(args.folder).resolve() if args.folder else workspace_of(stage)
    if not (folder / "Procfile").is_file():
        missing = "has no Procfile" if folder.is_dir() else "is not there"
        raise WorkshopError(f"{shown(folder)} {missing}: make exercise-{stage.name} makes your workspace")
    broken = syntax_errors(folder)
    if broken:
        return _not_started(args, checker, "a file of your workspace does not compile", broken)
    settings = Settings(query_url_given=args.query_url)
    stream = sys.stderr if args.json else None  # with JSON=1, stdout is the result alone
    command = f"make check-{stage.name}"
    code = run_stage(
        Stage(stage.number, folder), once=True, settings=settings, check=checker, stream=stream, command=command
    )
    if not checker.said and code < 128:
        where = checker.where_it_failed()
        why = "your workspace did not start or answer" + ("" if where else ": its error is above")
        return _not_started(args, checker, why, where)
    if checker.said and not args.json:  # said again last, below the processes' stopping
        print(f"{command}: {checker.verdict()}")
    return exit_as_signalled(code)


def _not_started(args: argparse.Namespace, checker, why: str, details: list[str] = ()) -> int:
    if args.json:
        from workshop.lessons.expected import TASKS

        todo = [task for task in TASKS.get(args.stage, ()) if not task.guard]
        result = {  # the keys of a check that ran (workshop.runner.check), nothing done
            "lesson": args.stage,
            "ok": False,
            "started": False,
            "done": 0,
            "tasks": len(todo),
            "summary": f"✗ {why}",
            "first_failure": None,
            "results": [],
            "findings": [],
            "errors": list(details),
        }
        print(json.dumps(result), flush=True)
    else:
        print(for_terminal(f"✗ {why}" + (":" if details else "")))
        for detail in details:
            print(for_terminal(f"  {detail}"))
    return 1 if checker is not None else 2


def cmd_solution(args: argparse.Namespace) -> int:
    """`make solution-stepN`: what the workspace still lacks, as a diff to the lesson's code."""
    from workshop.lessons.diff import coloured
    from workshop.lessons.exercises import solution_lines, workspace_of
    from workshop.lessons.stages import find_stage
    from workshop.runner.check import shown

    stage = find_stage(args.stage)
    folder = Path(args.folder).resolve() if args.folder else workspace_of(stage)
    if not folder.is_dir():
        raise WorkshopError(f"{shown(folder)} is not there: make exercise-{stage.name} makes your workspace")
    lines = [line if line.endswith("\n") else line + "\n" for line in solution_lines(stage, folder)]
    if not lines:
        print(f"{shown(folder)} has all of lesson {stage.number}'s code: nothing is missing")
        return 0
    print(
        for_terminal(
            f"# What {shown(folder)} lacks of {stage.folder.name} (the code): try make check-{stage.name}'s hints first"
        )
    )
    sys.stdout.writelines(coloured(line) if sys.stdout.isatty() else line for line in lines)
    return 0


def cmd_mistakes(args: argparse.Namespace) -> int:
    """`make mistakes`: each lesson's classic mistakes, one line each."""
    from workshop.lessons.mistakes import MISTAKES

    width = 80
    for stage in sorted({m.stage for m in MISTAKES.values()}, key=lambda name: int(name[4:])):
        if args.stage and args.stage.removeprefix("step").split("_")[0] != stage[4:]:
            continue
        print(f"{stage}:")
        for mistake in (m for m in MISTAKES.values() if m.stage == stage):
            print(f"  {mistake.name}")
            indent = "      "
            print(
                textwrap.fill(
                    mistake.says, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
                )
            )
    print("Run one: make step5 MISTAKE=job-without-context (lesson 5, with that mistake)")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from workshop.lessons.stages import all_stages
    from workshop.runner.run import prepare_stage_tools

    wheelhouse = Path(args.wheelhouse).resolve() if args.wheelhouse else None
    if wheelhouse is not None and not (wheelhouse / "python").is_dir():
        raise WorkshopError(f"{args.wheelhouse} is not a wheelhouse (no python/ in it): `make wheelhouse` makes one")
    for stage in all_stages():
        prepare_stage_tools(stage, wheelhouse=wheelhouse)
    return 0


def cmd_wheelhouse(args: argparse.Namespace) -> int:
    from workshop.wheelhouse.download import build
    from workshop.wheelhouse.targets import choose_targets

    build(Path(args.folder), choose_targets(args.platforms, args.pythons))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from workshop.doctor.__main__ import main as doctor

    return doctor(["--json"] if args.json else [])


def cmd_bench(args: argparse.Namespace) -> int:
    from workshop.bench import run_benchmarks

    run_benchmarks(quick=args.quick)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from workshop.runner.docker import down

    return down()


def cmd_stage_tags(args: argparse.Namespace) -> int:
    from workshop.lessons.tags import main

    return main()


def cmd_diff(args: argparse.Namespace) -> int:
    from workshop.lessons.diff import print_stage_diff

    return print_stage_diff(args.stage, code_only=args.code)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m workshop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    run = commands.add_parser("run", help="run a stage: its processes, a demo request, its trace")
    run.add_argument("stage", help="step1 .. step9")
    run.add_argument("--once", action="store_true", help="print the demo and its trace, then stop")
    run.add_argument("--docker", action="store_true", help="with docker compose and real Jaeger")
    run.add_argument("--screenshot", metavar="PNG", help="save the demo trace's page (a real Chromium), then stop")
    run.add_argument("--mistake", metavar="NAME", help="with one of the lesson's classic mistakes (make mistakes)")
    run.add_argument("--folder", help="run this folder as the lesson (your workspace: make step4 FOLDER=...)")
    run.set_defaults(func=cmd_run)

    exercise = commands.add_parser("exercise", help="a lesson as an exercise: your workspace, in exercises/")
    exercise.add_argument("stage", help="step2 .. step9")
    exercise.add_argument("--fresh", action="store_true", help="start again: your earlier work is moved aside")
    exercise.set_defaults(func=cmd_exercise)

    checking = commands.add_parser("check", help="run your workspace and check its trace against the tasks")
    checking.add_argument("stage", help="step2 .. step9")
    checking.add_argument("--folder", help="the workspace (default: exercises/stepN_<name>)")
    checking.add_argument(
        "--json", action="store_true", help="one result as JSON, for a host (make check-stepN JSON=1)"
    )
    checking.add_argument(
        "--query-url",
        help="a Jaeger already running whose query API the traces are read from (default: the "
        "local store, or a Jaeger answering at its port)",
    )
    checking.set_defaults(func=cmd_check)

    solution = commands.add_parser("solution", help="what your workspace still lacks, as a diff to the lesson")
    solution.add_argument("stage", help="step2 .. step9")
    solution.add_argument("--folder", help="the workspace (default: exercises/stepN_<name>)")
    solution.set_defaults(func=cmd_solution)

    mistakes = commands.add_parser("mistakes", help="each lesson's classic mistakes (make stepN MISTAKE=<name>)")
    mistakes.add_argument("stage", nargs="?", help="only this lesson's (step2 .. step9)")
    mistakes.set_defaults(func=cmd_mistakes)

    fake = commands.add_parser("fake-github", help="serve the offline GitHub")
    fake.add_argument("--host", default=os.environ.get("FAKE_GITHUB_HOST", "127.0.0.1"))
    _port_option(fake, ENDPOINT["fake_github"], "--port")  # its only port
    _env_option(fake, "--computing-calls", "FAKE_GITHUB_COMPUTING_CALLS", 2, int, "calls per repo that answer 202")
    _env_option(fake, "--latency", "FAKE_GITHUB_LATENCY", 0.0, float, "seconds added to every answer")
    _env_option(fake, "--slow-seconds", "FAKE_GITHUB_SLOW_SECONDS", 10.0, float, "how long repo 'slow' takes")
    fake.add_argument(
        "--rate-limit",
        type=int,
        default=FromEnvironment("FAKE_GITHUB_RATE_LIMIT", None, _number("FAKE_GITHUB_RATE_LIMIT", int, True)),
        help="calls an hour before 403 (default: GitHub's 60, or 5000 with a token; or FAKE_GITHUB_RATE_LIMIT)",
    )
    fake.add_argument("--access-log", action="store_true", help="log every request it answers")
    fake.set_defaults(func=cmd_fake_github)

    store = commands.add_parser("collector", help="the local Jaeger-compatible trace store")
    store.add_argument("--host", default=os.environ.get("TRACE_STORE_HOST", "127.0.0.1"))
    for endpoint in TRACE_STORE:
        _port_option(store, endpoint)
    store.add_argument(
        "--sampling-strategies",
        default=os.environ.get("SAMPLING_STRATEGIES_FILE") or None,
        help="Jaeger's sampling-strategies JSON file, read again when it changes (default: sample everything)",
    )
    _env_option(store, "--max-traces", "TRACE_STORE_MAX_TRACES", 10_000, int, "traces kept; the oldest go first")
    _env_option(
        store, "--max-spans", "TRACE_STORE_MAX_SPANS", 1_000_000, int, "spans kept in all; the oldest traces go first"
    )
    store.add_argument(
        "--journal",
        default=os.environ.get("TRACE_STORE_FILE") or None,
        help="append every span to this JSON-lines file and reload it at start",
    )
    store.add_argument(
        "--docs", help="serve this folder's Markdown files at /docs/ (the repository: the trace doctor links lessons)"
    )
    store.set_defaults(func=cmd_collector)

    query = ENDPOINT["query"]
    query_port = os.environ.get(query.variable) or query.default
    query_url = os.environ.get("JAEGER_QUERY_URL") or f"http://127.0.0.1:{query_port}"
    traces = commands.add_parser("traces", help="list recent traces, slowest first")
    traces.add_argument("--service", help="only this service's traces (default: every service)")
    traces.add_argument("--min-duration", help="only traces with a span at least this long: 500ms, 1.5s")
    traces.add_argument("--error", action="store_true", help="only traces with an error")
    traces.add_argument("--limit", type=int, default=20)
    traces.add_argument("--count", action="store_true", help=f"only say how many traces (up to {COUNT_LIMIT})")
    traces.add_argument("--query-url", default=query_url, help=f"the store or Jaeger to ask (default {query_url})")
    traces.set_defaults(func=cmd_traces)

    trace = commands.add_parser("trace", help="print one trace as a waterfall")
    trace.add_argument("trace_id")
    trace.add_argument("--tags", action="store_true", help="show each span's tags")
    trace.add_argument("--logs", action="store_true", help="show each span's logs")
    trace.add_argument("--baggage", action="store_true", help="show baggage")
    trace.add_argument("--all", action="store_true", help="tags, logs and baggage")
    trace.add_argument("--scale", help="a fixed timeline, to compare traces: 2s, 500ms (default: the trace's length)")
    trace.add_argument("--json", action="store_true", help="Jaeger's JSON, for the Jaeger UI's Upload JSON")
    trace.add_argument("--query-url", default=query_url, help=f"the store or Jaeger to ask (default {query_url})")
    trace.set_defaults(func=cmd_trace)

    why = commands.add_parser("explain", help="what is wrong with a trace, and why (the trace doctor)")
    why.add_argument("trace_id", nargs="?", help="the trace (its id, as `make stepN` prints it)")
    why.add_argument(
        "--recent", type=_recent_count, metavar="N", help="instead: the findings of the newest N traces, grouped"
    )
    why.add_argument("--json", action="store_true", help="the findings as JSON, each with its kind and span ids")
    why.add_argument("--query-url", default=query_url, help=f"the store or Jaeger to ask (default {query_url})")
    why.set_defaults(func=cmd_explain)

    loader = commands.add_parser("load", help="send a running lesson a steady stream of requests (make load)")
    loader.add_argument("url", nargs="?", help="where (default: the running lesson: Traefik's port, else the app's)")
    loader.add_argument("--rate", type=float, default=5.0, help="requests a second (default 5, at most 200)")
    loader.add_argument("--duration", default="1m", help="how long: 30s, 2m (default 1m, at most 10m)")
    loader.add_argument("--concurrency", type=int, default=8, help="requests in flight at most (default 8)")
    loader.add_argument("--allow-remote", action="store_true", help="allow a URL that is not this machine")
    loader.set_defaults(func=cmd_load)

    bench = commands.add_parser("bench", help="what tracing costs, and what the trace store can take")
    bench.add_argument("--quick", action="store_true", help="fewer requests and spans: a rough figure, fast")
    bench.set_defaults(func=cmd_bench)

    stop = commands.add_parser("down", help="stop what `make stepN DOCKER=1` started")
    stop.set_defaults(func=cmd_down)

    prepare = commands.add_parser("prepare", help="install what lessons need beyond Python (Traefik, npm ci)")
    prepare.add_argument("--wheelhouse", help="install from this folder (`make wheelhouse`), with no network")
    prepare.set_defaults(func=cmd_prepare)

    wheelhouse = commands.add_parser("wheelhouse", help="download every package of every lesson into a folder")
    wheelhouse.add_argument("folder")
    wheelhouse.add_argument("--platforms", default="all", help="all, here, or a list: linux-x86_64,macos-arm64,...")
    wheelhouse.add_argument("--pythons", default="all", help="all, or a list: 3.12,3.13")
    wheelhouse.set_defaults(func=cmd_wheelhouse)

    doctor = commands.add_parser("doctor", help="is this laptop ready for every lesson? (= python -m workshop.doctor)")
    doctor.add_argument("--json", action="store_true", help="the results as JSON, for a host collecting them")
    doctor.set_defaults(func=cmd_doctor)

    tags = commands.add_parser("stage-tags", help="a local branch `stages` with tags step1 .. step9")
    tags.set_defaults(func=cmd_stage_tags)

    diff = commands.add_parser("diff", help="what a lesson changes: the diff from the previous stage")
    diff.add_argument("stage", help="step2 .. step9")
    diff.add_argument("--code", action="store_true", help="the code only, without the README")
    diff.set_defaults(func=cmd_diff)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except WorkshopError as error:
        print(for_terminal(f"error: {error}", sys.stderr), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the output went into `head` or a pager that quit: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
