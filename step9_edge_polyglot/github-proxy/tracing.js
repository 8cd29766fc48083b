// Tracing for the Node.js github-proxy: OpenTelemetry for JavaScript, the same ideas as lesson 8's tracing.py.
//
// Spans go as OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318, the trace store or a
// real Jaeger v2). The trace context arrives and leaves in W3C `traceparent` and `baggage` headers, as the
// Python services speak them (OTEL_PROPAGATORS, default tracecontext,baggage). If nothing receives the spans
// they are dropped and the service keeps serving. A call made within `toAThirdParty()` (the calls to GitHub)
// gets its CLIENT span but no trace context and no baggage, as in lesson 8's Python.
"use strict";

process.env.OTEL_SEMCONV_STABILITY_OPT_IN ??= "http"; // the current HTTP attribute names, as in lesson 8
process.env.OTEL_METRICS_EXPORTER ??= "none"; // traces only: the trace store takes no metrics
process.env.OTEL_LOGS_EXPORTER ??= "none";

const { NodeSDK } = require("@opentelemetry/sdk-node");
const { BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http");
const { HttpInstrumentation } = require("@opentelemetry/instrumentation-http");
const { ExpressInstrumentation } = require("@opentelemetry/instrumentation-express");
const { UndiciInstrumentation } = require("@opentelemetry/instrumentation-undici");
const { context, createContextKey } = require("@opentelemetry/api");
const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = require("@opentelemetry/core");
const { getPropagatorFromEnv } = require("@opentelemetry/sdk-node/build/src/utils"); // what NodeSDK does

const EXPORT_TIMEOUT_MS = 2000; // to send one batch of spans (the default, 10 s, delays every exit)

let sdk;

// Start tracing before `http` and `express` are loaded: the instrumentations patch them as they load.
// `exporter`: where spans go (the tests pass one that keeps them in memory). Without one, OTLP/HTTP, sent
// every 0.2 s; or, if OTEL_TRACES_EXPORTER is set (`zipkin`, `console`...), what it names, the standard way.
function startTracing(exporter) {
  const chosenByVariable = !exporter && process.env.OTEL_TRACES_EXPORTER;
  exporter ??= new OTLPTraceExporter({ timeoutMillis: EXPORT_TIMEOUT_MS });
  const chosen = getPropagatorFromEnv(); // OTEL_PROPAGATORS; undefined if not set, null for "none"
  const propagator = chosen === undefined ? defaultPropagator() : chosen;
  sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME || "github-proxy",
    textMapPropagator: propagator && new NotToThirdParties(propagator),
    spanProcessors: chosenByVariable ? undefined : [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 200 })],
    instrumentations: [
      // a SERVER span per GET request in, reading traceparent and baggage; anything else is answered 405
      // at once (server.js), with no span, as the Python services do
      new HttpInstrumentation({ ignoreIncomingRequestHook: (request) => request.method !== "GET" }),
      // names that span after its route; no spans of its own for Express's layers
      new ExpressInstrumentation({ ignoreLayersType: ["middleware", "router", "request_handler"] }),
      new UndiciInstrumentation(), // a CLIENT span for every fetch() to GitHub
    ],
  });
  sdk.start();
}

function defaultPropagator() {
  return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
}

// GitHub is a third party: the instrumentations would write our trace context and baggage into every call
// they trace. Within toAThirdParty(fn), NotToThirdParties writes nothing; the call keeps its span.
const THIRD_PARTY = createContextKey("call to a third party");

function toAThirdParty(fn) {
  return context.with(context.active().setValue(THIRD_PARTY, true), fn);
}

class NotToThirdParties {
  constructor(propagator) {
    this.propagator = propagator;
  }

  inject(ctx, carrier, setter) {
    if (!ctx.getValue(THIRD_PARTY)) this.propagator.inject(ctx, carrier, setter);
  }

  extract(ctx, carrier, getter) {
    return this.propagator.extract(ctx, carrier, getter);
  }

  fields() {
    return this.propagator.fields();
  }
}

// Send the last spans, then stop. Call it before the process exits.
async function stopTracing() {
  if (sdk) await sdk.shutdown().catch(() => {}); // nothing listening: the spans are lost, the exit is not
}

module.exports = { startTracing, stopTracing, toAThirdParty };
