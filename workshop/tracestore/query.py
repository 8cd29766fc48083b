"""What a search asks of the store, and how each API spells it: one query type, one error, and the parsers of
Jaeger's API v1 and API v3 side by side.

API v1 (`/api/traces`, and the search page):   service, operation, tags={"k":"v"} or tag=k:v, minDuration,
    maxDuration (Go durations: 300ms, 1.2s), start and end (Unix microseconds), lookback (a duration), limit.
API v3 (`/api/v3/traces`, `/api/v3/trace-summaries`): query.service_name, query.operation_name (or
    query.span_name), query.attributes, query.start_time_min / max (RFC 3339), query.duration_min / max,
    query.num_traces (or query.search_depth). The gateway's camelCase spellings (query.serviceName) too.

Jaeger's metrics API (`/api/metrics/latencies|calls|errors`): service (repeatable), groupByOperation, endTs (Unix
    ms), lookback, step and ratePer (ms), spanKind (repeatable), quantile (latencies).

A parameter that is not what it should be is a `BadQuery`, which names the parameter as the client wrote it;
each API answers it in its own shape.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from werkzeug.datastructures import MultiDict

from workshop.tracestore.durations import parse_duration_us, quoted
from workshop.tracestore.model import BadInput, normalize_trace_id, tag_text

DEFAULT_LIMIT = 100  # API v1's, when `limit` is missing or 0
MAX_LIMIT = 10_000
V3_DEFAULT_LIMIT = 20
V3_MAX_LIMIT = MAX_LIMIT  # Jaeger UI v2.19+ asks for 1500 by default
MAX_NESTING = 32  # JSON a tags parameter may nest: a map of plain values needs 1
INT64 = (-(2**63), 2**63 - 1)  # Jaeger reads its whole-number parameters as int64
MAX_METRIC_POINTS = 11_000  # a metrics answer's points per series (a day at Jaeger UI's 60 s steps is 1,440)

Args = MultiDict  # request.args, or the search page's form
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")  # as Go's strconv.ParseInt reads Jaeger's: ASCII digits
DAYS = re.compile(r"([0-9]{1,6})([dw])")  # Jaeger UI's longer lookbacks: 2d ... 4w


class BadQuery(BadInput):
    """A query parameter that is missing or malformed (400 unless it says otherwise)."""


@dataclass
class TraceQuery:
    service: str | None = None
    operation: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    min_duration_us: int | None = None
    max_duration_us: int | None = None
    start_us: int | None = None
    end_us: int | None = None
    limit: int = DEFAULT_LIMIT
    trace_ids: list[str] = field(default_factory=list)


def trace_id(text: str) -> str:
    """A trace id from a path or a parameter, normalised; BadQuery if it is not one."""
    try:
        return normalize_trace_id(text)
    except ValueError as problem:
        raise BadQuery(str(problem)) from None


# --- API v1 ----------------------------------------------------------------------------------------------


def v1_trace_query(args: Args) -> TraceQuery:
    """`/api/traces?...` as Jaeger's API v1 reads it."""
    trace_ids = [trace_id(value) for value in args.getlist("traceID")]
    service = args.get("service") or None
    if service is None and not trace_ids:
        raise BadQuery("parameter 'service' is required")
    limit = whole_number(args, "limit")
    if limit is None or limit == 0:
        limit = DEFAULT_LIMIT
    if not 0 < limit <= MAX_LIMIT:
        raise BadQuery(f"parameter 'limit' must be between 1 and {MAX_LIMIT}")
    query = TraceQuery(
        service=service,
        operation=args.get("operation") or None,
        tags=_v1_tags(args),
        min_duration_us=_v1_duration(args, "minDuration"),
        max_duration_us=_v1_duration(args, "maxDuration"),
        start_us=whole_number(args, "start"),
        end_us=whole_number(args, "end"),
        limit=limit,
        trace_ids=trace_ids,
    )
    lookback = args.get("lookback")
    if query.start_us is None and lookback and lookback != "custom":
        query.start_us = (query.end_us or int(time.time() * 1_000_000)) - _lookback(lookback)
    if query.start_us is not None and query.end_us is not None and query.start_us > query.end_us:
        raise BadQuery("parameter 'start' must not be after 'end'")
    _in_order(query, "'maxDuration' must be greater than or equal to 'minDuration'")
    return query


