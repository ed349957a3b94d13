/**
 * One configured provider at run time: its adapter, key pool, circuit
 * breaker, bulkhead, resilience settings and counters for /v1/admin/status.
 */
import type { HttpClient } from "@effect/platform"
import { Duration, Effect, Metric, MetricLabel, Redacted, Ref } from "effect"
import * as Bulkhead from "../Resilience/Bulkhead.js"
import * as CircuitBreaker from "../Resilience/CircuitBreaker.js"
import * as Adapter from "./Adapter.js"
import type { ProviderKind } from "./Domain.js"
import * as KeyPool from "./KeyPool.js"
import type { ResilienceSettings } from "./Routing.js"

export interface Settings {
  readonly maxAttempts: number
  readonly backoffBase: Duration.Duration
  readonly backoffMax: Duration.Duration
  readonly attempt: Adapter.AttemptOptions
}

export interface Counters {
  readonly attempts: number
  readonly successes: number
  readonly failures: number
  readonly retries: number
  readonly fallbacks: number
  readonly inFlight: number
}

export interface ProviderRuntime {
  readonly kind: ProviderKind
  readonly adapter: Adapter.ProviderAdapter
  readonly keys: KeyPool.KeyPool
  readonly breaker: CircuitBreaker.CircuitBreaker
  readonly bulkhead: Bulkhead.Bulkhead
  readonly settings: Settings
  readonly counters: Ref.Ref<Counters>
}

export const circuitState = Metric.gauge("parley_circuit_state", {
  description: "Circuit state per provider: 0 closed, 1 half-open, 2 open"
})
export const circuitTransitions = Metric.counter("parley_circuit_transitions_total", {
  description: "Circuit breaker state changes"
})

const stateValue = (s: CircuitBreaker.State) => s === "CLOSED" ? 0 : s === "HALF_OPEN" ? 1 : 2

export const make = (
  kind: ProviderKind,
  baseUrl: string,
  keyValues: ReadonlyArray<string>,
  s: ResilienceSettings
): Effect.Effect<ProviderRuntime, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const adapter = yield* Adapter.make(kind, baseUrl)
    const keys = yield* KeyPool.make(kind, keyValues.map((v, i) => ({ id: `${kind}#${i + 1}`, value: Redacted.make(v) })))
    const breaker = yield* CircuitBreaker.make({
      name: kind,
      slidingWindowSize: s.circuit_window ?? 20,
      minimumNumberOfCalls: s.circuit_min_calls ?? 10,
      failureRateThreshold: s.circuit_failure_rate ?? 50,
      waitDurationInOpenState: Duration.millis(s.circuit_open_ms ?? 30_000),
      permittedNumberOfCallsInHalfOpenState: s.circuit_half_open_calls ?? 3
    }, (t) =>
      Effect.logWarning("circuit breaker state change").pipe(
        Effect.annotateLogs({ provider: t.name, from: t.from, to: t.to, failure_rate: t.failureRate }),
        Effect.zipRight(Effect.annotateCurrentSpan({ "parley.circuit.transition": `${t.from}->${t.to}` })),
        Effect.zipRight(Metric.increment(Metric.taggedWithLabels(circuitTransitions, [
          MetricLabel.make("provider", t.name),
          MetricLabel.make("to", t.to)
        ]))),
        Effect.zipRight(Metric.set(Metric.tagged(circuitState, "provider", t.name), stateValue(t.to)))
      ))
    yield* Metric.set(Metric.tagged(circuitState, "provider", kind), 0)
    const bulkhead = yield* Bulkhead.make({
      name: kind,
      maxConcurrent: s.max_concurrent ?? 256,
      maxWait: Duration.millis(s.max_queue_wait_ms ?? 1_000)
    })
    const counters = yield* Ref.make<Counters>({ attempts: 0, successes: 0, failures: 0, retries: 0, fallbacks: 0, inFlight: 0 })
    return {
      kind,
      adapter,
      keys,
      breaker,
      bulkhead,
      counters,
      settings: {
        maxAttempts: s.max_attempts ?? 3,
        backoffBase: Duration.millis(s.backoff_base_ms ?? 250),
        backoffMax: Duration.millis(s.backoff_max_ms ?? 8_000),
        attempt: {
          connectTimeout: Duration.millis(s.connect_timeout_ms ?? 5_000),
          firstByteTimeout: Duration.millis(s.first_byte_timeout_ms ?? 60_000),
          idleTimeout: Duration.millis(s.idle_timeout_ms ?? 30_000)
        }
      }
    }
  })

export const count = (rt: ProviderRuntime, f: (c: Counters) => Counters) => Ref.update(rt.counters, f)
