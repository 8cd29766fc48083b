"""Serve a WSGI app on loopback: in the foreground for a command, or in a thread for tests and benchmarks."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from workshop.errors import WorkshopError
from workshop.ports import port_in_use_message


def create_server(
    app, host: str, port: int, variable: str, request_handler: type[WSGIRequestHandler] | None = None
) -> BaseWSGIServer:
    """A threaded werkzeug server, or a clear error naming the variable that moves the port. `request_handler`:
    werkzeug's own by default; another one answers what never reaches the app (a request line too long) itself."""
    try:
        return make_server(host, port, app, threaded=True, request_handler=request_handler)
    except OSError as error:
        raise WorkshopError(port_in_use_message(port, variable)) from error
    except SystemExit as error:  # werkzeug exits (after printing) when the port is taken
        raise WorkshopError(port_in_use_message(port, variable)) from error


def serve_forever(server: BaseWSGIServer, on_stop=None) -> None:
    """Run until SIGTERM or Ctrl-C, then close cleanly (and call on_stop)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()  # returns on KeyboardInterrupt
    finally:
        server.server_close()
        if on_stop is not None:
            on_stop()


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` from a background thread; yields its base URL (port 0 picks a free port)."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"wsgi:{server.port}", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