def _in_order(query: TraceQuery, message: str) -> None:
    low, high = query.min_duration_us, query.max_duration_us
    if low is not None and high is not None and low > high:
        raise BadQuery(message)


def _lookback(value: str) -> int:
    """How far back a search looks: a duration (1h), or days and weeks as Jaeger UI offers them (2d, 4w)."""
    days = DAYS.fullmatch(value.strip())
    if days:
        return int(days.group(1)) * (7 if days.group(2) == "w" else 1) * 86_400_000_000
    found = _duration(value, "parameter 'lookback'")
    if found is not None and found < 0:
        raise BadQuery(f"parameter 'lookback' must not be negative, not {quoted(value)}")
    return found or 0


def v1_required(args: Args, name: str) -> str:
    value = args.get(name)
    if not value:
        raise BadQuery(f"parameter {name!r} is required")
    return value


def whole_number(args: Args, name: str) -> int | None:
    """A 64-bit whole number, as Jaeger's int64 parameters; None when absent."""
    value = args.get(name)
    if value in (None, ""):
        return None
    if not WHOLE_NUMBER.fullmatch(value):  # ASCII digits only: int() would also take '٣' (3) or ' 3_0'
        raise BadQuery(f"parameter {name!r} must be a whole number, not {quoted(value)}")
    number = int(value) if len(value) <= 20 else INT64[1] + 1  # longer is out of range (and slow to convert)
    if not INT64[0] <= number <= INT64[1]:
        raise BadQuery(f"parameter {name!r} is out of range (a 64-bit whole number): {quoted(value)}")
    return number


def _v1_duration(args: Args, name: str) -> int | None:
    return _duration(args.get(name), f"parameter {name!r}")


def _duration(value: str | None, parameter: str) -> int | None:
    """A Go duration (300ms, 1.2s) in microseconds; None when absent. `parameter` names it in the message."""
    if not value:
        return None
    try:
        return parse_duration_us(value)
    except ValueError as problem:
        raise BadQuery(f"{parameter}: {problem}") from None


def _v1_tags(args: Args) -> dict[str, str]:
    """Jaeger accepts `tags={"k":"v"}` (JSON) and repeated `tag=k:v`."""
    tags: dict[str, str] = {}
    for raw in args.getlist("tags"):
        tags.update(tag_map(raw, "parameter 'tags'"))
    for raw in args.getlist("tag"):
        key, separator, value = raw.partition(":")
        if not separator or not key:
            raise BadQuery(f"parameter 'tag' must be key:value, not {quoted(raw)}")
        tags[key] = value
    return tags


def nesting(text: str) -> int:
    """How deeply JSON text nests its arrays and objects (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def tag_map(raw: str, name: str) -> dict[str, str]:
    """`{"error":"true","http.status_code":500}`: a JSON map of tag values (strings, numbers or booleans).
    `name` is the parameter as the client wrote it, for the message."""
    shape = f'{name} must be a JSON map like {{"error":"true"}}'
    if nesting(raw) > MAX_NESTING:  # the store's own limit: an interpreter's recursion limit differs by version
        raise BadQuery(f"{shape}, not JSON nested this deep: {quoted(raw)}")
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise BadQuery(f"{shape}, not {quoted(raw)}") from None
    if not isinstance(parsed, dict):
        raise BadQuery(shape)
    for key, value in parsed.items():
        if value is None or isinstance(value, (dict, list)):
            raise BadQuery(f"{shape}: the value of {quoted(key)} is not a string, number or boolean")
    return {key: tag_text(value) for key, value in parsed.items()}


# --- API v3 ----------------------------------------------------------------------------------------------


def v3_arg(args: Args, name: str) -> str:
    """`query.service_name` or its gateway spelling `query.serviceName`."""
    return args.get(f"query.{name}") or args.get(f"query.{_camel(name)}") or ""


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def v3_trace_query(args: Args) -> TraceQuery:
    """`/api/v3/traces?query.*` (and `/api/v3/trace-summaries`) as Jaeger's API v3 reads it."""
    service = v3_arg(args, "service_name")
    if not service:
        raise BadQuery("query.service_name is required")
    limit = _v3_limit(args)
    attributes = v3_arg(args, "attributes")
    query = TraceQuery(
        service=service,
        operation=v3_arg(args, "operation_name") or v3_arg(args, "span_name") or None,
        tags=tag_map(attributes, "query.attributes") if attributes else {},
        start_us=_v3_time(args, "start_time_min"),
        end_us=_v3_time(args, "start_time_max"),
        min_duration_us=_v3_duration(args, "duration_min"),
        max_duration_us=_v3_duration(args, "duration_max"),
        limit=limit,
    )
    _in_order(query, "query.duration_max must be greater than or equal to query.duration_min")
    return query


