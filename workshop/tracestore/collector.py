"""`python -m workshop collector`: the local Jaeger stand-in. Receives spans as jaeger-client sends them
(UDP, 6831) and as OpenTelemetry does (OTLP/HTTP, 4318), serves the query API and the trace viewer (16686).
Started for you by `make stepN`."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from workshop.serving import create_server, serve_forever
from workshop.tracestore import sampling
from workshop.tracestore.app import create_app
from workshop.tracestore.receivers import otlp, zipkin
from workshop.tracestore.receivers.otlp import OtlpStats
from workshop.tracestore.receivers.udp import UdpReceiver
from workshop.tracestore.receivers.zipkin import ZipkinStats
from workshop.tracestore.sampling import SamplingStats, Strategies
from workshop.tracestore.store import DEFAULT_MAX_SPANS, DEFAULT_MAX_TRACES, TraceStore

log = logging.getLogger("workshop.tracestore.collector")


@dataclass
class CollectorConfig:
    host: str = "127.0.0.1"
    udp_port: int = 6831
    http_port: int = 16686
    max_traces: int = DEFAULT_MAX_TRACES
    journal: Path | None = None
    max_spans: int = DEFAULT_MAX_SPANS  # in all traces together; the least recently received traces go first
    otlp_port: int = 4318  # OTLP over HTTP
    binary_udp_port: int = 6832  # jaeger-client's binary Thrift (Node.js)
    zipkin_port: int = 9411  # Zipkin v2 JSON
    sampling_port: int = 5778  # remote sampling, as a Jaeger agent serves it
    sampling_strategies: Path | None = None  # Jaeger's strategies file; without one, sample everything

    @classmethod
    def on_free_ports(cls, **settings) -> CollectorConfig:
        """Every port picked by the OS (tests, benchmarks): never one another program uses."""
        ports = {
            "udp_port": 0,
            "http_port": 0,
            "otlp_port": 0,
            "binary_udp_port": 0,
            "zipkin_port": 0,
            "sampling_port": 0,
        }
        return cls(**{**ports, **settings})


class Collector:
    """A running store: its receivers (UDP compact and binary Thrift, OTLP/HTTP, Zipkin) and the query API
    with the trace viewer. Every port is bound here, before anything runs: a taken one is a clear error."""

    def __init__(self, config: CollectorConfig):
        self.config = config
        self.store = TraceStore(max_traces=config.max_traces, max_spans=config.max_spans)
        self.otlp_stats, self.zipkin_stats, self.sampling_stats = OtlpStats(), ZipkinStats(), SamplingStats()
        self.strategies = Strategies(config.sampling_strategies, self.sampling_stats)
        self._receiving = False
        with contextlib.ExitStack() as undo:  # if a later port is taken, the earlier ones are let go
            # bound before the journal loads: meanwhile datagrams wait in the kernel's buffer
            self.receiver = UdpReceiver(self.store, config.host, config.udp_port, "JAEGER_AGENT_PORT")
            undo.callback(self.receiver.stop)
            self.binary_receiver = UdpReceiver(
                self.store, config.host, config.binary_udp_port, "JAEGER_BINARY_PORT", protocol="binary"
            )
            undo.callback(self.binary_receiver.stop)
            self.server = self._http(create_app(self.store, self.statistics), config.http_port,
                                     "JAEGER_QUERY_PORT", undo)  # fmt: skip
            self.otlp_server = self._http(otlp.create_app(self.store, self.otlp_stats), config.otlp_port,
                                          "OTLP_HTTP_PORT", undo)  # fmt: skip
            self.zipkin_server = self._http(zipkin.create_app(self.store, self.zipkin_stats), config.zipkin_port,
                                            "ZIPKIN_PORT", undo)  # fmt: skip
            self.sampling_server = self._http(sampling.create_app(self.strategies), config.sampling_port,
                                              "JAEGER_SAMPLING_PORT", undo)  # fmt: skip
            if config.journal is not None:
                self.store.open_journal(config.journal)
            undo.pop_all()
        self.udp_port = self.receiver.port
        self.binary_udp_port = self.binary_receiver.port
        self.otlp_port = self.otlp_server.port
        self.zipkin_port = self.zipkin_server.port
        self.sampling_port = self.sampling_server.port
        self.http_port = self.server.port
        self.url = f"http://{config.host}:{self.http_port}"

    def _http(self, app, port: int, variable: str, undo: contextlib.ExitStack):
        server = create_server(app, self.config.host, port, variable)
        undo.callback(server.server_close)
        return server

    def statistics(self) -> dict:
        """What each receiver took and dropped, and what the store holds (`/api/stats`, the search page)."""
        return {
            "receiver": asdict(self.receiver.stats),
            "binary_receiver": asdict(self.binary_receiver.stats),
            "otlp_http": asdict(self.otlp_stats),
            "zipkin": asdict(self.zipkin_stats),
            "sampling": asdict(self.sampling_stats),
            "store": asdict(self.store.stats),
            "traces": self.store.trace_count(),
            "max_traces": self.store.max_traces,
            "spans": self.store.span_count(),
            "max_spans": self.store.max_spans,
            "ports": {
                "receiver": self.udp_port,
                "binary_receiver": self.binary_udp_port,
                "otlp_http": self.otlp_port,
                "zipkin": self.zipkin_port,
                "sampling": self.sampling_port,
                "query": self.http_port,
            },  # fmt: skip
        }

    def start_receivers(self) -> None:
        self.receiver.start()
        self.binary_receiver.start()
        for server, name in self._background_servers():
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
            ).start()
        self._receiving = True

    def _background_servers(self) -> list:
        return [(self.otlp_server, "otlp-http"), (self.zipkin_server, "zipkin"), (self.sampling_server, "sampling")]

    def serve_forever(self) -> None:
        self.start_receivers()
        serve_forever(self.server, on_stop=self.close)

    def close(self) -> None:
        for server, _ in self._background_servers():
            if self._receiving:
                server.shutdown()
            server.server_close()
        self.binary_receiver.stop()
        self.receiver.stop()
        self.store.close()


@contextlib.contextmanager
def running_collector(config: CollectorConfig) -> Iterator[Collector]:
    """A collector in background threads (tests, benchmarks)."""
    collector = Collector(config)
    collector.start_receivers()
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
    journal = f", journal {config.journal}" if config.journal else ""
    print(
        f"trace store: spans in on UDP {collector.udp_port} and {collector.binary_udp_port} (jaeger-client), "
        f"OTLP/HTTP {collector.otlp_port}, Zipkin {collector.zipkin_port}; sampling on {collector.sampling_port}; "
        f"traces on {collector.url} "
        f"(max {config.max_traces:,} traces, {config.max_spans:,} spans{journal})",
        flush=True,
    )
    collector.serve_forever()
    return 0
