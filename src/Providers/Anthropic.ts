/**
 * Adapter for Anthropic's Messages API (`${baseUrl}/v1/messages`, baseUrl
 * like `https://api.anthropic.com`).
 *
 * Translation: system messages are joined into the top-level `system`;
 * `max_tokens` is required upstream (default 1024); `stop` → `stop_sequences`.
 * Back: text blocks joined; `stop_reason` mapped to OpenAI's vocabulary.
 * `extra` (OpenAI-only fields) is not forwarded.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Effect, Either, type ParseResult, Redacted, Schema, Stream } from "effect"
import type { AttemptOptions, ProviderAdapter } from "./Adapter.js"
import type { ChatChunk, ChatRequest, ChatResponse, ProviderKey } from "./Domain.js"
import { type ProviderError, UpstreamDecodeError, UpstreamInBandError } from "./Errors.js"
import * as EventStream from "./EventStream.js"
import type { StepResult } from "./EventStream.js"
import type * as Sse from "./Sse.js"
import {
  beginAttempt,
  decodeJson,
  ErrorObject,
  errorInfo,
  fetchText,
  truncate
} from "./Transport.js"

export const ANTHROPIC_VERSION = "2023-06-01"
export const DEFAULT_MAX_TOKENS = 1024

export interface AnthropicOptions {
  /** Provider label carried by errors and spans (default "anthropic"). */
  readonly name?: string
}

/** Anthropic `stop_reason` → OpenAI `finish_reason`. Unknown reasons pass through. */
export const finishReason = (stopReason: string | null): string => {
  switch (stopReason) {
    case null:
    case "end_turn":
    case "stop_sequence":
      return "stop"
    case "max_tokens":
      return "length"
    case "tool_use":
      return "tool_calls"
    case "refusal":
      return "content_filter"
    default:
      return stopReason
  }
}

export const requestBody = (req: ChatRequest, stream: boolean): Record<string, unknown> => {
  const system = req.messages.filter((m) => m.role === "system").map((m) => m.content)
  const body: Record<string, unknown> = {
    model: req.model,
    max_tokens: req.maxTokens ?? DEFAULT_MAX_TOKENS,
    messages: req.messages.filter((m) => m.role !== "system").map((m) => ({ role: m.role, content: m.content }))
  }
  if (system.length > 0) body["system"] = system.join("\n\n")
  if (req.temperature !== undefined) body["temperature"] = req.temperature
  if (req.topP !== undefined) body["top_p"] = req.topP
  if (req.stop !== undefined && req.stop.length > 0) body["stop_sequences"] = req.stop
  if (stream) body["stream"] = true
  return body
}

// ---------------------------------------------------------------------------
// Wire schemas

const ErrorEnvelope = Schema.Struct({ type: Schema.Literal("error"), error: ErrorObject })

const Message = Schema.Struct({
  id: Schema.String,
  model: Schema.String,
  content: Schema.Array(Schema.Struct({ type: Schema.String, text: Schema.optional(Schema.String) })),
  stop_reason: Schema.NullOr(Schema.String),
  usage: Schema.Struct({ input_tokens: Schema.Number, output_tokens: Schema.Number })
})
const MessageBody = Schema.Union(ErrorEnvelope, Message)

const EventType = Schema.parseJson(Schema.Struct({ type: Schema.String }))
const MessageStart = Schema.parseJson(
  Schema.Struct({ message: Schema.Struct({ usage: Schema.Struct({ input_tokens: Schema.Number, output_tokens: Schema.optional(Schema.Number) }) }) })
)
const BlockDelta = Schema.parseJson(Schema.Struct({ delta: Schema.Struct({ type: Schema.String, text: Schema.optional(Schema.String) }) }))
const MessageDelta = Schema.parseJson(
  Schema.Struct({
    delta: Schema.Struct({ stop_reason: Schema.optional(Schema.NullOr(Schema.String)) }),
    usage: Schema.optional(Schema.Struct({ output_tokens: Schema.Number }))
  })
)
const ErrorEvent = Schema.parseJson(Schema.Struct({ error: ErrorObject }))

// ---------------------------------------------------------------------------
// Stream translation

interface StreamState {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly stopReason: string | null
}

type Step = StepResult<StreamState>

const decoders = {
  EventType: Schema.decodeUnknownEither(EventType),
  MessageStart: Schema.decodeUnknownEither(MessageStart),
  BlockDelta: Schema.decodeUnknownEither(BlockDelta),
  MessageDelta: Schema.decodeUnknownEither(MessageDelta),
  ErrorEvent: Schema.decodeUnknownEither(ErrorEvent)
}

