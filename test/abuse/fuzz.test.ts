/**
 * Abuse: malformed input on every POST/PATCH endpoint of the HttpApi (the
 * list is checked against `Api`, so a new endpoint cannot be missed).
 * Per endpoint, 40 sampled requests: random JSON (`fc.anything()`), one
 * field of a random JSON type, truncated JSON, wrong content types, NUL in
 * keys and nested values or raw in the text, huge numbers. Then, on every
 * endpoint: a NUL and a lone surrogate in every string of the body, and deep
 * nesting. Never a 500, every error the catalog body with its catalog
 * status, never a byte of another user's data. Cases are sampled (not
 * shrunk) so a run lists every failure; FUZZ_SEED replays a run.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { randomUUID } from "node:crypto"
import { Api } from "../../src/Api.js"
import { catalog } from "../../src/Errors.js"
import { at, call, createUser, expectCatalogError, type Reply, type RequestOptions, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const RUNS = 40
const seed = Number(process.env["FUZZ_SEED"] ?? Date.now() % 2_147_483_647)

const tally = { requests: 0, serverErrors: 0, leaks: 0 }
afterAll(() => {
  console.log(`[abuse/fuzz] seed ${seed}; requests sent: ${tally.requests}, 500s seen: ${tally.serverErrors}, leaks seen: ${tally.leaks}`)
})

const request = (method: string, path: string, options: RequestOptions) =>
  Effect.map(call(method, path, options), (reply): Reply => {
    tally.requests++
    if (reply.status >= 500) tally.serverErrors++
    return reply
  })

type Kind = "anything" | "field" | "truncated" | "contentType" | "nul" | "rawNul" | "huge" | "deep"

interface Case {
  readonly kind: Kind
  readonly raw: string
  readonly contentType: string
  readonly note: string
}

/** Stands for a raw JSON fragment (huge numbers, deep nesting) in a body before it becomes text. */
const RAW = "\u0001raw\u0001"
const withRaw = (body: Record<string, unknown>, raw: string) => JSON.stringify(body).replace(JSON.stringify(RAW), raw)

const hugeNumbers = [
  "1e308", "-1e308", "1e400", "-1e400", "1e-400", "9007199254740993", "9223372036854775808",
  "-9223372036854775809", "18446744073709551616", "123456789012345678901234567890123456789", "0.1e999999", "-0"
]
const deepArray = (depth: number) => "[".repeat(depth) + "]".repeat(depth)
const deepObject = (depth: number) => "{\"a\":".repeat(depth) + "1" + "}".repeat(depth)
const badContentTypes = [
  "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "application/xml", "text/html",
  "application/octet-stream", "image/png"
]

/** Requests for one endpoint, from its plausible (valid-looking) body. */
const cases = (plausible: () => Record<string, unknown>): fc.Arbitrary<Case> => {
  const json = "application/json"
  const keys = Object.keys(plausible())
  const key = fc.constantFrom(...keys, `extra_${randomUUID().slice(0, 6)}`)
  const insertNul = (s: string, at: number) => s.slice(0, at % (s.length + 1)) + "\u0000" + s.slice(at % (s.length + 1))
  return fc.oneof(
    fc.anything().map((body): Case => ({ kind: "anything", raw: JSON.stringify(body) ?? "null", contentType: json, note: "" })),
    fc.tuple(key, fc.jsonValue()).map(([k, v]): Case => ({
      kind: "field", raw: JSON.stringify({ ...plausible(), [k]: v }), contentType: json, note: k
    })),
    fc.nat().map((n): Case => {
      const text = JSON.stringify(plausible())
      return { kind: "truncated", raw: text.slice(0, 1 + (n % (text.length - 1))), contentType: json, note: "" }
    }),
    fc.constantFrom(...badContentTypes).map((contentType): Case => ({
      kind: "contentType", raw: JSON.stringify(plausible()), contentType, note: contentType
    })),
    // NUL in every string value is a test of its own (unstorableCases); here in keys and nested values
    fc.tuple(key, fc.nat(), fc.boolean()).map(([k, n, inKey]): Case => ({
      kind: "nul",
      raw: JSON.stringify({ ...plausible(), [k]: inKey ? { [insertNul("name", n)]: "v" } : [{ text: insertNul("nested", n) }] }),
      contentType: json,
      note: `${k} (${inKey ? "key" : "nested"})`
    })),
    fc.nat().map((n): Case => {
      // a literal NUL byte inside a JSON string is not JSON
      const text = JSON.stringify(plausible())
      const quote = text.indexOf("\"", 1 + (n % Math.max(1, text.length - 2)))
      const at = quote === -1 ? 1 : quote + 1
      return { kind: "rawNul", raw: text.slice(0, at) + "\u0000" + text.slice(at), contentType: json, note: "" }
    }),
    fc.tuple(key, fc.constantFrom(...hugeNumbers)).map(([k, n]): Case => ({
      kind: "huge", raw: withRaw({ ...plausible(), [k]: RAW }, n), contentType: json, note: `${k}=${n}`
    }))
  )
}

