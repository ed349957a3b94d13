/**
 * MCP servers in Postgres. Reads return header names only; the values leave
 * the database only for a check (`findTarget`). Only domain errors leave here.
 */
import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { orUnavailable, rowsOrDie, writeErrors } from "../Db/Errors.js"
import { AlreadyExists, NotFound } from "../Errors.js"
import { UserId } from "../Http/Schemas.js"
import type { TimeKey } from "../Sessions/Paging.js"
import {
  type CheckResult,
  type CreateMcpServer,
  McpServerId,
  McpServerRow,
  McpTargetRow,
  type UpdateMcpServer
} from "./Domain.js"

const notFound = () => new NotFound({ message: "MCP server not found." })

/** The only unique key besides the id is (user_id, name). */
const nameTaken = <A, E, R>(effect: Effect.Effect<A, E | AlreadyExists, R>) =>
  Effect.catchIf(effect, (e): e is AlreadyExists => e instanceof AlreadyExists, () =>
    Effect.fail(new AlreadyExists({ message: "You already have an MCP server with this name.", param: "name" })))

/** The registration a check read: the result is stored only if it is still the same one. */
const TargetRow = Schema.Struct({ ...McpTargetRow.fields, revision: Schema.String })
export type McpTarget = typeof TargetRow.Type

