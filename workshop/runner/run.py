"""`make stepN` = `python -m workshop run stepN`: start what a stage needs, show its trace, stop it all.

What it starts, each as a process with its log lines prefixed and coloured (honcho):
  fake-github   unless GITHUB_API_URL is set (allowing 5,000 calls an hour, as GitHub does a token)
  trace-store   for traced stages, unless a Jaeger (or store) already answers on the query port
  redis         for stages that need it, unless REDIS_URL is set
  the stage's own processes, from its Procfile, run in the stage folder (lesson 9: Traefik and a Node.js
  service too, installed on first use)
Then it waits for each to be ready, sends one demo request, prints the answer and the trace waterfall,
and runs until Ctrl-C or SIGTERM (or, with --once, stops and exits 0 only if the whole trace arrived).
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import requests
from rich.console import Console

from workshop.errors import WorkshopError
from workshop.lessons.environment import lesson_environment
from workshop.lessons.mistakes import Mistake
from workshop.lessons.stages import OPENTELEMETRY, ROOT, Stage
from workshop.ports import ENDPOINT, ENDPOINTS, TRACE_STORE, PortCheck, wait_for_http, wait_for_tcp
from workshop.runner.demo import DEMO_REPO, Demo
from workshop.runner.redis_server import RedisPlan, plan_redis
from workshop.runner.wrapped import say_command, say_wrapped
from workshop.toolchain import ensure_node_packages, ensure_traefik

READY_TIMEOUT = 20.0  # seconds for every process to answer
TRACE_TIMEOUT = 10.0  # seconds for the demo's trace to arrive in the store
STORE_CHECK_INTERVAL = 2.0  # seconds between two looks at a trace store another run started
# The lessons' fake GitHub allows what GitHub allows a token (5,000 calls an hour), not its 60 without one: a
# minute of `make load` asks it some 300 to 900 times. FAKE_GITHUB_RATE_LIMIT still sets another limit.
LESSON_GITHUB_RATE_LIMIT = 5000


def _port(name: str):
    """A setting for one endpoint of workshop.ports: its port, from its variable or its default."""
    return field(default_factory=lambda: ENDPOINT[name].port())


@dataclass
class Settings:
    """Every address the runner uses; each port moves with its variable (workshop.ports)."""

    host: str = "127.0.0.1"
    app_port: int = _port("app")
    github_proxy_port: int = _port("github_proxy")
    fake_github_port: int = _port("fake_github")
    edge_port: int = _port("edge")  # lesson 9's Traefik
    redis_port: int = _port("redis")  # when no REDIS_URL names one
    query_port: int = _port("query")
    query_url_given: str | None = None  # a Jaeger's query API named in full (make check-stepN QUERY_URL=...)
    jaeger_compact_port: int = _port("jaeger_compact")
    jaeger_binary_port: int = _port("jaeger_binary")
    otlp_http_port: int = _port("otlp_http")
    zipkin_port: int = _port("zipkin")
    sampling_port: int = _port("sampling")
    github_api_url: str | None = field(default_factory=lambda: os.environ.get("GITHUB_API_URL") or None)
    # unset: LESSON_GITHUB_RATE_LIMIT (the fake GitHub reads the variable itself, and says if it is not a number)
    fake_github_rate_limit: str | None = field(default_factory=lambda: os.environ.get("FAKE_GITHUB_RATE_LIMIT"))
    redis_url: str | None = field(default_factory=lambda: os.environ.get("REDIS_URL") or None)
    demo_repo: str = field(default_factory=lambda: os.environ.get("DEMO_REPO", DEMO_REPO))
    # Procfile processes not to start (WITHOUT=worker make step5): to see what their absence does
    without: set[str] = field(default_factory=lambda: {n for n in os.environ.get("WITHOUT", "").split(",") if n})
    ready_timeout: float = READY_TIMEOUT
    trace_timeout: float = TRACE_TIMEOUT

    @property
    def app_url(self) -> str:
        return f"http://{self.host}:{self.app_port}"

    @property
    def query_url(self) -> str:
        return (self.query_url_given or f"http://{self.host}:{self.query_port}").rstrip("/")

    def port(self, name: str) -> int:
        """The port of endpoint `name` (workshop.ports)."""
        return getattr(self, ENDPOINT[name].field)

    @property
    def ports(self) -> dict[str, int]:
        return {endpoint.name: self.port(endpoint.name) for endpoint in ENDPOINTS}


@dataclass
class Process:
    name: str
    command: str
    cwd: str | None = None
    ready_url: str | None = None  # answers HTTP when the process is ready
    ready_port: int | None = None  # accepts TCP connections when ready (no request, so no trace of its own)


@dataclass
class Plan:
    stage: Stage
    settings: Settings
    processes: list[Process]
    env: dict[str, str]
    notes: list[str]
    redis: RedisPlan | None = None
    spans_elsewhere: str | None = None  # OTEL_EXPORTER_OTLP_ENDPOINT away from the store: why its trace is missing
    mistake: Mistake | None = None  # MISTAKE=: the stage is a scratch copy of the lesson, with this patch applied
    # make check-stepN: in place of the demo, (console, entry URL, query URL, services) -> every task done
    check: Callable[[Console, str, str, set[str]], bool] | None = None

    @property
    def services(self) -> set[str]:
        return set(self.stage.processes()) - self.settings.without if self.stage.traced else set()

    given_command: str | None = None  # how the learner started it, when it is not `make stepN` (FOLDER=...)

    @property
    def command(self) -> str:
        """How a learner runs this again: `make step5`, or `make step5 MISTAKE=job-without-context`."""
        if self.given_command:
            return self.given_command
        return f"make {self.stage.name}" + (f" MISTAKE={self.mistake.name}" if self.mistake else "")

    @property
    def entry_url(self) -> str:
        """Where a learner's request goes: Traefik's port when the stage puts Traefik in front, else the app."""
        if any(process.name == self.stage.edge_process for process in self.processes):
            return f"http://{self.settings.host}:{self.settings.edge_port}"
        return self.settings.app_url


def _jaeger_answers(url: str) -> bool:
    try:
        response = requests.get(url + "/api/services", timeout=1)
        return response.ok and "data" in response.json()
    except (requests.RequestException, ValueError):
        return False


def plan_run(stage: Stage, settings: Settings, command: str | None = None) -> Plan:
    """What to start, with every port checked first: a taken port is named with the variable that moves it
    (and `command`, how the run was started: `make step3` unless said)."""
    python = shlex.quote(sys.executable)
    processes: list[Process] = []
    notes: list[str] = []
    port_check = PortCheck(settings.host, command or f"make {stage.name}")
    fake_github = ENDPOINT["fake_github"]

    if settings.github_api_url:
        github_api_url = settings.github_api_url
        notes.append(f"GitHub: {settings.github_api_url} (GITHUB_API_URL)")
    else:
        port_check.tcp(settings.fake_github_port, fake_github.variable)
        github_api_url = f"http://{settings.host}:{settings.fake_github_port}"
        processes.append(
            Process(
                "fake-github",
                f"{python} -m workshop fake-github --port {settings.fake_github_port}"
                + ("" if settings.fake_github_rate_limit else f" --rate-limit {LESSON_GITHUB_RATE_LIMIT}"),
                ready_url=github_api_url + "/",
            )
        )

    if stage.traced:
        if _jaeger_answers(settings.query_url):
            notes.append(f"traces: using the Jaeger API already answering at {settings.query_url}")
        elif settings.query_url_given:
            raise WorkshopError(f"no Jaeger query API answers at {settings.query_url}: is it running, at that address?")
        else:
            nobody = f", but no Jaeger API answers at {settings.query_url}"
            for endpoint in TRACE_STORE:
                port = settings.port(endpoint.name)
                if endpoint.protocol == "udp":
                    port_check.udp(port, endpoint.variable, nobody if endpoint.name == "jaeger_compact" else "")
                else:
                    port_check.tcp(port, endpoint.variable)
            ports = " ".join(f"{endpoint.flag} {settings.port(endpoint.name)}" for endpoint in TRACE_STORE)
            processes.append(
                Process(
                    "trace-store",
                    f"{python} -m workshop collector {ports} --docs {shlex.quote(str(ROOT))}",  # the lessons' READMEs
                    ready_url=settings.query_url + "/api/services",
                )
            )

    redis = None
    if stage.needs_redis:
        redis = plan_redis(settings.redis_url, settings.host, settings.redis_port, port_check)
        notes.append(redis.note)
        if redis.command:
            processes.append(Process("redis", redis.command))
    env = lesson_environment(
        settings.ports,
        github_api_url,
        host=settings.host,
        redis_url=redis.url if redis else None,
        otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),  # unless told otherwise: the store's
    )

    unknown = settings.without - set(stage.processes())
    if unknown:
        raise WorkshopError(
            f"WITHOUT names no process of {stage.name}: {', '.join(sorted(unknown))} "
            f"(its processes: {', '.join(stage.processes())})"
        )
    for name, command in stage.processes().items():
        if name in settings.without:
            notes.append(f"not started: {name} (WITHOUT)")
            continue
        port = None
        served = stage.http_ports.get(name)
        if served:
            port = settings.port(served)
            port_check.tcp(port, ENDPOINT[served].variable)
        processes.append(Process(name, command, cwd=str(stage.folder), ready_port=port))
    port_check.raise_if_any()
    return Plan(stage, settings, processes, env, notes, redis, _spans_elsewhere(stage, settings))


def _spans_elsewhere(stage: Stage, settings: Settings) -> str | None:
    """Lesson 7's "send the spans where nothing listens": OTEL_EXPORTER_OTLP_ENDPOINT names another address
    than the store's, so the demo's trace cannot arrive there. What to say instead of waiting for it."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint or not stage.traced or stage.facts.tracer != OPENTELEMETRY:
        return None
    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    local = url.hostname in ("localhost", "127.0.0.1", "::1", settings.host)
    if local and port == settings.otlp_http_port:
        return None
    try:
        with socket.create_connection((url.hostname or "localhost", port), timeout=1):
            listener = "which is not this run's trace store"
    except OSError:
        listener = "where nothing listens"
    return (
        f"The spans go to {endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT), {listener}: the trace store gets none, "
        "so its links below stay empty. The services say so in their log (spans dropped) once a minute."
    )


