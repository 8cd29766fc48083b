"""What each lesson's trace must show, written once: the span trees the tests assert and the exercises' tasks,
which `make check-stepN` reads a learner's trace against (workshop.lessons.checking).

A task is a small checkable change: what the trace shows when it is done (`Expect`: a span, its parent, its
kind, tags, log events, error mark, baggage; or a trace doctor finding that must be absent), the request whose
trace shows it, and a hint that names the place in the code and the API, without the solution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# --- the span trees of each lesson's demo request (a repository asked for the first time: two 202s) ---------------

Tree = tuple  # (service, operation, [child trees, in start order])


def github_calls(service: str, call: str = "github_request") -> Tree:
    """get_repo_contributors with its three attempts: two 202s, then the data."""
    return (service, "get_repo_contributors", [(service, call, [])] * 3)


MONOLITH: Tree = (
    "contributors",
    "contributors",
    [github_calls("contributors"), ("contributors", "clean_github_data", [])],
)
DISTRIBUTED: Tree = (
    "gateway",
    "contributors",
    [
        ("gateway", "call_github_proxy", [("github-proxy", "stats", [github_calls("github-proxy")])]),
        ("gateway", "clean_github_data", []),
    ],
)
QUEUED: Tree = (
    "gateway",
    "contributors",
    [
        ("gateway", "call_github_proxy", [("github-proxy", "stats", [github_calls("github-proxy")])]),
        ("gateway", "send_clean_job", [("worker", "handle_clean_job", [("worker", "clean_github_data", [])])]),
    ],
)
# Lesson 8: the instrumentations' spans (Flask's SERVER spans named by route, `requests`' CLIENT spans, Redis
# commands) around the lesson's own: each GitHub attempt is a CLIENT span GET under get_repo_contributors.
NATIVE: Tree = (
    "gateway",
    "GET /contributors/<owner>/<repo>",
    [
        ("gateway", "GET", [("github-proxy", "GET /stats/<owner>/<repo>", [github_calls("github-proxy", "GET")])]),
        (
            "gateway",
            "send_clean_job",
            [
                ("gateway", "LPUSH", []),
                ("gateway", "BRPOP", []),
                ("worker", "handle_clean_job", [("worker", "clean_github_data", []), ("worker", "LPUSH EXPIRE", [])]),
            ],
        ),
    ],
)
# Lesson 9: Traefik's spans in front (its entry point, router, service and the proxying), the github-proxy in
# Node.js (Express's route names, undici's GET for each attempt), the rest as lesson 8's.
EDGE_PROXY: Tree = ("github-proxy", "GET /stats/:owner/:repo", [github_calls("github-proxy", "GET")])
EDGE: Tree = (
    "traefik",
    "GET",
    [
        (
            "traefik",
            "Router",
            [
                (
                    "traefik",
                    "Service",
                    [
                        (
                            "traefik",
                            "ReverseProxy",
                            [(NATIVE[0], NATIVE[1], [("gateway", "GET", [EDGE_PROXY]), *NATIVE[2][1:]])],
                        )
                    ],
                )
            ],
        )
    ],
)
# The span kind of each span of lesson 8's trace (None: none, jaeger-client's and OpenTelemetry's internal steps).
NATIVE_KINDS = {
    ("gateway", "GET /contributors/<owner>/<repo>"): "server",
    ("gateway", "GET"): "client",
    ("github-proxy", "GET /stats/<owner>/<repo>"): "server",
    ("github-proxy", "get_repo_contributors"): None,
    ("github-proxy", "GET"): "client",
    ("gateway", "send_clean_job"): "producer",
    ("gateway", "LPUSH"): "client",
    ("gateway", "BRPOP"): "client",
    ("worker", "handle_clean_job"): "consumer",
    ("worker", "clean_github_data"): None,
    ("worker", "LPUSH EXPIRE"): "client",
}
TREES: dict[str, Tree] = {
    "step2": MONOLITH,
    "step3": MONOLITH,
    "step4": DISTRIBUTED,
    "step5": QUEUED,
    "step6": QUEUED,
    "step7": QUEUED,
    "step8": NATIVE,
    "step9": EDGE,
}


def services(tree: Tree) -> set[str]:
    service, _, children = tree
    return {service}.union(*(services(child) for child in children))


# --- the exercises' tasks ---------------------------------------------------------------------------------------


class Kind:
    """A tag's expected value when any value of a kind will do: `INT`, `TEXT`, `ANY`."""

    def __init__(self, name: str, accepts) -> None:
        self.name, self.accepts = name, accepts

    def __repr__(self) -> str:
        return self.name


