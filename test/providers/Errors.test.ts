import { Headers } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Anthropic from "../../src/Providers/Anthropic.js"
import type { ChatRequest } from "../../src/Providers/Domain.js"
import {
  AttemptTimeout,
  ConnectError,
  countsAsCircuitFailure,
  isRetryable,
  type ProviderError,
  StreamCutError,
  UpstreamDecodeError,
  UpstreamInBandError,
  UpstreamStatusError
} from "../../src/Providers/Errors.js"
import * as OpenAiCompat from "../../src/Providers/OpenAiCompat.js"
import { beginAttempt, fromTransport, parseRetryAfter, parseUpstreamError } from "../../src/Providers/Transport.js"

const provider = "test"
const status = (s: number) => new UpstreamStatusError({ provider, status: s, retryAfterMs: null, upstreamType: null, upstreamMessage: null })

describe("isRetryable / countsAsCircuitFailure", () => {
  const cases: ReadonlyArray<readonly [string, ProviderError, boolean, boolean]> = [
    ["connect refused", new ConnectError({ provider, phase: "connect", code: "ECONNREFUSED", detail: "" }), true, true],
    ["body lost", new ConnectError({ provider, phase: "body", code: "UND_ERR_SOCKET", detail: "" }), true, true],
    ["invalid url", new ConnectError({ provider, phase: "connect", code: "ERR_INVALID_URL", detail: "" }), false, true],
    ["connect timeout", new AttemptTimeout({ provider, kind: "connect", timeoutMs: 1 }), true, true],
    ["first byte timeout", new AttemptTimeout({ provider, kind: "first_byte", timeoutMs: 1 }), true, true],
    ["idle timeout", new AttemptTimeout({ provider, kind: "idle", timeoutMs: 1 }), true, true],
    ["400", status(400), false, false],
    ["401", status(401), false, false],
    ["403", status(403), false, false],
    ["404", status(404), false, false],
    ["422", status(422), false, false],
    ["408", status(408), true, true],
    ["409", status(409), true, false],
    ["429", status(429), true, true],
    ["500", status(500), true, true],
    ["503", status(503), true, true],
    ["529", status(529), true, true],
    ["decode", new UpstreamDecodeError({ provider, detail: "" }), false, true],
    ["cut before any chunk", new StreamCutError({ provider, chunksReceived: 0, detail: "" }), true, true],
    ["cut after chunks", new StreamCutError({ provider, chunksReceived: 3, detail: "" }), false, true],
    ["in-band overloaded", new UpstreamInBandError({ provider, upstreamType: "overloaded_error", upstreamMessage: null, chunksReceived: 2 }), true, true],
    ["in-band server_error", new UpstreamInBandError({ provider, upstreamType: "server_error", upstreamMessage: null, chunksReceived: 0 }), true, true],
    ["in-band invalid", new UpstreamInBandError({ provider, upstreamType: "invalid_request_error", upstreamMessage: null, chunksReceived: 0 }), false, true],
    ["in-band untyped", new UpstreamInBandError({ provider, upstreamType: null, upstreamMessage: "?", chunksReceived: 0 }), false, true]
  ]
  for (const [name, error, retryable, circuit] of cases) {
    it(name, () => {
      expect(isRetryable(error)).toBe(retryable)
      expect(countsAsCircuitFailure(error)).toBe(circuit)
    })
  }

  it("errors have readable messages", () => {
    expect(status(503).message).toBe("test: upstream status 503")
    expect(new AttemptTimeout({ provider, kind: "idle", timeoutMs: 250 }).message).toBe("test: idle timeout after 250ms")
  })
})

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-01-01T00:00:00Z")
  const h = (entries: Record<string, string>) => Headers.fromInput(entries)
  it("prefers retry-after-ms", () => expect(parseRetryAfter(h({ "retry-after-ms": "1500", "retry-after": "9" }), now)).toBe(1500))
  it("reads delta-seconds", () => expect(parseRetryAfter(h({ "Retry-After": "2" }), now)).toBe(2000))
  it("reads fractional seconds", () => expect(parseRetryAfter(h({ "retry-after": "0.5" }), now)).toBe(500))
  it("reads an HTTP-date relative to the clock", () =>
    expect(parseRetryAfter(h({ "retry-after": "Wed, 01 Jan 2025 00:00:30 GMT" }), now)).toBe(30_000))
  it("a date in the past is 0", () => expect(parseRetryAfter(h({ "retry-after": "Tue, 31 Dec 2024 23:00:00 GMT" }), now)).toBe(0))
  it("absent or invalid is null", () => {
    expect(parseRetryAfter(h({}), now)).toBeNull()
    expect(parseRetryAfter(h({ "retry-after": "soon" }), now)).toBeNull()
    expect(parseRetryAfter(h({ "retry-after-ms": "-5" }), now)).toBeNull()
  })
})