/** Deep nesting as the whole body and in each field, from harmless to absurd depths. */
const deepCases = (plausible: () => Record<string, unknown>): Array<Case> => [
  ...[64, 1_000, 10_000, 100_000].flatMap((depth): Array<Case> => [
    { kind: "deep", raw: deepArray(depth), contentType: "application/json", note: `(body) array depth ${depth}` },
    { kind: "deep", raw: deepObject(depth), contentType: "application/json", note: `(body) object depth ${depth}` }
  ]),
  ...Object.keys(plausible()).map((k): Case => ({
    kind: "deep", raw: withRaw({ ...plausible(), [k]: RAW }, deepObject(10_000)), contentType: "application/json", note: `${k} object depth 10000`
  }))
]

/** Every string in a body, by path: each gets a NUL and a lone surrogate, deterministically. */
const stringLeaves = (u: unknown, path: ReadonlyArray<string | number> = []): Array<ReadonlyArray<string | number>> =>
  typeof u === "string" ? [path]
    : Array.isArray(u) ? u.flatMap((v, i) => stringLeaves(v, [...path, i]))
    : typeof u === "object" && u !== null ? Object.entries(u).flatMap(([k, v]) => stringLeaves(v, [...path, k]))
    : []

const replaced = (u: unknown, path: ReadonlyArray<string | number>, f: (s: string) => string): unknown => {
  const [head, ...rest] = path
  if (head === undefined) return typeof u === "string" ? f(u) : u
  if (Array.isArray(u)) return u.map((v, i) => i === head ? replaced(v, rest, f) : v)
  if (typeof u === "object" && u !== null) return Object.fromEntries(Object.entries(u).map(([k, v]) => [k, k === head ? replaced(v, rest, f) : v]))
  return u
}

const unstorableCases = (plausible: () => Record<string, unknown>): Array<Case> =>
  stringLeaves(plausible()).flatMap((path) =>
    ([["NUL", "\u0000"], ["lone surrogate", "\ud800"]] as const).map(([name, bad]): Case => ({
      kind: "nul",
      raw: JSON.stringify(replaced(plausible(), path, (s) => s.slice(0, 1) + bad + s.slice(1))),
      contentType: "application/json",
      note: `${name} in ${path.join(".")}`
    }))
  )

const statusOfCode = new Map(Object.values(catalog).map((e) => [e.code, e.status]))

/** What every answer must be; returns the problems found. */
const judge = (c: Case, reply: Reply, secrets: ReadonlyArray<string>, bodyless: boolean): Array<string> => {
  const problems: Array<string> = []
  if (reply.status >= 500 || reply.status === 0) problems.push(`status ${reply.status}`)
  if (reply.status >= 400) {
    const code = String(at(reply.json, "error", "code"))
    try {
      expectCatalogError(reply, reply.status, code)
      if (statusOfCode.get(code) !== reply.status) problems.push(`${code} with status ${reply.status}`)
    } catch (e) {
      problems.push(e instanceof Error ? e.message.split("\n")[0] ?? "" : String(e))
    }
  }
  const notJson = c.kind === "contentType" || (!bodyless && (c.kind === "truncated" || c.kind === "rawNul"))
  if (notJson && String(at(reply.json, "error", "code")) !== "ERR_BAD_REQUEST") {
    problems.push(`expected 400 ERR_BAD_REQUEST, got ${reply.status}`)
  }
  const leaked = secrets.filter((s) => reply.text.includes(s))
  if (leaked.length > 0) {
    tally.leaks++
    problems.push(`leaked ${leaked.join(", ")}`)
  }
  return problems
}

interface Target {
  readonly method: "POST" | "PATCH"
  /** The route template as the HttpApi declares it. */
  readonly route: string
  readonly path: string
  readonly token: string
  readonly plausible: () => Record<string, unknown>
  /** The endpoint takes no body: it may ignore one, malformed or not. */
  readonly bodyless?: boolean
}

