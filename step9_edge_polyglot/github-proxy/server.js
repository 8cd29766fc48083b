// The github-proxy service, now in Node.js (Express): the same HTTP API and answers as lesson 8's
// github_proxy.py, which this lesson removes.
//
//     GET /stats/<owner>/<repo>   ->   GitHub's `stats/contributors` answer for owner/repo, or {"error": ...}
//
// It asks GitHub's `stats/contributors` API (by default the workshop's offline fake GitHub), retries
// GitHub's 202 and turns GitHub's failures into a status and a message for the gateway to pass on.
// OpenTelemetry's HTTP instrumentation reads `traceparent` and `baggage` from the request's headers, so
// these spans join the Python gateway's trace: the trace is a wire format, not a library.
"use strict";

// Tracing first: OpenTelemetry patches `http` and `express` as they load, so it starts before they do.
const { startTracing, stopTracing, toAThirdParty } = require("./tracing");
if (require.main === module) startTracing();

const express = require("express");
const { context, propagation, trace, SpanStatusCode } = require("@opentelemetry/api");

const GITHUB_API_URL = process.env.GITHUB_API_URL || "http://127.0.0.1:8482"; // the fake GitHub
const GITHUB_TOKEN = process.env.GITHUB_TOKEN || ""; // optional: GitHub allows 60 calls an hour without one
const GITHUB_TIMEOUT = Number(process.env.GITHUB_TIMEOUT || "5"); // seconds for each call to GitHub (body too)
const MAX_ATTEMPTS = 5; // GitHub answers 202 while it computes the stats: ask again, up to this many times
const RETRY_DELAY = Number(process.env.GITHUB_RETRY_DELAY || "1"); // seconds to wait after a 202

// GitHub's naming rules: owners are 1-39 letters, digits or single hyphens, not at either end;
// repositories are 1-100 letters, digits, '.', '-' or '_' (but not '.' or '..').
const OWNER_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
const REPO_NAME = /^[A-Za-z0-9._-]{1,100}$/;

const tracer = trace.getTracer("github-proxy");
const app = express();
app.disable("x-powered-by");
app.set("etag", false); // GitHub's stats change: no conditional answers
app.set("case sensitive routing", true); // /STATS/... and /stats/.../ are unknown routes, as in Flask
app.set("strict routing", true);

// GET only: anything else (HEAD and OPTIONS too) is 405 with `Allow: GET`, before any route runs: no call to
// GitHub, no span (tracing.js), as the Python services answer it.
const NOT_ALLOWED = "The method is not allowed for the requested URL: only GET is.";
app.use((req, res, next) => {
  if (req.httpVersionMajor !== 1) return errorResponse(res, 505, "http version not supported"); // as in Python
  if (req.method === "GET") return next();
  res.set("Allow", "GET");
  errorResponse(res, 405, NOT_ALLOWED);
});

// Every recorded answer names its trace: look it up with `python -m workshop trace <id>` or in Jaeger.
// (A caller can ask not to record it: `traceparent: 00-...-00`. Then there is no trace to name.)
app.use((req, res, next) => {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (spanContext && spanContext.traceFlags & 1) res.set("X-Trace-Id", spanContext.traceId);
  next();
});

// A GitHub failure: `status` and `message` are what our client gets.
class GitHubError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

app.get("/stats/:owner/:repo", async (req, res, next) => {
  const { owner, repo } = req.params;
  if (owner.includes("/") || repo.includes("/")) return next(); // a %2F: Flask reads it as a "/", no such route
  if (!OWNER_NAME.test(owner)) {
    return errorResponse(res, 400, `invalid owner ${quote(owner)}: use 1-39 letters, digits or single hyphens`);
  }
  if (!REPO_NAME.test(repo) || repo === "." || repo === "..") {
    return errorResponse(res, 400, `invalid repository ${quote(repo)}: use 1-100 letters, digits, '.', '-' or '_'`);
  }
  const span = trace.getActiveSpan();
  span?.setAttribute("github.repo", `${owner}/${repo}`);
  // Baggage from the gateway, carried in the `baggage` header: recorded here, where it helps.
  span?.setAttribute("baggage.client", getBaggage(span, "client") || "-");
  try {
    res.json(await getRepoContributors(owner, repo));
  } catch (error) {
    if (!(error instanceof GitHubError)) throw error;
    log("warning", `GitHub error for ${owner}/${repo}: ${error.message}`);
    errorResponse(res, error.status, error.message, error.retryAfter);
  }
});

