import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Scope } from "effect"
import { enqueue, JobFailure, type JobKind, runWorkers } from "../../src/Jobs/Jobs.js"
import * as TestServer from "../support/TestServer.js"

const workerOptions = (workerId: string) => ({
  pollInterval: Duration.millis(20),
  backoffBase: Duration.millis(20),
  drain: Duration.millis(500),
  workerId
})

/** Runs `body` with the test server's SQL client and a scope for workers. */
const withSql = <A, E>(body: (sql: SqlClient.SqlClient) => Effect.Effect<A, E, SqlClient.SqlClient | Scope.Scope>) =>
  Effect.flatMap(TestServer.TestServer, (s) => Effect.scoped(body(s.sql).pipe(Effect.provideService(SqlClient.SqlClient, s.sql))))

const waitUntil = (check: Effect.Effect<boolean, unknown>, ms = 10_000) =>
  Effect.gen(function*() {
    const until = Date.now() + ms
    while (Date.now() < until) {
      if (yield* Effect.orDie(check)) return
      yield* Effect.sleep("25 millis")
    }
    throw new Error("condition not reached in time")
  })

const states = (sql: SqlClient.SqlClient, kind: string) =>
  sql<{ state: string; attempts: number; lastErrorCode: string | null; lockedBy: string | null }>`
    SELECT state, attempts, last_error_code, locked_by FROM jobs WHERE kind = ${kind} ORDER BY created_at`

layer(TestServer.layer({ env: { PARLEY_JOBS_WORKERS: "false" } }), { timeout: 60_000, excludeTestServices: true })("durable jobs", (it) => {
  it.effect("two worker instances share the queue: every job runs exactly once, never twice at the same time", () =>
    withSql((sql) =>
      Effect.gen(function*() {
        const kind = "test.share"
        for (let i = 0; i < 40; i++) yield* enqueue(sql, { kind, userId: null, payload: { i }, maxAttempts: 3 })
        const runs = new Map<string, number>()
        const running = new Set<string>()
        const byWorker = new Map<string, number>()
        let overlap = 0
        const make = (worker: string): JobKind<never> => ({
          kind,
          timeout: Duration.seconds(5),
          concurrency: 3,
          run: (job) =>
            Effect.gen(function*() {
              if (running.has(job.id)) overlap++
              running.add(job.id)
              runs.set(job.id, (runs.get(job.id) ?? 0) + 1)
              byWorker.set(worker, (byWorker.get(worker) ?? 0) + 1)
              yield* Effect.sleep(Duration.millis(5 + Math.random() * 20))
              running.delete(job.id)
            }),
          onDead: () => Effect.void
        })
        yield* runWorkers([make("a")], workerOptions("worker-a"))
        yield* runWorkers([make("b")], workerOptions("worker-b"))
        yield* waitUntil(Effect.map(states(sql, kind), (rows) => rows.every((r) => r.state === "done")))
        expect(runs.size).toBe(40)
        expect([...runs.values()].every((n) => n === 1)).toBe(true)
        expect(overlap).toBe(0)
        expect(byWorker.get("a")).toBeGreaterThan(0)
        expect(byWorker.get("b")).toBeGreaterThan(0)
      })))

  it.effect("a job claimed by a worker that died is completed by another once its lease runs out", () =>
    withSql((sql) =>
      Effect.gen(function*() {
        const kind = "test.orphan"
        yield* sql`INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, locked_by, locked_until)
                   VALUES (gen_random_uuid(), ${kind}, '{}', 'running', 1, 3, 'dead-instance', now() - interval '1 second')`
        let ran = 0
        yield* runWorkers([{ kind, timeout: Duration.seconds(5), concurrency: 1, run: () => Effect.sync(() => void ran++), onDead: () => Effect.void }], workerOptions("survivor"))
        yield* waitUntil(Effect.map(states(sql, kind), (rows) => rows[0]?.state === "done"))
        expect(ran).toBe(1)
        const [row] = yield* states(sql, kind)
        expect(row?.attempts).toBe(2)
      })))

  it.effect("a job that hangs is interrupted at its time limit: ERR_TASK_TIMEOUT, then dead after the last attempt", () =>
    withSql((sql) =>
      Effect.gen(function*() {
        const kind = "test.hang"
        yield* enqueue(sql, { kind, userId: null, payload: {}, maxAttempts: 2 })
        let interrupted = 0
        let dead: JobFailure | undefined
        yield* runWorkers([{
          kind,
          timeout: Duration.millis(200),
          concurrency: 1,
          run: () => Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => void interrupted++))),
          onDead: (_, f) => Effect.sync(() => { dead = f })
        }], workerOptions("w-hang"))
        yield* waitUntil(Effect.map(states(sql, kind), (rows) => rows[0]?.state === "dead"))
        const [row] = yield* states(sql, kind)
        expect(row?.lastErrorCode).toBe("ERR_TASK_TIMEOUT")
        expect(row?.attempts).toBe(2)
        expect(interrupted).toBe(2)
        expect(dead?.code).toBe("ERR_TASK_TIMEOUT")
      })))

  it.effect("transient failures are retried with backoff; a permanent one is dead at once", () =>
    withSql((sql) =>
      Effect.gen(function*() {
        const kind = "test.flaky"
        yield* enqueue(sql, { kind, userId: null, payload: { permanent: false }, maxAttempts: 5 })
        yield* enqueue(sql, { kind, userId: null, payload: { permanent: true }, maxAttempts: 5 })
        const attempts = new Map<string, number>()
        yield* runWorkers([{
          kind,
          timeout: Duration.seconds(5),
          concurrency: 1,
          run: (job) =>
            Effect.gen(function*() {
              const n = (attempts.get(job.id) ?? 0) + 1
              attempts.set(job.id, n)
              const permanent = JSON.stringify(job.payload).includes("true")
              if (permanent) return yield* Effect.fail(new JobFailure({ code: "ERR_X", message: "no", retryable: false }))
              if (n < 3) return yield* Effect.fail(new JobFailure({ code: "ERR_Y", message: "later", retryable: true }))
            }),
          onDead: () => Effect.void
        }], workerOptions("w-flaky"))
        yield* waitUntil(Effect.map(states(sql, kind), (rows) => rows.every((r) => r.state === "done" || r.state === "dead")))
        const rows = yield* states(sql, kind)
        expect(rows.map((r) => [r.state, r.attempts])).toEqual([["done", 3], ["dead", 1]])
      })))
})
