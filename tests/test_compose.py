"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs in CI)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.stage_loader import ROOT
from workshop.lessons.environment import lesson_environment
from workshop.lessons.stages import OPENTELEMETRY, all_stages
from workshop.ports import ENDPOINT, TRACE_STORE

INFRA = {"fake-github", "jaeger", "prometheus", "redis"}
STORAGE = {"jaeger-badger": "badger", "jaeger-cassandra": "cassandra"}  # profile -> Jaeger's storage backend
ONE_SHOT = {"jaeger-badger-data-owner"}  # runs once and exits: no health check, others wait for its success
# what the runner, the bench and the tests give every lesson process (the runner's own: PATH, Python's)
STAGE_ENVIRONMENT = set(lesson_environment({}, "http://github", redis_url="redis://redis")) - {
    "PATH",
    "PYTHONUNBUFFERED",
    "PYTHONWARNINGS",
}
PORT = re.compile(r"^\$\{(?P<variable>[A-Z_]+):-(?P<default>\d+)\}:(?P<container>\d+)(/udp)?$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def profile(compose: dict, name: str) -> dict[str, dict]:
    return {key: service for key, service in compose["services"].items() if name in service.get("profiles", [])}


def validation_errors(document: dict, tmp_path) -> list[str]:
    """What check-jsonschema says of the document, against the Compose Specification schema it ships."""
    path = tmp_path / "compose.json"
    path.write_text(json.dumps(document))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", "-o", "JSON", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(result.stdout)
    assert not report.get("parse_errors"), result.stdout
    assert (result.returncode == 0) == (report["status"] == "ok"), result.stderr
    return [f"{error['path']}: {error['message']}" for error in report["errors"]]


def test_valid_against_the_compose_specification(compose, tmp_path):
    assert validation_errors(compose, tmp_path) == []


def test_the_validation_would_catch_a_mistake(compose, tmp_path):
    broken = json.loads(json.dumps(compose))
    broken["services"]["jaeger"]["healthcheck"]["interval"] = 2  # a number where a duration string belongs
    broken["services"]["jaeger"]["port"] = ["16686:16686"]  # a misspelled key
    errors = validation_errors(broken, tmp_path)
    assert any("healthcheck.interval" in error for error in errors), errors
    assert any("'port'" in error for error in errors), errors


@pytest.mark.parametrize("stage", all_stages(), ids=lambda stage: stage.name)
def test_each_stage_profile_runs_exactly_its_procfile(compose, stage):
    services = profile(compose, stage.name)
    own = {name.removeprefix(f"{stage.name}-"): s for name, s in services.items() if name not in INFRA}
    assert set(services) - INFRA == {f"{stage.name}-{name}" for name in own}
    procfile = stage.processes()
    assert set(own) == set(procfile)
    for name, service in own.items():
        assert service["command"] == procfile[name]
        assert service["working_dir"] == f"/app/{stage.folder.name}"
        environment = service["environment"]
        assert set(environment) <= set(STAGE_ENVIRONMENT) | {"APP_HOST", "GITHUB_TOKEN"}
        if stage.tracer == OPENTELEMETRY:
            assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        elif stage.traced:
            assert environment["JAEGER_AGENT_HOST"] == "jaeger"
        if "REDIS_URL" in environment:
            assert environment["REDIS_URL"] == "redis://redis:6379/0"
        if "PROXY_URL" in environment:
            assert environment["PROXY_URL"] == f"http://{stage.name}-github-proxy:8481"
    assert any("GITHUB_API_URL" in service["environment"] for service in own.values())
    if stage.needs_redis:
        assert {name for name, service in own.items() if "REDIS_URL" in service["environment"]} == {"gateway", "worker"}
    traced = {"jaeger", "prometheus"} if stage.traced else set()  # Prometheus keeps Jaeger's span metrics
    expected_infra = {"fake-github"} | traced | ({"redis"} if stage.needs_redis else set())
    assert set(services) & INFRA == expected_infra


def test_no_service_outside_the_stage_or_storage_profiles(compose):
    stage_names = {stage.name for stage in all_stages()}
    for name, service in compose["services"].items():
        assert service.get("profiles"), f"{name} would start with every profile"
        assert set(service["profiles"]) <= stage_names or len(service["profiles"]) == 1 <= len(
            set(service["profiles"]) & set(STORAGE)
        ), name


def test_images_are_pinned_to_exact_multi_arch_tags(compose):
    images = {name: service["image"] for name, service in compose["services"].items() if "image" in service}
    # Jaeger v2's release of 2026-09, one version for every Jaeger of the file
    assert {image for image in images.values() if image.startswith("jaegertracing/")} == {"jaegertracing/jaeger:2.21.0"}
    assert re.fullmatch(r"redis:8\.\d+\.\d+", images["redis"])
    assert re.fullmatch(r"cassandra:5\.0\.\d+", images["cassandra"])  # Jaeger v2 supports Cassandra 4.x and 5.x
    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", images["prometheus"])
    for name, image in images.items():
        assert ":" in image and not image.endswith(":latest"), name
        assert "all-in-one" not in image  # Jaeger v1, end of life
        if "build" not in compose["services"][name]:
            assert re.search(r":v?\d+\.\d+\.\d+", image), f"{name}: {image} is not an exact version"
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim(-\w+)?", base)


def test_published_ports_are_configurable_and_avoid_airplay(compose):
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            match = PORT.match(mapping)
            assert match, f"{name}: {mapping} is not ${{VARIABLE:-default}}:port"
            assert match["default"] not in ("5000", "7000")
    jaeger = compose["services"]["jaeger"]["ports"]
    # every port of the local store, on Jaeger's own ports, moved by the same variables as `make stepN`
    assert set(jaeger) == {
        f"${{{e.variable}:-{e.default}}}:{e.default}" + ("/udp" if e.protocol == "udp" else "") for e in TRACE_STORE
    }
    for profile_name in STORAGE:  # a Jaeger that keeps its traces answers where the in-memory one does
        assert compose["services"][profile_name]["ports"] == jaeger


def test_healthchecks_and_ordered_start(compose):
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service["restart"] == "no" and "healthcheck" not in service
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": wanted}, name
            assert dependency in compose["services"]


def jaeger_config(service: dict) -> dict:
    """The Jaeger v2 configuration file a service starts with (mounted from ./jaeger)."""
    assert service["command"][0] == "--config" and "./jaeger:/etc/jaeger:ro" in service["volumes"]
    return yaml.safe_load((ROOT / "jaeger" / Path(service["command"][1]).name).read_text())


@pytest.mark.parametrize("profile_name", sorted(STORAGE))
def test_each_storage_receives_what_the_in_memory_jaeger_receives(compose, profile_name):
    config = jaeger_config(compose["services"][profile_name])
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp", "jaeger", "zipkin"]
    receivers = config["receivers"]
    listens = {name: f"0.0.0.0:{endpoint.default}" for name, endpoint in ENDPOINT.items()}  # where the store does
    assert receivers["otlp"]["protocols"]["http"]["endpoint"] == listens["otlp_http"]
    assert receivers["jaeger"]["protocols"]["thrift_compact"]["endpoint"] == listens["jaeger_compact"]
    assert receivers["jaeger"]["protocols"]["thrift_binary"]["endpoint"] == listens["jaeger_binary"]
    assert receivers["zipkin"]["endpoint"] == listens["zipkin"]
    extensions = config["extensions"]
    assert set(config["service"]["extensions"]) == set(extensions)
    assert extensions["jaeger_query"]["http"]["endpoint"] == listens["query"]
    assert extensions["remote_sampling"]["http"]["endpoint"] == listens["sampling"]
    sampling = extensions["remote_sampling"]["file"]["path"]
    assert json.loads((ROOT / "jaeger" / Path(sampling).name).read_text())["default_strategy"]["param"] == 1.0
    store = extensions["jaeger_query"]["storage"]["traces"]
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == store
    assert list(extensions["jaeger_storage"]["backends"][store]) == [STORAGE[profile_name]]


def test_the_docker_jaeger_computes_span_metrics_as_jaegers_config_spm_does(compose):
    """The Monitor tab under DOCKER=1: spanmetrics connector -> prometheus exporter -> Prometheus -> the query."""
    services = compose["services"]
    config = jaeger_config(services["jaeger"])
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["jaeger_storage_exporter", "spanmetrics"]
    assert pipelines["metrics/spanmetrics"] == {"receivers": ["spanmetrics"], "exporters": ["prometheus"]}
    assert "spanmetrics" in config["connectors"]
    storage = config["extensions"]["jaeger_storage"]
    metrics = config["extensions"]["jaeger_query"]["storage"]["metrics"]
    assert storage["metric_backends"][metrics]["prometheus"]["endpoint"] == "http://prometheus:9090"
    scraped = config["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    prometheus = yaml.safe_load((ROOT / "jaeger" / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == [f"jaeger:{scraped}"]
    assert services["jaeger"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    assert "/etc/jaeger/prometheus.yml" in services["prometheus"]["command"][0]


def test_badger_keeps_traces_on_a_volume_its_user_owns(compose):
    services, volumes = compose["services"], compose["volumes"]
    badger = jaeger_config(services["jaeger-badger"])["extensions"]["jaeger_storage"]["backends"]["traces_on_disk"]
    assert badger["badger"]["ephemeral"] is False
    assert all(path.startswith("/badger/data/") for path in badger["badger"]["directories"].values())
    assert "jaeger-badger-data:/badger" in services["jaeger-badger"]["volumes"] and "jaeger-badger-data" in volumes
    owner = services["jaeger-badger-data-owner"]
    assert owner["user"] == "0" and owner["volumes"] == ["jaeger-badger-data:/badger"]
    assert "chown -R 10001:10001 /badger" in owner["entrypoint"][-1]  # the user Jaeger's image runs as


def test_cassandra_is_healthy_before_jaeger_creates_its_schema(compose):
    services = compose["services"]
    cassandra = jaeger_config(services["jaeger-cassandra"])["extensions"]["jaeger_storage"]["backends"]
    schema, connection = cassandra["traces_in_cassandra"]["cassandra"].values()
    assert schema["create"] is True and schema["datacenter"] == services["cassandra"]["environment"]["CASSANDRA_DC"]
    assert connection["servers"] == ["cassandra"]
    assert services["jaeger-cassandra"]["depends_on"] == {"cassandra": {"condition": "service_healthy"}}
    assert services["cassandra"]["healthcheck"]["test"][:2] == ["CMD", "cqlsh"]
    assert "cassandra-data:/var/lib/cassandra" in services["cassandra"]["volumes"]


def test_dockerfile_installs_the_same_pinned_requirements_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.txt ." in dockerfile
    assert re.search(r"pip install .*-r requirements\.txt", dockerfile)
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    runtime = (ROOT / "requirements.txt").read_text()
    assert "pytest" not in runtime and "ruff" not in runtime  # no dev tools in the image
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert all(line in dev.splitlines() for line in runtime.splitlines() if re.match(r"^[a-z]", line))


def test_without_an_engine_docker_mode_says_so_in_one_line():
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "run", "step3", "--docker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines == ["No Docker engine answers here (`docker info` fails): run `make step3`, which needs no Docker."]
