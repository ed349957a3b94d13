/**
 * A chat turn in a session: admission, the session's turn lock, the user
 * message, the prompt (agent system prompt, memories read with a short
 * timeout, bounded history), the provider call, and the assistant message —
 * stored on every exit: completed, interrupted (cut or client gone) or failed.
 * A reply that could not be stored is ERR_SESSION_PERSIST_FAILED, never a
 * success.
 */
import { Cause, DateTime, Duration, Effect, Exit, Option, Ref, Scope, Stream } from "effect"
import type { UserPrincipal } from "../Auth/Policy.js"
import { ChatConfig, ProvidersConfig } from "../Config.js"
import { EventCodes, ModelNotFound } from "../Errors.js"
import { Admission } from "../Limits/Admission.js"
import { Memories } from "../Memories/Service.js"
import type { ChatMessage, Usage } from "../Providers/Domain.js"
import { Gateway, type Prompt } from "../Providers/Gateway.js"
import { type Message, type SessionId, toMessage } from "../Sessions/Domain.js"
import type { Outcome } from "./Idempotency.js"
import { SessionLock } from "./SessionLock.js"
import { sessionEvents } from "./SessionSse.js"
import { type AssistantReply, type TurnContext, TurnRepo } from "./TurnRepo.js"

export interface TurnInput {
  readonly principal: UserPrincipal
  readonly sessionId: SessionId
  readonly content: string
  readonly stream: boolean
  readonly model: Option.Option<string>
  readonly timeout: Duration.Duration
}

export interface Warning {
  readonly code: string
  readonly message: string
}

const memoryNote = "Long-term memory is unavailable for this turn; do not claim to remember earlier sessions."

