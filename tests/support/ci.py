"""A test that needs something this machine may lack: a skip that says why, and in CI a failure."""

from __future__ import annotations

import os

import pytest


def require(missing: str | None, what: str) -> None:
    """`missing`: why the test cannot run here, or None. CI (CI=true) must run every test, so there it fails."""
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"CI must run {what}: {missing}")
    if missing:
        pytest.skip(missing)
