/**
 * The embedded database: PGlite (real Postgres compiled to WASM) behind a
 * loopback pglite-socket server, so the same `@effect/sql-pg` client and the
 * same SQL serve both the embedded and the external database.
 *
 * Both run in a worker thread (./EmbeddedWorker.mjs): Postgres' work —
 * parsing, planning, executing, writing pages — runs on another core and
 * never stalls Parley's event loop. Parley reaches it over loopback TCP, as it
 * would an external server.
 */
import { Duration, Effect, Redacted } from "effect"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { Worker } from "node:worker_threads"

export class EmbeddedStartError extends Error {}

type Reply =
  | { readonly type: "started"; readonly conn: string }
  | { readonly type: "stopped" }
  | { readonly type: "failed"; readonly message: string }

const isReply = (u: unknown): u is Reply =>
  typeof u === "object" && u !== null && "type" in u && typeof u.type === "string"

/** The worker's next reply; a worker that dies or errors first answers `failed`. */
const nextReply = (worker: Worker) =>
  Effect.async<Reply>((resume) => {
    const onMessage = (message: unknown) => {
      if (isReply(message)) done(message)
    }
    const onError = (error: Error) => done({ type: "failed", message: error.message })
    const onExit = (code: number) => done({ type: "failed", message: `worker exited with code ${code}` })
    const done = (reply: Reply) => {
      worker.off("message", onMessage).off("error", onError).off("exit", onExit)
      resume(Effect.succeed(reply))
    }
    worker.on("message", onMessage).on("error", onError).on("exit", onExit)
    return Effect.sync(() => worker.off("message", onMessage).off("error", onError).off("exit", onExit))
  })

const stopWorker = (worker: Worker) =>
  Effect.sync(() => worker.postMessage({ type: "stop" })).pipe(
    Effect.zipRight(nextReply(worker)),
    Effect.timeout(Duration.seconds(10)),
    Effect.ignore,
    Effect.zipRight(Effect.promise(() => worker.terminate()))
  )

export const startEmbedded = (options: { readonly dataDir: string; readonly inMemory: boolean }) =>
  Effect.gen(function*() {
    const dir = options.inMemory ? undefined : join(options.dataDir, "pg")
    if (dir !== undefined) {
      yield* Effect.try({
        try: () => mkdirSync(dir, { recursive: true }),
        catch: (cause) => new EmbeddedStartError(`embedded database failed to start: ${String(cause)}`)
      })
    }
    const worker = yield* Effect.acquireRelease(
      Effect.sync(() => new Worker(new URL("./EmbeddedWorker.mjs", import.meta.url))),
      stopWorker
    )
    worker.postMessage(dir !== undefined ? { type: "start", dataDir: dir } : { type: "start" })
    const reply = yield* nextReply(worker)
    if (reply.type !== "started") {
      return yield* Effect.fail(
        new EmbeddedStartError(
          `embedded database failed to start: ${reply.type === "failed" ? reply.message : "unexpected reply"}`
        )
      )
    }
    yield* Effect.logInfo("embedded database started").pipe(Effect.annotateLogs({ data_dir: dir ?? "(memory)" }))
    return Redacted.make(`postgres://postgres:postgres@${reply.conn}/postgres?sslmode=disable`)
  })
