import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { at, call, createUser, expectCatalogError } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const configFile = (json: unknown) => {
  const path = join(mkdtempSync(join(tmpdir(), "parley-cfg-")), "parley.json")
  writeFileSync(path, JSON.stringify(json))
  return path
}

const fastRetries = {
  providers: {
    openai: { max_attempts: 3, backoff_base_ms: 20, backoff_max_ms: 50, circuit_min_calls: 100, circuit_window: 100 },
    anthropic: { max_attempts: 3, backoff_base_ms: 20, backoff_max_ms: 50 }
  },
  routes: { smart: { targets: [{ model: "openai/sim-a", max_attempts: 1 }, { model: "anthropic/sim-b" }] } },
  aliases: { fast: "openai/gpt-4o-mini" }
}

const env = (file: string, extra: Record<string, string> = {}) => (url: string) => ({
  OPENAI_API_KEYS: "sk-sim-1,sk-sim-2",
  OPENAI_BASE_URL: `${url}/v1`,
  ANTHROPIC_API_KEY: "sk-ant-sim-1",
  ANTHROPIC_BASE_URL: url,
  PARLEY_DEFAULT_PROVIDER: "openai",
  PARLEY_CONFIG: file,
  ...extra
})

const body = (content = "hello there", extra: Record<string, unknown> = {}) => ({
  model: "openai/gpt-4o-mini",
  messages: [{ role: "user", content }],
  ...extra
})

const user = Effect.flatMap(TestServer.TestServer, (s) => createUser(s))

