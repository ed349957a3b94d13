/**
 * Abuse: oversized requests and slow clients, over raw sockets where fetch
 * would hide the detail. Bodies over PARLEY_MAX_BODY_BYTES — declared with
 * Content-Length or streamed chunked without one — are 413 with the catalog
 * body and write nothing; a body at the limit is served. Oversized headers
 * get a 431 with the catalog body (never a 500). Slow-header clients (slowloris) neither
 * starve other clients nor hold a connection past the headers timeout.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import * as net from "node:net"
import { catalog } from "../../src/Errors.js"
import { at, call, createUser, expectCatalogError, type Reply, type RequestOptions, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const MAX_BODY = 64 * 1024
/** What the headers-timeout test asks for; Server.ts must read it (see the report). */
const HEADERS_TIMEOUT_MS = 2_000

const tally = { requests: 0, serverErrors: 0, leaks: 0 }
afterAll(() => {
  console.log(`[abuse/limits] requests sent: ${tally.requests}, 500s seen: ${tally.serverErrors}, leaks seen: ${tally.leaks}`)
})
const count = (reply: Reply): Reply => {
  tally.requests++
  if (reply.status >= 500) tally.serverErrors++
  return reply
}
const request = (method: string, path: string, options: RequestOptions = {}) => Effect.map(call(method, path, options), count)

const toReply = (status: number, headers: Headers, text: string): Reply => {
  let json: unknown = undefined
  try {
    json = text === "" ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return count({ status, headers, text, json })
}

/**
 * A body sent with node:http, with Content-Length or chunked (16 KiB chunks,
 * no Content-Length). The server may answer before the body is all sent;
 * the answer is what counts, and a write the server no longer reads is fine.
 */
const sendBody = (url: string, method: string, path: string, token: string, body: Buffer, chunked: boolean) =>
  Effect.async<Reply, Error>((resume) => {
    const target = new URL(url)
    const req = http.request({
      host: target.hostname,
      port: target.port,
      method,
      path,
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        ...(chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(body.length) })
      }
    })
    let answered = false
    req.on("response", (res) => {
      answered = true
      const parts: Array<Buffer> = []
      res.on("data", (b: Buffer) => parts.push(b))
      res.on("end", () => {
        const headers = new Headers()
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers.set(k, v)
        resume(Effect.succeed(toReply(res.statusCode ?? 0, headers, Buffer.concat(parts).toString("utf8"))))
      })
      res.on("error", (e) => resume(Effect.fail(e)))
    })
    req.on("error", (e) => {
      if (!answered) resume(Effect.fail(new Error(`no answer before the connection failed: ${e.message}`)))
    })
    if (!chunked) req.end(body)
    else {
      let offset = 0
      const next = () => {
        while (offset < body.length) {
          const chunk = body.subarray(offset, offset + 16 * 1024)
          offset += chunk.length
          if (!req.write(chunk)) return void req.once("drain", next)
        }
        req.end()
      }
      next()
    }
    return Effect.sync(() => req.destroy())
  })

/** Raw bytes over one socket; resolves with everything the server sent when it closes (or after `waitMs`). */
const rawExchange = (url: string, data: string, waitMs: number) =>
  Effect.async<{ response: string; closedAfterMs: number | null }>((resume) => {
    const target = new URL(url)
    const started = Date.now()
    const socket = net.connect({ host: target.hostname, port: Number(target.port) })
    const parts: Array<Buffer> = []
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.succeed({ response: Buffer.concat(parts).toString("latin1"), closedAfterMs: null }))
    }, waitMs)
    socket.on("data", (b) => parts.push(b))
    socket.on("error", () => {})
    socket.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed({ response: Buffer.concat(parts).toString("latin1"), closedAfterMs: Date.now() - started }))
    })
    socket.write(data)
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** A slowloris client: a request line, then one header byte every `everyMs` until the server closes. */
const slowClient = (url: string, everyMs: number) => {
  const target = new URL(url)
  const socket = net.connect({ host: target.hostname, port: Number(target.port) })
  const started = Date.now()
  let closedAt: number | null = null
  let received = ""
  socket.on("error", () => {})
  socket.on("data", (b: Buffer) => {
    received += b.toString("latin1")
  })
  socket.write("GET /v1/me HTTP/1.1\r\nHost: parley\r\nX-Slow: ")
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write("a")
  }, everyMs)
  socket.on("close", () => {
    clearInterval(timer)
    closedAt = Date.now()
  })
  return {
    closedAt: () => closedAt,
    closedAfterMs: () => closedAt === null ? null : closedAt - started,
    received: () => received,
    stop: () => {
      clearInterval(timer)
      socket.destroy()
    }
  }
}