class Run:
    """One `make stepN`: the processes under honcho, and the demo in a thread beside them."""

    def __init__(
        self,
        plan: Plan,
        once: bool,
        console: Console | None = None,
        screenshot: Path | None = None,
        stream: TextIO | None = None,
    ):
        self.plan = plan
        self.screenshot = screenshot  # with it: save the demo trace's page as a PNG, then stop (like once)
        self.once = once or screenshot is not None or plan.check is not None
        # Every line goes out through one output that survives a closed one (a `| tee` that Ctrl-C ended, a
        # closed terminal): a write that fails is dropped, never an exception in the middle of stopping.
        self.output = SurvivingOutput(stream or sys.stdout)
        self.demo_output = MutableOutput(self.output)  # the demo's lines: none once a stop is asked
        self.console = console or Console(file=self.demo_output, highlight=False)
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()  # those received, for the "signals" thread
        self.manager = _honcho_manager(
            after_start=self._start_demo,
            output=self.output,
            on_signal=self._signal_received,
            stop_first=plan.stage.processes(),  # before what they use: Redis, the trace store, the fake GitHub
        )
        self.succeeded = False
        self.finished = threading.Event()
        self.stopped_by: int | None = None  # the signal that asked everything to stop (Ctrl-C, kill, a hang-up)
        self.stopped_before_the_demo_finished = False
        if plan.check is not None and hasattr(plan.check, "logs"):  # make check-stepN reads errors from them
            plan.check.logs = self.manager.printer.recent
        env = {**os.environ, **plan.env}
        for process in plan.processes:
            self.manager.add_process(process.name, _exec(process.command), env=env, cwd=process.cwd)

    def run(self) -> int:
        """0 or 1 (see below), or 128 + the signal that stopped it (Ctrl-C: 130): `exit_as_signalled` then."""
        # Closing the terminal (SIGHUP) stops everything, as Ctrl-C does; so does losing `make` (our parent).
        signal.signal(signal.SIGHUP, self._hang_up)
        self.manager.loop()  # starts the processes, then the demo; returns when every process has stopped
        self.manager.join_runners()
        if self.stopped_by is not None:
            if self.stopped_before_the_demo_finished:
                name = "Ctrl-C" if self.stopped_by == signal.SIGINT else signal.Signals(self.stopped_by).name
                Console(file=self.output, highlight=False).print(
                    f"[yellow]stopped as asked ({name}), before the demo had finished[/yellow]"
                )
            return 128 + self.stopped_by
        crashed = self.manager.stopped_on_their_own
        if crashed:
            codes = ", ".join(f"{name} (exit code {code})" for name, code in crashed.items())
            self.console.print(
                f"[red]{codes} stopped on its own, so everything else was stopped too: see its log above[/red]"
            )
            return 1
        if self.once:
            return 0 if self.succeeded else 1
        if not self.finished.is_set():
            self.console.print("[red]a process stopped before the stage was ready: see its log above[/red]")
            return 1
        return 0

    def _hang_up(self, signum: int, frame: object) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)  # the terminal is gone: writing to it would fail
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
        os.close(devnull)
        self._signal_received(signum)

    def _signal_received(self, signum: int, frame: object = None) -> None:
        """The handler of Ctrl-C, SIGTERM and SIGHUP only queues the signal (SimpleQueue.put may be called
        from a handler); the "signals" thread acts on it. Acting here, in the main thread between two of its
        bytecodes, printed while the main thread might be in the middle of a write, and a second signal ran
        its handler inside the first's: an error raised there would leave the runner waiting for process
        runners never told to stop (CI once saw a closed window leave everything running)."""
        self._signals.put(signum)

    def _act_on_signals(self) -> None:
        while True:
            self._stop_asked(self._signals.get())

    def _stop_asked(self, signum: int) -> None:
        """Ctrl-C, SIGTERM or SIGHUP: the first one stops everything, and is how the runner exits."""
        if self.stopped_by is None and not self.manager.stopping:
            self.stopped_by = signum
            self.stopped_before_the_demo_finished = not self.finished.is_set()
            self.demo_output.muted = True  # what the demo would say now is about the stop, not the lesson
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            self.manager.say(f"{name} received: stopping everything\n")
        self.manager.terminate()

    def _watch_parent(self, parent: int, terminal: bool) -> None:
        """`make` gone (killed, or its terminal closed) or, when we started in one, our terminal gone: stop
        too. A closed window's shell passes its SIGHUP on to us, but not every shell does (zsh's NO_HUP, a
        shell that died first): the terminal, hung up, is then no longer ours to open."""
        while not self.manager.stopping:
            if os.getppid() != parent:
                self.manager.terminate()
                return
            if terminal and not _has_terminal():
                self._hang_up(signal.SIGHUP, None)
                return
            time.sleep(0.5)

    def _start_demo(self) -> None:
        # (a signal received before now, while the runners were forked, waited in the queue)
        threading.Thread(target=self._act_on_signals, name="signals", daemon=True).start()
        watched = (os.getppid(), _has_terminal())
        threading.Thread(target=self._watch_parent, args=watched, name="parent", daemon=True).start()
        threading.Thread(target=self._demo, name="demo", daemon=True).start()

    def _say(self, text: str) -> None:
        self.console.print(text)

    def _demo(self) -> None:
        try:
            self.succeeded = self._show_demo()
        except Exception as error:  # the demo must never leave the processes running unattended
            self._say(f"[red]demo failed: {type(error).__name__}: {error}[/red]")
            self.succeeded = False
        self.finished.set()
        if self.once or not self.succeeded:
            self.manager.terminate()
        else:
            self._say("[bold]Running. Press Ctrl-C to stop everything.[/bold]")
            if self.plan.stage.traced and not any(p.name == "trace-store" for p in self.plan.processes):
                self._watch_borrowed_store()

    def _watch_borrowed_store(self) -> None:
        """The trace store this run uses is another's (another `make stepN`, a Jaeger): if it goes away, say
        so, rather than leave the printed links dead and the traces lost without a word. (A store of our own
        cannot be started now: honcho starts every process at once. Starting this lesson again does.)"""
        url, missed = self.plan.settings.query_url, 0
        while not self.manager.stopping:
            time.sleep(STORE_CHECK_INTERVAL)
            if _jaeger_answers(url):
                if missed >= 2:
                    self._say(f"[green]The trace store at {url} answers again.[/green]")
                missed = 0
                continue
            missed += 1
            if missed == 2 and not self.manager.stopping:  # twice in a row: not a blip
                self._say(
                    f"[red]The trace store at {url}, which this lesson borrowed (it was running already), has "
                    "stopped: new traces go nowhere and the links above no longer work. For a store of its "
                    f"own: Ctrl-C, then {self.plan.command} again.[/red]"
                )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.plan.settings.ready_timeout
        for process in self.plan.processes:
            if process.name == "redis" and self.plan.redis is not None:
                ready = self.plan.redis.wait_ready(deadline)
            elif process.ready_url:
                ready = wait_for_http(process.ready_url, deadline)
                if ready and process.name == "trace-store":  # it answers at once; a large journal loads meanwhile
                    ready = wait_for_journal(self.plan.settings.query_url, self._say)
                    deadline = max(deadline, time.monotonic() + 5)  # its journal's time is not the others'
            elif process.ready_port:
                ready = wait_for_tcp(self.plan.settings.host, process.ready_port, deadline)
            else:
                ready = True
            if not ready:
                self._say(
                    f"[red]{process.name} was not ready within {self.plan.settings.ready_timeout:g} s: "
                    "see its log above[/red]"
                )
                return False
        return True

    def _show_demo(self) -> bool:
        settings = self.plan.settings
        if not self._wait_ready():
            return False
        if self.plan.check is not None:  # make check-stepN: the checker instead of the demo
            for note in self.plan.notes:
                self._say(f"  {note}")
            return self.plan.check(self.console, self.plan.entry_url, settings.query_url, self.plan.services)
        demo = Demo(
            self.console,
            self.plan.entry_url,
            settings.demo_repo,
            settings.query_url,
            self.plan.services,
            settings.trace_timeout,
            self.once,
            self.plan.spans_elsewhere,
            self.output.lock,
            mistake=self.plan.mistake,
            browser_url=f"http://localhost:{settings.query_port}",
        )
        ok, trace_id = demo.run()
        self._print_urls(trace_id)
        if ok and trace_id and self.screenshot is not None:
            from workshop.runner.screenshot import take_screenshot

            url = f"{settings.query_url}/trace/{trace_id}"
            take_screenshot(url, self.screenshot, self.plan.stage.facts.screenshot_span)
            self._say(f"  the trace page, as a browser shows it: {self.screenshot}")
        return ok

    def _print_urls(self, trace_id: str | None) -> None:
        settings = self.plan.settings
        self._say("")
        for note in self.plan.notes:
            self._say(f"  {note}")
        if self.once:
            self._print_after_once(trace_id)
            return
        via = " (through Traefik)" if self.plan.entry_url != settings.app_url else ""
        self._say_command(f"the app{via}:", f"curl {self.plan.entry_url}/contributors/{settings.demo_repo}")
        if self.plan.stage.traced:
            browser = f"http://localhost:{settings.query_port}"  # the same addresses as Jaeger UI's
            services = self.plan.services
            entry = next(name for name in (*self.plan.stage.http_ports, *sorted(services)) if name in services)
            moved = f" --query-url {settings.query_url}" if settings.query_port != ENDPOINT["query"].default else ""
            if trace_id:
                self._say_command("this trace, in your browser:", f"{browser}/trace/{trace_id}", style="bold")
                self._say_command("in the terminal:", f"{_python()} -m workshop trace {trace_id} --all{moved}")
            self._say_command("every trace, as it arrives:", f"{browser}/search?service={entry}")
            self._say_command(
                "Jaeger's JSON:", f"curl '{settings.query_url}/api/traces?service={entry}&prettyPrint=true'"
            )

    def _say_command(self, label: str, command: str, style: str = "") -> None:
        say_command(self.console, label, command, style)

    def _print_after_once(self, trace_id: str | None) -> None:
        """ONCE=1 stops everything after this, the trace store too: say only what still works then."""
        self._say("  Everything stops now (ONCE=1). To keep it running and ask again:")
        self._say_command("", self.plan.command)
        if not (self.plan.stage.traced and trace_id):
            return
        journal = os.environ.get("TRACE_STORE_FILE")
        if not any(p.name == "trace-store" for p in self.plan.processes):
            self._say(f"  The trace stays in the Jaeger that was already running: {self.plan.settings.query_url}")
            return
        if journal:
            say_wrapped(self.console, self.console.width, f"This trace is kept in {journal}. To look at it again:", 2)
            self._say_command("", f"{_python()} -m workshop collector --journal {journal}")
            self._say_command("then, in another terminal:", f"{_python()} -m workshop trace {trace_id} --all")
        else:
            self._say("  The trace store stops too, and its traces with it. To keep them in a file:")
            self._say_command("", f"TRACE_STORE_FILE=traces.jsonl {self.plan.command} ONCE=1")


