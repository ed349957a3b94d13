import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { at, call, createUser, str } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

const env = (url: string) => ({
  OPENAI_API_KEY: "sk-sim-1",
  OPENAI_BASE_URL: `${url}/v1`,
  PARLEY_DEFAULT_MODEL: "gpt-4o-mini",
  PARLEY_MEMORY_MODEL: "sim-memory",
  PARLEY_JOBS_POLL_MS: "50",
  PARLEY_JOB_BACKOFF_MS: "50",
  PARLEY_JOB_MAX_ATTEMPTS: "1",
  PARLEY_JOB_TIMEOUT_MS_MEMORY_EXTRACT: "1500"
})

const setup = Effect.gen(function*() {
  const server = yield* TestServer.TestServer
  const u = yield* createUser(server)
  const agent = yield* call("POST", "/v1/agents", { token: u.key, body: { name: "friend", memory_enabled: true } })
  const agentId = str(agent.json, "id")
  const session = () => Effect.map(call("POST", "/v1/sessions", { token: u.key, body: { agent_id: agentId } }), (r) => str(r.json, "id"))
  return { u, session }
})

const memoryStatusOf = (key: string, sessionId: string) =>
  Effect.map(call("GET", `/v1/sessions/${sessionId}/messages`, { token: key }), (r) => at(r.json, "data", 1, "memory_status"))

const waitForStatus = (key: string, sessionId: string, want: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const status = yield* memoryStatusOf(key, sessionId)
      if (status === want) return status
      yield* Effect.sleep("50 millis")
    }
    return yield* memoryStatusOf(key, sessionId)
  })

layer(TestServer.withSimulator(env), { timeout: 60_000, excludeTestServices: true })("memory extraction jobs", (it) => {
  it.effect("a reply produces a memory that the next session's prompt contains", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      sim.scriptFor("sim-memory", { kind: "ok", content: "Sure: {\"facts\": [\"The user's favourite tea is sencha\"]}" })
      const { session, u } = yield* setup
      const first = yield* session()
      const reply = yield* call("POST", `/v1/sessions/${first}/messages`, { token: u.key, body: { content: "I drink sencha every morning" } })
      expect(at(reply.json, "assistant_message", "memory_status")).toBe("pending")
      expect(yield* waitForStatus(u.key, first, "saved")).toBe("saved")
      const listed = yield* call("GET", "/v1/memories", { token: u.key })
      expect(at(listed.json, "data", 0, "content")).toBe("The user's favourite tea is sencha")
      const second = yield* session()
      yield* call("POST", `/v1/sessions/${second}/messages`, { token: u.key, body: { content: "what tea should I buy" } })
      const prompt = JSON.stringify(sim.requests.at(-1)?.body)
      expect(prompt).toContain("favourite tea is sencha")
    }))

  it.effect("extraction that fails upstream leaves memory_status = failed on the message", () =>
    Effect.gen(function*() {
      const sim = yield* TestServer.Sim
      sim.reset()
      sim.scriptFor("sim-memory", { kind: "status", status: 400 })
      const { session, u } = yield* setup
      const sid = yield* session()
      yield* call("POST", `/v1/sessions/${sid}/messages`, { token: u.key, body: { content: "remember this" } })
      expect(yield* waitForStatus(u.key, sid, "failed")).toBe("failed")
    }))

  it.effect("an extraction that hangs is ended at its time limit with ERR_TASK_TIMEOUT; the message says failed", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const sim = yield* TestServer.Sim
      sim.reset()
      sim.scriptFor("sim-memory", { kind: "hang" })
      const { session, u } = yield* setup
      const sid = yield* session()
      yield* call("POST", `/v1/sessions/${sid}/messages`, { token: u.key, body: { content: "remember that too" } })
      expect(yield* waitForStatus(u.key, sid, "failed")).toBe("failed")
      const jobs = yield* server.sql<{ state: string; lastErrorCode: string }>`
        SELECT state, last_error_code FROM jobs WHERE user_id = ${u.id}`
      expect(jobs).toEqual([{ state: "dead", lastErrorCode: "ERR_TASK_TIMEOUT" }])
      const status = yield* call("GET", "/v1/admin/status", { token: server.adminToken })
      expect(JSON.stringify(at(status.json, "jobs", "recent_failures"))).toContain("ERR_TASK_TIMEOUT")
    }))
})