const step = (provider: string) => (state: StreamState, event: Sse.SseEvent, delivered: number): Step => {
  const decode = <A>(decoder: (u: unknown) => Either.Either<A, ParseResult.ParseError>) =>
    decoder(event.data).pipe(
      Either.mapLeft((e): ProviderError => new UpstreamDecodeError({ provider, detail: `stream event: ${truncate(e.message, 300)}` }))
    )
  const emit = (next: StreamState, chunks: ReadonlyArray<ChatChunk> = []): Step => Either.right([next, chunks])
  return Either.flatMap(decode(decoders.EventType), ({ type }): Step => {
    switch (type) {
      case "message_start":
        return Either.flatMap(decode(decoders.MessageStart), ({ message }) =>
          emit({ ...state, inputTokens: message.usage.input_tokens, outputTokens: message.usage.output_tokens ?? state.outputTokens }))
      case "content_block_delta":
        return Either.flatMap(decode(decoders.BlockDelta), ({ delta }) =>
          // Only text reaches the client; thinking / tool-input deltas are dropped.
          delta.type === "text_delta" && delta.text !== undefined && delta.text !== ""
            ? emit(state, [{ _tag: "Delta", text: delta.text }])
            : emit(state))
      case "message_delta":
        return Either.flatMap(decode(decoders.MessageDelta), ({ delta, usage }) =>
          emit({
            ...state,
            stopReason: delta.stop_reason ?? state.stopReason,
            outputTokens: usage?.output_tokens ?? state.outputTokens
          }))
      case "message_stop":
        return emit(state, [{
          _tag: "Finish",
          finishReason: finishReason(state.stopReason),
          usage: { inputTokens: state.inputTokens, outputTokens: state.outputTokens }
        }])
      case "error":
        return Either.flatMap(decode(decoders.ErrorEvent), ({ error }): Step => {
          const info = errorInfo(error)
          return Either.left(new UpstreamInBandError({ provider, upstreamType: info.type, upstreamMessage: info.message, chunksReceived: delivered }))
        })
      default:
        // ping, content_block_start/stop and future event types
        return emit(state)
    }
  })
}

// ---------------------------------------------------------------------------
// The adapter

export const make = (
  baseUrl: string,
  options: AnthropicOptions = {}
): Effect.Effect<ProviderAdapter, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (http) => {
    const provider = options.name ?? "anthropic"
    const client = HttpClient.withScope(http)
    const root = baseUrl.replace(/\/+$/, "")

    const post = (req: ChatRequest, key: ProviderKey, stream: boolean) =>
      HttpClientRequest.post(`${root}/v1/messages`).pipe(
        // The secret leaves its Redacted box here, into the header (which the platform's tracing redacts).
        HttpClientRequest.setHeader("x-api-key", Redacted.value(key.value)),
        HttpClientRequest.setHeader("anthropic-version", ANTHROPIC_VERSION),
        HttpClientRequest.accept(stream ? "text/event-stream" : "application/json"),
        HttpClientRequest.bodyUnsafeJson(requestBody(req, stream))
      )

    // No span of its own: the gateway's `Provider.attempt` span is this call's.
    const complete = Effect.fnUntraced(
      function* (req: ChatRequest, key: ProviderKey, opts: AttemptOptions) {
        yield* Effect.annotateCurrentSpan({ "provider.name": provider, "provider.model": req.model, "provider.key_id": key.id })
        const a = yield* beginAttempt(provider, opts)
        const text = yield* fetchText(client, a, post(req, key, false))
        const body = yield* decodeJson(provider, MessageBody, text)
        if ("error" in body) {
          const info = errorInfo(body.error)
          return yield* new UpstreamInBandError({ provider, upstreamType: info.type, upstreamMessage: info.message, chunksReceived: 0 })
        }
        const result: ChatResponse = {
          id: body.id,
          model: body.model,
          content: body.content.flatMap((b) => (b.type === "text" && b.text !== undefined ? [b.text] : [])).join(""),
          finishReason: finishReason(body.stop_reason),
          usage: { inputTokens: body.usage.input_tokens, outputTokens: body.usage.output_tokens }
        }
        return result
      },
      Effect.scoped
    )

    const stream = (req: ChatRequest, key: ProviderKey, opts: AttemptOptions): Stream.Stream<ChatChunk, ProviderError> =>
      Stream.unwrap(
        Effect.map(beginAttempt(provider, opts), (a) =>
          EventStream.open(client, a, post(req, key, true), { inputTokens: 0, outputTokens: 0, stopReason: null }, step(provider)))
      ).pipe(
        Stream.withSpan("Providers.anthropic.stream", { captureStackTrace: false,
          attributes: { "provider.name": provider, "provider.model": req.model, "provider.key_id": key.id }
        })
      )

    return { kind: "anthropic", name: provider, baseUrl: root, complete, stream }
  })
