/**
 * Both adapters against the upstream simulator (a real local HTTP server),
 * over the real pooled undici client. Live clock: the timeouts are real.
 */
import { afterAll, beforeAll, beforeEach, expect, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, Redacted, Stream } from "effect"
import * as Adapter from "../../src/Providers/Adapter.js"
import type { ChatChunk, ChatRequest, ProviderKey } from "../../src/Providers/Domain.js"
import { isRetryable, type ProviderError } from "../../src/Providers/Errors.js"
import { type Simulator, startSimulator } from "../support/Simulator.js"

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const HttpLive = Adapter.layerHttpClient({ connectTimeout: "1 second" })
const opts: Adapter.AttemptOptions = { connectTimeout: "1 second", firstByteTimeout: "2 seconds", idleTimeout: "2 seconds" }
const key: ProviderKey = { id: "test#1", value: Redacted.make("sk-test-1") }
const req: ChatRequest = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "be brief" },
    { role: "user", content: "hello there" }
  ],
  temperature: 0.5
}
// "Echo: hello there" → 3 output tokens; prompt "be brief" + "hello there" → 4 input tokens.
const usage = { inputTokens: 4, outputTokens: 3 }

const waitFor = (pred: (s: Simulator) => boolean, timeoutMs = 3_000) => Effect.promise(() => sim.waitFor(() => pred(sim), timeoutMs))
const aborted = (n = 1) => waitFor((s) => s.requests.filter((r) => r.aborted).length >= n)

/** Runs a stream to its end; returns the chunks and the failure, if any. */
const collect = (stream: Stream.Stream<ChatChunk, ProviderError>) =>
  Effect.map(Stream.runCollect(Stream.either(stream)), (items) => {
    const all = Chunk.toReadonlyArray(items)
    const chunks = all.flatMap((i) => (Either.isRight(i) ? [i.right] : []))
    const error = all.flatMap((i) => (Either.isLeft(i) ? [i.left] : []))[0]
    const text = chunks.flatMap((c) => (c._tag === "Delta" ? [c.text] : [])).join("")
    const deltas = chunks.filter((c) => c._tag === "Delta").length
    return { chunks, error, text, deltas }
  })

