"""The receivers page: what each of the store's receivers took, on which port, and what it turned away."""

from __future__ import annotations

from dataclasses import dataclass

from workshop.ports import ENDPOINT

Json = dict


@dataclass(frozen=True)
class Receiver:
    endpoint: str  # its name in workshop.ports: its port, its variable, and its key in /api/stats
    wire: str  # what it receives, and who sends it


RECEIVERS = [
    Receiver("jaeger_compact", "jaeger-client (Python) spans"),
    Receiver("jaeger_binary", "jaeger-client (Node.js) spans"),
    Receiver("otlp_http", "OpenTelemetry SDKs, Traefik: POST /v1/traces"),
    Receiver("zipkin", "Zipkin clients: POST /api/v2/spans"),
]


@dataclass
class ReceiverRow:
    name: str
    wire: str
    port: str  # "<port>/udp"
    port_variable: str
    spans: int
    turned_away: str  # "" when nothing was


def receiver_rows(stats: Json) -> list[ReceiverRow]:
    ports = stats.get("ports", {})
    rows = []
    for receiver in RECEIVERS:
        endpoint = ENDPOINT[receiver.endpoint]
        counts = stats.get(endpoint.name, {})
        problems = {
            "malformed datagrams": counts.get("malformed", 0),
            "datagrams dropped": counts.get("dropped_datagrams", 0),
            "datagrams the kernel dropped (its buffer was full)": counts.get("dropped_by_kernel", 0),
            "strings not UTF-8 (stored with �)": counts.get("not_utf8_strings", 0),
            "bad requests": counts.get("bad_requests", 0),
            "spans rejected": counts.get("rejected_spans", 0),
        }
        rows.append(
            ReceiverRow(
                name=endpoint.label,
                wire=receiver.wire,
                port=f"{ports.get(endpoint.name, '?')}/{endpoint.protocol}",
                port_variable=endpoint.variable,
                spans=counts.get("spans", 0),
                turned_away=", ".join(f"{count} {what}" for what, count in problems.items() if count),
            )
        )
    return rows
