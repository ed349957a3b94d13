/**
 * Wire formats of the upstream simulator: OpenAI chat-completions and
 * Anthropic messages bodies, SSE events, provider-shaped errors, and decoding
 * of fault scripts sent to the control endpoints. Pure functions only.
 */

export type Fault =
  | { kind: "ok"; content?: string; headersDelayMs?: number; chunkDelayMs?: number }
  | { kind: "status"; status: number; body?: unknown; headers?: Record<string, string> }
  | { kind: "hang" }
  | { kind: "close" }
  | { kind: "cut"; afterChunks: number }
  | { kind: "malformed" }
  | { kind: "inbandError"; afterChunks: number }

export type Api = "openai" | "anthropic"

export const MODEL_IDS: ReadonlyArray<string> = ["gpt-4o-mini", "gpt-4o", "sim-echo"]

// ---------------------------------------------------------------------------
// Small helpers over unknown JSON

type Json = Record<string, unknown>

export const isRecord = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const nonNegInt = (u: unknown): number | undefined =>
  typeof u === "number" && Number.isInteger(u) && u >= 0 ? u : undefined

/** Text of a message content: a string, or an array of `{type:"text", text}` parts/blocks. */
export const contentText = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  let out = ""
  for (const part of content) {
    if (isRecord(part) && part["type"] === "text" && typeof part["text"] === "string") {
      out = out.length === 0 ? part["text"] : out + "\n" + part["text"]
    }
  }
  return out
}

const messagesOf = (body: Json): ReadonlyArray<unknown> => {
  const messages = body["messages"]
  return Array.isArray(messages) ? messages : []
}

/** Text of the last message with role "user" ("" when there is none). */
export const lastUserText = (body: Json): string => {
  const messages = messagesOf(body)
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]
    if (isRecord(m) && m["role"] === "user") return contentText(m["content"])
  }
  return ""
}

/** Deterministic token count: whitespace-separated words, at least 1. */
export const countTokens = (text: string): number => {
  const words = text.match(/\S+/g)
  return words === null ? 1 : Math.max(1, words.length)
}

/** Prompt tokens: words of every message content (plus the Anthropic top-level `system`). */
export const promptTokens = (body: Json): number => {
  let total = 0
  const system = body["system"]
  if (system !== undefined) total += wordCount(contentText(system))
  for (const m of messagesOf(body)) {
    if (isRecord(m)) total += wordCount(contentText(m["content"]))
  }
  return Math.max(1, total)
}

const wordCount = (text: string): number => text.match(/\S+/g)?.length ?? 0

/** Split a reply into word-ish pieces, keeping spaces, so `pieces.join("") === text`. */
export const splitPieces = (text: string): Array<string> => text.match(/\S+\s*|\s+/g) ?? []

/** Returns an error message when the body is not an acceptable request, else undefined. */
export const validateRequest = (body: unknown): string | undefined => {
  if (!isRecord(body)) return "Request body must be a JSON object."
  if (!Array.isArray(body["messages"])) return "messages: field required and must be an array."
  if (typeof body["model"] !== "string") return "model: field required and must be a string."
  return undefined
}

// ---------------------------------------------------------------------------
// Errors

export const errorType = (api: Api, status: number): string => {
  switch (status) {
    case 400:
      return "invalid_request_error"
    case 401:
      return "authentication_error"
    case 403:
      return "permission_error"
    case 404:
      return "not_found_error"
    case 413:
      return api === "anthropic" ? "request_too_large" : "invalid_request_error"
    case 429:
      return "rate_limit_error"
    case 529:
      return api === "anthropic" ? "overloaded_error" : "server_error"
    default:
      if (status >= 500) return api === "anthropic" ? "api_error" : "server_error"
      return "invalid_request_error"
  }
}

const openAiErrorCode = (status: number): string | null => {
  switch (status) {
    case 401:
      return "invalid_api_key"
    case 404:
      return "model_not_found"
    case 429:
      return "rate_limit_exceeded"
    default:
      return status >= 500 ? "internal_error" : null
  }
}

const defaultMessage = (status: number): string => {
  switch (status) {
    case 400:
      return "Invalid request."
    case 401:
      return "Incorrect API key provided."
    case 403:
      return "You do not have permission to perform this request."
    case 404:
      return "The requested resource was not found."
    case 429:
      return "Rate limit reached. Please try again later."
    case 529:
      return "Overloaded"
    default:
      return status >= 500 ? "The server had an error while processing your request." : `Request failed with status ${status}.`
  }
}

/** A provider-shaped error body for the given API and status. */
export const errorBody = (api: Api, status: number, message: string = defaultMessage(status)): Json =>
  api === "openai"
    ? { error: { message, type: errorType(api, status), code: openAiErrorCode(status), param: null } }
    : { type: "error", error: { type: errorType(api, status), message } }

// ---------------------------------------------------------------------------
// Success bodies and streams

export interface Reply {
  readonly id: string
  readonly model: string
  readonly created: number // unix seconds
  readonly text: string
  readonly pieces: ReadonlyArray<string>
  readonly promptTokens: number
  readonly completionTokens: number
}

