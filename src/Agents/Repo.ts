/** The caller's agents. Every statement is scoped by the owner's id; only domain errors leave here. */
import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { orUnavailable, rowsOrDie, writeErrors } from "../Db/Errors.js"
import { NotFound } from "../Errors.js"
import type { UserId } from "../Http/Schemas.js"
import { TimeKey } from "../Sessions/Paging.js"
import { AgentId, AgentRow, type CreateAgent, type UpdateAgent } from "./Domain.js"

export const agentNotFound = () => new NotFound({ message: "Agent not found." })

export interface AgentPageRequest {
  readonly limit: number
  readonly cursor?: TimeKey | undefined
}

export class AgentsRepo extends Effect.Service<AgentsRepo>()("parley/AgentsRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const columns = sql.literal(
      "id, user_id, name, system_prompt, model, parameters, memory_enabled, created_at, updated_at, " +
        "(extract(epoch FROM created_at) * 1000000)::bigint AS sort_micros"
    )

    const findPage = SqlSchema.findAll({
      Request: Schema.Struct({ userId: Schema.String, limit: Schema.Number, cursor: Schema.optional(TimeKey) }),
      Result: AgentRow,
      execute: ({ cursor, limit, userId }) =>
        sql`
          SELECT ${columns} FROM agents
          WHERE user_id = ${userId}
          ${cursor === undefined ? sql.literal("") : sql`
            AND (created_at, id) < (timestamptz 'epoch' + ${cursor.t}::bigint * interval '1 microsecond', ${cursor.id})`}
          ORDER BY created_at DESC, id DESC
          LIMIT ${limit + 1}`
    })

    const list = Effect.fn("AgentsRepo.list", { captureStackTrace: false })(
      function*(userId: UserId, page: AgentPageRequest) {
        return yield* findPage({ userId, limit: page.limit, cursor: page.cursor })
      },
      rowsOrDie,
      orUnavailable
    )

    const findOne = SqlSchema.findOne({
      Request: Schema.Struct({ userId: Schema.String, id: Schema.String }),
      Result: AgentRow,
      execute: ({ id, userId }) => sql`SELECT ${columns} FROM agents WHERE id = ${id} AND user_id = ${userId}`
    })

    const get = Effect.fn("AgentsRepo.get", { captureStackTrace: false })(
      function*(userId: UserId, id: AgentId) {
        const found = yield* findOne({ userId, id })
        return yield* Option.match(found, { onNone: () => Effect.fail(agentNotFound()), onSome: Effect.succeed })
      },
      rowsOrDie,
      orUnavailable
    )

    const create = Effect.fn("AgentsRepo.create", { captureStackTrace: false })(
      function*(userId: UserId, input: CreateAgent) {
        const id = AgentId.make(randomUUID())
        return yield* SqlSchema.single({
          Request: Schema.Void,
          Result: AgentRow,
          execute: () =>
            sql`
              INSERT INTO agents (id, user_id, name, system_prompt, model, parameters, memory_enabled)
              VALUES (${id}, ${userId}, ${input.name}, ${input.systemPrompt}, ${input.model},
                      ${JSON.stringify(input.parameters)}::jsonb, ${input.memoryEnabled})
              RETURNING ${columns}`
        })(undefined)
      },
      rowsOrDie,
      (e) => writeErrors(e, "agent")
    )

    /** Only the fields present change; a rename onto an existing name is ERR_ALREADY_EXISTS. */
    const update = Effect.fn("AgentsRepo.update", { captureStackTrace: false })(
      function*(userId: UserId, id: AgentId, patch: UpdateAgent) {
        const sets = [
          ...(patch.name !== undefined ? [sql`name = ${patch.name}`] : []),
          ...(patch.systemPrompt !== undefined ? [sql`system_prompt = ${patch.systemPrompt}`] : []),
          ...(patch.model !== undefined ? [sql`model = ${patch.model}`] : []),
          ...(patch.parameters !== undefined ? [sql`parameters = ${JSON.stringify(patch.parameters)}::jsonb`] : []),
          ...(patch.memoryEnabled !== undefined ? [sql`memory_enabled = ${patch.memoryEnabled}`] : []),
          sql`updated_at = now()`
        ]
        const found = yield* SqlSchema.findOne({
          Request: Schema.Void,
          Result: AgentRow,
          execute: () =>
            sql`UPDATE agents SET ${sql.csv(sets)} WHERE id = ${id} AND user_id = ${userId} RETURNING ${columns}`
        })(undefined)
        return yield* Option.match(found, { onNone: () => Effect.fail(agentNotFound()), onSome: Effect.succeed })
      },
      rowsOrDie,
      (e) => writeErrors(e, "agent")
    )

    /** Sessions that used the agent keep existing, with `agent_id` null (ON DELETE SET NULL). */
    const remove = Effect.fn("AgentsRepo.remove", { captureStackTrace: false })(
      function*(userId: UserId, id: AgentId) {
        const rows = yield* sql`DELETE FROM agents WHERE id = ${id} AND user_id = ${userId} RETURNING id`
        if (rows.length === 0) return yield* Effect.fail(agentNotFound())
      },
      (e) => writeErrors(e, "agent")
    )

    return { list, get, create, update, remove } as const
  })
}) {}
