/**
 * A streaming upstream call as chat chunks: send the request, check that the
 * answer is an event stream, then decode, split and translate it in ONE
 * stream stage — a pull loop over the response bytes that feeds a streaming
 * UTF-8 decoder, the SSE parser (./Sse.ts) and the provider's synchronous
 * `step`. No Effect and no stream operator runs per event, and no fiber is
 * forked per pull: a token stream costs a few microseconds per event.
 *
 * The stream contract shared by all providers:
 * - the first SSE event must arrive within the first-byte budget, every later
 *   one within the idle timeout, all within the total timeout; bytes that
 *   complete no event (keep-alive comments) are not progress. One watchdog
 *   timer per stream enforces it: progress only moves the deadline (a clock
 *   read per batch of events); when the timer finds the deadline passed it
 *   aborts the upstream request (by closing the request's scope, which aborts
 *   its AbortController) and the stream fails with the matching
 *   `AttemptTimeout`;
 * - transport failures mid-stream become `StreamCutError` (with the number of
 *   deltas already emitted);
 * - a failing event (in-band error, undecodable payload) ends the stream with
 *   that error, after the chunks that preceded it;
 * - the stream must reach a `Finish` chunk, else `StreamCutError`;
 * - after `Finish`, the rest of the body is drained (so the connection is
 *   released cleanly) and ignored, failures and timeouts included.
 *
 * Interrupting the consumer closes the stream's scope, which aborts the
 * upstream request at once.
 */
import type { HttpClient, HttpClientError, HttpClientRequest } from "@effect/platform"
import { Chunk, Effect, Either, Option, type Scope, Stream } from "effect"
import type { ChatChunk } from "./Domain.js"
import { type ProviderError, StreamCutError } from "./Errors.js"
import * as Sse from "./Sse.js"
import { type Attempt, expectEventStream, fromHttpClientError, send } from "./Transport.js"
import * as Watchdogs from "./Watchdog.js"

/** One SSE event translated: the next state and the chat chunks it yields, or the attempt's failure. */
export type StepResult<S> = Either.Either<readonly [S, ReadonlyArray<ChatChunk>], ProviderError>

export type Step<S> = (state: S, event: Sse.SseEvent, delivered: number) => StepResult<S>

export const open = <S>(
  client: HttpClient.HttpClient.With<HttpClientError.HttpClientError, Scope.Scope>,
  a: Attempt,
  request: HttpClientRequest.HttpClientRequest,
  initial: S,
  step: Step<S>
): Stream.Stream<ChatChunk, ProviderError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    // The request lives in the watchdog's scope: an expiry aborts the request without
    // tearing down the pull below, which then fails and reports the timeout.
    const w = yield* Watchdogs.make(a, "first_byte")
    const response = yield* w.guard(Effect.flatMap(send(client, a, request, w), (r) => expectEventStream(a, r, w)))
    const pull = yield* Stream.toPull(Stream.mapError(response.stream, (e) => fromHttpClientError(a, e)))

    const decoder = new TextDecoder("utf-8")
    let parser = Sse.initialState
    let state = initial
    let delivered = 0
    let finished = false
    let failure: ProviderError | undefined
    const cut = (detail: string) => new StreamCutError({ provider: a.provider, chunksReceived: delivered, detail })

    const translate = (chunk: Chunk.Chunk<Uint8Array>): Array<ChatChunk> => {
      const out: Array<ChatChunk> = []
      let progressed = false
      for (const piece of chunk) {
        const [next, events] = Sse.feed(parser, decoder.decode(piece, { stream: true }))
        parser = next
        if (events.length > 0) progressed = true
        for (const event of events) {
          if (finished || failure !== undefined) break
          const result = step(state, event, delivered)
          if (Either.isLeft(result)) {
            failure = result.left
            break
          }
          state = result.right[0]
          for (const c of result.right[1]) {
            out.push(c)
            if (c._tag === "Delta") delivered++
            else {
              finished = true
              w.finish()
            }
          }
        }
      }
      if (progressed) w.progress("idle")
      return out
    }

    const fail = (e: ProviderError) => Effect.fail(Option.some(e))
    const next: Effect.Effect<Chunk.Chunk<ChatChunk>, Option.Option<ProviderError>> = Effect.suspend(() =>
      failure !== undefined
        ? fail(failure)
        : Effect.matchEffect(pull, {
          onFailure: (e) => {
            // After Finish the rest is ignored, failures and timeouts included.
            if (finished) return Effect.fail(Option.none())
            const timedOut = w.fired()
            if (timedOut !== undefined) return fail(timedOut)
            if (Option.isNone(e)) return fail(cut("stream ended before its terminal event"))
            return fail(e.value._tag === "ConnectError" ? cut(e.value.detail) : e.value)
          },
          onSuccess: (chunk) => {
            const out = translate(chunk)
            if (out.length > 0) return Effect.succeed(Chunk.unsafeFromArray(out))
            return failure !== undefined ? fail(failure) : next
          }
        })
    )
    return Stream.repeatEffectChunkOption(next)
  }))
