/**
 * Fault: a misbehaving upstream under concurrency. 200 concurrent
 * /v1/chat/completions (half streaming) while the simulator answers with a
 * scripted mix of successes, 503s, 429s with retry-after-ms, connections
 * closed, streams cut, hangs (the request's 1.5 s deadline ends them),
 * malformed bodies and in-band errors. Every answer is a 200 with a real
 * reply or a catalog error: never a 500, never an empty 200, every stream
 * ends with `[DONE]` (after an error object when it failed mid-way).
 */
import { afterAll, expect, layer } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { catalog } from "../../src/Errors.js"
import { at, createUser, expectCatalogError, type Reply, send } from "../support/Http.js"
import type { Fault } from "../support/Simulator.js"
import * as TestServer from "../support/TestServer.js"

const CONCURRENT = 200

const configFile = () => {
  const path = join(mkdtempSync(join(tmpdir(), "parley-faults-")), "parley.json")
  // Fast retries; a breaker that stays closed, so every request meets the faults rather than an open circuit.
  writeFileSync(path, JSON.stringify({
    providers: { openai: { max_attempts: 3, backoff_base_ms: 20, backoff_max_ms: 100, circuit_min_calls: 1_000, circuit_window: 1_000 } }
  }))
  return path
}

const env = (url: string) => ({
  OPENAI_API_KEY: "sk-sim-1",
  OPENAI_BASE_URL: `${url}/v1`,
  PARLEY_DEFAULT_PROVIDER: "openai",
  PARLEY_CONFIG: configFile(),
  PARLEY_RATE_LIMIT_PER_MINUTE: "0",
  // PGlite has one connection: 200 requests queue for it longer than the default 3 s
  PARLEY_DB_CONNECT_TIMEOUT_MS: "15000"
})

const figures = { requests: 0, faults: 0, ok: 0, errors: 0, serverErrors: 0, emptyOk: 0, unterminated: 0, midStreamErrors: 0 }
afterAll(() => {
  console.log(
    `[faults/upstream] requests sent: ${figures.requests}, faults injected: ${figures.faults}, 200s: ${figures.ok}, ` +
      `catalog errors: ${figures.errors}, mid-stream error events: ${figures.midStreamErrors}, 500s seen: ${figures.serverErrors}, ` +
      `empty 200s: ${figures.emptyOk}, streams without [DONE]: ${figures.unterminated}`
  )
})

const faultMix: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Fault>({ kind: "ok" }) },
  { weight: 2, arbitrary: fc.constant<Fault>({ kind: "status", status: 503 }) },
  { weight: 2, arbitrary: fc.integer({ min: 10, max: 400 }).map((ms): Fault => ({ kind: "status", status: 429, headers: { "retry-after-ms": String(ms) } })) },
  { weight: 1, arbitrary: fc.constant<Fault>({ kind: "status", status: 500 }) },
  { weight: 1, arbitrary: fc.constant<Fault>({ kind: "close" }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }).map((afterChunks): Fault => ({ kind: "cut", afterChunks })) },
  { weight: 1, arbitrary: fc.constant<Fault>({ kind: "hang" }) },
  { weight: 2, arbitrary: fc.constant<Fault>({ kind: "malformed" }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map((afterChunks): Fault => ({ kind: "inbandError", afterChunks })) }
)

const statusOfCode = new Map(Object.values(catalog).map((e) => [e.code, e.status]))

