/**
 * The error catalog: every failure a client can see, as a `Schema.TaggedError`
 * with its catalog code, HTTP status, OpenAI error type and a safe message.
 *
 * Every error response on every endpoint has one body (`ErrorBody`), built by
 * `toBody` in the HTTP error middleware; `wire(Class)` is the schema endpoints
 * declare so the OpenAPI document shows that same body.
 */
import { HttpApiSchema } from "@effect/platform"
import { randomUUID } from "node:crypto"
import { Schema } from "effect"

export type OpenAiErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "api_error"

export const newErrorId = (): string => `err_${randomUUID().replace(/-/g, "")}`

export const IssueDetail = Schema.Struct({ path: Schema.String, message: Schema.String })
export type IssueDetail = typeof IssueDetail.Type

const fields = (defaultMessage: string) => ({
  message: Schema.String.pipe(Schema.propertySignature, Schema.withConstructorDefault(() => defaultMessage)),
  errorId: Schema.String.pipe(Schema.propertySignature, Schema.withConstructorDefault(newErrorId)),
  param: Schema.optional(Schema.String),
  details: Schema.optional(Schema.Array(IssueDetail)),
  /** Response headers that belong to this error (Retry-After, RateLimit-*). */
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})

const meta = <A>(status: number, description: string) => HttpApiSchema.annotations<A>({ status, description })

export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest", fields("The request body is not valid JSON or has the wrong content type."), meta(400, "ERR_BAD_REQUEST")
) {}
export class ValidationFailed extends Schema.TaggedError<ValidationFailed>()(
  "ValidationFailed", fields("The request does not match the schema."), meta(422, "ERR_VALIDATION")
) {}
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge", fields("The request body is larger than the limit."), meta(413, "ERR_PAYLOAD_TOO_LARGE")
) {}
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()(
  "Unauthenticated", fields("Missing or invalid credentials."), meta(401, "ERR_UNAUTHENTICATED")
) {}
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden", fields("You are not allowed to do this."), meta(403, "ERR_FORBIDDEN")
) {}
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound", fields("Not found."), meta(404, "ERR_NOT_FOUND")
) {}
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()(
  "AlreadyExists", fields("A resource with these values already exists."), meta(409, "ERR_ALREADY_EXISTS")
) {}
export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict", fields("The resource was modified concurrently; retry."), meta(409, "ERR_CONFLICT")
) {}
export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited", fields("Too many requests; slow down."), meta(429, "ERR_RATE_LIMITED")
) {}
export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()(
  "QuotaExceeded", fields("Daily quota used up."), meta(429, "ERR_QUOTA_EXCEEDED")
) {}
export class ContentBlocked extends Schema.TaggedError<ContentBlocked>()(
  "ContentBlocked", fields("The content was blocked by the content filter."), meta(400, "ERR_CONTENT_BLOCKED")
) {}
export class ModelNotFound extends Schema.TaggedError<ModelNotFound>()(
  "ModelNotFound", fields("Unknown model."), meta(404, "ERR_MODEL_NOT_FOUND")
) {}
export class ProviderNotConfigured extends Schema.TaggedError<ProviderNotConfigured>()(
  "ProviderNotConfigured", fields("The provider for this model is not configured."), meta(503, "ERR_PROVIDER_NOT_CONFIGURED")
) {}
export class ProviderUnavailable extends Schema.TaggedError<ProviderUnavailable>()(
  "ProviderUnavailable", fields("The model provider is unavailable; try again later."), meta(503, "ERR_PROVIDER_UNAVAILABLE")
) {}
export class ProviderTimeout extends Schema.TaggedError<ProviderTimeout>()(
  "ProviderTimeout", fields("The model provider did not answer in time."), meta(504, "ERR_PROVIDER_TIMEOUT")
) {}
export class ProviderRateLimited extends Schema.TaggedError<ProviderRateLimited>()(
  "ProviderRateLimited", fields("The model provider is rate limiting; try again later."), meta(429, "ERR_PROVIDER_RATE_LIMITED")
) {}
export class ProviderRejected extends Schema.TaggedError<ProviderRejected>()(
  "ProviderRejected", fields("The model provider rejected the request."), meta(502, "ERR_PROVIDER_REJECTED")
) {}
export class UpstreamBadRequest extends Schema.TaggedError<UpstreamBadRequest>()(
  "UpstreamBadRequest", fields("The model provider says the request is invalid."), meta(400, "ERR_UPSTREAM_BAD_REQUEST")
) {}
export class DbUnavailable extends Schema.TaggedError<DbUnavailable>()(
  "DbUnavailable", fields("The database is unavailable; try again later."), meta(503, "ERR_DB_UNAVAILABLE")
) {}
export class RedisUnavailable extends Schema.TaggedError<RedisUnavailable>()(
  "RedisUnavailable", fields("Redis is unavailable; try again later."), meta(503, "ERR_REDIS_UNAVAILABLE")
) {}
export class SessionPersistFailed extends Schema.TaggedError<SessionPersistFailed>()(
  "SessionPersistFailed", fields("The reply could not be stored."), meta(500, "ERR_SESSION_PERSIST_FAILED")
) {}
export class InternalError extends Schema.TaggedError<InternalError>()(
  "InternalError", fields("Internal error."), meta(500, "ERR_INTERNAL")
) {}

