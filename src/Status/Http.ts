import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../Api.js"
import { requireAdmin } from "../Auth/Policy.js"
import { DbPool } from "../Db/Pool.js"
import { Gateway } from "../Providers/Gateway.js"

export const StatusHttp = HttpApiBuilder.group(Api, "status", (handlers) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const { embedded, pool } = yield* DbPool
    return handlers.handle("status", () =>
      Effect.gen(function*() {
        yield* requireAdmin
        return {
          providers: yield* gateway.status,
          database: {
            embedded,
            pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }
          }
        }
      }))
  }))