layer(TestServer.withSimulator(env(configFile(fastRetries))), { timeout: 60_000, excludeTestServices: true })(
  "POST /v1/chat/completions against the simulator",
  (it) => {
    it.effect("non-streaming success in the OpenAI shape, usage counted", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        const u = yield* user
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body("what is two plus two") })
        expect(res.status).toBe(200)
        expect(at(res.json, "object")).toBe("chat.completion")
        expect(at(res.json, "choices", 0, "message", "content")).toBe("Echo: what is two plus two")
        expect(at(res.json, "choices", 0, "finish_reason")).toBe("stop")
        expect(at(res.json, "usage", "total_tokens")).toBeGreaterThan(0)
        expect(res.headers.get("x-parley-provider")).toBe("openai")
        expect(sim.requests.length).toBe(1)
        const me = yield* call("GET", "/v1/me", { token: u.key })
        expect(at(me.json, "usage", "requests")).toBe(1)
        expect(at(me.json, "usage", "output_tokens")).toBeGreaterThan(0)
      }))

    it.effect("503, 503, 200 → success after 3 attempts", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        sim.script({ kind: "status", status: 503 }, { kind: "status", status: 503 })
        const u = yield* user
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })
        expect(res.status).toBe(200)
        expect(sim.requests.length).toBe(3)
      }))

    it.effect("400 upstream → one attempt, 400 ERR_UPSTREAM_BAD_REQUEST", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        sim.script({ kind: "status", status: 400, body: { error: { message: "context too long", type: "invalid_request_error" } } })
        const u = yield* user
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })
        expectCatalogError(res, 400, "ERR_UPSTREAM_BAD_REQUEST")
        expect(String(at(res.json, "error", "message"))).toContain("context too long")
        expect(sim.requests.length).toBe(1)
      }))

    it.effect("a route falls back to its second target when the first is down", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        sim.scriptFor("sim-a", { kind: "status", status: 503 })
        const u = yield* user
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: { ...body(), model: "smart" } })
        expect(res.status).toBe(200)
        expect(res.headers.get("x-parley-provider")).toBe("anthropic")
        expect(sim.requests.map((r) => `${r.api}:${r.model}`)).toEqual(["openai:sim-a", "anthropic:sim-b"])
      }))

    it.effect("unknown provider model → 404 ERR_MODEL_NOT_FOUND from upstream; alias resolves", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        const u = yield* user
        const viaAlias = yield* call("POST", "/v1/chat/completions", { token: u.key, body: { ...body(), model: "fast" } })
        expect(viaAlias.status).toBe(200)
        expect(sim.requests[0]?.model).toBe("gpt-4o-mini")
        sim.script({ kind: "status", status: 404, body: { error: { message: "no such model", type: "not_found_error" } } })
        const missing = yield* call("POST", "/v1/chat/completions", { token: u.key, body: { ...body(), model: "nope" } })
        expectCatalogError(missing, 404, "ERR_MODEL_NOT_FOUND")
      }))

    it.effect("a hang → 504 ERR_PROVIDER_TIMEOUT within x-parley-timeout-ms; the upstream request is aborted", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        sim.setDefault({ kind: "hang" })
        const u = yield* user
        const started = Date.now()
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body(), headers: { "x-parley-timeout-ms": "600" } })
        const took = Date.now() - started
        sim.setDefault({ kind: "ok" })
        expectCatalogError(res, 504, "ERR_PROVIDER_TIMEOUT")
        expect(took).toBeGreaterThanOrEqual(550)
        expect(took).toBeLessThan(3_000)
        yield* Effect.promise(() => sim.waitFor((rs) => rs.length > 0 && rs.every((r) => r.aborted), 2_000))
      }))

    it.effect("429 with Retry-After: 1 → the next attempt no sooner than 1 s later", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        sim.script({ kind: "status", status: 429, headers: { "retry-after": "1" } })
        const u = yield* user
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })
        expect(res.status).toBe(200)
        expect(sim.requests.length).toBe(2)
        const gap = (sim.requests[1]?.receivedAt ?? 0) - (sim.requests[0]?.receivedAt ?? 0)
        expect(gap).toBeGreaterThanOrEqual(1_000)
      }))

    it.effect("a stream cut after 3 chunks ends with an error chunk, then [DONE]", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        sim.script({ kind: "ok", content: "one two three four five six" }, { kind: "cut", afterChunks: 3 })
        const u = yield* user
        // first request warms up; the second is cut
        yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body("a b c d e f g", { stream: true }) })
        expect(res.status).toBe(200)
        expect(res.headers.get("content-type")).toContain("text/event-stream")
        const events = res.text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6))
        expect(events[events.length - 1]).toBe("[DONE]")
        const error = JSON.parse(events[events.length - 2] ?? "{}")
        expect(at(error, "error", "code")).toBe("ERR_STREAM_INTERRUPTED")
        expect(String(at(error, "error", "error_id"))).toMatch(/^err_/)
        const contents = events.slice(0, -2).map((e) => at(JSON.parse(e), "choices", 0, "delta", "content")).filter((c) => typeof c === "string" && c !== "")
        expect(contents.length).toBe(3)
        expect(sim.requests.length).toBe(2)
      }))

    it.effect("a stream that outlives x-parley-timeout-ms ends with ERR_PROVIDER_TIMEOUT, then [DONE]; the upstream request is aborted", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        // Six words 250 ms apart: the first arrives at once, the reply would need ~1.5 s.
        sim.script({ kind: "ok", content: "one two three four five six", chunkDelayMs: 250 })
        const u = yield* user
        const started = Date.now()
        const res = yield* call("POST", "/v1/chat/completions", {
          token: u.key,
          body: body("slow", { stream: true }),
          headers: { "x-parley-timeout-ms": "700" }
        })
        const took = Date.now() - started
        expect(res.status).toBe(200)
        const events = res.text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6))
        expect(events[events.length - 1]).toBe("[DONE]")
        const error = JSON.parse(events[events.length - 2] ?? "{}")
        expect(at(error, "error", "code")).toBe("ERR_PROVIDER_TIMEOUT")
        expect(String(at(error, "error", "message"))).toContain("700 ms")
        const contents = events.slice(0, -2).map((e) => at(JSON.parse(e), "choices", 0, "delta", "content")).filter((c) => typeof c === "string" && c !== "")
        expect(contents.length).toBeGreaterThan(0)
        expect(contents.length).toBeLessThan(6)
        expect(took).toBeGreaterThanOrEqual(650)
        expect(took).toBeLessThan(1_400)
        yield* Effect.promise(() => sim.waitFor((rs) => rs.length === 1 && rs.every((r) => r.aborted), 2_000))
      }))

    it.effect("the official openai SDK: non-streaming and streaming, and its typed errors", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const sim = yield* TestServer.Sim
        sim.reset()
        const u = yield* user
        const client = new OpenAI({ apiKey: u.key, baseURL: `${server.url}/v1`, maxRetries: 0 })
        const completion = yield* Effect.promise(() =>
          client.chat.completions.create({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "sdk hello" }] }))
        expect(completion.choices[0]?.message.content).toBe("Echo: sdk hello")
        const stream = yield* Effect.promise(() =>
          client.chat.completions.create({
            model: "anthropic/claude-sim",
            messages: [{ role: "system", content: "be brief" }, { role: "user", content: "stream me please" }],
            stream: true,
            stream_options: { include_usage: true }
          }))
        const parts: Array<string> = []
        let usage: number | undefined
        yield* Effect.promise(async () => {
          for await (const chunk of stream) {
            const d = chunk.choices[0]?.delta.content
            if (typeof d === "string") parts.push(d)
            if (chunk.usage) usage = chunk.usage.total_tokens
          }
        })
        expect(parts.join("")).toBe("Echo: stream me please")
        expect(usage).toBeGreaterThan(0)
        expect(sim.requests.at(-1)?.api).toBe("anthropic")
        // typed errors
        const bad = new OpenAI({ apiKey: "pk_not_a_key", baseURL: `${server.url}/v1`, maxRetries: 0 })
        const authError = yield* Effect.promise(() => bad.models.list().then(() => null, (e: unknown) => e))
        expect(authError).toBeInstanceOf(OpenAI.AuthenticationError)
        sim.script({ kind: "status", status: 400 })
        const badRequest = yield* Effect.promise(() =>
          client.chat.completions.create({ model: "openai/x", messages: [{ role: "user", content: "hi" }] }).then(() => null, (e: unknown) => e))
        expect(badRequest).toBeInstanceOf(OpenAI.BadRequestError)
        expect(at(badRequest, "status")).toBe(400)
        expect(at(badRequest, "code")).toBe("ERR_UPSTREAM_BAD_REQUEST")
        // last: every key ends up cooling down after its 429
        sim.setDefault({ kind: "status", status: 429 })
        const limited = yield* Effect.promise(() =>
          client.chat.completions.create({ model: "openai/x", messages: [{ role: "user", content: "hi" }] }).then(() => null, (e: unknown) => e))
        sim.setDefault({ kind: "ok" })
        expect(limited).toBeInstanceOf(OpenAI.RateLimitError)
        yield* Effect.sleep("1100 millis")
      }))

    it.effect("a client that disconnects mid-stream aborts the upstream request", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const sim = yield* TestServer.Sim
        sim.reset()
        sim.script({ kind: "ok", content: "w ".repeat(200), chunkDelayMs: 20 })
        const u = yield* user
        yield* Effect.promise(async () => {
          const controller = new AbortController()
          const res = await fetch(`${server.url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${u.key}`, "content-type": "application/json" },
            body: JSON.stringify(body("x", { stream: true })),
            signal: controller.signal
          })
          const reader = res.body?.getReader()
          await reader?.read()
          await reader?.read()
          controller.abort()
        }).pipe(Effect.ignore)
        yield* Effect.promise(() => sim.waitFor((rs) => rs[0]?.aborted === true, 3_000))
        expect(sim.requests[0]?.completed).toBe(false)
      }))
  }
)

