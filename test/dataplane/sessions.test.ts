import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { at, call, createUser, expectCatalogError, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"
import { createAgent, createSession, insertMessages, pageOf } from "./fixtures.js"

const rfc3339Utc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("sessions over HTTP", (it) => {
  it.effect("POST creates a session (201); GET shows it with its message statistics", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const created = yield* call("POST", "/v1/sessions", {
        token: u.key,
        body: { title: "Trip planning", metadata: { source: "ios", tags: ["a", "b"], nested: { n: 1 } } }
      })
      expect(created.status).toBe(201)
      const s = created.json
      expect(str(s, "id")).toMatch(uuid)
      expect(at(s, "title")).toBe("Trip planning")
      expect(at(s, "agent_id")).toBe(null)
      expect(at(s, "metadata")).toEqual({ source: "ios", tags: ["a", "b"], nested: { n: 1 } })
      expect(at(s, "version")).toBe(1)
      expect(at(s, "message_count")).toBe(0)
      expect(at(s, "last_message_at")).toBe(null)
      expect(at(s, "last_message_preview")).toBe(null)
      expect(str(s, "created_at")).toMatch(rfc3339Utc)
      expect(str(s, "updated_at")).toMatch(rfc3339Utc)

      const id = str(s, "id")
      const long = "x".repeat(90) + "ü".repeat(60)
      yield* insertMessages(server.sql, id, [
        { role: "user", content: "hello" },
        { role: "assistant", content: "hi there", model: "openai/gpt-x", inputTokens: 3, outputTokens: 2 },
        { role: "user", content: long }
      ])
      const got = yield* call("GET", `/v1/sessions/${id}`, { token: u.key })
      expect(got.status).toBe(200)
      expect(at(got.json, "message_count")).toBe(3)
      expect(at(got.json, "last_message_preview")).toBe(long.slice(0, 120))
      expect(str(got.json, "last_message_at")).toMatch(rfc3339Utc)
      const [last] = yield* server.sql<{ createdAt: Date }>`SELECT created_at FROM messages WHERE session_id = ${id} AND seq = 3`
      expect(Date.parse(str(got.json, "last_message_at"))).toBe(last?.createdAt.getTime())

      // the defaults: an empty body is a session with no title and empty metadata
      const empty = yield* call("POST", "/v1/sessions", { token: u.key, body: {} })
      expect(empty.status).toBe(201)
      expect([at(empty.json, "title"), at(empty.json, "metadata")]).toEqual([null, {}])
    }))

  it.effect("a session can use the caller's agent; another user's agent is 404 and nothing is written", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const a = yield* createUser(server)
      const b = yield* createUser(server)
      const mine = yield* createAgent(server, a.key)
      const theirs = yield* createAgent(server, b.key)
      const ok = yield* call("POST", "/v1/sessions", { token: a.key, body: { agent_id: mine } })
      expect(ok.status).toBe(201)
      expect(at(ok.json, "agent_id")).toBe(mine)
      const stolen = yield* call("POST", "/v1/sessions", { token: a.key, body: { agent_id: theirs, title: "x" } })
      expectCatalogError(stolen, 404, "ERR_NOT_FOUND")
      expect(stolen.text).not.toContain(theirs)
      const missing = yield* call("POST", "/v1/sessions", { token: a.key, body: { agent_id: crypto.randomUUID() } })
      expectCatalogError(missing, 404, "ERR_NOT_FOUND")
      const rows = yield* server.sql`SELECT 1 FROM sessions WHERE user_id = ${a.id}`
      expect(rows.length).toBe(1)
    }))

  it.effect("PATCH changes only the fields sent, null clears, and every update bumps the version", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const agent = yield* createAgent(server, u.key)
      const id = yield* createSession(server, u.key, { title: "t1", agent_id: agent, metadata: { k: 1 } })
      const before = yield* call("GET", `/v1/sessions/${id}`, { token: u.key })

      const p1 = yield* call("PATCH", `/v1/sessions/${id}`, { token: u.key, body: { title: "t2" } })
      expect(p1.status).toBe(200)
      expect([at(p1.json, "title"), at(p1.json, "agent_id"), at(p1.json, "metadata"), at(p1.json, "version")])
        .toEqual(["t2", agent, { k: 1 }, 2])
      expect(Date.parse(str(p1.json, "updated_at"))).toBeGreaterThanOrEqual(Date.parse(str(before.json, "updated_at")))
      expect(at(p1.json, "created_at")).toBe(at(before.json, "created_at"))

      const p2 = yield* call("PATCH", `/v1/sessions/${id}`, {
        token: u.key,
        body: { title: null, agent_id: null, metadata: { replaced: true } }
      })
      expect([at(p2.json, "title"), at(p2.json, "agent_id"), at(p2.json, "metadata"), at(p2.json, "version")])
        .toEqual([null, null, { replaced: true }, 3])

      // an agent that is not the caller's is 404 and changes nothing
      const other = yield* createUser(server)
      const theirs = yield* createAgent(server, other.key)
      expectCatalogError(
        yield* call("PATCH", `/v1/sessions/${id}`, { token: u.key, body: { agent_id: theirs } }),
        404,
        "ERR_NOT_FOUND"
      )
      const after = yield* call("GET", `/v1/sessions/${id}`, { token: u.key })
      expect([at(after.json, "agent_id"), at(after.json, "version")]).toEqual([null, 3])
    }))

  it.effect("If-Match: the current version updates; a stale one is 409 ERR_CONFLICT and changes nothing", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const id = yield* createSession(server, u.key, { title: "v1" })
      const ok = yield* call("PATCH", `/v1/sessions/${id}`, { token: u.key, headers: { "if-match": "1" }, body: { title: "v2" } })
      expect(ok.status).toBe(200)
      expect(at(ok.json, "version")).toBe(2)
      // ETag-style quoting is accepted too
      const quoted = yield* call("PATCH", `/v1/sessions/${id}`, { token: u.key, headers: { "if-match": "\"2\"" }, body: { title: "v3" } })
      expect(at(quoted.json, "version")).toBe(3)
      const stale = yield* call("PATCH", `/v1/sessions/${id}`, { token: u.key, headers: { "if-match": "2" }, body: { title: "lost" } })
      expectCatalogError(stale, 409, "ERR_CONFLICT")
      const now = yield* call("GET", `/v1/sessions/${id}`, { token: u.key })
      expect([at(now.json, "title"), at(now.json, "version")]).toEqual(["v3", 3])
      // a malformed If-Match is a validation error naming the header
      const bad = yield* call("PATCH", `/v1/sessions/${id}`, { token: u.key, headers: { "if-match": "abc" }, body: {} })
      expectCatalogError(bad, 422, "ERR_VALIDATION")
      expect(at(bad.json, "error", "param")).toBe("if-match")
      // a stale version on a session that is not the caller's is still 404, not 409
      const other = yield* createUser(server)
      expectCatalogError(
        yield* call("PATCH", `/v1/sessions/${id}`, { token: other.key, headers: { "if-match": "1" }, body: { title: "x" } }),
        404,
        "ERR_NOT_FOUND"
      )
    }))

  it.effect("concurrent PATCHes with the same If-Match: exactly one wins", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const id = yield* createSession(server, u.key)
      const replies = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) =>
          call("PATCH", `/v1/sessions/${id}`, { token: u.key, headers: { "if-match": "1" }, body: { title: `w${i}` } })),
        { concurrency: "unbounded" }
      )
      const winners = replies.filter((r) => r.status === 200)
      expect(winners.length).toBe(1)
      for (const r of replies) if (r.status !== 200) expectCatalogError(r, 409, "ERR_CONFLICT")
      const [row] = yield* server.sql<{ title: string; version: number }>`SELECT title, version FROM sessions WHERE id = ${id}`
      expect(row).toEqual({ title: at(winners[0]?.json, "title"), version: 2 })
    }))

  it.effect("history: ascending seq, paged by cursor; assistant messages carry model, usage and statuses", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const id = yield* createSession(server, u.key)
      const contents = Array.from({ length: 7 }, (_, i) => `m${i + 1}`)
      yield* insertMessages(server.sql, id, contents.map((content, i) =>
        i % 2 === 0
          ? { role: "user" as const, content }
          : {
            role: "assistant" as const,
            content,
            model: "anthropic/claude-x",
            inputTokens: 10 + i,
            outputTokens: 20 + i,
            finishReason: "stop",
            memoryStatus: "saved" as const
          }))
      yield* insertMessages(server.sql, id, [
        { role: "assistant", content: "partial", status: "interrupted", errorCode: "ERR_STREAM_INTERRUPTED", memoryStatus: "skipped" }
      ])

      const seen: Array<Record<string, unknown>> = []
      let cursor: string | null = null
      let pages = 0
      do {
        const q: string = cursor === null ? "?limit=3" : `?limit=3&cursor=${cursor}`
        const reply = yield* call("GET", `/v1/sessions/${id}/messages${q}`, { token: u.key })
        expect(reply.status).toBe(200)
        const page = pageOf(reply)
        expect(page.data.length).toBeLessThanOrEqual(3)
        seen.push(...page.data)
        cursor = page.next
        pages++
      } while (cursor !== null)
      expect(pages).toBe(3)
      expect(seen.map((m) => m["seq"])).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
      expect(seen.map((m) => m["content"])).toEqual([...contents, "partial"])

      const user = seen[0]
      expect(Object.keys(user ?? {}).sort()).toEqual(["content", "created_at", "id", "role", "seq", "session_id", "status"])
      expect(user).toMatchObject({ session_id: id, seq: 1, role: "user", content: "m1", status: "completed" })
      expect(seen[1]).toMatchObject({
        role: "assistant",
        model: "anthropic/claude-x",
        usage: { input_tokens: 11, output_tokens: 21 },
        finish_reason: "stop",
        memory_status: "saved",
        error_code: null
      })
      expect(seen[7]).toMatchObject({
        role: "assistant",
        status: "interrupted",
        usage: null,
        model: null,
        error_code: "ERR_STREAM_INTERRUPTED",
        memory_status: "skipped"
      })
      expect(str(seen[7], "created_at")).toMatch(rfc3339Utc)

      // an empty session has an empty history, not a 404
      const fresh = yield* createSession(server, u.key)
      const empty = yield* call("GET", `/v1/sessions/${fresh}/messages`, { token: u.key })
      expect(pageOf(empty)).toEqual({ data: [], next: null })
    }))

  it.effect("DELETE removes the session, its messages and their feedback (204); then it is 404", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const id = yield* createSession(server, u.key)
      const keep = yield* createSession(server, u.key)
      const [m1, m2] = yield* insertMessages(server.sql, id, [{ role: "user", content: "q" }, { role: "assistant", content: "a" }])
      const [k1] = yield* insertMessages(server.sql, keep, [{ role: "assistant", content: "kept" }])
      expect((yield* call("POST", `/v1/messages/${m2}/feedback`, { token: u.key, body: { rating: "up" } })).status).toBe(201)
      expect((yield* call("POST", `/v1/messages/${k1}/feedback`, { token: u.key, body: { rating: "down" } })).status).toBe(201)

      const del = yield* call("DELETE", `/v1/sessions/${id}`, { token: u.key })
      expect(del.status).toBe(204)
      expect(del.text).toBe("")
      const left = yield* server.sql<{ sessions: number; messages: number; feedback: number }>`
        SELECT (SELECT count(*)::int FROM sessions WHERE id = ${id}) AS sessions,
               (SELECT count(*)::int FROM messages WHERE id IN (${m1}, ${m2})) AS messages,
               (SELECT count(*)::int FROM feedback WHERE message_id = ${m2}) AS feedback`
      expect(left[0]).toEqual({ sessions: 0, messages: 0, feedback: 0 })
      // the other session is untouched
      const kept = yield* server.sql`SELECT 1 FROM feedback WHERE message_id = ${k1}`
      expect(kept.length).toBe(1)
      expectCatalogError(yield* call("GET", `/v1/sessions/${id}`, { token: u.key }), 404, "ERR_NOT_FOUND")
      expectCatalogError(yield* call("DELETE", `/v1/sessions/${id}`, { token: u.key }), 404, "ERR_NOT_FOUND")
      expectCatalogError(yield* call("GET", `/v1/sessions/${id}/messages`, { token: u.key }), 404, "ERR_NOT_FOUND")
    }))

  it.effect("a session deletion that fails half-way (on the feedback delete) leaves everything in place", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const id = yield* createSession(server, u.key, { title: "survivor" })
      const [m1, m2] = yield* insertMessages(server.sql, id, [{ role: "user", content: "q" }, { role: "assistant", content: "a" }])
      expect((yield* call("POST", `/v1/messages/${m2}/feedback`, { token: u.key, body: { rating: "down", comment: "meh" } })).status)
        .toBe(201)
      yield* server.sql.unsafe(`
        CREATE OR REPLACE FUNCTION parley_test_fail_feedback() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql`)
      yield* server.sql.unsafe(
        `CREATE TRIGGER parley_test_fail_feedback BEFORE DELETE ON feedback FOR EACH ROW EXECUTE FUNCTION parley_test_fail_feedback()`
      )
      const del = yield* call("DELETE", `/v1/sessions/${id}`, { token: u.key })
      yield* server.sql.unsafe(`DROP TRIGGER parley_test_fail_feedback ON feedback`)
      expectCatalogError(del, 500, "ERR_INTERNAL")
      expect(str(del.json, "error", "message")).toBe("Internal error.")
      expect(del.text).not.toContain("injected")
      const left = yield* server.sql<{ sessions: number; messages: number; feedback: number }>`
        SELECT (SELECT count(*)::int FROM sessions WHERE id = ${id}) AS sessions,
               (SELECT count(*)::int FROM messages WHERE id IN (${m1}, ${m2})) AS messages,
               (SELECT count(*)::int FROM feedback WHERE message_id = ${m2}) AS feedback`
      expect(left[0]).toEqual({ sessions: 1, messages: 2, feedback: 1 })
      const got = yield* call("GET", `/v1/sessions/${id}`, { token: u.key })
      expect([at(got.json, "title"), at(got.json, "message_count")]).toEqual(["survivor", 2])
      // and once the fault is gone, the same request succeeds
      expect((yield* call("DELETE", `/v1/sessions/${id}`, { token: u.key })).status).toBe(204)
    }))

  it.effect("another user's session is 404 on every route, with nothing about it in the body", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const owner = yield* createUser(server)
      const other = yield* createUser(server)
      const secret = "secret-title-7f3a"
      const id = yield* createSession(server, owner.key, { title: secret, metadata: { secret } })
      const [mid] = yield* insertMessages(server.sql, id, [{ role: "assistant", content: secret }])
      const attempts = [
        yield* call("GET", `/v1/sessions/${id}`, { token: other.key }),
        yield* call("PATCH", `/v1/sessions/${id}`, { token: other.key, body: { title: "mine now" } }),
        yield* call("DELETE", `/v1/sessions/${id}`, { token: other.key }),
        yield* call("GET", `/v1/sessions/${id}/messages`, { token: other.key }),
        yield* call("POST", `/v1/messages/${mid}/feedback`, { token: other.key, body: { rating: "down" } })
      ]
      for (const reply of attempts) {
        expectCatalogError(reply, 404, "ERR_NOT_FOUND")
        expect(reply.text).not.toContain(secret)
        expect(reply.text).not.toContain(id)
      }
      // the same answer as for an id that does not exist at all
      const nowhere = yield* call("GET", `/v1/sessions/${crypto.randomUUID()}`, { token: other.key })
      expect(str(nowhere.json, "error", "message")).toBe(str(attempts[0]?.json, "error", "message"))
      // lists never show it
      const list = pageOf(yield* call("GET", "/v1/sessions", { token: other.key }))
      expect(list.data).toEqual([])
      // and nothing changed
      const got = yield* call("GET", `/v1/sessions/${id}`, { token: owner.key })
      expect([at(got.json, "title"), at(got.json, "version"), at(got.json, "message_count")]).toEqual([secret, 1, 1])
      const fb = yield* server.sql`SELECT 1 FROM feedback WHERE message_id = ${mid}`
      expect(fb.length).toBe(0)
    }))

  it.effect("the admin token is 403 on session routes; no token is 401", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      expectCatalogError(yield* call("GET", "/v1/sessions", { token: server.adminToken }), 403, "ERR_FORBIDDEN")
      expectCatalogError(yield* call("POST", "/v1/sessions", { token: server.adminToken, body: {} }), 403, "ERR_FORBIDDEN")
      expectCatalogError(yield* call("GET", "/v1/sessions"), 401, "ERR_UNAUTHENTICATED")
    }))
})
