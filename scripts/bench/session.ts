/**
 * Sessions: a persisted chat turn (`POST /v1/sessions/{id}/messages`, JSON)
 * and the session list (`GET /v1/sessions`) of one user with 10,000
 * sessions, over HTTP against a Parley child process. The sessions are made
 * through the API (so the same code seeds the embedded and a real database);
 * the chat sessions are the newest, so the first pages carry messages.
 * Then `sessions-list.ts` gives the same list at the SQL level, with 2
 * messages in every session and statement counts.
 */
import { Effect, Either } from "effect"
import { type Endpoint, load, type Measured, smoke } from "./load.js"
import {
  ADMIN_TOKEN,
  BenchError,
  peakRssMiB,
  property,
  provisionUser,
  removeUser,
  requestJson,
  runScript,
  type Server,
  startParley,
  stringProperty
} from "./processes.js"
import { failures, ms, num, table } from "./report.js"

export interface SessionOptions {
  readonly seconds: number
  readonly warmupSeconds: number
  readonly connections: number // chat turns: one session per connection
  readonly sessions: number
  readonly listConnections: number
  /** Also run sessions-list.ts (SQL level). */
  readonly sqlLevel: boolean
}

const SEED_CONNECTIONS = 20

/** A page of the list: its size and cursor, checked rather than assumed. */
const page = (parley: Server, key: string, query: string) =>
  Effect.flatMap(requestJson("GET", `${parley.url}/v1/sessions?${query}`, key), (json) => {
    const data = property(json, "data")
    const cursor = property(json, "next_cursor")
    return Array.isArray(data) && (typeof cursor === "string" || cursor === null)
      ? Effect.succeed({ size: data.length, cursor })
      : Effect.fail(new BenchError({ message: `unexpected list body: ${JSON.stringify(json).slice(0, 300)}` }))
  })

interface Row {
  readonly what: string
  readonly measured: Measured
  readonly note: string
}

const sessionsPhase = (sim: Server, parleyOptions: { dataDir: string; databaseUrl: string | undefined }, options: SessionOptions) =>
  Effect.gen(function*() {
    const parley = yield* startParley({ simUrl: sim.url, ...parleyOptions })
    const { key, userId } = yield* provisionUser(parley)
    yield* Effect.addFinalizer(() => removeUser(parley, userId))
    const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" }
    const endpoint = (path: string, method: "GET" | "POST", body?: unknown): Endpoint => ({
      url: parley.url,
      path,
      method,
      headers: auth,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    })
    const rows: Array<Row> = []

    yield* Effect.logInfo(`sessions: creating ${options.sessions} sessions through the API`)
    const seed = yield* load(endpoint("/v1/sessions", "POST", { title: "bench session" }), {
      connections: SEED_CONNECTIONS,
      amount: options.sessions
    })
    if (seed.ok !== options.sessions) {
      return yield* new BenchError({
        message: `seeding: ${seed.ok} of ${options.sessions} sessions created (${seed.problems}); Parley ${parley.status()}`
      })
    }
    rows.push({ what: "POST /v1/sessions (seeding)", measured: seed, note: `${SEED_CONNECTIONS} connections, ${num(options.sessions)} requests` })

    const chatIds = yield* Effect.forEach(
      Array.from({ length: options.connections }, (_, i) => i),
      (i) => Effect.flatMap(requestJson("POST", `${parley.url}/v1/sessions`, key, { title: `chat ${i}` }), (s) => stringProperty(s, "id"))
    )
    const turn: Endpoint = {
      ...endpoint("", "POST", { content: "Hello from the benchmark, how are you today?" }),
      pathOf: (n) => `/v1/sessions/${chatIds[n % chatIds.length]}/messages`
    }
    yield* smoke(turn, (text) => text.includes('"assistant_message"'))
    yield* Effect.logInfo("sessions: chat turns")
    yield* load(turn, { connections: options.connections, seconds: options.warmupSeconds })
    const turns = yield* load(turn, { connections: options.connections, seconds: options.seconds })
    rows.push({ what: "POST /v1/sessions/{id}/messages (JSON)", measured: turns, note: `${options.connections} connections, a session each` })
    // Every completed turn queued a memory-extraction job (an upstream call and writes of its own):
    // the fixed-rate run starts once that backlog is worked off, so it measures turns, not the backlog.
    const drained = yield* jobsDrained(parley)
    // A moderate open-loop rate: half of what the closed loop reached.
    const rate = Math.max(1, Math.round(turns.rps / 2))
    const turnsAtRate = yield* load(turn, { connections: options.connections, seconds: options.seconds, rate })
    rows.push({
      what: "POST /v1/sessions/{id}/messages (JSON)",
      measured: turnsAtRate,
      note: `fixed rate ${rate} req/s, after ${num(drained.jobs)} memory-extraction jobs from the run above were worked off (${num(drained.seconds)} s)`
    })

    // The cursor 5,000 rows down, reached page by page as a client would.
    let cursor: string | null = null
    for (let i = 0; i < 50; i++) {
      const next: { size: number; cursor: string | null } = yield* page(parley, key, `limit=100${cursor !== null ? `&cursor=${cursor}` : ""}`)
      if (next.size !== 100 || next.cursor === null) return yield* new BenchError({ message: `page ${i} had ${next.size} rows` })
      cursor = next.cursor
    }
    const lists: ReadonlyArray<[string, string]> = [
      ["GET /v1/sessions?limit=20 (first page)", "limit=20"],
      ["GET /v1/sessions?limit=100 (first page)", "limit=100"],
      ["GET /v1/sessions?limit=100 (row 5,000, by cursor)", `limit=100&cursor=${cursor}`]
    ]
    for (const [what, query] of lists) {
      yield* Effect.logInfo(`sessions: ${what}`)
      const list = endpoint(`/v1/sessions?${query}`, "GET")
      // Reads settle fast: shorter runs keep the whole benchmark within its time budget.
      yield* load(list, { connections: options.listConnections, seconds: Math.min(2, options.warmupSeconds) })
      const measured = yield* load(list, { connections: options.listConnections, seconds: Math.min(10, options.seconds) })
      rows.push({ what, measured, note: `${options.listConnections} connections, ${num(options.sessions + options.connections)} sessions` })
    }
    if (parley.status() !== "running") {
      return yield* new BenchError({ message: `Parley ${parley.status()} during the sessions benchmark: ${parley.output().slice(-500)}` })
    }
    return { rows, rssMiB: yield* peakRssMiB(parley.pid) }
  })