def _has_terminal() -> bool:
    """Whether this process has a controlling terminal (one a closed window has hung up it has no longer)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _honcho_manager(
    after_start: Callable[[], None], output: TextIO, on_signal: Callable[[int], None], stop_first: Iterable[str] = ()
):
    """honcho's Manager, calling `after_start` once it has forked its process runners: our threads
    start only then, so no fork happens in a process that already runs a second thread.

    honcho runs each process from a runner of its own (a multiprocessing worker) in our process group, so
    the signals a terminal sends to that group reach the runners too: Ctrl-C (SIGINT) and, when the window
    closes, SIGHUP. A runner that died of one would never report its process's exit, and the manager would
    wait for that report forever. So the runners ignore all three (from their first instruction: we block
    the signals while forking them), and only the processes they start get their usual signals back."""
    from honcho.manager import KILL_WAIT, Manager

    class ManagerThenDemo(Manager):
        stopped_on_their_own: dict[str, int] = {}  # replaced, never changed in place

        def __init__(self, *args, stop_first: Iterable[str] = (), **kwargs):
            super().__init__(*args, **kwargs)
            self._process_ctor = _SignalProofProcess
            self.stop_first = frozenset(stop_first)  # the lesson's own processes (see _killall)
            self._sigterm_sent: dict[str, float] = {}  # name -> when
            self._sigkill_sent: set[str] = set()

        def _start(self) -> None:
            for signum in (signal.SIGINT, signal.SIGTERM):  # ours rather than honcho's (set by loop())
                signal.signal(signum, lambda signum, frame: on_signal(signum))
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, RUNNER_SIGNALS)  # the runners start with them
            try:  # blocked, and ignore them before unblocking; ours arrive here once unblocked
                super()._start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            after_start()

        def loop(self) -> None:
            try:
                super().loop()
            except BaseException:  # none expected; but runners left waiting would keep us, and all, alive
                for process in self._processes.values():  # (SIGKILL, saying nothing: the output may be what broke)
                    if process.get("pid") and "returncode" not in process:
                        with contextlib.suppress(OSError):
                            self._procmgr.kill(process["pid"])
                raise

        def _killall(self, force: bool = False) -> None:
            """SIGTERM to the lesson's own processes first, and to what they use (Redis, the trace store, the
            fake GitHub) once they have stopped: a worker finishes its job and a tracer flushes its spans while
            Redis and the store still answer, and nobody warns of a Redis that went first. A process still
            running KILL_WAIT seconds after its SIGTERM gets SIGKILL (honcho's `kill`, called once a first
            process has stopped, sends it to no other)."""
            if not self._all_started():  # a stop asked so early that a runner has not said its process's pid
                retry = threading.Timer(0.1, self._killall, args=(force,))
                retry.daemon = True
                retry.start()
                return
            now = time.monotonic()
            if force:
                self._signal([name for name, sent in list(self._sigterm_sent.items()) if now - sent > KILL_WAIT], True)
                return
            first = [name for name in self._processes if name in self.stop_first]
            self._signal(first or list(self._processes), False)
            if first:
                threading.Thread(target=self._then_the_rest, args=(first,), name="stop", daemon=True).start()

        def _then_the_rest(self, first: list[str]) -> None:
            if not self._wait_stopped(first, KILL_WAIT):
                self._signal(first, True)  # one that ignores SIGTERM
                self._wait_stopped(first, 1)
            self._signal([name for name in self._processes if name not in first], False)

        def _wait_stopped(self, names: list[str], timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while not all("returncode" in self._processes[name] for name in names):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
            return True

        def _signal(self, names: list[str], force: bool) -> None:
            for name in names:
                process = self._processes[name]
                if "returncode" in process or (force and name in self._sigkill_sent):
                    continue
                self._system_print(f"sending {'SIGKILL' if force else 'SIGTERM'} to {name} (pid {process['pid']})\n")
                if force:
                    self._sigkill_sent.add(name)
                    self._procmgr.kill(process["pid"])
                else:
                    self._sigterm_sent[name] = time.monotonic()
                    self._procmgr.terminate(process["pid"])

        def say(self, text: str) -> None:
            self._system_print(text)

        @property
        def printer(self):
            return self._printer

        def join_runners(self, timeout: float = 10) -> None:
            """Wait for the runners too (each has reported its process's exit), so none is left behind."""
            for process in self._processes.values():
                if "process" in process:
                    process["process"].join(timeout)

        @property
        def stopping(self) -> bool:
            return self._terminating

        def terminate(self) -> None:
            """The first call says why everything stops: Ctrl-C, the demo, or a process that failed on its own
            (an exit code that is neither 0 nor the one Ctrl-C or SIGTERM gives)."""
            if not self._terminating:
                codes = {name: p.get("returncode") for name, p in self._processes.items()}
                self.stopped_on_their_own = {name: c for name, c in codes.items() if c not in STOPPED_BY_US}
            super().terminate()

    from workshop.runner.lesson_printer import LessonPrinter

    return ManagerThenDemo(printer=LessonPrinter(output), stop_first=stop_first)


RUNNER_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _signal_proof_runner_class():
    from honcho.process import Popen, Process

    class SignalProofProcess(Process):
        """honcho's process runner, which no signal for the whole process group stops (see above)."""

        def run(self, events=None, ignore_signals=False) -> None:
            for signum in RUNNER_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, RUNNER_SIGNALS)
            self._child_ctor = functools.partial(Popen, preexec_fn=_usual_signals)
            super().run(events, ignore_signals)

    return SignalProofProcess