def _v3_limit(args: Args) -> int:
    """query.num_traces, or query.search_depth as Jaeger UI v2.19+ sends it (1500 by default)."""
    for name in ("num_traces", "search_depth"):
        for spelling in (f"query.{name}", f"query.{_camel(name)}"):
            value = args.get(spelling)
            if value:
                if not WHOLE_NUMBER.fullmatch(value) or len(value) > 6 or not 0 < int(value) <= V3_MAX_LIMIT:
                    raise BadQuery(f"{spelling} must be a whole number from 1 to {V3_MAX_LIMIT}, not {quoted(value)}")
                return int(value)
    return V3_DEFAULT_LIMIT


def _v3_time(args: Args, name: str) -> int | None:
    value = v3_arg(args, name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"query.{name} is an RFC 3339 time like 2026-11-21T10:00:00Z, not {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise BadQuery(f"query.{name} needs its time zone (Z, or +01:00)")
    return int(moment.timestamp() * 1_000_000)


def _v3_duration(args: Args, name: str) -> int | None:
    return _duration(v3_arg(args, name), f"query.{name}")


# --- the metrics API -----------------------------------------------------------------------------------------

SPAN_KINDS = {
    "unspecified": "",
    "internal": "internal",
    "server": "server",
    "client": "client",
    "producer": "producer",
    "consumer": "consumer",
}
TRUE, FALSE = {"1", "t", "T", "TRUE", "true", "True"}, {"0", "f", "F", "FALSE", "false", "False"}  # Go's ParseBool
# What Go's strconv.ParseFloat reads: a decimal or hexadecimal float (underscores only in a hex one), Inf, NaN
GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|0[xX](?:_?[0-9a-fA-F])*(?:\.(?:_?[0-9a-fA-F])*)?[pP][+-]?[0-9](?:_?[0-9])*"
    r"|(?i:inf|infinity))|(?i:nan)"
)
GO_DURATION_MS = 2**63 // 1_000_000  # a time.Duration, in ms: Jaeger's milliseconds past this wrap around
FIRST_MS = -62_135_596_800_000  # 0001-01-01, the first time a protobuf Timestamp (the points' time) can say


@dataclass
class MetricsQuery:
    services: list[str]
    group_by_operation: bool = False
    end_ms: int = 0
    lookback_ms: int = 3_600_000  # Jaeger's defaults: an hour, a point every 5 s, rates over 10 minutes
    step_ms: int = 5_000
    rate_per_ms: int = 600_000
    span_kinds: list[str] = field(default_factory=lambda: ["server"])  # as the store writes span.kind
    quantile: float | None = None