/** Waits (at most 5 minutes) until no job is pending or running; how many there were, and how long it took. */
const jobsDrained = (parley: Server) =>
  Effect.gen(function*() {
    const started = Date.now()
    let first: number | undefined
    for (;;) {
      const status = yield* requestJson("GET", `${parley.url}/v1/admin/status`, ADMIN_TOKEN)
      const counts = property(property(status, "jobs"), "counts")
      let open = 0
      for (const c of Array.isArray(counts) ? counts : []) {
        const state = property(c, "state")
        if (state === "pending" || state === "running") open += Number(property(c, "count"))
      }
      first ??= open
      if (open === 0) return { jobs: first, seconds: Math.round((Date.now() - started) / 1000) }
      if (Date.now() - started > 5 * 60_000) {
        return yield* new BenchError({ message: `${open} jobs still open after 5 minutes` })
      }
      yield* Effect.sleep("1 second")
    }
  })

export const runSessionBench = (sim: Server, parleyOptions: { dataDir: string; databaseUrl: string | undefined }, options: SessionOptions) =>
  Effect.gen(function*() {
    const http = yield* Effect.either(Effect.scoped(sessionsPhase(sim, parleyOptions, options)))
    let sqlLevel = "(skipped)"
    if (options.sqlLevel) {
      yield* Effect.logInfo("sessions: scripts/bench/sessions-list.ts (SQL level)")
      sqlLevel = yield* runScript(
        "scripts/bench/sessions-list.ts",
        parleyOptions.databaseUrl !== undefined ? { DATABASE_URL: parleyOptions.databaseUrl } : {},
        "5 minutes"
      ).pipe(Effect.catchAll((e) => Effect.succeed(`failed: ${e.message}`)))
    }
    const overHttp = Either.isLeft(http)
      ? [`**The sessions benchmark over HTTP failed**: ${http.left.message}`]
      : [
        table(
          ["operation", "req/s", "p50 ms", "p99 ms", "failed", "load"],
          http.right.rows.map((r) => [r.what, num(r.measured.rps), ms(r.measured.p50), ms(r.measured.p99), failures(r.measured), r.note])
        ),
        `Peak RSS of this Parley process: ${num(http.right.rssMiB)} MiB.`
      ]
    return [
      `### Sessions over HTTP (Parley with persistence; chat turns ${options.seconds} s after a ${options.warmupSeconds} s warm-up, ` +
      `lists ${Math.min(10, options.seconds)} s after ${Math.min(2, options.warmupSeconds)} s)`,
      ...overHttp,
      "### Session list at the SQL level (`scripts/bench/sessions-list.ts`: SessionsRepo.list, 2 messages per session)",
      "```\n" + sqlLevel.trim() + "\n```"
    ].join("\n\n")
  })
