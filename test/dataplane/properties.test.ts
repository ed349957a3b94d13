/**
 * Property tests over HTTP for every data-plane POST/PATCH: valid bodies
 * (generated from the request Schemas) and broken ones (wrong types, huge
 * strings, bad UUIDs, unstorable text, `fc.anything()`). Whatever comes in:
 * never a 500, every error is the catalog body, and only valid requests
 * write. Bounded: 50 runs per endpoint.
 *
 * `FastCheck` is effect's re-export of fast-check: `Arbitrary.make` builds
 * arbitraries for that copy, and mixing them with another copy's combinators
 * is not supported.
 */
import { expect, layer } from "@effect/vitest"
import { Arbitrary, Effect, Either, FastCheck as fc, Schema } from "effect"
import { AgentId, CreateAgent, UpdateAgent } from "../../src/Agents/Domain.js"
import { PostFeedback } from "../../src/Feedback/Domain.js"
import { CreateSession, IfMatchVersion, UpdateSession } from "../../src/Sessions/Domain.js"
import { at, call, createUser, expectCatalogError, type Reply } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"
import { createAgent, createSession, insertMessages } from "./fixtures.js"

const RUNS = 50
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A generated request body and what the generator promises about it. */
interface Case {
  readonly body: unknown
  readonly kind: "valid" | "broken" | "anything"
}

/** Valid wire bodies: generated as values of the schema's type, encoded, with some optional keys left out. */
const validBodies = <A, I>(schema: Schema.Schema<A, I>, adjust: (a: A) => fc.Arbitrary<A> = fc.constant, droppable: ReadonlyArray<string> = []) =>
  Arbitrary.make(schema).chain(adjust).chain((value) => {
    const body: unknown = Schema.encodeSync(schema)(value)
    return fc.subarray([...droppable]).map((drop): Case => ({
      body: typeof body === "object" && body !== null
        ? Object.fromEntries(Object.entries(body).filter(([k]) => !drop.includes(k)))
        : body,
      kind: "valid"
    }))
  })

const notUuid = fc.string({ maxLength: 40 }).filter((s) => !uuidPattern.test(s))
/** Not a string, and not an object either (an object is a valid `metadata`). */
const wrongType = fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.integer(), { maxLength: 3 }))
const wrongScalar = fc.oneof(wrongType, fc.constant({ x: 1 }))
const hugeString = (min: number) => fc.integer({ min, max: min + 50_000 }).map((n) => "x".repeat(n))
const unstorable = fc.constantFrom("nul \u0000 byte", "lone \ud800 high", "lone \udc00 low")

/** One broken field on top of an otherwise plausible body. */
const broken = (fields: Record<string, fc.Arbitrary<unknown>>, base: Record<string, unknown> = {}) =>
  fc.oneof(...Object.entries(fields).map(([key, arb]) => arb.map((v): Case => ({ body: { ...base, [key]: v }, kind: "broken" }))))

const anything = fc.anything().map((body): Case => ({ body, kind: "anything" }))

/** JSON on the wire as a client would send it (`undefined` has no JSON: sent as null). */
const wire = (body: unknown) => JSON.stringify(body) ?? "null"

/** Is this wire body valid for `schema`? The server decodes with the same rules. */
const accepts = <A, I>(schema: Schema.Schema<A, I>, raw: string) =>
  Either.getRight(Schema.decodeUnknownEither(schema)(JSON.parse(raw)))

const send = (method: string, path: string, token: string, raw: string, headers: Record<string, string> = {}) =>
  call(method, path, { token, rawBody: raw, headers: { "content-type": "application/json", ...headers } })

const expectNoServerError = (reply: Reply) => {
  expect(reply.status, reply.text).toBeLessThan(500)
  if (reply.status >= 400) expectCatalogError(reply, reply.status, String(at(reply.json, "error", "code")))
}

