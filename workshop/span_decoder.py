"""Decode jaeger-client's UDP datagrams with the thrift classes jaeger-client itself ships.

Each datagram is one `Agent.emitBatch` oneway call in Thrift's compact protocol: a message header,
then `emitBatch_args` holding a `jaeger.Batch` (one process, many spans). No protocol code of ours.
"""

from __future__ import annotations

from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger.ttypes import Batch
from thrift.protocol.TCompactProtocol import TCompactProtocolAccelerated
from thrift.Thrift import TMessageType
from thrift.transport.TTransport import TMemoryBuffer

MAX_DATAGRAM = 65535
_LIMIT = MAX_DATAGRAM  # no string or list in a datagram can be longer than the datagram


class DecodeError(ValueError):
    """The datagram is not a jaeger-client span batch (malformed, truncated or another protocol)."""


def decode_batch(datagram: bytes) -> Batch:
    protocol = TCompactProtocolAccelerated(
        TMemoryBuffer(datagram), string_length_limit=_LIMIT, container_length_limit=_LIMIT
    )
    try:
        name, message_type, _ = protocol.readMessageBegin()
        if name != "emitBatch" or message_type not in (TMessageType.ONEWAY, TMessageType.CALL):
            raise DecodeError(f"not an emitBatch call (message {name!r}, type {message_type})")
        args = Agent.emitBatch_args()
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