def _usual_signals() -> None:
    """In the process a runner starts, before it executes its command: the signals as a process has them."""
    for signum in RUNNER_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


class _LazyRunnerClass:
    """honcho is imported only when a run starts (run_stage says how to install it if it is missing)."""

    def __call__(self, *args, **kwargs):
        return _signal_proof_runner_class()(*args, **kwargs)


_SignalProofProcess = _LazyRunnerClass()


class SurvivingOutput:
    """The runner's stdout, which a closed pipe or terminal does not stop: `make step3 | tee log` and Ctrl-C
    ends `tee` first, and every later write would fail (EPIPE) in the middle of stopping the processes. After
    the first failure, the output goes to /dev/null."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.lost = False
        self.lock = threading.RLock()  # held for a whole line (LessonPrinter) or the demo's answer (Demo)

    def write(self, text: str) -> int:
        with self.lock:
            try:
                return self.stream.write(text)
            except OSError:  # BrokenPipeError, EIO (a closed terminal)
                self._lose()
                return len(text)

    def flush(self) -> None:
        with self.lock:
            try:
                self.stream.flush()
            except OSError:
                self._lose()

    def _lose(self) -> None:
        self.lost = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        with contextlib.suppress(OSError):
            self.stream.flush()  # what was waiting in the buffer goes to /dev/null too

    def isatty(self) -> bool:
        return not self.lost and self.stream.isatty()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


class MutableOutput:
    """An output that says nothing once `muted`."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.muted = False

    def write(self, text: str) -> int:
        return len(text) if self.muted else self.stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


