"""The pinned requirements*.txt are generated from requirements*.in by `make lock`: exact pins, all of them."""

from __future__ import annotations

import re

import pytest

from tests.support.stage_loader import ROOT

LOCKS = ("requirements.txt", "requirements-dev.txt", "requirements-redis.txt", "requirements-traefik.txt")
PIN = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]*)==(?P<version>[^\s;]+)( ; (?P<marker>.+))?$")
NAME = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (ROOT / lock).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{lock}: not an exact pin: {line!r}"
        found.setdefault(canonical(match["name"]), []).append(match["version"])
    return found


def direct(source: str) -> set[str]:
    names = set()
    for line in (ROOT / source).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= direct(line.split()[1])
        elif line:
            names.add(canonical(NAME.match(line)["name"]))
    return names


@pytest.mark.parametrize("lock", LOCKS)
def test_each_lock_says_how_it_was_made_and_pins_every_direct_dependency(lock):
    text = (ROOT / lock).read_text()
    source = lock.replace(".txt", ".in")
    assert text.startswith(f"# Generated from {source} by uv") and "make lock" in text.splitlines()[2]
    assert direct(source) <= set(pins(lock)), direct(source) - set(pins(lock))


def test_the_dev_and_redis_locks_agree_with_the_runtime_lock():
    runtime = pins("requirements.txt")
    for lock in LOCKS[1:]:
        for name, versions in pins(lock).items():
            if name in runtime:
                assert versions == runtime[name], (lock, name)
    assert set(runtime) <= set(pins("requirements-dev.txt"))