/** Everything an endpoint can answer with. */
export type ApiError =
  | BadRequest | ValidationFailed | PayloadTooLarge | Unauthenticated | Forbidden | NotFound
  | AlreadyExists | Conflict | RateLimited | QuotaExceeded | ContentBlocked | ModelNotFound
  | ProviderNotConfigured | ProviderUnavailable | ProviderTimeout | ProviderRateLimited
  | ProviderRejected | UpstreamBadRequest | DbUnavailable | RedisUnavailable
  | SessionPersistFailed | InternalError

interface CatalogEntry {
  readonly code: string
  readonly status: number
  readonly type: OpenAiErrorType
}

/** code, status and OpenAI type of every HTTP error, by tag. */
export const catalog: { readonly [K in ApiError["_tag"]]: CatalogEntry } = {
  BadRequest: { code: "ERR_BAD_REQUEST", status: 400, type: "invalid_request_error" },
  ValidationFailed: { code: "ERR_VALIDATION", status: 422, type: "invalid_request_error" },
  PayloadTooLarge: { code: "ERR_PAYLOAD_TOO_LARGE", status: 413, type: "invalid_request_error" },
  Unauthenticated: { code: "ERR_UNAUTHENTICATED", status: 401, type: "authentication_error" },
  Forbidden: { code: "ERR_FORBIDDEN", status: 403, type: "permission_error" },
  NotFound: { code: "ERR_NOT_FOUND", status: 404, type: "not_found_error" },
  AlreadyExists: { code: "ERR_ALREADY_EXISTS", status: 409, type: "invalid_request_error" },
  Conflict: { code: "ERR_CONFLICT", status: 409, type: "invalid_request_error" },
  RateLimited: { code: "ERR_RATE_LIMITED", status: 429, type: "rate_limit_error" },
  QuotaExceeded: { code: "ERR_QUOTA_EXCEEDED", status: 429, type: "rate_limit_error" },
  ContentBlocked: { code: "ERR_CONTENT_BLOCKED", status: 400, type: "invalid_request_error" },
  ModelNotFound: { code: "ERR_MODEL_NOT_FOUND", status: 404, type: "not_found_error" },
  ProviderNotConfigured: { code: "ERR_PROVIDER_NOT_CONFIGURED", status: 503, type: "api_error" },
  ProviderUnavailable: { code: "ERR_PROVIDER_UNAVAILABLE", status: 503, type: "api_error" },
  ProviderTimeout: { code: "ERR_PROVIDER_TIMEOUT", status: 504, type: "api_error" },
  ProviderRateLimited: { code: "ERR_PROVIDER_RATE_LIMITED", status: 429, type: "rate_limit_error" },
  ProviderRejected: { code: "ERR_PROVIDER_REJECTED", status: 502, type: "api_error" },
  UpstreamBadRequest: { code: "ERR_UPSTREAM_BAD_REQUEST", status: 400, type: "invalid_request_error" },
  DbUnavailable: { code: "ERR_DB_UNAVAILABLE", status: 503, type: "api_error" },
  RedisUnavailable: { code: "ERR_REDIS_UNAVAILABLE", status: 503, type: "api_error" },
  SessionPersistFailed: { code: "ERR_SESSION_PERSIST_FAILED", status: 500, type: "api_error" },
  InternalError: { code: "ERR_INTERNAL", status: 500, type: "api_error" }
}

/**
 * Codes that never are an HTTP status of their own: they travel as stream
 * events, warnings, message status, log lines or job state.
 */
export const EventCodes = {
  streamInterrupted: "ERR_STREAM_INTERRUPTED",
  memoryUnavailable: "ERR_MEMORY_UNAVAILABLE",
  memoryExtractFailed: "ERR_MEMORY_EXTRACT_FAILED",
  cacheParseFailed: "ERR_CACHE_PARSE_FAILED",
  taskTimeout: "ERR_TASK_TIMEOUT"
} as const

export const ErrorBody = Schema.Struct({
  error: Schema.Struct({
    code: Schema.String,
    message: Schema.String,
    type: Schema.String,
    param: Schema.NullOr(Schema.String),
    error_id: Schema.String,
    details: Schema.optional(Schema.Array(IssueDetail))
  })
}).annotations({ identifier: "ErrorBody" })
export type ErrorBody = typeof ErrorBody.Type

const allTags = new Set<string>(Object.keys(catalog))

export const isApiError = (u: unknown): u is ApiError =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && allTags.has(u._tag) &&
  "errorId" in u

export const entryOf = (e: ApiError): CatalogEntry => catalog[e._tag]

export const toBody = (e: ApiError): ErrorBody => ({
  error: {
    code: catalog[e._tag].code,
    message: e.message,
    type: catalog[e._tag].type,
    param: e.param ?? null,
    error_id: e.errorId,
    ...(e.details !== undefined ? { details: e.details } : {})
  }
})

type CatalogClass<A extends ApiError, I> = Schema.Schema<A, I> & {
  readonly _tag: A["_tag"]
  new(props: { readonly message?: string; readonly errorId?: string; readonly param?: string }): A
}

/**
 * The schema an endpoint declares for an error: the catalog body on the wire,
 * the tagged error in code, with the class's HTTP status.
 */
export const wire = <A extends ApiError, I>(cls: CatalogClass<A, I>) =>
  Schema.transform(ErrorBody, Schema.typeSchema(cls), {
    strict: true,
    decode: (body) =>
      new cls({
        message: body.error.message,
        errorId: body.error.error_id,
        ...(body.error.param !== null ? { param: body.error.param } : {})
      }),
    encode: (e) => toBody(e)
  }).annotations(HttpApiSchema.annotations({ status: catalog[cls._tag].status }))
