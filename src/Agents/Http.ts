import { HttpApiBuilder } from "@effect/platform"
import { Effect, Schema } from "effect"
import { Api } from "../Api.js"
import { requireUser } from "../Auth/Policy.js"
import { TimeCursor, toPage } from "../Sessions/Paging.js"
import type { AgentRow } from "./Domain.js"
import { AgentsRepo } from "./Repo.js"

const encodeCursor = Schema.encodeSync(TimeCursor)
const keyOf = (row: AgentRow) => encodeCursor({ t: row.sortMicros, id: row.id })
const toAgent = (row: AgentRow) => row

export const AgentsHttp = HttpApiBuilder.group(Api, "agents", (handlers) =>
  Effect.gen(function*() {
    const repo = yield* AgentsRepo
    return handlers
      .handle("list", ({ urlParams }) =>
        Effect.gen(function*() {
          const { userId } = yield* requireUser
          const rows = yield* repo.list(userId, urlParams)
          return toPage(rows, urlParams.limit, toAgent, keyOf)
        }).pipe(Effect.withSpan("Agents.list", { captureStackTrace: false })))
      .handle("create", ({ payload }) =>
        Effect.flatMap(requireUser, ({ userId }) => repo.create(userId, payload)).pipe(Effect.withSpan("Agents.create", { captureStackTrace: false })))
      .handle("get", ({ path }) =>
        Effect.flatMap(requireUser, ({ userId }) => repo.get(userId, path.id)).pipe(Effect.withSpan("Agents.get", { captureStackTrace: false })))
      .handle("update", ({ path, payload }) =>
        Effect.flatMap(requireUser, ({ userId }) => repo.update(userId, path.id, payload)).pipe(
          Effect.withSpan("Agents.update", { captureStackTrace: false })
        ))
      .handle("remove", ({ path }) =>
        Effect.flatMap(requireUser, ({ userId }) => repo.remove(userId, path.id)).pipe(Effect.withSpan("Agents.remove", { captureStackTrace: false })))
  }))
