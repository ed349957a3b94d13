/**
 * Provider-neutral chat types shared by every adapter.
 *
 * Everything that is decoded from outside (requests handed over by the HTTP
 * layer, responses cached or replayed) has a Schema; the TypeScript types are
 * the schemas' `Type`s so the two can never drift apart.
 */
import { Schema } from "effect"
import type { Redacted } from "effect"

export const Role = Schema.Literal("system", "user", "assistant")
export type Role = typeof Role.Type

export const ChatMessage = Schema.Struct({
  role: Role,
  content: Schema.String
})
export type ChatMessage = typeof ChatMessage.Type

export const ChatRequest = Schema.Struct({
  /** The upstream model id (after routing/aliasing). */
  model: Schema.String,
  messages: Schema.Array(ChatMessage),
  temperature: Schema.optionalWith(Schema.Number, { exact: true }),
  maxTokens: Schema.optionalWith(Schema.Int, { exact: true }),
  topP: Schema.optionalWith(Schema.Number, { exact: true }),
  stop: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
  /**
   * Unknown OpenAI fields (e.g. `seed`, `response_format`, `logprobs`) passed
   * through verbatim to OpenAI-compatible upstreams. Ignored by Anthropic.
   * Never overrides `model`, `messages` or `stream`.
   */
  extra: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { exact: true })
})
export type ChatRequest = typeof ChatRequest.Type

export const Usage = Schema.Struct({
  inputTokens: Schema.Int,
  outputTokens: Schema.Int
})
export type Usage = typeof Usage.Type

export const ChatResponse = Schema.Struct({
  id: Schema.String,
  model: Schema.String,
  content: Schema.String,
  /** OpenAI vocabulary: "stop" | "length" | "tool_calls" | "content_filter" | other upstream values. */
  finishReason: Schema.String,
  usage: Usage
})
export type ChatResponse = typeof ChatResponse.Type

export const Delta = Schema.TaggedStruct("Delta", { text: Schema.String })
export const Finish = Schema.TaggedStruct("Finish", {
  finishReason: Schema.String,
  usage: Schema.NullOr(Usage)
})
export const ChatChunk = Schema.Union(Delta, Finish)
export type ChatChunk = typeof ChatChunk.Type

/**
 * One credential for one provider. `id` is short and not secret ("openai#1")
 * so it can be logged, traced and shown in admin snapshots; `value` stays
 * `Redacted` until the adapter builds the request header.
 */
export interface ProviderKey {
  readonly id: string
  readonly value: Redacted.Redacted<string>
}

export type ProviderKind = "openai" | "anthropic"
