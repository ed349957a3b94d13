/**
 * Durable background jobs in Postgres. A table claimed with
 * `FOR UPDATE SKIP LOCKED` (rather than SqlPersistedQueue) because every state
 * a job can be in — pending, running under a lease, done, dead with its error
 * code — must be visible to operators and to the API (a message's
 * memory_status), and a time limit must end a job with ERR_TASK_TIMEOUT.
 *
 * Workers are scoped fibers in every instance. A claim is a lease: a job
 * whose instance died is claimed again once its lease has run out. On
 * shutdown workers stop claiming; running jobs get the drain time to finish,
 * then are interrupted and released for another instance.
 */
import { SqlClient } from "@effect/sql"
import { Cause, Data, Duration, Effect, Exit, Fiber, Metric, MetricLabel, Ref, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { EventCodes } from "../Errors.js"

export const Job = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  userId: Schema.NullOr(Schema.String),
  payload: Schema.Unknown,
  attempts: Schema.Number,
  maxAttempts: Schema.Number
})
export type Job = typeof Job.Type

/** Why a job attempt failed; `retryable` ones are tried again with backoff until the last attempt. */
export class JobFailure extends Data.TaggedError("JobFailure")<{
  readonly code: string
  readonly message: string
  readonly retryable: boolean
}> {}

export interface JobKind<R> {
  readonly kind: string
  readonly timeout: Duration.Duration
  readonly concurrency: number
  readonly run: (job: Job) => Effect.Effect<void, JobFailure, R>
  /** After the last attempt failed: make the failure visible where it matters. */
  readonly onDead: (job: Job, failure: JobFailure) => Effect.Effect<void, never, R>
}

export const jobsFinished = Metric.counter("parley_jobs_total", { description: "Jobs finished by kind and outcome" })

export interface WorkerOptions {
  readonly pollInterval: Duration.Duration
  readonly backoffBase: Duration.Duration
  readonly drain: Duration.Duration
  readonly workerId?: string
}

export interface NewJob {
  readonly kind: string
  readonly userId: string | null
  readonly payload: unknown
  readonly maxAttempts: number
}

/** A pending job's row, for `sql.insert` (e.g. in a data-modifying CTE of the statement that makes it necessary). */
export const jobRow = (job: NewJob) => ({
  id: randomUUID(),
  kind: job.kind,
  userId: job.userId,
  payload: JSON.stringify(job.payload),
  state: "pending",
  maxAttempts: job.maxAttempts
})

/** Inserts a job; use inside the transaction that makes it necessary, so it is never lost. */
export const enqueue = (sql: SqlClient.SqlClient, job: NewJob) =>
  sql`INSERT INTO jobs ${sql.insert(jobRow(job))}`

