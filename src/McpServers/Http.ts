import { HttpApiBuilder } from "@effect/platform"
import { Effect, Schema } from "effect"
import { Api } from "../Api.js"
import { requireUser } from "../Auth/Policy.js"
import { TimeCursor, toPage } from "../Sessions/Paging.js"
import { type McpServerRow, toMcpServer } from "./Domain.js"
import { McpProbe } from "./Probe.js"
import { McpServersRepo } from "./Repo.js"

const encodeCursor = Schema.encodeSync(TimeCursor)
const keyOf = (row: McpServerRow) => encodeCursor({ t: row.sortMicros, id: row.id })

export const McpServersHttp = HttpApiBuilder.group(Api, "mcpServers", (handlers) =>
  Effect.gen(function*() {
    const repo = yield* McpServersRepo
    const probe = yield* McpProbe
    return handlers
      .handle("list", ({ urlParams }) =>
        requireUser.pipe(
          Effect.flatMap((p) => repo.list(p.userId, urlParams.limit + 1, urlParams.cursor ?? null)),
          Effect.map((rows) => toPage(rows, urlParams.limit, toMcpServer, keyOf)),
          Effect.withSpan("McpServers.list", { captureStackTrace: false })
        ))
      .handle("create", ({ payload }) =>
        requireUser.pipe(
          Effect.flatMap((p) => repo.create(p.userId, payload)),
          Effect.map(toMcpServer),
          Effect.withSpan("McpServers.create", { captureStackTrace: false })
        ))
      .handle("get", ({ path }) =>
        requireUser.pipe(
          Effect.flatMap((p) => repo.find(p.userId, path.id)),
          Effect.map(toMcpServer),
          Effect.withSpan("McpServers.get", { captureStackTrace: false })
        ))
      .handle("update", ({ path, payload }) =>
        requireUser.pipe(
          Effect.flatMap((p) => repo.update(p.userId, path.id, payload)),
          Effect.map(toMcpServer),
          Effect.withSpan("McpServers.update", { captureStackTrace: false })
        ))
      .handle("remove", ({ path }) =>
        requireUser.pipe(Effect.flatMap((p) => repo.remove(p.userId, path.id)), Effect.withSpan("McpServers.remove", { captureStackTrace: false })))
      .handle("check", ({ path }) =>
        Effect.gen(function*() {
          const { userId } = yield* requireUser
          // No database connection is held while the server is contacted.
          const target = yield* repo.findTarget(userId, path.id)
          const result = yield* probe.check(target)
          const row = yield* repo.recordCheck(userId, path.id, target, result)
          return toMcpServer(row)
        }).pipe(Effect.withSpan("McpServers.check", { captureStackTrace: false })))
  }))
