"""`python -m workshop collector`: the local Jaeger stand-in, started for you by `make stepN`. It listens
where Jaeger v2 does (workshop.ports.TRACE_STORE says each port, its variable and its default):
spans in as jaeger-client sends them (compact Thrift over UDP; binary Thrift, from Node.js), as
OpenTelemetry does (OTLP/HTTP) and as Zipkin clients do (v2 JSON); remote sampling for jaeger-client;
the query API and the trace pages."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workshop.ports import ENDPOINT, TRACE_STORE
from workshop.serving import create_server, serve_forever
from workshop.tracestore import sampling
from workshop.tracestore.app import JaegerErrors, create_app
from workshop.tracestore.journal import Loading
from workshop.tracestore.receivers import otlp, zipkin
from workshop.tracestore.receivers.otlp import OtlpStats
from workshop.tracestore.receivers.udp import UdpReceiver
from workshop.tracestore.receivers.zipkin import ZipkinStats
from workshop.tracestore.sampling import SamplingStats, Strategies
from workshop.tracestore.store import DEFAULT_MAX_SPANS, DEFAULT_MAX_TRACES, TraceStore

log = logging.getLogger("workshop.tracestore.collector")


def _default(name: str):
    return field(default=ENDPOINT[name].default)


@dataclass
class CollectorConfig:
    host: str = "127.0.0.1"
    # the ports, one field per endpoint of workshop.ports.TRACE_STORE (`<name>_port`)
    query_port: int = _default("query")
    jaeger_compact_port: int = _default("jaeger_compact")
    jaeger_binary_port: int = _default("jaeger_binary")  # jaeger-client's binary Thrift (Node.js)
    otlp_http_port: int = _default("otlp_http")
    zipkin_port: int = _default("zipkin")
    sampling_port: int = _default("sampling")  # remote sampling, as a Jaeger agent serves it
    max_traces: int = DEFAULT_MAX_TRACES
    journal: Path | None = None
    max_spans: int = DEFAULT_MAX_SPANS  # in all traces together; the least recently received traces go first
    sampling_strategies: Path | None = None  # Jaeger's strategies file; without one, sample everything
    docs: Path | None = None  # a folder whose Markdown files the pages serve (the lessons' READMEs)

    @classmethod
    def on_free_ports(cls, **settings) -> CollectorConfig:
        """Every port picked by the OS (tests, benchmarks): never one another program uses."""
        return cls(**{**{endpoint.field: 0 for endpoint in TRACE_STORE}, **settings})


class Collector:
    """A running store: its receivers (UDP compact and binary Thrift, OTLP/HTTP, Zipkin) and the query API
    with the trace viewer. Every port is bound here, before anything runs: a taken one is a clear error."""

    def __init__(self, config: CollectorConfig):
        self.config = config
        self.store = TraceStore(max_traces=config.max_traces, max_spans=config.max_spans)
        self.otlp_stats, self.zipkin_stats, self.sampling_stats = OtlpStats(), ZipkinStats(), SamplingStats()
        self.strategies = Strategies(config.sampling_strategies, self.sampling_stats)
        self._receiving = False
        compact, binary = ENDPOINT["jaeger_compact"], ENDPOINT["jaeger_binary"]
        with contextlib.ExitStack() as undo:  # if a later port is taken, the earlier ones are let go
            # bound before the journal loads: meanwhile datagrams wait in the kernel's buffer
            self.jaeger_compact_receiver = UdpReceiver(
                self.store, config.host, config.jaeger_compact_port, compact.variable, protocol="compact"
            )
            undo.callback(self.jaeger_compact_receiver.stop)
            self.jaeger_binary_receiver = UdpReceiver(
                self.store, config.host, config.jaeger_binary_port, binary.variable, protocol="binary"
            )
            undo.callback(self.jaeger_binary_receiver.stop)
            self.server = self._http(create_app(self.store, self.statistics, config.docs), "query", undo, JaegerErrors)
            self.otlp_server = self._http(otlp.create_app(self.store, self.otlp_stats), "otlp_http", undo)
            self.zipkin_server = self._http(zipkin.create_app(self.store, self.zipkin_stats), "zipkin", undo)
            self.sampling_server = self._http(sampling.create_app(self.strategies), "sampling", undo)
            undo.pop_all()
        self.loading = _loading(config.journal)
        self.jaeger_compact_port = self.jaeger_compact_receiver.port
        self.jaeger_binary_port = self.jaeger_binary_receiver.port
        self.otlp_http_port = self.otlp_server.port
        self.zipkin_port = self.zipkin_server.port
        self.sampling_port = self.sampling_server.port
        self.query_port = self.server.port
        self.url = f"http://{config.host}:{self.query_port}"

    @property
    def ports(self) -> dict[str, int]:
        """Endpoint name -> the port it is bound to (the OS's choice, for a port 0)."""
        return {endpoint.name: getattr(self, endpoint.field) for endpoint in TRACE_STORE}

    def _http(self, app, name: str, undo: contextlib.ExitStack, request_handler=None):
        endpoint = ENDPOINT[name]
        port = getattr(self.config, endpoint.field)
        server = create_server(app, self.config.host, port, endpoint.variable, request_handler)
        undo.callback(server.server_close)
        return server

    def statistics(self) -> dict:
        """What each receiver took and dropped, and what the store holds (`/api/stats`, the search page)."""
        journal = {"journal": self.loading.figures()} if self.loading is not None else {}
        return journal | {
            "jaeger_compact": asdict(self.jaeger_compact_receiver.stats),
            "jaeger_binary": asdict(self.jaeger_binary_receiver.stats),
            "otlp_http": asdict(self.otlp_stats),
            "zipkin": asdict(self.zipkin_stats),
            "sampling": asdict(self.sampling_stats),
            "store": asdict(self.store.stats),
            "metrics": asdict(self.store.metrics.stats),
            "traces": self.store.trace_count(),
            "max_traces": self.store.max_traces,
            "spans": self.store.span_count(),
            "max_spans": self.store.max_spans,
            "ports": self.ports,
        }

    def load_journal(self) -> None:
        """Reload the journal, if the store keeps one (the query API answers meanwhile), then receive spans."""
        if self.loading is not None and not self.loading.cancelled:
            try:
                self.store.open_journal(Path(self.loading.path), self.loading)
            except OSError as problem:  # the spans are kept in memory only, and received all the same
                log.error("could not use the journal %s: %s", self.loading.path, problem)
            self.loading.done = not self.loading.cancelled
            if self.loading.done and self.loading.on_progress is not None:
                print(f"trace store: loaded {self.loading.spans:,} spans from {self.loading.path}", flush=True)
        if self.loading is None or self.loading.done:
            self.start_receivers()

    def start_receivers(self) -> None:
        self.jaeger_compact_receiver.start()
        self.jaeger_binary_receiver.start()
        for server, name in self._background_servers():
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
            ).start()
        self._receiving = True

    def _background_servers(self) -> list:
        return [(self.otlp_server, "otlp-http"), (self.zipkin_server, "zipkin"), (self.sampling_server, "sampling")]

    def serve_forever(self) -> None:
        """Answer queries at once; meanwhile reload the journal (a large one takes a while), then receive."""
        threading.Thread(target=self.load_journal, name="journal-load", daemon=True).start()
        serve_forever(self.server, on_stop=self.close)

    def close(self) -> None:
        if self.loading is not None:
            self.loading.cancelled = True
        for server, _ in self._background_servers():
            if self._receiving:
                server.shutdown()
            server.server_close()
        self.jaeger_binary_receiver.stop()
        self.jaeger_compact_receiver.stop()
        self.store.close()


