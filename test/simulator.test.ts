import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import Anthropic from "@anthropic-ai/sdk"
import OpenAI from "openai"
import { Effect } from "effect"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { type RecordedRequest, type Simulator, SimulatorResource, startSimulator } from "./support/Simulator.js"

// ---------------------------------------------------------------------------
// Helpers

interface SseEvent {
  readonly event: string | undefined
  readonly data: string
}

const parseSse = (text: string): Array<SseEvent> =>
  text
    .split("\n\n")
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      let event: string | undefined
      const data: Array<string> = []
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7)
        else if (line.startsWith("data: ")) data.push(line.slice(6))
      }
      return { event, data: data.join("\n") }
    })

type Json = Record<string, unknown>
const isJson = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)
const asJson = (u: unknown): Json => {
  if (!isJson(u)) throw new Error(`not a JSON object: ${JSON.stringify(u)}`)
  return u
}
const parseJson = (s: string): Json => asJson(JSON.parse(s))
const path = (u: unknown, ...keys: Array<string | number>): unknown => {
  let cur = u
  for (const k of keys) {
    if (typeof k === "number") cur = Array.isArray(cur) ? cur[k] : undefined
    else cur = isJson(cur) ? cur[k] : undefined
  }
  return cur
}

/** Reads a body to the end; returns the text received and the error that ended it, if any. */
const readBody = async (res: Response): Promise<{ text: string; error: unknown }> => {
  const body = res.body
  if (body === null) return { text: "", error: undefined }
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let text = ""
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { text: text + decoder.decode(), error: undefined }
      text += decoder.decode(value, { stream: true })
    }
  } catch (error) {
    return { text, error: error ?? new Error("stream failed") }
  }
}

const userMessages = (text: string) => [{ role: "user", content: text }]

const openAi = (sim: Simulator, body: Json, init: { key?: string; signal?: AbortSignal } = {}) =>
  fetch(`${sim.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${init.key ?? "k"}` },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: userMessages("hello big world"), ...body }),
    ...(init.signal !== undefined ? { signal: init.signal } : {})
  })

const anthropic = (sim: Simulator, body: Json, key = "k") =>
  fetch(`${sim.url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01" },
    body: JSON.stringify({ model: "claude-sim", max_tokens: 64, messages: userMessages("hello big world"), ...body })
  })

const control = async (sim: Simulator, route: string, body?: unknown): Promise<Response> =>
  fetch(`${sim.url}/_sim/${route}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) })

const openAiContent = (events: ReadonlyArray<SseEvent>): Array<string> =>
  events.flatMap((e) => {
    if (e.data === "[DONE]") return []
    const c = path(parseJson(e.data), "choices", 0, "delta", "content")
    return typeof c === "string" && c.length > 0 ? [c] : []
  })

const anthropicContent = (events: ReadonlyArray<SseEvent>): Array<string> =>
  events.flatMap((e) => {
    if (e.event !== "content_block_delta") return []
    const t = path(parseJson(e.data), "delta", "text")
    return typeof t === "string" ? [t] : []
  })

const hasNoDone = (events: ReadonlyArray<SseEvent>): boolean => events.every((e) => e.data !== "[DONE]")

// ---------------------------------------------------------------------------

