"""The lessons: which folder holds stage N, what its Procfile says it runs, and what each lesson is (LESSONS:
its tracer, Redis, Traefik, Node.js, ports): the one table the runner, doctor, wheelhouse and tests read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.ports import TRACE_STORE

ROOT = Path(__file__).resolve().parent.parent.parent
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


NO_TRACER, JAEGER_CLIENT, OPENTELEMETRY = "none", "jaeger-client", "opentelemetry"
# Procfile process -> the endpoint (workshop.ports) it serves HTTP on
MONOLITH = {"contributors": "app"}
GATEWAY_AND_PROXY = {"gateway": "app", "github-proxy": "github_proxy"}
BEHIND_TRAEFIK = {"traefik": "edge", **GATEWAY_AND_PROXY}


@dataclass(frozen=True)
class Facts:
    """What a lesson is, as the runner, the doctor, the wheelhouse, the screenshots and the tests ask it."""

    tracer: str = NO_TRACER  # NO_TRACER, JAEGER_CLIENT (UDP to the agent port) or OPENTELEMETRY (OTLP/HTTP)
    redis: bool = False  # a job queue in Redis, and a worker
    http_ports: Mapping[str, str] = field(default_factory=lambda: MONOLITH)  # process -> endpoint name
    node_process: str | None = None  # the process that runs on Node.js
    node_project: str | None = None  # its project's folder (in the lesson's): `npm ci` there
    opentracing_shim: bool = False  # OpenTelemetry under the OpenTracing API the lessons before it use
    instrumented_libraries: bool = False  # OpenTelemetry's instrumentations of requests and Redis
    screenshot_span: str | None = None  # the span its trace screenshot opens: the one its README points at


LESSONS = {
    1: Facts(),
    2: Facts(JAEGER_CLIENT),
    3: Facts(JAEGER_CLIENT, screenshot_span="github_request"),
    4: Facts(JAEGER_CLIENT, http_ports=GATEWAY_AND_PROXY, screenshot_span="stats"),
    5: Facts(JAEGER_CLIENT, redis=True, http_ports=GATEWAY_AND_PROXY, screenshot_span="handle_clean_job"),
    6: Facts(JAEGER_CLIENT, redis=True, http_ports=GATEWAY_AND_PROXY, screenshot_span="handle_clean_job"),
    7: Facts(
        OPENTELEMETRY,
        redis=True,
        http_ports=GATEWAY_AND_PROXY,
        opentracing_shim=True,
        screenshot_span="handle_clean_job",
    ),
    8: Facts(
        OPENTELEMETRY,
        redis=True,
        http_ports=GATEWAY_AND_PROXY,
        instrumented_libraries=True,
        screenshot_span="handle_clean_job",
    ),
    9: Facts(
        OPENTELEMETRY,
        redis=True,
        http_ports=BEHIND_TRAEFIK,
        node_process="github-proxy",
        node_project="github-proxy",
        instrumented_libraries=True,
        screenshot_span="GET /stats/:owner/:repo",
    ),  # the Node.js span: telemetry.sdk.language=nodejs
}


@dataclass(frozen=True)
class Stage:
    number: int
    folder: Path

    @property
    def name(self) -> str:
        return f"step{self.number}"

    @property
    def facts(self) -> Facts:
        try:
            return LESSONS[self.number]
        except KeyError:
            raise WorkshopError(
                f"{self.name} is not in LESSONS (workshop/lessons/stages.py): say there what it is"
            ) from None

    @property
    def tracer(self) -> str:
        return self.facts.tracer

    @property
    def traced(self) -> bool:
        return self.tracer != NO_TRACER

    @property
    def opentracing(self) -> bool:
        """Its code traces through the OpenTracing API (jaeger-client's, or lesson 7's shim over OpenTelemetry)."""
        return self.tracer == JAEGER_CLIENT or self.facts.opentracing_shim

    @property
    def needs_redis(self) -> bool:
        return self.facts.redis

    @property
    def http_ports(self) -> Mapping[str, str]:
        """Procfile process -> the endpoint it serves HTTP on, the entry (where a request comes in) first."""
        return self.facts.http_ports

    @property
    def edge_process(self) -> str | None:
        """The process in front of the gateway (lesson 9's Traefik), if there is one."""
        return next((process for process, endpoint in self.http_ports.items() if endpoint == "edge"), None)

    @property
    def node_project(self) -> Path | None:
        return self.folder / self.facts.node_project if self.facts.node_project else None

    @property
    def endpoints(self) -> set[str]:
        """The endpoints (workshop.ports) a run of this lesson serves on."""
        store = {endpoint.name for endpoint in TRACE_STORE} if self.traced else set()
        return {"fake_github", *self.http_ports.values(), *store, *(["redis"] if self.needs_redis else [])}

    def processes(self) -> dict[str, str]:
        """Procfile entries, name -> command. For a traced stage each name is also its tracer's service name."""
        return read_procfile(self.folder / "Procfile")


def read_procfile(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise WorkshopError(f"{path} is missing: every stage folder declares its processes there") from None
    processes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PROCFILE_LINE.match(line.strip())
        if not match:
            raise WorkshopError(f"{path}:{number}: expected 'name: command', got {line!r}")
        processes[match.group(1)] = match.group(2)
    if not processes:
        raise WorkshopError(f"{path} declares no process")
    return processes


STAGE_MARKER = "STAGE"  # at a stage tag (`make stage-tags`) the lesson is at the root, and this file names it


def stage_folders(root: Path = ROOT) -> list[Path]:
    """The lesson folders: `stepN_*` with a Procfile. (After `git checkout step3`, a folder left behind by
    files git ignores, such as lesson 9's node_modules, is not a lesson.)"""
    return sorted(folder for folder in root.glob("step[0-9]*_*") if (folder / "Procfile").is_file())


def all_stages(root: Path = ROOT) -> list[Stage]:
    stages = []
    for folder in stage_folders(root):
        stages.append(Stage(int(folder.name[4:].split("_")[0]), folder))
    marker = root / STAGE_MARKER
    if not stages and marker.is_file():  # `git checkout step3`: one lesson, at the root
        number = marker.read_text().strip().removeprefix("step")
        if number.isdigit():
            stages.append(Stage(int(number), root))
    return sorted(stages, key=lambda stage: stage.number)


def find_stage(name: str, root: Path = ROOT) -> Stage:
    """'step3', '3' or 'step3_tags_logs' -> that stage; a clear error otherwise."""
    stages = all_stages(root)
    wanted = name.removeprefix("step").split("_")[0]
    for stage in stages:
        if wanted == str(stage.number):
            return stage
    known = ", ".join(stage.name for stage in stages) or "none"
    raise WorkshopError(f"no stage {name!r}: the stages are {known}")


def previous_stage(stage: Stage, root: Path = ROOT) -> Stage:
    earlier = [other for other in all_stages(root) if other.number < stage.number]
    if not earlier:
        raise WorkshopError(f"{stage.name} is the first lesson: there is nothing to diff it against")
    return earlier[-1]
