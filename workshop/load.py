"""`python -m workshop load`: traffic for a running lesson, so that its traces become metrics worth reading.

Requests go out at a steady rate (open loop: a slow answer does not slow the sending, as real users do not
wait for each other), at most `concurrency` at a time, for a bounded time, to a mix of repositories that
includes the fake GitHub's error and slow ones. At the end: what was sent, the answers by status, latency
percentiles, and the trace ids of the slowest requests (their `X-Trace-Id`), to open in the trace viewer.

It is built on `requests` and the standard library's `statistics`, not on a load-testing framework: Locust,
the one that runs headless from Python, brings gevent (which patches the threads the lessons' code uses),
ZeroMQ and a web UI of its own, for what here is a loop, a thread pool and three percentiles.

Its arguments are checked before anything is sent or printed: a rate of `nan` or `inf`, or a rate and a
duration that make no request at all (`--duration 0.5s --rate 1`), are refused with what to change. It
exits 1 if no request was answered at all (the lesson is not running there, or stopped), 130 after Ctrl-C.
"""

from __future__ import annotations

import ipaddress
import math
import random
import socket
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from workshop.errors import WorkshopError
from workshop.ports import ENDPOINT

MAX_RATE = 200.0  # requests a second
MAX_DURATION_S = 600
MAX_CONCURRENCY = 64
TIMEOUT_S = 15.0
# what a room's traffic asks: mostly repositories asked before, some asked for the first time (GitHub is still
# computing their statistics: the lessons' 202 staircase), some of GitHub's errors, a few slow ones
NEW = "load/new"  # a repository no one asked for yet: a fresh name each time
MIX = [
    ("pallets/flask", 40),
    ("psf/requests", 20),
    ("encode/httpx", 10),
    (NEW, 10),
    ("a/server-error", 6),
    ("a/does-not-exist", 6),
    ("a/rate-limited", 3),
    ("a/empty", 3),
    ("a/slow", 2),
]


@dataclass
class Answer:
    status: int | str  # the HTTP status, or the kind of failure ("timeout", "refused")
    seconds: float
    trace_id: str = ""
    path: str = ""


@dataclass
class Summary:
    sent: int = 0
    answers: list[Answer] = field(default_factory=list)
    stopped: bool = False  # by Ctrl-C

    def by_status(self) -> dict[str, int]:
        return dict(sorted(Counter(str(answer.status) for answer in self.answers).items()))

    def percentiles_ms(self) -> dict[str, float]:
        times = [answer.seconds * 1000 for answer in self.answers if isinstance(answer.status, int)]
        if len(times) < 2:
            return {name: times[0] for name in ("p50", "p95", "p99")} if times else {}
        cuts = statistics.quantiles(times, n=100, method="inclusive")
        return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}

    def answered(self) -> int:
        """How many got an HTTP answer (any status): not refused, not timed out."""
        return sum(isinstance(answer.status, int) for answer in self.answers)

    def slowest(self, count: int = 3) -> list[Answer]:
        traced = [answer for answer in self.answers if answer.trace_id]
        return sorted(traced, key=lambda answer: answer.seconds, reverse=True)[:count]


def check_target(url: str, allow_remote: bool) -> str:
    """The URL, if it may be sent load: http(s), and on this machine unless asked otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WorkshopError(f"not an http:// URL: {url!r} (like http://127.0.0.1:{ENDPOINT['app'].default})")
    if not allow_remote and not _loopback(parts.hostname):
        raise WorkshopError(
            f"{parts.hostname} is not this machine: load goes to a lesson on this laptop. To load another "
            "machine you are allowed to, add --allow-remote"
        )
    return url.rstrip("/")


def _loopback(host: str) -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def planned(rate: float, duration_s: float, concurrency: int) -> int:
    """How many requests `rate` a second for `duration_s` makes; a WorkshopError, saying which, if any of them
    is out of bounds, not a number, or if together they make no request at all."""
    if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
        raise WorkshopError(f"--rate is requests a second: a number more than 0, at most {MAX_RATE:g} (not {rate:g})")
    if not (math.isfinite(duration_s) and 0 < duration_s <= MAX_DURATION_S):
        raise WorkshopError(f"--duration is more than 0 and at most {MAX_DURATION_S // 60} minutes")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise WorkshopError(f"--concurrency is from 1 to {MAX_CONCURRENCY} (not {concurrency})")
    total = int(rate * duration_s)
    if total < 1:
        raise WorkshopError(
            f"{rate:g} a second for {duration_s:g} s is not one request: give a longer --duration or a higher --rate"
        )
    return total


def run_load(
    base_url: str,
    rate: float,
    duration_s: float,
    concurrency: int,
    on_answer=None,
    stop: threading.Event | None = None,
    seed: int | None = None,
    mix: list[tuple[str, int]] | None = None,
) -> Summary:
    """Send `rate` requests a second for `duration_s` (at most `concurrency` in flight); every answer is
    passed to `on_answer` as it comes. `stop` ends it early (Ctrl-C): the requests in flight still finish."""
    total = planned(rate, duration_s, concurrency)
    chooser = random.Random(seed)
    paths = [f"/contributors/{repo}" for repo, _ in mix or MIX]
    weights = [weight for _, weight in mix or MIX]
    stop = stop or threading.Event()
    summary = Summary()
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(concurrency)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency))

    def one(path: str) -> None:
        began = time.monotonic()
        try:
            response = session.get(base_url + path, timeout=TIMEOUT_S, headers={"X-Client": "make load"})
            answer = Answer(response.status_code, time.monotonic() - began, response.headers.get("X-Trace-Id", ""))
        except requests.Timeout:
            answer = Answer("timeout", time.monotonic() - began)
        except requests.ConnectionError:
            answer = Answer("refused", time.monotonic() - began)
        finally:
            slots.release()
        answer.path = path
        with lock:
            summary.answers.append(answer)
        if on_answer is not None:
            on_answer(answer)

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
        pending: list[Future] = []
        for n in range(total):
            due = began + n / rate
            if stop.wait(max(0.0, due - time.monotonic())):
                summary.stopped = True
                break
            if not slots.acquire(timeout=TIMEOUT_S):  # every slot busy for a whole timeout: skip this one
                continue
            path = chooser.choices(paths, weights)[0]
            if path.endswith(NEW):
                path += f"-{n}-{chooser.randrange(10**6)}"
            pending.append(pool.submit(one, path))
            summary.sent += 1
    session.close()
    return summary


def default_url(environ: dict[str, str]) -> str:
    """The running lesson's entry: Traefik's port if something answers there (lesson 9), else the app's."""
    for name in ("edge", "app"):
        port = ENDPOINT[name].port(environ)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return f"http://127.0.0.1:{port}"
        except OSError:
            continue
    raise WorkshopError(
        f"no lesson answers on port {ENDPOINT['app'].port(environ)}: start one (make step6) in another terminal, "
        "or give its URL"
    )