describe("upstream simulator", () => {
  let sim: Simulator
  beforeAll(async () => {
    sim = await startSimulator()
  })
  afterAll(async () => {
    await sim.close()
  })
  beforeEach(() => {
    sim.reset()
  })

  describe("OpenAI format", () => {
    it("lists models", async () => {
      const res = await fetch(`${sim.url}/v1/models`, { headers: { authorization: "Bearer k" } })
      const body = asJson(await res.json())
      expect(body["object"]).toBe("list")
      const data = body["data"]
      expect(Array.isArray(data) ? data.map((m) => path(m, "id")) : []).toEqual(["gpt-4o-mini", "gpt-4o", "sim-echo"])
      expect(path(body, "data", 0, "object")).toBe("model")
    })

    it("answers a non-stream completion with an echo and usage", async () => {
      const res = await openAi(sim, {
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "first question" },
          { role: "assistant", content: "an answer" },
          { role: "user", content: [{ type: "text", text: "last one" }] }
        ]
      })
      expect(res.status).toBe(200)
      expect(res.headers.get("content-type")).toContain("application/json")
      const body = asJson(await res.json())
      expect(body["object"]).toBe("chat.completion")
      expect(String(body["id"])).toMatch(/^chatcmpl-/)
      expect(body["model"]).toBe("gpt-4o-mini")
      expect(typeof body["created"]).toBe("number")
      expect(path(body, "choices", 0, "message")).toMatchObject({ role: "assistant", content: "Echo: last one" })
      expect(path(body, "choices", 0, "finish_reason")).toBe("stop")
      expect(path(body, "choices", 0, "logprobs")).toBeNull()
      expect(body["usage"]).toEqual({ prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 })
      const rec = sim.requests[0]
      expect(rec).toMatchObject({ id: 1, api: "openai", method: "POST", path: "/v1/chat/completions", apiKey: "k", fault: "ok", completed: true, aborted: false })
      expect(path(rec?.body, "model")).toBe("gpt-4o-mini")
    })

    it("streams chunks whose deltas concatenate to the reply, ending with [DONE]", async () => {
      const res = await openAi(sim, { stream: true, messages: userMessages("  spaced   out words ") })
      expect(res.headers.get("content-type")).toContain("text/event-stream")
      const { text, error } = await readBody(res)
      expect(error).toBeUndefined()
      const events = parseSse(text)
      expect(events.at(-1)?.data).toBe("[DONE]")
      const chunks = events.slice(0, -1).map((e) => parseJson(e.data))
      expect(chunks.every((c) => c["object"] === "chat.completion.chunk")).toBe(true)
      expect(path(chunks[0], "choices", 0, "delta")).toMatchObject({ role: "assistant", content: "" })
      const pieces = openAiContent(events)
      expect(pieces.length).toBeGreaterThan(3)
      expect(pieces.join("")).toBe("Echo:   spaced   out words ")
      const last = chunks.at(-1)
      expect(path(last, "choices", 0, "delta")).toEqual({})
      expect(path(last, "choices", 0, "finish_reason")).toBe("stop")
      expect(chunks.some((c) => Array.isArray(c["choices"]) && c["choices"].length === 0)).toBe(false)
    })

    it("adds a usage chunk with empty choices when stream_options.include_usage", async () => {
      const res = await openAi(sim, { stream: true, stream_options: { include_usage: true } })
      const events = parseSse((await readBody(res)).text)
      expect(events.at(-1)?.data).toBe("[DONE]")
      const usageChunk = parseJson(events.at(-2)?.data ?? "")
      expect(usageChunk["choices"]).toEqual([])
      expect(usageChunk["usage"]).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })
      expect(path(parseJson(events.at(-3)?.data ?? ""), "choices", 0, "finish_reason")).toBe("stop")
    })
  })

  describe("Anthropic format", () => {
    it("answers a non-stream message, counting the system prompt", async () => {
      const res = await anthropic(sim, { system: [{ type: "text", text: "you are terse" }] })
      expect(res.status).toBe(200)
      const body = asJson(await res.json())
      expect(String(body["id"])).toMatch(/^msg_/)
      expect(body).toMatchObject({
        type: "message",
        role: "assistant",
        model: "claude-sim",
        content: [{ type: "text", text: "Echo: hello big world" }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage: { input_tokens: 6, output_tokens: 4 }
      })
      expect(sim.requests[0]).toMatchObject({ api: "anthropic", path: "/v1/messages", apiKey: "k", completed: true })
    })

    it("streams events in the documented order", async () => {
      const res = await anthropic(sim, { stream: true, system: "be nice" })
      expect(res.headers.get("content-type")).toContain("text/event-stream")
      const events = parseSse((await readBody(res)).text)
      const types = events.map((e) => e.event)
      const deltas = types.filter((t) => t === "content_block_delta").length
      expect(types).toEqual([
        "message_start",
        "content_block_start",
        "ping",
        ...Array<string>(deltas).fill("content_block_delta"),
        "content_block_stop",
        "message_delta",
        "message_stop"
      ])
      for (const e of events) expect(path(parseJson(e.data), "type")).toBe(e.event)
      expect(path(parseJson(events[0]?.data ?? ""), "message", "usage", "input_tokens")).toBe(5)
      expect(anthropicContent(events).join("")).toBe("Echo: hello big world")
      const messageDelta = parseJson(events.at(-2)?.data ?? "")
      expect(messageDelta["delta"]).toEqual({ stop_reason: "end_turn", stop_sequence: null })
      expect(messageDelta["usage"]).toEqual({ output_tokens: 4 })
    })
  })

  describe("faults", () => {
    it("status: error body per API, with scripted headers visible to the client", async () => {
      sim.script(
        { kind: "status", status: 429, headers: { "Retry-After": "1" } },
        { kind: "status", status: 529, headers: { "retry-after-ms": "200" } },
        { kind: "status", status: 503, body: { custom: true } }
      )
      const r1 = await openAi(sim, {})
      expect(r1.status).toBe(429)
      expect(r1.headers.get("retry-after")).toBe("1")
      expect(await r1.json()).toEqual({
        error: { message: expect.any(String), type: "rate_limit_error", code: "rate_limit_exceeded", param: null }
      })
      const r2 = await anthropic(sim, {})
      expect(r2.status).toBe(529)
      expect(r2.headers.get("retry-after-ms")).toBe("200")
      expect(await r2.json()).toEqual({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })
      const r3 = await openAi(sim, {})
      expect(r3.status).toBe(503)
      expect(await r3.json()).toEqual({ custom: true })
      expect(sim.requests.map((r) => r.fault)).toEqual(["status", "status", "status"])
      const r4 = await openAi(sim, {})
      expect(r4.status).toBe(200)
      await r4.text()
    })

    it("hang: never answers; a client abort is recorded as aborted", async () => {
      sim.script({ kind: "hang" })
      const ac = new AbortController()
      const pending = openAi(sim, {}, { signal: ac.signal })
      await sim.waitFor((reqs) => reqs.length === 1)
      await new Promise((r) => setTimeout(r, 50))
      expect(sim.requests[0]).toMatchObject({ fault: "hang", aborted: false, completed: false })
      ac.abort()
      await expect(pending).rejects.toThrow()
      await sim.waitFor((reqs) => reqs[0]?.aborted === true)
      expect(sim.requests[0]?.completed).toBe(false)
      expect(sim.requests[0]?.closedAt).toBeGreaterThanOrEqual(sim.requests[0]?.receivedAt ?? Infinity)
    })

    it("close: destroys the socket without a response", async () => {
      sim.script({ kind: "close" })
      await expect(openAi(sim, {})).rejects.toThrow()
      await sim.waitFor((reqs) => reqs[0]?.closedAt !== undefined)
      expect(sim.requests[0]).toMatchObject({ fault: "close", aborted: false, completed: false })
    })

    it("cut: exactly N content chunks, then a socket error (both APIs)", async () => {
      sim.script({ kind: "cut", afterChunks: 3 }, { kind: "cut", afterChunks: 3 })
      const longText = "one two three four five six seven"
      const r1 = await openAi(sim, { stream: true, messages: userMessages(longText) })
      expect(r1.status).toBe(200)
      const b1 = await readBody(r1)
      expect(b1.error).toBeDefined()
      expect(openAiContent(parseSse(b1.text))).toEqual(["Echo: ", "one ", "two "])
      expect(b1.text).not.toContain("[DONE]")

      const r2 = await anthropic(sim, { stream: true, messages: userMessages(longText) })
      const b2 = await readBody(r2)
      expect(b2.error).toBeDefined()
      const events = parseSse(b2.text)
      expect(anthropicContent(events)).toEqual(["Echo: ", "one ", "two "])
      expect(events.map((e) => e.event)).not.toContain("message_stop")
      await sim.waitFor((reqs) => reqs.length === 2 && reqs.every((r) => r.closedAt !== undefined))
      expect(sim.requests.map((r) => [r.fault, r.aborted, r.completed])).toEqual([
        ["cut", false, false],
        ["cut", false, false]
      ])
    })

    it("cut on a non-stream request: headers, then the socket dies before the body", async () => {
      sim.script({ kind: "cut", afterChunks: 0 })
      const res = await openAi(sim, {})
      expect(res.status).toBe(200)
      await expect(res.json()).rejects.toThrow()
    })

    it("malformed: invalid JSON body, or an invalid JSON data line when streaming", async () => {
      sim.script({ kind: "malformed" }, { kind: "malformed" }, { kind: "malformed" })
      const r1 = await openAi(sim, {})
      expect(r1.status).toBe(200)
      const t1 = await r1.text()
      expect(() => JSON.parse(t1)).toThrow()

      const r2 = await openAi(sim, { stream: true })
      const events = parseSse((await readBody(r2)).text)
      expect(events[0]?.data).toBeDefined()
      expect(() => events.map((e) => JSON.parse(e.data))).toThrow()
      expect(hasNoDone(events)).toBe(true)

      const r3 = await anthropic(sim, { stream: true })
      const events3 = parseSse((await readBody(r3)).text)
      expect(() => events3.map((e) => JSON.parse(e.data))).toThrow()
      expect(sim.requests.map((r) => r.fault)).toEqual(["malformed", "malformed", "malformed"])
    })

    it("inbandError: N chunks then an in-band error, response ended properly", async () => {
      sim.script({ kind: "inbandError", afterChunks: 2 }, { kind: "inbandError", afterChunks: 1 })
      const r1 = await openAi(sim, { stream: true })
      const b1 = await readBody(r1)
      expect(b1.error).toBeUndefined()
      const e1 = parseSse(b1.text)
      expect(openAiContent(e1)).toEqual(["Echo: ", "hello "])
      expect(parseJson(e1.at(-1)?.data ?? "")).toEqual({
        error: { message: expect.any(String), type: "server_error", code: "internal_error", param: null }
      })
      expect(b1.text).not.toContain("[DONE]")

      const r2 = await anthropic(sim, { stream: true })
      const b2 = await readBody(r2)
      expect(b2.error).toBeUndefined()
      const e2 = parseSse(b2.text)
      expect(anthropicContent(e2)).toEqual(["Echo: "])
      expect(e2.at(-1)).toEqual({ event: "error", data: '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' })
      await sim.waitFor((reqs) => reqs.length === 2 && reqs.every((r) => r.completed))
    })

    it("ok: content override, headersDelayMs and chunkDelayMs", async () => {
      sim.script({ kind: "ok", content: "custom reply here", headersDelayMs: 120 }, { kind: "ok", chunkDelayMs: 40 })
      const t0 = Date.now()
      const r1 = await openAi(sim, {})
      expect(Date.now() - t0).toBeGreaterThanOrEqual(100)
      expect(path(await r1.json(), "choices", 0, "message", "content")).toBe("custom reply here")

      const t1 = Date.now()
      const r2 = await openAi(sim, { stream: true })
      const { text } = await readBody(r2)
      // role chunk + 4 pieces + stop chunk + [DONE] = 7 events, 6 gaps of 40ms
      expect(parseSse(text)).toHaveLength(7)
      expect(Date.now() - t1).toBeGreaterThanOrEqual(200)
    })

    it("a client abort mid-stream is recorded as aborted", async () => {
      sim.script({ kind: "ok", chunkDelayMs: 200 })
      const ac = new AbortController()
      const res = await openAi(sim, { stream: true }, { signal: ac.signal })
      const reader = res.body?.getReader()
      await reader?.read()
      ac.abort()
      await sim.waitFor((reqs) => reqs[0]?.aborted === true)
      expect(sim.requests[0]?.completed).toBe(false)
    })

    it("scriptFor: a model's queue is consumed before the global queue", async () => {
      sim.scriptFor("gpt-4o", { kind: "status", status: 500 })
      sim.script({ kind: "status", status: 400 })
      expect((await openAi(sim, { model: "gpt-4o-mini" })).status).toBe(400)
      expect((await openAi(sim, { model: "gpt-4o-mini" })).status).toBe(200)
      const r = await openAi(sim, { model: "gpt-4o" })
      expect(r.status).toBe(500)
      expect(path(await r.json(), "error", "type")).toBe("server_error")
      expect((await openAi(sim, { model: "gpt-4o" })).status).toBe(200)
      expect(sim.requests.map((q) => q.model)).toEqual(["gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "gpt-4o"])
    })

    it("rejectKeys: 401 authentication_error for those keys (and for a missing key)", async () => {
      sim.rejectKeys("bad")
      sim.script({ kind: "ok", content: "kept" })
      const r1 = await openAi(sim, {}, { key: "bad" })
      expect(r1.status).toBe(401)
      expect(path(await r1.json(), "error", "type")).toBe("authentication_error")
      const r2 = await anthropic(sim, {}, "bad")
      expect(r2.status).toBe(401)
      expect(await r2.json()).toMatchObject({ type: "error", error: { type: "authentication_error" } })
      const r3 = await fetch(`${sim.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [] }) })
      expect(r3.status).toBe(401)
      expect(sim.requests.map((r) => [r.apiKey, r.fault])).toEqual([["bad", "status"], ["bad", "status"], [undefined, "status"]])
      // a rejected key does not consume the script
      expect(path(await (await openAi(sim, {})).json(), "choices", 0, "message", "content")).toBe("kept")
    })

    it("setDefault and reset", async () => {
      sim.setDefault({ kind: "status", status: 503 })
      expect((await openAi(sim, {})).status).toBe(503)
      expect((await openAi(sim, {})).status).toBe(503)
      const lastId = sim.requests[1]?.id ?? Infinity
      sim.rejectKeys("k2")
      sim.reset()
      expect(sim.requests).toHaveLength(0)
      expect((await openAi(sim, {}, { key: "k2" })).status).toBe(200)
      // ids stay unique across resets
      expect(sim.requests[0]?.id).toBe(lastId + 1)
    })

    it("rejects an invalid request body with a provider-shaped 400", async () => {
      const res = await fetch(`${sim.url}/v1/messages`, { method: "POST", headers: { "x-api-key": "k" }, body: "not json" })
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } })
      expect(sim.requests[0]?.body).toBe("not json")
    })
  })

  describe("control endpoints", () => {
    it("script, reject-keys, default, requests and reset over HTTP (not recorded)", async () => {
      expect((await control(sim, "script", { faults: [{ kind: "status", status: 418 }] })).status).toBe(200)
      expect((await control(sim, "script", { model: "sim-echo", faults: [{ kind: "status", status: 402 }] })).status).toBe(200)
      expect((await control(sim, "reject-keys", { keys: ["nope"] })).status).toBe(200)
      expect((await control(sim, "script", { faults: [{ kind: "bogus" }] })).status).toBe(400)
      expect((await openAi(sim, { model: "sim-echo" })).status).toBe(402)
      expect((await openAi(sim, {})).status).toBe(418)
      expect((await openAi(sim, {}, { key: "nope" })).status).toBe(401)
      expect((await control(sim, "default", { fault: { kind: "status", status: 502 } })).status).toBe(200)
      expect((await openAi(sim, {})).status).toBe(502)

      const listed = await (await control(sim, "requests")).json()
      expect(Array.isArray(listed)).toBe(true)
      const reqs = Array.isArray(listed) ? listed.map(asJson) : []
      expect(reqs.map((r) => r["path"])).toEqual(Array<string>(4).fill("/v1/chat/completions"))
      expect(reqs.map((r) => r["fault"])).toEqual(["status", "status", "status", "status"])
      expect(reqs[2]).toMatchObject({ apiKey: "nope", completed: true, aborted: false })

      expect((await control(sim, "reset", {})).status).toBe(200)
      expect(await (await control(sim, "requests")).json()).toEqual([])
      expect((await openAi(sim, {}, { key: "nope" })).status).toBe(200)
    })
  })

  describe("official SDKs", () => {
    it("openai: chat.completions.create, non-stream and stream", async () => {
      const client = new OpenAI({ apiKey: "k", baseURL: `${sim.url}/v1`, maxRetries: 0 })
      const completion = await client.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi from the sdk" }]
      })
      expect(completion.choices[0]?.message.content).toBe("Echo: hi from the sdk")
      expect(completion.usage?.total_tokens).toBe(9)

      const stream = await client.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "stream this please" }],
        stream: true,
        stream_options: { include_usage: true }
      })
      let text = ""
      let usage: number | undefined
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? ""
        if (chunk.usage) usage = chunk.usage.completion_tokens
      }
      expect(text).toBe("Echo: stream this please")
      expect(usage).toBe(4)

      const helper = client.chat.completions.stream({ model: "gpt-4o", messages: [{ role: "user", content: "helper" }] })
      expect((await helper.finalChatCompletion()).choices[0]?.message.content).toBe("Echo: helper")
    })

    it("openai: scripted errors surface as SDK errors", async () => {
      const client = new OpenAI({ apiKey: "k", baseURL: `${sim.url}/v1`, maxRetries: 0 })
      sim.script({ kind: "status", status: 429 }, { kind: "inbandError", afterChunks: 1 })
      await expect(client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] })).rejects.toBeInstanceOf(
        OpenAI.RateLimitError
      )
      const stream = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }], stream: true })
      await expect((async () => {
        for await (const _ of stream) void _
      })()).rejects.toBeInstanceOf(OpenAI.APIError)
    })

    it("anthropic: messages.create, non-stream and stream", async () => {
      const client = new Anthropic({ apiKey: "k", baseURL: sim.url, maxRetries: 0 })
      const message = await client.messages.create({
        model: "claude-sim",
        max_tokens: 100,
        system: "sys prompt",
        messages: [{ role: "user", content: "hi from the sdk" }]
      })
      expect(message.content).toEqual([{ type: "text", text: "Echo: hi from the sdk" }])
      expect(message.usage).toMatchObject({ input_tokens: 6, output_tokens: 5 })

      const stream = await client.messages.create({
        model: "claude-sim",
        max_tokens: 100,
        messages: [{ role: "user", content: [{ type: "text", text: "stream this please" }] }],
        stream: true
      })
      const types: Array<string> = []
      let text = ""
      for await (const event of stream) {
        types.push(event.type)
        if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text
      }
      expect(text).toBe("Echo: stream this please")
      expect(types[0]).toBe("message_start")
      expect(types.at(-1)).toBe("message_stop")

      const helper = client.messages.stream({ model: "claude-sim", max_tokens: 10, messages: [{ role: "user", content: "helper" }] })
      const final = await helper.finalMessage()
      expect(final.content).toEqual([{ type: "text", text: "Echo: helper" }])
      expect(final.stop_reason).toBe("end_turn")
      expect(final.usage.output_tokens).toBe(2)
      expect(sim.requests.map((r) => r.api)).toEqual(["anthropic", "anthropic", "anthropic"])
      expect(sim.requests[0]?.headers["anthropic-version"]).toBeDefined()
    })

    it("anthropic: scripted errors surface as SDK errors", async () => {
      const client = new Anthropic({ apiKey: "k", baseURL: sim.url, maxRetries: 0 })
      sim.script({ kind: "status", status: 529 }, { kind: "inbandError", afterChunks: 1 })
      const params = { model: "claude-sim", max_tokens: 10, messages: [{ role: "user" as const, content: "x" }] }
      await expect(client.messages.create(params)).rejects.toBeInstanceOf(Anthropic.APIError)
      await expect(client.messages.stream(params).finalMessage()).rejects.toBeInstanceOf(Anthropic.APIError)
    })
  })

  it("serves many concurrent requests", async () => {
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => openAi(sim, { stream: i % 2 === 0 }).then(async (r) => [r.status, (await r.text()).length] as const))
    )
    expect(results.every(([status, len]) => status === 200 && len > 0)).toBe(true)
    expect(sim.requests).toHaveLength(300)
    expect(new Set(sim.requests.map((r) => r.id)).size).toBe(300)
  })
})

describe("simulator lifecycle", () => {
  const started: Array<Simulator> = []
  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.close()))
  })

  it("global latencyMs and chunkDelayMs options", async () => {
    const sim = await startSimulator({ latencyMs: 100, chunkDelayMs: 30 })
    started.push(sim)
    const t0 = Date.now()
    const res = await openAi(sim, { stream: true })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90)
    await readBody(res)
    // 7 events, 6 gaps of 30ms, after 100ms of latency
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
  })

  it("close() destroys open sockets (hanging requests fail) and counts connections", async () => {
    const sim = await startSimulator()
    started.push(sim)
    sim.setDefault({ kind: "hang" })
    const pending = [openAi(sim, {}), openAi(sim, {}), anthropic(sim, {})]
    await sim.waitFor((reqs) => reqs.length === 3)
    expect(sim.openConnections()).toBeGreaterThanOrEqual(3)
    await sim.close()
    const settled = await Promise.allSettled(pending)
    expect(settled.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"])
    expect(sim.openConnections()).toBe(0)
    expect(sim.requests.every((r: RecordedRequest) => !r.aborted && !r.completed)).toBe(true)
    await expect(fetch(`${sim.url}/v1/models`)).rejects.toThrow()
  })

  it("clears its timers when the client aborts or the server closes", async () => {
    // The simulator's own timers: process-wide counts also see the test runner's and other files' timers.
    const sim = await startSimulator({ latencyMs: 0 })
    started.push(sim)
    expect(sim.pendingTimers()).toBe(0)
    sim.script({ kind: "ok", chunkDelayMs: 60_000 }, { kind: "ok", headersDelayMs: 60_000 })
    const ac = new AbortController()
    const res = await openAi(sim, { stream: true }, { signal: ac.signal })
    await res.body?.getReader().read()
    expect(sim.pendingTimers()).toBe(1)
    ac.abort()
    await sim.waitFor((reqs) => reqs[0]?.aborted === true)
    expect(sim.pendingTimers()).toBe(0)
    const pending = openAi(sim, {}).catch((e: unknown) => e)
    await sim.waitFor((reqs) => reqs.length === 2)
    expect(sim.pendingTimers()).toBe(1)
    await sim.close()
    expect(await pending).toBeInstanceOf(Error)
    expect(sim.pendingTimers()).toBe(0)
  })

  it("maxRecords keeps only the newest records", async () => {
    const sim = await startSimulator({ maxRecords: 5 })
    started.push(sim)
    for (let i = 0; i < 12; i++) await (await openAi(sim, {})).text()
    expect(sim.requests.map((r) => r.id)).toEqual([8, 9, 10, 11, 12])
  })

  it("waitFor times out with an error", async () => {
    const sim = await startSimulator()
    started.push(sim)
    await expect(sim.waitFor((reqs) => reqs.length > 0, 50)).rejects.toThrow(/timed out/)
  })

  it("SimulatorResource starts and closes with the scope", async () => {
    const url = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const sim = yield* SimulatorResource({ latencyMs: 1 })
          const res = yield* Effect.promise(() => fetch(`${sim.url}/v1/models`, { headers: { authorization: "Bearer k" } }))
          expect(res.status).toBe(200)
          yield* Effect.promise(() => res.text())
          return sim.url
        })
      )
    )
    await expect(fetch(`${url}/v1/models`)).rejects.toThrow()
  })

  it("CLI prints its url, serves, and exits cleanly on SIGTERM", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/simulator.ts", "--port", "0", "--host", "127.0.0.1", "--latency-ms", "1"], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "inherit"]
    })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout })
        rl.once("line", resolve)
        child.once("exit", () => reject(new Error("simulator exited before printing its url")))
      })
      const url = String(parseJson(line)["url"])
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect((await fetch(`${url}/_sim/script`, { method: "POST", body: JSON.stringify({ faults: [{ kind: "status", status: 500 }] }) })).status).toBe(200)
      expect((await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { authorization: "Bearer k" }, body: JSON.stringify({ model: "m", messages: [] }) })).status).toBe(500)
    } finally {
      child.kill("SIGTERM")
    }
    expect(await exited).toBe(0)
  })
})