export class SessionChat extends Effect.Service<SessionChat>()("parley/SessionChat", {
  effect: Effect.gen(function*() {
    const repo = yield* TurnRepo
    const lock = yield* SessionLock
    const gateway = yield* Gateway
    const admission = yield* Admission
    const memories = yield* Memories
    const cfg = yield* ChatConfig
    const providers = yield* ProvidersConfig

    const memoryOn = (ctx: TurnContext) => ctx.memoryEnabled ?? cfg.memoryDefault

    /** Memories for the prompt; a read that fails or is slow becomes a warning, not a failed turn. */
    const readMemories = (input: TurnInput, ctx: TurnContext) =>
      !memoryOn(ctx)
        ? Effect.succeed({ lines: [] as ReadonlyArray<string>, warning: Option.none<Warning>() })
        : memories.relevant(input.principal.userId, input.content, cfg.memoryTopK).pipe(
          Effect.timeoutFail({ duration: cfg.memoryReadTimeout, onTimeout: () => "timeout" as const }),
          Effect.map((rows) => ({ lines: rows.map((m) => m.content), warning: Option.none<Warning>() })),
          Effect.catchAllCause((cause) =>
            Effect.logWarning("memories unavailable; the turn goes on without them").pipe(
              Effect.annotateLogs({ code: EventCodes.memoryUnavailable, cause: Cause.pretty(cause).slice(0, 300) }),
              Effect.as({
                lines: [] as ReadonlyArray<string>,
                warning: Option.some<Warning>({ code: EventCodes.memoryUnavailable, message: "Memories could not be read; this reply was made without them." })
              })
            )
          ),
          Effect.withSpan("Chat.memoryRead", { captureStackTrace: false })
        )

    const buildPrompt = (
      ctx: TurnContext,
      history: ReadonlyArray<ChatMessage>,
      mem: { lines: ReadonlyArray<string>; warning: Option.Option<Warning> }
    ): Prompt => {
      const system = [
        ctx.systemPrompt ?? "",
        mem.lines.length > 0 ? `What you know about the user:\n${mem.lines.map((l) => `- ${l}`).join("\n")}` : "",
        Option.isSome(mem.warning) ? memoryNote : ""
      ].filter((s) => s !== "").join("\n\n")
      const p = ctx.parameters ?? {}
      return {
        messages: [...(system === "" ? [] : [{ role: "system" as const, content: system }]), ...history],
        ...(p.temperature !== undefined ? { temperature: p.temperature } : {}),
        ...(p.top_p !== undefined ? { topP: p.top_p } : {}),
        ...(p.max_tokens !== undefined ? { maxTokens: p.max_tokens } : {}),
        ...(p.stop !== undefined ? { stop: p.stop } : {})
      }
    }

    const reply = (
      over: Partial<AssistantReply> & Pick<AssistantReply, "content" | "status">,
      memory: boolean
    ): AssistantReply => ({
      model: null,
      inputTokens: null,
      outputTokens: null,
      finishReason: null,
      errorCode: null,
      memoryStatus: over.status === "completed" ? (memory ? "pending" : "skipped") : null,
      ...over
    })

    const turn = (input: TurnInput) =>
      Effect.gen(function*() {
        const userId = input.principal.userId
        const ctx = yield* repo.context(userId, input.sessionId)
        const model = Option.orElse(input.model, () => Option.orElse(Option.fromNullable(ctx.agentModel), () => providers.defaultModel))
        if (Option.isNone(model)) {
          return yield* Effect.fail(new ModelNotFound({ message: "No model: give `model`, set one on the agent, or set PARLEY_DEFAULT_MODEL." }))
        }
        // Everything below lives until the reply is stored (after the stream, for streams).
        const scope = yield* Scope.make()
        // The session first (a turn waits for the one before it, at most its own budget), then
        // admission: a turn that never gets the session is neither rate-limited nor counted.
        const admitted = yield* lock.hold(input.sessionId, scope, input.timeout).pipe(
          Effect.zipRight(admission.admit(input.principal, input.content)),
          Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
        )
        const prepared = yield* Effect.gen(function*() {
          const userMessage = yield* repo.appendUser(userId, input.sessionId, input.content)
          const [history, mem] = yield* Effect.all([
            repo.history(input.sessionId, userMessage.seq, cfg.historyBudgetChars),
            readMemories(input, ctx)
          ], { concurrency: 2 })
          const prompt = buildPrompt(ctx, [...history, { role: "user", content: input.content }], mem)
          return { userMessage, prompt, warnings: Option.toArray(mem.warning) }
        }).pipe(Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))))

        const store = (r: AssistantReply) => repo.appendAssistant(userId, input.sessionId, prepared.userMessage.seq + 1, r)
        const settle = (usage: Usage | null) =>
          usage === null ? Effect.void : admission.addTokens(admitted.reservation, usage.inputTokens, usage.outputTokens).pipe(Effect.ignoreLogged)
        const failed = (code: string) =>
          store(reply({ content: "", status: "failed", errorCode: code, model: model.value }, false)).pipe(Effect.ignoreLogged)
        const memory = memoryOn(ctx)
        const headers = { ...admitted.headers }

        if (!input.stream) {
          const served = yield* gateway.complete(model.value, prepared.prompt, { timeout: input.timeout }).pipe(
            Effect.tapError((e) => failed(e._tag)),
            Effect.ensuring(Scope.close(scope, Exit.void))
          )
          const r = served.response
          yield* settle(r.usage)
          const assistant = yield* store(reply({
            content: r.content,
            status: "completed",
            model: served.model,
            inputTokens: r.usage.inputTokens,
            outputTokens: r.usage.outputTokens,
            finishReason: r.finishReason
          }, memory))
          return {
            _tag: "Json",
            status: 200,
            headers,
            body: JSON.stringify(encodeTurn(toMessage(prepared.userMessage), toMessage(assistant), prepared.warnings))
          } satisfies Outcome
        }

        const served = yield* gateway.stream(model.value, prepared.prompt, { timeout: input.timeout }).pipe(
          Scope.extend(scope),
          Effect.tapError((e) => failed(e._tag)),
          Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
        )
        const text = yield* Ref.make("")
        const stored = yield* Ref.make(false)
        const storeOnce = (r: AssistantReply) =>
          Ref.getAndSet(stored, true).pipe(Effect.flatMap((done) => done ? Effect.void : store(r).pipe(Effect.asVoid)))
        const interrupted = (code: string) =>
          Effect.flatMap(Ref.get(text), (content) =>
            storeOnce(reply({ content, status: "interrupted", errorCode: code, model: served.model }, false)).pipe(Effect.ignoreLogged))
        return {
          _tag: "Sse",
          headers,
          events: sessionEvents({
            userMessage: toMessage(prepared.userMessage),
            warnings: prepared.warnings,
            chunks: served.chunks.pipe(Stream.mapChunksEffect((batch) => {
              let said = ""
              for (const c of batch) if (c._tag === "Delta") said += c.text
              return said === "" ? Effect.succeed(batch) : Effect.as(Ref.update(text, (t) => t + said), batch)
            })),
            complete: (finishReason, usage) =>
              Effect.gen(function*() {
                yield* settle(usage)
                yield* Ref.set(stored, true)
                return toMessage(yield* store(reply({
                  content: yield* Ref.get(text),
                  status: "completed",
                  model: served.model,
                  inputTokens: usage?.inputTokens ?? null,
                  outputTokens: usage?.outputTokens ?? null,
                  finishReason
                }, memory)))
              }),
            interrupted
          }).pipe(
            // A client that goes away interrupts the stream: what was said is kept as interrupted.
            Stream.ensuringWith((exit) =>
              (Exit.isInterrupted(exit) ? interrupted(EventCodes.streamInterrupted) : Effect.void).pipe(
                Effect.zipRight(Scope.close(scope, Exit.void))
              ))
          )
        } satisfies Outcome
      }).pipe(Effect.withSpan("Chat.turn", { captureStackTrace: false, attributes: { "parley.session_id": input.sessionId } }))

    return { turn } as const
  })
}) {}

export const encodeTurn = (userMessage: Message, assistantMessage: Message, warnings: ReadonlyArray<Warning>) => ({
  user_message: messageJson(userMessage),
  assistant_message: messageJson(assistantMessage),
  warnings
})

/** The wire shape of a message (snake_case, RFC 3339). */
export const messageJson = (m: Message) => ({
  id: m.id,
  session_id: m.sessionId,
  seq: m.seq,
  role: m.role,
  content: m.content,
  status: m.status,
  created_at: DateTime.formatIso(m.createdAt),
  ...(m.role === "assistant"
    ? {
      model: m.model ?? null,
      usage: m.usage === undefined || m.usage === null ? null : { input_tokens: m.usage.inputTokens, output_tokens: m.usage.outputTokens },
      finish_reason: m.finishReason ?? null,
      memory_status: m.memoryStatus ?? null,
      error_code: m.errorCode ?? null
    }
    : {})
})
