/**
 * Fault: the database goes away during traffic and comes back. Parley talks
 * to its database through a TCP proxy (in front of a PGlite socket server
 * started here, or of the real Postgres with TEST_DATABASE_URL); workers
 * create sessions, read /v1/me, chat in sessions and create users with keys
 * while the proxy is cut and restored.
 *
 * While cut: 503 ERR_DB_UNAVAILABLE (never ERR_INTERNAL, never a 401 for a
 * good key), /ready 503. Restored: the service comes back by itself within
 * seconds. Afterwards nothing is half-written and nothing acknowledged is
 * missing.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { Context, Effect, Layer, Option } from "effect"
import { at, createUser, type Reply, type RequestOptions, send as sendNoTimeout } from "../support/Http.js"
import { type TcpProxy, TcpProxyResource, targetOf, viaProxy } from "../support/TcpProxy.js"
import { freshDatabase } from "../support/TestDb.js"
import * as TestServer from "../support/TestServer.js"

/** A request that does not answer within 10 s is a finding of its own: a hung call. */
const send = (base: string, method: string, path: string, options: RequestOptions = {}) =>
  sendNoTimeout(base, method, path, options).pipe(
    Effect.timeoutTo({
      duration: "10 seconds",
      onSuccess: (reply): Reply => reply,
      onTimeout: (): Reply => ({ status: 0, headers: new Headers(), text: "(no answer within 10 s)", json: undefined })
    })
  )

const codeOf = (reply: Reply): string | null => {
  const code = at(reply.json, "error", "code")
  return typeof code === "string" ? code : null
}

class Proxy extends Context.Tag("test/DbProxy")<Proxy, TcpProxy>() {}

/** A database of its own: a fresh one on the real server, else an in-memory PGlite behind a socket server. */
const database = Effect.gen(function*() {
  const real = yield* freshDatabase
  if (Option.isSome(real)) return { url: real.value, embedded: false }
  const { server } = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const db = await PGlite.create()
      const server = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1", maxConnections: 4 })
      await server.start()
      return { db, server }
    }),
    ({ db, server }) => Effect.promise(async () => {
      await server.stop()
      await db.close()
    })
  )
  return { url: `postgres://postgres:postgres@${server.getServerConn()}/postgres?sslmode=disable`, embedded: true }
})

const serverBehindProxy = Layer.unwrapScoped(Effect.gen(function*() {
  const db = yield* database
  const proxy = yield* TcpProxyResource(targetOf(db.url, 5432))
  const simEnv = (url: string) => ({
    OPENAI_API_KEY: "sk-sim-1",
    OPENAI_BASE_URL: `${url}/v1`,
    PARLEY_DEFAULT_PROVIDER: "openai",
    PARLEY_DEFAULT_MODEL: "gpt-4o-mini",
    PARLEY_DB_STATEMENT_TIMEOUT_MS: "1000",
    PARLEY_DB_CONNECT_TIMEOUT_MS: "1000",
    PARLEY_DB_HEALTH_INTERVAL_MS: "250",
    PARLEY_DB_HEALTH_TIMEOUT_MS: "500",
    // PGlite is one backend: one connection, as Parley's own embedded mode does
    PARLEY_DB_POOL_MAX: db.embedded ? "1" : "5"
  })
  return Layer.merge(TestServer.withSimulator(simEnv, { databaseUrl: viaProxy(db.url, proxy) }), Layer.succeed(Proxy, proxy))
}))

type Op = "session" | "me" | "turn" | "user"
type Phase = "before" | "cut" | "after"

interface Outcome {
  readonly op: Op
  /** When the request was sent (its phase) and when it was answered. */
  readonly at: number
  readonly answeredAt: number
  readonly status: number
  readonly code: string | null
  readonly reply: Reply
  readonly sent: string
}

const figures = { requests: 0, internalErrors: 0, persistFailed: 0, unavailable: 0, unauthorized: 0, cuts: 0, recoveryMs: 0, readyDownMs: 0 }
afterAll(() => {
  console.log(
    `[faults/database] requests sent: ${figures.requests}, faults injected: ${figures.cuts} cut(s), ` +
      `503 ERR_DB_UNAVAILABLE: ${figures.unavailable}, 500 ERR_SESSION_PERSIST_FAILED: ${figures.persistFailed}, ` +
      `500s (ERR_INTERNAL or no catalog body): ${figures.internalErrors}, 401s for good keys: ${figures.unauthorized}, ` +
      `/ready down after ${figures.readyDownMs} ms, recovered ${figures.recoveryMs} ms after restore`
  )
})

