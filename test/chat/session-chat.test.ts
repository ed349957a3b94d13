import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { at, call, createUser, expectCatalogError, type Reply, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const env = (extra: Record<string, string> = {}) => (url: string) => ({
  OPENAI_API_KEY: "sk-sim-1",
  OPENAI_BASE_URL: `${url}/v1`,
  PARLEY_DEFAULT_PROVIDER: "openai",
  PARLEY_DEFAULT_MODEL: "gpt-4o-mini",
  PARLEY_RATE_LIMIT_PER_MINUTE: "0",
  PARLEY_BLOCKED_PATTERNS: JSON.stringify(["forbidden\\s+word"]),
  ...extra
})

const newSession = (key: string, body: Record<string, unknown> = {}) =>
  Effect.map(call("POST", "/v1/sessions", { token: key, body }), (r) => {
    if (r.status !== 201) throw new Error(`session: ${r.status} ${r.text}`)
    return str(r.json, "id")
  })

const turn = (key: string, sessionId: string, content: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  call("POST", `/v1/sessions/${sessionId}/messages`, { token: key, body: { content, ...extra }, headers })

/** SSE events as [name, data] pairs. */
const events = (r: Reply) =>
  r.text.split("\n\n").filter((b) => b.trim() !== "").map((block) => {
    const name = /^event: (.*)$/m.exec(block)?.[1] ?? ""
    const data = /^data: (.*)$/m.exec(block)?.[1] ?? "null"
    return [name, JSON.parse(data)] as const
  })

const history = (key: string, sessionId: string) =>
  Effect.map(call("GET", `/v1/sessions/${sessionId}/messages?limit=100`, { token: key }), (r) => {
    const data = at(r.json, "data")
    if (!Array.isArray(data)) throw new Error(`history: ${r.status} ${r.text}`)
    return data
  })

const user = (limits: { daily_request_limit?: number } = {}) => Effect.flatMap(TestServer.TestServer, (s) => createUser(s, limits))

layer(TestServer.withSimulator(env()), { timeout: 120_000, excludeTestServices: true })("chat in a session", (it) => {
  it.effect("a JSON turn stores both messages; the first message titles the session", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* user()
      const sid = yield* newSession(u.key)
      const res = yield* turn(u.key, sid, "hello parley")
      expect(res.status).toBe(200)
      expect(at(res.json, "user_message", "seq")).toBe(1)
      expect(at(res.json, "assistant_message", "seq")).toBe(2)
      expect(at(res.json, "assistant_message", "content")).toBe("Echo: hello parley")
      expect(at(res.json, "assistant_message", "status")).toBe("completed")
      expect(at(res.json, "assistant_message", "usage", "output_tokens")).toBeGreaterThan(0)
      const session = yield* call("GET", `/v1/sessions/${sid}`, { token: u.key })
      expect(at(session.json, "title")).toBe("hello parley")
      expect(at(session.json, "message_count")).toBe(2)
      // the second turn carries the history
      yield* turn(u.key, sid, "and again")
      const sent = sim.requests.at(-1)?.body
      expect(JSON.stringify(sent)).toContain("hello parley")
      expect(JSON.stringify(sent)).toContain("Echo: hello parley")
    }))

  it.effect("SSE: message.created → message.delta… → message.completed → done", () =>
    Effect.gen(function*() {
      const u = yield* user()
      const sid = yield* newSession(u.key)
      const res = yield* turn(u.key, sid, "stream this please", { stream: true })
      expect(res.status).toBe(200)
      const ev = events(res)
      expect(ev[0]?.[0]).toBe("message.created")
      expect(at(ev[0]?.[1], "role")).toBe("user")
      expect(ev.at(-2)?.[0]).toBe("message.completed")
      expect(ev.at(-1)?.[0]).toBe("done")
      const deltas = ev.filter(([n]) => n === "message.delta").map(([, d]) => String(at(d, "delta"))).join("")
      expect(deltas).toBe("Echo: stream this please")
      const h = yield* history(u.key, sid)
      expect(at(h[1], "content")).toBe("Echo: stream this please")
      expect(at(h[1], "status")).toBe("completed")
      expect(at(ev.at(-2)?.[1], "message_id")).toBe(at(h[1], "id"))
    }))

  it.effect("20 concurrent turns in one session: 40 messages, seq 1..40, each reply right after its question", () =>
    Effect.gen(function*() {
      const u = yield* user()
      const sid = yield* newSession(u.key)
      const replies = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => turn(u.key, sid, `question ${i}`),
        { concurrency: 20 }
      )
      expect(replies.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 200))
      const h = yield* history(u.key, sid)
      expect(h.map((m) => at(m, "seq"))).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      for (let i = 0; i < 40; i += 2) {
        expect(at(h[i], "role")).toBe("user")
        expect(at(h[i + 1], "role")).toBe("assistant")
        expect(at(h[i + 1], "content")).toBe(`Echo: ${String(at(h[i], "content"))}`)
      }
    }))

  it.effect("a turn waits for a busy session at most its own budget: 409 ERR_CONFLICT, not counted; the first turn completes", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      const u = yield* user()
      const sid = yield* newSession(u.key)
      sim.reset()
      // The first turn's reply takes about 1.5 s (six words, 250 ms apart).
      sim.script({ kind: "ok", content: "one two three four five six", chunkDelayMs: 250 })
      const first = yield* Effect.fork(turn(u.key, sid, "slow one", { stream: true }))
      yield* Effect.promise(() => sim.waitFor((rs) => rs.length === 1))
      const started = Date.now()
      const second = yield* turn(u.key, sid, "impatient", {}, { "x-parley-timeout-ms": "400" })
      const waited = Date.now() - started
      expectCatalogError(second, 409, "ERR_CONFLICT")
      expect(waited).toBeGreaterThanOrEqual(350)
      expect(waited).toBeLessThan(1_200)
      const done = yield* Effect.fromFiber(first)
      expect(done.status).toBe(200)
      expect(events(done).map(([name]) => name).at(-1)).toBe("done")
      expect(sim.requests.length, "the refused turn never reached the upstream").toBe(1)
      const h = yield* history(u.key, sid)
      expect(h.map((m) => at(m, "role")), "the refused turn stored nothing").toEqual(["user", "assistant"])
      expect(at(h[0], "content")).toBe("slow one")
      expect(at(h[1], "status")).toBe("completed")
      const me = yield* call("GET", "/v1/me", { token: u.key })
      expect(at(me.json, "usage", "requests"), "the refused turn was not counted").toBe(1)
    }))

  it.effect("a stream cut upstream ends with error then done; the partial reply is stored as interrupted", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      sim.script({ kind: "cut", afterChunks: 3 })
      const u = yield* user()
      const sid = yield* newSession(u.key)
      const res = yield* turn(u.key, sid, "one two three four five six seven", { stream: true })
      const ev = events(res)
      expect(ev.map(([n]) => n).slice(-2)).toEqual(["error", "done"])
      expect(at(ev.at(-2)?.[1], "code")).toBe("ERR_STREAM_INTERRUPTED")
      const h = yield* history(u.key, sid)
      expect(at(h[1], "status")).toBe("interrupted")
      expect(String(at(h[1], "content")).length).toBeGreaterThan(0)
    }))

  it.effect("a client that disconnects aborts the upstream and the partial reply is stored as interrupted", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      sim.reset()
      sim.script({ kind: "ok", content: "w ".repeat(300), chunkDelayMs: 15 })
      const u = yield* user()
      const sid = yield* newSession(u.key)
      yield* Effect.promise(async () => {
        const controller = new AbortController()
        const res = await fetch(`${server.url}/v1/sessions/${sid}/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${u.key}`, "content-type": "application/json" },
          body: JSON.stringify({ content: "talk", stream: true }),
          signal: controller.signal
        })
        const reader = res.body?.getReader()
        await reader?.read()
        await reader?.read()
        controller.abort()
      }).pipe(Effect.ignore)
      yield* Effect.promise(() => sim.waitFor((rs) => rs[0]?.aborted === true, 3_000))
      let status: unknown
      for (let i = 0; i < 50 && status !== "interrupted"; i++) {
        yield* Effect.sleep("100 millis")
        const h = yield* history(u.key, sid)
        status = at(h[1], "status")
      }
      expect(status).toBe("interrupted")
    }))

  it.effect("blocked content → 400 ERR_CONTENT_BLOCKED with zero upstream requests, not counted", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* user()
      const sid = yield* newSession(u.key)
      expectCatalogError(yield* turn(u.key, sid, "this has a Forbidden   word in it"), 400, "ERR_CONTENT_BLOCKED")
      expect(sim.requests.length).toBe(0)
      const me = yield* call("GET", "/v1/me", { token: u.key })
      expect(at(me.json, "usage", "requests")).toBe(0)
    }))

  it.effect("a repeated Idempotency-Key replays the reply: one upstream call, counted once; another body is 409", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* user()
      const sid = yield* newSession(u.key)
      const headers = { "idempotency-key": "turn-1" }
      const [a, b] = yield* Effect.all([turn(u.key, sid, "once only", {}, headers), turn(u.key, sid, "once only", {}, headers)], { concurrency: 2 })
      expect(a?.status).toBe(200)
      expect(b?.status).toBe(200)
      expect(a?.json).toEqual(b?.json)
      const c = yield* turn(u.key, sid, "once only", {}, headers)
      expect(c.json).toEqual(a?.json)
      expect(c.headers.get("idempotent-replayed")).toBe("true")
      expect(sim.requests.length).toBe(1)
      const me = yield* call("GET", "/v1/me", { token: u.key })
      expect(at(me.json, "usage", "requests")).toBe(1)
      expectCatalogError(yield* turn(u.key, sid, "something else", {}, headers), 409, "ERR_CONFLICT")
    }))

  it.effect("a reply that cannot be stored is 500 ERR_SESSION_PERSIST_FAILED, never 200 (real database failure)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const u = yield* user()
      const sid = yield* newSession(u.key)
      yield* server.sql.unsafe(`
        CREATE OR REPLACE FUNCTION parley_test_fail_assistant() RETURNS trigger AS $$
        BEGIN IF NEW.role = 'assistant' AND NEW.session_id = '${sid}' THEN RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`)
      yield* server.sql.unsafe(`CREATE TRIGGER parley_test_fail_assistant BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION parley_test_fail_assistant()`)
      const json = yield* turn(u.key, sid, "store me")
      const streamed = yield* turn(u.key, sid, "store me too", { stream: true })
      yield* server.sql.unsafe(`DROP TRIGGER parley_test_fail_assistant ON messages`)
      expectCatalogError(json, 500, "ERR_SESSION_PERSIST_FAILED")
      const ev = events(streamed)
      expect(ev.map(([n]) => n)).not.toContain("message.completed")
      expect(ev.map(([n]) => n).slice(-2)).toEqual(["error", "done"])
      expect(at(ev.at(-2)?.[1], "code")).toBe("ERR_SESSION_PERSIST_FAILED")
    }))

  it.effect("memories that cannot be read: the reply comes with an ERR_MEMORY_UNAVAILABLE warning", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* user()
      const agent = yield* call("POST", "/v1/agents", { token: u.key, body: { name: "rememberer", memory_enabled: true, system_prompt: "Be kind." } })
      expect(agent.status).toBe(201)
      const sid = yield* newSession(u.key, { agent_id: str(agent.json, "id") })
      yield* server.sql.unsafe(`ALTER TABLE memories RENAME TO memories_hidden`)
      const res = yield* turn(u.key, sid, "do you remember me")
      const streamed = yield* turn(u.key, sid, "and now", { stream: true })
      yield* server.sql.unsafe(`ALTER TABLE memories_hidden RENAME TO memories`)
      expect(res.status).toBe(200)
      expect(at(res.json, "warnings", 0, "code")).toBe("ERR_MEMORY_UNAVAILABLE")
      expect(JSON.stringify(sim.requests[0]?.body)).toContain("memory is unavailable")
      const ev = events(streamed)
      expect(ev[1]?.[0]).toBe("warning")
      expect(at(ev[1]?.[1], "code")).toBe("ERR_MEMORY_UNAVAILABLE")
    }))
})

