/**
 * Abuse: another user's IDs on every resource route. A victim owns one of
 * everything (session with messages, feedback, agent, memory, MCP server,
 * key, an idempotent chat); an attacker replays the victim's IDs, cursors
 * and idempotency keys on every route. Always 404 ERR_NOT_FOUND (or the
 * attacker's own, empty view), never a field of the victim's in any body,
 * never a change to the victim's rows, never an upstream call.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { at, call, createUser, expectCatalogError, type Reply, type RequestOptions, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const tally = { requests: 0, serverErrors: 0, leaks: 0 }
afterAll(() => {
  console.log(`[abuse/cross-user] requests sent: ${tally.requests}, 500s seen: ${tally.serverErrors}, leaks seen: ${tally.leaks}`)
})

const request = (method: string, path: string, options: RequestOptions = {}) =>
  Effect.map(call(method, path, options), (reply): Reply => {
    tally.requests++
    if (reply.status >= 500) tally.serverErrors++
    return reply
  })

const created = (what: string, reply: Reply, status = 201) => {
  if (reply.status !== status) throw new Error(`${what}: ${reply.status} ${reply.text}`)
  return reply
}

/** One of everything, owned by a fresh user, with a unique marker in every text field. */
const makeVictim = Effect.gen(function*() {
  const server = yield* TestServer.TestServer
  const u = yield* createUser(server)
  const mark = (field: string) => `victim-${field}-${randomUUID()}`
  const secrets = {
    title: mark("title"), meta: mark("meta"), content: mark("content"), agentName: mark("agent"),
    prompt: mark("prompt"), memory: mark("memory"), mcpName: mark("mcp"), mcpSecret: mark("secret"), comment: mark("comment")
  }
  const agent = created("agent", yield* request("POST", "/v1/agents", {
    token: u.key,
    body: { name: secrets.agentName, system_prompt: secrets.prompt }
  }))
  const agentId = str(agent.json, "id")
  const session = created("session", yield* request("POST", "/v1/sessions", {
    token: u.key,
    body: { title: secrets.title, agent_id: agentId, metadata: { note: secrets.meta } }
  }))
  const sessionId = str(session.json, "id")
  // a second session, so the victim's list has a next_cursor for the attacker to replay
  created("session", yield* request("POST", "/v1/sessions", { token: u.key, body: { title: secrets.title } }))
  const turn = created("turn", yield* request("POST", `/v1/sessions/${sessionId}/messages`, {
    token: u.key,
    body: { content: secrets.content, stream: false, model: "openai/gpt-4o-mini" }
  }), 200)
  const userMessageId = str(turn.json, "user_message", "id")
  const assistantMessageId = str(turn.json, "assistant_message", "id")
  created("feedback", yield* request("POST", `/v1/messages/${assistantMessageId}/feedback`, {
    token: u.key,
    body: { rating: "up", comment: secrets.comment }
  }))
  const memory = created("memory", yield* request("POST", "/v1/memories", { token: u.key, body: { content: secrets.memory } }))
  const mcp = created("mcp server", yield* request("POST", "/v1/mcp-servers", {
    token: u.key,
    // port 9 (discard): a check that wrongly ran would fail fast, not hang
    body: { name: secrets.mcpName, url: "http://127.0.0.1:9/mcp", headers: { Authorization: `Bearer ${secrets.mcpSecret}` } }
  }))
  const page = yield* request("GET", "/v1/sessions?limit=1", { token: u.key })
  return {
    ...u,
    agentId,
    sessionId,
    userMessageId,
    assistantMessageId,
    memoryId: str(memory.json, "id"),
    mcpId: str(mcp.json, "id"),
    cursor: str(page.json, "next_cursor"),
    /** Values that must never reach another user: every marker, plus the victim's identity. */
    secrets: [...Object.values(secrets), u.email, u.id, u.key.slice(0, 12)]
  }
})
type Victim = Effect.Effect.Success<typeof makeVictim>

/** Everything the victim owns, as stored: compared before and after the attack. */
const snapshot = (v: Victim) =>
  Effect.flatMap(TestServer.TestServer, ({ sql }) =>
    Effect.all([
      sql`SELECT id, title, agent_id, metadata, version, next_seq, updated_at FROM sessions WHERE user_id = ${v.id} ORDER BY id`,
      sql`SELECT id, seq, role, content, status FROM messages WHERE user_id = ${v.id} ORDER BY seq`,
      sql`SELECT id, rating, comment, updated_at FROM feedback WHERE user_id = ${v.id}`,
      sql`SELECT id, name, system_prompt, model, parameters, updated_at FROM agents WHERE user_id = ${v.id}`,
      sql`SELECT id, content FROM memories WHERE user_id = ${v.id}`,
      sql`SELECT id, name, url, headers, last_checked_at, last_status, updated_at FROM mcp_servers WHERE user_id = ${v.id}`,
      sql`SELECT id, revoked_at FROM api_keys WHERE user_id = ${v.id}`
    ]).pipe(Effect.map((tables) => JSON.stringify(tables)), Effect.orDie))

const leaksIn = (v: Victim, reply: Reply) => v.secrets.filter((s) => reply.text.includes(s))