const statusOfCode = new Map(Object.values(catalog).map((e) => [e.code, e.status]))
const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0)
const bodyOf = (raw: string) => raw.slice(raw.indexOf("\r\n\r\n") + 4)

/** A JSON object of exactly `bytes` bytes. */
const jsonOfSize = (bytes: number, fields: Record<string, unknown> = {}) => {
  const base = JSON.stringify({ ...fields, pad: "" })
  return Buffer.from(JSON.stringify({ ...fields, pad: "x".repeat(Math.max(0, bytes - base.length)) }))
}

/** Bodies over the limit on every endpoint that takes one: 413, the catalog body, no row changed. */
const oversized = (chunked: boolean) =>
  Effect.gen(function*() {
    const server = yield* TestServer.TestServer
    const u = yield* createUser(server)
    const session = yield* request("POST", "/v1/sessions", { token: u.key, body: { title: "mine" } })
    const sessionId = str(session.json, "id")
    const agent = yield* request("POST", "/v1/agents", { token: u.key, body: { name: "mine" } })
    const rows = () =>
      Effect.map(
        server.sql<{ n: string }>`SELECT concat_ws(',', (SELECT count(*) FROM sessions), (SELECT count(*) FROM users),
          (SELECT count(*) FROM memories), (SELECT count(*) FROM messages), (SELECT max(version) FROM sessions WHERE id = ${sessionId}),
          (SELECT count(*) FROM mcp_servers), (SELECT count(*) FROM agents)) AS n`,
        (r) => r[0]?.n
      ).pipe(Effect.orDie)
    const before = yield* rows()
    const targets: ReadonlyArray<readonly [string, string, string, Record<string, unknown>]> = [
      ["POST", "/v1/sessions", u.key, { title: "big" }],
      ["PATCH", `/v1/sessions/${sessionId}`, u.key, { title: "big" }],
      ["POST", `/v1/sessions/${sessionId}/messages`, u.key, { content: "big", stream: false }],
      ["POST", "/v1/agents", u.key, { name: "big" }],
      ["PATCH", `/v1/agents/${str(agent.json, "id")}`, u.key, { name: "big" }],
      ["POST", "/v1/memories", u.key, { content: "big" }],
      ["POST", "/v1/mcp-servers", u.key, { name: "big", url: "http://127.0.0.1:9/" }],
      ["POST", "/v1/chat/completions", u.key, { model: "gpt-4o-mini", messages: [{ role: "user", content: "big" }] }],
      ["POST", "/v1/admin/users", server.adminToken, { email: "big@example.com" }]
    ]
    const failures: Array<string> = []
    for (const [method, path, token, fields] of targets) {
      for (const size of [MAX_BODY + 1, 4 * MAX_BODY, 64 * MAX_BODY]) {
        const how = `${method} ${path} ${size} bytes ${chunked ? "chunked" : "with Content-Length"}`
        const reply = yield* Effect.either(sendBody(server.url, method, path, token, jsonOfSize(size, fields), chunked))
        if (reply._tag === "Left") {
          tally.requests++
          failures.push(`${how}: ${reply.left.message}`)
          continue
        }
        try {
          expectCatalogError(reply.right, 413, "ERR_PAYLOAD_TOO_LARGE")
        } catch (e) {
          failures.push(`${how}: ${e instanceof Error ? e.message : String(e)}`)
        }
      }
    }
    expect(failures, failures.join("\n")).toEqual([])
    expect(yield* rows()).toBe(before)
  })

const env = (url: string) => ({
  OPENAI_API_KEY: "sk-sim-1",
  OPENAI_BASE_URL: `${url}/v1`,
  PARLEY_DEFAULT_PROVIDER: "openai",
  PARLEY_DEFAULT_MODEL: "gpt-4o-mini",
  PARLEY_MAX_BODY_BYTES: String(MAX_BODY),
  PARLEY_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS)
})

