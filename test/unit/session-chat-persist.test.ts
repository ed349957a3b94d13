/**
 * The turn with mock layers: when the repository cannot store the reply, the
 * turn fails with ERR_SESSION_PERSIST_FAILED — it never succeeds.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Exit, Layer, Option } from "effect"
import { SessionChat } from "../../src/Chat/SessionChat.js"
import { SessionLock } from "../../src/Chat/SessionLock.js"
import { TurnRepo } from "../../src/Chat/TurnRepo.js"
import { SessionPersistFailed } from "../../src/Errors.js"
import { UserId } from "../../src/Http/Schemas.js"
import { Admission } from "../../src/Limits/Admission.js"
import { Memories } from "../../src/Memories/Service.js"
import { Gateway } from "../../src/Providers/Gateway.js"
import { MessageId, SessionId } from "../../src/Sessions/Domain.js"
import { strict } from "../support/Strict.js"

const userId = UserId.make("5f0c7d1e-0000-4000-8000-000000000001")
const sessionId = SessionId.make("5f0c7d1e-0000-4000-8000-000000000002")

let upstreamCalls = 0
let storeAttempts = 0

const mocks = Layer.mergeAll(
  strict(TurnRepo, {
    context: () =>
      Effect.succeed({ sessionId, title: null, agentId: null, systemPrompt: null, agentModel: null, parameters: null, memoryEnabled: false }),
    appendUser: (_u, _s, content) =>
      Effect.succeed({
        id: MessageId.make("5f0c7d1e-0000-4000-8000-000000000003"),
        sessionId,
        seq: 1,
        role: "user" as const,
        content,
        status: "completed" as const,
        model: null,
        inputTokens: null,
        outputTokens: null,
        finishReason: null,
        memoryStatus: null,
        errorCode: null,
        createdAt: DateTime.unsafeNow()
      }),
    history: () => Effect.succeed([]),
    appendAssistant: () => Effect.sync(() => void storeAttempts++).pipe(Effect.zipRight(Effect.fail(new SessionPersistFailed())))
  }),
  strict(SessionLock, { hold: () => Effect.void }),
  strict(Gateway, {
    complete: () =>
      Effect.sync(() => {
        upstreamCalls++
        return {
          response: { id: "r1", model: "m", content: "a reply", finishReason: "stop", usage: { inputTokens: 3, outputTokens: 2 } },
          provider: "openai" as const,
          model: "m"
        }
      })
  }),
  strict(Admission, {
    admit: () => Effect.succeed({ reservation: { userId, day: "2026-11-23", requestsToday: 1 }, headers: {} }),
    addTokens: () => Effect.void
  }),
  strict(Memories, {})
)

describe("session chat with mock layers", () => {
  it.effect("a reply the repository cannot store fails the turn with ERR_SESSION_PERSIST_FAILED", () =>
    Effect.gen(function*() {
      const chat = yield* SessionChat
      const exit = yield* chat.turn({
        principal: { _tag: "User", userId, via: "api_key", keyId: null, keyPrefix: null },
        sessionId,
        content: "hello",
        stream: false,
        model: Option.some("openai/m"),
        timeout: Duration.seconds(5)
      }).pipe(Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(failure?._tag).toBe("SessionPersistFailed")
      }
      expect(upstreamCalls).toBe(1)
      expect(storeAttempts).toBe(1)
    }).pipe(Effect.provide(SessionChat.Default.pipe(Layer.provide(mocks)))))
})
