import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Context, Schema } from "effect"
import { DbUnavailable, Unauthenticated, wire } from "../Errors.js"
import type { ApiKeyId, UserId } from "../Http/Schemas.js"

export type Principal =
  | {
    readonly _tag: "User"
    readonly userId: UserId
    readonly via: "api_key" | "jwt"
    /** The key used, for revocation checks and logs (never the key itself). */
    readonly keyId: ApiKeyId | null
    readonly keyPrefix: string | null
  }
  | { readonly _tag: "Admin" }

export class CurrentPrincipal extends Context.Tag("parley/CurrentPrincipal")<CurrentPrincipal, Principal>() {}

/** Bearer authentication on every endpoint but health, docs and metrics. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("Authentication", {
  failure: Schema.Union(wire(Unauthenticated), wire(DbUnavailable)),
  provides: CurrentPrincipal,
  security: { bearer: HttpApiSecurity.bearer }
}) {}