describe("parseUpstreamError", () => {
  it("OpenAI shape", () =>
    expect(parseUpstreamError(JSON.stringify({ error: { message: "bad", type: "invalid_request_error", code: null } }))).toEqual({
      type: "invalid_request_error",
      message: "bad"
    }))
  it("OpenAI shape with only a code", () =>
    expect(parseUpstreamError(JSON.stringify({ error: { message: "slow down", type: null, code: "rate_limit_exceeded" } }))).toEqual({
      type: "rate_limit_exceeded",
      message: "slow down"
    }))
  it("Anthropic shape", () =>
    expect(parseUpstreamError(JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }))).toEqual({
      type: "overloaded_error",
      message: "Overloaded"
    }))
  it("Ollama string error", () => expect(parseUpstreamError(`{"error":"model 'x' not found"}`)).toEqual({ type: null, message: "model 'x' not found" }))
  it("vLLM flat shape", () =>
    expect(parseUpstreamError(`{"object":"error","message":"too long","type":"BadRequestError","code":400}`)).toEqual({
      type: "BadRequestError",
      message: "too long"
    }))
  it("non-JSON is truncated text", () => {
    const info = parseUpstreamError(`<html>${"x".repeat(1000)}</html>`)
    expect(info.type).toBeNull()
    expect(info.message?.length).toBeLessThanOrEqual(201)
  })
  it("long messages are truncated", () =>
    expect(parseUpstreamError(JSON.stringify({ error: { message: "m".repeat(5000) } })).message?.length).toBeLessThanOrEqual(501))
  it("empty body", () => expect(parseUpstreamError("")).toEqual({ type: null, message: null }))
})

describe("request translation", () => {
  const req: ChatRequest = {
    model: "m",
    messages: [
      { role: "system", content: "be brief" },
      { role: "system", content: "be kind" },
      { role: "user", content: "hi" },
      { role: "assistant", content: "hello" },
      { role: "user", content: "again" }
    ],
    temperature: 0.2,
    topP: 0.9,
    stop: ["END"],
    extra: { seed: 7, model: "evil", messages: [], stream: true, temperature: 1.5, stream_options: { foo: 1 } }
  }

  it("OpenAI: extra passes through but never overrides model/messages/stream or typed fields", () => {
    const body = OpenAiCompat.requestBody(req, false)
    expect(body).toEqual({
      seed: 7,
      model: "m",
      messages: req.messages,
      temperature: 0.2,
      top_p: 0.9,
      stop: ["END"]
    })
    const streaming = OpenAiCompat.requestBody({ ...req, maxTokens: 5 }, true)
    expect(streaming["stream"]).toBe(true)
    expect(streaming["stream_options"]).toEqual({ foo: 1, include_usage: true })
    expect(streaming["max_tokens"]).toBe(5)
  })

  it("Anthropic: system joined, max_tokens defaulted, stop → stop_sequences, extra dropped", () => {
    expect(Anthropic.requestBody(req, true)).toEqual({
      model: "m",
      max_tokens: 1024,
      system: "be brief\n\nbe kind",
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "again" }
      ],
      temperature: 0.2,
      top_p: 0.9,
      stop_sequences: ["END"],
      stream: true
    })
    expect(Anthropic.requestBody({ model: "m", messages: [{ role: "user", content: "x" }], maxTokens: 50 }, false)).toEqual({
      model: "m",
      max_tokens: 50,
      messages: [{ role: "user", content: "x" }]
    })
  })

  it("Anthropic stop reasons map to OpenAI finish reasons", () => {
    expect(Anthropic.finishReason("end_turn")).toBe("stop")
    expect(Anthropic.finishReason("stop_sequence")).toBe("stop")
    expect(Anthropic.finishReason("max_tokens")).toBe("length")
    expect(Anthropic.finishReason("tool_use")).toBe("tool_calls")
    expect(Anthropic.finishReason("pause_turn")).toBe("pause_turn")
  })
})

describe("fromTransport", () => {
  const attempt = Effect.runSync(beginAttempt("p", { connectTimeout: "1 second", firstByteTimeout: "2 seconds", idleTimeout: "3 seconds" }))
  const coded = (code: string, message = "boom") => Object.assign(new Error(message), { code })

  it("undici connect timeout → AttemptTimeout connect", () =>
    expect(fromTransport(attempt, "connect", coded("UND_ERR_CONNECT_TIMEOUT"))).toEqual(
      new AttemptTimeout({ provider: "p", kind: "connect", timeoutMs: 1000 })
    ))
  it("undici headers/body timeouts → first_byte / idle", () => {
    expect(fromTransport(attempt, "connect", coded("UND_ERR_HEADERS_TIMEOUT"))).toMatchObject({ kind: "first_byte", timeoutMs: 3000 })
    expect(fromTransport(attempt, "body", coded("UND_ERR_BODY_TIMEOUT"))).toMatchObject({ kind: "idle", timeoutMs: 3000 })
  })
  it("finds the code along the cause chain", () => {
    const e = new Error("fetch failed", { cause: coded("ECONNRESET", "read ECONNRESET") })
    expect(fromTransport(attempt, "body", e)).toEqual(new ConnectError({ provider: "p", phase: "body", code: "ECONNRESET", detail: "fetch failed" }))
  })
  it("unknown causes keep a message and no code", () =>
    expect(fromTransport(attempt, "connect", "weird")).toEqual(new ConnectError({ provider: "p", phase: "connect", code: null, detail: "weird" })))
})