// GitHub's raw stats for owner/repo: a list with one entry per contributor.
async function getRepoContributors(owner, repo) {
  return tracer.startActiveSpan("get_repo_contributors", async (span) => {
    try {
      const url = `${GITHUB_API_URL}/repos/${owner}/${repo}/stats/contributors`;
      const headers = { Accept: "application/vnd.github+json" };
      if (GITHUB_TOKEN) headers.Authorization = `Bearer ${GITHUB_TOKEN}`;
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const response = await callGitHub(url, headers, attempt);
        if (response.status === 202) { // "stats are being computed": wait, then ask again
          log("info", `GitHub is computing the stats of ${owner}/${repo}: retrying in ${RETRY_DELAY} s`);
          span.addEvent("retry", { message: "GitHub answered 202", wait_s: RETRY_DELAY });
          await response.body?.cancel();
          await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY * 1000));
          continue;
        }
        return await readStats(response, owner, repo);
      }
      throw new GitHubError(503, `GitHub is still computing the stats of ${owner}/${repo}: try again soon`, 5);
    } finally {
      span.end();
    }
  });
}

// One attempt. The undici instrumentation makes fetch's CLIENT span (the URL, never the headers: they
// hold the token); what GitHub said about it is an event on get_repo_contributors's span. GitHub is a
// third party: it gets no trace context and no baggage (the instrumentation would send both).
async function callGitHub(url, headers, attempt) {
  let response;
  try {
    const signal = AbortSignal.timeout(GITHUB_TIMEOUT * 1000);
    response = await toAThirdParty(() => fetch(url, { headers, signal }));
  } catch (error) {
    if (error.name === "TimeoutError") throw new GitHubError(504, `GitHub did not answer within ${GITHUB_TIMEOUT} s`);
    throw new GitHubError(502, `cannot connect to GitHub at ${GITHUB_API_URL}`);
  }
  const answer = { "github.attempt": attempt, "http.response.status_code": response.status };
  const remaining = response.headers.get("X-RateLimit-Remaining");
  if (remaining !== null) answer["github.rate_limit.remaining"] = remaining; // as GitHub wrote it
  trace.getActiveSpan()?.addEvent("github.response", answer);
  return response;
}

async function readStats(response, owner, repo) {
  const status = response.status;
  if (status === 200) {
    try {
      return await response.json();
    } catch (error) {
      if (error.name === "TimeoutError") throw new GitHubError(504, `GitHub did not answer within ${GITHUB_TIMEOUT} s`);
      throw new GitHubError(502, "GitHub answered with a body that is not JSON");
    }
  }
  await response.body?.cancel();
  if (status === 204) return []; // a repository without commits
  if (status === 404) throw new GitHubError(404, `repository ${owner}/${repo} not found on GitHub`);
  if ((status === 403 || status === 429) && response.headers.get("X-RateLimit-Remaining") === "0") {
    const reset = parseInt(response.headers.get("X-RateLimit-Reset") || "0", 10) || 0;
    const wait = Math.max(reset - Math.floor(Date.now() / 1000), 1);
    throw new GitHubError(429, `GitHub's rate limit is used up: try again in ${wait} s`, wait);
  }
  if (status === 401 || status === 403) {
    throw new GitHubError(502, `GitHub refused the request (${status}): check GITHUB_TOKEN`);
  }
  throw new GitHubError(502, `GitHub answered ${status}`);
}

function errorResponse(res, status, message, retryAfter) {
  if (retryAfter !== undefined) res.set("Retry-After", String(retryAfter));
  res.status(status).json({ error: message });
}