layer(
  TestServer.withSimulator(env(configFile({
    providers: { openai: { max_attempts: 1, circuit_window: 4, circuit_min_calls: 4, circuit_failure_rate: 50, circuit_open_ms: 800, circuit_half_open_calls: 1 } }
  }))),
  { timeout: 60_000, excludeTestServices: true }
)("the circuit breaker over HTTP", (it) => {
  it.effect("repeated failures open the circuit; calls fail fast without reaching upstream; a probe closes it", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      const u = yield* user
      sim.setDefault({ kind: "status", status: 500 })
      for (let i = 0; i < 4; i++) {
        expectCatalogError(yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() }), 503, "ERR_PROVIDER_UNAVAILABLE")
      }
      expect(sim.requests.length).toBe(4)
      const fast = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })
      expectCatalogError(fast, 503, "ERR_PROVIDER_UNAVAILABLE")
      expect(fast.headers.get("retry-after")).not.toBeNull()
      expect(sim.requests.length).toBe(4)
      const status = yield* Effect.flatMap(TestServer.TestServer, (s) => call("GET", "/v1/admin/status", { token: s.adminToken }))
      expect(JSON.stringify(status.json)).toContain("OPEN")
      sim.setDefault({ kind: "ok" })
      yield* Effect.sleep("900 millis")
      const probe = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })
      expect(probe.status).toBe(200)
      expect(sim.requests.length).toBe(5)
      expect((yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })).status).toBe(200)
    }))
})