INT = Kind("a whole number", lambda value: isinstance(value, int) and not isinstance(value, bool))
TEXT = Kind("some text", lambda value: isinstance(value, str) and value != "")
ANY = Kind("any value", lambda value: True)
URL = Kind(
    "the URL called (http://...)", lambda value: isinstance(value, str) and value.startswith(("http://", "https://"))
)

Span = tuple[str, str]  # (service, operation)
ROOT: Span | None = None  # as `parent`: the span begins the trace


@dataclass(frozen=True)
class Expect:
    """One span the request's trace must hold, and what must be true of it (None: not checked)."""

    span: Span
    parent: Span | None | str = "unchecked"  # a span, ROOT (None), or "unchecked"
    reference: str | None = None  # how it refers to that parent: CHILD_OF or FOLLOWS_FROM
    kind: str | None = None  # span.kind: server, client, producer, consumer
    tags: Mapping[str, object] = field(default_factory=dict)  # exact values, or a Kind
    logs: tuple[str, ...] = ()  # log events (the `event` field; OpenTelemetry's events by name)
    error: bool | None = None
    baggage: Mapping[str, str] = field(default_factory=dict)  # items the span carries
    anywhere: bool = False  # it may be in a trace of its own: the task is that it is there at all


@dataclass(frozen=True)
class Absent:
    """A trace doctor finding the request's trace must not have (workshop.tracestore.diagnosis)."""

    finding: str


# The requests a check sends, as the lesson's tasks need them: the demo's, a GitHub error, baggage's own.
REQUESTS = {
    "demo": ("/contributors/pallets/flask", {"X-Client": "make check"}),
    "error": ("/contributors/a/server-error", {"X-Client": "make check"}),
    "top": ("/contributors/pallets/flask?top=3", {"X-Client": "make check"}),
}
ANSWERS = {"demo": 200, "error": 502, "top": 200}  # the status each is answered with (GitHub's 500: a 502)


@dataclass(frozen=True)
class Task:
    """A lesson's task: what its trace shows once done. A task to do has its work in a patch beside the exercises'
    package (workshop.lessons.exercises), made on the lesson's code as it is before that task; a guard holds from
    the start (a mistake of the catalogue undoes it) and is kept, not done."""

    number: int
    title: str
    checks: tuple[Expect | Absent, ...]
    hint: str  # where in the code, and the API to use: never the line itself
    request: str = "demo"  # which of REQUESTS shows it
    mistakes: tuple[str, ...] = ()  # the catalogue's mistakes (workshop.lessons.mistakes) that undo it
    guard: bool = False  # true from the start: to keep, not to do


C = "contributors"
GATEWAY_ROOT: Span = ("gateway", "contributors")
NATIVE_ROOT: Span = ("gateway", "GET /contributors/<owner>/<repo>")
GITHUB_CALL_TAGS = {
    "span.kind": "client",
    "component": "requests",
    "peer.service": "github",
    "http.method": "GET",
    "http.url": URL,
    "github.attempt": INT,
    "http.status_code": INT,
}
PROXY_CALL_TAGS = {
    "span.kind": "client",
    "component": "requests",
    "peer.service": "github-proxy",
    "http.method": "GET",
    "http.url": URL,
    "http.status_code": INT,
}
JOB_TAGS = {"component": "redis", "message_bus.destination": "contributors:jobs", "job.id": TEXT}
MESSAGING = {
    "messaging.system": "redis",
    "messaging.destination.name": "contributors:jobs",
    "messaging.message.id": TEXT,
}

