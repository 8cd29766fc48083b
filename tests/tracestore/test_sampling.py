"""Remote sampling on 5778: Jaeger's strategies file, served as Jaeger serves it, and followed by real
jaeger-client tracers whose config omits `sampler` (they poll, then adopt the strategy)."""

from __future__ import annotations

import json
import os
import time

import pytest
import requests
from jaeger_client import Config
from jaeger_client.sampler import AdaptiveSampler, ProbabilisticSampler, RateLimitingSampler

from workshop.errors import WorkshopError
from workshop.tracestore.collector import CollectorConfig, running_collector

STRATEGIES = {
    "default_strategy": {"type": "probabilistic", "param": 0.5},
    "service_strategies": [
        {"service": "gateway", "type": "probabilistic", "param": 0.25},
        {"service": "worker", "type": "ratelimiting", "param": 2},
        {
            "service": "github-proxy",
            "type": "probabilistic",
            "param": 0.8,
            "operation_strategies": [{"operation": "health", "type": "probabilistic", "param": 0.0}],
        },
    ],
}


@pytest.fixture
def strategies(tmp_path):
    path = tmp_path / "strategies.json"
    path.write_text(json.dumps(STRATEGIES))
    return path


def ask(collector, service: str, path: str = "/sampling") -> dict:
    answer = requests.get(f"http://127.0.0.1:{collector.sampling_port}{path}", params={"service": service}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_answers_in_jaegers_shapes_and_reads_the_file_again_when_it_changes(strategies):
    with running_collector(CollectorConfig.on_free_ports(sampling_strategies=strategies)) as collector:
        assert ask(collector, "gateway") == {
            "strategyType": "PROBABILISTIC",
            "probabilisticSampling": {"samplingRate": 0.25},
        }
        assert ask(collector, "worker", "/") == {
            "strategyType": "RATE_LIMITING",
            "rateLimitingSampling": {"maxTracesPerSecond": 2},
        }
        proxy = ask(collector, "github-proxy", "/api/sampling")
        assert proxy["operationSampling"] == {
            "defaultSamplingProbability": 0.8,
            "defaultLowerBoundTracesPerSecond": 0,
            "perOperationStrategies": [{"operation": "health", "probabilisticSampling": {"samplingRate": 0.0}}],
        }
        assert ask(collector, "someone-else")["probabilisticSampling"] == {"samplingRate": 0.5}
        assert requests.get(f"http://127.0.0.1:{collector.sampling_port}/sampling", timeout=5).status_code == 400
        changed = {**STRATEGIES, "service_strategies": [{"service": "gateway", "type": "probabilistic", "param": 0.1}]}
        strategies.write_text(json.dumps(changed))
        os.utime(strategies, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert ask(collector, "gateway")["probabilisticSampling"] == {"samplingRate": 0.1}
        strategies.write_text("{broken")
        os.utime(strategies, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
        assert ask(collector, "gateway")["probabilisticSampling"] == {"samplingRate": 0.1}  # the last good ones
        stats = collector.statistics()["sampling"]
        assert stats["reloads"] == 1 and stats["bad_files"] == 1


def test_without_a_file_everything_is_sampled():
    with running_collector(CollectorConfig.on_free_ports()) as collector:
        assert ask(collector, "gateway")["probabilisticSampling"] == {"samplingRate": 1.0}


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not JSON"),
        ('{"default_strategy": {"type": "sometimes", "param": 1}}', "type is probabilistic or ratelimiting"),
        ('{"default_strategy": {"type": "probabilistic", "param": 2}}', "a probability from 0 to 1"),
        ('{"service_strategies": [{"type": "probabilistic", "param": 1}]}', "names its service"),
        ('{"service_strategies": {}}', "service_strategies is a list"),
        ("[]", "a JSON object"),
    ],
)
def test_an_unusable_strategies_file_is_a_clear_error_at_start(tmp_path, content, message):
    path = tmp_path / "strategies.json"
    path.write_text(content)
    with pytest.raises(WorkshopError, match=message):
        running_collector(CollectorConfig.on_free_ports(sampling_strategies=path)).__enter__()
    with pytest.raises(WorkshopError, match="no such file"):
        running_collector(CollectorConfig.on_free_ports(sampling_strategies=tmp_path / "none.json")).__enter__()


def remote_tracer(service: str, collector):
    """A jaeger-client tracer as the seeds configure one: no `sampler`, so it asks the agent's port 5778."""
    config = Config(
        config={
            "local_agent": {
                "reporting_host": "127.0.0.1",
                "reporting_port": collector.jaeger_compact_port,
                "sampling_port": collector.sampling_port,
            },
            "sampling_refresh_interval": 0.2,
            "logging": False,
        },
        service_name=service,
        validate=True,
    )
    return config.new_tracer()


def adopted(tracer, kind: type, timeout: float = 5.0, **expected):
    """The tracer's sampler once it is a `kind` with the `expected` attributes (it starts at 0.001)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sampler = tracer.sampler.sampler
        if isinstance(sampler, kind) and all(getattr(sampler, k) == v for k, v in expected.items()):
            return sampler
        time.sleep(0.05)
    raise AssertionError(f"{tracer.service_name} still samples with {tracer.sampler.sampler}")


def test_jaeger_client_follows_the_strategies(strategies):
    with running_collector(CollectorConfig.on_free_ports(sampling_strategies=strategies)) as collector:
        gateway, worker, proxy = (remote_tracer(s, collector) for s in ("gateway", "worker", "github-proxy"))
        try:
            assert adopted(gateway, ProbabilisticSampler, rate=0.25)
            assert adopted(worker, RateLimitingSampler, traces_per_second=2)
            per_operation = adopted(proxy, AdaptiveSampler)
            assert per_operation.is_sampled(1, "health")[0] is False
        finally:
            for tracer in (gateway, worker, proxy):
                tracer.close()
        assert collector.statistics()["sampling"]["requests"] >= 3


def test_the_receivers_page_shows_what_the_store_answered_each_service(strategies):
    with running_collector(CollectorConfig.on_free_ports(sampling_strategies=strategies)) as collector:
        for service in ("gateway", "gateway", "worker", "github-proxy"):
            ask(collector, service)
        page = requests.get(collector.url + "/receivers", timeout=5).text
        assert '<td>gateway</td><td>25% of traces</td><td class="num">2</td>' in page
        assert "<td>worker</td><td>at most 2 traces a second</td>" in page
        assert "<td>github-proxy</td><td>80% of traces, 1 operation with its own share</td>" in page
        for n in range(60):  # a client may send any name: the page lists 50
            ask(collector, f"service-{n}")
        answers = collector.statistics()["sampling"]
        assert len(answers["answers"]) == 50 and answers["services_not_shown"] == 13 and answers["requests"] == 64
