/**
 * HTTP plumbing shared by the adapters: per-attempt deadlines, sending a
 * request and classifying every way it can fail, reading bodies with an idle
 * timeout, and parsing upstream error bodies and `Retry-After`.
 *
 * Cancellation: requests go through `HttpClient.withScope`, so the request's
 * AbortController is aborted when the surrounding scope closes — on success
 * (a no-op once the body was read), on failure, and on interruption. The
 * adapters open that scope per attempt (`Effect.scoped` for `complete`,
 * `Stream.unwrapScoped` for `stream`), so interrupting the returned
 * Effect/Stream aborts the upstream request at once.
 */
import { Headers, type HttpClient, type HttpClientError, type HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import { Clock, Duration, Effect, Option, Schema, Scope, Stream } from "effect"
import {
  AttemptTimeout,
  ConnectError,
  type ProviderError,
  UpstreamDecodeError,
  UpstreamInBandError,
  UpstreamStatusError
} from "./Errors.js"
import * as Watchdogs from "./Watchdog.js"
import type { Watchdog } from "./Watchdog.js"

/** Per-attempt limits. Interrupting the Effect/Stream aborts the request; there is no AbortSignal. */
export interface AttemptOptions {
  /**
   * TCP/TLS connect. The pooled undici dispatcher enforces its own connect
   * timeout (see `Adapter.layerHttpClient`); per attempt, this budget is added
   * to `firstByteTimeout` to bound the wait for the response headers.
   */
  readonly connectTimeout: Duration.DurationInput
  /** Response headers (non-streaming) / first SSE event (streaming), counted after the connect budget. */
  readonly firstByteTimeout: Duration.DurationInput
  /** Longest gap between SSE events (streaming) or body chunks (non-streaming body). */
  readonly idleTimeout: Duration.DurationInput
  /** Optional bound on the whole attempt, body included. */
  readonly totalTimeout?: Duration.DurationInput
}

/** The clock facts of one attempt, fixed when it starts. */
export interface Attempt {
  readonly provider: string
  readonly connectMs: number
  /** connect + first byte budget. */
  readonly firstByteMs: number
  readonly firstByteDeadline: number
  readonly idleMs: number
  readonly totalMs: number | null
  readonly totalDeadline: number | null
}

export const beginAttempt = (provider: string, opts: AttemptOptions): Effect.Effect<Attempt> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const connectMs = Duration.toMillis(opts.connectTimeout)
    const firstByteMs = connectMs + Duration.toMillis(opts.firstByteTimeout)
    const totalMs = opts.totalTimeout === undefined ? null : Duration.toMillis(opts.totalTimeout)
    return {
      provider,
      connectMs,
      firstByteMs,
      firstByteDeadline: now + firstByteMs,
      idleMs: Duration.toMillis(opts.idleTimeout),
      totalMs,
      totalDeadline: totalMs === null ? null : now + totalMs
    }
  })

export type Phase = "first_byte" | "idle"

/** When the current wait ends (epoch ms), and which timeout fires if nothing arrives by then. */
export const deadlineOf = (a: Attempt, phase: Phase, now: number): { readonly at: number; readonly timeout: () => AttemptTimeout } => {
  const phaseAt = phase === "first_byte" ? a.firstByteDeadline : now + a.idleMs
  if (a.totalDeadline !== null && a.totalMs !== null && a.totalDeadline < phaseAt) {
    const totalMs = a.totalMs
    return { at: a.totalDeadline, timeout: () => new AttemptTimeout({ provider: a.provider, kind: "total", timeoutMs: totalMs }) }
  }
  return {
    at: phaseAt,
    timeout: () => new AttemptTimeout({ provider: a.provider, kind: phase, timeoutMs: phase === "first_byte" ? a.firstByteMs : a.idleMs })
  }
}

// ---------------------------------------------------------------------------
// Transport error classification

const WithCode = Schema.Struct({ code: Schema.String })
const WithMessage = Schema.Struct({ message: Schema.String })
const WithCause = Schema.Struct({ cause: Schema.Unknown })
const decodeCode = Schema.decodeUnknownOption(WithCode)
const decodeMessage = Schema.decodeUnknownOption(WithMessage)
const decodeCause = Schema.decodeUnknownOption(WithCause)

/** The first error code and message along the `cause` chain of a Node/undici error. */
const describeCause = (cause: unknown): { readonly code: string | null; readonly message: string } => {
  let code: string | null = null
  let message: string | null = null
  let current: unknown = cause
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth++) {
    if (code === null) code = Option.getOrNull(Option.map(decodeCode(current), (c) => c.code))
    const m = Option.getOrNull(Option.map(decodeMessage(current), (c) => c.message))
    if (message === null && m !== null && m !== "") message = m
    current = Option.getOrUndefined(Option.map(decodeCause(current), (c) => c.cause))
  }
  return { code, message: truncate(message ?? String(cause), 300) }
}