/** A victim's data: none of it may show up in an answer to the fuzzing user. */
const makeVictim = (server: TestServer.TestServerInfo) =>
  Effect.gen(function*() {
    const v = yield* createUser(server)
    const secret = `victim-${randomUUID()}`
    for (const [path, body] of [
      ["/v1/sessions", { title: secret, metadata: { secret } }],
      ["/v1/agents", { name: secret, system_prompt: secret }],
      ["/v1/memories", { content: secret }],
      ["/v1/mcp-servers", { name: secret, url: `http://127.0.0.1:9/${secret}`, headers: { "X-Secret": secret } }]
    ] as const) {
      const reply = yield* request("POST", path, { token: v.key, body })
      if (reply.status !== 201) throw new Error(`victim ${path}: ${reply.status} ${reply.text}`)
    }
    return [secret, v.id, v.email]
  })

const targetsFor = (server: TestServer.TestServerInfo) =>
  Effect.gen(function*() {
    const u = yield* createUser(server)
    const made = (path: string, body: unknown) =>
      Effect.map(request("POST", path, { token: u.key, body }), (r) => {
        if (r.status !== 201 && r.status !== 200) throw new Error(`${path}: ${r.status} ${r.text}`)
        return r
      })
    const agentId = str((yield* made("/v1/agents", { name: "fuzz agent" })).json, "id")
    const sessionId = str((yield* made("/v1/sessions", { title: "fuzz" })).json, "id")
    const turn = yield* made(`/v1/sessions/${sessionId}/messages`, { content: "hello", stream: false })
    const messageId = str(turn.json, "assistant_message", "id")
    // port 9 (discard): a check fails fast instead of waiting on the network
    const mcpId = str((yield* made("/v1/mcp-servers", { name: "fuzz mcp", url: "http://127.0.0.1:9/mcp" })).json, "id")
    const checkedId = str((yield* made("/v1/mcp-servers", { name: "fuzz check", url: "http://127.0.0.1:9/mcp" })).json, "id")
    const user = (method: "POST" | "PATCH", route: string, path: string, plausible: () => Record<string, unknown>): Target =>
      ({ method, route, path, token: u.key, plausible })
    const admin = (route: string, path: string, plausible: () => Record<string, unknown>): Target =>
      ({ method: "POST", route, path, token: server.adminToken, plausible })
    const session = () => ({ title: "t", agent_id: agentId, metadata: { a: 1, b: "two" } })
    const agent = () => ({
      name: `a ${randomUUID()}`, system_prompt: "be brief", model: "gpt-4o-mini",
      parameters: { temperature: 1, max_tokens: 10, top_p: 0.5, stop: ["x"] }, memory_enabled: true
    })
    const mcp = () => ({ name: `m ${randomUUID()}`, url: "http://127.0.0.1:9/mcp", transport: "sse", headers: { "X-Key": "v" }, enabled: false })
    return [
      admin("/v1/admin/users", "/v1/admin/users", () => ({ email: `f${randomUUID()}@example.com`, daily_request_limit: 10, daily_token_limit: 1000 })),
      admin("/v1/admin/users/:id/keys", `/v1/admin/users/${u.id}/keys`, () => ({ name: "fuzz key" })),
      { ...admin("/v1/admin/providers/:provider/keys/:index/reinstate", "/v1/admin/providers/openai/keys/1/reinstate", () => ({ key: "x" })), bodyless: true },
      user("POST", "/v1/sessions", "/v1/sessions", session),
      user("PATCH", "/v1/sessions/:id", `/v1/sessions/${sessionId}`, session),
      user("POST", "/v1/sessions/:id/messages", `/v1/sessions/${sessionId}/messages`, () => ({ content: "hi", stream: false, model: "gpt-4o-mini" })),
      user("POST", "/v1/messages/:id/feedback", `/v1/messages/${messageId}/feedback`, () => ({ rating: "up", comment: "nice" })),
      user("POST", "/v1/agents", "/v1/agents", agent),
      user("PATCH", "/v1/agents/:id", `/v1/agents/${agentId}`, agent),
      user("POST", "/v1/memories", "/v1/memories", () => ({ content: `fact ${randomUUID()}` })),
      user("POST", "/v1/mcp-servers", "/v1/mcp-servers", mcp),
      user("PATCH", "/v1/mcp-servers/:id", `/v1/mcp-servers/${mcpId}`, mcp),
      { ...user("POST", "/v1/mcp-servers/:id/check", `/v1/mcp-servers/${checkedId}/check`, () => ({ verbose: true })), bodyless: true },
      user("POST", "/v1/chat/completions", "/v1/chat/completions", () => ({
        model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], temperature: 1, max_tokens: 10, stream: false
      }))
    ] satisfies Array<Target>
  })

