/**
 * Fault: 1,000 streaming completions whose clients go away at random points
 * (before the headers, after a few bytes, mid-stream, or never), 50 at a
 * time. Afterwards nothing is left behind: the simulator sees every upstream
 * request closed and its open connections back to the baseline, the DB pool
 * has nothing in use or waiting, the process holds no more TCP sockets than
 * before, and the heap grew within a stated bound. Quotas stay exact: every
 * request that reached the upstream was counted.
 *
 * The server runs in this process, so process-level figures include it.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { at, createUser } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const STREAMS = Number(process.env["DISCONNECT_STREAMS"] ?? 1_000)
const CONCURRENCY = 50
const HEAP_BOUND_MIB = 32

// A real collection before each heap reading: `gc` is exposed at run time (vitest's worker has no --expose-gc).
setFlagsFromString("--expose-gc")
const gc: unknown = runInNewContext("gc")
const collect = () => {
  if (typeof gc === "function") gc()
}

const figures = {
  requests: 0, abortedByClient: 0, completed: 0, serverErrors: 0, upstream: 0, upstreamAborted: 0,
  tcpBefore: 0, tcpAfter: 0, heapGrowthMiB: 0, stormMs: 0, settleMs: 0
}
afterAll(() => {
  console.log(
    `[faults/disconnects] requests sent: ${figures.requests}, faults injected: ${figures.abortedByClient} client disconnects, ` +
      `completed: ${figures.completed}, 500s seen: ${figures.serverErrors}, upstream requests: ${figures.upstream} ` +
      `(${figures.upstreamAborted} aborted by Parley), TCP sockets besides the DB pool's before/after: ${figures.tcpBefore}/${figures.tcpAfter}, ` +
      `heap growth: ${figures.heapGrowthMiB.toFixed(1)} MiB (bound ${HEAP_BOUND_MIB} MiB, gc ${typeof gc === "function" ? "forced" : "not available"}), ` +
      `leaks: ${figures.tcpAfter > figures.tcpBefore ? figures.tcpAfter - figures.tcpBefore : 0}; ${STREAMS} streams in ${figures.stormMs} ms, settled in ${figures.settleMs} ms`
  )
})

const tcpSockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length

type Plan = { readonly kind: "ms"; readonly n: number } | { readonly kind: "bytes"; readonly n: number } | { readonly kind: "never" }

const plan = (): Plan => {
  const r = Math.random()
  // the reply is ~10 chunks over ~50 ms, ~2 KB of SSE
  return r < 0.35 ? { kind: "ms", n: Math.floor(Math.random() * 150) }
    : r < 0.85 ? { kind: "bytes", n: Math.floor(Math.random() * 2_000) }
    : { kind: "never" }
}

/** One streaming request, abandoned per `p`; resolves with what the client saw. */
const stream = (url: string, token: string, p: Plan) =>
  Effect.promise(async () => {
    const controller = new AbortController()
    const timer = p.kind === "ms" ? setTimeout(() => controller.abort(), p.n) : undefined
    let status = 0
    let bytes = 0
    let body = ""
    try {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        signal: controller.signal,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-4o-mini",
          stream: true,
          messages: [{ role: "user", content: "tell me a story about streams that end early" }]
        })
      })
      status = res.status
      const reader = res.body?.getReader()
      for (;;) {
        if (reader === undefined) break
        const { done, value } = await reader.read()
        if (done) break
        bytes += value.length
        body += new TextDecoder().decode(value)
        if (p.kind === "bytes" && bytes >= p.n) {
          controller.abort()
          break
        }
      }
    } catch {
      // the client's own abort
    } finally {
      clearTimeout(timer)
    }
    return { status, aborted: controller.signal.aborted, done: body.includes("data: [DONE]") }
  })

/**
 * The DB pool as /v1/admin/status reports it, over a connection of its own that closes after the
 * answer (a keep-alive connection would be counted among the sockets this test watches).
 */
const poolState = (url: string, token: string) =>
  Effect.async<{ inUse: number; waiting: number; sockets: number }>((resume) => {
    const req = http.get(`${url}/v1/admin/status`, { agent: false, headers: { authorization: `Bearer ${token}`, connection: "close" } }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        text += chunk
      })
      res.on("end", () => {
        const json: unknown = JSON.parse(text)
        const connections = Number(at(json, "database", "pool", "total"))
        resume(Effect.succeed({
          inUse: Number(at(json, "database", "pool", "in_use")),
          waiting: Number(at(json, "database", "pool", "waiting")),
          // the embedded database's server side of each connection lives in this process too
          sockets: at(json, "database", "embedded") === true ? 2 * connections : connections
        }))
      })
    })
    req.on("error", (e) => resume(Effect.die(e)))
  })

