/**
 * Adapter for OpenAI-compatible chat-completions APIs: OpenAI itself,
 * Ollama, vLLM, LM Studio, any `${baseUrl}/chat/completions`
 * (`baseUrl` like `https://api.openai.com/v1`).
 *
 * One attempt per call: no retries here. Every failure is a `ProviderError`.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Effect, Either, Option, Redacted, Schema, Stream } from "effect"
import type { AttemptOptions, ProviderAdapter } from "./Adapter.js"
import type { ChatChunk, ChatRequest, ChatResponse, ProviderKey, Usage } from "./Domain.js"
import { type ProviderError, StreamCutError, UpstreamDecodeError, UpstreamInBandError } from "./Errors.js"
import * as EventStream from "./EventStream.js"
import type { StepResult } from "./EventStream.js"
import type * as Sse from "./Sse.js"
import {
  type Attempt,
  beginAttempt,
  decodeJson,
  ErrorObject,
  errorInfo,
  fetchText,
  truncate
} from "./Transport.js"

export interface OpenAiCompatOptions {
  /** Provider label carried by errors and spans (default "openai"). */
  readonly name?: string
}

export interface RawCompletion {
  /** The upstream JSON body, untouched. */
  readonly json: unknown
  readonly usage: Usage
  readonly content: string
}

export interface OpenAiCompatAdapter extends ProviderAdapter {
  readonly kind: "openai"
  /** Pass-through of a whole OpenAI request body (non-streaming; `stream`/`stream_options` are removed). */
  readonly completeRaw: (body: Record<string, unknown>, key: ProviderKey, opts: AttemptOptions) => Effect.Effect<RawCompletion, ProviderError>
  /** Model ids from `GET ${baseUrl}/models`. */
  readonly listModels: (key: ProviderKey, opts: AttemptOptions) => Effect.Effect<ReadonlyArray<string>, ProviderError>
}

// ---------------------------------------------------------------------------
// Wire schemas

const WireUsage = Schema.Struct({ prompt_tokens: Schema.Number, completion_tokens: Schema.Number })
const toUsage = (u: typeof WireUsage.Type | null | undefined): Usage =>
  u === null || u === undefined ? { inputTokens: 0, outputTokens: 0 } : { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens }

const ErrorEnvelope = Schema.Struct({ error: Schema.Union(Schema.String, ErrorObject) })

const Completion = Schema.Struct({
  id: Schema.optionalWith(Schema.String, { default: () => "" }),
  model: Schema.optional(Schema.String),
  choices: Schema.NonEmptyArray(
    Schema.Struct({
      message: Schema.Struct({ content: Schema.optional(Schema.NullOr(Schema.String)) }),
      finish_reason: Schema.optional(Schema.NullOr(Schema.String))
    })
  ),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})
const CompletionBody = Schema.Union(ErrorEnvelope, Completion)

const StreamChunk = Schema.Struct({
  choices: Schema.optional(
    Schema.Array(
      Schema.Struct({
        index: Schema.optional(Schema.Number),
        delta: Schema.optional(Schema.NullOr(Schema.Struct({ content: Schema.optional(Schema.NullOr(Schema.String)) }))),
        finish_reason: Schema.optional(Schema.NullOr(Schema.String))
      })
    )
  ),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})
const StreamPayload = Schema.Union(ErrorEnvelope, StreamChunk)

const ModelList = Schema.Struct({ data: Schema.Array(Schema.Struct({ id: Schema.String })) })
const StreamOptions = Schema.Record({ key: Schema.String, value: Schema.Unknown })

// ---------------------------------------------------------------------------
// Requests

const reserved: ReadonlySet<string> = new Set(["model", "messages", "stream", "stream_options"])

/** The upstream body: `extra` first, then the typed fields (which win), then the stream flags. */
export const requestBody = (req: ChatRequest, stream: boolean): Record<string, unknown> => {
  const body: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(req.extra ?? {})) if (!reserved.has(k)) body[k] = v
  body["model"] = req.model
  body["messages"] = req.messages.map((m) => ({ role: m.role, content: m.content }))
  if (req.temperature !== undefined) body["temperature"] = req.temperature
  if (req.maxTokens !== undefined) body["max_tokens"] = req.maxTokens
  if (req.topP !== undefined) body["top_p"] = req.topP
  if (req.stop !== undefined) body["stop"] = req.stop
  if (stream) {
    const given = Option.getOrElse(Schema.decodeUnknownOption(StreamOptions)(req.extra?.["stream_options"]), () => ({}))
    body["stream"] = true
    body["stream_options"] = { ...given, include_usage: true }
  }
  return body
}

const authorize = (key: ProviderKey) => (request: HttpClientRequest.HttpClientRequest) =>
  // Keyless local servers (Ollama, vLLM without --api-key) get no Authorization header.
  Redacted.value(key.value) === "" ? request : HttpClientRequest.bearerToken(request, key.value)

// ---------------------------------------------------------------------------
// Stream translation

interface StreamState {
  readonly finishReason: string | null
  readonly usage: Usage | null
}

const decodeStreamPayload = Schema.decodeUnknownEither(Schema.parseJson(StreamPayload))