/** Every POST/PATCH route of the HttpApi. */
const declaredWrites = (): Array<string> =>
  Object.values(Api.groups).flatMap((group) =>
    Object.values(group.endpoints)
      .filter((e) => e.method === "POST" || e.method === "PATCH")
      .map((e) => `${e.method} ${e.path}`)
  ).sort()

/** Sends each case to its endpoint; returns every problem found. */
const run = (target: Target, batch: ReadonlyArray<Case>, secrets: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const failures: Array<string> = []
    for (const c of batch) {
      const reply = yield* request(target.method, target.path, { token: target.token, rawBody: c.raw, headers: { "content-type": c.contentType } })
      const problems = judge(c, reply, secrets, target.bodyless === true)
      if (problems.length > 0) {
        failures.push(
          `${target.method} ${target.route} ${c.kind} ${c.note}: ${problems.join("; ")}\n` +
            `    sent ${JSON.stringify(c.raw.slice(0, 160))}\n    got ${reply.status} ${reply.text.slice(0, 200)}`
        )
      }
    }
    return failures
  })

/** The sampled mix on one endpoint. */
const fuzz = (route: string) =>
  Effect.gen(function*() {
    const server = yield* TestServer.TestServer
    const secrets = yield* makeVictim(server)
    const target = (yield* targetsFor(server)).find((t) => `${t.method} ${t.route}` === route)
    if (target === undefined) return yield* Effect.die(`no fuzz target for ${route}`)
    const sampled = fc.sample(cases(target.plausible), { numRuns: RUNS, seed: seed + route.length })
    const failures = yield* run(target, sampled, secrets)
    expect(failures, `seed ${seed}:\n${failures.join("\n")}`).toEqual([])
    expect(new Set(sampled.map((c) => c.kind)).size, "the mix covered several kinds of input").toBeGreaterThan(4)
  })

/** Deterministic cases on every endpoint that takes a body. */
const everywhere = (casesOf: (plausible: () => Record<string, unknown>) => Array<Case>) =>
  Effect.gen(function*() {
    const server = yield* TestServer.TestServer
    const secrets = yield* makeVictim(server)
    const failures: Array<string> = []
    for (const target of yield* targetsFor(server)) {
      if (target.bodyless !== true) failures.push(...(yield* run(target, casesOf(target.plausible), secrets)))
    }
    expect(failures, failures.join("\n")).toEqual([])
  })

const routes = [
  "POST /v1/admin/users", "POST /v1/admin/users/:id/keys", "POST /v1/admin/providers/:provider/keys/:index/reinstate", "POST /v1/sessions", "PATCH /v1/sessions/:id",
  "POST /v1/sessions/:id/messages", "POST /v1/messages/:id/feedback", "POST /v1/agents", "PATCH /v1/agents/:id",
  "POST /v1/memories", "POST /v1/mcp-servers", "PATCH /v1/mcp-servers/:id", "POST /v1/mcp-servers/:id/check",
  "POST /v1/chat/completions"
]

const env = (url: string) => ({
  OPENAI_API_KEY: "sk-sim-1", OPENAI_BASE_URL: `${url}/v1`, PARLEY_DEFAULT_PROVIDER: "openai", PARLEY_DEFAULT_MODEL: "gpt-4o-mini",
  PARLEY_RATE_LIMIT_PER_MINUTE: "0"
})

layer(TestServer.withSimulator(env), { timeout: 60_000, excludeTestServices: true })("abuse: malformed input on every endpoint", (it) => {
  it("every POST/PATCH endpoint of the API is fuzzed here", () => {
    expect(declaredWrites()).toEqual([...routes].sort())
  })
  for (const route of routes) it.effect(`${route}: random values, wrong types, truncated JSON, wrong content types, huge numbers`, () => fuzz(route))
  it.effect("NUL and lone surrogates in every string of every body are refused, never a 500", () => everywhere(unstorableCases))
  it.effect("deeply nested JSON (as the body and in every field) is refused, never a 500", () => everywhere(deepCases))
})