layer(TestServer.withSimulator(), { timeout: 60_000, excludeTestServices: true })("abuse: another user's IDs", (it) => {
  it.effect("every resource route with another user's id is 404, leaks nothing and changes nothing", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      const v = yield* makeVictim
      const attacker = yield* createUser(server)
      const own = created("attacker session", yield* request("POST", "/v1/sessions", { token: attacker.key, body: {} }))
      const ownSession = str(own.json, "id")
      const before = yield* snapshot(v)
      const upstreamBefore = sim.requests.length

      const routes: ReadonlyArray<readonly [string, string, unknown]> = [
        ["GET", `/v1/sessions/${v.sessionId}`, undefined],
        ["PATCH", `/v1/sessions/${v.sessionId}`, { title: "pwned" }],
        ["PATCH", `/v1/sessions/${v.sessionId}`, { metadata: {} }],
        ["GET", `/v1/sessions/${v.sessionId}/messages`, undefined],
        ["GET", `/v1/sessions/${v.sessionId}/messages?limit=1`, undefined],
        ["POST", `/v1/sessions/${v.sessionId}/messages`, { content: "what did we talk about?", stream: false, model: "openai/gpt-4o-mini" }],
        ["POST", `/v1/sessions/${v.sessionId}/messages`, { content: "what did we talk about?", stream: true, model: "openai/gpt-4o-mini" }],
        ["POST", `/v1/messages/${v.assistantMessageId}/feedback`, { rating: "down", comment: "pwned" }],
        ["POST", `/v1/messages/${v.userMessageId}/feedback`, { rating: "down" }],
        ["GET", `/v1/agents/${v.agentId}`, undefined],
        ["PATCH", `/v1/agents/${v.agentId}`, { system_prompt: "pwned" }],
        ["POST", "/v1/sessions", { agent_id: v.agentId }],
        ["PATCH", `/v1/sessions/${ownSession}`, { agent_id: v.agentId }],
        ["GET", `/v1/mcp-servers/${v.mcpId}`, undefined],
        ["PATCH", `/v1/mcp-servers/${v.mcpId}`, { url: "http://127.0.0.1:9/stolen" }],
        ["POST", `/v1/mcp-servers/${v.mcpId}/check`, undefined],
        ["DELETE", `/v1/memories/${v.memoryId}`, undefined],
        ["DELETE", `/v1/mcp-servers/${v.mcpId}`, undefined],
        ["DELETE", `/v1/agents/${v.agentId}`, undefined],
        ["DELETE", `/v1/keys/${v.keyId}`, undefined],
        ["DELETE", `/v1/sessions/${v.sessionId}`, undefined]
      ]
      const failures: Array<string> = []
      for (const [method, path, body] of routes) {
        const reply = yield* request(method, path, { token: attacker.key, body })
        try {
          expectCatalogError(reply, 404, "ERR_NOT_FOUND")
        } catch (e) {
          failures.push(`${method} ${path}: ${e instanceof Error ? e.message : String(e)}`)
        }
        const leaked = leaksIn(v, reply)
        if (leaked.length > 0) {
          tally.leaks++
          failures.push(`${method} ${path} leaked ${leaked.join(", ")}`)
        }
      }
      expect(failures, failures.join("\n")).toEqual([])
      expect(yield* snapshot(v)).toBe(before)
      // nothing the attacker did reached a provider, nor counted against the attacker's quota
      expect(sim.requests.length).toBe(upstreamBefore)
      expect(at((yield* request("GET", "/v1/me", { token: attacker.key })).json, "usage", "requests")).toBe(0)
      // and the victim's things still work for the victim
      expect((yield* request("GET", `/v1/sessions/${v.sessionId}/messages`, { token: v.key })).status).toBe(200)
      expect((yield* request("GET", "/v1/me", { token: v.key })).status).toBe(200)
    }))

  it.effect("lists, searches and replayed cursors show the attacker only the attacker's data", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const v = yield* makeVictim
      const attacker = yield* createUser(server)
      const reads = [
        "/v1/sessions",
        `/v1/sessions?cursor=${encodeURIComponent(v.cursor)}`,
        "/v1/sessions?limit=100",
        "/v1/agents",
        "/v1/memories",
        `/v1/memories?query=${encodeURIComponent(v.secrets[5] ?? "victim")}`,
        "/v1/memories?query=victim",
        "/v1/mcp-servers",
        "/v1/me"
      ]
      const failures: Array<string> = []
      for (const path of reads) {
        const reply = yield* request("GET", path, { token: attacker.key })
        if (reply.status !== 200) failures.push(`GET ${path}: ${reply.status} ${reply.text}`)
        const data = at(reply.json, "data")
        if (path !== "/v1/me" && !(Array.isArray(data) && data.length === 0)) failures.push(`GET ${path}: not an empty page: ${reply.text}`)
        const leaked = leaksIn(v, reply)
        if (leaked.length > 0) {
          tally.leaks++
          failures.push(`GET ${path} leaked ${leaked.join(", ")}`)
        }
      }
      expect(failures, failures.join("\n")).toEqual([])
    }))

  it.effect("an idempotency key is the caller's own: another user's key never replays its result", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      const v = yield* createUser(server)
      const key = `idem-${randomUUID()}`
      const secret = `victim-chat-${randomUUID()}`
      const ask = (token: string, content: string) =>
        request("POST", "/v1/chat/completions", {
          token,
          headers: { "idempotency-key": key },
          body: { model: "openai/gpt-4o-mini", messages: [{ role: "user", content }] }
        })
      const first = yield* ask(v.key, secret)
      expect(first.status, first.text).toBe(200)
      const upstream = sim.requests.length
      // the same key with another body (no 409 that would confirm the key exists), and with the
      // same body (no replay of the victim's answer): each is a new request of that attacker's
      for (const content of ["something else", secret]) {
        const attacker = yield* createUser(server)
        const reply = yield* ask(attacker.key, content)
        expect(reply.status, reply.text).toBe(200)
        expect(at(reply.json, "id")).not.toBe(at(first.json, "id"))
        expect(reply.text.includes(v.id)).toBe(false)
      }
      expect(sim.requests.length).toBe(upstream + 2)
      const replay = yield* ask(v.key, secret)
      expect(at(replay.json, "id")).toBe(at(first.json, "id"))
    }))
})
