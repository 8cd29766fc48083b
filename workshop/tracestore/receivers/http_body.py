"""Request bodies as the HTTP receivers (OTLP, Zipkin) take them: plain or gzip, with a Content-Length or
chunked, and never more than MAX_BODY_BYTES once decompressed."""

from __future__ import annotations

import threading
import zlib
from typing import ClassVar

from workshop.tracestore.model import BadInput

MAX_BODY_BYTES = 8 * 1024 * 1024  # decompressed; a larger request is refused with 413


class BadRequest(BadInput):
    """The body is not what the receiver takes: `status` and the message are the answer."""


class Counted:
    """Counters that the server's request threads add to at once: each addition is made under one lock, so
    none is lost (`stats.spans += store.add_spans(...)` read the count before the slow call, then wrote it)."""

    _lock: ClassVar[threading.Lock] = threading.Lock()

    def count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def count_by(self, name: str, key: str) -> None:
        """One more under `key` in the counter table `name`."""
        with self._lock:
            table = getattr(self, name)
            table[key] = table.get(key, 0) + 1


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