/** Maps a transport-level failure (before or while reading the response) to a ProviderError. */
export const fromTransport = (a: Attempt, phase: "connect" | "body", cause: unknown): ConnectError | AttemptTimeout => {
  const { code, message } = describeCause(cause)
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return new AttemptTimeout({ provider: a.provider, kind: "connect", timeoutMs: a.connectMs })
    case "UND_ERR_HEADERS_TIMEOUT":
      return new AttemptTimeout({ provider: a.provider, kind: "first_byte", timeoutMs: a.firstByteMs })
    case "UND_ERR_BODY_TIMEOUT":
      return new AttemptTimeout({ provider: a.provider, kind: "idle", timeoutMs: a.idleMs })
    default:
      return new ConnectError({ provider: a.provider, phase, code, detail: message })
  }
}

export const fromHttpClientError = (a: Attempt, e: HttpClientError.HttpClientError): ConnectError | AttemptTimeout => {
  if (e._tag === "RequestError") {
    switch (e.reason) {
      case "Transport":
        return fromTransport(a, "connect", e.cause)
      case "InvalidUrl":
        return new ConnectError({ provider: a.provider, phase: "connect", code: "ERR_INVALID_URL", detail: "invalid upstream URL" })
      case "Encode":
        return new ConnectError({ provider: a.provider, phase: "connect", code: "ERR_INVALID_REQUEST", detail: "could not encode the request body" })
    }
  }
  return fromTransport(a, "body", e.cause)
}

// ---------------------------------------------------------------------------
// Sending and reading

/**
 * Sends `request` in the watchdog's request scope and returns the response
 * once its headers are in; the caller bounds the wait with `w.guard` (the
 * watchdog is still in its first-byte phase). Non-2xx responses become
 * `UpstreamStatusError` (error body read, bounded, and parsed).
 */
export const send = (
  client: HttpClient.HttpClient.With<HttpClientError.HttpClientError, Scope.Scope>,
  a: Attempt,
  request: HttpClientRequest.HttpClientRequest,
  w: Watchdog
): Effect.Effect<HttpClientResponse.HttpClientResponse, ProviderError> =>
  Effect.mapError(client.execute(request), (e) => fromHttpClientError(a, e)).pipe(
    Scope.extend(w.requestScope),
    Effect.flatMap((response) => (response.status >= 200 && response.status < 300 ? Effect.succeed(response) : statusError(a, response, w)))
  )

/**
 * One non-streamed call: send, then read the whole body as text, under one
 * watchdog — headers within connect + first-byte budget, then the body within
 * the idle timeout (non-streamed replies are sent whole once generated, so the
 * wait for the model is the first-byte budget and the body follows at once),
 * all within the total timeout. Needs a scope: the attempt's.
 */
export const fetchText = (
  client: HttpClient.HttpClient.With<HttpClientError.HttpClientError, Scope.Scope>,
  a: Attempt,
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<string, ProviderError, Scope.Scope> =>
  Effect.flatMap(Watchdogs.make(a, "first_byte"), (w) =>
    w.guard(Effect.flatMap(send(client, a, request, w), (response) => {
      w.progress("idle")
      return Effect.mapError(response.text, (e) => fromHttpClientError(a, e))
    })))

const maxErrorBodyBytes = 16 * 1024

const statusError = (a: Attempt, response: HttpClientResponse.HttpClientResponse, w: Watchdog): Effect.Effect<never, UpstreamStatusError> =>
  Effect.gen(function* () {
    const text = yield* readBody(a, response, w, maxErrorBodyBytes).pipe(Effect.orElseSucceed(() => ""))
    const now = yield* Clock.currentTimeMillis
    const parsed = parseUpstreamError(text)
    return yield* new UpstreamStatusError({
      provider: a.provider,
      status: response.status,
      retryAfterMs: parseRetryAfter(response.headers, now),
      upstreamType: parsed.type,
      upstreamMessage: parsed.message
    })
  })

/**
 * Reads at most about `maxBytes` of a body (error bodies) as UTF-8 text; each
 * chunk is progress for the watchdog (the idle timeout runs between chunks).
 */
export const readBody = (
  a: Attempt,
  response: HttpClientResponse.HttpClientResponse,
  w: Watchdog,
  maxBytes: number
): Effect.Effect<string, ConnectError | AttemptTimeout> => {
  w.progress("idle")
  return Stream.mapError(response.stream, (e) => fromHttpClientError(a, e)).pipe(
    Stream.runFoldWhile(
      { size: 0, parts: new Array<Uint8Array>() },
      (acc) => acc.size < maxBytes,
      (acc, bytes) => {
        w.progress("idle")
        acc.parts.push(bytes)
        return { size: acc.size + bytes.length, parts: acc.parts }
      }
    ),
    Effect.map((acc) => new TextDecoder().decode(Buffer.concat(acc.parts)))
  )
}

/**
 * Decodes a JSON body with `schema`; anything else is an UpstreamDecodeError.
 * `JSON.parse` then the schema's own (memoised) decoder: wrapping `schema` in
 * `Schema.parseJson` here would build a new schema — and compile a new
 * decoder — on every call.
 */
export const decodeJson = <A, I>(provider: string, schema: Schema.Schema<A, I>, text: string): Effect.Effect<A, UpstreamDecodeError> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Effect.fail(new UpstreamDecodeError({ provider, detail: truncate(`invalid JSON: ${e instanceof Error ? e.message : String(e)}`, 300) }))
  }
  return Schema.decodeUnknown(schema)(json).pipe(
    Effect.mapError((e) => new UpstreamDecodeError({ provider, detail: truncate(e.message, 300) }))
  )
}

