/** Authorization proofs: a handler that needs a user or the admin asks for it. */
import { Effect } from "effect"
import { Forbidden } from "../Errors.js"
import { CurrentPrincipal, type Principal } from "./Domain.js"

export type UserPrincipal = Extract<Principal, { _tag: "User" }>

export const requireUser: Effect.Effect<UserPrincipal, Forbidden, CurrentPrincipal> = Effect.flatMap(
  CurrentPrincipal,
  (p) => p._tag === "User" ? Effect.succeed(p) : Effect.fail(new Forbidden({ message: "This endpoint is for users, not the admin token." }))
)

export const requireAdmin: Effect.Effect<void, Forbidden, CurrentPrincipal> = Effect.flatMap(
  CurrentPrincipal,
  (p) => p._tag === "Admin" ? Effect.void : Effect.fail(new Forbidden({ message: "Admin only." }))
)
