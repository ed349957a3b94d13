/**
 * The session list: keyset pagination, its statistics, and the proof that a
 * page costs a fixed number of SQL statements whatever its size (no N+1).
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Tracer } from "effect"
import { SessionsRepo } from "../../src/Sessions/Repo.js"
import { UserId } from "../../src/Http/Schemas.js"
import { at, call, createUser, expectCatalogError } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"
import { bulkSessions, createSession, insertMessages, pageOf } from "./fixtures.js"

/** Runs `effect` under a tracer that records every `sql.execute` span (one per statement sent). */
const countStatements = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const native = yield* Effect.tracer
    const statements: Array<Tracer.Span> = []
    const counting = Tracer.make({
      span: (name, ...rest) => {
        const span = native.span(name, ...rest)
        if (name === "sql.execute") statements.push(span)
        return span
      },
      context: (f, fiber) => native.context(f, fiber)
    })
    const result = yield* Effect.withTracer(effect, counting)
    const texts = statements.map((s) => String(s.attributes.get("db.query.text") ?? "?").replace(/\s+/g, " "))
    return { result, count: statements.length, texts }
  })

/** The repository as the app builds it, over the test server's own SQL client. */
const repoOver = (sql: SqlClient.SqlClient) => SessionsRepo.Default.pipe(Layer.provide(Layer.succeed(SqlClient.SqlClient, sql)))

