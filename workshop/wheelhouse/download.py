"""`make wheelhouse`: download what every laptop of the room installs, into one folder, with the network.

<folder>/python/     wheels for each target (and the sdists of the few packages PyPI has no wheel of,
                     with the build tools pip needs to build them offline)
<folder>/npm/        an npm cache holding lesson 9's packages (`npm ci --offline --cache <folder>/npm`)
<folder>/MANIFEST.json  which file each target installs, per package
<folder>/README.txt  how to install from it
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.lessons.stages import ROOT, all_stages
from workshop.toolchain import run_installer
from workshop.wheelhouse.targets import Target, distribution

REQUIREMENT_FILES = ("requirements.txt", "requirements-dev.txt", "requirements-redis.txt", "requirements-traefik.txt")
BUILD_TOOLS = ("setuptools", "wheel")  # what pip asks for to build an sdist with no pyproject.toml
DOWNLOAD_TIMEOUT = 1800.0  # seconds for one pip or npm download, on a room's slow network
README = """\
The tracing workshop's wheelhouse: every package its lessons install, for {targets}.

Install a laptop from it, with no network, from the workshop's folder (wherever this folder is now,
on the stick or copied to the laptop):

    make setup WHEELHOUSE=/path/to/this/folder

which runs `pip install --no-index --find-links <this folder>/python ...` and, for lesson 9,
`npm ci --offline --cache <this folder>/npm`. Then `make doctor` says whether every lesson can run.
"""


def pip_download(target: Target, pins: list[str], destination: Path) -> None:
    """Every pin's file for `target`: its wheel if PyPI has one for that laptop, else the sdist."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write("\n".join(pins) + "\n")
        requirements.flush()
        platforms = [flag for tag in target.platform_tags() for flag in ("--platform", tag)]
        abi = "cp" + target.python.replace(".", "")
        run_installer(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--prefer-binary",
                *platforms,
                "--python-version",
                target.python,
                "--implementation",
                "cp",
                "--abi",
                abi,
                "--dest",
                str(destination),
                "-r",
                requirements.name,
            ],
            None,
            f"pip could not download the packages for {target}",
            DOWNLOAD_TIMEOUT,
        )


def build_requirements(sdist: Path) -> list[str]:
    """What an sdist's pyproject.toml says building it needs (pip's default when it says nothing)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with tarfile.open(sdist) as archive:
        top = [m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/pyproject.toml")]
        member = top[0] if top else None
        if member is None:
            return list(BUILD_TOOLS)
        data = tomllib.loads(archive.extractfile(member).read().decode())
    return data.get("build-system", {}).get("requires", list(BUILD_TOOLS))


def download_build_tools(destination: Path) -> list[str]:
    """The build tools of every sdist in `destination` (pure-Python wheels, with their dependencies)."""
    wanted = set(BUILD_TOOLS)
    for sdist in sorted(destination.glob("*.tar.gz")):
        wanted.update(build_requirements(sdist))
    wanted_list = sorted(wanted)
    run_installer(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--dest",
            str(destination),
            *wanted_list,
        ],
        None,
        "pip could not download the tools that build the sdists",
        DOWNLOAD_TIMEOUT,
    )
    return wanted_list


def npm_download(project: Path, cache: Path) -> None:
    """Lesson 9's packages into an npm cache: `npm ci` of a copy of its project, with that cache."""
    npm = shutil.which("npm")
    if npm is None:
        raise WorkshopError("npm is not on PATH: the wheelhouse needs it once for lesson 9's Node.js packages")
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(project / name, Path(scratch) / name)
        run_installer(
            [npm, "ci", "--cache", str(cache), "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            Path(scratch),
            "npm could not download lesson 9's packages",
            DOWNLOAD_TIMEOUT,
        )


def manifest(targets: Iterable[Target], pins: dict[Target, list[str]], folder: Path) -> dict:
    """Which file each target installs for each pin; an error names any pin a target has no file for."""
    files: dict[tuple[str, str], list[str]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".whl" or path.name.endswith(".tar.gz"):
            files.setdefault(distribution(path.name), []).append(path.name)
    document: dict = {"targets": {}}
    missing = []
    for target in targets:
        chosen = {}
        for pin in pins[target]:
            name, version = pin.split("==")
            candidates = [f for f in files.get((name, version), []) if target.installable(f)]
            wheels = [f for f in candidates if f.endswith(".whl")]
            if not candidates:
                missing.append(f"{pin} for {target}")
            chosen[pin] = (wheels or candidates)[:1]
        document["targets"][str(target)] = chosen
    if missing:
        raise WorkshopError("the wheelhouse has no file for: " + "; ".join(missing))
    document["build_from_source"] = sorted(
        {
            f"{pin} ({target})"
            for target in targets
            for pin, chosen in document["targets"][str(target)].items()
            if chosen and not chosen[0].endswith(".whl")
        }
    )
    return document


def build(folder: Path, targets: list[Target], say: Callable[[str], None] = print, root: Path = ROOT) -> dict:
    python = folder / "python"
    python.mkdir(parents=True, exist_ok=True)
    requirement_files = [root / name for name in REQUIREMENT_FILES]
    pins = {target: target.pins(requirement_files) for target in targets}
    for number, target in enumerate(targets, 1):
        say(f"[{number}/{len(targets)}] {target}: {len(pins[target])} packages")
        pip_download(target, pins[target], python)
    tools = download_build_tools(python)
    say(f"build tools for the sdists: {', '.join(tools)}")
    for stage in all_stages(root):
        if stage.node_project is not None:
            say(f"lesson {stage.number}'s Node.js packages (npm ci into the wheelhouse's cache)")
            npm_download(stage.node_project, folder / "npm")
    document = manifest(targets, pins, python)
    document["build_tools"] = tools
    (folder / "MANIFEST.json").write_text(json.dumps(document, indent=2) + "\n")
    (folder / "README.txt").write_text(README.format(targets=", ".join(map(str, targets))))
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    kinds = f"{len(targets)} kinds of laptop" if len(targets) > 1 else str(targets[0])
    say(f"{folder}: {size / 2**20:.0f} MB for {kinds}")
    return document
