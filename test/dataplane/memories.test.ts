import { expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Arbitrary, Effect, Either, FastCheck as fc, Fiber, Layer, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { UserId } from "../../src/Http/Schemas.js"
import { CreateMemory } from "../../src/Memories/Domain.js"
import { contentHash, Memories } from "../../src/Memories/Service.js"
import { at, call, createUser, expectCatalogError, type Reply, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

/** The memories service over the test server's own database, as the chat pipeline uses it. */
const withService = <A, E>(f: (m: Memories) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const server = yield* TestServer.TestServer
    const live = Memories.Default.pipe(Layer.provide(Layer.succeed(SqlClient.SqlClient, server.sql)))
    return yield* Effect.flatMap(Memories, f).pipe(Effect.provide(live))
  })

const post = (token: string, content: unknown) => call("POST", "/v1/memories", { token, body: { content } })

const ids = (reply: Reply): Array<string> => {
  const data = at(reply.json, "data")
  if (!Array.isArray(data)) throw new Error(`no data array: ${reply.text}`)
  return data.map((m) => str(m, "id"))
}

const contents = (reply: Reply): Array<string> => {
  const data = at(reply.json, "data")
  if (!Array.isArray(data)) throw new Error(`no data array: ${reply.text}`)
  return data.map((m) => str(m, "content"))
}

const countFor = (userId: string) =>
  Effect.flatMap(TestServer.TestServer, (s) => s.sql<{ n: number }>`SELECT count(*)::int AS n FROM memories WHERE user_id = ${userId}`)
    .pipe(Effect.map((rows) => rows[0]?.n ?? -1))

/** 400 (body not JSON) or 422 (schema), always the catalog body. */
const expectRejected = (reply: Reply) => {
  expect([400, 422]).toContain(reply.status)
  expectCatalogError(reply, reply.status, reply.status === 400 ? "ERR_BAD_REQUEST" : "ERR_VALIDATION")
}

/** Walks every page of a list and returns the ids in order. */
const walk = (token: string, path: string, limit: number) =>
  Effect.gen(function*() {
    const seen: Array<string> = []
    let cursor: string | null = null
    for (let page = 0; page < 50; page++) {
      const sep = path.includes("?") ? "&" : "?"
      const reply: Reply = yield* call(
        "GET",
        `${path}${sep}limit=${limit}${cursor !== null ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        { token }
      )
      expect(reply.status).toBe(200)
      const pageIds = ids(reply)
      expect(pageIds.length).toBeLessThanOrEqual(limit)
      seen.push(...pageIds)
      const next = at(reply.json, "next_cursor")
      if (next === null) return seen
      cursor = String(next)
    }
    throw new Error("pagination did not end")
  })

layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("memories", (it) => {
  it.effect("create, list, delete; the memory object on the wire", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const created = yield* post(u.key, "  I prefer window seats on trains.  ")
      expect(created.status).toBe(201)
      expect(Object.keys(created.json ?? {}).sort()).toEqual(["content", "created_at", "id", "source_message_id"])
      expect(at(created.json, "content")).toBe("I prefer window seats on trains.")
      expect(at(created.json, "source_message_id")).toBe(null)
      expect(str(created.json, "id")).toMatch(/^[0-9a-f-]{36}$/)
      expect(str(created.json, "created_at")).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
      const id = str(created.json, "id")

      const list = yield* call("GET", "/v1/memories", { token: u.key })
      expect(list.status).toBe(200)
      expect(ids(list)).toEqual([id])
      expect(at(list.json, "next_cursor")).toBe(null)

      expect((yield* call("DELETE", `/v1/memories/${id}`, { token: u.key })).status).toBe(204)
      expectCatalogError(yield* call("DELETE", `/v1/memories/${id}`, { token: u.key }), 404, "ERR_NOT_FOUND")
      expect(ids(yield* call("GET", "/v1/memories", { token: u.key }))).toEqual([])
    }))

  it.effect("a duplicate (same normalized content) answers 200 with the existing memory", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const first = yield* post(u.key, "My sister lives in  Lisbon")
      expect(first.status).toBe(201)
      const again = yield* post(u.key, "  my SISTER lives\tin lisbon ")
      expect(again.status).toBe(200)
      expect(at(again.json, "id")).toBe(at(first.json, "id"))
      expect(at(again.json, "content")).toBe("My sister lives in  Lisbon")
      expect(yield* countFor(u.id)).toBe(1)
      // another user's identical memory is theirs: no cross-user deduplication
      const other = yield* createUser(server)
      const theirs = yield* post(other.key, "My sister lives in Lisbon")
      expect(theirs.status).toBe(201)
      expect(at(theirs.json, "id")).not.toBe(at(first.json, "id"))
      const hashes = yield* server.sql<{ contentHash: string }>`SELECT content_hash FROM memories WHERE user_id = ${u.id}`
      expect(hashes[0]?.contentHash).toMatch(/^[0-9a-f]{64}$/)
    }))

  it.effect("concurrent duplicates make one memory", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const replies = yield* Effect.all(Array.from({ length: 8 }, () => post(u.key, "I am allergic to peanuts")), {
        concurrency: "unbounded"
      })
      expect(replies.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201])
      expect(new Set(replies.map((r) => str(r.json, "id"))).size).toBe(1)
      expect(yield* countFor(u.id)).toBe(1)
    }))

  it.effect("a duplicate racing an uncommitted insert of the same content answers with that memory", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const id = randomUUID()
      // The POST's insert waits on this uncommitted row; once it commits, the POST's
      // statement snapshot cannot see it, so only a retry finds it.
      const racing = yield* server.sql.withTransaction(Effect.gen(function*() {
        yield* server.sql`INSERT INTO memories (id, user_id, content, content_hash)
          VALUES (${id}, ${u.id}, 'I race bicycles', ${contentHash("I race bicycles")})`
        const fiber = yield* Effect.fork(post(u.key, "i race  bicycles"))
        yield* Effect.sleep("300 millis")
        return fiber
      }))
      const reply = yield* Fiber.join(racing)
      expect(reply.status).toBe(200)
      expect(at(reply.json, "id")).toBe(id)
      expect(yield* countFor(u.id)).toBe(1)
    }))

  it.effect("another user's memory is 404 and never listed", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const a = yield* createUser(server)
      const b = yield* createUser(server)
      const mine = yield* post(a.key, "I keep bees on the roof")
      const id = str(mine.json, "id")
      expectCatalogError(yield* call("DELETE", `/v1/memories/${id}`, { token: b.key }), 404, "ERR_NOT_FOUND")
      expect(ids(yield* call("GET", "/v1/memories", { token: b.key }))).toEqual([])
      expect(ids(yield* call("GET", "/v1/memories?query=bees", { token: b.key }))).toEqual([])
      expect(yield* countFor(a.id)).toBe(1)
      // the admin token is not a user
      expectCatalogError(yield* call("GET", "/v1/memories", { token: server.adminToken }), 403, "ERR_FORBIDDEN")
      expectCatalogError(yield* call("GET", "/v1/memories"), 401, "ERR_UNAUTHENTICATED")
    }))

  it.effect("strict input: bad ids, oversized or empty content, bad limits and cursors are 422 naming the field", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const badId = yield* call("DELETE", "/v1/memories/not-a-uuid", { token: u.key })
      expectCatalogError(badId, 422, "ERR_VALIDATION")
      expect(at(badId.json, "error", "param")).toBe("id")

      const tooLong = yield* post(u.key, "x".repeat(2001))
      expectCatalogError(tooLong, 422, "ERR_VALIDATION")
      expect(at(tooLong.json, "error", "param")).toBe("content")
      expect((yield* post(u.key, "y".repeat(2000))).status).toBe(201)

      // NUL cannot be stored in Postgres text: a 422 here, not a database error
      for (const body of [{ content: "   " }, { content: 42 }, {}, { content: "ok", extra: true }, [], "text", { content: "a\u0000b" }]) {
        const reply = yield* call("POST", "/v1/memories", { token: u.key, body })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
      }
      expectCatalogError(
        yield* call("POST", "/v1/memories", { token: u.key, rawBody: "{not json", headers: { "content-type": "application/json" } }),
        400,
        "ERR_BAD_REQUEST"
      )

      for (const q of ["limit=0", "limit=101", "limit=abc", "limit=1.5", "query=a%00b", `query=${"q".repeat(501)}`]) {
        const reply = yield* call("GET", `/v1/memories?${q}`, { token: u.key })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        expect(at(reply.json, "error", "param")).toBe(q.split("=")[0])
      }
      const notJson = Buffer.from("garbage").toString("base64url")
      const wrongShape = Buffer.from(JSON.stringify({ t: "yesterday", id: "x" })).toString("base64url")
      for (const cursor of ["!!!", notJson, wrongShape]) {
        const reply = yield* call("GET", `/v1/memories?cursor=${encodeURIComponent(cursor)}`, { token: u.key })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        expect(at(reply.json, "error", "param")).toBe("cursor")
      }
      // a time cursor does not page a search, and a search cursor does not page the plain list
      for (const c of ["a", "b", "c"]) yield* post(u.key, `pagination probe ${c}`)
      const plain = yield* call("GET", "/v1/memories?limit=1", { token: u.key })
      const timeCursor = str(plain.json, "next_cursor")
      const mixed = yield* call("GET", `/v1/memories?query=probe&cursor=${timeCursor}`, { token: u.key })
      expectCatalogError(mixed, 422, "ERR_VALIDATION")
      expect(at(mixed.json, "error", "param")).toBe("cursor")
      const ranked = yield* call("GET", "/v1/memories?query=probe&limit=1", { token: u.key })
      const rankCursor = str(ranked.json, "next_cursor")
      expectCatalogError(yield* call("GET", `/v1/memories?cursor=${rankCursor}`, { token: u.key }), 422, "ERR_VALIDATION")
    }))

  it.effect("pages are newest first, complete and without repeats, also for equal timestamps", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      for (let i = 0; i < 5; i++) expect((yield* post(u.key, `fact number ${i}`)).status).toBe(201)
      // three rows sharing one microsecond: only the id breaks the tie
      const tie = "2024-01-02T03:04:05.123456Z"
      for (let i = 0; i < 3; i++) {
        yield* server.sql`INSERT INTO memories (id, user_id, content, content_hash, created_at)
          VALUES (${randomUUID()}, ${u.id}, ${`tied ${i}`}, ${`hash-tied-${i}`}, ${tie}::timestamptz)`
      }
      const all = yield* call("GET", "/v1/memories?limit=100", { token: u.key })
      expect(contents(all).slice(0, 5)).toEqual(["fact number 4", "fact number 3", "fact number 2", "fact number 1", "fact number 0"])
      for (const limit of [1, 2, 3]) {
        const walked = yield* walk(u.key, "/v1/memories", limit)
        expect(walked).toEqual(ids(all))
      }
      expect(ids(all).length).toBe(8)
    }))

  it.effect("search: full-text matches only, the most relevant first, recency breaks near ties, pages walk all", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      yield* post(u.key, "I drink coffee every morning; coffee with oat milk, strong coffee")
      yield* post(u.key, "My cat is called Tom")
      yield* post(u.key, "I visited a coffee farm once")
      yield* post(u.key, "Tea is fine in the evening")
      const search = yield* call("GET", "/v1/memories?query=coffee", { token: u.key })
      expect(search.status).toBe(200)
      expect(contents(search)).toEqual([
        "I drink coffee every morning; coffee with oat milk, strong coffee",
        "I visited a coffee farm once"
      ])
      // websearch syntax: quoted phrases and exclusions
      expect(contents(yield* call("GET", `/v1/memories?query=${encodeURIComponent("coffee -farm")}`, { token: u.key })))
        .toEqual(["I drink coffee every morning; coffee with oat milk, strong coffee"])
      expect(contents(yield* call("GET", "/v1/memories?query=cats", { token: u.key }))).toEqual(["My cat is called Tom"])
      expect(contents(yield* call("GET", "/v1/memories?query=submarine", { token: u.key }))).toEqual([])

      // equal relevance: the newer first; an old memory needs a much better match to stay ahead
      const old = yield* post(u.key, "Running shoes size 42")
      const fresh = yield* post(u.key, "Running club on Sundays")
      yield* server.sql`UPDATE memories SET created_at = now() - interval '90 days' WHERE id = ${str(old.json, "id")}`
      expect(ids(yield* call("GET", "/v1/memories?query=running", { token: u.key })))
        .toEqual([str(fresh.json, "id"), str(old.json, "id")])

      const walked = yield* walk(u.key, "/v1/memories?query=coffee%20OR%20running%20OR%20cat", 1)
      expect(walked.length).toBe(5)
      expect(new Set(walked).size).toBe(5)
      // an empty query is the plain list
      expect(ids(yield* call("GET", "/v1/memories?query=%20", { token: u.key })).length).toBe(6)
    }))

  it.effect("relevant(): best matches ranked with recency, else the most recent; only the user's", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const other = yield* createUser(server)
      const userId = UserId.make(u.id)
      yield* post(other.key, "I love coffee more than anything")
      yield* post(u.key, "I am vegetarian")
      yield* post(u.key, "I like my coffee black, no sugar")
      yield* post(u.key, "I live in Porto")
      yield* post(u.key, "Coffee gives me a headache after 4pm, so no coffee in the afternoon")

      const top = yield* withService((m) => m.relevant(userId, "What coffee should I order this afternoon?", 2))
      expect(top.map((m) => m.content)).toEqual([
        "Coffee gives me a headache after 4pm, so no coffee in the afternoon",
        "I like my coffee black, no sugar"
      ])
      expect(top.every((m) => m.userId === userId)).toBe(true)

      // no word matches: the k most recent, newest first
      const recent = yield* withService((m) => m.relevant(userId, "Tell me a joke about submarines!", 3))
      expect(recent.map((m) => m.content)).toEqual([
        "Coffee gives me a headache after 4pm, so no coffee in the afternoon",
        "I live in Porto",
        "I like my coffee black, no sugar"
      ])
      // stop words only, punctuation only, or k <= 0
      expect((yield* withService((m) => m.relevant(userId, "the and of", 1))).map((m) => m.content))
        .toEqual(["Coffee gives me a headache after 4pm, so no coffee in the afternoon"])
      expect((yield* withService((m) => m.relevant(userId, "?!'\"&|:*()", 2))).length).toBe(2)
      expect(yield* withService((m) => m.relevant(userId, "coffee", 0))).toEqual([])
      // a user with no memories
      const nobody = yield* createUser(server)
      expect(yield* withService((m) => m.relevant(UserId.make(nobody.id), "coffee", 5))).toEqual([])
    }))

  it.effect("add() from the pipeline: source message kept, set to null when the message is deleted", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const userId = UserId.make(u.id)
      const sessionId = randomUUID()
      const messageId = randomUUID()
      yield* server.sql`INSERT INTO sessions (id, user_id) VALUES (${sessionId}, ${u.id})`
      yield* server.sql`INSERT INTO messages (id, session_id, user_id, seq, role, content, status)
        VALUES (${messageId}, ${sessionId}, ${u.id}, 1, 'user', 'I moved to Berlin', 'completed')`
      const added = yield* withService((m) => m.add(userId, "Lives in Berlin", messageId))
      expect(added.created).toBe(true)
      expect(added.memory.sourceMessageId).toBe(messageId)
      const dup = yield* withService((m) => m.add(userId, "lives in berlin"))
      expect(dup.created).toBe(false)
      expect(dup.memory.id).toBe(added.memory.id)
      const listed = yield* call("GET", "/v1/memories", { token: u.key })
      expect(at(listed.json, "data", 0, "source_message_id")).toBe(messageId)

      yield* server.sql`DELETE FROM messages WHERE id = ${messageId}`
      const after = yield* call("GET", "/v1/memories", { token: u.key })
      expect(at(after.json, "data", 0, "source_message_id")).toBe(null)

      const missing = yield* withService((m) => m.add(userId, "refers to nothing", randomUUID())).pipe(Effect.flip)
      expect(missing._tag).toBe("NotFound")
      const empty = yield* withService((m) => m.add(userId, " \n ")).pipe(Effect.flip)
      expect(empty._tag).toBe("ValidationFailed")
      expect(yield* countFor(u.id)).toBe(1)
    }))

  it.effect("deleting the user removes their memories", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      yield* post(u.key, "one thing")
      yield* post(u.key, "another thing")
      expect(yield* countFor(u.id)).toBe(2)
      expect((yield* call("DELETE", `/v1/admin/users/${u.id}`, { token: server.adminToken })).status).toBe(204)
      expect(yield* countFor(u.id)).toBe(0)
    }))

  it.effect.prop(
    "GET /v1/memories?query= with any text: 200 or 422, never a 500",
    { query: fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ maxLength: 600 })) },
    ({ query }) =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const u = yield* createUser(server)
        yield* post(u.key, "a memory about the sea")
        const reply = yield* call("GET", `/v1/memories?query=${encodeURIComponent(query)}`, { token: u.key })
        if (reply.status !== 200) {
          expectCatalogError(reply, 422, "ERR_VALIDATION")
          expect(at(reply.json, "error", "param")).toBe("query")
        }
      }),
    { fastCheck: { numRuns: 50 } }
  )

  // effect's FastCheck: Arbitrary.make builds its arbitraries, so both come from one fast-check.
  const validBody = Arbitrary.make(CreateMemory).map((v): unknown => Schema.encodeSync(CreateMemory)(v))
  const brokenBody = fc.oneof(
    fc.anything(),
    fc.record({ content: fc.string({ unit: "binary", maxLength: 40 }) }),
    fc.record({ content: fc.oneof(fc.string({ maxLength: 2100 }), fc.anything()) }),
    fc.record({ content: fc.constantFrom("", "   ", "z".repeat(2001), "\n\t") }),
    fc.record({ content: fc.string({ minLength: 1 }), other: fc.anything() })
  )

  it.effect.prop(
    "POST /v1/memories with generated bodies: never a 500, catalog errors, invalid bodies write nothing",
    { body: fc.oneof(validBody, brokenBody) },
    ({ body }) =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const u = yield* createUser(server)
        const json = JSON.stringify(body)
        // What the server receives is the JSON text: judge validity on its parse.
        const sent: unknown = json === undefined ? undefined : JSON.parse(json)
        const valid = Either.isRight(Schema.decodeUnknownEither(CreateMemory)(sent))
        const reply = yield* call("POST", "/v1/memories", { token: u.key, body: sent })
        expect(reply.status).not.toBe(500)
        if (valid) {
          expect(reply.status).toBe(201)
          expect(yield* countFor(u.id)).toBe(1)
        } else {
          expectRejected(reply)
          expect(yield* countFor(u.id)).toBe(0)
        }
      }),
    { fastCheck: { numRuns: 50 } }
  )
})