export const openAiCompletion = (r: Reply): Json => ({
  id: r.id,
  object: "chat.completion",
  created: r.created,
  model: r.model,
  choices: [{ index: 0, message: { role: "assistant", content: r.text, refusal: null }, finish_reason: "stop", logprobs: null }],
  usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens },
  system_fingerprint: "fp_simulator"
})

export const anthropicMessage = (r: Reply): Json => ({
  id: r.id,
  type: "message",
  role: "assistant",
  model: r.model,
  content: [{ type: "text", text: r.text }],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: { input_tokens: r.promptTokens, output_tokens: r.completionTokens }
})

/** An SSE stream split in three: events before the content, one event per content piece, events after. */
export interface StreamPlan {
  readonly head: ReadonlyArray<string>
  readonly content: ReadonlyArray<string>
  readonly tail: ReadonlyArray<string>
  readonly error: string // in-band error event
  readonly malformed: string // a data line whose JSON is invalid
}

const data = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`
const event = (type: string, payload: unknown): string => `event: ${type}\ndata: ${JSON.stringify(payload)}\n\n`

export const openAiStream = (r: Reply, includeUsage: boolean): StreamPlan => {
  const chunk = (delta: Json, finishReason: string | null): string =>
    data({
      id: r.id,
      object: "chat.completion.chunk",
      created: r.created,
      model: r.model,
      system_fingerprint: "fp_simulator",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {})
    })
  const tail = [chunk({}, "stop")]
  if (includeUsage) {
    tail.push(
      data({
        id: r.id,
        object: "chat.completion.chunk",
        created: r.created,
        model: r.model,
        system_fingerprint: "fp_simulator",
        choices: [],
        usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens }
      })
    )
  }
  tail.push("data: [DONE]\n\n")
  return {
    head: [chunk({ role: "assistant", content: "", refusal: null }, null)],
    content: r.pieces.map((text) => chunk({ content: text }, null)),
    tail,
    error: data({ error: { message: "The server had an error while processing your request.", type: "server_error", code: "internal_error", param: null } }),
    malformed: `data: {"id":"${r.id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"oops\n\n`
  }
}

export const anthropicStream = (r: Reply): StreamPlan => ({
  head: [
    event("message_start", {
      type: "message_start",
      message: {
        id: r.id,
        type: "message",
        role: "assistant",
        model: r.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: r.promptTokens, output_tokens: 1 }
      }
    }),
    event("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    event("ping", { type: "ping" })
  ],
  content: r.pieces.map((text) =>
    event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } })
  ),
  tail: [
    event("content_block_stop", { type: "content_block_stop", index: 0 }),
    event("message_delta", {
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: r.completionTokens }
    }),
    event("message_stop", { type: "message_stop" })
  ],
  error: event("error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }),
  malformed: `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"oops\n\n`
})

export const modelsList = (created: number): Json => ({
  object: "list",
  data: MODEL_IDS.map((id) => ({ id, object: "model", created, owned_by: "parley-simulator" }))
})

// ---------------------------------------------------------------------------
// Decoding faults sent to the control endpoints

export const decodeFault = (u: unknown): Fault | undefined => {
  if (!isRecord(u)) return undefined
  switch (u["kind"]) {
    case "ok": {
      const fault: { kind: "ok"; content?: string; headersDelayMs?: number; chunkDelayMs?: number } = { kind: "ok" }
      if (typeof u["content"] === "string") fault.content = u["content"]
      const headersDelayMs = nonNegInt(u["headersDelayMs"])
      if (headersDelayMs !== undefined) fault.headersDelayMs = headersDelayMs
      const chunkDelayMs = nonNegInt(u["chunkDelayMs"])
      if (chunkDelayMs !== undefined) fault.chunkDelayMs = chunkDelayMs
      return fault
    }
    case "status": {
      const status = nonNegInt(u["status"])
      if (status === undefined || status < 100 || status > 599) return undefined
      const fault: { kind: "status"; status: number; body?: unknown; headers?: Record<string, string> } = { kind: "status", status }
      if (u["body"] !== undefined) fault.body = u["body"]
      const headers = u["headers"]
      if (isRecord(headers)) {
        const h: Record<string, string> = {}
        for (const [k, v] of Object.entries(headers)) if (typeof v === "string") h[k] = v
        fault.headers = h
      }
      return fault
    }
    case "hang":
      return { kind: "hang" }
    case "close":
      return { kind: "close" }
    case "malformed":
      return { kind: "malformed" }
    case "cut":
    case "inbandError": {
      const afterChunks = nonNegInt(u["afterChunks"])
      if (afterChunks === undefined) return undefined
      return { kind: u["kind"], afterChunks }
    }
    default:
      return undefined
  }
}

/** Decodes an array of faults; undefined if any element is invalid. */
export const decodeFaults = (u: unknown): Array<Fault> | undefined => {
  if (!Array.isArray(u)) return undefined
  const out: Array<Fault> = []
  for (const item of u) {
    const f = decodeFault(item)
    if (f === undefined) return undefined
    out.push(f)
  }
  return out
}