@contextlib.contextmanager
def running_collector(config: CollectorConfig, load_first: bool = True) -> Iterator[Collector]:
    """A collector in background threads (tests, benchmarks): its journal loaded before it is yielded, unless
    `load_first` is false (it loads in the background, as `python -m workshop collector` does)."""
    collector = Collector(config)
    if load_first:
        collector.load_journal()
    else:
        threading.Thread(target=collector.load_journal, name="journal-load", daemon=True).start()
    thread = threading.Thread(
        target=collector.server.serve_forever, kwargs={"poll_interval": 0.05}, name="query-api", daemon=True
    )
    thread.start()
    try:
        yield collector
    finally:
        collector.server.shutdown()
        collector.server.server_close()
        collector.close()


def main(config: CollectorConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    collector = Collector(config)
    if collector.loading is not None:
        collector.loading.on_progress = _say_progress(collector.loading)
    journal = f", journal {config.journal}" if config.journal else ""
    print(
        f"trace store: spans in on UDP {collector.jaeger_compact_port} and {collector.jaeger_binary_port} "
        f"(jaeger-client), OTLP/HTTP {collector.otlp_http_port}, Zipkin {collector.zipkin_port}; "
        f"sampling on {collector.sampling_port}; traces on {collector.url} "
        f"(max {config.max_traces:,} traces, {config.max_spans:,} spans{journal})",
        flush=True,
    )
    collector.serve_forever()
    return 0


def _loading(journal: Path | None) -> Loading | None:
    if journal is None:
        return None
    size = journal.stat().st_size if journal.is_file() else 0
    return Loading(str(journal), size)


PROGRESS_SECONDS = 2.0


def _say_progress(loading: Loading) -> Callable[[Loading], None]:
    """Every PROGRESS_SECONDS while a journal loads: how far it is, so a long wait is never silent."""
    said = [time.monotonic()]

    def say(progress: Loading) -> None:
        if time.monotonic() - said[0] >= PROGRESS_SECONDS:
            said[0] = time.monotonic()
            megabytes = f"{progress.read_bytes / 1e6:,.0f} of {progress.size_bytes / 1e6:,.0f} MB"
            print(f"trace store: {progress.percent}% loaded ({megabytes}, {progress.spans:,} spans)", flush=True)

    if loading.size_bytes > 0:
        print(
            f"trace store: loading {loading.path} ({loading.size_bytes / 1e6:,.1f} MB); meanwhile its pages\n"
            "  answer with what it has loaded, and spans sent to it wait until it is done",
            flush=True,
        )
    return say
