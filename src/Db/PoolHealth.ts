/**
 * Database pool health. A scoped fiber probes the database every interval
 * (`select 1` through the pool, under a timeout) and keeps the pool's state
 * for /ready, /v1/admin/status and /metrics:
 *
 * - `ok`: the last probe answered and the pool has room;
 * - `degraded`: a probe failed (1 or 2 in a row), or the pool's utilisation
 *   was above `PARLEY_DB_POOL_DEGRADED_RATIO` — still ready;
 * - `down`: 3 probes in a row failed — not ready (503).
 *
 * Utilisation is connections in use / pool max, averaged over the time since
 * the previous probe (from the pool's `acquire`/`release` events), not read at
 * one instant: a one-connection pool is "full" whenever a query runs, which
 * says nothing about whether callers queue for it.
 *
 * The probe talks to the pg pool directly, so it makes no spans (no trace
 * every few seconds). The same pool events time every connection checkout
 * for the connection-hold histogram.
 */
import { Clock, Duration, Effect, Metric, Ref, type Scope } from "effect"
import type pg from "pg"
import { PoolHealthConfig } from "../Config.js"
import * as M from "../Observability/Metrics.js"
import { DbPool } from "./Pool.js"

export type DbHealthStatus = "ok" | "degraded" | "down"

export interface PoolSample {
  readonly total: number
  readonly idle: number
  readonly waiting: number
  readonly max: number
}

export interface PoolHealthState {
  readonly status: DbHealthStatus
  readonly consecutiveFailures: number
  /** Connections in use / pool max, 0..1, averaged since the previous probe. */
  readonly utilisation: number
  /** Epoch milliseconds of the last probe; null before the first. */
  readonly lastCheckAt: number | null
  readonly lastLatencyMs: number | null
  /** Why the last probe failed; null after a success. For the admin, never for clients. */
  readonly lastError: string | null
}

export type ProbeOutcome =
  | { readonly _tag: "Ok"; readonly latencyMs: number }
  | { readonly _tag: "Failed"; readonly latencyMs: number; readonly error: string }

export const degradedAfterFailures = 1
export const downAfterFailures = 3

export const statusOf = (consecutiveFailures: number, utilisation: number, degradedRatio: number): DbHealthStatus =>
  consecutiveFailures >= downAfterFailures
    ? "down"
    : consecutiveFailures >= degradedAfterFailures || utilisation > degradedRatio
    ? "degraded"
    : "ok"

export const initialState: PoolHealthState = {
  status: "ok",
  consecutiveFailures: 0,
  utilisation: 0,
  lastCheckAt: null,
  lastLatencyMs: null,
  lastError: null
}

/** The state machine: one probe's outcome and the pool's utilisation move the state. */
export const step = (
  state: PoolHealthState,
  outcome: ProbeOutcome,
  utilisation: number,
  degradedRatio: number,
  at: number
): PoolHealthState => {
  const consecutiveFailures = outcome._tag === "Ok" ? 0 : state.consecutiveFailures + 1
  return {
    status: statusOf(consecutiveFailures, utilisation, degradedRatio),
    consecutiveFailures,
    utilisation,
    lastCheckAt: at,
    lastLatencyMs: outcome.latencyMs,
    lastError: outcome._tag === "Failed" ? outcome.error : null
  }
}

export interface MonitorOptions {
  /** One round trip to the database; any failure counts. */
  readonly probe: Effect.Effect<unknown, unknown>
  /** Share of the pool in use, 0..1, averaged since the previous call. */
  readonly utilisation: Effect.Effect<number>
  /** The pool's counts right now. */
  readonly sample: Effect.Effect<PoolSample>
  readonly interval: Duration.Duration
  readonly timeout: Duration.Duration
  readonly degradedRatio: number
}

export interface PoolHealthMonitor {
  readonly current: Effect.Effect<PoolHealthState>
  /** The pool's counts right now. */
  readonly sample: Effect.Effect<PoolSample>
  /** Sets the pool gauges from a fresh sample: called when /metrics is scraped. */
  readonly publishPoolGauges: Effect.Effect<void>
}

const statusValue = (s: DbHealthStatus) => s === "ok" ? 0 : s === "degraded" ? 1 : 2

const describe = (u: unknown): string => u instanceof Error ? u.message : String(u)

/**
 * The monitor: a probe every interval until the scope closes. It starts `ok`
 * (startup has just connected) and probes first after one interval.
 */
