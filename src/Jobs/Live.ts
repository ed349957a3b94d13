/** The workers every instance runs, and the queue's state for /v1/admin/status. */
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { JobsConfig } from "../Config.js"
import { memoryExtractKind } from "../Memories/Extraction.js"
import { runWorkers } from "./Jobs.js"

export const JobsLive = Layer.scopedDiscard(Effect.gen(function*() {
  const cfg = yield* JobsConfig
  if (!cfg.workersEnabled) return
  const memory = yield* memoryExtractKind
  const { workerId } = yield* runWorkers([memory], { pollInterval: cfg.pollInterval, backoffBase: cfg.backoffBase, drain: cfg.drain })
  yield* Effect.logInfo("job workers started").pipe(Effect.annotateLogs({ worker_id: workerId, kinds: memory.kind }))
}))

const Count = Schema.Struct({ kind: Schema.String, state: Schema.String, n: Schema.NumberFromString })
const Failure = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  lastErrorCode: Schema.NullOr(Schema.String),
  lastError: Schema.NullOr(Schema.String),
  attempts: Schema.Number,
  updatedAt: Schema.DateFromSelf
})

export const jobsStatus = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const counts = yield* sql`SELECT kind, state, count(*)::text AS n FROM jobs GROUP BY kind, state ORDER BY kind, state`.pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.Array(Count)))
  )
  const [oldest] = yield* sql<{ ageMs: number | null }>`
    SELECT (extract(epoch FROM now() - min(run_at)) * 1000)::float8 AS age_ms FROM jobs WHERE state = 'pending' AND run_at <= now()`
  const failures = yield* sql`
    SELECT id, kind, last_error_code, last_error, attempts, updated_at FROM jobs
    WHERE state = 'dead' OR (state = 'pending' AND last_error_code IS NOT NULL)
    ORDER BY updated_at DESC LIMIT 10`.pipe(Effect.flatMap(Schema.decodeUnknown(Schema.Array(Failure))))
  return {
    counts: counts.map((c) => ({ kind: c.kind, state: c.state, count: c.n })),
    oldest_pending_age_ms: oldest?.ageMs === null || oldest?.ageMs === undefined ? null : Math.round(Number(oldest.ageMs)),
    recent_failures: failures.map((f) => ({
      id: f.id,
      kind: f.kind,
      code: f.lastErrorCode,
      error: f.lastError,
      attempts: f.attempts,
      at: f.updatedAt.toISOString()
    }))
  }
}).pipe(Effect.withSpan("Jobs.status", { captureStackTrace: false }))
