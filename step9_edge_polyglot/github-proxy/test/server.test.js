// The Node github-proxy's spans, kept in memory: `node --test` in this folder (`make test` runs it too).
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");

const { InMemorySpanExporter } = require("@opentelemetry/sdk-trace-base");
const { startTracing, stopTracing } = require("../tracing");

const TOKEN = "ghp_test_token_never_in_a_span";
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";
const exporter = new InMemorySpanExporter();
let github; // a fake GitHub: 202 twice ("computing"), then the stats; it keeps the headers it was sent
let proxy;
const seen = [];

before(async () => {
  github = http.createServer((req, res) => {
    seen.push(req.headers);
    const status = seen.length <= 2 ? 202 : 200;
    res.writeHead(status, { "Content-Type": "application/json", "X-RateLimit-Remaining": "59" });
    res.end(status === 200 ? JSON.stringify([{ author: { login: "octocat" }, total: 3 }]) : "{}");
  });
  await new Promise((resolve) => github.listen(0, "127.0.0.1", resolve));
  Object.assign(process.env, {
    GITHUB_API_URL: `http://127.0.0.1:${github.address().port}`,
    GITHUB_TOKEN: TOKEN,
    GITHUB_RETRY_DELAY: "0.01",
  });
  startTracing(exporter); // before server.js loads express
  const { app } = require("../server");
  proxy = await new Promise((resolve) => { const server = app.listen(0, "127.0.0.1", () => resolve(server)); });
});

after(async () => {
  proxy.close();
  github.close();
  await stopTracing();
});

// The test's own calls, as a client outside the service: no span of their own, their headers as written.
function untracedFetch(url, options) {
  const { context } = require("@opentelemetry/api");
  const { suppressTracing } = require("@opentelemetry/core");
  return context.with(suppressTracing(context.active()), () => fetch(url, options));
}

async function flushed() {
  const { trace } = require("@opentelemetry/api");
  await trace.getTracerProvider().getDelegate().forceFlush();
  return exporter.getFinishedSpans();
}

test("the proxy's spans join the caller's trace, with its baggage and GitHub's answers", async () => {
  const response = await untracedFetch(`http://127.0.0.1:${proxy.address().port}/stats/octocat/hello`, {
    headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, baggage: "client=node-test" },
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), [{ author: { login: "octocat" }, total: 3 }]);
  assert.equal(response.headers.get("x-trace-id"), TRACE_ID);

  const spans = (await flushed()).filter((span) => span.spanContext().traceId === TRACE_ID);
  const byName = (name) => spans.filter((span) => span.name === name);
  const [server] = byName("GET /stats/:owner/:repo");
  assert.ok(server, `no server span among ${spans.map((s) => s.name)}`);
  assert.equal(server.parentSpanContext?.spanId ?? server.parentSpanId, PARENT_ID);
  assert.equal(server.attributes["baggage.client"], "node-test");
  assert.equal(server.attributes["github.repo"], "octocat/hello");
  assert.equal(server.resource.attributes["telemetry.sdk.language"], "nodejs");
  assert.equal(server.resource.attributes["service.name"], "github-proxy");

  const [work] = byName("get_repo_contributors");
  const parentOf = (span) => span.parentSpanContext?.spanId ?? span.parentSpanId;
  const handler = spans.find((span) => span.spanContext().spanId === parentOf(work));
  assert.ok(handler, "get_repo_contributors has a parent in this trace");
  const events = work.events.map((event) => event.name);
  assert.deepEqual(events, ["github.response", "retry", "github.response", "retry", "github.response"]);
  assert.deepEqual(work.events.map((e) => e.attributes["github.attempt"]).filter(Boolean), [1, 2, 3]);

  const calls = spans.filter((span) => parentOf(span) === work.spanContext().spanId);
  assert.equal(calls.length, 3, "one CLIENT span per call to GitHub");
  // GitHub is a third party: none of our trace context or baggage reached it
  const propagated = ["traceparent", "tracestate", "baggage", "uber-trace-id"];
  assert.ok(seen.every((headers) => propagated.every((name) => !(name in headers))), JSON.stringify(seen));
  assert.ok(seen.every((headers) => headers.authorization === `Bearer ${TOKEN}`));
  assert.ok(!JSON.stringify(spans.map((s) => [s.attributes, s.events])).includes(TOKEN), "the token is in no span");
});

test("an invalid name is 400 with a message, and never reaches GitHub", async () => {
  const before = seen.length;
  const response = await untracedFetch(`http://127.0.0.1:${proxy.address().port}/stats/-octocat/hello`);
  assert.equal(response.status, 400);
  assert.match((await response.json()).error, /^invalid owner '-octocat'/);
  assert.equal(seen.length, before);
});

test("a garbled path or an unknown route is answered in JSON, without a stack trace", async () => {
  const base = `http://127.0.0.1:${proxy.address().port}`;
  for (const [path, status] of [["/stats/%E0%A4%A/x", 400], ["/nothing/here", 404]]) {
    const response = await untracedFetch(base + path);
    assert.equal(response.status, status, path);
    const body = await response.json();
    assert.ok(body.error && !body.error.includes("    at "), JSON.stringify(body));
  }
});
