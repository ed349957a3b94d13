/**
 * The admin token: ADMIN_TOKEN, or generated at first start into
 * `<data dir>/admin-token` (mode 0600) and read from there afterwards.
 */
import { Effect, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

export class AdminTokenError extends Error {}

export const loadAdminToken = (configured: Option.Option<Redacted.Redacted<string>>, dataDir: string) =>
  Option.match(configured, {
    onSome: (token) => Effect.succeed(token),
    onNone: () =>
      Effect.try({
        try: () => {
          const path = resolve(join(dataDir, "admin-token"))
          if (existsSync(path)) {
            const token = readFileSync(path, "utf8").trim()
            if (token !== "") return { token: Redacted.make(token), path, created: false }
          }
          mkdirSync(dataDir, { recursive: true })
          const token = `adm_${randomBytes(32).toString("base64url")}`
          writeFileSync(path, token + "\n", { mode: 0o600 })
          chmodSync(path, 0o600)
          return { token: Redacted.make(token), path, created: true }
        },
        catch: (cause) => new AdminTokenError(`could not read or write the admin token file: ${String(cause)}`)
      }).pipe(
        Effect.tap(({ created, path }) =>
          Effect.logWarning(created ? "admin token generated" : "admin token read from file").pipe(
            Effect.annotateLogs({ admin_token_path: path })
          )
        ),
        Effect.map(({ token }) => token)
      )
  })
