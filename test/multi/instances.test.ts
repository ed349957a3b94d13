/**
 * Three instances on one Postgres and one Redis: quotas, rate limits and the
 * cache hold across them. Runs where the real servers are (TEST_DATABASE_URL
 * and TEST_REDIS_URL, which .ci/run sets when they answer).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { ADMIN_TOKEN } from "../support/TestServer.js"
import { at, expectCatalogError, send, str } from "../support/Http.js"
import { startInstances } from "../support/Instances.js"
import { startSimulator } from "../support/Simulator.js"
import { freshDatabase } from "../support/TestDb.js"

const redisUrl = process.env["TEST_REDIS_URL"]
const enabled = process.env["TEST_DATABASE_URL"] !== undefined && redisUrl !== undefined

const cluster = (extra: Record<string, string>) =>
  Effect.gen(function*() {
    const sim = yield* Effect.acquireRelease(Effect.promise(() => startSimulator({ port: 0 })), (s) => Effect.promise(() => s.close()))
    const db = yield* freshDatabase
    const instances = yield* startInstances(3, {
      DATABASE_URL: Option.getOrThrow(db),
      REDIS_URL: redisUrl ?? "",
      ADMIN_TOKEN,
      OPENAI_API_KEY: "sk-sim-1",
      OPENAI_BASE_URL: `${sim.url}/v1`,
      ...extra
    })
    const user = (limit: number | null) =>
      Effect.gen(function*() {
        const u = yield* send(instances.next(), "POST", "/v1/admin/users", {
          token: ADMIN_TOKEN,
          body: { email: `m${Math.random().toString(36).slice(2)}@example.com`, daily_request_limit: limit }
        })
        const k = yield* send(instances.next(), "POST", `/v1/admin/users/${str(u.json, "id")}/keys`, { token: ADMIN_TOKEN, body: {} })
        return { id: str(u.json, "id"), key: str(k.json, "key") }
      })
    return { sim, instances, user }
  })

const chat = (content: string, temperature = 0.5) => ({
  model: "openai/gpt-4o-mini",
  temperature,
  messages: [{ role: "user", content }]
})

describe.skipIf(!enabled)("three instances, one Postgres, one Redis", () => {
  it.scoped("300 concurrent requests from one user with a daily limit of 100: exactly 100 reach the upstream", () =>
    Effect.gen(function*() {
      const { instances, sim, user } = yield* cluster({ PARLEY_RATE_LIMIT_PER_MINUTE: "0" })
      const u = yield* user(100)
      const replies = yield* Effect.forEach(
        Array.from({ length: 300 }, (_, i) => i),
        (i) => send(instances.next(), "POST", "/v1/chat/completions", { token: u.key, body: chat(`q${i}`) }),
        { concurrency: 300 }
      )
      expect(replies.filter((r) => r.status === 200).length).toBe(100)
      const refused = replies.filter((r) => r.status !== 200)
      expect(refused.length).toBe(200)
      for (const r of refused) expectCatalogError(r, 429, "ERR_QUOTA_EXCEEDED")
      expect(sim.requests.length).toBe(100)
    }), { timeout: 180_000 })

  it.scoped("a key limited to 60 requests a minute gets exactly 60 through across the three", () =>
    Effect.gen(function*() {
      const { instances, sim, user } = yield* cluster({ PARLEY_RATE_LIMIT_PER_MINUTE: "60" })
      const u = yield* user(null)
      const replies = yield* Effect.forEach(
        Array.from({ length: 90 }, (_, i) => i),
        (i) => send(instances.next(), "POST", "/v1/chat/completions", { token: u.key, body: chat(`r${i}`) }),
        { concurrency: 30 }
      )
      expect(replies.filter((r) => r.status === 200).length).toBe(60)
      for (const r of replies.filter((r) => r.status !== 200)) expectCatalogError(r, 429, "ERR_RATE_LIMITED")
      expect(sim.requests.length).toBe(60)
    }), { timeout: 180_000 })

  it.scoped("a cached answer stored via one instance is served by another", () =>
    Effect.gen(function*() {
      const { instances, sim, user } = yield* cluster({ PARLEY_RATE_LIMIT_PER_MINUTE: "0" })
      const u = yield* user(null)
      const [a, b, c] = instances.urls
      const body = chat(`shared cache ${Math.random()}`, 0)
      const first = yield* send(a ?? "", "POST", "/v1/chat/completions", { token: u.key, body })
      const second = yield* send(b ?? "", "POST", "/v1/chat/completions", { token: u.key, body })
      const third = yield* send(c ?? "", "POST", "/v1/chat/completions", { token: u.key, body })
      expect(first.headers.get("x-parley-cache")).toBe("miss")
      expect(second.headers.get("x-parley-cache")).toBe("hit")
      expect(third.headers.get("x-parley-cache")).toBe("hit")
      expect(at(third.json, "choices", 0, "message", "content")).toBe(at(first.json, "choices", 0, "message", "content"))
      expect(sim.requests.length).toBe(1)
    }), { timeout: 180_000 })
})
