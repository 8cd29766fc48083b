"""Every port the workshop serves on or sends to, in one table: its name, the environment variable that
moves it, its default, tcp or udp, and what it is. The CLI's flags (`--<name>-port`), the trace store's
config fields (`<name>_port`) and `/api/stats` keys, the runner's settings, the doctor, the receivers page,
the bench and the tests all read it. The README's "What runs, and on which port" says the same to learners.

Standard library only: the doctor reads it before `make setup`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from workshop.errors import WorkshopError


@dataclass(frozen=True)
class Endpoint:
    name: str  # one name everywhere: flag --jaeger-compact-port, field jaeger_compact_port, stats key
    variable: str  # what moves it (learners and the README use these)
    default: int
    protocol: str  # "tcp" or "udp"
    label: str  # what it is, for a person
    trace_store: bool = False  # one of the trace store's (Jaeger's) ports

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-") + "-port"

    @property
    def field(self) -> str:
        return self.name + "_port"

    def port(self, environ: Mapping[str, str] | None = None) -> int:
        """The port the environment moves it to, else its default; a clear error for a value that is not one."""
        value = (os.environ if environ is None else environ).get(self.variable, "")
        if not value:
            return self.default
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise WorkshopError(f"{self.variable} must be a port number (1-65535), not {value!r}")
        return int(value)


ENDPOINTS = (
    Endpoint("app", "APP_PORT", 8480, "tcp", "the app (the gateway, from lesson 4)"),
    Endpoint("github_proxy", "PROXY_PORT", 8481, "tcp", "the github-proxy"),
    Endpoint("fake_github", "FAKE_GITHUB_PORT", 8482, "tcp", "the fake GitHub"),
    Endpoint("edge", "EDGE_PORT", 8483, "tcp", "Traefik, in front of the gateway"),
    Endpoint("redis", "REDIS_PORT", 6380, "tcp", "Redis"),  # not 6379: a Redis already running is left alone
    Endpoint("query", "JAEGER_QUERY_PORT", 16686, "tcp", "Jaeger's query API and the trace pages", True),
    Endpoint("jaeger_compact", "JAEGER_AGENT_PORT", 6831, "udp", "Jaeger compact Thrift", True),
    Endpoint("jaeger_binary", "JAEGER_BINARY_PORT", 6832, "udp", "Jaeger binary Thrift", True),
    Endpoint("otlp_http", "OTLP_HTTP_PORT", 4318, "tcp", "OTLP/HTTP", True),
    Endpoint("zipkin", "ZIPKIN_PORT", 9411, "tcp", "Zipkin v2 JSON", True),
    Endpoint("sampling", "JAEGER_SAMPLING_PORT", 5778, "tcp", "remote sampling", True),
)
ENDPOINT = {endpoint.name: endpoint for endpoint in ENDPOINTS}
TRACE_STORE = tuple(endpoint for endpoint in ENDPOINTS if endpoint.trace_store)
