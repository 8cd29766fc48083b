"""What a lesson's processes are told: the one builder of their environment, for the runner (`make stepN`),
the bench and the tests alike (docker-compose.yml's services use the same names). Standard library only."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from workshop.ports import ENDPOINT

# flask-opentracing warns at import that OpenTracing is retired (the ideas live on in OpenTelemetry)
QUIET_WARNINGS = "ignore:This package is no longer supported:DeprecationWarning"
SERVED = ("app", "github_proxy", "jaeger_compact", "edge")  # the endpoints lessons are told by their variable


def lesson_environment(
    ports: Mapping[str, int],
    github_api_url: str,
    *,
    host: str = "127.0.0.1",
    redis_url: str | None = None,
    otlp_endpoint: str | None = None,
) -> dict[str, str]:
    """The variables every process of a lesson gets (on top of the caller's own environment).

    `ports`: endpoint name (workshop.ports) -> port, for app, github_proxy, edge, jaeger_compact and
    otlp_http; one not given is its default. `otlp_endpoint`: where OpenTelemetry sends OTLP/HTTP, when not
    to the otlp_http port on `host`. `redis_url`: for the lessons with a queue (lesson 5 on)."""

    def port(name: str) -> int:
        return ports.get(name, ENDPOINT[name].default)

    env = {
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": QUIET_WARNINGS,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),  # Traefik, in the venv
        # APP_PORT, PROXY_PORT, JAEGER_AGENT_PORT, EDGE_PORT (lesson 9's Traefik)
        **{ENDPOINT[name].variable: str(port(name)) for name in SERVED},
        "PROXY_URL": f"http://{host}:{port('github_proxy')}",
        "JAEGER_AGENT_HOST": host,
        # lessons 7 on: OpenTelemetry's exporter sends OTLP/HTTP here (its /v1/traces)
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint or f"http://{host}:{port('otlp_http')}",
        "GATEWAY_URL": f"http://{host}:{port('app')}",  # lesson 9: where Traefik routes
        "GITHUB_API_URL": github_api_url,
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env