for (const kind of ["openai", "anthropic"] as const) {
  layer(HttpLive, { excludeTestServices: true })(`${kind} adapter`, (it) => {
    const adapter = (baseUrl?: string) => Adapter.make(kind, baseUrl ?? (kind === "openai" ? `${sim.url}/v1` : sim.url))
    const inBandType = kind === "openai" ? "server_error" : "overloaded_error"

    it.effect("complete: JSON success with usage", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        const res = yield* a.complete(req, key, opts)
        expect(res).toMatchObject({ model: "gpt-4o-mini", content: "Echo: hello there", finishReason: "stop", usage })
        expect(res.id).not.toBe("")
        const rec = sim.requests[0]
        expect(rec?.apiKey).toBe("sk-test-1")
        expect(rec?.stream).toBe(false)
        if (kind === "anthropic") {
          expect(rec?.headers["anthropic-version"]).toBe("2023-06-01")
          expect(rec?.body).toMatchObject({ system: "be brief", max_tokens: 1024, messages: [{ role: "user", content: "hello there" }] })
        } else {
          expect(rec?.body).toMatchObject({ model: "gpt-4o-mini", temperature: 0.5, messages: req.messages })
        }
      }))

    it.effect("stream: deltas concatenate to the reply; Finish carries usage; nothing aborted", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        const { chunks, error, text, deltas } = yield* collect(a.stream(req, key, opts))
        expect(error).toBeUndefined()
        expect(text).toBe("Echo: hello there")
        expect(deltas).toBe(3)
        expect(chunks.at(-1)).toEqual({ _tag: "Finish", finishReason: "stop", usage })
        if (kind === "openai") expect(sim.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } })
        yield* waitFor((s) => s.requests[0]?.completed === true)
        expect(sim.requests[0]?.aborted).toBe(false)
      }))

    it.effect("keep-alive: sequential attempts reuse one pooled connection", () =>
      Effect.gen(function*() {
        const before = sim.openConnections()
        const a = yield* adapter()
        // (undici hands a connection back to the pool a tick after the body ends: pause briefly)
        yield* a.complete(req, key, opts)
        yield* Effect.sleep("20 millis")
        yield* collect(a.stream(req, key, opts))
        yield* Effect.sleep("20 millis")
        yield* a.complete(req, key, opts)
        expect(sim.requests.map((r) => r.completed && !r.aborted)).toEqual([true, true, true])
        expect(sim.openConnections() - before).toBe(1)
      }).pipe(Effect.provide(Adapter.layerHttpClient())))

    it.effect("503 with Retry-After → UpstreamStatusError with retryAfterMs, retryable", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "status", status: 503, headers: { "retry-after": "2" } }, { kind: "status", status: 503, headers: { "retry-after": "3" } })
        const e = yield* Effect.flip(a.complete(req, key, opts))
        expect(e).toMatchObject({ _tag: "UpstreamStatusError", status: 503, retryAfterMs: 2000 })
        expect(e._tag === "UpstreamStatusError" && e.upstreamType).toBe(kind === "openai" ? "server_error" : "api_error")
        expect(isRetryable(e)).toBe(true)
        const s = yield* collect(a.stream(req, key, opts))
        expect(s.error).toMatchObject({ _tag: "UpstreamStatusError", status: 503, retryAfterMs: 3000 })
      }))

    it.effect("400 → UpstreamStatusError, not retryable, upstream type and message parsed", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "status", status: 400 })
        const e = yield* Effect.flip(a.complete(req, key, opts))
        expect(e).toMatchObject({ _tag: "UpstreamStatusError", status: 400, upstreamType: "invalid_request_error", upstreamMessage: "Invalid request." })
        expect(isRetryable(e)).toBe(false)
      }))

    it.effect("rejected key → 401 authentication_error", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.rejectKeys("sk-test-1")
        const e = yield* Effect.flip(a.complete(req, key, opts))
        expect(e).toMatchObject({ _tag: "UpstreamStatusError", status: 401, upstreamType: "authentication_error" })
      }))

    it.effect("close before the response → ConnectError (complete and stream)", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "close" }, { kind: "close" })
        const e = yield* Effect.flip(a.complete(req, key, opts))
        expect(e).toMatchObject({ _tag: "ConnectError", phase: "connect" })
        expect(isRetryable(e)).toBe(true)
        const s = yield* collect(a.stream(req, key, opts))
        expect(s.chunks).toEqual([])
        expect(s.error).toMatchObject({ _tag: "ConnectError", phase: "connect" })
      }))

    it.effect("connection refused → ConnectError ECONNREFUSED", () =>
      Effect.gen(function*() {
        const a = yield* adapter(kind === "openai" ? "http://127.0.0.1:1/v1" : "http://127.0.0.1:1")
        const e = yield* Effect.flip(a.complete(req, key, opts))
        expect(e).toMatchObject({ _tag: "ConnectError", code: "ECONNREFUSED" })
      }))

    it.effect("cut after 3 chunks → 3 deltas then StreamCutError (not retryable); non-stream cut → ConnectError body", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "cut", afterChunks: 3 }, { kind: "cut", afterChunks: 3 })
        const s = yield* collect(a.stream({ ...req, messages: [{ role: "user", content: "one two three four five" }] }, key, opts))
        expect(s.deltas).toBe(3)
        expect(s.text).toBe("Echo: one two ")
        expect(s.error).toMatchObject({ _tag: "StreamCutError", chunksReceived: 3 })
        expect(s.error !== undefined && isRetryable(s.error)).toBe(false)
        const e = yield* Effect.flip(a.complete(req, key, opts))
        expect(e).toMatchObject({ _tag: "ConnectError", phase: "body" })
      }))

    it.effect("cut before any content → StreamCutError with 0 chunks, retryable", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "cut", afterChunks: 0 })
        const s = yield* collect(a.stream(req, key, opts))
        expect(s.error).toMatchObject({ _tag: "StreamCutError", chunksReceived: 0 })
        expect(s.error !== undefined && isRetryable(s.error)).toBe(true)
      }))

    it.effect("malformed → UpstreamDecodeError (complete and stream)", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "malformed" }, { kind: "malformed" })
        const e = yield* Effect.flip(a.complete(req, key, opts))
        expect(e._tag).toBe("UpstreamDecodeError")
        expect(isRetryable(e)).toBe(false)
        const s = yield* collect(a.stream(req, key, opts))
        expect(s.error?._tag).toBe("UpstreamDecodeError")
      }))

    it.effect("in-band error → deltas then UpstreamInBandError (retryable); non-stream 200 error body too", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "inbandError", afterChunks: 2 }, { kind: "inbandError", afterChunks: 0 })
        const s = yield* collect(a.stream(req, key, opts))
        expect(s.deltas).toBe(2)
        expect(s.error).toMatchObject({ _tag: "UpstreamInBandError", upstreamType: inBandType, chunksReceived: 2 })
        expect(s.error !== undefined && isRetryable(s.error)).toBe(true)
        const e = yield* Effect.flip(a.complete(req, key, opts))
        expect(e).toMatchObject({ _tag: "UpstreamInBandError", upstreamType: inBandType })
      }))

    it.effect("hang → AttemptTimeout first_byte and the request is aborted (complete)", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "hang" })
        const e = yield* Effect.flip(a.complete(req, key, { ...opts, connectTimeout: "100 millis", firstByteTimeout: "200 millis" }))
        expect(e).toMatchObject({ _tag: "AttemptTimeout", kind: "first_byte", timeoutMs: 300 })
        yield* aborted()
      }))

    it.effect("hang → AttemptTimeout first_byte and the request is aborted (stream)", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "hang" })
        const s = yield* collect(a.stream(req, key, { ...opts, connectTimeout: "100 millis", firstByteTimeout: "200 millis" }))
        expect(s.error).toMatchObject({ _tag: "AttemptTimeout", kind: "first_byte" })
        yield* aborted()
      }))

    it.effect("slow headers within budget are fine", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "ok", headersDelayMs: 150 })
        const res = yield* a.complete(req, key, { ...opts, connectTimeout: "100 millis", firstByteTimeout: "400 millis" })
        expect(res.content).toBe("Echo: hello there")
      }))

    it.effect("gap between events > idleTimeout → AttemptTimeout idle, request aborted", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "ok", chunkDelayMs: 800 })
        const s = yield* collect(a.stream(req, key, { ...opts, idleTimeout: "200 millis" }))
        expect(s.error).toMatchObject({ _tag: "AttemptTimeout", kind: "idle", timeoutMs: 200 })
        yield* aborted()
      }))

    it.effect("totalTimeout bounds the whole stream", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "ok", chunkDelayMs: 100, content: "a b c d e f g h i j k l m n o p" })
        const s = yield* collect(a.stream(req, key, { ...opts, totalTimeout: "350 millis" }))
        expect(s.deltas).toBeGreaterThan(0)
        expect(s.error).toMatchObject({ _tag: "AttemptTimeout", kind: "total", timeoutMs: 350 })
        yield* aborted()
      }))

    it.effect("taking only part of a stream aborts the request", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "ok", chunkDelayMs: 50, content: "a b c d e f g h i j k l m n o p" })
        const got = yield* Stream.runCollect(Stream.take(a.stream(req, key, opts), 2))
        expect(got.length).toBe(2)
        yield* aborted()
        expect(sim.requests[0]?.completed).toBe(false)
      }))

    it.effect("interrupting a stream mid-way aborts the request", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "ok", chunkDelayMs: 50, content: "a b c d e f g h i j k l m n o p" })
        const first = yield* Deferred.make<void>()
        const fiber = yield* a.stream(req, key, opts).pipe(
          Stream.tap(() => Deferred.succeed(first, undefined)),
          Stream.runDrain,
          Effect.fork
        )
        yield* Deferred.await(first)
        yield* Fiber.interrupt(fiber)
        yield* aborted()
      }))

    it.effect("interrupting complete while waiting for headers aborts the request", () =>
      Effect.gen(function*() {
        const a = yield* adapter()
        sim.script({ kind: "hang" })
        const fiber = yield* Effect.fork(a.complete(req, key, opts))
        yield* waitFor((s) => s.requests.length === 1)
        yield* Fiber.interrupt(fiber)
        yield* aborted()
      }))
  })
}
