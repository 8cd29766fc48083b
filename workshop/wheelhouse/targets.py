"""The laptops a room has (platform x CPython version), and which pinned packages each of them installs."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from workshop.errors import WorkshopError
from workshop.toolchain import this_platform

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# system, machine (as platform.machine() says it) -> the oldest OS the wheels must still run on
PLATFORMS = {
    "linux-x86_64": ("linux", "x86_64"),
    "linux-aarch64": ("linux", "aarch64"),
    "macos-x86_64": ("darwin", "x86_64"),
    "macos-arm64": ("darwin", "arm64"),
}
GLIBC_MINOR = 28  # manylinux_2_28: glibc 2.28 or newer (Debian 10, Ubuntu 20.04, RHEL 8 and later)
MACOS = (12, 0)  # macOS 12 Monterey or newer
LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
REQUIREMENT_LINE = re.compile(r"^[A-Za-z0-9][^#]*")


@dataclass(frozen=True)
class Target:
    """One kind of laptop: an OS and CPU (a key of PLATFORMS) and a CPython minor version."""

    platform: str
    python: str

    def __str__(self) -> str:
        return f"{self.platform} CPython {self.python}"

    @property
    def system(self) -> str:
        return PLATFORMS[self.platform][0]

    @property
    def machine(self) -> str:
        return PLATFORMS[self.platform][1]

    def platform_tags(self) -> list[str]:
        """Every platform tag a wheel for this laptop may carry, most specific first (what pip's --platform wants)."""
        if self.system == "darwin":
            return list(mac_platforms(MACOS, self.machine))
        tags = []
        for minor in range(GLIBC_MINOR, 4, -1):
            tags.append(f"manylinux_2_{minor}_{self.machine}")
            legacy = LEGACY_MANYLINUX.get(minor)
            if legacy and (self.machine == "x86_64" or minor == 17):
                tags.append(f"{legacy}_{self.machine}")
        return [*tags, f"linux_{self.machine}"]

    def tags(self) -> set[Tag]:
        version = tuple(int(part) for part in self.python.split("."))
        platforms = self.platform_tags()
        return {*cpython_tags(version, platforms=platforms), *compatible_tags(version, "cp", platforms)}

    def marker_environments(self) -> list[dict[str, str]]:
        """The environment markers see on this laptop: at the first and at a late patch release (pins can
        differ inside a minor version, as async-timeout's `python_full_version < '3.11.3'` does)."""
        common = {
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "os_name": "posix",
            "sys_platform": self.system,
            "platform_system": "Darwin" if self.system == "darwin" else "Linux",
            "platform_machine": self.machine,
            "python_version": self.python,
            "implementation_version": "",
            "platform_release": "",
            "platform_version": "",
        }
        return [{**common, "python_full_version": f"{self.python}.{patch}"} for patch in (0, 99)]

    def pins(self, requirement_files: Iterable[Path]) -> list[str]:
        """`name==version` for every pinned requirement this laptop installs from the files."""
        found: dict[str, str] = {}
        for path in requirement_files:
            for requirement in read_pins(path):
                marker = requirement.marker
                if marker is None or any(marker.evaluate(env) for env in self.marker_environments()):
                    found[f"{canonicalize_name(requirement.name)}{requirement.specifier}"] = ""
        return sorted(found)

    def installable(self, filename: str) -> bool:
        """Whether a file of the wheelhouse installs on this laptop (an sdist builds anywhere)."""
        if not filename.endswith(".whl"):
            return True
        return bool(parse_wheel_filename(filename)[3] & self.tags())


def read_pins(path: Path) -> list[Requirement]:
    """The requirements of a pinned file (as `make lock` writes it: one `name==version [; marker]` per line)."""
    requirements = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = REQUIREMENT_LINE.match(line)
        if not match:
            continue
        requirement = Requirement(match.group(0).strip())
        if len(requirement.specifier) != 1 or next(iter(requirement.specifier)).operator != "==":
            raise WorkshopError(f"{path.name}:{number}: {line.strip()!r} is not pinned with == (run `make lock`)")
        requirements.append(requirement)
    return requirements


def distribution(filename: str) -> tuple[str, str]:
    """(canonical name, version) of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
    else:
        name, version = parse_sdist_filename(filename)
    return canonicalize_name(name), str(version)


def this_machine() -> Target:
    """The target this machine is, or a clear error on a platform the wheelhouse does not cover."""
    system, machine = this_platform()
    for key, value in PLATFORMS.items():
        if value == (system, machine):
            return Target(key, f"{sys.version_info.major}.{sys.version_info.minor}")
    raise WorkshopError(f"the wheelhouse covers {', '.join(PLATFORMS)}; this machine is {system} on {machine}")


def choose_targets(platforms: str = "all", pythons: str = "all") -> list[Target]:
    """The targets `make wheelhouse PLATFORMS=... PYTHONS=...` names: `all`, `here` (this machine, this Python),
    or comma-separated lists."""
    if platforms == "here":
        here = this_machine()
        return [here] if pythons in ("all", "here") else [Target(here.platform, p) for p in _listed(pythons, PYTHONS)]
    chosen_platforms = list(PLATFORMS) if platforms == "all" else _listed(platforms, tuple(PLATFORMS))
    chosen_pythons = list(PYTHONS) if pythons == "all" else _listed(pythons, PYTHONS)
    return [Target(key, python) for key in chosen_platforms for python in chosen_pythons]


def _listed(value: str, known: tuple[str, ...]) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in items if item not in known]
    if unknown or not items:
        named = ", ".join(unknown) if unknown else repr(value)
        raise WorkshopError(f"unknown: {named}; choose all, here, or from {', '.join(known)}")
    return items
