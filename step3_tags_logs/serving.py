"""Plumbing, not the lesson (you may skip this file): `serve()` runs a service's Flask app.

Unlike Flask's `app.run()`, on Ctrl-C or SIGTERM it takes no new request and lets the ones in flight
finish, so their answers go out (and, once the app is traced, their spans are whole).
"""

import logging
import signal
import threading
import time

from werkzeug.serving import make_server


def serve(app, host, port, finish_within=10.0):
    """Serve `app` until Ctrl-C or SIGTERM. Then take no new request and let the ones in flight finish
    (for at most `finish_within` seconds), so their answers go out and their spans are whole."""
    counted = RequestsInFlight(app.wsgi_app)
    app.wsgi_app = counted
    server = make_server(host, port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: threading.Thread(target=server.shutdown).start())
    logging.getLogger("serving").info("serving on http://%s:%d", host, port)
    server.serve_forever()  # returns after server.shutdown(), or on Ctrl-C
    deadline = time.monotonic() + finish_within
    while counted.count and time.monotonic() < deadline:
        time.sleep(0.05)


class RequestsInFlight:
    """Wraps a WSGI app to count the requests it is serving."""

    def __init__(self, wsgi_app):
        self.wsgi_app, self.count, self.lock = wsgi_app, 0, threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.count += 1
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            with self.lock:
                self.count -= 1