layer(TestServer.withSimulator(env()), { timeout: 120_000, excludeTestServices: true })("exact quotas", (it) => {
  it.effect("200 concurrent requests, daily limit 50: exactly 50 reach the upstream, 150 get 429, the usage row says 50", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* user({ daily_request_limit: 50 })
      const replies = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => call("POST", "/v1/chat/completions", { token: u.key, body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `q${i}` }] } }),
        { concurrency: 200 }
      )
      const ok = replies.filter((r) => r.status === 200)
      const limited = replies.filter((r) => r.status === 429)
      expect(ok.length).toBe(50)
      expect(limited.length).toBe(150)
      for (const r of limited) expectCatalogError(r, 429, "ERR_QUOTA_EXCEEDED")
      expect(limited[0]?.headers.get("retry-after")).not.toBeNull()
      expect(sim.requests.length).toBe(50)
      const rows = yield* server.sql<{ requests: number }>`SELECT requests FROM usage_daily WHERE user_id = ${u.id}`
      expect(rows.map((r) => Number(r.requests))).toEqual([50])
    }))
})

layer(TestServer.withSimulator(env({ PARLEY_RATE_LIMIT_PER_MINUTE: "3" })), { timeout: 60_000, excludeTestServices: true })("rate limits", (it) => {
  it.effect("the 4th request in a minute is 429 ERR_RATE_LIMITED with Retry-After and RateLimit-* headers", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      const u = yield* user()
      const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }
      const first = yield* call("POST", "/v1/chat/completions", { token: u.key, body })
      expect(first.status).toBe(200)
      expect(first.headers.get("ratelimit-limit")).toBe("3")
      expect(first.headers.get("ratelimit-remaining")).toBe("2")
      yield* call("POST", "/v1/chat/completions", { token: u.key, body })
      yield* call("POST", "/v1/chat/completions", { token: u.key, body })
      const fourth = yield* call("POST", "/v1/chat/completions", { token: u.key, body })
      expectCatalogError(fourth, 429, "ERR_RATE_LIMITED")
      expect(Number(fourth.headers.get("retry-after"))).toBeGreaterThan(0)
      expect(fourth.headers.get("ratelimit-remaining")).toBe("0")
      expect(sim.requests.length).toBe(3)
      // another key of another user is not affected
      const other = yield* user()
      expect((yield* call("POST", "/v1/chat/completions", { token: other.key, body })).status).toBe(200)
    }))
})
