/**
 * Strict input on every data-plane route: a malformed id, header, type,
 * size or key is a 422 (the catalog body, naming the field) before any
 * handler runs, and writes nothing.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { at, call, createUser, expectCatalogError } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"
import { createAgent, createSession } from "./fixtures.js"

const keysOf = (u: unknown): Array<string> => typeof u === "object" && u !== null ? Object.keys(u) : []

const badIds = ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%27%20OR%201%3D1--"]

layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("data-plane input validation", (it) => {
  it.effect("a bad UUID in any path is 422 with param `id`", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      for (const bad of badIds) {
        const routes: Array<[string, string, unknown]> = [
          ["GET", `/v1/sessions/${bad}`, undefined],
          ["PATCH", `/v1/sessions/${bad}`, {}],
          ["DELETE", `/v1/sessions/${bad}`, undefined],
          ["GET", `/v1/sessions/${bad}/messages`, undefined],
          ["POST", `/v1/messages/${bad}/feedback`, { rating: "up" }],
          ["GET", `/v1/agents/${bad}`, undefined],
          ["PATCH", `/v1/agents/${bad}`, {}],
          ["DELETE", `/v1/agents/${bad}`, undefined]
        ]
        for (const [method, path, body] of routes) {
          const reply = yield* call(method, path, { token: u.key, body })
          expectCatalogError(reply, 422, "ERR_VALIDATION")
          expect(at(reply.json, "error", "param"), `${method} ${path}`).toBe("id")
        }
      }
    }))

  it.effect("session bodies: wrong types, oversized values, unknown keys and unstorable text are 422; nothing is written", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const manyKeys = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]))
      let deep: unknown = "leaf"
      for (let i = 0; i < 40; i++) deep = { d: deep }
      const cases: Array<[unknown, string | null]> = [
        [{ title: 42 }, "title"],
        [{ title: ["a"] }, "title"],
        [{ title: "t".repeat(201) }, "title"],
        [{ title: "nul\u0000" }, "title"],
        [{ title: "lone \ud800 surrogate" }, "title"],
        [{ agent_id: "nope" }, "agent_id"],
        [{ agent_id: 7 }, "agent_id"],
        [{ metadata: "str" }, "metadata"],
        [{ metadata: [1, 2] }, "metadata"],
        [{ metadata: null }, "metadata"],
        [{ metadata: manyKeys }, "metadata"],
        [{ metadata: { big: "x".repeat(16 * 1024) } }, "metadata"],
        [{ metadata: { deep } }, "metadata"],
        [{ metadata: { bad: "\u0000" } }, "metadata"],
        [JSON.parse("{\"metadata\": {\"__proto__\": {\"polluted\": true}}}"), "metadata.__proto__"],
        [{ created_at: "2024-13-45T99:00:00Z" }, "created_at"],
        [{ updated_at: "yesterday" }, "updated_at"],
        [{ version: 7 }, "version"],
        ["a string", null],
        [[], null],
        [null, null]
      ]
      for (const [body, param] of cases) {
        const reply = yield* call("POST", "/v1/sessions", { token: u.key, body })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        if (param !== null) expect(at(reply.json, "error", "param"), JSON.stringify(body).slice(0, 80)).toBe(param)
      }
      const rows = yield* server.sql`SELECT 1 FROM sessions WHERE user_id = ${u.id}`
      expect(rows.length).toBe(0)

      // the same rules on PATCH, and the session is unchanged
      const id = yield* createSession(server, u.key, { title: "keep" })
      for (const [body] of cases) {
        expectCatalogError(yield* call("PATCH", `/v1/sessions/${id}`, { token: u.key, body }), 422, "ERR_VALIDATION")
      }
      const [row] = yield* server.sql<{ title: string; version: number }>`SELECT title, version FROM sessions WHERE id = ${id}`
      expect(row).toEqual({ title: "keep", version: 1 })

      // the limits themselves are fine
      const edge = yield* call("POST", "/v1/sessions", {
        token: u.key,
        body: { title: "t".repeat(200), metadata: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, "ü😀"])) }
      })
      expect(edge.status).toBe(201)
    }))

  it.effect("agent bodies: wrong types, oversized values and unknown keys are 422; nothing is written", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const cases: Array<[unknown, string | null]> = [
        [{ name: 1 }, "name"],
        [{ name: "ok", system_prompt: 5 }, "system_prompt"],
        [{ name: "ok", system_prompt: "p".repeat(100_001) }, "system_prompt"],
        [{ name: "ok", model: 3 }, "model"],
        [{ name: "ok", model: "m".repeat(201) }, "model"],
        [{ name: "ok", memory_enabled: "yes" }, "memory_enabled"],
        [{ name: "ok", parameters: [] }, "parameters"],
        [{ name: "ok", parameters: null }, "parameters"],
        [{ name: "ok", created_at: "2024-01-01T00:00:00Z" }, "created_at"],
        [{ name: "nul\u0000" }, "name"]
      ]
      for (const [body, param] of cases) {
        const reply = yield* call("POST", "/v1/agents", { token: u.key, body })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        if (param !== null) expect(at(reply.json, "error", "param"), JSON.stringify(body).slice(0, 80)).toBe(param)
      }
      expect((yield* server.sql`SELECT 1 FROM agents WHERE user_id = ${u.id}`).length).toBe(0)
      const id = yield* createAgent(server, u.key, { name: "keep" })
      for (const [body] of [...cases, [{ name: null }], [{ system_prompt: null }]]) {
        expectCatalogError(yield* call("PATCH", `/v1/agents/${id}`, { token: u.key, body }), 422, "ERR_VALIDATION")
      }
      const [row] = yield* server.sql<{ name: string }>`SELECT name FROM agents WHERE id = ${id}`
      expect(row?.name).toBe("keep")
    }))

  it.effect("the OpenAPI document lists the data-plane routes", () =>
    Effect.gen(function*() {
      const doc = yield* call("GET", "/openapi.json")
      expect(doc.status).toBe(200)
      const paths = keysOf(at(doc.json, "paths"))
      expect(paths).toEqual(expect.arrayContaining([
        "/v1/sessions",
        "/v1/sessions/{id}",
        "/v1/sessions/{id}/messages",
        "/v1/messages/{id}/feedback",
        "/v1/agents",
        "/v1/agents/{id}"
      ]))
      expect(keysOf(at(doc.json, "paths", "/v1/messages/{id}/feedback", "post", "responses")))
        .toEqual(expect.arrayContaining(["200", "201", "404", "422"]))
    }))
})
