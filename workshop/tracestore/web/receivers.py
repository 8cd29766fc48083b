"""The receivers page: what each of the store's receivers took, on which port, and what it turned away."""

from __future__ import annotations

from dataclasses import dataclass

Json = dict


@dataclass(frozen=True)
class Receiver:
    key: str  # its key in /api/stats
    name: str
    wire: str  # what it receives, and who sends it
    port_variable: str
    transport: str


RECEIVERS = [
    Receiver("receiver", "Jaeger compact Thrift", "jaeger-client (Python) spans", "JAEGER_AGENT_PORT", "udp"),
    Receiver("binary_receiver", "Jaeger binary Thrift", "jaeger-client (Node.js) spans", "JAEGER_BINARY_PORT", "udp"),
    Receiver("otlp_http", "OTLP/HTTP", "OpenTelemetry SDKs, Traefik: POST /v1/traces", "OTLP_HTTP_PORT", "tcp"),
    Receiver("zipkin", "Zipkin v2 JSON", "Zipkin clients: POST /api/v2/spans", "ZIPKIN_PORT", "tcp"),
]


@dataclass
class ReceiverRow:
    name: str
    wire: str
    port: str  # "6831/udp"
    port_variable: str
    spans: int
    turned_away: str  # "" when nothing was


def receiver_rows(stats: Json) -> list[ReceiverRow]:
    ports = stats.get("ports", {})
    rows = []
    for receiver in RECEIVERS:
        counts = stats.get(receiver.key, {})
        problems = {
            "malformed datagrams": counts.get("malformed", 0),
            "datagrams dropped": counts.get("dropped_datagrams", 0),
            "bad requests": counts.get("bad_requests", 0),
            "spans rejected": counts.get("rejected_spans", 0),
        }
        rows.append(
            ReceiverRow(
                name=receiver.name, wire=receiver.wire, port=f"{ports.get(receiver.key, '?')}/{receiver.transport}",
                port_variable=receiver.port_variable, spans=counts.get("spans", 0),
                turned_away=", ".join(f"{count} {what}" for what, count in problems.items() if count),
            )
        )  # fmt: skip
    return rows
