/**
 * Typed failures of one provider attempt.
 *
 * Adapters never retry; they classify. `isRetryable` and
 * `countsAsCircuitFailure` are the two questions the resilience layer asks.
 * No error carries a key value, a request body or a full upstream body: only
 * the provider name, status, parsed (truncated) upstream error fields and
 * timing facts.
 */
import { Data } from "effect"

/**
 * The connection failed before a complete response arrived: DNS failure,
 * refused, reset, closed by the peer before the response headers
 * (`phase: "connect"`), or lost while reading a non-streaming body
 * (`phase: "body"`). `code` is the Node/undici error code when known
 * (`ECONNREFUSED`, `ENOTFOUND`, `UND_ERR_SOCKET`, ...).
 */
export class ConnectError extends Data.TaggedError("ConnectError")<{
  readonly provider: string
  readonly phase: "connect" | "body"
  readonly code: string | null
  readonly detail: string
}> {
  override get message(): string {
    return `${this.provider}: connection failed (${this.phase}${this.code === null ? "" : `, ${this.code}`}): ${this.detail}`
  }
}

/**
 * A per-attempt timeout fired. `connect`: TCP/TLS connect (enforced by the
 * pooled dispatcher, see Adapter.layerHttpClient); `first_byte`: response
 * headers (non-streaming) or first SSE event (streaming) not received in
 * connectTimeout + firstByteTimeout; `idle`: gap between SSE events (or body
 * chunks) longer than idleTimeout; `total`: the optional totalTimeout.
 */
export class AttemptTimeout extends Data.TaggedError("AttemptTimeout")<{
  readonly provider: string
  readonly kind: "connect" | "first_byte" | "idle" | "total"
  readonly timeoutMs: number
}> {
  override get message(): string {
    return `${this.provider}: ${this.kind} timeout after ${this.timeoutMs}ms`
  }
}

/** The upstream answered with a non-2xx status. */
export class UpstreamStatusError extends Data.TaggedError("UpstreamStatusError")<{
  readonly provider: string
  readonly status: number
  /** From `retry-after-ms`, else `Retry-After` (seconds or HTTP-date); null when absent/invalid. */
  readonly retryAfterMs: number | null
  /** e.g. "rate_limit_error", "overloaded_error", "invalid_request_error"; null when the body had none. */
  readonly upstreamType: string | null
  /** The upstream's error message, truncated; null when the body had none. */
  readonly upstreamMessage: string | null
}> {
  override get message(): string {
    const detail = [this.upstreamType, this.upstreamMessage].filter((s) => s !== null).join(": ")
    return `${this.provider}: upstream status ${this.status}${detail === "" ? "" : ` (${detail})`}`
  }
}

/** A 2xx body that is not the expected JSON / SSE shape. Not retryable: the same upstream will answer the same. */
export class UpstreamDecodeError extends Data.TaggedError("UpstreamDecodeError")<{
  readonly provider: string
  readonly detail: string
}> {
  override get message(): string {
    return `${this.provider}: unexpected upstream body: ${this.detail}`
  }
}

/** A stream ended (or the connection broke) before its terminal event. */
export class StreamCutError extends Data.TaggedError("StreamCutError")<{
  readonly provider: string
  /** Text deltas already emitted to the consumer before the cut. */
  readonly chunksReceived: number
  readonly detail: string
}> {
  override get message(): string {
    return `${this.provider}: stream cut after ${this.chunksReceived} chunk(s): ${this.detail}`
  }
}

/** An error event inside a 200 stream (`event: error` / `data: {"error": ...}`). */
export class UpstreamInBandError extends Data.TaggedError("UpstreamInBandError")<{
  readonly provider: string
  readonly upstreamType: string | null
  readonly upstreamMessage: string | null
  readonly chunksReceived: number
}> {
  override get message(): string {
    return `${this.provider}: in-stream error ${this.upstreamType ?? "unknown"}: ${this.upstreamMessage ?? ""}`
  }
}

export type ProviderError =
  | ConnectError
  | AttemptTimeout
  | UpstreamStatusError
  | UpstreamDecodeError
  | StreamCutError
  | UpstreamInBandError

/** No key of a provider can be used right now (all rejected or cooling down). */
export class NoUsableKey extends Data.TaggedError("NoUsableKey")<{
  readonly provider: string
  readonly rejected: number
  readonly coolingDown: number
  /** When every usable key is cooling down: time until the first one is back; otherwise null. */
  readonly retryAfterMs: number | null
}> {
  override get message(): string {
    return `${this.provider}: no usable key (${this.rejected} rejected, ${this.coolingDown} cooling down)`
  }
}

/** In-band error types that mean "transient, try again" (Anthropic and OpenAI vocabularies). */
const transientInBandTypes: ReadonlySet<string> = new Set([
  "overloaded_error",
  "api_error",
  "server_error",
  "internal_server_error",
  "service_unavailable",
  "rate_limit_error",
  "rate_limit_exceeded",
  "timeout"
])

export const isRetryableStatus = (status: number): boolean =>
  status === 408 || status === 409 || status === 429 || status >= 500

export const isTransientInBandType = (type: string | null): boolean =>
  type !== null && transientInBandTypes.has(type)

/**
 * Retry only transient failures. A cut stream is retryable only when nothing
 * reached the consumer; whether the *client* already saw a byte is the
 * caller's business (it also has `chunksReceived`).
 */
export const isRetryable = (e: ProviderError): boolean => {
  switch (e._tag) {
    case "ConnectError":
      // A malformed base URL is configuration, not a transient failure.
      return e.code !== "ERR_INVALID_URL"
    case "AttemptTimeout":
      return true
    case "UpstreamStatusError":
      return isRetryableStatus(e.status)
    case "UpstreamDecodeError":
      return false
    case "StreamCutError":
      return e.chunksReceived === 0
    case "UpstreamInBandError":
      return isTransientInBandType(e.upstreamType)
  }
}

/**
 * Whether the failure says something about the upstream's health. Client
 * mistakes (4xx other than 408/429: bad request, auth, not found, conflict)
 * do not open a circuit; everything else does.
 */
export const countsAsCircuitFailure = (e: ProviderError): boolean =>
  e._tag !== "UpstreamStatusError" || !(e.status >= 400 && e.status < 500) || e.status === 408 || e.status === 429