/** Runs workers for `kinds` until the scope closes. */
export const runWorkers = <R>(kinds: ReadonlyArray<JobKind<R>>, options: WorkerOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
    const stopping = yield* Ref.make(false)
    const active = yield* Ref.make(0)
    const decode = Schema.decodeUnknown(Schema.Array(Job))

    const claim = (k: JobKind<R>) =>
      sql`
        UPDATE jobs SET state = 'running', locked_by = ${workerId}, attempts = attempts + 1, updated_at = now(),
          locked_until = now() + ${Duration.toMillis(k.timeout) + 30_000} * interval '1 millisecond'
        WHERE id IN (
          SELECT id FROM jobs
          WHERE kind = ${k.kind}
            AND ((state = 'pending' AND run_at <= now()) OR (state = 'running' AND locked_until < now()))
          ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED
        )
        RETURNING id, kind, user_id, payload, attempts, max_attempts`.pipe(
        Effect.flatMap(decode),
        Effect.orDie,
        // Idle polls would be a root trace every interval; a claimed job is traced by Jobs.run.
        Effect.withTracerEnabled(false)
      )

    const mine = (job: Job) => sql`id = ${job.id} AND locked_by = ${workerId} AND state = 'running'`
    const done = (job: Job) => sql`UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, updated_at = now() WHERE ${mine(job)}`
    const release = (job: Job) =>
      sql`UPDATE jobs SET state = 'pending', attempts = greatest(attempts - 1, 0), locked_by = NULL, locked_until = NULL, updated_at = now() WHERE ${mine(job)}`
    const retryLater = (job: Job, f: JobFailure) => {
      const delayMs = Duration.toMillis(options.backoffBase) * 2 ** Math.max(0, job.attempts - 1) * (0.5 + Math.random() / 2)
      return sql`UPDATE jobs SET state = 'pending', locked_by = NULL, locked_until = NULL, updated_at = now(),
          run_at = now() + ${Math.round(delayMs)} * interval '1 millisecond',
          last_error_code = ${f.code}, last_error = ${f.message.slice(0, 500)} WHERE ${mine(job)}`
    }
    const dead = (job: Job, f: JobFailure) =>
      sql`UPDATE jobs SET state = 'dead', locked_by = NULL, locked_until = NULL, updated_at = now(),
          last_error_code = ${f.code}, last_error = ${f.message.slice(0, 500)} WHERE ${mine(job)}`

    const count = (k: JobKind<R>, outcome: string) =>
      Metric.increment(Metric.taggedWithLabels(jobsFinished, [MetricLabel.make("kind", k.kind), MetricLabel.make("outcome", outcome)]))

    const settle = (k: JobKind<R>, job: Job, exit: Exit.Exit<void, JobFailure>) => {
      if (Exit.isSuccess(exit)) return done(job).pipe(Effect.zipRight(count(k, "done")))
      if (Cause.isInterruptedOnly(exit.cause)) return release(job).pipe(Effect.zipRight(count(k, "released")))
      const failure = Cause.failureOption(exit.cause).pipe(
        (o) => o._tag === "Some" ? o.value : new JobFailure({ code: "ERR_INTERNAL", message: Cause.pretty(exit.cause).slice(0, 300), retryable: true })
      )
      if (failure.retryable && job.attempts < job.maxAttempts) {
        return retryLater(job, failure).pipe(Effect.zipRight(count(k, "retry")))
      }
      return dead(job, failure).pipe(
        Effect.zipRight(k.onDead(job, failure)),
        Effect.zipRight(count(k, "dead")),
        Effect.zipRight(Effect.logWarning("job dead after its last attempt").pipe(
          Effect.annotateLogs({ job_id: job.id, kind: job.kind, code: failure.code, attempts: job.attempts })
        ))
      )
    }

    const work = (k: JobKind<R>, job: Job) =>
      Effect.gen(function*() {
        yield* Ref.update(active, (n) => n + 1)
        const exit = yield* k.run(job).pipe(
          Effect.timeoutFail({
            duration: k.timeout,
            onTimeout: () => new JobFailure({ code: EventCodes.taskTimeout, message: `job exceeded its ${Duration.format(k.timeout)} limit`, retryable: true })
          }),
          Effect.withSpan("Jobs.run", { captureStackTrace: false, attributes: { "parley.job.kind": job.kind, "parley.job.id": job.id, "parley.job.attempt": job.attempts } }),
          Effect.exit
        )
        yield* settle(k, job, exit).pipe(Effect.orDie)
      }).pipe(
        // Interrupted (shutdown past the drain time): hand the job back for another instance.
        Effect.onInterrupt(() => release(job).pipe(Effect.ignoreLogged)),
        Effect.ensuring(Ref.update(active, (n) => n - 1))
      )

    const loop = (k: JobKind<R>): Effect.Effect<void, never, R> =>
      Effect.gen(function*() {
        while (!(yield* Ref.get(stopping))) {
          const claimed = yield* claim(k).pipe(
            Effect.catchAllCause((cause) =>
              Effect.logWarning("job claim failed").pipe(Effect.annotateLogs({ cause: Cause.pretty(cause).slice(0, 300) }), Effect.as([]))
            )
          )
          const job = claimed[0]
          if (job === undefined) yield* Effect.sleep(options.pollInterval)
          else yield* work(k, job)
        }
      })

    const scope = yield* Effect.scope
    const fibers = yield* Effect.forEach(
      kinds.flatMap((k) => Array.from({ length: k.concurrency }, () => k)),
      (k) => Effect.forkIn(loop(k), scope)
    )
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Ref.set(stopping, true)
        const idle: Effect.Effect<void> = Effect.flatMap(Ref.get(active), (n) =>
          n === 0 ? Effect.void : Effect.zipRight(Effect.sleep("50 millis"), idle))
        yield* idle.pipe(Effect.timeout(options.drain), Effect.ignore)
        yield* Fiber.interruptAll(fibers)
      })
    )
    return { workerId }
  })
