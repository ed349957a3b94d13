/**
 * Abuse: bad credentials. Forged, expired, unsigned (`alg: none`), wrongly
 * addressed or incomplete JWTs, JWTs for no user, revoked keys, keys of
 * deleted users and malformed Authorization headers — on many endpoints,
 * each always 401 ERR_UNAUTHENTICATED with the catalog body, never a write.
 * A valid JWT whose `sub` is a user works.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { at, call, createUser, expectCatalogError, type Reply, type RequestOptions } from "../support/Http.js"
import { type JwtSettings, jwtEnv, signJwt, tampered, unsecuredJwt, withHeader } from "../support/Jwt.js"
import * as TestServer from "../support/TestServer.js"

const jwt: JwtSettings = {
  secret: randomBytes(32).toString("hex"),
  issuer: "https://issuer.parley.test",
  audience: "parley-api"
}

const tally = { requests: 0, serverErrors: 0, leaks: 0 }
afterAll(() => {
  console.log(`[abuse/credentials] requests sent: ${tally.requests}, 500s seen: ${tally.serverErrors}, leaks seen: ${tally.leaks}`)
})

const request = (method: string, path: string, options: RequestOptions = {}) =>
  Effect.map(call(method, path, options), (reply): Reply => {
    tally.requests++
    if (reply.status >= 500) tally.serverErrors++
    return reply
  })

/** A credential presented as the raw Authorization header (undefined: no header at all). */
interface Credential {
  readonly name: string
  readonly header: string | undefined
}

/** Data that exists and that a bad credential must neither see nor change. */
const victim = Effect.gen(function*() {
  const server = yield* TestServer.TestServer
  const u = yield* createUser(server)
  const session = yield* request("POST", "/v1/sessions", { token: u.key, body: { title: `secret ${randomUUID()}` } })
  expect(session.status, session.text).toBe(201)
  return { ...u, sessionId: String(at(session.json, "id")), title: String(at(session.json, "title")) }
})

/** Endpoints of every kind: reads, writes, admin, chat; with and without path ids. */
const endpoints = (ids: { sessionId: string; keyId: string }): ReadonlyArray<readonly [string, string, unknown]> => [
  ["GET", "/v1/me", undefined],
  ["GET", "/v1/sessions", undefined],
  ["POST", "/v1/sessions", { title: "intruder" }],
  ["GET", `/v1/sessions/${ids.sessionId}`, undefined],
  ["GET", `/v1/sessions/${ids.sessionId}/messages`, undefined],
  ["POST", `/v1/sessions/${ids.sessionId}/messages`, { content: "hello", stream: false }],
  ["PATCH", `/v1/sessions/${ids.sessionId}`, { title: "owned" }],
  ["GET", "/v1/agents", undefined],
  ["POST", "/v1/memories", { content: "intruder fact" }],
  ["GET", "/v1/mcp-servers", undefined],
  ["POST", "/v1/chat/completions", { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }],
  ["GET", "/v1/models", undefined],
  ["DELETE", `/v1/keys/${ids.keyId}`, undefined],
  ["GET", "/v1/admin/status", undefined],
  ["POST", "/v1/admin/users", { email: `intruder-${randomUUID()}@example.com` }]
]

const writes = (server: TestServer.TestServerInfo) =>
  Effect.map(
    server.sql<{ n: number }>`
      SELECT (SELECT count(*) FROM sessions)::int + (SELECT count(*) FROM memories)::int
           + (SELECT count(*) FROM users)::int + (SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL)::int AS n`,
    (rows) => rows[0]?.n
  ).pipe(Effect.orDie)

/** Every credential on every endpoint: 401 with the catalog body, and nothing written. */
const expectAllRejected = (credentials: ReadonlyArray<Credential>) =>
  Effect.gen(function*() {
    const server = yield* TestServer.TestServer
    const v = yield* victim
    const before = yield* writes(server)
    const failures: Array<string> = []
    for (const credential of credentials) {
      for (const [method, path, body] of endpoints({ sessionId: v.sessionId, keyId: v.keyId })) {
        const reply = yield* request(method, path, {
          body,
          headers: credential.header === undefined ? {} : { authorization: credential.header }
        })
        try {
          expectCatalogError(reply, 401, "ERR_UNAUTHENTICATED")
          expect(at(reply.json, "error", "type")).toBe("authentication_error")
        } catch (e) {
          failures.push(`${credential.name} on ${method} ${path}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`)
        }
        if (reply.text.includes(v.title) || reply.text.includes(v.id)) {
          tally.leaks++
          failures.push(`${credential.name} on ${method} ${path}: victim data in ${reply.text}`)
        }
      }
    }
    expect(failures, failures.join("\n")).toEqual([])
    expect(yield* writes(server)).toBe(before)
    // the victim's own key was not revoked along the way
    expect((yield* request("GET", "/v1/me", { token: v.key })).status).toBe(200)
  })

