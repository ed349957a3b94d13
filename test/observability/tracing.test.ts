import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import packageJson from "../../package.json" with { type: "json" }
import { call, createUser, expectCatalogError, str } from "../support/Http.js"
import { Otlp, OtlpReceiverResource, type ReceivedSpan } from "../support/OtlpReceiver.js"
import * as TestServer from "../support/TestServer.js"

const SERVER = 2
const CLIENT = 3
const ERROR = 2

const configFile = () => {
  const path = join(mkdtempSync(join(tmpdir(), "parley-otel-")), "parley.json")
  // Two attempts, short backoff, a circuit that stays closed.
  writeFileSync(path, JSON.stringify({
    providers: { openai: { max_attempts: 2, backoff_base_ms: 10, backoff_max_ms: 20, circuit_min_calls: 100, circuit_window: 100 } }
  }))
  return path
}

const TracedServer = Layer.unwrapScoped(Effect.gen(function*() {
  const otlp = yield* OtlpReceiverResource
  const file = configFile()
  return Layer.merge(
    TestServer.withSimulator((url) => ({
      OPENAI_API_KEY: "sk-sim-1",
      OPENAI_BASE_URL: `${url}/v1`,
      PARLEY_DEFAULT_PROVIDER: "openai",
      PARLEY_CONFIG: file,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_SERVICE_NAME: "parley-under-test",
      OTEL_BSP_SCHEDULE_DELAY: "50"
    })),
    Layer.succeed(Otlp, otlp)
  )
}))

const chat = { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "trace me" }] }

const rootOf = (spans: ReadonlyArray<ReceivedSpan>, requestId: string) =>
  spans.find((s) => s.kind === SERVER && s.attributes["parley.request_id"] === requestId)

const traceOf = (spans: ReadonlyArray<ReceivedSpan>, traceId: string) => spans.filter((s) => s.traceId === traceId)

/** Waits until the request's server span and `ready(trace)` are in, then returns its trace. */
const awaitTrace = (requestId: string, ready: (trace: ReadonlyArray<ReceivedSpan>) => boolean = () => true) =>
  Effect.gen(function*() {
    const otlp = yield* Otlp
    const spans = yield* otlp.waitFor((all) => {
      const root = rootOf(all, requestId)
      return root !== undefined && ready(traceOf(all, root.traceId))
    })
    const root = rootOf(spans, requestId)
    if (root === undefined) throw new Error("no server span")
    return { root, trace: traceOf(spans, root.traceId) }
  })

const user = Effect.flatMap(TestServer.TestServer, (s) => createUser(s))

