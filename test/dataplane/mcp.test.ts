import { expect, layer } from "@effect/vitest"
import { Arbitrary, Effect, Either, FastCheck as fc, Fiber, Schema } from "effect"
import { CreateMcpServer, UpdateMcpServer } from "../../src/McpServers/Domain.js"
import { at, call, createUser, expectCatalogError, type Reply, str } from "../support/Http.js"
import * as McpTestServer from "../support/McpTestServer.js"
import * as TestServer from "../support/TestServer.js"

const SECRET = "s3cr3t-Value-never-shown-0xC0FFEE"

const create = (token: string, body: unknown) => call("POST", "/v1/mcp-servers", { token, body })
const check = (token: string, id: string) => call("POST", `/v1/mcp-servers/${id}/check`, { token })

const created = (reply: Reply): string => {
  if (reply.status !== 201) throw new Error(`create: ${reply.status} ${reply.text}`)
  return str(reply.json, "id")
}

const rowOf = (id: string) =>
  Effect.flatMap(TestServer.TestServer, (s) =>
    s.sql<Record<string, unknown>>`SELECT name, url, transport, headers, enabled, last_status, updated_at FROM mcp_servers WHERE id = ${id}`)
    .pipe(Effect.map((rows) => JSON.stringify(rows)))

const countFor = (userId: string) =>
  Effect.flatMap(TestServer.TestServer, (s) => s.sql<{ n: number }>`SELECT count(*)::int AS n FROM mcp_servers WHERE user_id = ${userId}`)
    .pipe(Effect.map((rows) => rows[0]?.n ?? -1))

const expectRejected = (reply: Reply) => {
  expect([400, 422]).toContain(reply.status)
  expectCatalogError(reply, reply.status, reply.status === 400 ? "ERR_BAD_REQUEST" : "ERR_VALIDATION")
}

const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/

