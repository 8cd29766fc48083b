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
# Each span is exported on its own: Go's protobuf refuses to encode a string that is not UTF-8 (a client's
# `%FF` in a path, a raw byte in a User-Agent), and an exporter that cannot encode a span loses its whole
# batch, other clients' spans with it. Alone, a bad span costs only itself (Traefik says so at --log.level=DEBUG).
export OTEL_BSP_MAX_EXPORT_BATCH_SIZE="${OTEL_BSP_MAX_EXPORT_BATCH_SIZE:-1}"
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
