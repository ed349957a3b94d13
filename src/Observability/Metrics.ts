/**
 * Parley's own metrics: HTTP requests, error responses by catalog code and
 * the database pool. Provider, circuit-breaker and limits metrics live
 * beside the code that updates them (src/Providers, src/Limits, src/Auth).
 * Everything lands in Effect's global metric registry, which GET /metrics
 * renders as Prometheus text (./Prometheus.ts).
 */
import { Effect, Metric, MetricBoundaries, MetricLabel } from "effect"
import { render } from "./Prometheus.js"

/** 5 ms … ~20 s, then +Inf. */
const secondsBuckets = MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 14 })

export const httpRequests = Metric.counter("parley_http_requests_total", {
  description: "HTTP requests by method, route template and status (499: the client went away)"
})
export const httpDuration = Metric.histogram(
  "parley_http_request_duration_seconds",
  secondsBuckets,
  "HTTP request duration by method, route template and status, until the response was written (streams: until their end)"
)
export const errorResponses = Metric.counter("parley_errors_total", {
  description: "Error responses by catalog code"
})

/** The label a request's route gets when no endpoint matches: a bounded value, never the raw path. */
export const unmatchedRoute = "unmatched"

/**
 * One tagged metric per label set, built on first use. Tagging builds a new
 * metric key, which the registry hashes on every update: done per request,
 * that cost is paid again and again for the same few label sets. Only for
 * bounded label values (route templates, statuses, providers, outcomes).
 */
export const memoize = <M>(make: (...labels: Array<string>) => M): ((...labels: Array<string>) => M) => {
  const cache = new Map<string, M>()
  return (...labels) => {
    const key = labels.join("\u0000")
    let metric = cache.get(key)
    if (metric === undefined) {
      metric = make(...labels)
      cache.set(key, metric)
    }
    return metric
  }
}

const requestMetrics = memoize((method, route, status) => {
  const labels = [MetricLabel.make("method", method), MetricLabel.make("route", route), MetricLabel.make("status", status)]
  return { count: Metric.taggedWithLabels(httpRequests, labels), duration: Metric.taggedWithLabels(httpDuration, labels) }
})

export const recordRequest = (method: string, route: string, status: number, seconds: number) => {
  const m = requestMetrics(method, route, String(status))
  return Effect.zipRight(Metric.increment(m.count), Metric.update(m.duration, seconds))
}

export const countError = (code: string) => Metric.increment(Metric.tagged(errorResponses, "code", code))

// The pool's counts are gauges set when /metrics is scraped (see PoolHealth.publishPoolGauges).
export const dbPoolSize = Metric.gauge("parley_db_pool_size", { description: "Open connections in the pool" })
export const dbPoolIdle = Metric.gauge("parley_db_pool_idle", { description: "Idle connections in the pool" })
export const dbPoolWaiting = Metric.gauge("parley_db_pool_waiting", { description: "Callers waiting for a connection" })
export const dbPoolMax = Metric.gauge("parley_db_pool_max", { description: "The pool's connection limit" })
export const dbPoolUtilisation = Metric.gauge("parley_db_pool_utilisation", {
  description: "Connections in use / pool max, 0..1"
})
export const dbHealthStatus = Metric.gauge("parley_db_health_status", {
  description: "Database pool health: 0 ok, 1 degraded, 2 down"
})
export const dbHealthFailures = Metric.gauge("parley_db_health_consecutive_failures", {
  description: "Failed health probes in a row"
})
export const dbProbeDuration = Metric.histogram(
  "parley_db_probe_duration_seconds",
  secondsBuckets,
  "Round trip of the health probe (`select 1`, connection checkout included)"
)
export const dbProbeFailures = Metric.counter("parley_db_probe_failures_total", {
  description: "Health probes that failed or timed out"
})
export const dbConnectionHold = Metric.histogram(
  "parley_db_connection_hold_seconds",
  secondsBuckets,
  "How long a pooled connection stays checked out: one statement outside a transaction, the whole transaction inside one"
)

/** The registry as Prometheus exposition text. */
export const exposition: Effect.Effect<string> = Effect.map(Metric.snapshot, render)
