import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { HttpServer } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { randomUUID } from "node:crypto"
import type { AppLive } from "../../src/App.js"
import { jsonLine } from "../../src/Observability/Logging.js"
import { call, createUser, expectCatalogError, str } from "../support/Http.js"
import { freshDatabase } from "../support/TestDb.js"
import * as TestServer from "../support/TestServer.js"

/** The JSON lines the server would write, captured. */
const lines: Array<Record<string, unknown>> = []
const capture = Logger.make((options) => {
  lines.push(jsonLine(options))
})

/** A test server whose log lines (info and up) land in `lines`. */
const LoggedServer = Layer.scoped(
  TestServer.TestServer,
  Effect.gen(function*() {
    const { dataDir, env } = TestServer.makeEnv({}, yield* freshDatabase)
    const app = TestServer.appWithEnv(env, LogLevel.Info).pipe(Layer.provide(Logger.replace(Logger.defaultLogger, capture)))
    const ctx = yield* Layer.build(app)
    const address = Context.get(ctx, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
    return {
      url: `http://127.0.0.1:${address.port}`,
      adminToken: TestServer.ADMIN_TOKEN,
      dataDir,
      sql: Context.get(ctx, SqlClient.SqlClient),
      run: <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<typeof AppLive>>) => Effect.provide(effect, ctx)
    }
  })
)

const linesOf = (requestId: string) => lines.filter((l) => l["request_id"] === requestId)

layer(LoggedServer, { timeout: 60_000, excludeTestServices: true })("log lines", (it) => {
  it.effect("an authenticated request's lines carry request_id, trace_id, user_id and the key prefix", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const requestId = `req-log-${randomUUID()}`
      expect((yield* call("GET", "/v1/me", { token: u.key, headers: { "x-request-id": requestId } })).status).toBe(200)
      const access = linesOf(requestId).find((l) => l["message"] === "request")
      expect(access).toMatchObject({ level: "info", method: "GET", path: "/v1/me", status: 200, user_id: u.id })
      expect(String(access?.["trace_id"])).toMatch(/^[0-9a-f]{32}$/)
      const prefix = String(access?.["key_prefix"])
      expect(prefix.length).toBeGreaterThanOrEqual(4)
      expect(u.key.startsWith(prefix)).toBe(true)
      expect(prefix).not.toBe(u.key)
    }))

  it.effect("an error line carries code and error_id, with the request's ids; anonymous lines have no user", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const requestId = `req-log-${randomUUID()}`
      const missing = yield* call("GET", `/v1/sessions/${randomUUID()}`, { token: u.key, headers: { "x-request-id": requestId } })
      expectCatalogError(missing, 404, "ERR_NOT_FOUND")
      const own = linesOf(requestId)
      const error = own.find((l) => l["code"] === "ERR_NOT_FOUND")
      expect(error).toMatchObject({ error_id: str(missing.json, "error", "error_id"), status: 404, user_id: u.id })
      const access = own.find((l) => l["message"] === "request")
      expect(access?.["trace_id"]).toBe(error?.["trace_id"])
      expect(typeof access?.["trace_id"]).toBe("string")

      const anonymousId = `req-log-${randomUUID()}`
      expectCatalogError(yield* call("GET", "/v1/me", { headers: { "x-request-id": anonymousId } }), 401, "ERR_UNAUTHENTICATED")
      const anonymous = linesOf(anonymousId)
      expect(anonymous.some((l) => l["code"] === "ERR_UNAUTHENTICATED" && typeof l["error_id"] === "string")).toBe(true)
      // A request never inherits an earlier request's user.
      expect(anonymous.length).toBeGreaterThan(0)
      expect(anonymous.every((l) => !("user_id" in l) && !("key_prefix" in l))).toBe(true)
    }))
})
