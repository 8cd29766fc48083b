"""Lesson 9's tools beyond Python: each problem said plainly, nothing installed twice."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from workshop import toolchain
from workshop.errors import WorkshopError


def fake_tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_windows_is_told_to_use_wsl_or_docker(monkeypatch):
    monkeypatch.setattr(toolchain, "traefik_binary", lambda: None)
    monkeypatch.setattr(toolchain.sys, "platform", "win32")
    with pytest.raises(WorkshopError, match="no Windows build: run lesson 9 under WSL, or with DOCKER=1"):
        toolchain.ensure_traefik(say=lambda text: None)


def test_an_unsupported_machine_is_named(monkeypatch):
    monkeypatch.setattr(toolchain, "traefik_binary", lambda: None)
    monkeypatch.setattr(toolchain.sys, "platform", "linux")
    monkeypatch.setattr(toolchain.platform, "machine", lambda: "riscv64")
    with pytest.raises(WorkshopError, match="no build for linux on riscv64"):
        toolchain.ensure_traefik(say=lambda text: None)


def test_an_old_node_is_named_with_the_version_needed(tmp_path):
    fake_tool(tmp_path, "node", "echo v18.19.1")
    with pytest.raises(WorkshopError, match=r"needs Node.js 20.6.0 or newer; this `node` is 18.19.1"):
        toolchain.ensure_node_packages(tmp_path, say=lambda text: None, path=str(tmp_path))


def test_npm_missing_beside_node_is_named(tmp_path):
    fake_tool(tmp_path, "node", "echo v20.20.2")
    (tmp_path / "package-lock.json").write_text("{}")
    with pytest.raises(WorkshopError, match="npm is not"):
        toolchain.ensure_node_packages(tmp_path, say=lambda text: None, path=str(tmp_path))


def test_npm_ci_runs_once_per_lock_file(tmp_path):
    fake_tool(tmp_path, "node", "echo v20.20.2")
    fake_tool(tmp_path, "npm", 'mkdir -p node_modules; echo ran >> "$0.log"')
    lock = tmp_path / "package-lock.json"
    lock.write_text('{"lockfileVersion": 3}')
    said: list[str] = []
    for _ in range(2):
        toolchain.ensure_node_packages(tmp_path, say=said.append, path=str(tmp_path))
    assert (tmp_path / "npm.log").read_text() == "ran\n" and len(said) == 1
    stamp = (tmp_path / "node_modules" / toolchain.STAMP).read_text().strip()
    assert stamp == hashlib.sha256(lock.read_bytes()).hexdigest()
    lock.write_text('{"lockfileVersion": 3, "changed": true}')  # a new lock: installed again
    toolchain.ensure_node_packages(tmp_path, say=said.append, path=str(tmp_path))
    assert (tmp_path / "npm.log").read_text() == "ran\nran\n"


def test_a_failing_npm_ci_shows_the_end_of_its_output(tmp_path):
    fake_tool(tmp_path, "node", "echo v20.20.2")
    fake_tool(tmp_path, "npm", "echo 'npm error network ENOTFOUND registry.npmjs.org' >&2; exit 1")
    (tmp_path / "package-lock.json").write_text("{}")
    with pytest.raises(WorkshopError, match="npm ci failed \\(exit code 1\\): npm error network ENOTFOUND"):
        toolchain.ensure_node_packages(tmp_path, say=lambda text: None, path=str(tmp_path))
