"""Decode jaeger-client's UDP datagrams with the thrift classes jaeger-client itself ships.

Each datagram is one `Agent.emitBatch` oneway call in Thrift's compact protocol (Jaeger's port 6831:
jaeger-client for Python), or its binary protocol (6832: jaeger-client for Node.js): a message header,
then `emitBatch_args` holding a `jaeger.Batch` (one process, many spans). No protocol code of ours:
thrift's C decoder (`fastbinary`) reads the datagram into jaeger-client's classes, guided by their
`thrift_spec`. jaeger-client's specs come from an old thrift generator, so `_current_spec` rewrites
them once into the form today's decoder reads (strings as UTF-8, struct arguments as lists). Where
thrift was built without its C extension, the generated pure-Python `read()` does the same, ten
times slower.

`spans_from_batch` then translates a batch into the trace model, as Jaeger's own translator does: ids as
unsigned hex (Thrift carries signed 64-bit), a parent span id as a CHILD_OF reference, typed tags.
"""

from __future__ import annotations

import base64
from functools import cache

from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger.ttypes import Batch, SpanRefType, TagType
from thrift.protocol.TBinaryProtocol import TBinaryProtocolAccelerated
from thrift.protocol.TCompactProtocol import TCompactProtocolAccelerated
from thrift.Thrift import TMessageType, TType
from thrift.transport.TTransport import TMemoryBuffer

from workshop.tracestore import model
from workshop.tracestore.model import CHILD_OF, FOLLOWS_FROM, Json, SpanRecord, span_id_hex, trace_id_hex

MAX_DATAGRAM = 65535
_LIMIT = MAX_DATAGRAM  # no string or list in a datagram can be longer than the datagram


class DecodeError(ValueError):
    """The datagram is not a jaeger-client span batch (malformed, truncated or another protocol)."""


REFERENCE_TYPES = {SpanRefType.CHILD_OF: CHILD_OF, SpanRefType.FOLLOWS_FROM: FOLLOWS_FROM}
PROTOCOLS = {"compact": TCompactProtocolAccelerated, "binary": TBinaryProtocolAccelerated}


def decode_batch(datagram: bytes, protocol_name: str = "compact") -> Batch:
    protocol = PROTOCOLS[protocol_name](
        TMemoryBuffer(datagram), string_length_limit=_LIMIT, container_length_limit=_LIMIT
    )
    try:
        name, message_type, _ = protocol.readMessageBegin()
        if name != "emitBatch" or message_type not in (TMessageType.ONEWAY, TMessageType.CALL):
            raise DecodeError(f"not an emitBatch call (message {name!r}, type {message_type})")
        args = Agent.emitBatch_args()
        if protocol._fast_decode is not None:
            protocol._fast_decode(args, protocol, [Agent.emitBatch_args, _current_spec(Agent.emitBatch_args)])
        else:
            args.read(protocol)
        protocol.readMessageEnd()
    except DecodeError:
        raise
    except Exception as error:  # thrift raises many kinds on bad input: EOF, protocol, unicode, struct...
        raise DecodeError(f"{type(error).__name__}: {error}") from None
    batch = args.batch
    if batch is None or batch.process is None or batch.spans is None:
        raise DecodeError("the batch has no process or no spans")
    for span in batch.spans:
        if span.traceIdLow is None or span.spanId is None or span.operationName is None:
            raise DecodeError("a span lacks its trace id, span id or operation name")
    return batch


@cache
def _current_spec(cls: type) -> tuple:
    """`cls.thrift_spec` as today's fastbinary reads it."""
    return tuple(
        None if field is None else (field[0], field[1], field[2], _type_args(field[1], field[3], field[2]), field[4])
        for field in cls.thrift_spec
    )


def _type_args(ttype: int, args, name: str):
    if ttype == TType.STRUCT:
        return [args[0], _current_spec(args[0])]
    if ttype in (TType.LIST, TType.SET):
        return (args[0], _type_args(args[0], args[1], name), False)
    if ttype == TType.MAP:
        return (args[0], _type_args(args[0], args[1], name), args[2], _type_args(args[2], args[3], name), False)
    if ttype == TType.STRING:
        return "BINARY" if name == "vBinary" else "UTF8"
    return args


# --- Thrift -> the trace model ----------------------------------------------------------------------------


def spans_from_batch(batch: Batch) -> list[SpanRecord]:
    """Each span of the batch as (span of the model, its process)."""
    process = model.process(
        batch.process.serviceName or "unknown-service", [_tag(tag) for tag in batch.process.tags or []]
    )
    return [(_span(span), process) for span in batch.spans]


def _span(span) -> Json:
    trace_id = trace_id_hex(span.traceIdHigh, span.traceIdLow)
    references = [
        model.reference(
            REFERENCE_TYPES.get(ref.refType, CHILD_OF),
            trace_id_hex(ref.traceIdHigh, ref.traceIdLow),
            span_id_hex(ref.spanId),
        )
        for ref in span.references or []
    ]
    parent = span.parentSpanId or 0
    if parent and not any(ref["spanID"] == span_id_hex(parent) for ref in references):
        references.insert(0, model.reference(CHILD_OF, trace_id, span_id_hex(parent)))
    return model.span(
        trace_id,
        span_id_hex(span.spanId),
        span.operationName,
        references,
        span.startTime or 0,
        span.duration or 0,
        [_tag(tag) for tag in span.tags or []],
        [model.log_entry(log.timestamp or 0, [_tag(field) for field in log.fields or []]) for log in span.logs or []],
        flags=span.flags or 0,
    )


def _tag(tag) -> Json:
    key = tag.key or ""
    if tag.vType == TagType.STRING:
        return model.tag(key, "string", tag.vStr or "")
    if tag.vType == TagType.BOOL:
        return model.tag(key, "bool", bool(tag.vBool))
    if tag.vType == TagType.LONG:
        return model.int_tag(key, tag.vLong or 0)
    if tag.vType == TagType.DOUBLE:
        return model.float_tag(key, tag.vDouble or 0.0)
    if tag.vType == TagType.BINARY:
        return model.tag(key, "binary", base64.b64encode(tag.vBinary or b"").decode())
    return model.tag(key, "string", f"<unknown tag type {tag.vType}>")