TASKS: dict[str, tuple[Task, ...]] = {
    "step2": (
        Task(
            1,
            "trace every request: a tracer for the service contributors, and a span for each request",
            (Expect((C, C), parent=ROOT, kind="server"),),
            "app.py: flask-opentracing's FlaskTracing (the fixed one, in tracing_fixes.py) on the app, tracing every "
            "request, given opentracing's global_tracer uncalled (there is no tracer yet when that line runs); in "
            "__main__, the tracer from tracing.py's init_tracer() before serving, and close_tracer() once serve() "
            "returns",
        ),
        Task(
            2,
            "a span for the GitHub work: get_repo_contributors, under the request's span",
            (Expect((C, "get_repo_contributors"), parent=(C, C)),),
            "get_repo_contributors() (app.py): its work inside a `with` block of the tracer's start_active_span() "
            "(opentracing's global_tracer() is the tracer); the block finishes the span",
            mistakes=("span-never-finished",),
        ),
        Task(
            3,
            "a span for each call to GitHub: github_request, under get_repo_contributors",
            (Expect((C, "github_request"), parent=(C, "get_repo_contributors")),),
            "call_github() (app.py): a span of its own for each call; started while get_repo_contributors's span "
            "is active, it becomes its child by itself",
            mistakes=("span-never-finished",),
        ),
        Task(
            4,
            "a span for the cleaning: clean_github_data, under the request's span",
            (Expect((C, "clean_github_data"), parent=(C, C)),),
            "clean_github_data() (app.py): as get_repo_contributors()",
        ),
    ),
    "step3": (
        Task(
            1,
            "tag each call to GitHub: its kind, component, peer service, method, URL, attempt and GitHub's status",
            (Expect((C, "github_request"), kind="client", tags=GITHUB_CALL_TAGS),),
            "call_github() (app.py): span.set_tag(), with the names opentracing.ext.tags gives (SPAN_KIND, "
            "COMPONENT, PEER_SERVICE, HTTP_METHOD, HTTP_URL, HTTP_STATUS_CODE), and github.attempt, the number "
            "get_repo_contributors()'s loop is at (pass it in). Never the headers: they hold the token",
        ),
        Task(
            2,
            "facts to search by: the repository on the request's span, the contributors' count on the cleaning's",
            (
                Expect((C, C), parent=ROOT, tags={"github.repo": "pallets/flask"}),
                Expect((C, "clean_github_data"), tags={"contributors.count": INT}),
            ),
            "contributors() (app.py): the request's span is tracing.get_span(), tag github.repo with owner/repo; "
            "clean_github_data(): tag contributors.count on its own span (the `with` block gives its scope)",
        ),
        Task(
            3,
            "log what happened: an event 'retry' for each of GitHub's 202s, an event 'rate_limit' on each call",
            (
                Expect((C, "get_repo_contributors"), logs=("retry",)),
                Expect((C, "github_request"), logs=("rate_limit",)),
            ),
            "span.log_kv() takes a dict whose 'event' names the event: in get_repo_contributors() where it waits "
            "after a 202, and in call_github() with GitHub's X-RateLimit-Remaining and X-RateLimit-Limit headers",
        ),
        Task(
            4,
            "mark errors: a call that GitHub answered with an error, and a request answered with a 5xx",
            (Expect((C, "github_request"), error=True, logs=("error",)), Expect((C, C), parent=ROOT, error=True)),
            "the tag tags.ERROR, true, and a log event 'error' saying why: in call_github() when GitHub answers 400 "
            "or more; on the request's span (tracing.get_span()) from an after_request hook, when the answer is "
            "500 or more, and in unexpected_error()",
            request="error",
            mistakes=("error-not-marked",),
        ),
        Task(
            5,
            "no credential in a tag (the trace doctor's word)",
            (Absent("secret"),),
            "record that a token was used, never the token: never the request's headers",
            mistakes=("token-in-a-tag",),
            guard=True,
        ),
    ),
    "step4": (
        Task(
            1,
            "the gateway's call to the github-proxy as a span: call_github_proxy, a client's, tagged",
            (
                Expect(
                    ("gateway", "call_github_proxy"),
                    parent=GATEWAY_ROOT,
                    kind="client",
                    tags=PROXY_CALL_TAGS,
                ),
            ),
            "call_github_proxy() (app.py): a span around the call, tagged as call_github() is in github_proxy.py "
            "(a client's call, but to the github-proxy), with the proxy's status; 400 or more marks it an error",
        ),
        Task(
            2,
            "the github-proxy traces its requests: a tracer of its own, a span for each request, the repository",
            (Expect(("github-proxy", "stats"), anywhere=True, kind="server", tags={"github.repo": "pallets/flask"}),),
            "github_proxy.py, as app.py does it for the gateway: FlaskTracing on its app, the repository tagged in "
            "stats(), each answer naming its trace, and its own tracer in __main__: init_tracer() with its own "
            "service name",
        ),
        Task(
            3,
            "errors marked on both sides: the gateway's call that got an error, and the proxy's request that gave it",
            (
                Expect(("gateway", "call_github_proxy"), error=True),
                Expect(("github-proxy", "stats"), anywhere=True, error=True),
            ),
            "the tag tags.ERROR: in app.py's call_github_proxy() when the proxy answers 400 or more; in "
            "github_proxy.py, as the gateway marks its own request's span (an after_request hook for a 5xx, and "
            "unexpected_error())",
            request="error",
        ),
        Task(
            4,
            "the context crosses HTTP: the proxy's spans join the gateway's trace, under call_github_proxy",
            (Expect(("github-proxy", "stats"), parent=("gateway", "call_github_proxy")),),
            "call_github_proxy() (app.py): the tracer's inject(), of this span's context, in the HTTP_HEADERS format "
            "(opentracing.propagation.Format), into a dict that goes with the request as its headers; the proxy's "
            "FlaskTracing reads them by itself",
            mistakes=("proxy-call-without-headers",),
        ),
    ),
    "step5": (
        Task(
            1,
            "sending the job as a span: send_clean_job, a producer's, tagged with the queue and the job",
            (Expect(("gateway", "send_clean_job"), parent=GATEWAY_ROOT, kind="producer", tags=JOB_TAGS),),
            "clean_in_worker() (app.py): a span around the whole exchange with the worker, tagged with "
            "opentracing.ext.tags' SPAN_KIND (a producer's), COMPONENT, MESSAGE_BUS_DESTINATION, and job.id",
        ),
        Task(
            2,
            "the worker traces its jobs: a tracer of its own, handle_clean_job, a consumer's, tagged",
            (Expect(("worker", "handle_clean_job"), anywhere=True, kind="consumer", tags=JOB_TAGS),),
            "worker.py: its own tracer in __main__ (init_tracer() with its service name, close_tracer() at the end); "
            "handle_clean_job(): a span around the job's handling, tagged as the gateway's (a consumer's), with "
            "the error mark where a job is malformed or fails",
        ),
        Task(
            3,
            "the context travels in the job: handle_clean_job joins the trace, a child of send_clean_job",
            (
                Expect(
                    ("worker", "handle_clean_job"),
                    parent=("gateway", "send_clean_job"),
                    reference="CHILD_OF",  # the gateway waits for the answer
                ),
            ),
            "app.py: the tracer's inject() in the TEXT_MAP format, into a dict put in the job under 'trace'; "
            "worker.py: trace_parent() extract()s it, and the span starts with it as its reference: child_of, "
            "since the gateway waits for the answer (opentracing.child_of)",
            mistakes=("job-without-context", "worker-ignores-the-context"),
        ),
    ),
    "step6": (
        Task(
            1,
            "set baggage at the edge: the client's name and ?top=, on the request's span",
            (Expect(GATEWAY_ROOT, baggage={"client": "make check", "contributors.top": "3"}),),
            "contributors() (app.py): tracing.py's set_baggage(), on the request's span, with client_name() and, "
            "when asked, top",
            request="top",
        ),
        Task(
            2,
            "read it in the github-proxy: the client's name as a tag baggage.client",
            (Expect(("github-proxy", "stats"), tags={"baggage.client": "make check"}),),
            "stats() (github_proxy.py): tracing.py's get_baggage() on the request's span, into a tag",
            request="top",
            mistakes=("baggage-set-after-the-call",),
        ),
        Task(
            3,
            "read it in the worker: baggage.client, and only the top contributors asked for",
            (
                Expect(
                    ("worker", "handle_clean_job"),
                    tags={"baggage.client": "make check", "baggage.contributors.top": 3},
                ),
            ),
            "handle_clean_job() (worker.py): get_baggage() into a tag, as in the proxy; top_from_baggage() says how "
            "many were asked for: keep that many, and tag baggage.contributors.top with it",
            request="top",
        ),
        Task(
            4,
            "baggage holds no credential and nothing heavy (the trace doctor's word)",
            (Absent("secret"), Absent("oversized_baggage")),
            "baggage travels in every call downstream: only small, harmless items, set with set_baggage()",
            mistakes=("secret-in-baggage", "heavy-baggage"),
            guard=True,
        ),
    ),
    "step7": (
        Task(
            1,
            "OTLP out: the spans of every service reach the store, from OpenTelemetry's SDK",
            (
                Expect(GATEWAY_ROOT, parent=ROOT, kind="server"),
                Expect(("github-proxy", "stats"), anywhere=True),
                Expect(("worker", "handle_clean_job"), anywhere=True),
            ),
            "init_tracer() (tracing.py): the provider sends nothing yet: add it a span processor that exports in "
            "batches (BatchSpanProcessor, opentelemetry.sdk.trace.export) to OTLP over HTTP (OTLPSpanExporter, "
            "opentelemetry.exporter.otlp.proto.http.trace_exporter); close_tracer(): the provider's shutdown()",
        ),
        Task(
            2,
            "baggage in OpenTelemetry's context: the github-proxy reads the client's name",
            (Expect(("github-proxy", "stats"), tags={"baggage.client": "make check"}),),
            "tracing.py's set_baggage() and get_baggage(): OpenTelemetry's baggage API (opentelemetry.baggage), in "
            "the current context (a new context with the item, attached), not the shim's span items, which stay in "
            "their span; the calls downstream inject the current context's baggage",
            request="top",
            mistakes=("baggage-on-the-span",),
        ),
        Task(
            3,
            "the job carries the baggage too: the worker reads the client's name, under send_clean_job",
            (
                Expect(("worker", "handle_clean_job"), parent=("gateway", "send_clean_job")),
                Expect(("worker", "handle_clean_job"), tags={"baggage.client": "make check"}),
            ),
            "handle_clean_job() (worker.py): the job's context made current with tracing.py's context_from() "
            "around the span (which then starts under it), in place of the shim's extract(), which drops the "
            "baggage",
            request="top",
            mistakes=("shim-extract-drops-baggage", "baggage-on-the-span"),
        ),
    ),
    "step8": (
        Task(
            1,
            "the instrumentations make the HTTP spans: a server's for each request, a client's for each call",
            (
                Expect(NATIVE_ROOT, parent=ROOT, kind="server"),
                Expect(("gateway", "GET"), parent=NATIVE_ROOT, kind="client"),
                Expect(("github-proxy", "GET /stats/<owner>/<repo>"), parent=("gateway", "GET"), kind="server"),
            ),
            "app.py and github_proxy.py: OpenTelemetry's Flask instrumentation on each app "
            "(opentelemetry.instrumentation.flask); tracing.py's instrument_libraries(): the instrumentations of "
            "requests and of Redis (opentelemetry.instrumentation.requests, .redis)",
        ),
        Task(
            2,
            "what GitHub answered, as events on get_repo_contributors: 'retry' and 'github.response'",
            (Expect(("github-proxy", "get_repo_contributors"), logs=("retry", "github.response")),),
            "github_proxy.py: span.add_event(name, attributes): where get_repo_contributors() waits after a 202, "
            "and in call_github() on the current span once GitHub answered (the attempt, its status, the rate limit)",
        ),
        Task(
            3,
            "the job's spans by the semantic conventions: send_clean_job a producer's, handle_clean_job a consumer's",
            (
                Expect(
                    ("gateway", "send_clean_job"),
                    kind="producer",
                    tags={**MESSAGING, "messaging.operation.type": "send"},
                ),
                Expect(
                    ("worker", "handle_clean_job"),
                    parent=("gateway", "send_clean_job"),
                    kind="consumer",
                    tags={**MESSAGING, "messaging.operation.type": "process"},
                ),
            ),
            "app.py's clean_in_worker() and worker.py's handle_clean_job(): start_as_current_span() takes a kind "
            "(opentelemetry.trace.SpanKind); span.set_attributes() with OpenTelemetry's messaging names",
            mistakes=("propagators-disagree",),
        ),
        Task(
            4,
            "no credential in an attribute (the trace doctor's word)",
            (Absent("secret"),),
            "record that a token was used, never the token",
            mistakes=("authorization-in-an-attribute",),
            guard=True,
        ),
    ),
    "step9": (
        Task(
            1,
            "Traefik traces, in the gateway's format: the gateway's span is a child of Traefik's",
            (Expect(("gateway", "GET /contributors/<owner>/<repo>"), parent=("traefik", "ReverseProxy")),),
            "traefik.sh: Traefik's --tracing.* flags (service name, sample rate, OTLP over HTTP to "
            "OTEL_EXPORTER_OTLP_ENDPOINT's /v1/traces) and the entry point's traceVerbosity; and OTEL_PROPAGATORS, "
            "Traefik's only say in the headers it writes: the gateway reads W3C's",
            mistakes=("traefik-speaks-b3",),
        ),
        Task(
            2,
            "the Node.js proxy traces, and joins: its server span under the gateway's GET",
            (Expect(("github-proxy", "GET /stats/:owner/:repo"), parent=("gateway", "GET"), kind="server"),),
            "github-proxy/server.js: tracing.js's startTracing(), when the file is run, and before express is "
            "loaded: the instrumentations patch modules as they load",
        ),
    ),
}
