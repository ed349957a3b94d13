import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { call, createUser, expectCatalogError } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const METRICS_TOKEN = "metrics-secret-0123456789"

/** Exposition text → sample value by series (`name{labels}` exactly as written), plus the TYPE of each family. */
const parse = (text: string) => {
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) types.set(type[1] ?? "", type[2] ?? "")
    if (line.startsWith("#")) continue
    const at = line.lastIndexOf(" ")
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return { samples, types }
}

const series = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",")}}`

const scrape = Effect.gen(function*() {
  const res = yield* call("GET", "/metrics", { token: METRICS_TOKEN })
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/)
  return { text: res.text, ...parse(res.text) }
})

const env = (url: string) => ({
  OPENAI_API_KEY: "sk-sim-1",
  OPENAI_BASE_URL: `${url}/v1`,
  PARLEY_DEFAULT_PROVIDER: "openai",
  METRICS_TOKEN,
  PARLEY_DB_HEALTH_INTERVAL_MS: "100"
})

layer(TestServer.withSimulator(env), { timeout: 60_000, excludeTestServices: true })("GET /metrics", (it) => {
  it.effect("METRICS_TOKEN set: no token or a wrong one is 401 with the catalog body", () =>
    Effect.gen(function*() {
      expectCatalogError(yield* call("GET", "/metrics"), 401, "ERR_UNAUTHENTICATED")
      expectCatalogError(yield* call("GET", "/metrics", { token: "wrong" }), 401, "ERR_UNAUTHENTICATED")
      expectCatalogError(yield* call("GET", "/metrics", { token: `${METRICS_TOKEN}x` }), 401, "ERR_UNAUTHENTICATED")
    }))

  it.effect("counts requests by route template and status, errors by code, provider attempts", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* createUser(server)
      const limited = yield* createUser(server, { daily_request_limit: 1 })
      const before = yield* scrape

      for (let i = 0; i < 3; i++) expect((yield* call("GET", "/v1/me", { token: u.key })).status).toBe(200)
      for (let i = 0; i < 2; i++) expectCatalogError(yield* call("GET", `/v1/nothing-here/${randomUUID()}`, { token: u.key }), 404, "ERR_NOT_FOUND")
      // A path parameter is the template, whatever the id.
      for (let i = 0; i < 2; i++) expectCatalogError(yield* call("GET", `/v1/sessions/${randomUUID()}`, { token: u.key }), 404, "ERR_NOT_FOUND")
      expectCatalogError(yield* call("GET", "/metrics"), 401, "ERR_UNAUTHENTICATED")
      const completion = yield* call("POST", "/v1/chat/completions", {
        token: u.key,
        body: { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "count me" }] }
      })
      expect(completion.status).toBe(200)
      // The limits' own counters: a quota refusal and a failed authentication.
      const prompt = { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "once" }] }
      expect((yield* call("POST", "/v1/chat/completions", { token: limited.key, body: prompt })).status).toBe(200)
      expectCatalogError(yield* call("POST", "/v1/chat/completions", { token: limited.key, body: prompt }), 429, "ERR_QUOTA_EXCEEDED")
      expectCatalogError(yield* call("GET", "/v1/me", { token: `pk_${"0".repeat(40)}` }), 401, "ERR_UNAUTHENTICATED")

      const after = yield* scrape
      const delta = (key: string) => (after.samples.get(key) ?? 0) - (before.samples.get(key) ?? 0)
      const requests = (method: string, route: string, status: string) =>
        delta(series("parley_http_requests_total", { method, route, status }))

      expect(requests("GET", "/v1/me", "200")).toBe(3)
      expect(requests("GET", "unmatched", "404")).toBe(2)
      expect(requests("GET", "/v1/sessions/:id", "404")).toBe(2)
      expect(requests("POST", "/v1/chat/completions", "200")).toBe(2)
      expect(requests("POST", "/v1/chat/completions", "429")).toBe(1)
      expect(requests("GET", "/v1/me", "401")).toBe(1)
      // The first scrape is counted once it has answered; the refused one as a 401.
      expect(requests("GET", "/metrics", "200")).toBe(1)
      expect(requests("GET", "/metrics", "401")).toBe(1)
      // No raw path ever becomes a label value.
      expect(after.text).not.toContain("/v1/nothing-here")

      const duration = (suffix: string, extra: Record<string, string> = {}) =>
        delta(series(`parley_http_request_duration_seconds${suffix}`, { method: "GET", route: "/v1/me", status: "200", ...extra }))
      expect(duration("_count")).toBe(3)
      expect(duration("_bucket", { le: "+Inf" })).toBe(3)
      expect(duration("_sum")).toBeGreaterThan(0)

      expect(delta(series("parley_errors_total", { code: "ERR_NOT_FOUND" }))).toBe(4)
      expect(delta(series("parley_errors_total", { code: "ERR_UNAUTHENTICATED" }))).toBe(2)
      expect(delta(series("parley_errors_total", { code: "ERR_QUOTA_EXCEEDED" }))).toBe(1)
      expect(delta("parley_quota_rejections_total")).toBe(1)
      expect(delta("parley_auth_failures_total")).toBe(1)

      // The refused request never reached the provider.
      expect(delta(series("parley_provider_attempts_total", { provider: "openai", outcome: "success" }))).toBe(2)
      expect(delta(series("parley_provider_latency_seconds_count", { provider: "openai" }))).toBe(2)
      expect(after.samples.get(series("parley_circuit_state", { provider: "openai" }))).toBe(0)

      // Families carry their type.
      expect(after.types.get("parley_http_requests_total")).toBe("counter")
      expect(after.types.get("parley_http_request_duration_seconds")).toBe("histogram")
      expect(after.types.get("parley_errors_total")).toBe("counter")
      expect(after.types.get("parley_provider_attempts_total")).toBe("counter")
      expect(after.types.get("parley_circuit_state")).toBe("gauge")
      expect(after.types.get("parley_quota_rejections_total")).toBe("counter")
      expect(after.text).toMatch(/^# HELP parley_http_requests_total \S.*$/m)
    }))

  it.effect("database pool gauges are sampled at scrape; checkouts and probes are timed", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const before = yield* scrape
      for (let i = 0; i < 3; i++) expect((yield* call("GET", "/v1/me", { token: u.key })).status).toBe(200)
      yield* Effect.sleep("300 millis") // a few health probes (every 100 ms here)
      const after = yield* scrape
      const value = (name: string) => after.samples.get(name)

      expect(value("parley_db_pool_max")).toBeGreaterThan(0)
      expect(value("parley_db_pool_size")).toBeGreaterThanOrEqual(1)
      expect(value("parley_db_pool_size")).toBeLessThanOrEqual(value("parley_db_pool_max") ?? 0)
      expect(value("parley_db_pool_idle")).toBeGreaterThanOrEqual(0)
      expect(value("parley_db_pool_waiting")).toBe(0)
      expect(value("parley_db_pool_utilisation")).toBeGreaterThanOrEqual(0)
      expect(value("parley_db_pool_utilisation")).toBeLessThanOrEqual(1)
      expect(value("parley_db_health_status")).toBe(0)
      expect(value("parley_db_health_consecutive_failures")).toBe(0)
      expect(value("parley_db_probe_duration_seconds_count")).toBeGreaterThanOrEqual(1)
      // Each /v1/me checks the key and reads the user: connections were checked out and returned.
      const holds = (value("parley_db_connection_hold_seconds_count") ?? 0) -
        (before.samples.get("parley_db_connection_hold_seconds_count") ?? 0)
      expect(holds).toBeGreaterThanOrEqual(3)
      for (const name of ["parley_db_pool_size", "parley_db_pool_idle", "parley_db_pool_waiting", "parley_db_pool_max"]) {
        expect(after.types.get(name)).toBe("gauge")
      }
      expect(after.types.get("parley_db_connection_hold_seconds")).toBe("histogram")
    }))
})

layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("GET /metrics without METRICS_TOKEN", (it) => {
  it.effect("is open", () =>
    Effect.gen(function*() {
      const res = yield* call("GET", "/metrics")
      expect(res.status).toBe(200)
      expect(res.text).toContain("# TYPE parley_db_pool_size gauge")
    }))
})
