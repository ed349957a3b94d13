/**
 * Errors raised by the resilience primitives themselves.
 *
 * They are deliberately local to this module: the HTTP layer maps them onto
 * the public error catalog, so nothing here knows about status codes.
 */
import { Data } from "effect"

/** The request-wide time budget ran out before the work finished. */
export class DeadlineExceeded extends Data.TaggedError("DeadlineExceeded")<{
  /** The whole budget the deadline was created with, for diagnostics. */
  readonly budgetMs: number
}> {
  override get message(): string {
    return `Deadline of ${this.budgetMs}ms exceeded`
  }
}

/** The circuit breaker refused the call without running it. */
export class CircuitOpenError extends Data.TaggedError("CircuitOpenError")<{
  /** Breaker name (usually the upstream provider). */
  readonly name: string
  /** How long until the breaker will admit a probe; 0 when half-open and full. */
  readonly retryInMs: number
}> {
  override get message(): string {
    return `Circuit '${this.name}' is open; retry in ${this.retryInMs}ms`
  }
}

/** No bulkhead permit became free within the allowed wait. */
export class BulkheadFullError extends Data.TaggedError("BulkheadFullError")<{
  readonly name: string
  readonly maxConcurrent: number
  readonly maxWaitMs: number
}> {
  override get message(): string {
    return `Bulkhead '${this.name}' is full (${this.maxConcurrent} in flight, waited ${this.maxWaitMs}ms)`
  }
}
