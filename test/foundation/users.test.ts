import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { at, call, createUser, expectCatalogError, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("users and keys over HTTP", (it) => {
  it.effect("health and ready answer without auth", () =>
    Effect.gen(function*() {
      const health = yield* call("GET", "/health")
      expect(health.status).toBe(200)
      expect(health.json).toEqual({ status: "ok" })
      const ready = yield* call("GET", "/ready")
      expect(ready.status).toBe(200)
      expect(at(ready.json, "checks", "database", "status")).toBe("ok")
      expect(ready.headers.get("x-request-id")).toMatch(/^req_/)
    }))

  it.effect("admin creates a user, issues a key; the key reaches /v1/me", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server, { daily_request_limit: 50 })
      expect(u.key).toMatch(/^pk_/)
      const me = yield* call("GET", "/v1/me", { token: u.key })
      expect(me.status).toBe(200)
      expect(at(me.json, "id")).toBe(u.id)
      expect(at(me.json, "daily_request_limit")).toBe(50)
      expect(at(me.json, "daily_token_limit")).toBe(null)
      expect(at(me.json, "usage", "requests")).toBe(0)
      expect(String(at(me.json, "usage", "resets_at"))).toMatch(/T00:00:00(\.000)?Z$/)
      // the key is stored only as a hash
      const rows = yield* server.sql<{ keyHash: string }>`SELECT key_hash FROM api_keys WHERE user_id = ${u.id}`
      expect(rows[0]?.keyHash).toMatch(/^[0-9a-f]{64}$/)
      expect(rows[0]?.keyHash).not.toContain(u.key)
    }))

  it.effect("a duplicate email is 409 ERR_ALREADY_EXISTS", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const again = yield* call("POST", "/v1/admin/users", { token: server.adminToken, body: { email: u.email.toUpperCase() } })
      expectCatalogError(again, 409, "ERR_ALREADY_EXISTS")
    }))

  it.effect("a revoked key is 401; its owner can revoke, another user cannot see it", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const a = yield* createUser(server)
      const b = yield* createUser(server)
      const byOther = yield* call("DELETE", `/v1/keys/${a.keyId}`, { token: b.key })
      expectCatalogError(byOther, 404, "ERR_NOT_FOUND")
      const revoked = yield* call("DELETE", `/v1/keys/${a.keyId}`, { token: a.key })
      expect(revoked.status).toBe(204)
      expectCatalogError(yield* call("GET", "/v1/me", { token: a.key }), 401, "ERR_UNAUTHENTICATED")
      // the admin can revoke any key
      expect((yield* call("DELETE", `/v1/keys/${b.keyId}`, { token: server.adminToken })).status).toBe(204)
      expectCatalogError(yield* call("GET", "/v1/me", { token: b.key }), 401, "ERR_UNAUTHENTICATED")
    }))

  it.effect("users are 403 on admin routes; the admin is 403 on user routes", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      expectCatalogError(yield* call("POST", "/v1/admin/users", { token: u.key, body: { email: "x@y.zz" } }), 403, "ERR_FORBIDDEN")
      expectCatalogError(yield* call("GET", "/v1/me", { token: server.adminToken }), 403, "ERR_FORBIDDEN")
    }))

  it.effect("deleting a user removes the user and their keys", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const del = yield* call("DELETE", `/v1/admin/users/${u.id}`, { token: server.adminToken })
      expect(del.status).toBe(204)
      const keys = yield* server.sql`SELECT 1 FROM api_keys WHERE user_id = ${u.id}`
      expect(keys.length).toBe(0)
      expectCatalogError(yield* call("DELETE", `/v1/admin/users/${u.id}`, { token: server.adminToken }), 404, "ERR_NOT_FOUND")
      expectCatalogError(yield* call("GET", "/v1/me", { token: u.key }), 401, "ERR_UNAUTHENTICATED")
    }))

  it.effect("a deletion that fails half-way leaves every row in place", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      yield* server.sql`INSERT INTO usage_daily (user_id, day, requests) VALUES (${u.id}, current_date, 3)`
      // Injected failure: the last delete of the unit of work raises.
      yield* server.sql.unsafe(`
        CREATE OR REPLACE FUNCTION parley_test_fail() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql`)
      yield* server.sql.unsafe(`CREATE TRIGGER parley_test_fail_usage BEFORE DELETE ON usage_daily FOR EACH ROW EXECUTE FUNCTION parley_test_fail()`)
      const del = yield* call("DELETE", `/v1/admin/users/${u.id}`, { token: server.adminToken })
      yield* server.sql.unsafe(`DROP TRIGGER parley_test_fail_usage ON usage_daily`)
      expectCatalogError(del, 500, "ERR_INTERNAL")
      expect(str(del.json, "error", "message")).toBe("Internal error.")
      const users = yield* server.sql`SELECT 1 FROM users WHERE id = ${u.id}`
      const keys = yield* server.sql`SELECT 1 FROM api_keys WHERE user_id = ${u.id}`
      const usage = yield* server.sql`SELECT 1 FROM usage_daily WHERE user_id = ${u.id}`
      expect([users.length, keys.length, usage.length]).toEqual([1, 1, 1])
      // and the key still works
      expect((yield* call("GET", "/v1/me", { token: u.key })).status).toBe(200)
    }))
})

