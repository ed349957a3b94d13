import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { at, call, createUser, expectCatalogError, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"
import { createAgent, createSession, insertMessages } from "./fixtures.js"

layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("feedback over HTTP", (it) => {
  it.effect("the first post is 201; posting again replaces rating and comment (200, same feedback)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const session = yield* createSession(server, u.key)
      const [, reply] = yield* insertMessages(server.sql, session, [
        { role: "user", content: "q" },
        { role: "assistant", content: "a" }
      ])
      const first = yield* call("POST", `/v1/messages/${reply}/feedback`, {
        token: u.key,
        body: { rating: "up", comment: "spot on" }
      })
      expect(first.status).toBe(201)
      expect(first.json).toMatchObject({ message_id: reply, rating: "up", comment: "spot on" })
      expect(str(first.json, "created_at")).toMatch(/Z$/)
      expect(Object.keys(first.json ?? {}).sort()).toEqual(["comment", "created_at", "id", "message_id", "rating", "updated_at"])

      const second = yield* call("POST", `/v1/messages/${reply}/feedback`, { token: u.key, body: { rating: "down" } })
      expect(second.status).toBe(200)
      expect(second.json).toMatchObject({ id: at(first.json, "id"), rating: "down", comment: null })
      expect(at(second.json, "created_at")).toBe(at(first.json, "created_at"))
      expect(Date.parse(str(second.json, "updated_at"))).toBeGreaterThanOrEqual(Date.parse(str(first.json, "updated_at")))
      const rows = yield* server.sql`SELECT rating, comment FROM feedback WHERE message_id = ${reply}`
      expect(rows).toEqual([{ rating: "down", comment: null }])
    }))

  it.effect("invalid bodies are 422 naming the field, and write nothing", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const session = yield* createSession(server, u.key)
      const [mid] = yield* insertMessages(server.sql, session, [{ role: "assistant", content: "a" }])
      const cases: Array<[unknown, string | null]> = [
        [{}, "rating"],
        [{ rating: "meh" }, "rating"],
        [{ rating: 1 }, "rating"],
        [{ rating: "up", comment: "x".repeat(2001) }, "comment"],
        [{ rating: "up", comment: 5 }, "comment"],
        [{ rating: "up", comment: "nul\u0000byte" }, "comment"],
        [{ rating: "up", stars: 5 }, "stars"],
        [["up"], null]
      ]
      for (const [body, param] of cases) {
        const reply = yield* call("POST", `/v1/messages/${mid}/feedback`, { token: u.key, body })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        if (param !== null) expect(at(reply.json, "error", "param")).toBe(param)
      }
      const bad = yield* call("POST", "/v1/messages/not-a-uuid/feedback", { token: u.key, body: { rating: "up" } })
      expectCatalogError(bad, 422, "ERR_VALIDATION")
      expect(at(bad.json, "error", "param")).toBe("id")
      expectCatalogError(
        yield* call("POST", `/v1/messages/${mid}/feedback`, { token: u.key, rawBody: "{\"rating\":", headers: { "content-type": "application/json" } }),
        400,
        "ERR_BAD_REQUEST"
      )
      const rows = yield* server.sql`SELECT 1 FROM feedback WHERE message_id = ${mid}`
      expect(rows.length).toBe(0)
      // exactly 2000 characters is fine
      const edge = yield* call("POST", `/v1/messages/${mid}/feedback`, { token: u.key, body: { rating: "up", comment: "y".repeat(2000) } })
      expect(edge.status).toBe(201)
    }))

  it.effect("a message that is not the caller's, or does not exist, is 404 and writes nothing", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const owner = yield* createUser(server)
      const other = yield* createUser(server)
      const session = yield* createSession(server, owner.key)
      const [mid] = yield* insertMessages(server.sql, session, [{ role: "assistant", content: "private answer" }])
      const theirs = yield* call("POST", `/v1/messages/${mid}/feedback`, { token: other.key, body: { rating: "down" } })
      expectCatalogError(theirs, 404, "ERR_NOT_FOUND")
      expect(theirs.text).not.toContain("private answer")
      const nowhere = yield* call("POST", `/v1/messages/${crypto.randomUUID()}/feedback`, { token: other.key, body: { rating: "down" } })
      expectCatalogError(nowhere, 404, "ERR_NOT_FOUND")
      expect(str(nowhere.json, "error", "message")).toBe(str(theirs.json, "error", "message"))
      const rows = yield* server.sql`SELECT 1 FROM feedback WHERE message_id = ${mid}`
      expect(rows.length).toBe(0)
      expectCatalogError(
        yield* call("POST", `/v1/messages/${mid}/feedback`, { token: server.adminToken, body: { rating: "up" } }),
        403,
        "ERR_FORBIDDEN"
      )
    }))

  it.effect("deleting a user removes their sessions, messages, agents and feedback, in one transaction", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const bystander = yield* createUser(server)
      const agent = yield* createAgent(server, u.key)
      const session = yield* createSession(server, u.key, { agent_id: agent })
      const [, m] = yield* insertMessages(server.sql, session, [{ role: "user", content: "q" }, { role: "assistant", content: "a" }])
      expect((yield* call("POST", `/v1/messages/${m}/feedback`, { token: u.key, body: { rating: "up" } })).status).toBe(201)
      const theirSession = yield* createSession(server, bystander.key)
      const [bm] = yield* insertMessages(server.sql, theirSession, [{ role: "assistant", content: "b" }])
      expect((yield* call("POST", `/v1/messages/${bm}/feedback`, { token: bystander.key, body: { rating: "up" } })).status).toBe(201)

      const counts = (userId: string) =>
        server.sql<{ agents: number; sessions: number; messages: number; feedback: number }>`
          SELECT (SELECT count(*)::int FROM agents WHERE user_id = ${userId}) AS agents,
                 (SELECT count(*)::int FROM sessions WHERE user_id = ${userId}) AS sessions,
                 (SELECT count(*)::int FROM messages WHERE user_id = ${userId}) AS messages,
                 (SELECT count(*)::int FROM feedback WHERE user_id = ${userId}) AS feedback`

      // a user deletion that fails on its last step leaves all of it in place
      yield* server.sql.unsafe(`
        CREATE OR REPLACE FUNCTION parley_test_fail_agents() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql`)
      yield* server.sql.unsafe(
        `CREATE TRIGGER parley_test_fail_agents BEFORE DELETE ON agents FOR EACH ROW EXECUTE FUNCTION parley_test_fail_agents()`
      )
      const failed = yield* call("DELETE", `/v1/admin/users/${u.id}`, { token: server.adminToken })
      yield* server.sql.unsafe(`DROP TRIGGER parley_test_fail_agents ON agents`)
      expectCatalogError(failed, 500, "ERR_INTERNAL")
      expect((yield* counts(u.id))[0]).toEqual({ agents: 1, sessions: 1, messages: 2, feedback: 1 })

      const del = yield* call("DELETE", `/v1/admin/users/${u.id}`, { token: server.adminToken })
      expect(del.status).toBe(204)
      expect((yield* counts(u.id))[0]).toEqual({ agents: 0, sessions: 0, messages: 0, feedback: 0 })
      expect((yield* counts(bystander.id))[0]).toEqual({ agents: 0, sessions: 1, messages: 1, feedback: 1 })
    }))
})
