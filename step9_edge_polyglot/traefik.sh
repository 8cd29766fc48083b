#!/bin/sh
# Traefik, the proxy at the edge: learners call it, it routes to the gateway, and its spans start the trace.
# Its static configuration is given as flags (not a traefik.yml) so that the ports move with the same
# variables as every other process of the workshop; docker-compose.yml runs this very script.
#
# Traefik picks its propagation format only from OTEL_PROPAGATORS (it has no setting of its own):
# W3C `traceparent` and `baggage`, which lesson 8's services read.
# aliasHeadersStrategy=delete drops headers such as X_Forwarded_For, which a WSGI app like the gateway
# would read as X-Forwarded-For; checkNewVersion and sendAnonymousUsage off: it never calls the internet.
export OTEL_PROPAGATORS="${OTEL_PROPAGATORS:-tracecontext,baggage}"
exec traefik \
  --entryPoints.web.address="${APP_HOST:-127.0.0.1}:${EDGE_PORT:-8483}" \
  --entryPoints.web.observability.traceVerbosity=detailed \
  --entryPoints.web.http.aliasHeadersStrategy=delete \
  --providers.file.filename=routes.yml \
  --tracing.serviceName=traefik \
  --tracing.sampleRate=1.0 \
  --tracing.otlp.http.endpoint="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4318}/v1/traces" \
  --accessLog=true --log.level=ERROR --log.noColor=true \
  --global.checkNewVersion=false --global.sendAnonymousUsage=false