/** TCP sockets of this process that are not the DB pool's (whose idle connections live 30 s by design). */
const strayTcpSockets = (url: string, token: string) =>
  Effect.suspend(() => {
    // counted before the status request opens its own connection
    const tcp = tcpSockets()
    return Effect.map(poolState(url, token), (pool) => tcp - pool.sockets)
  })

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
const eventually = (check: () => Effect.Effect<boolean>, ms: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      if (yield* check()) return true
      yield* Effect.sleep("200 millis")
    }
    return yield* check()
  })

const env = (url: string) => ({
  OPENAI_API_KEY: "sk-sim-1",
  OPENAI_BASE_URL: `${url}/v1`,
  PARLEY_DEFAULT_PROVIDER: "openai",
  PARLEY_RATE_LIMIT_PER_MINUTE: "0",
  // PGlite has one connection: 50 requests at a time queue for it
  PARLEY_DB_CONNECT_TIMEOUT_MS: "15000"
})

layer(TestServer.withSimulator(env), { timeout: 60_000, excludeTestServices: true })("faults: clients that disconnect mid-stream", (it) => {
  it.effect(`${STREAMS} streams abandoned at random points leave no connection, pool slot, socket or memory behind`, () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      sim.reset()
      sim.setDefault({ kind: "ok", chunkDelayMs: 4 })
      const users = yield* Effect.all(Array.from({ length: 10 }, () => createUser(server)))
      const poolInUse = poolState(server.url, server.adminToken)
      // warm up every path once, then let keep-alive sockets close before the baselines
      for (const u of users) yield* stream(server.url, u.key, { kind: "never" })
      yield* Effect.sleep("6 seconds")
      const simBaseline = sim.openConnections()
      figures.tcpBefore = yield* strayTcpSockets(server.url, server.adminToken)
      collect()
      const heapBefore = process.memoryUsage().heapUsed
      const upstreamBefore = sim.requests.length

      const stormStart = Date.now()
      const results = yield* Effect.forEach(
        Array.from({ length: STREAMS }, (_, i) => i),
        (i) => stream(server.url, users[i % users.length]?.key ?? "", plan()),
        { concurrency: CONCURRENCY }
      )
      figures.stormMs = Date.now() - stormStart
      figures.requests += STREAMS + users.length
      figures.abortedByClient = results.filter((r) => r.aborted && !r.done).length
      figures.completed = results.filter((r) => r.done).length
      figures.serverErrors = results.filter((r) => r.status >= 500).length

      const settleStart = Date.now()
      const upstream = sim.requests.slice(upstreamBefore)
      const settled = yield* eventually(
        () =>
          Effect.gen(function*() {
            const stray = yield* strayTcpSockets(server.url, server.adminToken)
            const pool = yield* poolInUse
            return stray <= figures.tcpBefore && upstream.every((r) => r.closedAt !== undefined) &&
              sim.openConnections() <= simBaseline && pool.inUse === 0 && pool.waiting === 0
          }),
        15_000
      )
      figures.settleMs = Date.now() - settleStart
      yield* Effect.sleep("200 millis")
      figures.tcpAfter = yield* strayTcpSockets(server.url, server.adminToken)
      figures.upstream = upstream.length
      figures.upstreamAborted = upstream.filter((r) => r.aborted).length
      collect()
      figures.heapGrowthMiB = (process.memoryUsage().heapUsed - heapBefore) / (1024 * 1024)
      // background work (job polling, health probes) takes the pool briefly: a leaked checkout never gives it back
      const samples = yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.zipLeft(poolInUse, Effect.sleep("50 millis")))
      const pool = { inUse: Math.min(...samples.map((p) => p.inUse)), waiting: Math.min(...samples.map((p) => p.waiting)) }

      expect(figures.serverErrors, "no 500 for any stream").toBe(0)
      expect(figures.abortedByClient, "most clients went away mid-way").toBeGreaterThan(STREAMS / 2)
      expect(upstream.filter((r) => r.closedAt === undefined).length, "upstream requests still open").toBe(0)
      expect(sim.openConnections(), "simulator connections back to the baseline").toBeLessThanOrEqual(simBaseline)
      expect(pool, "DB pool: nothing in use, nobody waiting").toEqual({ inUse: 0, waiting: 0 })
      expect(figures.tcpAfter, "TCP sockets (besides the DB pool's) back to the baseline").toBeLessThanOrEqual(figures.tcpBefore)
      expect(figures.heapGrowthMiB, "heap growth").toBeLessThan(HEAP_BOUND_MIB)
      expect(settled).toBe(true)

      // quotas stay exact: what reached the upstream was counted, nothing more than was sent
      const counted = yield* server.sql<{ n: number }>`
        SELECT coalesce(sum(requests), 0)::int AS n FROM usage_daily WHERE user_id IN ${server.sql.in(users.map((u) => u.id))}`.pipe(Effect.orDie)
      const n = counted[0]?.n ?? -1
      expect(n).toBeGreaterThanOrEqual(sim.requests.length)
      expect(n).toBeLessThanOrEqual(STREAMS + users.length)
    }), 90_000)
})
