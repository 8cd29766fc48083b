"""The lessons: which folder holds stage N, and what its Procfile says it runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from workshop.errors import WorkshopError

ROOT = Path(__file__).resolve().parent.parent.parent
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


@dataclass(frozen=True)
class Stage:
    number: int
    folder: Path

    @property
    def name(self) -> str:
        return f"step{self.number}"

    @property
    def traced(self) -> bool:
        return self.number >= 2

    @property
    def opentelemetry(self) -> bool:
        """Lessons 7 on trace with OpenTelemetry and send OTLP; lessons 2-6 use jaeger-client over UDP."""
        return self.number >= 7

    @property
    def needs_redis(self) -> bool:
        return self.number >= 5

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