layer(TestServer.withSimulator(env), { timeout: 60_000, excludeTestServices: true })("abuse: sizes and slow clients", (it) => {
  it.effect("bodies over the limit with Content-Length are 413 with the catalog body; nothing is written", () =>
    oversized(false))

  it.effect("bodies over the limit sent chunked (no Content-Length) are 413 with the catalog body; nothing is written", () =>
    oversized(true))

  it.effect("a body of exactly the limit is served, either way it is sent", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      for (const chunked of [false, true]) {
        // the user's content fills the body to exactly MAX_BODY bytes
        const empty = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "" }] })
        const content = "y".repeat(MAX_BODY - Buffer.byteLength(empty))
        const exact = Buffer.from(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }] }))
        expect(exact.length).toBe(MAX_BODY)
        const reply = yield* sendBody(server.url, "POST", "/v1/chat/completions", u.key, exact, chunked)
        expect(reply.status, reply.text.slice(0, 300)).toBe(200)
        expect(String(at(reply.json, "choices", 0, "message", "content"))).toContain("yyyy")
      }
    }))

  it.effect("a 64 KiB header is 431 with the catalog body, not a 500", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const head = `GET /v1/me HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer ${u.key}\r\nX-Pad: ${"a".repeat(64 * 1024)}\r\n\r\n`
      const { response, closedAfterMs } = yield* rawExchange(server.url, head, 5_000)
      const headers = new Headers(
        response.slice(0, response.indexOf("\r\n\r\n")).split("\r\n").slice(1).flatMap((line): Array<[string, string]> => {
          const colon = line.indexOf(":")
          return colon === -1 ? [] : [[line.slice(0, colon).trim(), line.slice(colon + 1).trim()]]
        })
      )
      const reply = toReply(statusOf(response), headers, bodyOf(response))
      const code = String(at(reply.json, "error", "code"))
      // Node rejects it before Parley's middleware runs; the answer still carries a request id of its own
      console.log(
        `[abuse/limits] 64 KiB header: status ${reply.status}, code ${code} (catalog status ${statusOfCode.get(code) ?? "none"}), ` +
          `x-request-id: ${headers.get("x-request-id") ?? "none"}`
      )
      expect(reply.status, response.slice(0, 200)).toBe(431)
      expect(at(reply.json, "error", "message"), reply.text).toEqual(expect.any(String))
      expect(at(reply.json, "error", "type"), reply.text).toEqual(expect.any(String))
      expect(at(reply.json, "error", "param"), reply.text).toBe(null)
      expect(String(at(reply.json, "error", "error_id")), reply.text).toMatch(/^err_[0-9a-f]{32}$/)
      expect(statusOfCode.has(code), `${code} is a catalog code`).toBe(true)
      expect(headers.get("x-request-id") ?? "", "a request id like every other response").toMatch(/^req_[0-9a-f-]{36}$/)
      expect(closedAfterMs, "the server closes the connection").not.toBe(null)
      // the server is fine afterwards
      expect((yield* request("GET", "/v1/me", { token: u.key })).status).toBe(200)
    }))

  it.effect("slow-header clients do not starve anyone else", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const slow = Array.from({ length: 50 }, () => slowClient(server.url, 500))
      yield* Effect.addFinalizer(() => Effect.sync(() => slow.forEach((s) => s.stop())))
      yield* Effect.sleep("1 second")
      const started = Date.now()
      const replies = yield* Effect.all(
        Array.from({ length: 20 }, () => request("GET", "/v1/me", { token: u.key })),
        { concurrency: "unbounded" }
      )
      const servedAt = Date.now()
      expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200))
      expect(servedAt - started).toBeLessThan(5_000)
      // they were served while every slow client still held its connection
      expect(slow.filter((s) => (s.closedAt() ?? Infinity) < servedAt).length, "slow clients cut before the others were served").toBe(0)
    }).pipe(Effect.scoped))

  it.effect(`a slow-header client is cut off by the headers timeout (PARLEY_HEADERS_TIMEOUT_MS=${HEADERS_TIMEOUT_MS})`, () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const slow = slowClient(server.url, 200)
      yield* Effect.addFinalizer(() => Effect.sync(() => slow.stop()))
      // Node checks the timeout every connectionsCheckingInterval: allow the timeout plus a few seconds
      const bound = HEADERS_TIMEOUT_MS + 6_000
      const deadline = Date.now() + bound
      while (slow.closedAfterMs() === null && Date.now() < deadline) yield* Effect.sleep("100 millis")
      const closed = slow.closedAfterMs()
      console.log(`[abuse/limits] slowloris: closed after ${closed ?? "(still open)"} ms, answer ${JSON.stringify(slow.received().split("\r\n")[0] ?? "")}`)
      expect(closed, `still connected after ${bound} ms of trickled headers`).not.toBe(null)
      expect(closed ?? Infinity).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100)
      expect(statusOf(slow.received()) === 0 || statusOf(slow.received()) === 408).toBe(true)
    }).pipe(Effect.scoped))
})