layer(TestServer.withSimulator(env(configFile(fastRetries))), { timeout: 60_000, excludeTestServices: true })(
  "refused credentials (keys leave rotation for good, so on a server of their own)",
  (it) => {
  it.effect("upstream 401 → one attempt per key, then 502 ERR_PROVIDER_REJECTED", () =>
      Effect.gen(function*() {
        const sim = yield* TestServer.Sim
        sim.reset()
        sim.rejectKeys("sk-sim-1", "sk-sim-2")
        const u = yield* user
        const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })
        expectCatalogError(res, 502, "ERR_PROVIDER_REJECTED")
        expect(sim.requests.map((r) => r.apiKey).sort()).toEqual(["sk-sim-1", "sk-sim-2"])

        // Out of rotation for good: even once the upstream accepts them again, no call is made…
        sim.reset()
        expectCatalogError(yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() }), 502, "ERR_PROVIDER_REJECTED")
        expect(sim.requests.length).toBe(0)
        // …until an operator reinstates one (admin only; unknown keys are 404).
        const server = yield* TestServer.TestServer
        const path = "/v1/admin/providers/openai/keys/2/reinstate"
        expectCatalogError(yield* call("POST", path, { token: u.key }), 403, "ERR_FORBIDDEN")
        expectCatalogError(yield* call("POST", "/v1/admin/providers/openai/keys/3/reinstate", { token: server.adminToken }), 404, "ERR_NOT_FOUND")
        expectCatalogError(yield* call("POST", "/v1/admin/providers/anthropic/keys/9/reinstate", { token: server.adminToken }), 404, "ERR_NOT_FOUND")
        expectCatalogError(yield* call("POST", "/v1/admin/providers/nope/keys/1/reinstate", { token: server.adminToken }), 422, "ERR_VALIDATION")
        const reinstated = yield* call("POST", path, { token: server.adminToken })
        expect(reinstated.status, reinstated.text).toBe(200)
        expect(at(reinstated.json, "keys")).toEqual([
          expect.objectContaining({ id: "openai#1", state: "rejected" }),
          { id: "openai#2", state: "active" }
        ])
        const again = yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() })
        expect(again.status, again.text).toBe(200)
        expect(sim.requests.at(-1)?.apiKey).toBe("sk-sim-2")
      }))

  }
)

describe("no provider configured", () => {
  layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("", (it) => {
    it.effect("503 ERR_PROVIDER_NOT_CONFIGURED, never a made-up reply", () =>
      Effect.gen(function*() {
        const u = yield* user
        expectCatalogError(yield* call("POST", "/v1/chat/completions", { token: u.key, body: body() }), 503, "ERR_PROVIDER_NOT_CONFIGURED")
      }))
  })
})
