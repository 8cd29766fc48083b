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
TREES: dict[str, Tree] = {
    "step2": MONOLITH,
    "step3": MONOLITH,
    "step4": DISTRIBUTED,
    "step5": QUEUED,
    "step6": QUEUED,
    "step7": QUEUED,
    "step8": NATIVE,
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
    logs: tuple[str, ...] = ()  # log events (the `event` field)
    error: bool | None = None
    baggage: Mapping[str, str] = field(default_factory=dict)  # items the span carries


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


@dataclass(frozen=True)
class Task:
    number: int
    title: str
    checks: tuple[Expect | Absent, ...]
    hint: str  # where in the code, and the API to use
    request: str = "demo"  # which of REQUESTS shows it
    mistakes: tuple[str, ...] = ()  # the catalogue's mistakes (workshop.lessons.mistakes) that undo it
    guard: bool = False  # true from the start (the lesson's starting code has it): to keep, not to do

    @property
    def patch(self) -> str:
        """Its undo patch, beside this module: the lesson's code without this task's work."""
        return f"task{self.number}.patch"


C = "contributors"
GATEWAY_ROOT: Span = ("gateway", "contributors")
GITHUB_CALL_TAGS = {"span.kind": "client", "peer.service": "github", "http.method": "GET", "http.url": URL}

TASKS: dict[str, tuple[Task, ...]] = {
    "step2": (
        Task(
            1,
            "a span for the GitHub work: get_repo_contributors, under the request's span",
            (Expect((C, "get_repo_contributors"), parent=(C, C)),),
            "in get_repo_contributors() (app.py): with global_tracer().start_active_span(...) around its body",
            mistakes=("span-never-finished",),
        ),
        Task(
            2,
            "a span for each call to GitHub: github_request, under get_repo_contributors",
            (Expect((C, "github_request"), parent=(C, "get_repo_contributors")),),
            "in call_github() (app.py): one span a call, started while get_repo_contributors's is active",
            mistakes=("span-never-finished",),
        ),
        Task(
            3,
            "a span for the cleaning: clean_github_data, under the request's span",
            (Expect((C, "clean_github_data"), parent=(C, C)),),
            "in clean_github_data() (app.py): start_active_span(...) around its body",
        ),
    ),
    "step3": (
        Task(
            1,
            "tag each GitHub call: its kind, peer service, method, URL and the status code GitHub answered",
            (Expect((C, "github_request"), kind="client", tags={**GITHUB_CALL_TAGS, "http.status_code": INT}),),
            "in call_github() (app.py): span.set_tag(tags.SPAN_KIND, ...), tags.PEER_SERVICE, tags.HTTP_METHOD, "
            "tags.HTTP_URL (opentracing.ext.tags), and tags.HTTP_STATUS_CODE from the response",
        ),
        Task(
            2,
            "log each of GitHub's 202s on get_repo_contributors's span: an event 'retry'",
            (Expect((C, "get_repo_contributors"), logs=("retry",)),),
            "where get_repo_contributors() waits after a 202: scope.span.log_kv({'event': 'retry', ...})",
        ),
        Task(
            3,
            "mark errors: a GitHub call that failed, and the request it failed",
            (Expect((C, "github_request"), error=True), Expect((C, C), parent=ROOT, error=True)),
            "span.set_tag(tags.ERROR, True): in call_github() when GitHub answers 400 or more, and on the "
            "request's span (tracing.get_span()) in an after_request hook when the answer is a 5xx",
            request="error",
            mistakes=("error-not-marked",),
        ),
        Task(
            4,
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
            "tag the gateway's call_github_proxy span as the client of the call",
            (
                Expect(
                    ("gateway", "call_github_proxy"),
                    parent=GATEWAY_ROOT,
                    kind="client",
                    tags={"peer.service": "github-proxy", "http.method": "GET", "http.url": URL},
                ),
            ),
            "in call_github_proxy() (app.py): span.set_tag(tags.SPAN_KIND, tags.SPAN_KIND_RPC_CLIENT), "
            "tags.PEER_SERVICE, tags.HTTP_METHOD and tags.HTTP_URL",
        ),
        Task(
            2,
            "the context crosses HTTP: the proxy's spans join the gateway's trace, under call_github_proxy",
            (Expect(("github-proxy", "stats"), parent=("gateway", "call_github_proxy")),),
            "in call_github_proxy() (app.py): global_tracer().inject(span.context, Format.HTTP_HEADERS, headers) "
            "before the request is sent with those headers",
            mistakes=("proxy-call-without-headers",),
        ),
    ),
    "step5": (
        Task(
            1,
            "tag send_clean_job as the job's producer: its kind, component and the queue",
            (
                Expect(
                    ("gateway", "send_clean_job"),
                    parent=GATEWAY_ROOT,
                    kind="producer",
                    tags={"component": "redis", "message_bus.destination": "contributors:jobs"},
                ),
            ),
            "in clean_in_worker() (app.py): tags.SPAN_KIND (tags.SPAN_KIND_PRODUCER), tags.COMPONENT and "
            "tags.MESSAGE_BUS_DESTINATION",
        ),
        Task(
            2,
            "the context travels in the job: the worker's handle_clean_job joins the trace, under send_clean_job",
            (
                Expect(
                    ("worker", "handle_clean_job"),
                    parent=("gateway", "send_clean_job"),
                    reference="CHILD_OF",  # the gateway waits for the answer
                    kind="consumer",
                ),
            ),
            "app.py: global_tracer().inject(span.context, Format.TEXT_MAP, carrier) into the job's `trace`; "
            "worker.py: start handle_clean_job with references=trace_parent(job)",
            mistakes=("job-without-context", "worker-ignores-the-context"),
        ),
    ),
    "step6": (
        Task(
            1,
            "set baggage at the edge: the client's name and ?top=, on the request's span",
            (Expect(GATEWAY_ROOT, baggage={"client": "make check", "contributors.top": "3"}),),
            "in contributors() (app.py): set_baggage(span, ...) (tracing.py) with client_name(), and top if asked",
            request="top",
        ),
        Task(
            2,
            "read it in the github-proxy: a tag baggage.client on its request's span",
            (Expect(("github-proxy", "stats"), tags={"baggage.client": "make check"}),),
            "in the proxy's request (github_proxy.py): span.set_tag('baggage.client', get_baggage(span, 'client'))",
            request="top",
        ),
        Task(
            3,
            "read it in the worker: a tag baggage.client on handle_clean_job",
            (Expect(("worker", "handle_clean_job"), tags={"baggage.client": "make check"}),),
            "in handle_clean_job() (worker.py): the same get_baggage(span, 'client'), into a tag",
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
            "baggage in OpenTelemetry's context: the github-proxy reads the client's name",
            (Expect(("github-proxy", "stats"), tags={"baggage.client": "make check"}),),
            "set_baggage() (tracing.py): context.attach(baggage.set_baggage(key, value)), not the shim's "
            "span.set_baggage_item(), which keeps it in one span",
            request="top",
            mistakes=("baggage-on-the-span",),
        ),
        Task(
            2,
            "the worker reads the job's context and its baggage: baggage.client on handle_clean_job",
            (
                Expect(("worker", "handle_clean_job"), parent=("gateway", "send_clean_job")),
                Expect(("worker", "handle_clean_job"), tags={"baggage.client": "make check"}),
            ),
            "in handle_clean_job() (worker.py): with trace_context(job) (OpenTelemetry's propagate.extract), not "
            "the shim's extract(), which drops the baggage",
            request="top",
            mistakes=("shim-extract-drops-baggage", "baggage-on-the-span"),
        ),
    ),
    "step8": (
        Task(
            1,
            "the requests instrumentation: the gateway's GET to the proxy, and the proxy's spans under it",
            (
                Expect(("gateway", "GET"), kind="client"),
                Expect(("github-proxy", "GET /stats/<owner>/<repo>"), parent=("gateway", "GET"), kind="server"),
            ),
            "instrument_libraries() (tracing.py): RequestsInstrumentor().instrument(), once, before any call",
        ),
        Task(
            2,
            "the job carries the context: the worker's handle_clean_job under send_clean_job",
            (Expect(("worker", "handle_clean_job"), parent=("gateway", "send_clean_job"), kind="consumer"),),
            "in clean_in_worker() (app.py): propagate.inject(carrier) into the job's `trace`; the worker's "
            "trace_context() reads it with propagate.extract",
            mistakes=("propagators-disagree",),
        ),
        Task(
            3,
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
            "Traefik's context reaches the gateway: the gateway's span is a child of Traefik's",
            (Expect(("gateway", "GET /contributors/<owner>/<repo>"), parent=("traefik", "ReverseProxy")),),
            "traefik.sh: OTEL_PROPAGATORS names the headers Traefik writes; the gateway reads W3C's "
            "(tracecontext,baggage)",
            mistakes=("traefik-speaks-b3",),
        ),
        Task(
            2,
            "the Node.js proxy traces, and joins: its server span under the gateway's GET",
            (Expect(("github-proxy", "GET /stats/:owner/:repo"), parent=("gateway", "GET"), kind="server"),),
            "github-proxy/server.js: startTracing() (tracing.js) first, before express is loaded",
        ),
    ),
}
