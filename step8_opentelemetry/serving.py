"""Plumbing, not the lesson (you may skip this file): `serve()` runs a service's Flask app.

Unlike Flask's `app.run()`, on Ctrl-C or SIGTERM it takes no new request and lets the ones in flight
finish, so their answers go out (and, once the app is traced, their spans are whole). And it turns away,
before the app sees them (so they cost no call to GitHub and no trace), what werkzeug's server would
hand it as if it were a request:
- a request whose client hung up before its headers ended (werkzeug reads the end of the stream as the
  end of the headers, and would run it in full);
- any method but GET: HEAD and OPTIONS too (Flask answers them by running the GET route), and `get` in
  lower case. They get 405 with `Allow: GET`: these services are read-only APIs, and a HEAD answered
  honestly would cost the whole GET.
It also reads a raw UTF-8 path as UTF-8 (werkzeug would read it as latin-1), answers `//` from the app (not
werkzeug's 308 HTML page), closes the connection once it answered, even after a body it did not read, and
says what the server itself refuses (a garbled request line, HTTP/2.0, more than 100 headers, a header line
over 64 KB) in JSON, as the app would, rather than in an HTML page.
"""

import json
import logging
import re
import signal
import threading
import time
from http import HTTPStatus

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

WAIT_FOR_CLIENT = 30  # seconds a client may take to send its request: every wait has a timeout
NOT_ALLOWED = json.dumps({"error": "The method is not allowed for the requested URL: only GET is."}) + "\n"


def serve(app, host, port, finish_within=10.0):
    """Serve `app` until Ctrl-C or SIGTERM. Then take no new request and let the ones in flight finish
    (for at most `finish_within` seconds), so their answers go out and their spans are whole."""
    counted = RequestsInFlight(OnlyGet(app.wsgi_app))
    app.wsgi_app = counted
    app.url_map.merge_slashes = False  # `//`: the app's own 404, not a redirect to `/`
    server = make_server(host, port, app, threaded=True, request_handler=RequestHandler)
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


class OnlyGet:
    """Wraps a WSGI app: GET goes to it, any other method is answered 405 here, in JSON as the app would."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "GET":
            return self.wsgi_app(environ, start_response)
        response = Response(NOT_ALLOWED, 405, {"Allow": "GET"}, mimetype="application/json")
        return response(environ, start_response)  # to HEAD: the same status and headers, no body


class RequestHandler(WSGIRequestHandler):
    """werkzeug's, with the checks above."""

    timeout = WAIT_FOR_CLIENT

    def parse_request(self):
        if not self.raw_requestline.endswith(b"\n"):  # the client hung up within the request line
            self.close_connection = True
            return False
        reader = self.rfile
        self.rfile = lines = LastLineRead(reader)
        try:
            parsed = super().parse_request()
        finally:
            self.rfile = reader
        if parsed and self.request_version != "HTTP/0.9" and lines.last not in (b"\r\n", b"\n"):
            self.close_connection = True  # the headers never ended: nobody is waiting for an answer
            return False
        if parsed:  # the path's raw bytes as %-escapes, which werkzeug decodes as UTF-8
            self.path = re.sub(r"[^\x00-\x7f]", lambda byte: f"%{ord(byte.group()):02X}", self.path)
        return parsed

    def send_error(self, code, message=None, explain=None):
        if self.request_version == "HTTP/0.9":  # the request line was not understood: answer HTTP/1.0's way,
            self.request_version = "HTTP/1.0"  # with a status line (HTTP/0.9 has none)
        self.error_content_type = "application/json"
        self.error_message_format = json.dumps({"error": HTTPStatus(code).phrase.lower()}).replace("%", "%%") + "\n"
        self.log_error("%d: %s", code, message)  # what was wrong, for the log; the client gets the status's name
        super().send_error(code)

    def make_environ(self):
        environ = super().make_environ()  # the app reads the body (if ever) from the stream as it was
        self.rfile = UnreadRest(self.rfile)  # werkzeug then discards the rest: without waiting for more
        return environ

    def run_wsgi(self):
        reader = self.rfile
        try:
            super().run_wsgi()
        finally:
            self.rfile = reader


class LastLineRead:
    """The request's stream, remembering the last line read from it."""

    def __init__(self, reader):
        self.reader, self.last = reader, None

    def readline(self, size=-1):
        self.last = self.reader.readline(size)
        return self.last

    def __getattr__(self, name):
        return getattr(self.reader, name)


class UnreadRest:
    """The request's stream once answered: each read takes what has arrived, and never waits for more.
    (werkzeug reads 10 MB at a time to discard a body: from a client that keeps its connection open, that
    read waits for ever.)"""

    def __init__(self, reader):
        self.reader = reader

    def read(self, size=-1):
        return self.reader.read1(size)

    def __getattr__(self, name):
        return getattr(self.reader, name)
