/**
 * The session chat stream, in order: message.created → warning* →
 * message.delta* → message.completed → done. A failure after the stream
 * began sends `error` then `done`. Every stream ends exactly once.
 */
import { Chunk, Effect, Stream } from "effect"
import { type ApiError, catalog, newErrorId } from "../Errors.js"
import type { ChatChunk, Usage } from "../Providers/Domain.js"
import type { MidStreamFailure } from "../Providers/Gateway.js"
import type { Message } from "../Sessions/Domain.js"
import { messageJson, type Warning } from "./SessionChat.js"

const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`

const errorEvent = (code: string, message: string, errorId: string) => event("error", { code, message, error_id: errorId })

export const sessionEvents = (options: {
  readonly userMessage: Message
  readonly warnings: ReadonlyArray<Warning>
  readonly chunks: Stream.Stream<ChatChunk, MidStreamFailure>
  /** Stores the completed reply; its failure is reported in the stream, never as success. */
  readonly complete: (finishReason: string, usage: Usage | null) => Effect.Effect<Message, ApiError>
  /** Stores what was said so far as interrupted. */
  readonly interrupted: (code: string) => Effect.Effect<void>
}): Stream.Stream<string> => {
  const head = Stream.fromIterable([
    event("message.created", messageJson(options.userMessage)),
    ...options.warnings.map((w) => event("warning", w))
  ])
  // One string per batch of deltas (one socket write), the finish apart: it is stored first.
  const body = options.chunks.pipe(
    Stream.mapChunks((batch) => {
      const out: Array<string | Extract<ChatChunk, { _tag: "Finish" }>> = []
      let text = ""
      for (const c of batch) {
        if (c._tag === "Delta") {
          if (c.text !== "") text += event("message.delta", { delta: c.text })
        } else {
          if (text !== "") out.push(text)
          text = ""
          out.push(c)
        }
      }
      if (text !== "") out.push(text)
      return Chunk.unsafeFromArray(out)
    }),
    Stream.mapEffect((x): Effect.Effect<string, MidStreamFailure | ApiError> =>
      typeof x === "string"
        ? Effect.succeed(x)
        : Effect.map(options.complete(x.finishReason, x.usage), (m) =>
          event("message.completed", {
            message_id: m.id,
            usage: x.usage === null ? null : { input_tokens: x.usage.inputTokens, output_tokens: x.usage.outputTokens },
            finish_reason: x.finishReason,
            memory_status: m.memoryStatus ?? null
          }))
    ),
    Stream.catchAll((e: MidStreamFailure | ApiError) => {
      if (e._tag === "MidStreamFailure") {
        const errorId = newErrorId()
        return Stream.fromEffect(
          options.interrupted(e.code).pipe(
            Effect.zipRight(Effect.logWarning("session stream failed after it began").pipe(
              Effect.annotateLogs({ code: e.code, error_id: errorId })
            )),
            Effect.as(errorEvent(e.code, e.message, errorId))
          )
        )
      }
      return Stream.succeed(errorEvent(catalog[e._tag].code, e.message, e.errorId))
    })
  )
  return Stream.concat(head, body).pipe(Stream.concat(Stream.succeed(event("done", {}))))
}