// ---------------------------------------------------------------------------
// Upstream error bodies and Retry-After

export const ErrorObject = Schema.Struct({
  message: Schema.optional(Schema.NullOr(Schema.String)),
  type: Schema.optional(Schema.NullOr(Schema.String)),
  code: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Number)))
})

/** OpenAI / Anthropic `{error: {...}}`, Ollama `{error: "..."}`, vLLM `{message, type}`, FastAPI `{detail}`. */
const ErrorBody = Schema.Union(
  Schema.Struct({ error: Schema.Union(Schema.String, ErrorObject) }),
  Schema.Struct({ message: Schema.String, type: Schema.optional(Schema.NullOr(Schema.String)) }),
  Schema.Struct({ detail: Schema.String })
)
const decodeErrorBody = Schema.decodeUnknownOption(Schema.parseJson(ErrorBody))

export interface UpstreamErrorInfo {
  readonly type: string | null
  readonly message: string | null
}

export const errorInfo = (error: string | typeof ErrorObject.Type): UpstreamErrorInfo =>
  typeof error === "string"
    ? { type: null, message: truncate(error, 500) }
    : {
      type: error.type ?? (typeof error.code === "string" ? error.code : null),
      message: error.message === undefined || error.message === null ? null : truncate(error.message, 500)
    }

/** The error fields of a JSON error body, if `text` is one. */
export const errorBodyInfo = (text: string): Option.Option<UpstreamErrorInfo> =>
  Option.map(decodeErrorBody(text), (body) =>
    "error" in body
      ? errorInfo(body.error)
      : "detail" in body
      ? { type: null, message: truncate(body.detail, 500) }
      : { type: body.type ?? null, message: truncate(body.message, 500) })

/** Error fields of any error body: JSON error shapes, else the (truncated) text itself. */
export const parseUpstreamError = (text: string): UpstreamErrorInfo => {
  const trimmed = text.trim()
  if (trimmed === "") return { type: null, message: null }
  return Option.getOrElse(errorBodyInfo(trimmed), () => ({ type: null, message: truncate(trimmed, 200) }))
}

/** `retry-after-ms` (OpenAI) wins; else `Retry-After` as delta-seconds or HTTP-date (relative to `nowMs`). */
export const parseRetryAfter = (headers: Headers.Headers, nowMs: number): number | null => {
  const ms = Option.getOrUndefined(Headers.get(headers, "retry-after-ms"))
  if (ms !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Math.round(Number(ms))
  const value = Option.getOrUndefined(Headers.get(headers, "retry-after"))?.trim()
  if (value === undefined || value === "") return null
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs)
}

export const truncate = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max)}…`)

// ---------------------------------------------------------------------------
// Streaming chat translation

/**
 * Checks that a 2xx streaming response really is an event stream. A JSON
 * body where SSE was expected is read: an error object becomes
 * `UpstreamInBandError`, anything else `UpstreamDecodeError`.
 */
export const expectEventStream = (
  a: Attempt,
  response: HttpClientResponse.HttpClientResponse,
  w: Watchdog
): Effect.Effect<HttpClientResponse.HttpClientResponse, ProviderError> => {
  const contentType = Option.getOrElse(Headers.get(response.headers, "content-type"), () => "")
  if (contentType === "" || contentType.toLowerCase().includes("text/event-stream")) return Effect.succeed(response)
  return Effect.flatMap(readBody(a, response, w, maxErrorBodyBytes), (text): Effect.Effect<never, ProviderError> =>
    Option.match(errorBodyInfo(text), {
      onNone: () =>
        Effect.fail(new UpstreamDecodeError({ provider: a.provider, detail: `expected text/event-stream, got ${truncate(contentType, 80)}` })),
      onSome: (info) =>
        Effect.fail(new UpstreamInBandError({ provider: a.provider, upstreamType: info.type, upstreamMessage: info.message, chunksReceived: 0 }))
    }))
}
