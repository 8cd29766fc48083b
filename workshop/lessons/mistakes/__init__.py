"""Each lesson's classic mistakes, runnable: `make step5 MISTAKE=job-without-context` runs lesson 5 with one
typical mistake in its code, so that a learner sees the broken trace and the trace doctor's words together.

A mistake is a small patch against its lesson's folder (`<name>.patch` beside this file), applied with
`git apply` to a scratch copy of the folder, never to the lesson itself. This table says what each one is:
the one line a learner reads, and what the trace doctor must find (the tests hold every mistake to it).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.lessons.stages import Stage

PATCHES = Path(__file__).resolve().parent
# For the mistakes that put a credential where it must not be: the run gets this made-up token instead of any
# GITHUB_TOKEN of the learner's (the fake GitHub takes any), so a real one never reaches a span.
MADE_UP_TOKEN = "ghp_workshop0madeup0token0not0a0real0one"


@dataclass(frozen=True)
class Mistake:
    name: str
    lesson: int
    says: str  # one line: what the code does wrong
    finding: str  # the kind of the trace doctor's finding it makes (workshop.tracestore.diagnosis)
    names: tuple[str, ...]  # what that finding's title names: the services and spans involved
    lacks: frozenset[str] = frozenset()  # services whose spans the demo's trace no longer has
    demo_repo: str | None = None  # the repository the demo asks for, when the mistake shows only there
    environment: Mapping[str, str] = field(default_factory=dict)
    carrier: str = ""  # a lost hop's: where the finding says the context should have travelled

    @property
    def stage(self) -> str:
        return f"step{self.lesson}"

    @property
    def patch(self) -> Path:
        return PATCHES / f"{self.name}.patch"

    def diff(self) -> str:
        return self.patch.read_text()


TOKEN = {"GITHUB_TOKEN": MADE_UP_TOKEN}
ONLY_GATEWAY = frozenset({"worker"})

MISTAKES: dict[str, Mistake] = {
    mistake.name: mistake
    for mistake in (
        Mistake(
            "span-never-finished",
            2,
            "get_repo_contributors's span is started but never finished, so never sent",
            "missing_parent",
            ("contributors' github_request",),
        ),
        Mistake(
            "error-not-marked",
            3,
            "a 5xx answer gets its status code tagged, and no error mark",
            "error_not_marked",
            ("contributors' contributors", "502"),
            demo_repo="a/server-error",
        ),
        Mistake(
            "token-in-a-tag",
            3,
            "the request's headers, Authorization and its token included, recorded as a tag",
            "secret",
            ("contributors' github_request", "http.request.headers"),
            environment=TOKEN,
        ),
        Mistake(
            "proxy-call-without-headers",
            4,
            "the gateway calls the github-proxy without injecting the trace context into the headers",
            "lost_context",
            ("github-proxy's stats", "gateway's call_github_proxy", "the request carried no trace context"),
            lacks=frozenset({"github-proxy"}),
            carrier="the request's headers, as uber-trace-id",
        ),
        Mistake(
            "job-without-context",
            5,
            "the gateway puts the job in Redis without its trace context",
            "lost_context",
            ("worker's handle_clean_job", "gateway's send_clean_job", "the job carried no trace context"),
            lacks=ONLY_GATEWAY,
            carrier="the job's body, as uber-trace-id",
        ),
        Mistake(
            "worker-ignores-the-context",
            5,
            "the worker starts its span without the context that came inside the job",
            "lost_context",
            ("worker's handle_clean_job", "gateway's send_clean_job", "the job carried no trace context"),
            lacks=ONLY_GATEWAY,
            carrier="the job's body, as uber-trace-id",
        ),
        Mistake(
            "secret-in-baggage",
            6,
            "the gateway puts a GitHub token in baggage, for the services downstream",
            "secret",
            ("gateway's contributors", "baggage 'auth-token'"),
            environment=TOKEN,
        ),
        Mistake(
            "heavy-baggage",
            6,
            "the gateway puts the request's headers in baggage, past the lesson's 64-byte limit",
            "oversized_baggage",
            ("gateway's contributors", "request.headers"),
        ),
        Mistake(
            "baggage-set-after-the-call",
            6,
            "the gateway sets the baggage after calling the github-proxy: that call carries none of it",
            "baggage_lost",
            ("github-proxy's stats", "'client'", "gateway's contributors"),
        ),
        Mistake(
            "shim-extract-drops-baggage",
            7,
            "the worker reads the job's context with the shim's extract(), which drops the baggage",
            "baggage_lost",
            ("worker's handle_clean_job", "'client'", "gateway's contributors"),
        ),
        Mistake(
            "baggage-on-the-span",
            7,
            "baggage set with the shim's span.set_baggage_item(), which keeps it in that one span",
            "baggage_lost",
            ("github-proxy's stats", "'client'", "gateway's contributors"),
        ),
        Mistake(
            "propagators-disagree",
            8,
            "the worker reads only B3 headers from the job; the gateway writes W3C's and Jaeger's",
            "lost_context",
            ("worker's handle_clean_job", "gateway's send_clean_job", "worker read no trace context from the job"),
            lacks=ONLY_GATEWAY,
            carrier="the job's body, in the formats gateway's OTEL_PROPAGATORS names",
        ),
        Mistake(
            "authorization-in-an-attribute",
            8,
            "the github-proxy records GitHub's Authorization header as an attribute",
            "secret",
            ("github-proxy's get_repo_contributors", "http.request.header.authorization"),
            environment=TOKEN,
        ),
        Mistake(
            "traefik-speaks-b3",
            9,
            "Traefik sends B3 headers (OTEL_PROPAGATORS=b3multi), which the gateway does not read",
            "lost_context",
            ("gateway's GET /contributors/<owner>/<repo>", "traefik's", "their propagators disagree"),
            lacks=frozenset({"traefik"}),
            carrier="the request's headers, in the formats traefik's OTEL_PROPAGATORS names",
        ),
    )
}


def mistakes_of(stage: Stage | str) -> list[Mistake]:
    name = stage if isinstance(stage, str) else stage.name
    return [mistake for mistake in MISTAKES.values() if mistake.stage == name]


def find_mistake(name: str, stage: Stage) -> Mistake:
    """The mistake `name` of `stage`, or an error that says which names there are (and where a name belongs)."""
    mistake = MISTAKES.get(name)
    if mistake is not None and mistake.stage == stage.name:
        return mistake
    if mistake is not None:
        raise WorkshopError(
            f"{name} is a mistake of {mistake.stage}, not {stage.name}:\n  make {mistake.stage} MISTAKE={name}"
        )
    own = [m.name for m in mistakes_of(stage)]
    near = difflib.get_close_matches(name, list(MISTAKES), n=1)
    guess = f"Did you mean {near[0]} ({MISTAKES[near[0]].stage})?\n" if near else ""
    listed = ", ".join(own) or "none"
    raise WorkshopError(f"no mistake {name!r}. {guess}{stage.name}'s: {listed}. make mistakes lists them all.")


@contextlib.contextmanager
def scratch_copy(stage: Stage, mistake: Mistake) -> Iterator[Stage]:
    """The lesson's folder copied to a scratch folder, with the mistake's patch applied (`git apply`): the stage
    to run. Removed afterwards. A Node.js project's installed packages are linked, not copied."""
    if shutil.which("git") is None:
        raise WorkshopError("MISTAKE= applies its patch with git, which is not on PATH: install git")
    parent = Path(tempfile.mkdtemp(prefix=f"workshop-{stage.name}-{mistake.name}-"))
    try:
        folder = parent / stage.folder.name
        shutil.copytree(stage.folder, folder, ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
        if stage.node_project is not None and (stage.node_project / "node_modules").is_dir():
            (folder / stage.node_project.name / "node_modules").symlink_to(stage.node_project / "node_modules")
        apply_patch(mistake.patch, folder)
        yield Stage(stage.number, folder)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def apply_patch(patch: Path, folder: Path, reverse: bool = False) -> None:
    """`git apply` in `folder` (`reverse`: taken back out), which is not in a repository (git looks no further
    up than its parent)."""
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}
    command = ["git", "apply", "--whitespace=nowarn", *(["--reverse"] if reverse else []), str(patch)]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise WorkshopError(f"{patch.name} does not apply to {folder.name} (has the lesson changed?): {done.stderr}")
