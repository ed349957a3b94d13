import { HttpApiBuilder } from "@effect/platform"
import { Effect, Schema } from "effect"
import { Api } from "../Api.js"
import { requireUser } from "../Auth/Policy.js"
import { type MessageRow, type SessionRow, toMessage } from "./Domain.js"
import { SeqCursor, TimeCursor, toPage } from "./Paging.js"
import { SessionsRepo } from "./Repo.js"

const timeCursor = Schema.encodeSync(TimeCursor)
const seqCursor = Schema.encodeSync(SeqCursor)
const sessionKey = (row: SessionRow) => timeCursor({ t: row.sortMicros, id: row.id })
const messageKey = (row: MessageRow) => seqCursor({ seq: row.seq })
const toSession = (row: SessionRow) => row

export const SessionsHttp = HttpApiBuilder.group(Api, "sessions", (handlers) =>
  Effect.gen(function*() {
    const repo = yield* SessionsRepo
    return handlers
      .handle("list", ({ urlParams }) =>
        Effect.gen(function*() {
          const { userId } = yield* requireUser
          const rows = yield* repo.list(userId, urlParams)
          return toPage(rows, urlParams.limit, toSession, sessionKey)
        }).pipe(Effect.withSpan("Sessions.list", { captureStackTrace: false })))
      .handle("create", ({ payload }) =>
        Effect.flatMap(requireUser, ({ userId }) => repo.create(userId, payload)).pipe(Effect.withSpan("Sessions.create", { captureStackTrace: false })))
      .handle("get", ({ path }) =>
        Effect.flatMap(requireUser, ({ userId }) => repo.get(userId, path.id)).pipe(Effect.withSpan("Sessions.get", { captureStackTrace: false })))
      .handle("update", ({ headers, path, payload }) =>
        Effect.flatMap(requireUser, ({ userId }) => repo.update(userId, path.id, payload, headers["if-match"])).pipe(
          Effect.withSpan("Sessions.update", { captureStackTrace: false })
        ))
      .handle("remove", ({ path }) =>
        Effect.flatMap(requireUser, ({ userId }) => repo.remove(userId, path.id)).pipe(Effect.withSpan("Sessions.remove", { captureStackTrace: false })))
      .handle("messages", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const { userId } = yield* requireUser
          const rows = yield* repo.messages(userId, path.id, urlParams)
          return toPage(rows, urlParams.limit, toMessage, messageKey)
        }).pipe(Effect.withSpan("Sessions.messages", { captureStackTrace: false })))
  }))
