/**
 * What can end a provider call, and how each ending reads in the error
 * catalog. Mapping lives here, once, for every endpoint that calls a model.
 */
import { Data, Option } from "effect"
import {
  type ApiError,
  ModelNotFound,
  ProviderNotConfigured,
  ProviderRateLimited,
  ProviderRejected,
  ProviderTimeout,
  ProviderUnavailable,
  UpstreamBadRequest
} from "../Errors.js"
import type { BulkheadFullError, CircuitOpenError, DeadlineExceeded } from "../Resilience/Errors.js"
import { isRetryable, type NoUsableKey, type ProviderError } from "./Errors.js"

/** A route target whose provider has no credentials. */
export class TargetNotConfigured extends Data.TaggedError("TargetNotConfigured")<{ readonly provider: string }> {}

export type AttemptFailure = ProviderError | NoUsableKey | CircuitOpenError | BulkheadFullError | TargetNotConfigured
export type CallFailure = AttemptFailure | DeadlineExceeded

export type GatewayError =
  | ModelNotFound
  | ProviderNotConfigured
  | ProviderUnavailable
  | ProviderTimeout
  | ProviderRateLimited
  | ProviderRejected
  | UpstreamBadRequest

/** Worth another attempt on the same target (another key counts as another attempt). */
export const attemptRetryable = (e: AttemptFailure): boolean => {
  switch (e._tag) {
    case "UpstreamStatusError":
      return isRetryable(e) || e.status === 401 || e.status === 403
    case "NoUsableKey":
      return e.rejected === 0 && e.retryAfterMs !== null
    case "CircuitOpenError":
    case "BulkheadFullError":
    case "TargetNotConfigured":
      return false
    default:
      return isRetryable(e)
  }
}

/** Worth trying the next target of the route: down, paused, full, keyless or failing transiently. */
export const shouldFallback = (e: CallFailure): boolean =>
  e._tag !== "DeadlineExceeded" &&
  (e._tag === "CircuitOpenError" || e._tag === "BulkheadFullError" || e._tag === "TargetNotConfigured" ||
    e._tag === "NoUsableKey" || attemptRetryable(e))

export const retryAfterOf = (e: AttemptFailure): Option.Option<number> => {
  switch (e._tag) {
    case "UpstreamStatusError":
      return Option.fromNullable(e.retryAfterMs)
    case "NoUsableKey":
      return Option.fromNullable(e.retryAfterMs)
    default:
      return Option.none()
  }
}

const retryAfterHeader = (ms: number): Record<string, string> => ({ "retry-after": String(Math.max(1, Math.ceil(ms / 1000))) })

const upstreamText = (s: string | null) => s === null ? "" : `: ${s.slice(0, 300)}`

export const toGatewayError = (e: CallFailure): GatewayError => {
  switch (e._tag) {
    case "DeadlineExceeded":
      return new ProviderTimeout({ message: `The model provider did not answer within ${e.budgetMs} ms.` })
    case "AttemptTimeout":
      return new ProviderTimeout({ message: `The model provider did not answer in time (${e.kind.replace("_", " ")}).` })
    case "UpstreamStatusError":
      if (e.status === 400 || e.status === 413 || e.status === 422) {
        return new UpstreamBadRequest({ message: `The model provider rejected the request${upstreamText(e.upstreamMessage)}` })
      }
      if (e.status === 401 || e.status === 403) {
        return new ProviderRejected({ message: "The model provider refused Parley's credentials." })
      }
      if (e.status === 404) return new ModelNotFound({ message: `The model provider does not know this model${upstreamText(e.upstreamMessage)}` })
      if (e.status === 429) {
        return new ProviderRateLimited(e.retryAfterMs !== null ? { headers: retryAfterHeader(e.retryAfterMs) } : {})
      }
      return new ProviderUnavailable({ message: `The model provider failed (status ${e.status}); try again later.` })
    case "ConnectError":
      return new ProviderUnavailable({ message: "The model provider could not be reached." })
    case "UpstreamDecodeError":
      return new ProviderRejected({ message: "The model provider sent a response Parley could not read." })
    case "StreamCutError":
      return new ProviderUnavailable({ message: "The model provider closed the connection before answering." })
    case "UpstreamInBandError":
      return new ProviderUnavailable({ message: `The model provider reported an error${upstreamText(e.upstreamType)}` })
    case "CircuitOpenError":
      return new ProviderUnavailable({
        message: `The model provider ${e.name} is failing; calls are paused for a moment.`,
        headers: retryAfterHeader(e.retryInMs)
      })
    case "BulkheadFullError":
      return new ProviderUnavailable({ message: `Too many concurrent calls to ${e.name}; try again shortly.`, headers: { "retry-after": "1" } })
    case "NoUsableKey":
      return e.rejected > 0 && e.coolingDown === 0
        ? new ProviderRejected({ message: "The model provider refused every configured credential." })
        : new ProviderRateLimited(e.retryAfterMs !== null ? { headers: retryAfterHeader(e.retryAfterMs) } : {})
    case "TargetNotConfigured":
      return new ProviderNotConfigured({ message: `The provider ${e.provider} is not configured (no API key).` })
  }
}

export const isGatewayError = (e: ApiError): e is GatewayError =>
  ["ModelNotFound", "ProviderNotConfigured", "ProviderUnavailable", "ProviderTimeout", "ProviderRateLimited", "ProviderRejected", "UpstreamBadRequest"].includes(e._tag)
