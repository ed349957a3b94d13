import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../Api.js"
import { PoolHealth, type PoolHealthState } from "../Db/PoolHealth.js"
import { DbUnavailable, toBody } from "../Errors.js"

/** The monitor's view of the pool: no live query, so /ready costs nothing and cannot pile up on a sick database. */
const databaseCheck = (s: PoolHealthState) => ({
  status: s.status,
  consecutive_failures: s.consecutiveFailures,
  utilisation: Math.round(s.utilisation * 1000) / 1000,
  ...(s.lastLatencyMs !== null ? { latency_ms: s.lastLatencyMs } : {}),
  ...(s.status === "ok"
    ? {}
    : { detail: s.consecutiveFailures > 0 ? "database health probe failing" : "connection pool nearly full" })
})

export const HealthHttp = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const health = yield* PoolHealth
    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handleRaw("ready", () =>
        Effect.gen(function*() {
          const database = databaseCheck(yield* health.current)
          const checks = { database }
          // Degraded still serves; only a database that is down makes the instance unready.
          return database.status !== "down"
            ? HttpServerResponse.unsafeJson({ status: "ready", checks })
            : HttpServerResponse.unsafeJson(
              { ...toBody(new DbUnavailable()), status: "not_ready", checks },
              { status: 503 }
            )
        }))
  }))
