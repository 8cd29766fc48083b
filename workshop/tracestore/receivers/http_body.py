"""Request bodies as the HTTP receivers (OTLP, Zipkin) take them: plain or gzip, with a Content-Length or
chunked, and never more than MAX_BODY_BYTES once decompressed."""

from __future__ import annotations

import zlib

MAX_BODY_BYTES = 8 * 1024 * 1024  # decompressed; a larger request is refused with 413


class BadRequest(ValueError):
    """The body is not what the receiver takes: `status` and the message are the answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def read_body(stream, encoding: str) -> bytes:
    """The request body, decompressed, at most MAX_BODY_BYTES (chunked bodies have no Content-Length)."""
    raw = stream.read(MAX_BODY_BYTES + 1)
    if encoding in ("", "identity"):
        body = raw
    elif encoding == "gzip":
        try:
            body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, MAX_BODY_BYTES + 1)
        except zlib.error as error:
            raise BadRequest(f"the body is not gzip: {error}") from None
    else:
        raise BadRequest(f"Content-Encoding {encoding!r} is not supported: send it plain or gzip", 415)
    if len(raw) > MAX_BODY_BYTES or len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB: send smaller batches", 413)
    return body
