"""The trace viewer in a real browser (Chromium, driven by Playwright), on lesson 6's real traces.

Chromium comes from the system (Debian's `chromium` package; `.ci/run` installs it): Playwright's own browser
download is not used. Without a Chromium these tests skip with the reason, except in CI, where they fail."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import session_redis_url
from tests.support.processes import stage_processes
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.serving import serve_in_thread
from workshop.terminal.query_client import QueryClient
from workshop.tracestore.collector import CollectorConfig, running_collector

SERVICES = {"gateway", "github-proxy", "worker"}


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "no Chromium found (install Debian's `chromium`, or set CHROMIUM=<path>): the browser tests did not run"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lesson6() -> Iterator[dict]:
    """Lesson 6's processes reporting to a store; a browser; one request's trace already in the store."""
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: run `make setup`")
    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=0, rate_limit=10_000))) as github,
        running_collector(CollectorConfig.on_free_ports()) as store,
        stage_processes("step6_baggage", github, store.ports, session_redis_url()) as app,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=executable)
        world = {"store": store, "app": app, "browser": browser, "query": QueryClient(store.url)}
        world["first"] = ask(world, "my laptop")
        try:
            yield world
        finally:
            browser.close()
            app.stop()


def ask(world: dict, client: str) -> str:
    """One request to lesson 6's gateway; its trace id once the whole trace is in the store."""
    response = requests.get(
        world["app"].url + "/contributors/pallets/flask?top=3", headers={"X-Client": client}, timeout=20
    )
    assert response.status_code == 200
    trace_id = response.headers["X-Trace-Id"]
    assert world["query"].wait_for_trace(trace_id, SERVICES, timeout=10) is not None
    return trace_id


@pytest.fixture
def page(lesson6):
    """A fresh browser page at 1280 px that fails the test on any console error or page error."""
    context = lesson6["browser"].new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    assert problems == [], problems


def test_search_click_through_to_the_trace_and_expand_a_span(lesson6, page):
    base, first = lesson6["store"].url, lesson6["first"]
    page.goto(base + "/")
    assert page.title() == "Search · workshop trace store"
    page.get_by_role("link", name="gateway contributors").first.click()
    page.wait_for_url(f"**/trace/{first}")
    assert page.locator(".span").count() == 8
    row = page.locator("summary", has_text="handle_clean_job")
    detail = row.locator("xpath=../div[@class='detail']")  # this row's own details
    assert not detail.is_visible()
    row.click()
    assert detail.is_visible()
    assert "my laptop" in detail.inner_text() and "contributors.top" in detail.inner_text()
    page.keyboard.press("Enter")  # the row keeps the focus: the keyboard closes it again
    assert not detail.is_visible()


def test_a_subtree_folds_away(lesson6, page):
    page.goto(lesson6["store"].url + f"/trace/{lesson6['first']}")
    worker = page.locator("summary", has_text="clean_github_data")
    assert worker.is_visible()
    page.locator("summary", has_text="send_clean_job").locator("button.fold").click()
    assert not worker.is_visible()
    assert not page.locator(".detail").first.is_visible()  # folding did not open the row's details


def test_dependencies_and_compare(lesson6, page):
    base = lesson6["store"].url
    second = ask(lesson6, "another laptop")
    page.goto(base + "/dependencies")
    graph = page.locator("svg.graph")
    assert {"gateway", "github-proxy", "worker"} <= set(graph.locator(".node text").all_text_contents())
    page.goto(base + "/search?service=gateway")
    page.get_by_label(f"compare {lesson6['first']}").check()
    page.get_by_label(f"compare {second}").check()
    page.get_by_role("button", name="Compare the two ticked traces").click()
    page.wait_for_url("**/trace/*...*")
    assert page.get_by_role("heading", name="Two traces, span by span").is_visible()
    assert page.locator("table.compare tbody tr").count() == 8


def test_a_new_trace_appears_on_the_open_search_page_without_a_reload(lesson6, page):
    page.goto(lesson6["store"].url + "/search?service=gateway")
    page.evaluate("window.notReloaded = true")
    started = time.monotonic()
    fresh = ask(lesson6, "a third laptop")
    page.get_by_label(f"compare {fresh}").wait_for(timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    assert time.monotonic() - started < 15


def test_the_monitor_page_draws_lesson_6_and_a_latency_point_opens_its_traces(lesson6, page):
    base = lesson6["store"].url
    watching = page.context.new_page()  # an open Monitor page, which must show the next request by itself
    watching.goto(base + "/monitor?window=5m")
    before = int(watching.locator(".monitor").get_attribute("data-spans"))
    watching.evaluate("window.notReloaded = true")
    ask(lesson6, "a fifth laptop")  # 8 more spans; the page asks again every 5 s, meanwhile:
    page.goto(base + "/monitor")  # bare: gateway's charts, every service's operations
    charts = page.locator("figure.monitor-chart svg")
    assert charts.count() == 3 and page.locator("figure.monitor-chart circle").count() >= 5
    assert page.locator("nav.tabs a[aria-current]").inner_text() == "gateway"
    page.locator("figure.monitor-chart", has_text="latency").locator("circle").last.click()
    page.wait_for_url("**/search?**minDuration**")
    page.locator("input[name=trace]").first.wait_for(timeout=5_000)  # the requests behind the point
    # the proxy's get_repo_contributors (jaeger-client's: no span kind) is in the bare page's table: its p95 point
    page.goto(base + "/monitor")
    row = page.locator("table.operations tbody tr", has_text="get_repo_contributors")
    assert "github-proxy" in row.inner_text() and "no kind" in row.inner_text()
    row.locator("svg.spark circle").last.click()
    page.wait_for_url("**/search?**operation=get_repo_contributors**minDuration**")
    page.locator("input[name=trace]").first.wait_for(timeout=5_000)
    page.goto(base + "/monitor")
    page.locator("nav.tabs a", has_text="github-proxy").click()  # one click to the proxy's own charts
    page.wait_for_url("**/monitor?service=github-proxy**")
    assert page.locator("figure.monitor-chart circle").count() >= 5
    watching.wait_for_function(f"Number(document.querySelector('.monitor').dataset.spans) > {before}", timeout=15_000)
    assert watching.evaluate("window.notReloaded") is True  # new figures, without a reload