const pageAll = (token: string, limit: number) =>
  Effect.gen(function*() {
    const ids: Array<string> = []
    let cursor: string | null = null
    do {
      const q: string = `?limit=${limit}` + (cursor === null ? "" : `&cursor=${cursor}`)
      const page = pageOf(yield* call("GET", `/v1/sessions${q}`, { token }))
      ids.push(...page.data.map((s) => String(s["id"])))
      cursor = page.next
    } while (cursor !== null)
    return ids
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

layer(TestServer.layer(), { timeout: 120_000, excludeTestServices: true })("the session list", (it) => {
  it.effect("keyset pages visit every session once, newest first, even with timestamp ties and microseconds", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      // 6 sessions one microsecond apart (same millisecond), 5 sharing one timestamp (ties broken by id).
      yield* server.sql`
        INSERT INTO sessions (id, user_id, title, updated_at)
        SELECT gen_random_uuid(), ${u.id}, 'µs ' || i, timestamptz '2030-01-01 00:00:00.123000+00' + i * interval '1 microsecond'
        FROM generate_series(1, 6) AS i`
      yield* server.sql`
        INSERT INTO sessions (id, user_id, title, updated_at)
        SELECT gen_random_uuid(), ${u.id}, 'tie ' || i, timestamptz '2030-01-01 00:00:00.123003+00'
        FROM generate_series(1, 5) AS i`
      const expected = (yield* server.sql<{ id: string }>`
        SELECT id FROM sessions WHERE user_id = ${u.id} ORDER BY updated_at DESC, id DESC`).map((r) => r.id)
      expect(expected.length).toBe(11)
      for (const limit of [1, 2, 3, 4, 5, 11, 100]) {
        expect(yield* pageAll(u.key, limit)).toEqual(expected)
      }
    }))

  it.effect("default limit 20; statistics per row; an update moves a session to the top", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      yield* bulkSessions(server.sql, u.id, 22, 0)
      const id = yield* createSession(server, u.key, { title: "newest" })
      yield* insertMessages(server.sql, id, [{ role: "user", content: "first" }, { role: "assistant", content: "second" }])
      const first = pageOf(yield* call("GET", "/v1/sessions", { token: u.key }))
      expect(first.data.length).toBe(20)
      expect(first.next).not.toBe(null)
      expect(first.data[0]).toMatchObject({ id, title: "newest", message_count: 2, last_message_preview: "second" })
      expect(first.data[1]).toMatchObject({ message_count: 0, last_message_at: null, last_message_preview: null })
      const second = pageOf(yield* call("GET", `/v1/sessions?cursor=${first.next}`, { token: u.key }))
      expect(second.data.length).toBe(3)
      expect(second.next).toBe(null)
      const last = String(second.data[2]?.["id"])
      expect((yield* call("PATCH", `/v1/sessions/${last}`, { token: u.key, body: { title: "touched" } })).status).toBe(200)
      const again = pageOf(yield* call("GET", "/v1/sessions?limit=1", { token: u.key }))
      expect(again.data.map((s) => s["id"])).toEqual([last])
    }))

  it.effect("limit and cursor are validated: out of range or malformed is 422 naming the parameter", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const b64 = (s: string) => Buffer.from(s).toString("base64url")
      const cases: Array<[string, string]> = [
        ["limit=0", "limit"],
        ["limit=101", "limit"],
        ["limit=abc", "limit"],
        ["limit=2.5", "limit"],
        ["cursor=not*base64", "cursor"],
        [`cursor=${b64("not json")}`, "cursor"],
        [`cursor=${b64(JSON.stringify({ t: "x", id: crypto.randomUUID() }))}`, "cursor"],
        [`cursor=${b64(JSON.stringify({ t: 1e300, id: crypto.randomUUID() }))}`, "cursor"],
        [`cursor=${b64(JSON.stringify({ t: 1, id: "nope" }))}`, "cursor"]
      ]
      for (const [query, param] of cases) {
        const reply = yield* call("GET", `/v1/sessions?${query}`, { token: u.key })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        expect(at(reply.json, "error", "param")).toBe(param)
      }
      const id = yield* createSession(server, u.key)
      const seqCursor = b64(JSON.stringify({ seq: 2 ** 31 }))
      const history = yield* call("GET", `/v1/sessions/${id}/messages?cursor=${seqCursor}`, { token: u.key })
      expectCatalogError(history, 422, "ERR_VALIDATION")
      expect(at(history.json, "error", "param")).toBe("cursor")
    }))

  it.effect("a page is ONE SQL statement, for 1 session and for 100 sessions with messages", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const one = yield* createUser(server)
      const many = yield* createUser(server)
      yield* bulkSessions(server.sql, one.id, 1, 3)
      yield* bulkSessions(server.sql, many.id, 100, 3)
      const measure = (userId: string, limit: number) =>
        Effect.gen(function*() {
          const repo = yield* SessionsRepo
          return yield* countStatements(repo.list(UserId.make(userId), { limit }))
        }).pipe(Effect.provide(repoOver(server.sql)))

      const small = yield* measure(one.id, 100)
      const large = yield* measure(many.id, 100)
      console.log(`session list statements: 1 session -> ${small.count}, 100 sessions -> ${large.count}`)
      expect(small.result.length).toBe(1)
      expect(large.result.length).toBe(100)
      expect(large.result.every((s) => s.messageCount === 3 && s.lastMessagePreview === `message 3 of ${s.title}`)).toBe(true)
      expect(small.count).toBe(1)
      expect(large.count).toBe(small.count)
      expect(large.texts[0]).toMatch(/LATERAL/)
      // the next page, from a cursor, too
      const repoPage2 = yield* Effect.gen(function*() {
        const repo = yield* SessionsRepo
        const last = large.result[49]
        if (last === undefined) return yield* Effect.die("no row 50")
        return yield* countStatements(repo.list(UserId.make(many.id), { limit: 50, cursor: { t: last.sortMicros, id: last.id } }))
      }).pipe(Effect.provide(repoOver(server.sql)))
      expect(repoPage2.count).toBe(1)
      expect(repoPage2.result.map((s) => s.id)).toEqual(large.result.slice(50).map((s) => s.id))
    }))

  it.effect("10,000 sessions of one user: pages of 20 and 100 stay fast (figures printed)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const started = Date.now()
      yield* bulkSessions(server.sql, u.id, 10_000, 2)
      const seeded = Date.now() - started
      const repoRuns = (limit: number, deep: boolean) =>
        Effect.gen(function*() {
          const repo = yield* SessionsRepo
          const userId = UserId.make(u.id)
          // a cursor half-way down the list, so the deep page is a range scan, not the head
          const mid = deep ? (yield* repo.list(userId, { limit: 100 })).at(-1) : undefined
          let cursor = mid !== undefined ? { t: mid.sortMicros, id: mid.id } : undefined
          if (deep) {
            for (let i = 0; i < 49 && cursor !== undefined; i++) {
              const rows = yield* repo.list(userId, { limit: 100, cursor })
              const last = rows.at(-1)
              cursor = last !== undefined ? { t: last.sortMicros, id: last.id } : undefined
            }
          }
          const times: Array<number> = []
          let counted = 0
          for (let i = 0; i < 15; i++) {
            const t0 = performance.now()
            const { count, result } = yield* countStatements(repo.list(userId, { limit, cursor }))
            times.push(performance.now() - t0)
            counted = count
            expect(result.length).toBe(limit + 1)
          }
          return { p50: median(times), statements: counted }
        }).pipe(Effect.provide(repoOver(server.sql)))
      const head20 = yield* repoRuns(20, false)
      const head100 = yield* repoRuns(100, false)
      const deep20 = yield* repoRuns(20, true)
      const deep100 = yield* repoRuns(100, true)
      const t0 = performance.now()
      const http = yield* call("GET", "/v1/sessions?limit=100", { token: u.key })
      const httpMs = performance.now() - t0
      expect(pageOf(http).data.length).toBe(100)
      const db = process.env["TEST_DATABASE_URL"] !== undefined ? "postgres" : "embedded PGlite"
      console.log(
        `10,000 sessions (20,000 messages, seeded in ${seeded} ms, ${db}): list p50 ` +
          `limit 20: ${head20.p50.toFixed(1)} ms (page 50: ${deep20.p50.toFixed(1)} ms), ` +
          `limit 100: ${head100.p50.toFixed(1)} ms (page 50: ${deep100.p50.toFixed(1)} ms); ` +
          `one HTTP page of 100: ${httpMs.toFixed(1)} ms; statements per page: ${head100.statements}`
      )
      for (const r of [head20, head100, deep20, deep100]) expect(r.statements).toBe(1)
      // Generous: a plan that computed statistics for all 10,000 sessions would be far slower.
      expect(deep100.p50).toBeLessThan(1_000)
    }))
})
