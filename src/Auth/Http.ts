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
          const value = Redacted.value(token).trim()
          if (value === "") return yield* Effect.fail(new Unauthenticated({ message: "Missing bearer token." }))
          const principal = yield* auth.authenticate(value, client)
          if (principal._tag === "User") {
            yield* Effect.annotateCurrentSpan({ "parley.user_id": principal.userId })
          }
          return principal
        })
    }
  })
)
