/** The OpenAI-compatible contract: POST /v1/chat/completions and GET /v1/models. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import {
  BadRequest,
  Conflict,
  ContentBlocked,
  DbUnavailable,
  Forbidden,
  ModelNotFound,
  ProviderNotConfigured,
  ProviderRateLimited,
  ProviderRejected,
  ProviderTimeout,
  ProviderUnavailable,
  QuotaExceeded,
  RateLimited,
  RedisUnavailable,
  UpstreamBadRequest,
  wire
} from "../Errors.js"

const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })

export const OpenAiMessage = Schema.Struct({
  role: Schema.Literal("system", "developer", "user", "assistant"),
  content: Schema.Union(Schema.String, Schema.Array(TextPart).pipe(Schema.maxItems(100))),
  name: Schema.optional(Schema.String.pipe(Schema.maxLength(64)))
})

/**
 * A model name as providers spell them: printable ASCII. It comes back in the
 * `x-parley-model` response header, where Node refuses control characters and
 * anything past Latin-1 (the response would fail after the handler: a 500
 * with no body).
 */
export const ModelName = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(200),
  Schema.pattern(/^[\x20-\x7e]+$/, { message: () => "model must be printable ASCII" })
)

/** Known fields are checked; unknown ones pass through to OpenAI-compatible upstreams. */
export const CompletionRequest = Schema.Struct(
  {
    model: ModelName,
    messages: Schema.Array(OpenAiMessage).pipe(Schema.minItems(1), Schema.maxItems(2000)),
    stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
    stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }))),
    temperature: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 2)))),
    top_p: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 1)))),
    max_tokens: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.between(1, 1_000_000)))),
    max_completion_tokens: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.between(1, 1_000_000)))),
    stop: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Array(Schema.String).pipe(Schema.maxItems(4)))))
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({ identifier: "ChatCompletionRequest" })
export type CompletionRequest = typeof CompletionRequest.Type

export const CompletionResponse = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("chat.completion"),
  created: Schema.Int,
  model: Schema.String,
  choices: Schema.Array(Schema.Struct({
    index: Schema.Int,
    message: Schema.Struct({ role: Schema.Literal("assistant"), content: Schema.String }),
    finish_reason: Schema.String,
    logprobs: Schema.Null
  })),
  usage: Schema.Struct({ prompt_tokens: Schema.Int, completion_tokens: Schema.Int, total_tokens: Schema.Int })
}).annotations({ identifier: "ChatCompletion", description: "With `stream: true`, a text/event-stream of chat.completion.chunk objects ending with `data: [DONE]`." })

export const ChatHeaders = Schema.Struct({
  "x-parley-timeout-ms": Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 600_000))),
  "idempotency-key": Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))),
  /** `use`: cache this reply even if it is not deterministic; `skip`: never from or to the cache. */
  "x-parley-cache": Schema.optional(Schema.Literal("use", "skip"))
})

export const ModelList = Schema.Struct({
  object: Schema.Literal("list"),
  data: Schema.Array(Schema.Struct({ id: Schema.String, object: Schema.Literal("model"), created: Schema.Int, owned_by: Schema.String }))
}).annotations({ identifier: "ModelList" })

/** Everything admission and a provider call can answer with. */
export const ChatErrors = Schema.Union(
  wire(Forbidden), wire(RateLimited), wire(QuotaExceeded), wire(ContentBlocked), wire(ModelNotFound),
  wire(ProviderNotConfigured), wire(ProviderUnavailable), wire(ProviderTimeout), wire(ProviderRateLimited),
  wire(ProviderRejected), wire(UpstreamBadRequest), wire(DbUnavailable), wire(RedisUnavailable), wire(Conflict), wire(BadRequest)
)

export class OpenAiGroup extends HttpApiGroup.make("openai")
  .add(
    HttpApiEndpoint.post("chatCompletions", "/v1/chat/completions")
      .setPayload(CompletionRequest)
      .setHeaders(ChatHeaders)
      .addSuccess(CompletionResponse)
  )
  .add(HttpApiEndpoint.get("models", "/v1/models").addSuccess(ModelList))
  .addError(ChatErrors)
  .middleware(Authentication)
  .annotate(OpenApi.Description, "OpenAI-compatible and stateless; works with the official openai SDK.")
{}
