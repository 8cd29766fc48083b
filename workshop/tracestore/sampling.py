"""Remote sampling on 5778, as a Jaeger agent or Jaeger v2 serves it: `GET /sampling?service=NAME` (any path
with `?service=`) answers the service's strategy, from a file in Jaeger's sampling-strategies format:

    {"default_strategy": {"type": "probabilistic", "param": 1.0},
     "service_strategies": [
       {"service": "gateway", "type": "probabilistic", "param": 0.1,
        "operation_strategies": [{"operation": "health", "type": "probabilistic", "param": 0.0}]},
       {"service": "worker", "type": "ratelimiting", "param": 2}]}

Without a file every service samples everything. The file is read again when it changes; a file that no
longer reads leaves the last good strategies in force, and says why. A jaeger-client tracer whose config
omits `sampler` polls here (after a random delay up to `sampling_refresh_interval`) and follows the answer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, jsonify, request

from workshop.errors import WorkshopError

log = logging.getLogger("workshop.tracestore.sampling")
EVERYTHING = {"type": "probabilistic", "param": 1.0}


@dataclass
class SamplingStats:
    requests: int = 0
    reloads: int = 0
    bad_files: int = 0  # reloads that failed: the previous strategies stayed
    answers: dict[str, dict] = field(default_factory=dict)  # service -> its polls and the last answer, in words
    services_not_shown: int = 0  # past MAX_SERVICES_SHOWN: polls counted in `requests` only

    def answered(self, service: str, answer: dict) -> None:
        with _STATS_LOCK:
            self.requests += 1
            if service not in self.answers and len(self.answers) >= MAX_SERVICES_SHOWN:
                self.services_not_shown += 1
                return
            polls = self.answers.get(service, {}).get("polls", 0) + 1
            self.answers[service] = {"polls": polls, "answer": in_words(answer)}


MAX_SERVICES_SHOWN = 50
_STATS_LOCK = threading.Lock()


def in_words(answer: dict) -> str:
    """A SamplingStrategyResponse as a learner reads it: "10% of traces", "2 traces a second"."""
    if answer.get("strategyType") == "RATE_LIMITING":
        words = f"at most {answer['rateLimitingSampling']['maxTracesPerSecond']} traces a second"
    else:
        words = f"{answer['probabilisticSampling']['samplingRate'] * 100:g}% of traces"
    operations = answer.get("operationSampling", {}).get("perOperationStrategies", [])
    if not operations:
        return words
    return words + (
        ", 1 operation with its own share" if len(operations) == 1 else f", {len(operations)} operations with their own"
    )


class StrategiesError(WorkshopError):
    """A strategies file the store cannot start with: which, and what is wrong with it."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"the sampling strategies {path}: {problem}")
        self.path, self.problem = path, problem


class Strategies:
    """The strategies in force: from `path` (re-read when it changes), or "sample everything"."""

    def __init__(self, path: Path | None, stats: SamplingStats):
        self.path = path
        self.stats = stats
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._document: dict = {"default_strategy": EVERYTHING}
        if path is not None:
            try:
                self._load()
            except ValueError as problem:
                raise StrategiesError(path, str(problem)) from None

    def for_service(self, service: str) -> dict:
        """The answer jaeger-client reads for `service`."""
        with self._lock:
            if self.path is not None:
                self._reload_if_changed()
            document = self._document
        default = document.get("default_strategy") or EVERYTHING
        chosen = next((s for s in document.get("service_strategies", []) if s.get("service") == service), default)
        return _answer(chosen, default)

    def _reload_if_changed(self) -> None:
        try:
            stat = os.stat(self.path)
        except OSError as error:
            self._problem(f"cannot read it ({error.strerror})")
            return
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return
        try:
            self._load()
            self.stats.reloads += 1
            log.info("sampling strategies read again from %s", self.path)
        except ValueError as problem:
            self._stamp = (stat.st_mtime_ns, stat.st_size)  # said once per change
            self._problem(str(problem))

    def _problem(self, message: str) -> None:
        self.stats.bad_files += 1
        log.warning("sampling strategies %s: %s; the previous ones stay in force", self.path, message)

    def _load(self) -> None:
        stat = os.stat(self.path) if self.path.exists() else None
        if stat is None:
            raise ValueError("no such file")
        try:
            document = json.loads(self.path.read_bytes())
        except (ValueError, RecursionError) as error:
            raise ValueError(f"not JSON ({str(error)[:100]})") from None
        _check(document)
        self._document, self._stamp = document, (stat.st_mtime_ns, stat.st_size)


