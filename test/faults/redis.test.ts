/**
 * Fault: Redis stops and restarts (only with TEST_REDIS_URL). Parley reaches
 * Redis through a TCP proxy. While it is cut, rate-limited endpoints answer
 * 503 ERR_REDIS_UNAVAILABLE — not a 500 and not a silent bypass: the
 * upstream sees no request and no quota is counted. Restored, they answer
 * 200 again by themselves. Endpoints that do not need Redis keep working.
 */
import { afterAll, describe, expect, layer, vi } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { at, call, createUser, expectCatalogError, type Reply, type RequestOptions, str } from "../support/Http.js"
import { type TcpProxy, TcpProxyResource, targetOf, viaProxy } from "../support/TcpProxy.js"
import * as TestServer from "../support/TestServer.js"

const redisUrl = process.env["TEST_REDIS_URL"]?.trim() || undefined

class Proxy extends Context.Tag("test/RedisProxy")<Proxy, TcpProxy>() {}

const serverBehindProxy = (url: string) =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const proxy = yield* TcpProxyResource(targetOf(url, 6379))
    const env = (simUrl: string) => ({
      OPENAI_API_KEY: "sk-sim-1",
      OPENAI_BASE_URL: `${simUrl}/v1`,
      PARLEY_DEFAULT_PROVIDER: "openai",
      PARLEY_DEFAULT_MODEL: "gpt-4o-mini",
      REDIS_URL: viaProxy(url, proxy),
      PARLEY_RATE_LIMIT_PER_MINUTE: "1000"
    })
    return Layer.merge(TestServer.withSimulator(env), Layer.succeed(Proxy, proxy))
  }))

const figures = { requests: 0, serverErrors: 0, bypasses: 0, cuts: 0, recoveryMs: 0 }
afterAll(() => {
  console.log(
    `[faults/redis] requests sent: ${figures.requests}, faults injected: ${figures.cuts} cut(s), ` +
      `500s seen: ${figures.serverErrors}, bypasses (upstream calls while cut): ${figures.bypasses}, recovered ${figures.recoveryMs} ms after restore`
  )
})

const request = (method: string, path: string, options: RequestOptions = {}) =>
  Effect.map(call(method, path, options), (reply): Reply => {
    figures.requests++
    if (reply.status >= 500 && at(reply.json, "error", "code") !== "ERR_REDIS_UNAVAILABLE") figures.serverErrors++
    return reply
  })

const completion = (token: string, n: number, extra: Record<string, unknown> = {}) =>
  request("POST", "/v1/chat/completions", {
    token,
    body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `question ${n}` }], ...extra }
  })

describe.skipIf(redisUrl === undefined)("faults: Redis stops and restarts", () => {
  layer(serverBehindProxy(redisUrl ?? "redis://127.0.0.1:6379"), { timeout: 60_000, excludeTestServices: true })("Redis behind a proxy", (it) => {
    it.scoped("503 ERR_REDIS_UNAVAILABLE while cut, with no upstream call and nothing counted; 200 again after", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const sim = yield* TestServer.Sim
        const proxy = yield* Proxy
        const u = yield* createUser(server)
        const session = str((yield* request("POST", "/v1/sessions", { token: u.key, body: {} })).json, "id")
        expect((yield* completion(u.key, 0)).status).toBe(200)
        const messagesBefore = yield* server.sql<{ n: number }>`SELECT count(*)::int AS n FROM messages WHERE session_id = ${session}`.pipe(Effect.orDie)

        // ioredis prints "[ioredis] Unhandled error event" with console.error when a client
        // of its has no error listener: every Redis client of Parley's must have one.
        const printed: Array<string> = []
        const spy = vi.spyOn(console, "error").mockImplementation((...args: Array<unknown>) => {
          printed.push(args.map(String).join(" "))
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => spy.mockRestore()))
        proxy.cut()
        figures.cuts++
        const upstreamAtCut = sim.requests.length
        const failures: Array<string> = []
        const cutReplies: Array<readonly [string, Reply]> = []
        for (let n = 1; n <= 12; n++) {
          cutReplies.push(["non-streaming", yield* completion(u.key, n)])
          cutReplies.push(["streaming", yield* completion(u.key, n, { stream: true })])
          cutReplies.push(["cacheable", yield* completion(u.key, n, { temperature: 0 })])
          cutReplies.push(["session turn", yield* request("POST", `/v1/sessions/${session}/messages`, { token: u.key, body: { content: `turn ${n}` } })])
        }
        for (const [what, reply] of cutReplies) {
          try {
            expectCatalogError(reply, 503, "ERR_REDIS_UNAVAILABLE")
          } catch (e) {
            failures.push(`${what}: ${e instanceof Error ? e.message : String(e)}`)
          }
        }
        figures.bypasses += sim.requests.length - upstreamAtCut
        expect(failures, failures.join("\n")).toEqual([])
        expect(sim.requests.length, "no upstream call while Redis is cut").toBe(upstreamAtCut)
        // what needs no Redis still works
        expect((yield* request("GET", "/v1/me", { token: u.key })).status).toBe(200)
        expect((yield* request("GET", `/v1/sessions/${session}/messages`, { token: u.key })).status).toBe(200)
        const ready = yield* request("GET", "/ready")
        console.log(`[faults/redis] /ready while Redis is cut: ${ready.status} ${ready.text.slice(0, 300)}`)

        const restoredAt = Date.now()
        proxy.restore()
        let back: Reply | undefined
        for (let n = 100; Date.now() - restoredAt < 10_000; n++) {
          const reply = yield* completion(u.key, n)
          if (reply.status === 200) {
            back = reply
            break
          }
          expectCatalogError(reply, 503, "ERR_REDIS_UNAVAILABLE")
          yield* Effect.sleep("100 millis")
        }
        figures.recoveryMs = Date.now() - restoredAt
        expect(back, "200 again within 10 s of the restore").toBeDefined()
        expect(printed.filter((line) => line.includes("Unhandled error event")), "no unhandled Redis client errors").toEqual([])
        expect((yield* completion(u.key, 200, { stream: true })).status).toBe(200)
        expect((yield* request("POST", `/v1/sessions/${session}/messages`, { token: u.key, body: { content: "back" } })).status).toBe(200)

        // refused requests were not counted, and the refused turns stored nothing
        const me = yield* request("GET", "/v1/me", { token: u.key })
        expect(at(me.json, "usage", "requests"), "only dispatched requests are counted").toBe(sim.requests.length)
        const messagesAfter = yield* server.sql<{ n: number }>`SELECT count(*)::int AS n FROM messages WHERE session_id = ${session}`.pipe(Effect.orDie)
        expect(messagesAfter[0]?.n).toBe((messagesBefore[0]?.n ?? 0) + 2)
      }))
  })
})
