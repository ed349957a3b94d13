/**
 * Credentials to a principal: API keys (`pk_…`, looked up by SHA-256 hash),
 * JWTs (jose; algorithm pinned, `exp` required, iss/aud checked when set; `sub`
 * is the user id) and the admin token. Repeated failures from one client are
 * logged as a security alert and counted.
 */
import { Duration, Effect, Metric, Option, Redacted, Ref, Schema } from "effect"
import * as Jose from "jose"
import { timingSafeEqual } from "node:crypto"
import { AuthConfig } from "../Config.js"
import { DbUnavailable, Unauthenticated } from "../Errors.js"
import { UserId } from "../Http/Schemas.js"
import { hashKey, UsersRepo } from "../Users/Repo.js"
import { loadAdminToken } from "./AdminToken.js"
import type { Principal } from "./Domain.js"

export const authFailures = Metric.counter("parley_auth_failures_total", { description: "Failed authentications" })
export const securityAlerts = Metric.counter("parley_security_alerts_total", {
  description: "Clients that failed authentication repeatedly"
})

const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

const alertWindow = Duration.toMillis("1 minute")

export class AuthService extends Effect.Service<AuthService>()("parley/AuthService", {
  effect: Effect.gen(function*() {
    const cfg = yield* AuthConfig
    const users = yield* UsersRepo
    const adminToken = yield* loadAdminToken(cfg.adminToken, cfg.dataDir)
    const hmacKey = Option.map(cfg.jwtSecret, (s) => new TextEncoder().encode(Redacted.value(s)))
    const jwks = Option.map(cfg.jwksUrl, (url) => Jose.createRemoteJWKSet(new URL(url)))
    const failures = yield* Ref.make(new Map<string, { count: number; since: number; alerted: boolean }>())

    const verifyOptions: Jose.JWTVerifyOptions = {
      requiredClaims: ["exp", "sub"],
      ...(Option.isSome(cfg.jwtIssuer) ? { issuer: cfg.jwtIssuer.value } : {}),
      ...(Option.isSome(cfg.jwtAudience) ? { audience: cfg.jwtAudience.value } : {})
    }

    const verifyJwt = (token: string) =>
      Effect.tryPromise({
        try: async () => {
          if (Option.isSome(hmacKey)) {
            try {
              return await Jose.jwtVerify(token, hmacKey.value, { ...verifyOptions, algorithms: ["HS256"] })
            } catch (e) {
              if (Option.isNone(jwks)) throw e
            }
          }
          if (Option.isSome(jwks)) {
            return await Jose.jwtVerify(token, jwks.value, { ...verifyOptions, algorithms: ["RS256", "ES256", "EdDSA"] })
          }
          throw new Error("JWT authentication is not configured")
        },
        catch: () => new Unauthenticated({ message: "Invalid or expired token." })
      }).pipe(
        Effect.flatMap(({ payload }) =>
          Schema.decodeUnknown(UserId)(payload.sub).pipe(
            Effect.mapError(() => new Unauthenticated({ message: "Token subject is not a user id." }))
          )
        ),
        Effect.flatMap((userId) =>
          users.findById(userId).pipe(
            Effect.flatMap(Option.match({
              onNone: () => Effect.fail(new Unauthenticated({ message: "Token subject is not a user." })),
              onSome: (): Effect.Effect<Principal> =>
                Effect.succeed({ _tag: "User", userId, via: "jwt", keyId: null, keyPrefix: null })
            }))
          )
        )
      )

    const verify = (token: string): Effect.Effect<Principal, Unauthenticated | DbUnavailable> => {
      if (token.startsWith("pk_")) {
        return users.authenticateKey(hashKey(token)).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new Unauthenticated({ message: "Invalid or revoked API key." })),
            onSome: (k): Effect.Effect<Principal> =>
              Effect.succeed({ _tag: "User", userId: k.userId, via: "api_key", keyId: k.keyId, keyPrefix: k.keyPrefix })
          }))
        )
      }
      if (sameSecret(token, Redacted.value(adminToken))) return Effect.succeed({ _tag: "Admin" })
      if (token.split(".").length === 3) return verifyJwt(token)
      return Effect.fail(new Unauthenticated({ message: "Malformed credentials." }))
    }

    const recordFailure = (client: string) =>
      Effect.gen(function*() {
        const now = Date.now()
        const alert = yield* Ref.modify(failures, (map) => {
          const prev = map.get(client)
          const entry = prev === undefined || now - prev.since > alertWindow
            ? { count: 1, since: now, alerted: false }
            : { ...prev, count: prev.count + 1 }
          const fire = !entry.alerted && entry.count >= cfg.failureAlertThreshold
          map.set(client, fire ? { ...entry, alerted: true } : entry)
          if (map.size > 10_000) map.clear()
          return [fire, map] as const
        })
        yield* Metric.increment(authFailures)
        if (alert) {
          yield* Metric.increment(securityAlerts)
          yield* Effect.logWarning("security alert: repeated failed authentication").pipe(
            Effect.annotateLogs({ client, failures: cfg.failureAlertThreshold, window_seconds: 60 })
          )
        }
      })

    return {
      /** The principal for a bearer token; failures are counted per client. */
      authenticate: (token: string, client: string) =>
        verify(token).pipe(
          Effect.tapError((e) => e._tag === "Unauthenticated" ? recordFailure(client) : Effect.void),
          Effect.withSpan("Auth.authenticate", { captureStackTrace: false })
        ),
      adminToken
    } as const
  })
}) {}
