import { HttpApiBuilder } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { Api } from "../Api.js"
import { requireAdmin } from "../Auth/Policy.js"
import { NotFound } from "../Errors.js"
import { DbPool } from "../Db/Pool.js"
import { PoolHealth } from "../Db/PoolHealth.js"
import { Gateway } from "../Providers/Gateway.js"
import { jobsStatus } from "../Jobs/Live.js"

export const StatusHttp = HttpApiBuilder.group(Api, "status", (handlers) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const { embedded } = yield* DbPool
    const health = yield* PoolHealth
    const sql = yield* SqlClient.SqlClient
    return handlers.handle("reinstateKey", ({ path }) =>
      Effect.gen(function*() {
        yield* requireAdmin
        const keyId = `${path.provider}#${path.index}`
        const keys = yield* gateway.reinstateKey(path.provider, keyId)
        return yield* Option.match(keys, {
          onNone: () => Effect.fail(new NotFound({ message: `No key ${keyId} is configured.` })),
          onSome: (k) => Effect.succeed({ provider: path.provider, keys: k })
        })
      })).handle("status", () =>
      Effect.gen(function*() {
        yield* requireAdmin
        const db = yield* health.current
        const pool = yield* health.sample
        return {
          providers: yield* gateway.status,
          jobs: yield* jobsStatus.pipe(Effect.provideService(SqlClient.SqlClient, sql), Effect.orDie),
          database: {
            embedded,
            status: db.status,
            consecutive_failures: db.consecutiveFailures,
            utilisation: db.utilisation,
            pool: { total: pool.total, idle: pool.idle, in_use: pool.total - pool.idle, waiting: pool.waiting, max: pool.max },
            last_check_at: db.lastCheckAt === null ? null : new Date(db.lastCheckAt).toISOString(),
            last_latency_ms: db.lastLatencyMs,
            last_error: db.lastError
          }
        }
      }))
  }))
