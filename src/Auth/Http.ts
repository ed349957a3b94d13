import { HttpServerRequest } from "@effect/platform"
import { Effect, Layer, Option, Redacted } from "effect"
import { Unauthenticated } from "../Errors.js"
import { AuthService } from "./AuthService.js"
import { Authentication } from "./Domain.js"

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const auth = yield* AuthService
    return {
      bearer: (token) =>
        Effect.gen(function*() {
          const req = yield* HttpServerRequest.HttpServerRequest
          const client = Option.getOrElse(req.remoteAddress, () => "unknown")
          // The platform's bearer decoder drops the first 7 characters whatever they are
          // (`Token  pk_…` would pass): the scheme is checked here (case-insensitive, RFC 7235).
          if (!/^bearer /i.test(req.headers["authorization"] ?? "")) {
            return yield* Effect.fail(new Unauthenticated({ message: "Missing bearer token." }))
          }
          const value = Redacted.value(token).trim()
          if (value === "") return yield* Effect.fail(new Unauthenticated({ message: "Missing bearer token." }))
          const principal = yield* auth.authenticate(value, client)
          if (principal._tag === "User") {
            const key = principal.keyPrefix !== null ? { key_prefix: principal.keyPrefix } : {}
            yield* Effect.annotateCurrentSpan({
              "parley.user_id": principal.userId,
              ...(principal.keyPrefix !== null ? { "parley.key_prefix": principal.keyPrefix } : {})
            })
            // Scoped to the request, not to this middleware: every later log line of the request carries them.
            yield* Effect.annotateLogsScoped({ user_id: principal.userId, ...key })
          }
          return principal
        })
    }
  })
)
