/**
 * Wire-format edge cases, served verbatim by the simulator (a 200 "status"
 * fault with a hand-written body and content type), plus the OpenAI-only
 * extras (pass-through, listModels, keyless servers).
 */
import { afterAll, beforeAll, beforeEach, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Redacted, Stream } from "effect"
import * as Adapter from "../../src/Providers/Adapter.js"
import * as Anthropic from "../../src/Providers/Anthropic.js"
import type { ChatChunk, ChatRequest, ProviderKey } from "../../src/Providers/Domain.js"
import type { ProviderError } from "../../src/Providers/Errors.js"
import * as OpenAiCompat from "../../src/Providers/OpenAiCompat.js"
import { type Simulator, startSimulator } from "../support/Simulator.js"
import { MODEL_IDS } from "../support/SimulatorFormats.js"

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const opts: Adapter.AttemptOptions = { connectTimeout: "1 second", firstByteTimeout: "2 seconds", idleTimeout: "2 seconds" }
const key: ProviderKey = { id: "test#1", value: Redacted.make("sk-test-1") }
const req: ChatRequest = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] }

const sse = (body: string) => ({ kind: "status" as const, status: 200, body, headers: { "content-type": "text/event-stream" } })
const data = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`
const event = (type: string, payload: Record<string, unknown>) => `event: ${type}\r\ndata: ${JSON.stringify({ type, ...payload })}\r\n\r\n`
const oaChunk = (content: string | null, finish: string | null = null) =>
  data({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }] })

const collect = (stream: Stream.Stream<ChatChunk, ProviderError>) =>
  Effect.map(Stream.runCollect(Stream.either(stream)), (items) => {
    const all = Chunk.toReadonlyArray(items)
    return {
      chunks: all.flatMap((i) => (Either.isRight(i) ? [i.right] : [])),
      error: all.flatMap((i) => (Either.isLeft(i) ? [i.left] : []))[0]
    }
  })

layer(Adapter.layerHttpClient(), { excludeTestServices: true })("OpenAI-compatible wire", (it) => {
  const openai = () => OpenAiCompat.make(`${sim.url}/v1/`, { name: "vllm" })

  it.effect("keep-alive comments, \\r\\n, no usage chunk (older servers) → Finish with usage null", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      sim.script(sse(`: ping\r\n\r\n${oaChunk("Hi")}: ping\n\n${oaChunk(" there")}${oaChunk(null, "length")}data: [DONE]\n\n`))
      const { chunks, error } = yield* collect(a.stream(req, key, opts))
      expect(error).toBeUndefined()
      expect(chunks).toEqual([
        { _tag: "Delta", text: "Hi" },
        { _tag: "Delta", text: " there" },
        { _tag: "Finish", finishReason: "length", usage: null }
      ])
    }))

  it.effect("finish_reason but no [DONE] → StreamCutError", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      sim.script(sse(`${oaChunk("Hi")}${oaChunk(null, "stop")}`))
      const { chunks, error } = yield* collect(a.stream(req, key, opts))
      expect(chunks).toEqual([{ _tag: "Delta", text: "Hi" }])
      expect(error).toMatchObject({ _tag: "StreamCutError", provider: "vllm", chunksReceived: 1 })
    }))

  it.effect("[DONE] without a finish_reason → StreamCutError", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      sim.script(sse(`${oaChunk("Hi")}data: [DONE]\n\n`))
      const { error } = yield* collect(a.stream(req, key, opts))
      expect(error).toMatchObject({ _tag: "StreamCutError", chunksReceived: 1 })
    }))

  it.effect("stream request answered with JSON: error object → InBand, anything else → Decode", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      sim.script(
        { kind: "status", status: 200, body: { error: { message: "overloaded", type: "server_error" } } },
        { kind: "status", status: 200, body: { hello: "world" } }
      )
      expect((yield* collect(a.stream(req, key, opts))).error).toMatchObject({ _tag: "UpstreamInBandError", upstreamType: "server_error" })
      expect((yield* collect(a.stream(req, key, opts))).error?._tag).toBe("UpstreamDecodeError")
    }))

  it.effect("complete: null content (tool calls) and missing usage decode leniently", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      sim.script({ kind: "status", status: 200, body: { id: "x", choices: [{ message: { content: null }, finish_reason: "tool_calls" }] } })
      const res = yield* a.complete(req, key, opts)
      expect(res).toEqual({ id: "x", model: "gpt-4o-mini", content: "", finishReason: "tool_calls", usage: { inputTokens: 0, outputTokens: 0 } })
    }))

  it.effect("complete: a 200 that is not a completion → UpstreamDecodeError", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      sim.script({ kind: "status", status: 200, body: { choices: [] } })
      expect((yield* Effect.flip(a.complete(req, key, opts)))._tag).toBe("UpstreamDecodeError")
    }))

  it.effect("extra fields pass through; typed fields win", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      yield* a.complete({ ...req, maxTokens: 9, extra: { seed: 42, response_format: { type: "text" }, model: "other", max_tokens: 1 } }, key, opts)
      expect(sim.requests[0]?.body).toEqual({
        seed: 42,
        response_format: { type: "text" },
        model: "gpt-4o-mini",
        messages: req.messages,
        max_tokens: 9
      })
    }))

  it.effect("completeRaw returns the upstream JSON untouched, with usage and content", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      const raw = yield* a.completeRaw({ model: "gpt-4o", messages: [{ role: "user", content: "a b" }], stream: true, logprobs: false }, key, opts)
      expect(raw.content).toBe("Echo: a b")
      expect(raw.usage).toEqual({ inputTokens: 2, outputTokens: 3 })
      expect(raw.json).toMatchObject({ object: "chat.completion", system_fingerprint: "fp_simulator" })
      expect(sim.requests[0]?.body).toEqual({ model: "gpt-4o", messages: [{ role: "user", content: "a b" }], logprobs: false })
    }))

  it.effect("listModels", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      expect(yield* a.listModels(key, opts)).toEqual(MODEL_IDS)
    }))

  it.effect("an empty key sends no Authorization header (keyless local servers)", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      const e = yield* Effect.flip(a.complete(req, { id: "ollama", value: Redacted.make("") }, opts))
      expect(sim.requests[0]?.headers["authorization"]).toBeUndefined()
      expect(e).toMatchObject({ _tag: "UpstreamStatusError", status: 401 })
    }))

  it.effect("the key never appears in errors", () =>
    Effect.gen(function*() {
      const a = yield* openai()
      sim.rejectKeys("sk-test-1")
      const e = yield* Effect.flip(a.complete(req, key, opts))
      expect(JSON.stringify(e) + e.message + String(e)).not.toContain("sk-test-1")
    }))
})

layer(Adapter.layerHttpClient(), { excludeTestServices: true })("Anthropic wire", (it) => {
  const anthropic = () => Anthropic.make(sim.url)
  const start = event("message_start", { message: { id: "msg_1", model: "claude", usage: { input_tokens: 7, output_tokens: 1 } } })

  it.effect("tool_use stop reason, thinking and tool deltas dropped, unknown events ignored", () =>
    Effect.gen(function*() {
      const a = yield* anthropic()
      sim.script(sse([
        start,
        event("content_block_delta", { index: 0, delta: { type: "thinking_delta", thinking: "hmm" } }),
        event("content_block_delta", { index: 1, delta: { type: "text_delta", text: "Let me check." } }),
        event("content_block_delta", { index: 2, delta: { type: "input_json_delta", partial_json: "{}" } }),
        event("some_future_event", {}),
        event("message_delta", { delta: { stop_reason: "tool_use" }, usage: { output_tokens: 12 } }),
        event("message_stop", {})
      ].join("")))
      const { chunks, error } = yield* collect(a.stream(req, key, opts))
      expect(error).toBeUndefined()
      expect(chunks).toEqual([
        { _tag: "Delta", text: "Let me check." },
        { _tag: "Finish", finishReason: "tool_calls", usage: { inputTokens: 7, outputTokens: 12 } }
      ])
    }))

  it.effect("end without message_stop → StreamCutError", () =>
    Effect.gen(function*() {
      const a = yield* anthropic()
      sim.script(sse(start + event("content_block_delta", { index: 0, delta: { type: "text_delta", text: "x" } })))
      const { error } = yield* collect(a.stream(req, key, opts))
      expect(error).toMatchObject({ _tag: "StreamCutError", chunksReceived: 1, provider: "anthropic" })
    }))

  it.effect("event: error with a non-transient type → not retryable in-band error", () =>
    Effect.gen(function*() {
      const a = yield* anthropic()
      sim.script(sse(start + event("error", { error: { type: "invalid_request_error", message: "prompt too long" } })))
      const { error } = yield* collect(a.stream(req, key, opts))
      expect(error).toMatchObject({ _tag: "UpstreamInBandError", upstreamType: "invalid_request_error", upstreamMessage: "prompt too long" })
    }))

  it.effect("complete: text blocks joined, max_tokens → length", () =>
    Effect.gen(function*() {
      const a = yield* anthropic()
      sim.script({
        kind: "status",
        status: 200,
        body: {
          id: "msg_2",
          type: "message",
          model: "claude",
          content: [{ type: "text", text: "a" }, { type: "tool_use", id: "t", name: "f", input: {} }, { type: "text", text: "b" }],
          stop_reason: "max_tokens",
          usage: { input_tokens: 3, output_tokens: 5 }
        }
      })
      expect(yield* a.complete(req, key, opts)).toEqual({
        id: "msg_2",
        model: "claude",
        content: "ab",
        finishReason: "length",
        usage: { inputTokens: 3, outputTokens: 5 }
      })
    }))

  it.effect("529 overloaded → retryable status error with the upstream type", () =>
    Effect.gen(function*() {
      const a = yield* anthropic()
      sim.script({ kind: "status", status: 529 })
      expect(yield* Effect.flip(a.complete(req, key, opts))).toMatchObject({
        _tag: "UpstreamStatusError",
        status: 529,
        upstreamType: "overloaded_error",
        retryAfterMs: null
      })
    }))
})
