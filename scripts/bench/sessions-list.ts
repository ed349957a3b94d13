/**
 * Session-list benchmark: one user with 10,000 sessions (2 messages each),
 * pages of 20 and 100 — the first page and one 5,000 rows down (by cursor) —
 * timed over 50 runs each through SessionsRepo.list (SQL + row decoding).
 *
 *   npx tsx scripts/bench/sessions-list.ts                 # embedded PGlite, in memory
 *   DATABASE_URL=postgres://… npx tsx scripts/bench/sessions-list.ts
 *
 * On a real database the bench user (and, by cascade, its rows) is deleted at the end.
 */
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { ConfigProvider, Console, Effect, Layer, Logger, LogLevel, Tracer } from "effect"
import { randomUUID } from "node:crypto"
import { SqlLive } from "../../src/Db/Sql.js"
import { UserId } from "../../src/Http/Schemas.js"
import type { TimeKey } from "../../src/Sessions/Paging.js"
import { SessionsRepo } from "../../src/Sessions/Repo.js"

const SESSIONS = 10_000
const MESSAGES_PER_SESSION = 2
const RUNS = 50

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN

/** Counts statements (one `sql.execute` span each) while timing. */
const statementsOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const native = yield* Effect.tracer
    let count = 0
    const counting = Tracer.make({
      span: (name, ...rest) => {
        if (name === "sql.execute") count++
        return native.span(name, ...rest)
      },
      context: (f, fiber) => native.context(f, fiber)
    })
    yield* Effect.withTracer(effect, counting)
    return count
  })

const seed = (sql: SqlClient.SqlClient, userId: UserId) =>
  Effect.gen(function*() {
    yield* sql`INSERT INTO users (id, email) VALUES (${userId}, ${`bench-${userId}@example.com`})`
    // A thousand sessions (and their messages) per statement: each stays well under the statement timeout.
    for (let from = 1; from <= SESSIONS; from += 1000) {
      yield* sql`
        WITH s AS (
          INSERT INTO sessions (id, user_id, title, metadata, next_seq, created_at, updated_at)
          SELECT gen_random_uuid(), ${userId}, 'bench ' || i, jsonb_build_object('i', i), ${MESSAGES_PER_SESSION + 1},
                 now() - i * interval '1 second', now() - i * interval '1 second'
          FROM generate_series(${from}::int, ${Math.min(SESSIONS, from + 999)}::int) AS i
          RETURNING id, user_id
        )
        INSERT INTO messages (id, session_id, user_id, seq, role, content, status)
        SELECT gen_random_uuid(), s.id, s.user_id, k, CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END,
               repeat('lorem ipsum ', 30) || k, 'completed'
        FROM s CROSS JOIN generate_series(1, ${MESSAGES_PER_SESSION}::int) AS k`
    }
    yield* sql`ANALYZE sessions`
    yield* sql`ANALYZE messages`
  })

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const repo = yield* SessionsRepo
  const userId = UserId.make(randomUUID())
  yield* Effect.addFinalizer(() => sql`DELETE FROM users WHERE id = ${userId}`.pipe(Effect.ignore))

  const started = Date.now()
  yield* seed(sql, userId)
  yield* Console.log(`seeded ${SESSIONS} sessions, ${SESSIONS * MESSAGES_PER_SESSION} messages in ${Date.now() - started} ms`)

  // A cursor 5,000 rows down, reached by walking pages as a client would.
  let deep: TimeKey | undefined
  for (let i = 0; i < 50; i++) {
    const rows = yield* repo.list(userId, { limit: 100, cursor: deep })
    const last = rows[99]
    if (last !== undefined) deep = { t: last.sortMicros, id: last.id }
  }

  const cases: ReadonlyArray<[string, number, TimeKey | undefined]> = [
    ["first page, limit 20", 20, undefined],
    ["first page, limit 100", 100, undefined],
    ["row 5,000, limit 20", 20, deep],
    ["row 5,000, limit 100", 100, deep]
  ]
  for (const [label, limit, cursor] of cases) {
    const statements = yield* statementsOf(repo.list(userId, { limit, cursor }))
    for (let i = 0; i < 5; i++) yield* repo.list(userId, { limit, cursor }) // warm-up
    const times: Array<number> = []
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now()
      yield* repo.list(userId, { limit, cursor })
      times.push(performance.now() - t0)
    }
    times.sort((a, b) => a - b)
    yield* Console.log(
      `${label.padEnd(22)} p50 ${percentile(times, 50).toFixed(2).padStart(7)} ms   ` +
        `p95 ${percentile(times, 95).toFixed(2).padStart(7)} ms   statements/page ${statements}`
    )
  }
})

const env = Object.fromEntries(
  Object.entries({ PARLEY_DB_IN_MEMORY: "true", ...process.env }).flatMap(([k, v]) => v === undefined ? [] : [[k, v]])
)
const target = env["DATABASE_URL"] !== undefined ? "DATABASE_URL" : "embedded PGlite (in memory)"

const MainLive = SessionsRepo.Default.pipe(
  Layer.provideMerge(SqlLive),
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))),
  Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
)

Console.log(`session list benchmark on ${target}`).pipe(
  Effect.zipRight(program),
  Effect.scoped,
  Effect.provide(MainLive),
  NodeRuntime.runMain
)
