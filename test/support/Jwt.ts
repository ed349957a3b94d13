/**
 * JWTs for tests, signed with jose: good ones, and every way a token can be
 * wrong (forged, expired, `alg: none`, wrong audience or issuer, missing
 * claims, another algorithm).
 */
import { Effect } from "effect"
import * as Jose from "jose"

export interface JwtSettings {
  readonly secret: string
  readonly issuer: string
  readonly audience: string
}

/** The server settings that go with `settings`. */
export const jwtEnv = (settings: JwtSettings): Record<string, string> => ({
  JWT_SECRET: settings.secret,
  JWT_ISSUER: settings.issuer,
  JWT_AUDIENCE: settings.audience
})

export interface TokenOptions {
  /** The subject; absent or null: no `sub` claim. */
  readonly sub?: string | null
  /** Issuer and audience: absent takes the settings' value, null leaves the claim out. */
  readonly iss?: string | null
  readonly aud?: string | null
  /** Seconds from now (negative: already expired); null leaves `exp` out. */
  readonly expiresIn?: number | null
  readonly secret?: string
  readonly alg?: "HS256" | "HS384" | "HS512"
}

const nowSeconds = () => Math.floor(Date.now() / 1000)

/** An HMAC-signed JWT; by default a valid one for `settings`. */
export const signJwt = (settings: JwtSettings, options: TokenOptions = {}) =>
  Effect.promise(() => {
    const payload: Jose.JWTPayload = {}
    if (options.sub !== undefined && options.sub !== null) payload.sub = options.sub
    const iss = options.iss === undefined ? settings.issuer : options.iss
    if (iss !== null) payload.iss = iss
    const aud = options.aud === undefined ? settings.audience : options.aud
    if (aud !== null) payload.aud = aud
    const expiresIn = options.expiresIn === undefined ? 300 : options.expiresIn
    if (expiresIn !== null) payload.exp = nowSeconds() + expiresIn
    payload.iat = nowSeconds()
    return new Jose.SignJWT(payload)
      .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" })
      .sign(new TextEncoder().encode(options.secret ?? settings.secret))
  })

/** `alg: none`, no signature, otherwise perfect claims. */
export const unsecuredJwt = (settings: JwtSettings, sub: string): string =>
  new Jose.UnsecuredJWT({ sub, iss: settings.issuer, aud: settings.audience })
    .setIssuedAt()
    .setExpirationTime(nowSeconds() + 300)
    .encode()

/** A valid token's header and claims re-encoded with another header, keeping its signature. */
export const withHeader = (token: string, header: Record<string, unknown>): string => {
  const [, payload, signature] = token.split(".")
  const encoded = Jose.base64url.encode(JSON.stringify(header))
  return `${encoded}.${payload ?? ""}.${signature ?? ""}`
}

/** A valid token whose claims were edited after signing (the signature no longer matches). */
export const tampered = (token: string, claims: Record<string, unknown>): string => {
  const [header, payload, signature] = token.split(".")
  const decoded: unknown = JSON.parse(new TextDecoder().decode(Jose.base64url.decode(payload ?? "")))
  const edited = { ...(typeof decoded === "object" && decoded !== null ? decoded : {}), ...claims }
  return `${header ?? ""}.${Jose.base64url.encode(JSON.stringify(edited))}.${signature ?? ""}`
}