layer(TestServer.layer(), { timeout: 60_000, excludeTestServices: true })("MCP server registry", (it) => {
  it.effect("create, get, list, patch, delete; reads carry header names only", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const reply = yield* create(u.key, {
        name: "  tools  ",
        url: "https://mcp.example.com/mcp",
        headers: { Authorization: `Bearer ${SECRET}`, "X-Team": "blue" }
      })
      const id = created(reply)
      expect(reply.json).toEqual({
        id,
        name: "tools",
        url: "https://mcp.example.com/mcp",
        transport: "streamable_http",
        header_names: ["Authorization", "X-Team"],
        enabled: true,
        last_checked_at: null,
        last_status: null,
        last_error: null,
        tool_count: null,
        created_at: expect.stringMatching(rfc3339),
        updated_at: expect.stringMatching(rfc3339)
      })
      const got = yield* call("GET", `/v1/mcp-servers/${id}`, { token: u.key })
      expect(got.status).toBe(200)
      expect(got.json).toEqual(reply.json)

      const list = yield* call("GET", "/v1/mcp-servers", { token: u.key })
      expect(list.status).toBe(200)
      expect(at(list.json, "data")).toEqual([reply.json])
      expect(at(list.json, "next_cursor")).toBe(null)

      const patched = yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { enabled: false, transport: "sse" } })
      expect(patched.status).toBe(200)
      expect(at(patched.json, "enabled")).toBe(false)
      expect(at(patched.json, "transport")).toBe("sse")
      expect(at(patched.json, "name")).toBe("tools")
      expect(at(patched.json, "header_names")).toEqual(["Authorization", "X-Team"])
      // headers replace the whole set
      const rekeyed = yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { headers: { "X-Api-Key": SECRET } } })
      expect(at(rekeyed.json, "header_names")).toEqual(["X-Api-Key"])
      const stored = yield* server.sql<{ headers: unknown }>`SELECT headers FROM mcp_servers WHERE id = ${id}`
      expect(stored[0]?.headers).toEqual({ "X-Api-Key": SECRET })

      expect((yield* call("DELETE", `/v1/mcp-servers/${id}`, { token: u.key })).status).toBe(204)
      expectCatalogError(yield* call("GET", `/v1/mcp-servers/${id}`, { token: u.key }), 404, "ERR_NOT_FOUND")
      expectCatalogError(yield* call("DELETE", `/v1/mcp-servers/${id}`, { token: u.key }), 404, "ERR_NOT_FOUND")
    }))

  it.effect("a name is unique per user: 409 ERR_ALREADY_EXISTS on create and rename", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      created(yield* create(u.key, { name: "one", url: "http://localhost:1/mcp" }))
      const second = created(yield* create(u.key, { name: "two", url: "http://localhost:1/mcp" }))
      const taken = yield* create(u.key, { name: "one", url: "http://other/mcp" })
      expectCatalogError(taken, 409, "ERR_ALREADY_EXISTS")
      expect(at(taken.json, "error", "param")).toBe("name")
      expectCatalogError(
        yield* call("PATCH", `/v1/mcp-servers/${second}`, { token: u.key, body: { name: "one" } }),
        409,
        "ERR_ALREADY_EXISTS"
      )
      // another user may use the same name
      const other = yield* createUser(server)
      created(yield* create(other.key, { name: "one", url: "http://localhost:1/mcp" }))
    }))

  it.effect("another user's server is 404 on every route, and untouched", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const a = yield* createUser(server)
      const b = yield* createUser(server)
      const id = created(yield* create(a.key, { name: "private", url: "http://127.0.0.1:9/mcp", headers: { "X-Key": SECRET } }))
      const before = yield* rowOf(id)
      const replies = [
        yield* call("GET", `/v1/mcp-servers/${id}`, { token: b.key }),
        yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: b.key, body: { name: "mine now" } }),
        yield* check(b.key, id),
        yield* call("DELETE", `/v1/mcp-servers/${id}`, { token: b.key })
      ]
      for (const reply of replies) {
        expectCatalogError(reply, 404, "ERR_NOT_FOUND")
        expect(reply.text).not.toContain(SECRET)
        expect(reply.text).not.toContain("private")
      }
      expect(at((yield* call("GET", "/v1/mcp-servers", { token: b.key })).json, "data")).toEqual([])
      expect(yield* rowOf(id)).toBe(before)
      expectCatalogError(yield* call("GET", "/v1/mcp-servers", { token: server.adminToken }), 403, "ERR_FORBIDDEN")
    }))

  it.effect("strict input: ids, urls, names, headers, transport and unknown fields are 422 naming the field", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      for (const [method, path] of [
        ["GET", "/v1/mcp-servers/nope"],
        ["PATCH", "/v1/mcp-servers/1234"],
        ["DELETE", "/v1/mcp-servers/00000000-0000-0000-0000-00000000000g"],
        ["POST", "/v1/mcp-servers/x/check"]
      ] as const) {
        const reply = yield* call(method, path, { token: u.key, ...(method === "PATCH" ? { body: {} } : {}) })
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        expect(at(reply.json, "error", "param")).toBe("id")
      }
      const base = { name: "ok", url: "https://example.com/mcp" }
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ ...base, url: "ftp://example.com/mcp" }, "url"],
        [{ ...base, url: "javascript:alert(1)" }, "url"],
        [{ ...base, url: "file:///etc/passwd" }, "url"],
        [{ ...base, url: "ws://example.com/mcp" }, "url"],
        [{ ...base, url: "not a url" }, "url"],
        [{ ...base, url: "https://user:pw@example.com/mcp" }, "url"],
        [{ ...base, url: `https://example.com/${"a".repeat(2000)}` }, "url"],
        [{ ...base, name: "   " }, "name"],
        [{ ...base, name: "a\u0000b" }, "name"],
        [{ ...base, url: "https://example.com/a\u0000b" }, "url"],
        [{ ...base, name: "n".repeat(101) }, "name"],
        [{ ...base, transport: "websocket" }, "transport"],
        [{ ...base, enabled: "yes" }, "enabled"],
        [{ ...base, headers: { "Bad Header": "x" } }, "headers"],
        [{ ...base, headers: { "X-Ok": "line\r\nInjected: 1" } }, "headers"],
        [{ ...base, headers: { "Content-Type": "text/plain" } }, "headers"],
        [{ ...base, headers: { "X-A": "1", "x-a": "2" } }, "headers"],
        [{ ...base, headers: { "X-A": 1 } }, "headers"],
        [{ ...base, headers: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, "v"])) }, "headers"],
        [{ ...base, headers: ["Authorization"] }, "headers"],
        [{ ...base, extra: 1 }, "extra"],
        [{ url: base.url }, "name"]
      ]
      for (const [body, param] of cases) {
        const reply = yield* create(u.key, body)
        expectCatalogError(reply, 422, "ERR_VALIDATION")
        expect(String(at(reply.json, "error", "param"))).toMatch(new RegExp(`^${param}`))
      }
      expect(yield* countFor(u.id)).toBe(0)
      // 20 headers and 2000 characters are fine
      created(yield* create(u.key, {
        name: "edge",
        url: `https://example.com/${"a".repeat(2000 - "https://example.com/".length)}`,
        headers: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`X-H${i}`, "v"]))
      }))
      const id = created(yield* create(u.key, base))
      const before = yield* rowOf(id)
      for (const body of [{ url: "ftp://x" }, { name: "" }, { enabled: null }, { headers: { "a b": "c" } }, { nmae: "typo" }]) {
        expectCatalogError(yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body }), 422, "ERR_VALIDATION")
      }
      expect(yield* rowOf(id)).toBe(before)
      for (const q of ["limit=0", "limit=101", "cursor=%25%25"]) {
        expectCatalogError(yield* call("GET", `/v1/mcp-servers?${q}`, { token: u.key }), 422, "ERR_VALIDATION")
      }
    }))

  it.effect("the list pages newest first without repeats", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const made: Array<string> = []
      for (let i = 0; i < 5; i++) made.push(created(yield* create(u.key, { name: `s${i}`, url: "http://127.0.0.1:9/mcp" })))
      const seen: Array<string> = []
      let cursor: string | null = null
      for (let page = 0; page < 10; page++) {
        const reply: Reply = yield* call("GET", `/v1/mcp-servers?limit=2${cursor !== null ? `&cursor=${cursor}` : ""}`, { token: u.key })
        const data = at(reply.json, "data")
        if (!Array.isArray(data)) throw new Error(reply.text)
        seen.push(...data.map((s) => str(s, "id")))
        const next = at(reply.json, "next_cursor")
        if (next === null) break
        cursor = String(next)
      }
      expect(seen).toEqual([...made].reverse())
    }))

  it.scoped("check: a real MCP server over Streamable HTTP and over SSE; the stored headers are sent", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const mcp = yield* McpTestServer.start({ tools: ["echo", "add", "clock"], requireHeader: { name: "Authorization", value: `Bearer ${SECRET}` } })
      const u = yield* createUser(server)
      const headers = { Authorization: `Bearer ${SECRET}` }
      const id = created(yield* create(u.key, { name: "real", url: mcp.mcpUrl, headers }))
      const before = Date.now()
      const reply = yield* check(u.key, id)
      expect(reply.status).toBe(200)
      expect(at(reply.json, "last_status")).toBe("ok")
      expect(at(reply.json, "tool_count")).toBe(3)
      expect(at(reply.json, "last_error")).toBe(null)
      const checkedAt = Date.parse(str(reply.json, "last_checked_at"))
      expect(checkedAt).toBeGreaterThanOrEqual(before - 1000)
      expect(str(reply.json, "last_checked_at")).toMatch(rfc3339)
      expect(mcp.seenHeaderValues()).toContain(`Bearer ${SECRET}`)
      // the result is stored
      const got = yield* call("GET", `/v1/mcp-servers/${id}`, { token: u.key })
      expect(at(got.json, "last_status")).toBe("ok")
      expect(at(got.json, "tool_count")).toBe(3)

      const sse = created(yield* create(u.key, { name: "legacy", url: mcp.sseUrl, transport: "sse", headers }))
      const sseReply = yield* check(u.key, sse)
      expect(sseReply.status).toBe(200)
      expect(at(sseReply.json, "last_status")).toBe("ok")
      expect(at(sseReply.json, "tool_count")).toBe(3)

      // without the header the server refuses: an error, with the status, not a 500
      const bare = created(yield* create(u.key, { name: "bare", url: mcp.mcpUrl }))
      const refused = yield* check(u.key, bare)
      expect(refused.status).toBe(200)
      expect(at(refused.json, "last_status")).toBe("error")
      expect(at(refused.json, "last_error")).toBe("HTTP 401 from the server")
      expect(at(refused.json, "tool_count")).toBe(null)

      // a new url clears the previous result: it described another endpoint
      const moved = yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { url: mcp.htmlUrl } })
      expect([at(moved.json, "last_status"), at(moved.json, "tool_count"), at(moved.json, "last_checked_at")]).toEqual([null, null, null])
      const renamed = yield* call("PATCH", `/v1/mcp-servers/${sse}`, { token: u.key, body: { name: "legacy-2" } })
      expect(at(renamed.json, "last_status")).toBe("ok")
    }))

  it.scoped("check: a closed port is unreachable, a non-MCP answer is an error; never a 500", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const mcp = yield* McpTestServer.start()
      const port = yield* McpTestServer.closedPort
      const u = yield* createUser(server)
      const expectStatus = (url: string, status: string, transport = "streamable_http") =>
        Effect.gen(function*() {
          const id = created(yield* create(u.key, { name: `${status}-${transport}-${url}`.slice(0, 100), url, transport }))
          const reply = yield* check(u.key, id)
          expect(reply.status).toBe(200)
          expect(at(reply.json, "last_status")).toBe(status)
          expect(at(reply.json, "tool_count")).toBe(null)
          expect(str(reply.json, "last_error").length).toBeLessThanOrEqual(200)
          expect(str(reply.json, "last_checked_at")).toMatch(rfc3339)
          return str(reply.json, "last_error")
        })
      expect(yield* expectStatus(`http://127.0.0.1:${port}/mcp`, "unreachable")).toContain("ECONNREFUSED")
      yield* expectStatus(`http://127.0.0.1:${port}/sse`, "unreachable", "sse")
      yield* expectStatus("http://no-such-host.invalid/mcp", "unreachable")
      expect(yield* expectStatus(`${mcp.base}/nothing-here`, "error")).toBe("HTTP 404 from the server")
      yield* expectStatus(mcp.htmlUrl, "error")
      yield* expectStatus(mcp.htmlUrl, "error", "sse")
    }))

  it.scoped("a secret header value never appears in any response body", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const mcp = yield* McpTestServer.start({ requireHeader: { name: "X-Api-Key", value: SECRET } })
      const u = yield* createUser(server)
      const bodies: Array<string> = []
      const keep = (r: Reply) => {
        bodies.push(r.text)
        return r
      }
      const id = created(keep(yield* create(u.key, { name: "s", url: mcp.mcpUrl, headers: { "X-Api-Key": SECRET } })))
      keep(yield* call("GET", `/v1/mcp-servers/${id}`, { token: u.key }))
      keep(yield* call("GET", "/v1/mcp-servers", { token: u.key }))
      const ok = keep(yield* check(u.key, id))
      expect(at(ok.json, "last_status")).toBe("ok")
      keep(yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { name: "s2" } }))
      keep(yield* create(u.key, { name: "s2", url: mcp.mcpUrl, headers: { "X-Api-Key": SECRET } }))
      keep(yield* create(u.key, { name: "s3", url: "ftp://x", headers: { "X-Api-Key": SECRET } }))
      keep(yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { headers: { "X-Api-Key": `${SECRET}\n` } } }))
      keep(yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { headers: { "X-Api-Key": [SECRET] } } }))
      keep(yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { headers: [SECRET] } }))
      keep(yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { headers: { "X-Api-Key": SECRET.repeat(200) } } }))
      const openapi = keep(yield* call("GET", "/openapi.json"))
      expect(openapi.status).toBe(200)
      expect(Object.keys(at(openapi.json, "paths") ?? {})).toEqual(expect.arrayContaining([
        "/v1/memories", "/v1/memories/{id}", "/v1/mcp-servers", "/v1/mcp-servers/{id}", "/v1/mcp-servers/{id}/check"
      ]))
      expect(bodies.length).toBe(12)
      for (const body of bodies) expect(body).not.toContain(SECRET)
      expect(bodies.some((b) => b.includes("X-Api-Key"))).toBe(true)
    }))

  it.effect("deleting the user removes their servers (and their memories)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      created(yield* create(u.key, { name: "a", url: "http://127.0.0.1:9/mcp" }))
      created(yield* create(u.key, { name: "b", url: "http://127.0.0.1:9/mcp" }))
      expect((yield* call("POST", "/v1/memories", { token: u.key, body: { content: "x" } })).status).toBe(201)
      expect(yield* countFor(u.id)).toBe(2)
      expect((yield* call("DELETE", `/v1/admin/users/${u.id}`, { token: server.adminToken })).status).toBe(204)
      expect(yield* countFor(u.id)).toBe(0)
      const memories = yield* server.sql`SELECT 1 FROM memories WHERE user_id = ${u.id}`
      expect(memories.length).toBe(0)
    }))

  // effect's FastCheck: Arbitrary.make builds its arbitraries, so both come from one fast-check.
  const header = fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.string({ unit: "binary", maxLength: 10 }),
    fc.constantFrom("Authorization", "Content-Type", "a b", "X-Key")
  )
  const brokenCreate = fc.oneof(
    fc.anything(),
    fc.record({
      name: fc.oneof(fc.string({ maxLength: 120 }), fc.string({ unit: "binary", maxLength: 20 }), fc.anything()),
      url: fc.oneof(
        fc.webUrl(),
        fc.string(),
        fc.constantFrom("ftp://h/x", "javascript:alert(1)", "file:///etc/passwd", "http://u:p@h/x", "http//x", "https://"),
        fc.anything()
      ),
      transport: fc.oneof(fc.constantFrom("streamable_http", "sse", "websocket", ""), fc.anything()),
      headers: fc.oneof(fc.dictionary(header, fc.oneof(fc.string({ maxLength: 20 }), fc.anything()), { maxKeys: 25 }), fc.anything()),
      enabled: fc.oneof(fc.boolean(), fc.anything())
    }, { requiredKeys: [] })
  )
  const validCreate = Arbitrary.make(CreateMcpServer).map((v): unknown => Schema.encodeSync(CreateMcpServer)(v))
  const validUpdate = Arbitrary.make(UpdateMcpServer).map((v): unknown => Schema.encodeSync(UpdateMcpServer)(v))

  /** What the server receives is the JSON text: validity is judged on its parse. */
  const onTheWire = (body: unknown): unknown => {
    const json = JSON.stringify(body)
    return json === undefined ? undefined : JSON.parse(json)
  }

  it.effect.prop(
    "POST /v1/mcp-servers with generated bodies: never a 500, catalog errors, invalid bodies write nothing",
    { body: fc.oneof(validCreate, brokenCreate) },
    ({ body }) =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const u = yield* createUser(server)
        const sent = onTheWire(body)
        const valid = Either.isRight(Schema.decodeUnknownEither(CreateMcpServer)(sent))
        const reply = yield* create(u.key, sent)
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

  it.effect.prop(
    "PATCH /v1/mcp-servers/{id} with generated bodies: never a 500, catalog errors, invalid bodies change nothing",
    { body: fc.oneof(validUpdate, brokenCreate) },
    ({ body }) =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const u = yield* createUser(server)
        const id = created(yield* create(u.key, { name: "target", url: "https://example.com/mcp", headers: { "X-Key": "v" } }))
        const before = yield* rowOf(id)
        const sent = onTheWire(body)
        const valid = Either.isRight(Schema.decodeUnknownEither(UpdateMcpServer)(sent))
        const reply = yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: sent })
        expect(reply.status).not.toBe(500)
        if (valid) {
          expect(reply.status).toBe(200)
          expect(at(reply.json, "id")).toBe(id)
        } else {
          expectRejected(reply)
          expect(yield* rowOf(id)).toBe(before)
        }
      }),
    { fastCheck: { numRuns: 50 } }
  )
})

