/**
 * Sessions and their message history. Every statement is scoped by the
 * owner's id (another user's session is simply not found); only domain
 * errors leave here.
 *
 * A session is always read through one view statement that joins its
 * message statistics (count, last message) with LATERAL subqueries over the
 * `(session_id, seq)` index: a list page, a single session, a create and an
 * update are each ONE statement, whatever the page size (no N+1).
 */
import { SqlClient, SqlSchema } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"
import { Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { AgentId } from "../Agents/Domain.js"
import { agentNotFound } from "../Agents/Repo.js"
import { orUnavailable, rowsOrDie, writeErrors } from "../Db/Errors.js"
import { Conflict, NotFound } from "../Errors.js"
import type { UserId } from "../Http/Schemas.js"
import { type CreateSession, MessageRow, PREVIEW_CHARS, SessionId, SessionRow, type UpdateSession } from "./Domain.js"
import { SeqKey, TimeKey } from "./Paging.js"

export const sessionNotFound = () => new NotFound({ message: "Session not found." })

export interface PageRequest<K> {
  readonly limit: number
  readonly cursor?: K | undefined
}

const orFail = <E>(onNone: () => E) => <A>(found: Option.Option<A>) =>
  Option.match(found, { onNone: () => Effect.fail(onNone()), onSome: Effect.succeed })

/**
 * Session writes have no unique key but their random id: a duplicate is a
 * bug (a defect), not something a client could fix.
 */
const sessionWriteErrors = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  writeErrors(effect, "session").pipe(Effect.catchTag("AlreadyExists", (e) => Effect.die(e)))

export class SessionsRepo extends Effect.Service<SessionsRepo>()("parley/SessionsRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const sessionColumns = sql.literal("id, title, agent_id, metadata, version, created_at, updated_at")

    /** `source` yields session rows (a SELECT, or an INSERT/UPDATE … RETURNING); this adds the statistics. */
    const view = (source: Fragment) =>
      sql`
        WITH p AS (${source})
        SELECT p.id, p.title, p.agent_id, p.metadata, p.version, p.created_at, p.updated_at,
               (extract(epoch FROM p.updated_at) * 1000000)::bigint AS sort_micros,
               c.n AS message_count,
               lm.created_at AS last_message_at,
               left(lm.content, ${PREVIEW_CHARS}) AS last_message_preview
        FROM p
        CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM messages m WHERE m.session_id = p.id) c
        LEFT JOIN LATERAL (
          SELECT m.content, m.created_at FROM messages m WHERE m.session_id = p.id ORDER BY m.seq DESC LIMIT 1
        ) lm ON true
        ORDER BY p.updated_at DESC, p.id DESC`

    const findPage = SqlSchema.findAll({
      Request: Schema.Struct({ userId: Schema.String, limit: Schema.Number, cursor: Schema.optional(TimeKey) }),
      Result: SessionRow,
      // The page is cut first (an index range), so the statistics are computed for its rows only.
      execute: ({ cursor, limit, userId }) =>
        view(sql`
          SELECT ${sessionColumns} FROM sessions
          WHERE user_id = ${userId}
          ${cursor === undefined ? sql.literal("") : sql`
            AND (updated_at, id) < (timestamptz 'epoch' + ${cursor.t}::bigint * interval '1 microsecond', ${cursor.id})`}
          ORDER BY updated_at DESC, id DESC
          LIMIT ${limit + 1}`)
    })

    const list = Effect.fn("SessionsRepo.list", { captureStackTrace: false })(
      function*(userId: UserId, page: PageRequest<TimeKey>) {
        return yield* findPage({ userId, limit: page.limit, cursor: page.cursor })
      },
      rowsOrDie,
      orUnavailable
    )

    const findOne = SqlSchema.findOne({
      Request: Schema.Struct({ userId: Schema.String, id: Schema.String }),
      Result: SessionRow,
      execute: ({ id, userId }) =>
        view(sql`SELECT ${sessionColumns} FROM sessions WHERE id = ${id} AND user_id = ${userId}`)
    })

    const get = Effect.fn("SessionsRepo.get", { captureStackTrace: false })(
      function*(userId: UserId, id: SessionId) {
        return yield* findOne({ userId, id }).pipe(Effect.flatMap(orFail(sessionNotFound)))
      },
      rowsOrDie,
      orUnavailable
    )

    /** The agent must be the caller's: checked in the same statement (an FK only proves it exists). */
    const ownAgent = (userId: UserId, agentId: AgentId) =>
      sql`EXISTS (SELECT 1 FROM agents WHERE id = ${agentId} AND user_id = ${userId})`

    const create = Effect.fn("SessionsRepo.create", { captureStackTrace: false })(
      function*(userId: UserId, input: CreateSession) {
        const id = SessionId.make(randomUUID())
        const found = yield* SqlSchema.findOne({
          Request: Schema.Void,
          Result: SessionRow,
          execute: () =>
            view(sql`
              INSERT INTO sessions (id, user_id, agent_id, title, metadata)
              SELECT ${id}, ${userId}, ${input.agentId}::uuid, ${input.title}, ${JSON.stringify(input.metadata)}::jsonb
              WHERE ${input.agentId === null ? sql.literal("true") : ownAgent(userId, input.agentId)}
              RETURNING ${sessionColumns}`)
        })(undefined)
        return yield* orFail(agentNotFound)(found)
      },
      rowsOrDie,
      sessionWriteErrors
    )

    /**
     * One conditional UPDATE (`… AND version = $expected`); only when it
     * matches nothing does a second read say why: no such session (404), a
     * lost race (409), or an agent that is not the caller's (404).
     */
    const update = Effect.fn("SessionsRepo.update", { captureStackTrace: false })(
      function*(userId: UserId, id: SessionId, patch: UpdateSession, expectedVersion: number | undefined) {
        const sets = [
          ...(patch.title !== undefined ? [sql`title = ${patch.title}`] : []),
          ...(patch.agentId !== undefined ? [sql`agent_id = ${patch.agentId}::uuid`] : []),
          ...(patch.metadata !== undefined ? [sql`metadata = ${JSON.stringify(patch.metadata)}::jsonb`] : []),
          sql`version = version + 1`,
          sql`updated_at = now()`
        ]
        const conditions = [
          sql`id = ${id}`,
          sql`user_id = ${userId}`,
          ...(expectedVersion !== undefined ? [sql`version = ${expectedVersion}`] : []),
          ...(patch.agentId !== undefined && patch.agentId !== null ? [ownAgent(userId, patch.agentId)] : [])
        ]
        const updated = yield* SqlSchema.findOne({
          Request: Schema.Void,
          Result: SessionRow,
          execute: () =>
            view(sql`UPDATE sessions SET ${sql.csv(sets)} WHERE ${sql.and(conditions)} RETURNING ${sessionColumns}`)
        })(undefined)
        if (Option.isSome(updated)) return updated.value
        const current = yield* sql<{ version: number }>`SELECT version FROM sessions WHERE id = ${id} AND user_id = ${userId}`
        const row = current[0]
        if (row === undefined) return yield* Effect.fail(sessionNotFound())
        if (expectedVersion !== undefined && row.version !== expectedVersion) {
          return yield* Effect.fail(
            new Conflict({ message: `The session changed (now version ${row.version}); reload it and retry.` })
          )
        }
        return yield* Effect.fail(agentNotFound())
      },
      rowsOrDie,
      sessionWriteErrors
    )

    /**
     * The session, its messages and their feedback in one transaction,
     * children first; the row lock makes a concurrent chat wait, then miss.
     * A failure anywhere leaves all of it in place.
     */
    const remove = Effect.fn("SessionsRepo.remove", { captureStackTrace: false })(
      function*(userId: UserId, id: SessionId) {
        const deleted = yield* sql.withTransaction(Effect.gen(function*() {
          const found = yield* sql`SELECT id FROM sessions WHERE id = ${id} AND user_id = ${userId} FOR UPDATE`
          if (found.length === 0) return false
          yield* sql`DELETE FROM feedback WHERE message_id IN (SELECT id FROM messages WHERE session_id = ${id})`
          yield* sql`DELETE FROM messages WHERE session_id = ${id}`
          yield* sql`DELETE FROM sessions WHERE id = ${id}`
          return true
        }))
        if (!deleted) return yield* Effect.fail(sessionNotFound())
      },
      sessionWriteErrors
    )

    const messageColumns = sql.literal(
      "id, session_id, seq, role, content, status, model, input_tokens, output_tokens, " +
        "finish_reason, memory_status, error_code, created_at"
    )

    const findMessages = SqlSchema.findAll({
      Request: Schema.Struct({
        userId: Schema.String,
        sessionId: Schema.String,
        limit: Schema.Number,
        cursor: Schema.optional(SeqKey)
      }),
      Result: MessageRow,
      execute: ({ cursor, limit, sessionId, userId }) =>
        sql`
          SELECT ${messageColumns} FROM messages
          WHERE session_id = ${sessionId} AND user_id = ${userId}
          ${cursor === undefined ? sql.literal("") : sql`AND seq > ${cursor.seq}`}
          ORDER BY seq ASC
          LIMIT ${limit + 1}`
    })

    /** History in ascending `seq`; a session that is not the caller's is not found (not an empty page). */
    const messages = Effect.fn("SessionsRepo.messages", { captureStackTrace: false })(
      function*(userId: UserId, sessionId: SessionId, page: PageRequest<SeqKey>) {
        const owned = yield* sql`SELECT 1 FROM sessions WHERE id = ${sessionId} AND user_id = ${userId}`
        if (owned.length === 0) return yield* Effect.fail(sessionNotFound())
        return yield* findMessages({ userId, sessionId, limit: page.limit, cursor: page.cursor })
      },
      rowsOrDie,
      orUnavailable
    )

    return { list, get, create, update, remove, messages } as const
  })
}) {}