def metrics_query(args: Args, latencies: bool = False) -> MetricsQuery:
    """`/api/metrics/*?...` as Jaeger's query parser reads it, in its order and with its messages ("unable to
    parse param 'endTs': strconv.ParseInt: parsing ..."); then what Prometheus would refuse (a step of 0, a
    quantile of 2, more than 11,000 points), and times Jaeger would silently wrap around, as 400s too."""
    quantile = _go_float(args.get("quantile", ""), "quantile") if latencies else None
    if "service" not in args:  # (`service=`, an empty name, is accepted, as Jaeger does: it finds nothing)
        raise BadQuery("unable to parse param 'service': please provide at least one service name")
    query = MetricsQuery(services=args.getlist("service"), end_ms=int(time.time() * 1000), quantile=quantile)
    grouped = args.get("groupByOperation", "")
    if grouped and grouped not in TRUE | FALSE:
        raise BadQuery(
            f"unable to parse param 'groupByOperation': strconv.ParseBool: parsing {go_quoted(grouped)}: invalid syntax"
        )
    query.group_by_operation = grouped in TRUE
    if "spanKind" in args:
        kinds = args.getlist("spanKind")
        unknown = [kind for kind in kinds if kind not in SPAN_KINDS]
        if unknown:
            raise BadQuery(f"unable to parse param 'spanKind': unsupported span kind: '{unknown[0]}'")
        query.span_kinds = [SPAN_KINDS[kind] for kind in kinds]
    names = {"endTs": "end_ms", "lookback": "lookback_ms", "step": "step_ms", "ratePer": "rate_per_ms"}
    given = {name: _go_int(args.get(name, ""), name) for name in names}  # every one parsed first, as Jaeger does
    for name, value in given.items():
        if value is None:
            continue
        least = 0 if name == "lookback" else 1
        if name == "endTs" and not FIRST_MS <= value <= GO_DURATION_MS:
            raise BadQuery(
                f"unable to parse param 'endTs': {value} is not a time Jaeger can read (Unix ms, up to "
                f"{GO_DURATION_MS}: in 2262)"
            )
        if name != "endTs" and value < least:
            raise BadQuery(f"unable to parse param {name!r}: {value} ms: it must be at least {least} ms")
        if value > GO_DURATION_MS:
            raise BadQuery(
                f"unable to parse param {name!r}: {value} ms is longer than Jaeger can hold (a Go "
                f"time.Duration: at most {GO_DURATION_MS} ms, some 292 years)"
            )
        setattr(query, names[name], value)
    if query.end_ms - query.lookback_ms < FIRST_MS:
        raise BadQuery("unable to parse param 'lookback': it reaches before the year 1")
    if query.lookback_ms // query.step_ms > MAX_METRIC_POINTS:
        raise BadQuery(
            f"exceeded maximum resolution of {MAX_METRIC_POINTS:,} points per timeseries (lookback / "
            "step, as Prometheus counts them): ask with a longer step"
        )
    if quantile is not None and not 0 <= float(f"{quantile:.2f}") <= 1:  # (NaN is not either)
        raise BadQuery(f"unable to parse param 'quantile': {quantile} is not a quantile, from 0 to 1 (0.95)")
    return query


def _go_int(raw: str, name: str) -> int | None:
    """A whole number as Go's strconv.ParseInt(raw, 10, 64) reads it, in its words; None when empty."""
    if raw == "":
        return None
    if not WHOLE_NUMBER.fullmatch(raw):
        raise BadQuery(f"unable to parse param {name!r}: strconv.ParseInt: parsing {go_quoted(raw)}: invalid syntax")
    number = int(raw) if len(raw) <= 20 else INT64[1] + 1  # longer is out of range (and slow to convert)
    if not INT64[0] <= number <= INT64[1]:
        raise BadQuery(
            f"unable to parse param {name!r}: strconv.ParseInt: parsing {go_quoted(raw)}: value out of range"
        )
    return number


def _go_float(raw: str, name: str) -> float:
    """A float as Go's strconv.ParseFloat(raw, 64) reads it, in its words."""
    if not GO_FLOAT.fullmatch(raw):
        raise BadQuery(f"unable to parse param {name!r}: strconv.ParseFloat: parsing {go_quoted(raw)}: invalid syntax")
    text = raw.replace("_", "")
    try:
        number = float.fromhex(text) if "x" in text.lower() else float(text)
    except OverflowError:
        number = math.inf
    if math.isinf(number) and "inf" not in text.lower():
        raise BadQuery(
            f"unable to parse param {name!r}: strconv.ParseFloat: parsing {go_quoted(raw)}: value out of range"
        )
    return number


GO_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
    '"': r"\"",
    "\\": r"\\",
}


def go_quoted(text: str, limit: int = 100) -> str:
    """`text` as Go's strconv.Quote writes it in Jaeger's messages (cut short past `limit` characters)."""

    def escaped(char: str) -> str:
        if char in GO_ESCAPES:
            return GO_ESCAPES[char]
        if char.isprintable():
            return char
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    shown = "".join(map(escaped, text[:limit]))
    return f'"{shown}"' + (f"... ({len(text)} characters)" if len(text) > limit else "")