layer(TestServer.layer({ env: { PARLEY_MCP_CHECK_TIMEOUT_MS: "500" } }), { timeout: 60_000, excludeTestServices: true })(
  "MCP check deadline",
  (it) => {
    it.scoped("a server that hangs is a timeout within the deadline, and the connection is closed", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const mcp = yield* McpTestServer.start()
        const u = yield* createUser(server)
        for (const transport of ["streamable_http", "sse"]) {
          const id = created(yield* create(u.key, { name: `hang-${transport}`, url: mcp.hangUrl, transport }))
          const started = Date.now()
          const reply = yield* check(u.key, id)
          const elapsed = Date.now() - started
          expect(reply.status).toBe(200)
          expect(at(reply.json, "last_status")).toBe("timeout")
          expect(at(reply.json, "last_error")).toBe("no answer within 500 ms")
          expect(at(reply.json, "tool_count")).toBe(null)
          expect(elapsed).toBeGreaterThanOrEqual(490)
          expect(elapsed).toBeLessThan(3_000)
        }
        expect(mcp.hangRequests()).toBe(2)
        // the client was closed on the timeout: the hanging requests are gone
        yield* Effect.sleep("50 millis").pipe(Effect.repeat({ until: () => mcp.openHangs() === 0, times: 40 }))
        expect(mcp.openHangs()).toBe(0)
      }))

    it.scoped("an edit while a check runs wins: the stale result is not stored", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.TestServer
        const mcp = yield* McpTestServer.start()
        const u = yield* createUser(server)
        const id = created(yield* create(u.key, { name: "moving", url: mcp.hangUrl }))
        const running = yield* Effect.fork(check(u.key, id))
        yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => mcp.hangRequests() > 0, times: 100 }))
        const moved = yield* call("PATCH", `/v1/mcp-servers/${id}`, { token: u.key, body: { url: mcp.mcpUrl } })
        expect(moved.status).toBe(200)
        const reply = yield* Fiber.join(running)
        expect(reply.status).toBe(200)
        expect(at(reply.json, "url")).toBe(mcp.mcpUrl)
        expect(at(reply.json, "last_status")).toBe(null)
        // and a check of the new url succeeds within the same short deadline
        expect(at((yield* check(u.key, id)).json, "last_status")).toBe("ok")
      }))
  }
)