layer(TestServer.layer({ env: jwtEnv(jwt) }), { timeout: 60_000, excludeTestServices: true })("abuse: credentials", (it) => {
  it.effect("a valid JWT whose sub is a user reaches /v1/me and the user's data", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const token = yield* signJwt(jwt, { sub: u.id })
      const me = yield* request("GET", "/v1/me", { token })
      expect(me.status, me.text).toBe(200)
      expect(at(me.json, "id")).toBe(u.id)
      const created = yield* request("POST", "/v1/sessions", { token, body: { title: "via jwt" } })
      expect(created.status, created.text).toBe(201)
      const listed = yield* request("GET", "/v1/sessions", { token: u.key })
      expect(at(listed.json, "data", 0, "id")).toBe(at(created.json, "id"))
    }))

  it.effect("bad JWTs are 401 everywhere: forged, expired, alg none, wrong aud/iss, missing exp/sub, no such user", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      const gone = yield* createUser(server)
      expect((yield* request("DELETE", `/v1/admin/users/${gone.id}`, { token: server.adminToken })).status).toBe(204)
      const good = yield* signJwt(jwt, { sub: u.id })
      const bearer = (token: string) => `Bearer ${token}`
      const credentials: Array<Credential> = [
        { name: "forged (wrong secret)", header: bearer(yield* signJwt(jwt, { sub: u.id, secret: randomBytes(32).toString("hex") })) },
        { name: "expired", header: bearer(yield* signJwt(jwt, { sub: u.id, expiresIn: -120 })) },
        { name: "alg none", header: bearer(unsecuredJwt(jwt, u.id)) },
        { name: "alg none header on a signed token", header: bearer(withHeader(good, { alg: "none", typ: "JWT" })) },
        { name: "alg HS512 (not the pinned HS256)", header: bearer(yield* signJwt(jwt, { sub: u.id, alg: "HS512" })) },
        { name: "wrong audience", header: bearer(yield* signJwt(jwt, { sub: u.id, aud: "someone-else" })) },
        { name: "no audience", header: bearer(yield* signJwt(jwt, { sub: u.id, aud: null })) },
        { name: "wrong issuer", header: bearer(yield* signJwt(jwt, { sub: u.id, iss: "https://evil.example" })) },
        { name: "no issuer", header: bearer(yield* signJwt(jwt, { sub: u.id, iss: null })) },
        { name: "missing exp", header: bearer(yield* signJwt(jwt, { sub: u.id, expiresIn: null })) },
        { name: "missing sub", header: bearer(yield* signJwt(jwt, {})) },
        { name: "sub is no user", header: bearer(yield* signJwt(jwt, { sub: randomUUID() })) },
        { name: "sub is not a uuid", header: bearer(yield* signJwt(jwt, { sub: "admin" })) },
        { name: "sub of a deleted user", header: bearer(yield* signJwt(jwt, { sub: gone.id })) },
        { name: "claims edited after signing", header: bearer(tampered(good, { sub: gone.id, exp: 4_102_444_800 })) },
        { name: "signature stripped", header: bearer(good.split(".").slice(0, 2).join(".") + ".") }
      ]
      yield* expectAllRejected(credentials)
    }))

  it.effect("revoked keys, keys of deleted users and near-miss admin tokens are 401 everywhere", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const revoked = yield* createUser(server)
      expect((yield* request("DELETE", `/v1/keys/${revoked.keyId}`, { token: revoked.key })).status).toBe(204)
      const deleted = yield* createUser(server)
      expect((yield* request("DELETE", `/v1/admin/users/${deleted.id}`, { token: server.adminToken })).status).toBe(204)
      yield* expectAllRejected([
        { name: "revoked key", header: `Bearer ${revoked.key}` },
        { name: "key of a deleted user", header: `Bearer ${deleted.key}` },
        { name: "key with a character changed", header: `Bearer ${revoked.key.slice(0, -1)}${revoked.key.endsWith("a") ? "b" : "a"}` },
        { name: "admin token plus a character", header: `Bearer ${server.adminToken}x` },
        { name: "admin token minus a character", header: `Bearer ${server.adminToken.slice(0, -1)}` }
      ])
    }))

  it.effect("malformed Authorization headers are 401 everywhere", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* createUser(server)
      yield* expectAllRejected([
        { name: "no header", header: undefined },
        { name: "empty header", header: "" },
        { name: "scheme only", header: "Bearer" },
        { name: "Basic credentials", header: `Basic ${Buffer.from(`${u.email}:${u.key}`).toString("base64")}` },
        { name: "valid key without a scheme", header: u.key },
        { name: "valid key after another 6-letter scheme", header: `Beaxer ${u.key}` },
        { name: "valid key after the Token scheme", header: `Token  ${u.key}` },
        { name: "two tokens", header: `Bearer ${u.key} ${u.key}` },
        { name: "garbage", header: "Bearer !!$%^&*()" },
        { name: "unknown pk_ key", header: `Bearer pk_${randomBytes(24).toString("hex")}` },
        { name: "three dots", header: "Bearer a.b.c" },
        { name: "not base64 JWT", header: "Bearer ~~~.~~~.~~~" },
        { name: "very long token", header: `Bearer ${"a".repeat(12_000)}` },
        { name: "very long pk_ key", header: `Bearer pk_${"x".repeat(12_000)}` },
        { name: "very long JWT-shaped token", header: `Bearer ${"e".repeat(4_000)}.${"e".repeat(4_000)}.${"e".repeat(4_000)}` }
      ])
    }))
})
