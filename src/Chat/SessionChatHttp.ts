import { HttpApiBuilder } from "@effect/platform"
import { Duration, Effect, Option } from "effect"
import { Api } from "../Api.js"
import { requireUser } from "../Auth/Policy.js"
import { Gateway } from "../Providers/Gateway.js"
import { Idempotency } from "./Idempotency.js"
import { SessionChat } from "./SessionChat.js"

export const SessionChatHttp = HttpApiBuilder.group(Api, "sessionChat", (handlers) =>
  Effect.gen(function*() {
    const chat = yield* SessionChat
    const idempotency = yield* Idempotency
    const gateway = yield* Gateway
    return handlers.handle("turn", ({ headers, path, payload }) =>
      Effect.gen(function*() {
        const principal = yield* requireUser
        const timeout = headers["x-parley-timeout-ms"] !== undefined
          ? Duration.millis(headers["x-parley-timeout-ms"])
          : gateway.defaultTimeout
        return yield* idempotency.wrap(
          principal.userId,
          `session.messages:${path.id}`,
          Option.fromNullable(headers["idempotency-key"]),
          payload,
          chat.turn({
            principal,
            sessionId: path.id,
            content: payload.content,
            stream: payload.stream === true,
            model: Option.fromNullable(payload.model),
            timeout
          })
        )
      }).pipe(Effect.annotateLogs({ session_id: path.id })))
  }))
