/**
 * Trace export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, Effect's spans go
 * through the OpenTelemetry Node SDK — a batch span processor and the
 * OTLP/HTTP exporter (JSON), to `<endpoint>/v1/traces` — with the resource
 * `service.name` (`OTEL_SERVICE_NAME`, default `parley`) and
 * `service.version` (package.json). Without it, nothing is installed and
 * spans stay in-process (Effect's native tracer).
 *
 * Propagation needs nothing here: the server span continues an incoming
 * `traceparent` (./ServerSpan.ts), and the platform HttpClient the provider
 * adapters use writes `traceparent` on every outgoing request.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { type ConfigError, Duration, Effect, Layer, Option, Redacted } from "effect"
import packageJson from "../../package.json" with { type: "json" }
import { ObservabilityConfig, TracingExportConfig } from "../Config.js"

/** `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs, comma-separated, values URL-encoded (OTel spec). */
export const parseHeaders = (raw: string): Record<string, string> => {
  const headers: Record<string, string> = {}
  for (const pair of raw.split(",")) {
    const at = pair.indexOf("=")
    if (at <= 0) continue
    const key = pair.slice(0, at).trim()
    const value = pair.slice(at + 1).trim()
    if (key !== "") headers[key] = decodeURIComponent(value)
  }
  return headers
}

/** The base endpoint plus the signal path, as the OTel spec says for OTLP/HTTP. */
export const tracesUrl = (endpoint: string): string => `${endpoint.replace(/\/+$/, "")}/v1/traces`

export const TracingLive: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const cfg = yield* ObservabilityConfig
    const exportCfg = yield* TracingExportConfig
    if (Option.isNone(cfg.otlpEndpoint)) return Layer.empty
    const url = tracesUrl(cfg.otlpEndpoint.value)
    const headers = Option.match(exportCfg.headers, { onNone: () => ({}), onSome: (h) => parseHeaders(Redacted.value(h)) })
    yield* Effect.logInfo("exporting traces over OTLP/HTTP").pipe(
      Effect.annotateLogs({ otlp_url: url, service_name: cfg.serviceName })
    )
    return NodeSdk.layer(() => ({
      resource: { serviceName: cfg.serviceName, serviceVersion: packageJson.version },
      spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url, headers }), {
        scheduledDelayMillis: Duration.toMillis(exportCfg.batchDelay)
      }),
      // On shutdown the provider flushes what is batched; a dead collector must not hold the exit.
      shutdownTimeout: Duration.seconds(5)
    }))
  })
)
