import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { Redis as IoRedis } from "ioredis"
import { cacheCorruptions, cacheKey, ResponseCache } from "../../src/Cache/ResponseCache.js"
import { Lru } from "../../src/Cache/Lru.js"
import { at, call, createUser } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const redisUrl = process.env["TEST_REDIS_URL"]

const env = (extra: Record<string, string>) => (url: string) => ({
  OPENAI_API_KEY: "sk-sim-1",
  OPENAI_BASE_URL: `${url}/v1`,
  PARLEY_RATE_LIMIT_PER_MINUTE: "0",
  ...extra
})

const request = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "openai/gpt-4o-mini",
  temperature: 0,
  messages: [{ role: "user", content }],
  ...extra
})

const corruptions = Metric.value(cacheCorruptions).pipe(Effect.map((s) => s.count))

const suite = (name: string, extra: Record<string, string>) =>
  layer(TestServer.withSimulator(env(extra)), { timeout: 60_000, excludeTestServices: true })(name, (it) => {
    it.effect("a deterministic request is answered from the cache the second time, and still counted", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const sim = yield* TestServer.Sim
        sim.reset()
        const u = yield* createUser(server)
        const content = `cache me ${Math.random()}`
        const first = yield* call("POST", "/v1/chat/completions", { token: u.key, body: request(content) })
        const second = yield* call("POST", "/v1/chat/completions", { token: u.key, body: request(content) })
        const streamed = yield* call("POST", "/v1/chat/completions", { token: u.key, body: request(content, { stream: true }) })
        expect(first.headers.get("x-parley-cache")).toBe("miss")
        expect(second.headers.get("x-parley-cache")).toBe("hit")
        expect(at(second.json, "choices", 0, "message", "content")).toBe(at(first.json, "choices", 0, "message", "content"))
        expect(streamed.headers.get("x-parley-cache")).toBe("hit")
        expect(streamed.text).toContain(`Echo: ${content}`)
        expect(streamed.text.trim().endsWith("data: [DONE]")).toBe(true)
        expect(sim.requests.length).toBe(1)
        const me = yield* call("GET", "/v1/me", { token: u.key })
        expect(at(me.json, "usage", "requests")).toBe(3)
        // not deterministic: never cached
        const warm = yield* call("POST", "/v1/chat/completions", { token: u.key, body: request(content, { temperature: 0.7 }) })
        expect(warm.headers.get("x-parley-cache")).toBe("off")
        expect(sim.requests.length).toBe(2)
      }))

    it.effect("a corrupt entry is skipped, deleted and counted — never served, never a 500", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const sim = yield* TestServer.Sim
        sim.reset()
        const u = yield* createUser(server)
        const content = `corrupt ${Math.random()}`
        const body = request(content)
        const key = cacheKey(body.model, { ...body, model: undefined })
        if (redisUrl !== undefined && extra["REDIS_URL"] !== undefined) {
          // written directly into Redis, as another (buggy) writer would
          yield* Effect.promise(async () => {
            const r = new IoRedis(redisUrl)
            await r.set(`parley:cache:${key}`, "{not json", "PX", 60_000)
            await r.quit()
          })
        } else {
          yield* server.run(Effect.flatMap(ResponseCache, (c) => c.rawSet(key, "{\"v\":1,\"content\":42}")))
        }
        const before = yield* corruptions
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body })
        expect(res.status).toBe(200)
        expect(res.headers.get("x-parley-cache")).toBe("miss")
        expect(at(res.json, "choices", 0, "message", "content")).toBe(`Echo: ${content}`)
        expect((yield* corruptions) - before).toBe(1)
        expect(sim.requests.length).toBe(1)
        // the bad entry was replaced by the good reply
        const again = yield* call("POST", "/v1/chat/completions", { token: u.key, body })
        expect(again.headers.get("x-parley-cache")).toBe("hit")
      }))
  })

suite("response cache in memory", {})
if (redisUrl !== undefined) suite("response cache in Redis", { REDIS_URL: redisUrl })

describe("LRU", () => {
  it.effect("bounded, least recently used out first, entries expire", () =>
    Effect.sync(() => {
      const lru = new Lru<number>(2)
      lru.set("a", 1, 1_000)
      lru.set("b", 2, 1_000)
      expect(lru.get("a", 0)).toBe(1)
      lru.set("c", 3, 1_000)
      expect(lru.get("b", 0)).toBeUndefined()
      expect(lru.get("a", 0)).toBe(1)
      expect(lru.get("c", 0)).toBe(3)
      expect(lru.get("c", 1_000)).toBeUndefined()
      expect(lru.size).toBe(1)
    }))
})