# A process that exits with one of these stopped as asked: 0, or by SIGINT/SIGTERM (as a signal, or 128 + it).
STOPPED_BY_US = {None, 0, -2, -15, 130, 143}
SIMPLE_COMMAND = re.compile(r"[A-Za-z0-9_./-]+(\s[^;&|<>`$()]*)?")


def _exec(command: str) -> str:
    """`exec` a simple command, so the shell honcho starts becomes the process (its own signals and exit code);
    a command with assignments or shell operators (`A=1 python x.py`, `a && b`) runs in the shell as written."""
    return f"exec {command}" if SIMPLE_COMMAND.fullmatch(command) else command


def exit_as_signalled(code: int) -> int:
    """A run that a signal stopped (`Run.run` gave 128 + it) ends as that signal would end it, so that the
    shell and `make` see what happened: bash's status 130 after Ctrl-C, make's "Interrupt" (not "Error 130")."""
    signum = code - 128
    if signum in RUNNER_SIGNALS:
        sys.stdout.flush()
        signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)
    return code


def _python() -> str:
    """How to call this Python from the project folder: `.venv/bin/python` for the Makefile's venv."""
    try:
        return str(Path(sys.executable).relative_to(ROOT))
    except ValueError:
        return "python"


def run_stage(
    stage: Stage,
    once: bool = False,
    settings: Settings | None = None,
    screenshot: Path | None = None,
    mistake: Mistake | None = None,
    check: Callable[[Console, str, str, set[str]], bool] | None = None,
    stream: TextIO | None = None,
    command: str | None = None,
) -> int:
    """Run `stage`; with `mistake`, `stage` is the scratch copy that has it (workshop.lessons.mistakes); with
    `check`, that runs instead of the demo (make check-stepN); `stream`: where its lines go (stdout); `command`:
    how the learner started it, when it is not `make stepN` (said again with ports moved, if one is taken)."""
    try:
        import honcho  # noqa: F401
    except ImportError:
        raise WorkshopError("honcho is not installed: run `make setup` first (make stepN does it for you)") from None
    settings = settings or Settings()
    if mistake is not None and mistake.demo_repo and "DEMO_REPO" not in os.environ:
        settings.demo_repo = mistake.demo_repo
    plan = plan_run(stage, settings, command)
    plan.check = check
    plan.given_command = command
    if mistake is not None:
        plan.mistake = mistake
        plan.env.update(mistake.environment)  # (a made-up GITHUB_TOKEN, said before the run: workshop.cli)
    prepare_toolchain(plan)
    return Run(plan, once, screenshot=screenshot, stream=stream).run()


