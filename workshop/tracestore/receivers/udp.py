"""Receive jaeger-client's UDP span batches (what a Jaeger agent receives) into a TraceStore.

One thread only drains the socket into a queue, so a burst lands in memory rather than overflowing the
kernel's buffer; a second thread decodes and stores. Bad datagrams are counted and logged, never fatal.
What the kernel itself dropped (its buffer was full before the thread could read it) is counted too,
from the socket's own line in /proc/net/udp on Linux: UDP loses datagrams silently, the store does not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.ports import port_in_use_message
from workshop.tracestore.receivers.thrift import MAX_DATAGRAM, DecodeError, decode_batch, spans_from_batch
from workshop.tracestore.store import TraceStore

log = logging.getLogger("workshop.tracestore.receivers.udp")
RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024
MAX_QUEUED_BYTES = 64 * 1024 * 1024
KERNEL_COUNTS = Path("/proc/net/udp")  # Linux: a line per IPv4 UDP socket of this network namespace
KERNEL_CHECK_SECONDS = 0.2
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", None)  # past the system's limit, when privileged (Linux)


@dataclass
class ReceiverStats:
    datagrams: int = 0
    spans: int = 0
    malformed: int = 0
    dropped_datagrams: int = 0  # the decode queue was full
    dropped_by_kernel: int = 0  # the socket's buffer was full: the kernel's own count (Linux), else 0
    receive_buffer_bytes: int = 0


class UdpReceiver:
    def __init__(
        self,
        store: TraceStore,
        host: str,
        port: int,
        variable: str,  # the environment variable that moves the port, for the message when it is taken
        protocol: str = "compact",  # Thrift's compact protocol (Python's jaeger-client), or "binary" (Node's)
        receive_buffer: int = RECEIVE_BUFFER_BYTES,
    ):
        self.store = store
        self.protocol = protocol
        self.stats = ReceiverStats()
        # datagrams to decode; an Event marks a point `drain` waits for; None stops the decoder
        self._queue: queue.SimpleQueue[bytes | threading.Event | None] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._queued_lock = threading.Lock()
        # `drain` callers, handed to the decoder only after the socket has been emptied once more
        self._drain_waiters: queue.SimpleQueue[threading.Event] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        _size_receive_buffer(self._sock, receive_buffer)
        self.stats.receive_buffer_bytes = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._inode = os.fstat(self._sock.fileno()).st_ino
        self._kernel_checked = 0.0
        try:
            self._sock.bind((host, port))
        except OSError as error:
            self._sock.close()
            raise WorkshopError(port_in_use_message(port, variable)) from error
        self._sock.setblocking(False)
        self._wake_reader, self._wake_writer = socket.socketpair()  # a byte here ends the receive thread's wait
        self._wake_reader.setblocking(False)
        self.port = self._sock.getsockname()[1]
        self._threads = [
            threading.Thread(target=self._receive, name=f"udp-receive-{protocol}", daemon=True),
            threading.Thread(target=self._decode, name=f"udp-decode-{protocol}", daemon=True),
        ]

    def start(self) -> UdpReceiver:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
        self._sock.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every datagram that reached the socket before this call is decoded (tests, benchmarks).

        The receive thread queues the marker after its next full read of the socket, so a datagram still
        in the kernel's buffer is decoded before the marker, never after it."""
        done = threading.Event()
        self._drain_waiters.put(done)
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"d")
        return done.wait(timeout)

    def _receive(self) -> None:
        """Wait (bounded, to notice stop) until datagrams arrive, then take every one the kernel holds:
        each time this thread gets the GIL it empties the socket, so the kernel's buffer never fills."""
        buffer = bytearray(MAX_DATAGRAM)
        while not self._stopping.is_set():
            try:
                readable, _, _ = select.select([self._sock, self._wake_reader], [], [], 0.2)
            except (OSError, ValueError):  # closed under us while stopping
                return
            if self._wake_reader in readable:
                with contextlib.suppress(OSError):
                    self._wake_reader.recv(4096)
            waiters = []  # taken before the read, so what they wait for is in the socket already
            while not self._drain_waiters.empty():
                waiters.append(self._drain_waiters.get())
            while True:
                try:
                    size = self._sock.recv_into(buffer)
                except BlockingIOError:
                    break
                except OSError:
                    if self._stopping.is_set():
                        return
                    break
                with self._queued_lock:
                    if self._queued_bytes + size > MAX_QUEUED_BYTES:
                        self.stats.dropped_datagrams += 1
                        continue
                    self._queued_bytes += size
                self._queue.put(bytes(buffer[:size]))
            if waiters or time.monotonic() - self._kernel_checked >= KERNEL_CHECK_SECONDS:
                self._kernel_checked = time.monotonic()
                self.stats.dropped_by_kernel = kernel_drops(self._inode)
            for waiter in waiters:
                self._queue.put(waiter)

    def _decode(self) -> None:
        while True:
            datagram = self._queue.get()
            if datagram is None:
                return
            if isinstance(datagram, threading.Event):
                datagram.set()
                continue
            with self._queued_lock:
                self._queued_bytes -= len(datagram)
            self.stats.datagrams += 1
            try:
                batch = decode_batch(datagram, self.protocol)
                self.stats.spans += self.store.add_spans(spans_from_batch(batch))
            except DecodeError as error:
                self.stats.malformed += 1
                log.warning("dropped a malformed datagram of %d bytes: %s", len(datagram), error)
            except Exception:  # never let one bad batch stop the store
                self.stats.malformed += 1
                log.exception("could not store a datagram of %d bytes", len(datagram))


def _size_receive_buffer(sock: socket.socket, size: int) -> None:
    """As large as asked: beyond the system's limit (net.core.rmem_max) where allowed, else up to it."""
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        if option is None:
            continue
        with contextlib.suppress(OSError):  # not allowed: the next option, or the OS keeps its own size
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            return


def kernel_drops(inode: int) -> int:
    """The datagrams the kernel dropped for the socket with this inode (its buffer was full): the last column
    of its line in /proc/net/udp. 0 where the system does not say (macOS)."""
    try:
        lines = KERNEL_COUNTS.read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        if len(fields) >= 13 and fields[9] == str(inode) and fields[-1].isdigit():
            return int(fields[-1])
    return 0
