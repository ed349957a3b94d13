/** OpenAI wire formats for chat completions: JSON replies and SSE chunks. */
import { Chunk, Effect, Stream } from "effect"
import type { ChatChunk, ChatMessage, ChatResponse, Usage } from "../Providers/Domain.js"
import type { MidStreamFailure, Prompt } from "../Providers/Gateway.js"
import type { CompletionRequest } from "./OpenAiApi.js"
import { newErrorId } from "../Errors.js"

const knownFields = new Set([
  "model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop"
])

const textOf = (content: CompletionRequest["messages"][number]["content"]): string =>
  typeof content === "string" ? content : content.map((p) => p.text).join("")

export const toMessages = (req: CompletionRequest): ReadonlyArray<ChatMessage> =>
  req.messages.map((m) => ({ role: m.role === "developer" ? "system" : m.role, content: textOf(m.content) }))

/** The provider-neutral prompt; unknown fields ride along in `extra`. */
export const toPrompt = (req: CompletionRequest): Prompt => {
  const extra: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(req)) if (!knownFields.has(k)) extra[k] = v
  const maxTokens = req.max_completion_tokens ?? req.max_tokens
  const stop = req.stop === undefined || req.stop === null ? undefined : typeof req.stop === "string" ? [req.stop] : req.stop
  return {
    messages: toMessages(req),
    ...(req.temperature !== undefined && req.temperature !== null ? { temperature: req.temperature } : {}),
    ...(req.top_p !== undefined && req.top_p !== null ? { topP: req.top_p } : {}),
    ...(maxTokens !== undefined && maxTokens !== null ? { maxTokens } : {}),
    ...(stop !== undefined ? { stop } : {}),
    ...(Object.keys(extra).length > 0 ? { extra } : {})
  }
}

export const promptText = (messages: ReadonlyArray<ChatMessage>): string => messages.map((m) => m.content).join("\n")

const usageJson = (u: Usage) => ({
  prompt_tokens: u.inputTokens,
  completion_tokens: u.outputTokens,
  total_tokens: u.inputTokens + u.outputTokens
})

export const completionJson = (id: string, model: string, r: ChatResponse) => ({
  id,
  object: "chat.completion" as const,
  created: Math.floor(Date.now() / 1000),
  model,
  choices: [{ index: 0, message: { role: "assistant" as const, content: r.content }, finish_reason: r.finishReason, logprobs: null }],
  usage: usageJson(r.usage)
})

const data = (json: unknown) => `data: ${JSON.stringify(json)}\n\n`

/**
 * The chunk stream as OpenAI SSE, ending exactly once: `[DONE]` after
 * success; an error object then `[DONE]` after a mid-stream failure.
 * `onFinish` sees the usage of a completed reply.
 *
 * Each batch of chunks that arrives together becomes ONE string (one socket
 * write): the role chunk rides with the first batch, `[DONE]` with the last.
 */
export const sseEvents = (options: {
  readonly id: string
  readonly model: string
  readonly includeUsage: boolean
  readonly chunks: Stream.Stream<ChatChunk, MidStreamFailure>
  readonly onFinish: (usage: Usage | null) => Effect.Effect<void>
  readonly onFailure: (f: MidStreamFailure, errorId: string) => Effect.Effect<void>
}): Stream.Stream<string> =>
  Stream.suspend(() => {
    const created = Math.floor(Date.now() / 1000)
    const chunk = (delta: Record<string, unknown>, finishReason: string | null) =>
      data({
        id: options.id,
        object: "chat.completion.chunk",
        created,
        model: options.model,
        choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }]
      })
    let prefix = chunk({ role: "assistant", content: "" }, null)
    let usage: Usage | null = null
    let failed = false
    const body = options.chunks.pipe(
      Stream.mapChunksEffect((batch): Effect.Effect<Chunk.Chunk<string>> => {
        let text = prefix
        prefix = ""
        let finish: Usage | null | undefined
        for (const c of batch) {
          if (c._tag === "Delta") {
            if (c.text !== "") text += chunk({ content: c.text }, null)
          } else {
            finish = c.usage
            text += chunk({}, c.finishReason)
          }
        }
        const out = text === "" ? Chunk.empty<string>() : Chunk.of(text)
        if (finish === undefined) return Effect.succeed(out)
        usage = finish
        return Effect.as(options.onFinish(finish), out)
      }),
      Stream.catchAll((f) => {
        const errorId = newErrorId()
        failed = true
        const head = prefix
        prefix = ""
        return Stream.fromEffect(Effect.as(
          options.onFailure(f, errorId),
          head + data({ error: { code: f.code, message: f.message, type: "api_error", param: null, error_id: errorId } })
        ))
      })
    )
    const ending = Stream.sync(() => {
      const usageEvent = options.includeUsage && !failed
        ? data({ id: options.id, object: "chat.completion.chunk", created, model: options.model, choices: [], usage: usage === null ? null : usageJson(usage) })
        : ""
      // An empty upstream (no batch at all) still owes the client its role chunk.
      const head = prefix
      prefix = ""
      return `${head}${usageEvent}data: [DONE]\n\n`
    })
    return Stream.concat(body, ending)
  })