export class McpServersRepo extends Effect.Service<McpServersRepo>()("parley/McpServersRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    // Constant SQL (table alias m): the same read shape for every statement.
    const columns = sql.literal(`m.id, m.user_id, m.name, m.url, m.transport,
      ARRAY(SELECT jsonb_object_keys(m.headers) ORDER BY 1) AS header_names,
      m.enabled, m.last_checked_at, m.last_status, m.last_error, m.tool_count, m.created_at, m.updated_at,
      (extract(epoch FROM m.created_at) * 1000000)::bigint::text AS sort_micros`)
    const revision = sql.literal(`(extract(epoch FROM m.updated_at) * 1000000)::bigint::text`)

    const orNotFound = <A, E, R>(effect: Effect.Effect<Option.Option<A>, E, R>) =>
      Effect.flatMap(effect, Option.match({ onNone: () => Effect.fail(notFound()), onSome: Effect.succeed }))

    const insert = (userId: UserId, input: CreateMcpServer) => SqlSchema.single({
      Request: Schema.Void,
      Result: McpServerRow,
      execute: () => sql`
        INSERT INTO mcp_servers AS m ${
        sql.insert({
          id: McpServerId.make(randomUUID()),
          userId,
          name: input.name,
          url: input.url,
          transport: input.transport,
          headers: JSON.stringify(input.headers),
          enabled: input.enabled
        })
      }
        RETURNING ${columns}`
    })(undefined)

    const create = (userId: UserId, input: CreateMcpServer) =>
      insert(userId, input).pipe(rowsOrDie, (e) => writeErrors(e, "MCP server"), nameTaken, Effect.withSpan("McpServersRepo.create", { captureStackTrace: false }))

    const findRow = SqlSchema.findOne({
      Request: Schema.Struct({ userId: UserId, id: McpServerId }),
      Result: McpServerRow,
      execute: ({ id, userId }) => sql`SELECT ${columns} FROM mcp_servers m WHERE m.id = ${id} AND m.user_id = ${userId}`
    })

    const find = (userId: UserId, id: McpServerId) =>
      findRow({ userId, id }).pipe(orNotFound, rowsOrDie, orUnavailable, Effect.withSpan("McpServersRepo.find", { captureStackTrace: false }))

    const listRows = SqlSchema.findAll({
      Request: Schema.Struct({ userId: UserId, limit: Schema.Number, after: Schema.NullOr(Schema.Struct({ t: Schema.Number, id: Schema.String })) }),
      Result: McpServerRow,
      execute: ({ after, limit, userId }) => sql`
        SELECT ${columns} FROM mcp_servers m
        WHERE m.user_id = ${userId}
        ${after === null ? sql`` : sql`AND (m.created_at, m.id) < (timestamptz 'epoch' + ${after.t}::bigint * interval '1 microsecond', ${after.id}::uuid)`}
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT ${limit}`
    })

    const list = (userId: UserId, limit: number, after: TimeKey | null) =>
      listRows({ userId, limit, after }).pipe(rowsOrDie, orUnavailable, Effect.withSpan("McpServersRepo.list", { captureStackTrace: false }))

    /**
     * Absent fields keep their value. A new url, transport or headers makes
     * the last check describe another endpoint, so its result is cleared.
     */
    const updateRow = (userId: UserId, id: McpServerId, patch: UpdateMcpServer) => SqlSchema.findOne({
      Request: Schema.Void,
      Result: McpServerRow,
      execute: () => sql`
        WITH p AS (
          SELECT ${patch.name ?? null}::text AS name, ${patch.url ?? null}::text AS url,
                 ${patch.transport ?? null}::text AS transport,
                 ${patch.headers === undefined ? null : JSON.stringify(patch.headers)}::jsonb AS headers,
                 ${patch.enabled ?? null}::boolean AS enabled
        ), changed AS (
          SELECT s.id,
                 (p.url IS NOT NULL AND p.url <> s.url) OR (p.transport IS NOT NULL AND p.transport <> s.transport)
                   OR (p.headers IS NOT NULL AND p.headers <> s.headers) AS stale
          FROM mcp_servers s, p WHERE s.id = ${id} AND s.user_id = ${userId}
        )
        UPDATE mcp_servers AS m SET
          name = coalesce(p.name, m.name),
          url = coalesce(p.url, m.url),
          transport = coalesce(p.transport, m.transport),
          headers = coalesce(p.headers, m.headers),
          enabled = coalesce(p.enabled, m.enabled),
          last_checked_at = CASE WHEN c.stale THEN NULL ELSE m.last_checked_at END,
          last_status = CASE WHEN c.stale THEN NULL ELSE m.last_status END,
          last_error = CASE WHEN c.stale THEN NULL ELSE m.last_error END,
          tool_count = CASE WHEN c.stale THEN NULL ELSE m.tool_count END,
          updated_at = now()
        FROM p, changed c
        WHERE m.id = c.id
        RETURNING ${columns}`
    })(undefined)

    const update = (userId: UserId, id: McpServerId, patch: UpdateMcpServer) =>
      updateRow(userId, id, patch).pipe(
        orNotFound,
        rowsOrDie,
        (e) => writeErrors(e, "MCP server"),
        nameTaken,
        Effect.withSpan("McpServersRepo.update", { captureStackTrace: false })
      )

    const remove = (userId: UserId, id: McpServerId) =>
      sql`DELETE FROM mcp_servers WHERE id = ${id} AND user_id = ${userId} RETURNING id`.pipe(
        Effect.flatMap((rows) => rows.length === 0 ? Effect.fail(notFound()) : Effect.void),
        orUnavailable,
        Effect.withSpan("McpServersRepo.remove", { captureStackTrace: false })
      )

    const findTargetRow = SqlSchema.findOne({
      Request: Schema.Struct({ userId: UserId, id: McpServerId }),
      Result: TargetRow,
      execute: ({ id, userId }) => sql`
        SELECT m.url, m.transport, m.headers, ${revision} AS revision
        FROM mcp_servers m WHERE m.id = ${id} AND m.user_id = ${userId}`
    })

    /** The only read of header values. */
    const findTarget = (userId: UserId, id: McpServerId) =>
      findTargetRow({ userId, id }).pipe(orNotFound, rowsOrDie, orUnavailable, Effect.withSpan("McpServersRepo.findTarget", { captureStackTrace: false }))

    const recordRow = (userId: UserId, id: McpServerId, seen: string, result: CheckResult) => SqlSchema.findOne({
      Request: Schema.Void,
      Result: McpServerRow,
      execute: () => sql`
        UPDATE mcp_servers AS m SET
          last_checked_at = now(), last_status = ${result.status}, last_error = ${result.error}, tool_count = ${result.toolCount}
        WHERE m.id = ${id} AND m.user_id = ${userId} AND ${revision} = ${seen}
        RETURNING ${columns}`
    })(undefined)

    /**
     * Stores a check's result, unless the server was edited while it ran
     * (the result would describe the old endpoint): then the current row.
     */
    const recordCheck = (userId: UserId, id: McpServerId, target: McpTarget, result: CheckResult) =>
      recordRow(userId, id, target.revision, result).pipe(
        Effect.flatMap(Option.match({ onNone: () => orNotFound(findRow({ userId, id })), onSome: Effect.succeed })),
        rowsOrDie,
        (e) => writeErrors(e, "MCP server"),
        Effect.withSpan("McpServersRepo.recordCheck", { captureStackTrace: false })
      )

    return { create, find, list, update, remove, findTarget, recordCheck } as const
  })
}) {}