layer(serverBehindProxy, { timeout: 90_000, excludeTestServices: true })("faults: the database stops and restarts", (it) => {
  it.effect("503 while it is down, back by itself, nothing half-written", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const proxy = yield* Proxy
      const users = yield* Effect.all(Array.from({ length: 4 }, () => createUser(server)))
      const sessions = yield* Effect.all(users.map((u) => send(server.url, "POST", "/v1/sessions", { token: u.key, body: { title: "chat" } })))
      const chatSession = sessions.map((r) => String(at(r.json, "id")))
      const outcomes: Array<Outcome> = []
      const timeline = { cutAt: Infinity, restoreAt: Infinity }
      const phaseOf = (t: number): Phase => t < timeline.cutAt ? "before" : t < timeline.restoreAt ? "cut" : "after"
      let serial = 0
      let stop = false

      const issue = (op: Op, w: number) =>
        Effect.gen(function*() {
          const u = users[w % users.length]
          if (u === undefined) return yield* Effect.die("no user")
          const n = ++serial
          const [method, path, token, body]: readonly [string, string, string, unknown] =
            op === "session" ? ["POST", "/v1/sessions", u.key, { title: `fault-${n}`, metadata: { n } }]
            : op === "me" ? ["GET", "/v1/me", u.key, undefined]
            : op === "turn" ? ["POST", `/v1/sessions/${chatSession[w % users.length]}/messages`, u.key, { content: `turn ${n}`, stream: false }]
            : ["POST", "/v1/admin/users", server.adminToken, { email: `fault-${n}-${Date.now()}@example.com` }]
          const sentAt = Date.now()
          const reply = yield* send(server.url, method, path, { token, body })
          figures.requests++
          outcomes.push({ op, at: sentAt, answeredAt: Date.now(), status: reply.status, code: codeOf(reply), reply, sent: `fault-${n}` })
          if (op === "user" && reply.status === 201) {
            const keySentAt = Date.now()
            const key = yield* send(server.url, "POST", `/v1/admin/users/${String(at(reply.json, "id"))}/keys`, { token: server.adminToken, body: {} })
            figures.requests++
            outcomes.push({ op: "user", at: keySentAt, answeredAt: Date.now(), status: key.status, code: codeOf(key), reply: key, sent: "key" })
          }
        })

      const ops: ReadonlyArray<Op> = ["session", "me", "turn", "session", "me", "user"]
      const worker = (w: number) =>
        Effect.gen(function*() {
          for (let i = 0; !stop; i++) {
            yield* issue(ops[(w + i) % ops.length] ?? "me", w)
            yield* Effect.sleep("20 millis")
          }
        })

      const ready: Array<{ at: number; status: number }> = []
      const readiness = Effect.gen(function*() {
        while (!stop) {
          const r = yield* send(server.url, "GET", "/ready")
          ready.push({ at: Date.now(), status: r.status })
          yield* Effect.sleep("100 millis")
        }
      })

      const controller = Effect.gen(function*() {
        yield* Effect.sleep("2 seconds")
        timeline.cutAt = Date.now()
        proxy.cut()
        figures.cuts++
        yield* Effect.sleep("4 seconds")
        timeline.restoreAt = Date.now()
        proxy.restore()
        yield* Effect.sleep("6 seconds")
        stop = true
      })

      yield* Effect.all([controller, readiness, ...Array.from({ length: 6 }, (_, w) => worker(w))], { concurrency: "unbounded" })

      // --- during the outage: only honest failures
      const problems: Array<string> = []
      for (const o of outcomes) {
        const phase = phaseOf(o.at)
        if (o.status === 503 && o.code === "ERR_DB_UNAVAILABLE") figures.unavailable++
        else if (o.status === 500 && o.code === "ERR_SESSION_PERSIST_FAILED") figures.persistFailed++
        else if (o.status >= 500 || o.status === 0) {
          figures.internalErrors++
          problems.push(`${o.op} sent in phase ${phase}, answered after ${o.answeredAt - o.at} ms: ${o.status} ${o.reply.text.slice(0, 160)}`)
        } else if (o.status === 401) {
          figures.unauthorized++
          problems.push(`${o.op} in phase ${phase}: 401 for a good key ${o.reply.text.slice(0, 160)}`)
        } else if (o.status >= 400) problems.push(`${o.op} in phase ${phase}: ${o.status} ${o.reply.text.slice(0, 160)}`)
        // a turn cut between its upstream call and its reply's write may only say so; nothing else fails then
        if (o.status === 500 && o.code === "ERR_SESSION_PERSIST_FAILED" && (o.op !== "turn" || o.answeredAt < timeline.cutAt)) {
          problems.push(`${o.op} in phase ${phase}: ERR_SESSION_PERSIST_FAILED`)
        }
        if (o.answeredAt < timeline.cutAt && o.status >= 300) problems.push(`${o.op} failed before the cut: ${o.status} ${o.reply.text.slice(0, 160)}`)
      }
      expect(problems, problems.join("\n")).toEqual([])
      const settledCut = outcomes.filter((o) => o.at > timeline.cutAt + 1_500 && o.answeredAt < timeline.restoreAt)
      expect(settledCut.length, "traffic during the outage").toBeGreaterThan(10)
      expect(settledCut.filter((o) => o.status < 300).map((o) => `${o.op} ${o.status}`), "no success without a database").toEqual([])

      // --- readiness follows the database
      const down = ready.find((r) => r.at > timeline.cutAt && r.at < timeline.restoreAt && r.status === 503)
      expect(down, "/ready said 503 during the outage").toBeDefined()
      figures.readyDownMs = (down?.at ?? 0) - timeline.cutAt
      expect(ready.filter((r) => r.at < timeline.cutAt).every((r) => r.status === 200)).toBe(true)
      expect(ready.at(-1)?.status, "/ready back to 200").toBe(200)

      // --- recovery by itself: every kind of request succeeds again within seconds
      for (const op of ["session", "me", "turn", "user"] as const) {
        const first = outcomes.find((o) => o.op === op && o.at > timeline.restoreAt && o.status < 300)
        expect(first, `${op} succeeded after the restore`).toBeDefined()
        figures.recoveryMs = Math.max(figures.recoveryMs, (first?.at ?? Infinity) - timeline.restoreAt)
      }
      expect(figures.recoveryMs).toBeLessThan(5_000)
      const tail = outcomes.filter((o) => o.at > timeline.restoreAt + 3_000)
      expect(tail.filter((o) => o.status >= 300).map((o) => `${o.op} ${o.status} ${o.reply.text.slice(0, 100)}`)).toEqual([])

      // --- integrity: acknowledged writes exist, stored rows are whole
      const ids = users.map((u) => u.id)
      const rows = yield* server.sql<{ id: string; userId: string; title: string; metadata: { n?: number } }>`
        SELECT id, user_id, title, metadata FROM sessions WHERE user_id IN ${server.sql.in(ids)} AND title LIKE 'fault-%'`.pipe(Effect.orDie)
      const byId = new Map(rows.map((r) => [r.id, r]))
      for (const o of outcomes.filter((o) => o.op === "session" && o.status === 201)) {
        const row = byId.get(String(at(o.reply.json, "id")))
        expect(row, `acknowledged session ${o.sent} is stored`).toBeDefined()
        expect(row?.title).toBe(o.sent)
      }
      for (const r of rows) expect(`fault-${r.metadata.n}`, `session ${r.id} is whole`).toBe(r.title)

      const messages = yield* server.sql<{ sessionId: string; seq: number; role: string; status: string; nextSeq: number }>`
        SELECT m.session_id, m.seq, m.role, m.status, s.next_seq FROM messages m JOIN sessions s ON s.id = m.session_id
        WHERE m.session_id IN ${server.sql.in(chatSession)} ORDER BY m.session_id, m.seq`.pipe(Effect.orDie)
      for (const sid of chatSession) {
        const seqs = messages.filter((m) => m.sessionId === sid)
        const distinct = new Set(seqs.map((m) => m.seq))
        expect(distinct.size, `seqs of session ${sid} are unique`).toBe(seqs.length)
        for (const m of seqs) expect(m.seq).toBeLessThan(m.nextSeq)
      }
      const storedIds = new Set((yield* server.sql<{ id: string; status: string }>`
        SELECT id, status FROM messages WHERE session_id IN ${server.sql.in(chatSession)}`.pipe(Effect.orDie)).map((m) => `${m.id}:${m.status}`))
      for (const o of outcomes.filter((o) => o.op === "turn" && o.status === 200)) {
        expect(storedIds.has(`${String(at(o.reply.json, "user_message", "id"))}:completed`), "acknowledged question stored").toBe(true)
        expect(storedIds.has(`${String(at(o.reply.json, "assistant_message", "id"))}:completed`), "acknowledged reply stored").toBe(true)
      }

      // every user acknowledged by the admin API exists, and every acknowledged key works
      const created = outcomes.filter((o) => o.op === "user" && o.sent !== "key" && o.status === 201).map((o) => String(at(o.reply.json, "id")))
      if (created.length > 0) {
        const stored = yield* server.sql<{ id: string }>`SELECT id FROM users WHERE id IN ${server.sql.in(created)}`.pipe(Effect.orDie)
        expect(stored.length).toBe(created.length)
      }
      for (const o of outcomes.filter((o) => o.op === "user" && o.sent === "key" && o.status === 201)) {
        const me = yield* send(server.url, "GET", "/v1/me", { token: String(at(o.reply.json, "key")) })
        figures.requests++
        expect(me.status, "an acknowledged key works").toBe(200)
      }
      console.log(`[faults/database] proxy: ${JSON.stringify(proxy.stats())}; outcomes by phase and status: ${
        JSON.stringify(Object.fromEntries(
          [...outcomes.reduce((m, o) => m.set(`${phaseOf(o.at)} ${o.op} ${o.status}`, (m.get(`${phaseOf(o.at)} ${o.op} ${o.status}`) ?? 0) + 1), new Map<string, number>())]
        ))
      }`)
    }), 60_000)
})