def _check(document: object) -> None:
    """Jaeger's format, or ValueError saying what is wrong."""
    if not isinstance(document, dict):
        raise ValueError("the strategies are a JSON object with default_strategy and service_strategies")
    strategies = document.get("service_strategies", [])
    if not isinstance(strategies, list):
        raise ValueError("service_strategies is a list")
    if document.get("default_strategy") is not None:
        _check_strategy(document["default_strategy"])
    for strategy in strategies:
        if not isinstance(strategy, dict) or not isinstance(strategy.get("service"), str):
            raise ValueError(f"a service strategy is an object that names its service: {strategy!r:.80}")
        _check_strategy(strategy)


def _check_strategy(strategy: object) -> None:
    if not isinstance(strategy, dict):
        raise ValueError(f"a strategy is an object, not {strategy!r:.60}")
    _check_type(strategy)
    operations = strategy.get("operation_strategies") or []
    if not isinstance(operations, list):
        raise ValueError("operation_strategies is a list")
    for operation in operations:
        if not isinstance(operation, dict) or not isinstance(operation.get("operation"), str):
            raise ValueError(f"an operation strategy names its operation: {operation!r:.80}")
        if operation.get("type") != "probabilistic":
            raise ValueError(f"operation strategies are probabilistic (as in Jaeger): {operation!r:.80}")
        _check_type(operation)


def _check_type(strategy: dict) -> None:
    kind, param = strategy.get("type"), strategy.get("param")
    if kind not in ("probabilistic", "ratelimiting"):
        raise ValueError(f"type is probabilistic or ratelimiting, not {kind!r:.40}")
    if isinstance(param, bool) or not isinstance(param, (int, float)):
        raise ValueError(f"param is a number, not {param!r:.40}")
    if kind == "probabilistic" and not 0 <= param <= 1:
        raise ValueError(f"a probabilistic param is a probability from 0 to 1, not {param}")
    if kind == "ratelimiting" and not 0 <= param <= 1_000_000:
        raise ValueError(f"a ratelimiting param is traces per second (0 or more), not {param}")


def _answer(strategy: dict, default: dict) -> dict:
    """Jaeger's SamplingStrategyResponse, as JSON."""
    if strategy["type"] == "ratelimiting":
        answer: dict = {
            "strategyType": "RATE_LIMITING",
            "rateLimitingSampling": {"maxTracesPerSecond": int(strategy["param"])},
        }
    else:
        answer = {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": strategy["param"]}}
    operations = strategy.get("operation_strategies") or default.get("operation_strategies") or []
    if operations:
        probability = strategy["param"] if strategy["type"] == "probabilistic" else default.get("param", 1.0)
        answer["operationSampling"] = {
            "defaultSamplingProbability": probability,
            "defaultLowerBoundTracesPerSecond": 0,
            "perOperationStrategies": [
                {"operation": o["operation"], "probabilisticSampling": {"samplingRate": o["param"]}} for o in operations
            ],
        }
    return answer


def create_app(strategies: Strategies) -> Flask:
    app = Flask("sampling", static_folder=None)

    @app.get("/", defaults={"_": ""})
    @app.get("/<path:_>")
    def sampling(_: str) -> Response:
        service = request.args.get("service", "")
        if not service:
            with _STATS_LOCK:
                strategies.stats.requests += 1
            return Response("'service' parameter must be provided\n", 400, mimetype="text/plain")  # as Jaeger says
        answer = strategies.for_service(service)
        strategies.stats.answered(service, answer)
        return jsonify(answer)

    return app