export const makeMonitor = (options: MonitorOptions): Effect.Effect<PoolHealthMonitor, never, Scope.Scope> =>
  Effect.gen(function*() {
    const state = yield* Ref.make(initialState)

    const probeOnce = Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const result = yield* options.probe.pipe(
        Effect.timeoutFail({
          duration: options.timeout,
          onTimeout: () => `no answer within ${Duration.toMillis(options.timeout)} ms`
        }),
        Effect.either
      )
      const latencyMs = (yield* Clock.currentTimeMillis) - started
      return result._tag === "Right"
        ? { _tag: "Ok", latencyMs } satisfies ProbeOutcome
        : { _tag: "Failed", latencyMs, error: describe(result.left) } satisfies ProbeOutcome
    })

    const check = Effect.gen(function*() {
      // Read first: the window is the interval before the probe, not the probe's own checkout.
      const utilisation = Math.min(1, Math.max(0, yield* options.utilisation))
      const outcome = yield* probeOnce
      const at = yield* Clock.currentTimeMillis
      const [before, after] = yield* Ref.modify(state, (s) => {
        const next = step(s, outcome, utilisation, options.degradedRatio, at)
        return [[s, next] as const, next]
      })
      yield* Metric.update(M.dbProbeDuration, outcome.latencyMs / 1000)
      if (outcome._tag === "Failed") yield* Metric.increment(M.dbProbeFailures)
      yield* Metric.set(M.dbHealthStatus, statusValue(after.status))
      yield* Metric.set(M.dbHealthFailures, after.consecutiveFailures)
      yield* Metric.set(M.dbPoolUtilisation, after.utilisation)
      if (before.status !== after.status) {
        const log = after.status === "ok" ? Effect.logInfo : Effect.logWarning
        yield* log("database pool health changed").pipe(Effect.annotateLogs({
          from: before.status,
          to: after.status,
          consecutive_failures: after.consecutiveFailures,
          utilisation: after.utilisation,
          ...(after.lastError !== null ? { cause: after.lastError } : {})
        }))
      }
      return after
    })

    const publishPoolGauges = Effect.flatMap(options.sample, (s) =>
      Effect.all([
        Metric.set(M.dbPoolSize, s.total),
        Metric.set(M.dbPoolIdle, s.idle),
        Metric.set(M.dbPoolWaiting, s.waiting),
        Metric.set(M.dbPoolMax, s.max)
      ], { discard: true }))

    yield* Metric.set(M.dbHealthStatus, statusValue(initialState.status))
    yield* Metric.set(M.dbHealthFailures, initialState.consecutiveFailures)
    yield* Metric.set(M.dbPoolUtilisation, initialState.utilisation)
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(options.interval), check)))
    return { current: Ref.get(state), sample: options.sample, publishPoolGauges }
  })

const sampleOf = (pool: pg.Pool): PoolSample => ({
  total: pool.totalCount,
  idle: pool.idleCount,
  waiting: pool.waitingCount,
  max: pool.options.max ?? 10
})

/**
 * Follows checkouts through the pool's events: times each one (acquire →
 * release) for the connection-hold histogram, and integrates connections in
 * use over time for the average utilisation.
 */
const trackCheckouts = (pool: pg.Pool) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const checkedOut = new WeakMap<pg.PoolClient, number>()
      let inUse = 0
      let busy = 0 // connection-milliseconds since windowStart
      let windowStart = performance.now()
      let last = windowStart
      const advance = () => {
        const now = performance.now()
        busy += inUse * (now - last)
        last = now
        return now
      }
      const onAcquire = (client: pg.PoolClient) => {
        checkedOut.set(client, advance())
        inUse++
      }
      const onRelease = (_: Error, client: pg.PoolClient) => {
        const since = checkedOut.get(client)
        if (since === undefined) return // checked out before tracking began
        checkedOut.delete(client)
        const now = advance()
        inUse--
        // A driver callback, outside any fiber: the metric's synchronous entry point.
        M.dbConnectionHold.unsafeUpdate((now - since) / 1000, [])
      }
      /** Average connections in use since the previous call. */
      const averageInUse = () => {
        const now = advance()
        const average = now > windowStart ? busy / (now - windowStart) : inUse
        busy = 0
        windowStart = now
        return average
      }
      pool.on("acquire", onAcquire)
      pool.on("release", onRelease)
      return { onAcquire, onRelease, averageInUse }
    }),
    ({ onAcquire, onRelease }) =>
      Effect.sync(() => {
        pool.off("acquire", onAcquire)
        pool.off("release", onRelease)
      })
  )

export class PoolHealth extends Effect.Service<PoolHealth>()("parley/PoolHealth", {
  scoped: Effect.gen(function*() {
    const { pool } = yield* DbPool
    const cfg = yield* PoolHealthConfig
    const checkouts = yield* trackCheckouts(pool)
    const max = sampleOf(pool).max
    return yield* makeMonitor({
      probe: Effect.tryPromise(() => pool.query("select 1")),
      utilisation: Effect.sync(() => checkouts.averageInUse() / max),
      sample: Effect.sync(() => sampleOf(pool)),
      interval: cfg.interval,
      timeout: cfg.timeout,
      degradedRatio: cfg.degradedRatio
    })
  })
}) {}