// Anything else: a JSON answer, as the Python proxy gives.
app.use((req, res) => errorResponse(res, 404, "no such route: try /stats/<owner>/<repo>"));
app.use((error, req, res, next) => { // eslint-disable-line no-unused-vars
  if (error instanceof URIError || error.status === 400) { // Express could not decode the path
    return errorResponse(res, 400, "invalid %-escape in the path");
  }
  if (error.status >= 400 && error.status < 500) return errorResponse(res, error.status, "bad request");
  log("error", `unexpected error: ${error.stack || error}`);
  const span = trace.getActiveSpan(); // an exception handled here is not seen by the instrumentation
  span?.recordException(error);
  span?.setStatus({ code: SpanStatusCode.ERROR, message: `${error.name}: ${error.message}` });
  errorResponse(res, 500, "internal error: see the app's log");
});

// A baggage item, as a service downstream reads it: baggage is input like any other. An item bigger than
// MAX_BAGGAGE_BYTES (no gateway of ours sets one) is ignored, with an event, as lesson 8's Python did.
const MAX_BAGGAGE_BYTES = 64;
function getBaggage(span, key) {
  const value = propagation.getBaggage(context.active())?.getEntry(key)?.value;
  if (value !== undefined && Buffer.byteLength(key) + Buffer.byteLength(value) > MAX_BAGGAGE_BYTES) {
    span?.addEvent("baggage.ignored", { key, limit: MAX_BAGGAGE_BYTES });
    return undefined;
  }
  return value;
}

// Python's repr() of a name, as the Python proxy's messages show it: quoted, and nothing invisible.
function quote(text) {
  const mark = text.includes("'") && !text.includes('"') ? '"' : "'";
  const escapes = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", [mark]: `\\${mark}` };
  let quoted = "";
  for (const char of text) {
    const code = char.codePointAt(0);
    if (escapes[char]) quoted += escapes[char];
    else if (char !== " " && /[\p{C}\p{Z}]/u.test(char)) { // not printable, as Python's str.isprintable() says
      const [prefix, width] = code < 0x100 ? ["x", 2] : code < 0x10000 ? ["u", 4] : ["U", 8];
      quoted += `\\${prefix}${code.toString(16).padStart(width, "0")}`;
    } else quoted += char;
  }
  return mark + quoted + mark;
}

// One log line, with the trace and span it belongs to, as lesson 8's Python services write them.
function log(level, message) {
  const spanContext = trace.getActiveSpan()?.spanContext();
  const ids = spanContext ? `trace=${spanContext.traceId} span=${spanContext.spanId}` : "trace=0 span=0";
  console.log(`[${ids}] ${level.toUpperCase()} github-proxy: ${message}`);
}

if (require.main === module) {
  if (!(GITHUB_TIMEOUT > 0)) {
    console.error(`GITHUB_TIMEOUT must be a number of seconds, not ${JSON.stringify(process.env.GITHUB_TIMEOUT)}`);
    process.exit(2);
  }
  const host = process.env.APP_HOST || "127.0.0.1";
  const port = Number(process.env.PROXY_PORT || "8481");
  const server = app.listen(port, host, () => log("info", `serving on http://${host}:${port}`));
  server.on("error", (error) => {
    console.error(`github-proxy cannot listen on ${host}:${port}: ${error.message} (move it with PROXY_PORT=<port>)`);
    process.exit(1);
  });
  // What Node.js itself turns away (a header too big, a method it does not know): JSON too, as in Python.
  server.on("clientError", (error, socket) => {
    const tooBig = error.code === "HPE_HEADER_OVERFLOW";
    const [status, reason] = tooBig ? [431, "Request Header Fields Too Large"] : [400, "Bad Request"];
    const body = JSON.stringify({ error: reason.toLowerCase() });
    const head = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}`;
    if (socket.writable) socket.end(`${head}\r\nConnection: close\r\n\r\n${body}`);
  });
  // CONNECT (a tunnel) never reaches Express: 405 too, as every method but GET.
  server.on("connect", (req, socket) => {
    const body = JSON.stringify({ error: NOT_ALLOWED });
    const head = `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Type: application/json\r\n`;
    socket.end(`${head}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  });
  // Until Ctrl-C or SIGTERM, then the requests in flight are finished (10 s at most, as in Python), and the
  // last spans are sent.
  const stop = () => {
    server.close(async () => { await stopTracing(); process.exit(0); });
    setTimeout(() => server.closeAllConnections(), 10_000).unref();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

module.exports = { app };
