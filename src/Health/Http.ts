import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import type { Redis as IoRedis } from "ioredis"
import { Api } from "../Api.js"
import { PoolHealth, type PoolHealthState } from "../Db/PoolHealth.js"
import { DbUnavailable, RedisUnavailable, toBody } from "../Errors.js"
import { Gateway } from "../Providers/Gateway.js"
import { Redis } from "../Redis.js"

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

/** Redis is required when configured: a ping that fails makes the instance unready. */
const redisCheck = (redis: Option.Option<IoRedis>) =>
  Option.match(redis, {
    onNone: () => Effect.succeed({ status: "not_configured" as const }),
    onSome: (client) => {
      const started = Date.now()
      return Effect.tryPromise(() => client.ping()).pipe(
        Effect.timeout("1 second"),
        Effect.as({ status: "ok" as const, latency_ms: Date.now() - started }),
        Effect.catchAll(() => Effect.succeed({ status: "down" as const, detail: "redis unreachable" }))
      )
    }
  })

export const HealthHttp = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const health = yield* PoolHealth
    const redis = yield* Redis
    const gateway = yield* Gateway
    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handleRaw("ready", () =>
        Effect.gen(function*() {
          const database = databaseCheck(yield* health.current)
          const redisStatus = yield* redisCheck(redis)
          const providers = yield* gateway.status
          const checks: Record<string, { status: string; detail?: string }> = { database, redis: redisStatus }
          for (const p of providers) {
            // A provider whose circuit is open still lets the instance serve everything else.
            checks[`provider_${p.provider}`] = !p.configured
              ? { status: "not_configured" }
              : p.circuit.state === "OPEN"
              ? { status: "degraded", detail: "circuit open" }
              : { status: "ok" }
          }
          // Degraded still serves; a database that is down or a configured Redis that is down does not.
          if (database.status === "down") {
            return HttpServerResponse.unsafeJson({ ...toBody(new DbUnavailable()), status: "not_ready", checks }, { status: 503 })
          }
          if (redisStatus.status === "down") {
            return HttpServerResponse.unsafeJson({ ...toBody(new RedisUnavailable()), status: "not_ready", checks }, { status: 503 })
          }
          return HttpServerResponse.unsafeJson({ status: "ready", checks })
        }))
  }))