layer(TracedServer, { timeout: 60_000, excludeTestServices: true })("traces over OTLP/HTTP", (it) => {
  it.effect("a retried chat completion is one trace: server span at the root, two attempts, SQL spans", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      const otlp = yield* Otlp
      sim.reset()
      sim.script({ kind: "status", status: 503 })
      const u = yield* user
      const requestId = `req-trace-${randomUUID()}`
      const res = yield* call("POST", "/v1/chat/completions", { token: u.key, body: chat, headers: { "x-request-id": requestId } })
      expect(res.status).toBe(200)
      expect(sim.requests.length).toBe(2)

      const { root, trace } = yield* awaitTrace(requestId, (t) => t.filter((s) => s.name === "Provider.attempt").length === 2)
      // The server span is the root; every other span hangs off a span of the same trace.
      expect(root.parentSpanId).toBe("")
      expect(root.name).toBe("POST /v1/chat/completions")
      expect(root.attributes["http.route"]).toBe("/v1/chat/completions")
      expect(root.attributes["http.request.method"]).toBe("POST")
      expect(root.attributes["http.response.status_code"]).toBe(200)
      expect(root.attributes["parley.user_id"]).toBe(u.id)
      expect(root.status.code).not.toBe(ERROR)
      const ids = new Set(trace.map((s) => s.spanId))
      for (const span of trace) if (span !== root) expect(ids.has(span.parentSpanId), `${span.name} has a parent in the trace`).toBe(true)
      expect(trace.filter((s) => s.parentSpanId === "").length).toBe(1)

      const attempts = trace.filter((s) => s.name === "Provider.attempt")
        .sort((a, b) => Number(a.attributes["parley.attempt"]) - Number(b.attributes["parley.attempt"]))
      expect(attempts.map((a) => a.attributes["parley.attempt"])).toEqual([1, 2])
      expect(attempts.map((a) => a.attributes["parley.attempt.outcome"])).toEqual(["status_503", "success"])
      expect(attempts[0]?.attributes["http.response.status_code"]).toBe(503)
      expect(attempts.every((a) => a.attributes["gen_ai.system"] === "openai")).toBe(true)
      // Each attempt made one outgoing HTTP call, beneath it.
      const byId = new Map(trace.map((s) => [s.spanId, s]))
      const attemptOf = (span: ReceivedSpan): ReceivedSpan | undefined => {
        const parent = byId.get(span.parentSpanId)
        return parent === undefined || parent.name === "Provider.attempt" ? parent : attemptOf(parent)
      }
      const httpCalls = trace.filter((s) => s.kind === CLIENT && s.name === "http.client POST")
      expect(httpCalls.map((c) => [attemptOf(c)?.attributes["parley.attempt"], c.attributes["http.response.status_code"]]).sort())
        .toEqual([[1, 503], [2, 200]])

      const sql = trace.filter((s) => s.name === "sql.execute")
      expect(sql.length).toBeGreaterThanOrEqual(2) // the key lookup, the quota count
      expect(sql.every((s) => s.kind === CLIENT && typeof s.attributes["db.query.text"] === "string")).toBe(true)

      expect(root.resource["service.name"]).toBe("parley-under-test")
      expect(root.resource["service.version"]).toBe(packageJson.version)
      expect(otlp.contentTypes.every((c) => c.includes("application/json"))).toBe(true)
      expect(otlp.rejected).toBe(0)
    }))

  it.effect("an error carries its catalog code and error id on the server span; a 5xx span is an error", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* user

      const notFoundId = `req-404-${randomUUID()}`
      const notFound = yield* call("GET", "/v1/no-such-route", { token: u.key, headers: { "x-request-id": notFoundId } })
      expectCatalogError(notFound, 404, "ERR_NOT_FOUND")
      const missing = yield* awaitTrace(notFoundId)
      expect(missing.root.name).toBe("GET")
      expect(missing.root.attributes["http.route"]).toBeUndefined()
      expect(missing.root.attributes["parley.error.code"]).toBe("ERR_NOT_FOUND")
      expect(missing.root.attributes["parley.error_id"]).toBe(str(notFound.json, "error", "error_id"))
      expect(missing.root.attributes["http.response.status_code"]).toBe(404)
      expect(missing.root.status.code).not.toBe(ERROR)

      sim.script({ kind: "status", status: 503 }, { kind: "status", status: 503 })
      const failedId = `req-503-${randomUUID()}`
      const failed = yield* call("POST", "/v1/chat/completions", { token: u.key, body: chat, headers: { "x-request-id": failedId } })
      expectCatalogError(failed, 503, "ERR_PROVIDER_UNAVAILABLE")
      const unavailable = yield* awaitTrace(failedId, (t) => t.filter((s) => s.name === "Provider.attempt").length === 2)
      expect(unavailable.root.attributes["parley.error.code"]).toBe("ERR_PROVIDER_UNAVAILABLE")
      expect(unavailable.root.attributes["parley.error_id"]).toBe(str(failed.json, "error", "error_id"))
      expect(unavailable.root.attributes["http.response.status_code"]).toBe(503)
      expect(unavailable.root.status.code).toBe(ERROR)
      expect(unavailable.root.status.message).toContain("ERR_PROVIDER_UNAVAILABLE")
      expect(unavailable.trace.filter((s) => s.name === "Provider.attempt").map((a) => a.attributes["parley.attempt.outcome"]))
        .toEqual(["status_503", "status_503"])
    }))

  it.effect("an incoming traceparent is continued, and propagated to the provider", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* user
      const traceId = randomBytes(16).toString("hex")
      const callerSpanId = randomBytes(8).toString("hex")
      const requestId = `req-tp-${randomUUID()}`
      const res = yield* call("POST", "/v1/chat/completions", {
        token: u.key,
        body: chat,
        headers: { "x-request-id": requestId, traceparent: `00-${traceId}-${callerSpanId}-01` }
      })
      expect(res.status).toBe(200)

      const { root, trace } = yield* awaitTrace(requestId, (t) => t.some((s) => s.name === "http.client POST"))
      expect(root.traceId).toBe(traceId)
      expect(root.parentSpanId).toBe(callerSpanId)

      expect(sim.requests.length).toBe(1)
      const outgoing = sim.requests[0]?.headers["traceparent"]
      expect(typeof outgoing).toBe("string")
      const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(outgoing))
      expect(match?.[1]).toBe(traceId)
      // The upstream's parent is Parley's outgoing HTTP call, a span of this trace.
      const clientSpan = trace.find((s) => s.spanId === match?.[2])
      expect(clientSpan?.kind).toBe(CLIENT)
    }))

  it.effect("health, readiness and metrics are not traced", () =>
    Effect.gen(function*() {
      const otlp = yield* Otlp
      const u = yield* user
      const quiet = [`req-h-${randomUUID()}`, `req-r-${randomUUID()}`, `req-m-${randomUUID()}`]
      expect((yield* call("GET", "/health", { headers: { "x-request-id": quiet[0] ?? "" } })).status).toBe(200)
      expect((yield* call("GET", "/ready", { headers: { "x-request-id": quiet[1] ?? "" } })).status).toBe(200)
      expect((yield* call("GET", "/metrics", { headers: { "x-request-id": quiet[2] ?? "" } })).status).toBe(200)
      // A traced request after them: once its span is in, theirs would be too.
      const marker = `req-after-${randomUUID()}`
      expect((yield* call("GET", "/v1/me", { token: u.key, headers: { "x-request-id": marker } })).status).toBe(200)
      yield* awaitTrace(marker)
      for (const id of quiet) expect(otlp.spans.some((s) => s.attributes["parley.request_id"] === id)).toBe(false)
      expect(otlp.spans.some((s) => s.attributes["url.path"] === "/health" || s.attributes["url.path"] === "/ready")).toBe(false)
    }))
})
