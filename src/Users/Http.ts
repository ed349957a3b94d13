import { HttpApiBuilder } from "@effect/platform"
import { Effect, Option } from "effect"
import { Api } from "../Api.js"
import { requireAdmin, requireUser } from "../Auth/Policy.js"
import { CurrentPrincipal } from "../Auth/Domain.js"
import { NotFound } from "../Errors.js"
import type { UserRow } from "./Domain.js"
import { UsersRepo } from "./Repo.js"

const toUser = (u: UserRow) => u

export const AdminHttp = HttpApiBuilder.group(Api, "admin", (handlers) =>
  Effect.gen(function*() {
    const repo = yield* UsersRepo
    return handlers
      .handle("createUser", ({ payload }) =>
        requireAdmin.pipe(Effect.zipRight(repo.create(payload)), Effect.map(toUser), Effect.withSpan("Users.create", { captureStackTrace: false })))
      .handle("deleteUser", ({ path }) =>
        requireAdmin.pipe(Effect.zipRight(repo.remove(path.id)), Effect.withSpan("Users.delete", { captureStackTrace: false })))
      .handle("issueKey", ({ path, payload }) =>
        requireAdmin.pipe(
          Effect.zipRight(repo.findById(path.id)),
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new NotFound({ message: "User not found." })),
            onSome: (u) => repo.issueKey(u.id, payload.name ?? null)
          })),
          Effect.withSpan("Users.issueKey", { captureStackTrace: false })
        ))
  }))

export const KeysHttp = HttpApiBuilder.group(Api, "keys", (handlers) =>
  Effect.gen(function*() {
    const repo = yield* UsersRepo
    return handlers.handle("revokeKey", ({ path }) =>
      Effect.flatMap(CurrentPrincipal, (p) =>
        repo.revokeKey(path.id, p._tag === "Admin" ? Option.none() : Option.some(p.userId))).pipe(
          Effect.withSpan("Keys.revoke", { captureStackTrace: false })
        ))
  }))

export const MeHttp = HttpApiBuilder.group(Api, "me", (handlers) =>
  Effect.gen(function*() {
    const repo = yield* UsersRepo
    return handlers.handle("me", () =>
      Effect.gen(function*() {
        const principal = yield* requireUser
        const user = yield* repo.findById(principal.userId).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new NotFound({ message: "User not found." })),
            onSome: Effect.succeed
          }))
        )
        const usage = yield* repo.usageToday(user.id)
        return { ...user, usage }
      }).pipe(Effect.withSpan("Users.me", { captureStackTrace: false })))
  }))