def prepare_toolchain(plan: Plan, say: Callable[[str], None] = print) -> None:
    """Lesson 9's Traefik and Node.js packages, installed the first time they are needed (not for WITHOUT)."""
    _prepare(plan.stage, {process.name for process in plan.processes if process.cwd}, say)


def prepare_stage_tools(stage: Stage, say: Callable[[str], None] = print, wheelhouse: Path | None = None) -> None:
    """What every process of the stage needs beyond Python (`make prepare`, `make test` and, from a
    wheelhouse, `make setup WHEELHOUSE=<folder>` call it)."""
    _prepare(stage, set(stage.processes()), say, wheelhouse)


def _prepare(stage: Stage, started: set[str], say: Callable[[str], None], wheelhouse: Path | None = None) -> None:
    if stage.edge_process in started:
        ensure_traefik(say, wheelhouse=wheelhouse)
    if stage.node_project is not None and stage.facts.node_process in started:
        ensure_node_packages(stage.node_project, say, wheelhouse=wheelhouse)


JOURNAL_STALL_S = 30.0  # a journal's load that reads nothing more for this long has stopped


def wait_for_journal(query_url: str, say, poll_s: float = 0.5, stall_s: float = JOURNAL_STALL_S) -> bool:
    """Until the trace store has loaded its journal (TRACE_STORE_FILE), however long that takes while it reads
    on (it prints how far it is); False if it reads nothing more for `stall_s`, or stops answering."""
    import requests

    last, since = -1, time.monotonic()
    while True:
        try:
            journal = requests.get(query_url + "/api/stats", timeout=5).json().get("journal")
        except (requests.RequestException, ValueError):
            say("[red]the trace store stopped answering while it loaded its journal: see its log above[/red]")
            return False
        if not journal or journal.get("done"):
            return True
        if journal.get("read_bytes", 0) != last:
            last, since = journal.get("read_bytes", 0), time.monotonic()
        elif time.monotonic() - since > stall_s:
            say(f"[red]the trace store read no more of its journal {journal.get('path')} for {stall_s:g} s[/red]")
            return False
        time.sleep(poll_s)
