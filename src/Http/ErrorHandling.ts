/**
 * One error body everywhere. The API-level middleware turns every failure —
 * catalog errors from handlers and auth, schema decode failures, unknown
 * routes, unreadable bodies and defects — into the catalog body, with the
 * error's headers, and logs it with its error id.
 */
import { HttpApiError, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpApp } from "@effect/platform"
import { Cause, Chunk, Effect, Option } from "effect"
import {
  type ApiError,
  BadRequest,
  catalog,
  InternalError,
  isApiError,
  NotFound,
  PayloadTooLarge,
  toBody,
  ValidationFailed
} from "../Errors.js"
import { countError } from "../Observability/Metrics.js"
import { errorCodeAttribute, errorIdAttribute } from "../Observability/ServerSpan.js"

export const errorResponse = (e: ApiError): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(toBody(e), { status: catalog[e._tag].status, headers: e.headers ?? {} })

/** The log line of an error response, its count by code, and its code and id on the server span. */
export const logApiError = (e: ApiError) => {
  const { code, status } = catalog[e._tag]
  const log = status >= 500 ? Effect.logError(e.message) : Effect.logInfo(e.message)
  return log.pipe(
    Effect.annotateLogs({ code, error_id: e.errorId, status }),
    Effect.zipRight(countError(code)),
    Effect.zipRight(Effect.annotateCurrentSpan({ [errorCodeAttribute]: code, [errorIdAttribute]: e.errorId }))
  )
}

const fromDecodeError = (e: HttpApiError.HttpApiDecodeError): ValidationFailed =>
  new ValidationFailed({
    message: "The request does not match the schema: " +
      e.issues.slice(0, 5).map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`).join("; "),
    details: e.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
    ...(e.issues[0] !== undefined && e.issues[0].path.length > 0 ? { param: e.issues[0].path.map(String).join(".") } : {})
  })

const isRequestError = (u: unknown): u is HttpServerError.RequestError =>
  HttpServerError.isServerError(u) && u._tag === "RequestError"

const mentionsMaxBytes = (u: unknown): boolean =>
  u instanceof Error && (u.message.includes("maxBytes") || mentionsMaxBytes(u.cause))

/** A failure or defect as the catalog error the client sees. */
export const toApiError = (cause: Cause.Cause<unknown>): Effect.Effect<ApiError> => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    if (isApiError(e)) return Effect.succeed(e)
    if (e instanceof HttpApiError.HttpApiDecodeError) return Effect.succeed(fromDecodeError(e))
    if (HttpServerError.isServerError(e) && e._tag === "RouteNotFound") {
      return Effect.map(Effect.serviceOption(HttpServerRequest.HttpServerRequest), (req): ApiError =>
        Option.match(req, {
          onNone: () => new NotFound(),
          onSome: (r) => new NotFound({ message: `No route for ${r.method} ${r.url.split("?")[0]}.` })
        }))
    }
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect) && isRequestError(defect.value) && defect.value.reason === "Decode") {
    return Effect.succeed(
      mentionsMaxBytes(defect.value.cause)
        ? new PayloadTooLarge({ headers: { connection: "close" } })
        : new BadRequest({ message: "The request body is not valid JSON." })
    )
  }
  const internal = new InternalError()
  return Effect.logError("unhandled defect", cause).pipe(
    Effect.annotateLogs({ code: catalog.InternalError.code, error_id: internal.errorId }),
    Effect.as(internal)
  )
}

/**
 * An interrupted request: only interruptions, or the platform's mark of one —
 * an interruption plus the empty 499 (client gone) / 503 (server stopping)
 * response it attaches as a defect. Not a defect of Parley's: it is passed on
 * as an interruption (the platform answers what is still answerable), never
 * logged as an unhandled defect.
 */
export const isInterruption = (cause: Cause.Cause<unknown>): boolean =>
  Cause.isInterruptedOnly(cause) ||
  (Cause.isInterrupted(cause) && Option.isNone(Cause.failureOption(cause)) &&
    Chunk.every(Cause.defects(cause), HttpServerResponse.isServerResponse))

/** HttpApi-level middleware: every failure becomes a catalog response. */
export const catalogErrors = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
  Effect.catchAllCause(app, (cause) =>
    isInterruption(cause)
      ? Effect.interrupt
      : Effect.flatMap(toApiError(cause), (e) => Effect.as(logApiError(e), errorResponse(e))))
