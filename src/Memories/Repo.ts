/**
 * Memories in Postgres. Full-text search uses the generated `search` column
 * (GIN-indexed); ranking combines `ts_rank` with recency. Only domain errors
 * leave here.
 */
import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { orUnavailable, rowsOrDie, writeErrors } from "../Db/Errors.js"
import { Conflict, NotFound } from "../Errors.js"
import { UserId } from "../Http/Schemas.js"
import type { TimeKey } from "../Sessions/Paging.js"
import { ListedMemoryRow, MemoryId, MemoryRow, type RankKey } from "./Domain.js"

/**
 * Recency as a multiplicative decay of the rank with a 30-day half-life:
 * score = ln(rank) + created_at / tau. Ordering by it equals ordering by
 * rank * 2^(-age / 30 days), but does not depend on now(), so a score is a
 * stable keyset cursor across pages.
 */
const TAU_SECONDS = (30 * 86_400) / Math.LN2

const AddedRow = Schema.Struct({ ...MemoryRow.fields, created: Schema.Boolean })
const RelevantRow = Schema.Struct({ ...MemoryRow.fields, ord: Schema.Union(Schema.Number, Schema.NumberFromString) })

export interface NewMemory {
  readonly userId: UserId
  readonly content: string
  readonly contentHash: string
  readonly sourceMessageId: string | null
}

export class MemoriesRepo extends Effect.Service<MemoriesRepo>()("parley/MemoriesRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const columns = sql`id, user_id, content, source_message_id, created_at`
    const sortMicros = sql`(extract(epoch FROM created_at) * 1000000)::bigint::text AS sort_micros`
    const score = sql`ln(greatest(ts_rank(search, q), 1e-6)) + extract(epoch FROM created_at)::float8 / ${TAU_SECONDS}::float8`

    /**
     * One statement: insert, or (on a duplicate hash) read the existing row.
     * It sees nothing when a concurrent insert of the same content committed
     * after its snapshot, or the existing row was deleted meanwhile; a retry
     * with a new snapshot settles both.
     */
    const upsert = SqlSchema.findAll({
      Request: Schema.Struct({
        id: MemoryId,
        userId: UserId,
        content: Schema.String,
        contentHash: Schema.String,
        sourceMessageId: Schema.NullOr(Schema.String)
      }),
      Result: AddedRow,
      execute: (m) => sql`
        WITH inserted AS (
          INSERT INTO memories ${sql.insert(m)}
          ON CONFLICT (user_id, content_hash) DO NOTHING
          RETURNING ${columns}
        )
        SELECT ${columns}, true AS created FROM inserted
        UNION ALL
        SELECT ${columns}, false AS created FROM memories
        WHERE user_id = ${m.userId} AND content_hash = ${m.contentHash} AND NOT EXISTS (SELECT 1 FROM inserted)`
    })

    const add = (m: NewMemory) =>
      upsert({ id: MemoryId.make(randomUUID()), ...m }).pipe(
        Effect.flatMap((rows) => Option.match(Option.fromNullable(rows[0]), {
          onNone: () => Effect.fail(new Conflict({ message: "The memory was modified concurrently; retry." })),
          onSome: Effect.succeed
        })),
        Effect.retry({ times: 2, while: (e) => e._tag === "Conflict" }),
        rowsOrDie,
        (e) => writeErrors(e, "memory"),
        Effect.withSpan("MemoriesRepo.add", { captureStackTrace: false })
      )

    const listRecent = SqlSchema.findAll({
      Request: Schema.Struct({ userId: UserId, limit: Schema.Number, after: Schema.NullOr(Schema.Struct({ t: Schema.Number, id: Schema.String })) }),
      Result: ListedMemoryRow,
      execute: ({ after, limit, userId }) => sql`
        SELECT ${columns}, ${sortMicros}, NULL::float8 AS score FROM memories
        WHERE user_id = ${userId}
        ${after === null ? sql`` : sql`AND (created_at, id) < (timestamptz 'epoch' + ${after.t}::bigint * interval '1 microsecond', ${after.id}::uuid)`}
        ORDER BY created_at DESC, id DESC
        LIMIT ${limit}`
    })

    const listMatching = SqlSchema.findAll({
      Request: Schema.Struct({ userId: UserId, query: Schema.String, limit: Schema.Number, after: Schema.NullOr(Schema.Struct({ score: Schema.Number, id: Schema.String })) }),
      Result: ListedMemoryRow,
      execute: ({ after, limit, query, userId }) => sql`
        SELECT * FROM (
          SELECT ${columns}, ${sortMicros}, ${score} AS score
          FROM memories, websearch_to_tsquery('english', ${query}) AS q
          WHERE user_id = ${userId} AND search @@ q
        ) ranked
        ${after === null ? sql`` : sql`WHERE (score, id) < (${after.score}::float8, ${after.id}::uuid)`}
        ORDER BY score DESC, id DESC
        LIMIT ${limit}`
    })

    /** `limit` rows of the page (the caller asks for one more to know whether a next page exists). */
    const list = (
      userId: UserId,
      options: { readonly query: string | null; readonly limit: number; readonly after: TimeKey | RankKey | null }
    ) =>
      (options.query === null
        ? listRecent({ userId, limit: options.limit, after: options.after !== null && "t" in options.after ? options.after : null })
        : listMatching({
          userId,
          query: options.query,
          limit: options.limit,
          after: options.after !== null && "score" in options.after ? options.after : null
        })).pipe(rowsOrDie, orUnavailable, Effect.withSpan("MemoriesRepo.list", { captureStackTrace: false }))

    /**
     * The best `k` matches for an OR-query of lexemes, or, when none match,
     * the `k` most recent: one round trip, since every chat turn asks.
     */
    const relevantRows = SqlSchema.findAll({
      Request: Schema.Struct({ userId: UserId, tsquery: Schema.NullOr(Schema.String), k: Schema.Number }),
      Result: RelevantRow,
      execute: ({ k, tsquery, userId }) => sql`
        WITH hits AS (
          SELECT ${columns}, row_number() OVER (ORDER BY ${score} DESC, id DESC) AS ord
          ${tsquery === null
            ? sql`FROM memories, (SELECT NULL::tsquery AS q) AS none WHERE false`
            : sql`FROM memories, to_tsquery('english', ${tsquery}) AS q WHERE user_id = ${userId} AND search @@ q`}
          ORDER BY ord
          LIMIT ${k}
        ), recent AS (
          SELECT ${columns}, row_number() OVER (ORDER BY created_at DESC, id DESC) AS ord
          FROM memories
          WHERE user_id = ${userId} AND NOT EXISTS (SELECT 1 FROM hits)
          ORDER BY ord
          LIMIT ${k}
        )
        SELECT * FROM hits
        UNION ALL
        SELECT * FROM recent
        ORDER BY ord`
    })

    const relevant = (userId: UserId, tsquery: string | null, k: number) =>
      relevantRows({ userId, tsquery, k }).pipe(rowsOrDie, orUnavailable, Effect.withSpan("MemoriesRepo.relevant", { captureStackTrace: false }))

    const remove = (userId: UserId, id: MemoryId) =>
      sql`DELETE FROM memories WHERE id = ${id} AND user_id = ${userId} RETURNING id`.pipe(
        Effect.flatMap((rows) => rows.length === 0 ? Effect.fail(new NotFound({ message: "Memory not found." })) : Effect.void),
        orUnavailable,
        Effect.withSpan("MemoriesRepo.remove", { captureStackTrace: false })
      )

    return { add, list, relevant, remove } as const
  })
}) {}
