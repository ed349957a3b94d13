/**
 * The server span of a request, the root of its trace (or a child of the
 * caller's span when a W3C `traceparent` — or b3 — header came in).
 *
 * Parley opens it itself rather than through the platform's tracer
 * middleware (turned off in App.ts): every failure here is answered with a
 * rendered error body, so the request's Effect succeeds and the platform span
 * would end `OK` even for a 500. This one ends in error for every 5xx, with
 * the catalog code that ErrorHandling annotated it with as its message.
 */
import type { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { HttpTraceContext } from "@effect/platform"
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
  ATTR_USER_AGENT_ORIGINAL
} from "@opentelemetry/semantic-conventions"
import { Clock, Data, Effect, Exit, Option, type Tracer } from "effect"

/** The exit a 5xx server span ends with: its status message, nothing else. */
export class ServerErrorStatus extends Data.TaggedError("ServerErrorStatus")<{ readonly message: string }> {}

export const errorCodeAttribute = "parley.error.code"
export const errorIdAttribute = "parley.error_id"

const endWith = (span: Tracer.Span, exit: Exit.Exit<HttpServerResponse.HttpServerResponse>): Exit.Exit<unknown, unknown> => {
  if (Exit.isFailure(exit)) return exit
  const status = exit.value.status
  span.attribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status)
  if (status < 500) return exit
  const code = span.attributes.get(errorCodeAttribute)
  return Exit.fail(new ServerErrorStatus({ message: typeof code === "string" ? `${status} ${code}` : `HTTP ${status}` }))
}

/** Runs a request's handling inside its server span (`GET /v1/sessions/:id`, or `GET` when no route matched). */
export const withServerSpan = (
  req: HttpServerRequest.HttpServerRequest,
  path: string,
  route: Option.Option<string>,
  requestId: string
) =>
<R>(handling: Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>) => {
  const parent = Option.getOrUndefined(HttpTraceContext.fromHeaders(req.headers))
  const userAgent = req.headers["user-agent"]
  return Effect.acquireUseRelease(
    Effect.makeSpan(Option.match(route, { onNone: () => req.method, onSome: (r) => `${req.method} ${r}` }), {
      kind: "server",
      captureStackTrace: false,
      ...(parent !== undefined ? { parent } : { root: true }),
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: req.method,
        [ATTR_URL_PATH]: path,
        ...Option.match(route, { onNone: () => ({}), onSome: (r) => ({ [ATTR_HTTP_ROUTE]: r }) }),
        ...(userAgent !== undefined ? { [ATTR_USER_AGENT_ORIGINAL]: userAgent } : {}),
        ...Option.match(req.remoteAddress, { onNone: () => ({}), onSome: (a) => ({ [ATTR_CLIENT_ADDRESS]: a }) }),
        "parley.request_id": requestId
      }
    }),
    (span) => Effect.withParentSpan(handling, span),
    (span, exit) => Effect.flatMap(Clock.currentTimeNanos, (now) => Effect.sync(() => span.end(now, endWith(span, exit))))
  )
}