/** The problems with one answer ([] when it is a whole reply or an honest catalog error). */
const judge = (stream: boolean, reply: Reply): Array<string> => {
  if (reply.status !== 200) {
    figures.errors++
    if (reply.status >= 500 && at(reply.json, "error", "code") === "ERR_INTERNAL") figures.serverErrors++
    const code = String(at(reply.json, "error", "code"))
    try {
      expectCatalogError(reply, reply.status, code)
    } catch (e) {
      if (reply.status === 500) figures.serverErrors++
      return [e instanceof Error ? e.message.split("\n")[0] ?? "" : String(e)]
    }
    return [
      ...(statusOfCode.get(code) !== reply.status ? [`${code} with status ${reply.status}`] : []),
      ...(code === "ERR_INTERNAL" ? ["ERR_INTERNAL"] : [])
    ]
  }
  figures.ok++
  if (!stream) {
    const content = at(reply.json, "choices", 0, "message", "content")
    if (typeof content !== "string" || content === "" || at(reply.json, "object") !== "chat.completion") {
      figures.emptyOk++
      return [`an empty or malformed 200: ${reply.text.slice(0, 200)}`]
    }
    return []
  }
  const events = reply.text.split("\n\n").filter((e) => e.trim() !== "").map((e) => e.replace(/^data: /, ""))
  if (events.at(-1) !== "[DONE]" || events.filter((e) => e === "[DONE]").length !== 1) {
    figures.unterminated++
    return [`a stream that does not end with exactly one [DONE]: ${JSON.stringify(reply.text.slice(-200))}`]
  }
  const chunks = events.slice(0, -1).map((e): unknown => {
    try {
      return JSON.parse(e)
    } catch {
      return undefined
    }
  })
  if (chunks.some((c) => c === undefined)) return [`an event that is not JSON: ${reply.text.slice(0, 200)}`]
  const error = chunks.find((c) => at(c, "error") !== undefined)
  if (error !== undefined) {
    figures.midStreamErrors++
    if (chunks.at(-1) !== error) return ["events after the error event"]
    return typeof at(error, "error", "code") === "string" ? [] : ["an error event without a code"]
  }
  const finished = chunks.some((c) => typeof at(c, "choices", 0, "finish_reason") === "string")
  const text = chunks.map((c) => at(c, "choices", 0, "delta", "content")).filter((t) => typeof t === "string").join("")
  if (!finished || text === "") {
    figures.emptyOk++
    return [`a stream with neither a finished reply nor an error: ${reply.text.slice(0, 300)}`]
  }
  return []
}

layer(TestServer.withSimulator(env), { timeout: 60_000, excludeTestServices: true })("faults: a misbehaving upstream under concurrency", (it) => {
  it.effect(`${CONCURRENT} concurrent completions against a mix of upstream faults: 200 or a catalog error, streams always end`, () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      sim.reset()
      // more faults than requests: retries draw from the same queue
      sim.script(...fc.sample(faultMix, { numRuns: 3 * CONCURRENT }))
      const users = yield* Effect.all(Array.from({ length: 10 }, () => createUser(server)))
      const started = Date.now()
      const results = yield* Effect.all(
        Array.from({ length: CONCURRENT }, (_, i) =>
          Effect.gen(function*() {
            const stream = i % 2 === 0
            const u = users[i % users.length]
            if (u === undefined) return yield* Effect.die("no user")
            const reply = yield* send(server.url, "POST", "/v1/chat/completions", {
              token: u.key,
              headers: { "x-parley-timeout-ms": "1500" },
              body: { model: "gpt-4o-mini", stream, messages: [{ role: "user", content: `request number ${i} with a few words` }] }
            }).pipe(
              Effect.timeoutTo({
                duration: "20 seconds",
                onSuccess: (r): Reply => r,
                onTimeout: (): Reply => ({ status: 0, headers: new Headers(), text: "(no answer within 20 s)", json: undefined })
              })
            )
            figures.requests++
            return { i, stream, reply, problems: reply.status === 0 ? ["hung: no answer within 20 s"] : judge(stream, reply) }
          })),
        { concurrency: "unbounded" }
      )
      const elapsed = Date.now() - started
      figures.faults += sim.requests.filter((r) => r.fault !== "ok").length
      const problems = results.flatMap((r) => r.problems.map((p) => `#${r.i} ${r.stream ? "stream" : "json"}: ${p}`))
      const byStatus = results.reduce((m, r) => m.set(`${r.reply.status} ${String(at(r.reply.json, "error", "code") ?? "")}`.trim(), (m.get(`${r.reply.status} ${String(at(r.reply.json, "error", "code") ?? "")}`.trim()) ?? 0) + 1), new Map<string, number>())
      console.log(`[faults/upstream] ${CONCURRENT} requests in ${elapsed} ms; upstream attempts ${sim.requests.length}; answers ${JSON.stringify(Object.fromEntries(byStatus))}`)
      expect(problems, problems.join("\n")).toEqual([])
      expect(figures.faults, "faults were injected").toBeGreaterThan(CONCURRENT / 4)
      expect(figures.ok, "some requests got through").toBeGreaterThan(0)
      // every upstream exchange is over: nothing left hanging on the simulator
      yield* Effect.promise(() => sim.waitFor((reqs) => reqs.every((r) => r.closedAt !== undefined), 10_000))
    }), 60_000)
})
