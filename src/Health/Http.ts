import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Duration, Effect } from "effect"
import { Api } from "../Api.js"
import { DbPool } from "../Db/Pool.js"
import { DbUnavailable, toBody } from "../Errors.js"

const checkDatabase = Effect.gen(function*() {
  const { pool } = yield* DbPool
  const started = Date.now()
  return yield* Effect.tryPromise(() => pool.query("select 1")).pipe(
    Effect.timeout(Duration.seconds(2)),
    Effect.as({ status: "ok" as const, latency_ms: Date.now() - started }),
    Effect.catchAll(() => Effect.succeed({ status: "down" as const, detail: "database unreachable" }))
  )
})

export const HealthHttp = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const db = yield* DbPool
    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handleRaw("ready", () =>
        Effect.gen(function*() {
          const database = yield* Effect.provideService(checkDatabase, DbPool, db)
          const checks = { database }
          const ready = database.status === "ok"
          return ready
            ? HttpServerResponse.unsafeJson({ status: "ready", checks })
            : HttpServerResponse.unsafeJson(
              { ...toBody(new DbUnavailable()), status: "not_ready", checks },
              { status: 503 }
            )
        }))
  }))
