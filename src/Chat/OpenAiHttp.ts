import { HttpApiBuilder } from "@effect/platform"
import { Effect, Option, Stream } from "effect"
import { randomUUID } from "node:crypto"
import { Api } from "../Api.js"
import { requireUser } from "../Auth/Policy.js"
import { cacheKey, ResponseCache } from "../Cache/ResponseCache.js"
import { Admission } from "../Limits/Admission.js"
import type { ChatChunk } from "../Providers/Domain.js"
import { Gateway } from "../Providers/Gateway.js"
import { Duration } from "effect"
import { Idempotency, type Outcome } from "./Idempotency.js"
import { completionJson, promptText, sseEvents, toPrompt } from "./OpenAiFormat.js"

export const OpenAiHttp = HttpApiBuilder.group(Api, "openai", (handlers) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const admission = yield* Admission
    const idempotency = yield* Idempotency
    const cache = yield* ResponseCache
    return handlers
      .handle("chatCompletions", ({ headers, payload }) =>
        Effect.gen(function*() {
          const principal = yield* requireUser
          const prompt = toPrompt(payload)
          const timeout = headers["x-parley-timeout-ms"] !== undefined
            ? Duration.millis(headers["x-parley-timeout-ms"])
            : gateway.defaultTimeout
          const run = Effect.gen(function*() {
            const admitted = yield* admission.admit(principal, promptText(prompt.messages))
            const id = `chatcmpl-${randomUUID()}`
            const settle = (input: number, output: number) =>
              admission.addTokens(admitted.reservation, input, output).pipe(
                Effect.tapError((e) => Effect.logWarning("token usage not recorded").pipe(Effect.annotateLogs({ code: e.message }))),
                Effect.ignore
              )
            const cacheable = headers["x-parley-cache"] === "use" ||
              (headers["x-parley-cache"] !== "skip" && payload.temperature === 0)
            const key = cacheKey(payload.model, { ...payload, model: undefined })
            const cached = cacheable ? yield* cache.get(key) : Option.none()
            const cacheHeader = { "x-parley-cache": cacheable ? (Option.isSome(cached) ? "hit" : "miss") : "off" }
            if (Option.isSome(cached)) {
              const c = cached.value
              const response = { id, model: c.model, content: c.content, finishReason: c.finishReason, usage: c.usage }
              const headers = { ...admitted.headers, ...cacheHeader, "x-parley-provider": c.provider, "x-parley-model": c.model }
              return payload.stream !== true
                ? { _tag: "Json", status: 200, headers, body: JSON.stringify(completionJson(id, payload.model, response)) } satisfies Outcome
                : {
                  _tag: "Sse",
                  headers,
                  events: sseEvents({
                    id,
                    model: payload.model,
                    includeUsage: payload.stream_options?.include_usage === true,
                    chunks: Stream.make<Array<ChatChunk>>({ _tag: "Delta", text: c.content }, { _tag: "Finish", finishReason: c.finishReason, usage: c.usage }),
                    onFinish: () => Effect.void,
                    onFailure: () => Effect.void
                  })
                } satisfies Outcome
            }
            if (payload.stream !== true) {
              const served = yield* gateway.complete(payload.model, prompt, { timeout })
              yield* settle(served.response.usage.inputTokens, served.response.usage.outputTokens)
              if (cacheable) {
                const r = served.response
                yield* cache.set(key, { content: r.content, finishReason: r.finishReason, usage: r.usage, provider: served.provider, model: served.model })
              }
              return {
                _tag: "Json",
                status: 200,
                headers: { ...admitted.headers, ...cacheHeader, "x-parley-provider": served.provider, "x-parley-model": served.model },
                body: JSON.stringify(completionJson(id, payload.model, served.response))
              } satisfies Outcome
            }
            const served = yield* gateway.stream(payload.model, prompt, { timeout })
            let text = ""
            return {
              _tag: "Sse",
              headers: { ...admitted.headers, ...cacheHeader, "x-parley-provider": served.provider, "x-parley-model": served.model },
              events: sseEvents({
                id,
                model: payload.model,
                includeUsage: payload.stream_options?.include_usage === true,
                chunks: served.chunks.pipe(Stream.mapChunks((batch) => {
                  for (const c of batch) if (c._tag === "Delta") text += c.text
                  return batch
                })),
                onFinish: (usage) =>
                  Effect.all([
                    usage === null ? Effect.void : settle(usage.inputTokens, usage.outputTokens),
                    cacheable && usage !== null
                      ? cache.set(key, { content: text, finishReason: "stop", usage, provider: served.provider, model: served.model })
                      : Effect.void
                  ], { discard: true }),
                onFailure: (f, errorId) =>
                  Effect.logWarning("stream failed after it began").pipe(
                    Effect.annotateLogs({ code: f.code, error_id: errorId, provider: served.provider })
                  )
              })
            } satisfies Outcome
          })
          return yield* idempotency.wrap(principal.userId, "chat.completions", Option.fromNullable(headers["idempotency-key"]), payload, run)
        }))
      .handle("models", () =>
        Effect.gen(function*() {
          yield* requireUser
          const m = yield* gateway.models
          const created = Math.floor(Date.now() / 1000)
          const ids = [
            ...m.named,
            ...Option.toArray(m.defaultModel),
            ...m.providers.map((p) => `${p}/*`)
          ]
          return {
            object: "list" as const,
            data: [...new Set(ids)].map((id) => ({ id, object: "model" as const, created, owned_by: "parley" }))
          }
        }))
  }))