/** Runs a property under the test server; a failed expectation is a counterexample. */
const property = <A>(arb: fc.Arbitrary<A>, check: (a: A) => Effect.Effect<void, never, TestServer.TestServer>) =>
  Effect.flatMap(TestServer.TestServer, (server) =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(arb, (a) => Effect.runPromise(Effect.provideService(check(a), TestServer.TestServer, server))),
        { numRuns: RUNS }
      )
    ))

layer(TestServer.layer(), { timeout: 120_000, excludeTestServices: true })("data-plane properties", (it) => {
  it.effect("POST /v1/sessions", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const agent = yield* createAgent(server, u.key)
      const count = () => Effect.map(server.sql<{ n: number }>`SELECT count(*)::int AS n FROM sessions WHERE user_id = ${u.id}`, (r) => r[0]?.n)
      const cases = fc.oneof(
        validBodies(CreateSession, (s) => fc.constantFrom(null, AgentId.make(agent)).map((agentId) => ({ ...s, agentId })), ["title", "agent_id", "metadata"]),
        broken({ title: fc.oneof(wrongScalar, hugeString(201), unstorable), agent_id: fc.oneof(notUuid, wrongScalar), metadata: fc.oneof(wrongType, fc.string(), fc.dictionary(fc.string(), fc.integer(), { minKeys: 51, maxKeys: 80 }), hugeString(16_385).map((big) => ({ big }))) }),
        anything
      )
      yield* property(cases, ({ body, kind }) =>
        Effect.gen(function*() {
          const raw = wire(body)
          const before = yield* count()
          const reply = yield* send("POST", "/v1/sessions", u.key, raw)
          expectNoServerError(reply)
          const valid = accepts(CreateSession, raw)
          if (kind === "valid") expect(valid._tag, raw).toBe("Some")
          if (kind === "broken") expect(valid._tag, raw).toBe("None")
          if (valid._tag === "Some") {
            expect(reply.status, reply.text).toBe(201)
            const sent = JSON.parse(raw)
            expect(at(reply.json, "title")).toBe(sent.title ?? null)
            expect(at(reply.json, "agent_id")).toBe(sent.agent_id ?? null)
            expect(at(reply.json, "metadata")).toEqual(sent.metadata ?? {})
            expect(yield* count()).toBe((before ?? 0) + 1)
          } else {
            expectCatalogError(reply, 422, "ERR_VALIDATION")
            expect(yield* count()).toBe(before)
          }
        }).pipe(Effect.orDie))
    }))

  it.effect("PATCH /v1/sessions/{id} (with If-Match)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const agent = yield* createAgent(server, u.key)
      const id = yield* createSession(server, u.key, { title: "start" })
      const state = () =>
        Effect.map(
          server.sql<{ title: string | null; agentId: string | null; metadata: unknown; version: number }>`
            SELECT title, agent_id, metadata, version FROM sessions WHERE id = ${id}`,
          (r) => r[0]
        )
      const bodies = fc.oneof(
        validBodies(UpdateSession, (s) => fc.constantFrom(null, AgentId.make(agent)).map((agentId) => ({ ...s, agentId })), ["title", "agent_id", "metadata"]),
        broken({ title: fc.oneof(wrongScalar, hugeString(201), unstorable), agent_id: fc.oneof(notUuid, wrongScalar), metadata: fc.oneof(wrongType, fc.constant(null)), version: fc.integer() }),
        anything
      )
      const ifMatch = fc.oneof(
        fc.constant<"none" | "current" | "stale" | string>("none"),
        fc.constant("current"),
        fc.constant("stale"),
        fc.string({ maxLength: 12 })
      )
      yield* property(fc.tuple(bodies, ifMatch), ([{ body, kind }, match]) =>
        Effect.gen(function*() {
          const raw = wire(body)
          const before = yield* state()
          if (before === undefined) return yield* Effect.die("session vanished")
          const header = match === "none" ? undefined
            : match === "current" ? String(before.version)
            : match === "stale" ? String(before.version - 1 === 0 ? before.version + 5 : before.version - 1)
            : match
          const reply = yield* send("PATCH", `/v1/sessions/${id}`, u.key, raw, header === undefined ? {} : { "if-match": header })
          expectNoServerError(reply)
          const after = yield* state()
          const valid = accepts(UpdateSession, raw)
          if (kind === "valid") expect(valid._tag, raw).toBe("Some")
          if (kind === "broken") expect(valid._tag, raw).toBe("None")
          // HTTP trims header whitespace; the server sees what the client's fetch sends
          const headerValid = header === undefined || Either.isRight(Schema.decodeUnknownEither(IfMatchVersion)(header.trim()))
          if (valid._tag === "None" || !headerValid) {
            expectCatalogError(reply, 422, "ERR_VALIDATION")
            expect(after).toEqual(before)
          } else if (header !== undefined && Number(header.replace(/[W/"]/g, "")) !== before.version) {
            expectCatalogError(reply, 409, "ERR_CONFLICT")
            expect(after).toEqual(before)
          } else {
            expect(reply.status, reply.text).toBe(200)
            const sent = JSON.parse(raw)
            expect(after).toEqual({
              title: "title" in sent ? sent.title : before.title,
              agentId: "agent_id" in sent ? sent.agent_id : before.agentId,
              metadata: "metadata" in sent ? sent.metadata : before.metadata,
              version: before.version + 1
            })
            expect(at(reply.json, "version")).toBe(before.version + 1)
          }
        }).pipe(Effect.orDie))
    }))

  it.effect("POST /v1/agents and PATCH /v1/agents/{id}", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const target = yield* createAgent(server, u.key, { name: "target" })
      const rows = () =>
        server.sql<{ id: string; name: string; systemPrompt: string; model: string | null; parameters: unknown; memoryEnabled: boolean }>`
          SELECT id, name, system_prompt, model, parameters, memory_enabled FROM agents WHERE user_id = ${u.id} ORDER BY id`
      let serial = 0
      // names are unique per user: valid bodies get a unique suffix (still a valid name)
      const unique = <A extends { readonly name?: string | undefined }>(a: A) =>
        fc.constant(a.name === undefined ? a : { ...a, name: `${a.name.slice(0, 80)} #${++serial}` })
      const brokenAgent = broken({
        name: fc.oneof(wrongType, hugeString(101), fc.constant(""), fc.constant("   "), unstorable),
        system_prompt: fc.oneof(wrongType, hugeString(100_001)),
        model: fc.oneof(wrongType, fc.constant(""), hugeString(201)),
        memory_enabled: fc.oneof(fc.integer(), fc.string()),
        parameters: fc.oneof(
          wrongType,
          fc.double({ noNaN: true }).filter((t) => t < 0 || t > 2).map((temperature) => ({ temperature })),
          fc.integer().filter((n) => n < 1 || n > 200_000).map((max_tokens) => ({ max_tokens })),
          fc.double({ noNaN: true }).filter((p) => p < 0 || p > 1).map((top_p) => ({ top_p })),
          fc.constant({ seed: 1 })
        )
      }, { name: "base" })
      const creates = fc.oneof(validBodies(CreateAgent, unique, ["system_prompt", "model", "parameters", "memory_enabled"]), brokenAgent, anything)
      yield* property(creates, ({ body, kind }) =>
        Effect.gen(function*() {
          const raw = wire(body)
          const before = yield* rows()
          const reply = yield* send("POST", "/v1/agents", u.key, raw)
          expectNoServerError(reply)
          const valid = accepts(CreateAgent, raw)
          if (kind === "valid") expect(valid._tag, raw).toBe("Some")
          if (kind === "broken") expect(valid._tag, raw).toBe("None")
          if (valid._tag === "Some" && !before.some((r) => r.name === valid.value.name)) {
            expect(reply.status, reply.text).toBe(201)
            expect(reply.json).toMatchObject(JSON.parse(raw))
            expect((yield* rows()).length).toBe(before.length + 1)
          } else {
            if (valid._tag === "Some") expectCatalogError(reply, 409, "ERR_ALREADY_EXISTS")
            else expectCatalogError(reply, 422, "ERR_VALIDATION")
            expect(yield* rows()).toEqual(before)
          }
        }).pipe(Effect.orDie))

      const updates = fc.oneof(validBodies(UpdateAgent, unique, []), brokenAgent, anything)
      yield* property(updates, ({ body, kind }) =>
        Effect.gen(function*() {
          const raw = wire(body)
          const before = yield* rows()
          const reply = yield* send("PATCH", `/v1/agents/${target}`, u.key, raw)
          expectNoServerError(reply)
          const valid = accepts(UpdateAgent, raw)
          if (kind === "valid") expect(valid._tag, raw).toBe("Some")
          if (kind === "broken") expect(valid._tag, raw).toBe("None")
          const clash = valid._tag === "Some" && before.some((r) => r.id !== target && r.name === valid.value.name)
          if (valid._tag === "Some" && !clash) {
            expect(reply.status, reply.text).toBe(200)
            expect(reply.json).toMatchObject(JSON.parse(raw))
          } else {
            if (clash) expectCatalogError(reply, 409, "ERR_ALREADY_EXISTS")
            else expectCatalogError(reply, 422, "ERR_VALIDATION")
            expect(yield* rows()).toEqual(before)
          }
        }).pipe(Effect.orDie))
    }))

  it.effect("POST /v1/messages/{id}/feedback", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const session = yield* createSession(server, u.key)
      const [mid] = yield* insertMessages(server.sql, session, [{ role: "assistant", content: "rate me" }])
      const stored = () =>
        server.sql<{ rating: string; comment: string | null }>`SELECT rating, comment FROM feedback WHERE message_id = ${mid}`
      const cases = fc.oneof(
        validBodies(PostFeedback, fc.constant, ["comment"]),
        broken({ rating: fc.oneof(wrongType, fc.string()), comment: fc.oneof(wrongType, hugeString(2001), unstorable) }, { rating: "up" }),
        anything
      )
      yield* property(cases, ({ body, kind }) =>
        Effect.gen(function*() {
          const raw = wire(body)
          const before = yield* stored()
          const reply = yield* send("POST", `/v1/messages/${mid}/feedback`, u.key, raw)
          expectNoServerError(reply)
          const valid = accepts(PostFeedback, raw)
          if (kind === "valid") expect(valid._tag, raw).toBe("Some")
          if (kind === "broken") expect(valid._tag, raw).toBe("None")
          const after = yield* stored()
          if (valid._tag === "Some") {
            expect(reply.status).toBe(before.length === 0 ? 201 : 200)
            expect(after).toEqual([{ rating: valid.value.rating, comment: valid.value.comment }])
          } else {
            expectCatalogError(reply, 422, "ERR_VALIDATION")
            expect(after).toEqual(before)
          }
        }).pipe(Effect.orDie))
    }))

  it.effect("any malformed id in a path is 422, never a 500", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const routes: ReadonlyArray<readonly [string, (id: string) => string, unknown]> = [
        ["GET", (id) => `/v1/sessions/${id}`, undefined],
        ["PATCH", (id) => `/v1/sessions/${id}`, {}],
        ["DELETE", (id) => `/v1/sessions/${id}`, undefined],
        ["GET", (id) => `/v1/sessions/${id}/messages`, undefined],
        ["POST", (id) => `/v1/messages/${id}/feedback`, { rating: "up" }],
        ["GET", (id) => `/v1/agents/${id}`, undefined],
        ["PATCH", (id) => `/v1/agents/${id}`, {}],
        ["DELETE", (id) => `/v1/agents/${id}`, undefined]
      ]
      const ids = fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !uuidPattern.test(s) && s !== "." && s !== "..")
      yield* property(fc.tuple(fc.constantFrom(...routes), ids), ([[method, path, body], id]) =>
        Effect.gen(function*() {
          const reply = yield* call(method, path(encodeURIComponent(id)), { token: u.key, body })
          expectCatalogError(reply, 422, "ERR_VALIDATION")
          expect(at(reply.json, "error", "param")).toBe("id")
        }))
    }))
})