const step = (provider: string) =>
(state: StreamState, event: Sse.SseEvent, delivered: number): StepResult<StreamState> => {
  if (event.data.trim() === "[DONE]") {
    return state.finishReason === null
      ? Either.left(new StreamCutError({ provider, chunksReceived: delivered, detail: "[DONE] without a finish_reason" }))
      : Either.right([state, [{ _tag: "Finish", finishReason: state.finishReason, usage: state.usage }]])
  }
  return decodeStreamPayload(event.data).pipe(
    Either.mapLeft((e): ProviderError => new UpstreamDecodeError({ provider, detail: `stream event: ${truncate(e.message, 300)}` })),
    Either.flatMap((payload): StepResult<StreamState> => {
      if ("error" in payload) {
        const info = errorInfo(payload.error)
        return Either.left(new UpstreamInBandError({ provider, upstreamType: info.type, upstreamMessage: info.message, chunksReceived: delivered }))
      }
      const chunks: Array<ChatChunk> = []
      let finishReason = state.finishReason
      for (const choice of payload.choices ?? []) {
        if (choice.index !== undefined && choice.index !== 0) continue // n > 1 is not supported: first choice only
        const text = choice.delta?.content
        if (text !== undefined && text !== null && text !== "") chunks.push({ _tag: "Delta", text })
        if (choice.finish_reason !== undefined && choice.finish_reason !== null) finishReason = choice.finish_reason
      }
      const usage = payload.usage === undefined || payload.usage === null ? state.usage : toUsage(payload.usage)
      return Either.right([{ finishReason, usage }, chunks])
    })
  )
}

// ---------------------------------------------------------------------------
// The adapter

export const make = (
  baseUrl: string,
  options: OpenAiCompatOptions = {}
): Effect.Effect<OpenAiCompatAdapter, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (http) => {
    const provider = options.name ?? "openai"
    const client = HttpClient.withScope(http)
    const root = baseUrl.replace(/\/+$/, "")

    const post = (body: Record<string, unknown>, key: ProviderKey, stream: boolean) =>
      HttpClientRequest.post(`${root}/chat/completions`).pipe(
        authorize(key),
        HttpClientRequest.accept(stream ? "text/event-stream" : "application/json"),
        HttpClientRequest.bodyUnsafeJson(body)
      )

    const annotate = (model: string, key: ProviderKey) =>
      Effect.annotateCurrentSpan({ "provider.name": provider, "provider.model": model, "provider.key_id": key.id })

    const readJson = <A, I>(a: Attempt, schema: Schema.Schema<A, I>, request: HttpClientRequest.HttpClientRequest) =>
      Effect.flatMap(fetchText(client, a, request), (text) => decodeJson(provider, schema, text))

    // No span of its own: the gateway's `Provider.attempt` span is this call's.
    const complete = Effect.fnUntraced(
      function* (req: ChatRequest, key: ProviderKey, opts: AttemptOptions) {
        yield* annotate(req.model, key)
        const a = yield* beginAttempt(provider, opts)
        const body = yield* readJson(a, CompletionBody, post(requestBody(req, false), key, false))
        if ("error" in body) {
          const info = errorInfo(body.error)
          return yield* new UpstreamInBandError({ provider, upstreamType: info.type, upstreamMessage: info.message, chunksReceived: 0 })
        }
        const choice = body.choices[0]
        const response: ChatResponse = {
          id: body.id,
          model: body.model ?? req.model,
          content: choice.message.content ?? "",
          finishReason: choice.finish_reason ?? "stop",
          usage: toUsage(body.usage)
        }
        return response
      },
      Effect.scoped
    )

    const stream = (req: ChatRequest, key: ProviderKey, opts: AttemptOptions): Stream.Stream<ChatChunk, ProviderError> =>
      Stream.unwrap(
        Effect.map(beginAttempt(provider, opts), (a) =>
          EventStream.open(client, a, post(requestBody(req, true), key, true), { finishReason: null, usage: null }, step(provider)))
      ).pipe(
        Stream.withSpan("Providers.openai.stream", { captureStackTrace: false,
          attributes: { "provider.name": provider, "provider.model": req.model, "provider.key_id": key.id }
        })
      )

    const completeRaw = Effect.fn("Providers.openai.completeRaw", { captureStackTrace: false })(
      function* (raw: Record<string, unknown>, key: ProviderKey, opts: AttemptOptions) {
        yield* annotate(typeof raw["model"] === "string" ? raw["model"] : "", key)
        const a = yield* beginAttempt(provider, opts)
        const body: Record<string, unknown> = {}
        for (const [k, v] of Object.entries(raw)) if (k !== "stream" && k !== "stream_options") body[k] = v
        const json = yield* readJson(a, Schema.Unknown, post(body, key, false))
        const typed = yield* Schema.decodeUnknown(CompletionBody)(json).pipe(
          Effect.mapError((e) => new UpstreamDecodeError({ provider, detail: truncate(e.message, 300) }))
        )
        if ("error" in typed) {
          const info = errorInfo(typed.error)
          return yield* new UpstreamInBandError({ provider, upstreamType: info.type, upstreamMessage: info.message, chunksReceived: 0 })
        }
        const result: RawCompletion = { json, usage: toUsage(typed.usage), content: typed.choices[0].message.content ?? "" }
        return result
      },
      Effect.scoped
    )

    const listModels = Effect.fn("Providers.openai.listModels", { captureStackTrace: false })(
      function* (key: ProviderKey, opts: AttemptOptions) {
        const a = yield* beginAttempt(provider, opts)
        const request = HttpClientRequest.get(`${root}/models`).pipe(authorize(key), HttpClientRequest.acceptJson)
        const list = yield* readJson(a, ModelList, request)
        return list.data.map((m) => m.id)
      },
      Effect.scoped
    )

    return { kind: "openai", baseUrl: root, name: provider, complete, stream, completeRaw, listModels }
  })
