"""Port 16686's app, as Jaeger's query service lays it out: API v1 under /api, API v3 under /api/v3, and the
trace viewer's pages at Jaeger UI's paths. The only module that knows all three; each reads the store
from the app (`app.extensions`).

Errors nobody else answers are answered in Jaeger's envelope, never as an HTML page or a stack trace;
any answer with `?prettyPrint=true` is indented JSON, as Jaeger's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import WSGIRequestHandler

from workshop.tracestore.api import STATS, STORE
from workshop.tracestore.api.v1 import api_v1, envelope_of, error
from workshop.tracestore.api.v3 import api_v3
from workshop.tracestore.model import BadInput
from workshop.tracestore.store import TraceStore
from workshop.tracestore.web.docs import DOCS
from workshop.tracestore.web.pages import pages

log = logging.getLogger("workshop.tracestore.app")


class StrictJSON(DefaultJSONProvider):
    """JSON as strict parsers read it: NaN or Infinity would be an error here, never in an answer.
    (The model never holds them: its constructors turn such float tags into strings.)"""

    sort_keys = False  # keep Jaeger's field order: traceID, spans, processes, warnings

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


def create_app(store: TraceStore, stats: Callable[[], dict] | None = None, docs: Path | None = None) -> Flask:
    """`docs`: the folder whose Markdown files `/docs/...` serves (the repository: the lessons' READMEs)."""
    app = Flask("trace_store", static_folder=None)  # the viewer serves its own, under /static
    app.json = StrictJSON(app)
    app.extensions[STORE] = store
    app.extensions[STATS] = stats
    app.extensions[DOCS] = docs.resolve() if docs is not None else None
    app.register_blueprint(pages)
    app.register_blueprint(api_v1)
    app.register_blueprint(api_v3)
    app.register_error_handler(BadInput, _bad_input)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _not_allowed)
    app.register_error_handler(InternalServerError, _internal_error)
    app.after_request(_pretty_print)
    return app


def _bad_input(problem: BadInput) -> Response:
    return error(problem.status, str(problem))


def _not_found(_: Exception) -> Response:
    return error(404, f"no such route: {request.path}")


def _not_allowed(_: Exception) -> Response:
    return error(405, f"{request.method} is not supported on {request.path}")


def _internal_error(problem: InternalServerError) -> Response:
    """A bug, not bad input (that is a 400): logged, and answered in Jaeger's shape rather than HTML."""
    cause = problem.original_exception or problem
    log.error("%s %s failed", request.method, request.full_path, exc_info=cause)
    return error(500, f"internal error: {type(cause).__name__} (the store's log has the details)")


def _pretty_print(response: Response) -> Response:
    """`?prettyPrint=true`, as Jaeger: the JSON indented, for people who read it with curl."""
    if request.args.get("prettyPrint") == "true" and response.mimetype == "application/json":
        body = json.loads(response.get_data())
        response.direct_passthrough = False
        response.set_data(json.dumps(body, indent=2, allow_nan=False) + "\n")
    return response


class JaegerErrors(WSGIRequestHandler):
    """What the HTTP server itself refuses, before the app sees the request (a request line over 64 KiB: 414,
    a malformed request: 400), answered in Jaeger's envelope as JSON rather than as an HTML page."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        text = message or self.responses.get(code, ("error",))[0]
        if code == 414:
            text = "the request line is longer than 64 KiB: ask with fewer or shorter parameters (tags?)"
        body = json.dumps(envelope_of(None, errors=[{"code": code, "msg": text}]))
        self.log_error("code %d, message %s", code, text)
        self.send_response(code, text)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body.encode())))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body.encode())
