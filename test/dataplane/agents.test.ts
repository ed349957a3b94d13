import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { at, call, createUser, expectCatalogError, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"
import { createAgent, createSession, pageOf } from "./fixtures.js"

const rfc3339Utc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("agents over HTTP", (it) => {
  it.effect("POST creates an agent with defaults (201); GET returns it; parameters are stored as sent", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const minimal = yield* call("POST", "/v1/agents", { token: u.key, body: { name: "Helper" } })
      expect(minimal.status).toBe(201)
      expect(minimal.json).toMatchObject({
        name: "Helper",
        system_prompt: "",
        model: null,
        parameters: {},
        memory_enabled: false
      })
      expect(str(minimal.json, "created_at")).toMatch(rfc3339Utc)
      expect(str(minimal.json, "updated_at")).toMatch(rfc3339Utc)

      const full = yield* call("POST", "/v1/agents", {
        token: u.key,
        body: {
          name: "Translator",
          system_prompt: "Translate to French.",
          model: "anthropic/claude-sonnet-4-5",
          parameters: { temperature: 0.2, max_tokens: 512, top_p: 1, stop: ["END"] },
          memory_enabled: true
        }
      })
      expect(full.status).toBe(201)
      const id = str(full.json, "id")
      const got = yield* call("GET", `/v1/agents/${id}`, { token: u.key })
      expect(got.status).toBe(200)
      expect(got.json).toEqual(full.json)
      // JSON is stored untransformed, with the wire's snake_case keys, for the chat pipeline to read
      const [row] = yield* server.sql<{ parameters: unknown }>`SELECT parameters FROM agents WHERE id = ${id}`
      expect(row?.parameters).toEqual({ temperature: 0.2, max_tokens: 512, top_p: 1, stop: ["END"] })
    }))

  it.effect("names are unique per user: 409 ERR_ALREADY_EXISTS on create and on rename; other users may reuse them", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const a = yield* createUser(server)
      const b = yield* createUser(server)
      yield* createAgent(server, a.key, { name: "Coder" })
      expectCatalogError(yield* call("POST", "/v1/agents", { token: a.key, body: { name: "Coder" } }), 409, "ERR_ALREADY_EXISTS")
      const other = yield* createAgent(server, a.key, { name: "Writer" })
      expectCatalogError(
        yield* call("PATCH", `/v1/agents/${other}`, { token: a.key, body: { name: "Coder" } }),
        409,
        "ERR_ALREADY_EXISTS"
      )
      expect((yield* call("POST", "/v1/agents", { token: b.key, body: { name: "Coder" } })).status).toBe(201)
      const rows = yield* server.sql`SELECT name FROM agents WHERE user_id = ${a.id} ORDER BY name`
      expect(rows).toEqual([{ name: "Coder" }, { name: "Writer" }])
    }))

  it.effect("PATCH changes only the fields sent; model null clears; parameters are replaced whole", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const id = yield* createAgent(server, u.key, {
        name: "A",
        system_prompt: "p",
        model: "m",
        parameters: { temperature: 1, max_tokens: 10 }
      })
      const p1 = yield* call("PATCH", `/v1/agents/${id}`, { token: u.key, body: { parameters: { top_p: 0.5 } } })
      expect(p1.status).toBe(200)
      expect(p1.json).toMatchObject({ name: "A", system_prompt: "p", model: "m", parameters: { top_p: 0.5 }, memory_enabled: false })
      const p2 = yield* call("PATCH", `/v1/agents/${id}`, { token: u.key, body: { model: null, memory_enabled: true, name: "B" } })
      expect(p2.json).toMatchObject({ name: "B", model: null, memory_enabled: true, parameters: { top_p: 0.5 } })
      expect(Date.parse(str(p2.json, "updated_at"))).toBeGreaterThanOrEqual(Date.parse(str(p1.json, "updated_at")))
      expect(at(p2.json, "created_at")).toBe(at(p1.json, "created_at"))
    }))

  it.effect("parameters are validated: ranges and only known keys (422 naming the field)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ temperature: 2.01 }, "parameters.temperature"],
        [{ temperature: -0.1 }, "parameters.temperature"],
        [{ temperature: "hot" }, "parameters.temperature"],
        [{ max_tokens: 0 }, "parameters.max_tokens"],
        [{ max_tokens: 200_001 }, "parameters.max_tokens"],
        [{ max_tokens: 1.5 }, "parameters.max_tokens"],
        [{ top_p: 1.01 }, "parameters.top_p"],
        [{ stop: ["a", "b", "c", "d", "e"] }, "parameters.stop"],
        [{ seed: 42 }, "parameters.seed"]
      ]
      for (const [parameters, param] of cases) {
        const reply = yield* call("POST", "/v1/agents", { token: u.key, body: { name: "P", parameters } })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        expect(at(reply.json, "error", "param")).toBe(param)
      }
      for (const body of [{}, { name: "" }, { name: "   " }, { name: "x".repeat(101) }, { name: "ok", model: "" }]) {
        expectCatalogError(yield* call("POST", "/v1/agents", { token: u.key, body }), 422, "ERR_VALIDATION")
      }
      const rows = yield* server.sql`SELECT 1 FROM agents WHERE user_id = ${u.id}`
      expect(rows.length).toBe(0)
      // the bounds themselves are valid
      const edge = yield* call("POST", "/v1/agents", {
        token: u.key,
        body: { name: "edge", parameters: { temperature: 2, max_tokens: 200_000, top_p: 0 } }
      })
      expect(edge.status).toBe(201)
    }))

  it.effect("list: newest first, cursor-paginated, only the caller's", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const other = yield* createUser(server)
      yield* createAgent(server, other.key, { name: "not yours" })
      const ids: Array<string> = []
      for (let i = 0; i < 5; i++) ids.push(yield* createAgent(server, u.key, { name: `agent-${i}` }))
      const seen: Array<unknown> = []
      let cursor: string | null = null
      do {
        const q: string = cursor === null ? "?limit=2" : `?limit=2&cursor=${cursor}`
        const page = pageOf(yield* call("GET", `/v1/agents${q}`, { token: u.key }))
        seen.push(...page.data.map((a) => a["id"]))
        cursor = page.next
      } while (cursor !== null)
      expect(seen).toEqual([...ids].reverse())
    }))

  it.effect("DELETE (204) keeps the sessions that used the agent, with agent_id null", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const agent = yield* createAgent(server, u.key)
      const session = yield* createSession(server, u.key, { agent_id: agent, title: "kept" })
      const del = yield* call("DELETE", `/v1/agents/${agent}`, { token: u.key })
      expect(del.status).toBe(204)
      expectCatalogError(yield* call("GET", `/v1/agents/${agent}`, { token: u.key }), 404, "ERR_NOT_FOUND")
      expectCatalogError(yield* call("DELETE", `/v1/agents/${agent}`, { token: u.key }), 404, "ERR_NOT_FOUND")
      const got = yield* call("GET", `/v1/sessions/${session}`, { token: u.key })
      expect([at(got.json, "title"), at(got.json, "agent_id")]).toEqual(["kept", null])
    }))

  it.effect("another user's agent is 404 on every route, with nothing about it in the body", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const owner = yield* createUser(server)
      const other = yield* createUser(server)
      const secret = "secret-prompt-91c2"
      const id = yield* createAgent(server, owner.key, { name: secret, system_prompt: secret })
      const attempts = [
        yield* call("GET", `/v1/agents/${id}`, { token: other.key }),
        yield* call("PATCH", `/v1/agents/${id}`, { token: other.key, body: { name: "mine" } }),
        yield* call("DELETE", `/v1/agents/${id}`, { token: other.key }),
        yield* call("POST", "/v1/sessions", { token: other.key, body: { agent_id: id } })
      ]
      for (const reply of attempts) {
        expectCatalogError(reply, 404, "ERR_NOT_FOUND")
        expect(reply.text).not.toContain(secret)
        expect(reply.text).not.toContain(id)
      }
      expect(pageOf(yield* call("GET", "/v1/agents", { token: other.key })).data).toEqual([])
      const got = yield* call("GET", `/v1/agents/${id}`, { token: owner.key })
      expect(at(got.json, "name")).toBe(secret)
      const sessions = yield* server.sql`SELECT 1 FROM sessions WHERE user_id = ${other.id}`
      expect(sessions.length).toBe(0)
    }))

  it.effect("the admin token is 403 on agent routes", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      expectCatalogError(yield* call("GET", "/v1/agents", { token: server.adminToken }), 403, "ERR_FORBIDDEN")
      expectCatalogError(yield* call("POST", "/v1/agents", { token: server.adminToken, body: { name: "x" } }), 403, "ERR_FORBIDDEN")
    }))
})
