/**
 * The outermost middleware: request id (an incoming well-formed one is
 * honoured), the server span (none for health, readiness and metrics), body
 * limit (413 before anything reads the body), content type (400 for a body
 * that is not JSON), the access log line, request metrics by route template
 * and status, and a last guard that answers anything that escaped with the
 * catalog body.
 */
import { HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { HttpApp } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { withMaxBodySize } from "@effect/platform/HttpIncomingMessage"
import { Effect, Exit, Option } from "effect"
import { randomUUID } from "node:crypto"
import { type ApiError, BadRequest, PayloadTooLarge } from "../Errors.js"
import { recordRequest, unmatchedRoute } from "../Observability/Metrics.js"
import type { RouteTable } from "../Observability/Routes.js"
import { withServerSpan } from "../Observability/ServerSpan.js"
import { errorResponse, isInterruption, logApiError, toApiError } from "./ErrorHandling.js"

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/

export const requestIdOf = (req: HttpServerRequest.HttpServerRequest): string => {
  const incoming = req.headers["x-request-id"]
  return incoming !== undefined && requestIdPattern.test(incoming) ? incoming : `req_${randomUUID()}`
}

const bodyMethods = new Set(["POST", "PUT", "PATCH"])

const precheck = (req: HttpServerRequest.HttpServerRequest, maxBodyBytes: number): Option.Option<ApiError> => {
  const length = req.headers["content-length"]
  const declared = length !== undefined ? Number(length) : undefined
  if (declared !== undefined && Number.isFinite(declared) && declared > maxBodyBytes) {
    return Option.some(new PayloadTooLarge({ message: `The request body is larger than ${maxBodyBytes} bytes.` }))
  }
  const hasBody = (declared !== undefined && declared > 0) || req.headers["transfer-encoding"] !== undefined
  const contentType = req.headers["content-type"]
  if (bodyMethods.has(req.method) && hasBody && (contentType === undefined || !contentType.toLowerCase().includes("application/json"))) {
    return Option.some(new BadRequest({ message: "The request body must be JSON (Content-Type: application/json)." }))
  }
  return Option.none()
}

/** JSON deeper than this is refused before any decoder recurses into it. */
const maxJsonDepth = 64

const tooDeep = (text: string): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) {
      if (++depth > maxJsonDepth) return true
    } else if (c === 93 || c === 125) depth--
  }
  return false
}

/**
 * Reads a JSON body once (the platform caches it for the decoder) within the
 * size limit, and refuses nesting no schema needs. A chunked body over the
 * limit is drained, not reset, so the client reads its 413.
 */
const bodyGuard = (req: HttpServerRequest.HttpServerRequest): Effect.Effect<void, BadRequest> => {
  if (!bodyMethods.has(req.method) || !(req.headers["content-type"] ?? "").toLowerCase().includes("application/json")) {
    return Effect.void
  }
  if (req.headers["content-length"] === undefined) {
    const incoming = NodeHttpServerRequest.toIncomingMessage(req)
    incoming.destroy = function(this: typeof incoming) {
      this.resume()
      return this
    }
  }
  return req.text.pipe(
    Effect.orDie,
    Effect.flatMap((text) =>
      tooDeep(text)
        ? Effect.fail(new BadRequest({ message: `The request body is nested deeper than ${maxJsonDepth} levels.` }))
        : Effect.void
    )
  )
}

/** Probed every few seconds: neither logged nor traced (still counted). */
const quietPaths = new Set(["/health", "/ready", "/metrics"])

/** A client that went away before its response: nginx's convention. */
const clientClosedStatus = 499

export const requestContext = (maxBodyBytes: number, routes: RouteTable) =>
<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (req) => {
    const requestId = requestIdOf(req)
    const started = Date.now()
    const path = req.url.split("?")[0] ?? req.url
    const route = routes.match(req.method, path)
    const quiet = quietPaths.has(path)
    // The app writes its response before this middleware sees it: headers go on through a pre-response handler.
    const withId = (res: HttpServerResponse.HttpServerResponse) => HttpServerResponse.setHeader(res, "x-request-id", requestId)
    const handled = Option.match(precheck(req, maxBodyBytes), {
      onSome: (e) => Effect.as(logApiError(e), errorResponse(e)),
      onNone: () =>
        HttpApp.appendPreResponseHandler((_, res) => Effect.succeed(withId(res))).pipe(
          Effect.zipRight(bodyGuard(req)),
          Effect.zipRight(app),
          withMaxBodySize(Option.some(maxBodyBytes)),
          Effect.catchAllCause((cause) =>
            isInterruption(cause)
              ? Effect.interrupt
              : Effect.map(toApiError(cause), errorResponse)
          )
        )
    })
    const observed = handled.pipe(
      Effect.tap((response) =>
        quiet ? Effect.void : Effect.logInfo("request").pipe(
          Effect.annotateLogs({ method: req.method, path, status: response.status, duration_ms: Date.now() - started })
        )
      ),
      Effect.onExit((exit) =>
        recordRequest(
          req.method,
          Option.getOrElse(route, () => unmatchedRoute),
          Exit.isSuccess(exit) ? exit.value.status : clientClosedStatus,
          (Date.now() - started) / 1000
        )
      ),
      Effect.map(withId),
      Effect.annotateLogs("request_id", requestId),
      HttpMiddleware.withLoggerDisabled
    )
    return quiet ? Effect.withTracerEnabled(observed, false) : withServerSpan(req, path, route, requestId)(observed)
  })
