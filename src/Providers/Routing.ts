/**
 * Model routing: `PARLEY_CONFIG` (JSON, Schema-decoded at start; an invalid
 * file stops the process with a clear message) gives aliases, routes with
 * ordered fallback targets and per-provider resilience settings.
 */
import { Effect, Option, ParseResult, Schema } from "effect"
import { readFileSync } from "node:fs"
import type { ProviderKind } from "./Domain.js"

const Ms = Schema.Int.pipe(Schema.between(1, 3_600_000))

export const ResilienceSettings = Schema.Struct({
  max_attempts: Schema.optional(Schema.Int.pipe(Schema.between(1, 10))),
  backoff_base_ms: Schema.optional(Ms),
  backoff_max_ms: Schema.optional(Ms),
  connect_timeout_ms: Schema.optional(Ms),
  first_byte_timeout_ms: Schema.optional(Ms),
  idle_timeout_ms: Schema.optional(Ms),
  circuit_window: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000))),
  circuit_min_calls: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000))),
  circuit_failure_rate: Schema.optional(Schema.Number.pipe(Schema.between(1, 100))),
  circuit_open_ms: Schema.optional(Ms),
  circuit_half_open_calls: Schema.optional(Schema.Int.pipe(Schema.between(1, 100))),
  max_concurrent: Schema.optional(Schema.Int.pipe(Schema.between(1, 100_000))),
  max_queue_wait_ms: Schema.optional(Schema.Int.pipe(Schema.between(0, 600_000)))
})
export type ResilienceSettings = typeof ResilienceSettings.Type

const Target = Schema.Struct({
  /** `provider/model`, e.g. `anthropic/claude-sonnet-4-5`. */
  model: Schema.String.pipe(Schema.pattern(/^(openai|anthropic)\/.+$/, {
    message: () => "a route target must be provider/model with provider openai or anthropic"
  })),
  max_attempts: Schema.optional(Schema.Int.pipe(Schema.between(1, 10)))
})

export const ParleyFile = Schema.Struct({
  providers: Schema.optional(Schema.Struct({
    openai: Schema.optional(ResilienceSettings),
    anthropic: Schema.optional(ResilienceSettings)
  })),
  aliases: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  routes: Schema.optional(Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ targets: Schema.NonEmptyArray(Target) })
  }))
})
export type ParleyFile = typeof ParleyFile.Type

export class ParleyConfigError extends Error {}

export const loadParleyFile = (path: Option.Option<string>): Effect.Effect<ParleyFile, ParleyConfigError> =>
  Option.match(path, {
    onNone: () => Effect.succeed({}),
    onSome: (file) =>
      Effect.try({
        try: () => JSON.parse(readFileSync(file, "utf8")) as unknown,
        catch: (e) => new ParleyConfigError(`PARLEY_CONFIG: cannot read ${file} as JSON: ${String(e)}`)
      }).pipe(
        Effect.flatMap((json) =>
          Schema.decodeUnknown(ParleyFile, { onExcessProperty: "error" })(json).pipe(
            Effect.mapError((e) =>
              new ParleyConfigError(`PARLEY_CONFIG: ${file} is invalid:\n${ParseResult.TreeFormatter.formatErrorSync(e)}`)
            )
          )
        )
      )
  })

export interface Target {
  readonly provider: ProviderKind
  readonly model: string
  readonly maxAttempts: Option.Option<number>
}

export type Resolution =
  | { readonly _tag: "Targets"; readonly targets: readonly [Target, ...Array<Target>] }
  | { readonly _tag: "UnknownModel" }

const providerKinds: ReadonlySet<string> = new Set(["openai", "anthropic"])

const splitModel = (name: string): Option.Option<Target> => {
  const slash = name.indexOf("/")
  if (slash <= 0) return Option.none()
  const provider = name.slice(0, slash)
  const model = name.slice(slash + 1)
  return providerKinds.has(provider) && model !== ""
    ? Option.some({ provider: provider === "openai" ? "openai" : "anthropic", model, maxAttempts: Option.none() })
    : Option.none()
}

/**
 * `provider/model` picks the provider; a bare name first matches an alias or
 * route, else goes to the default provider.
 */
export const resolve = (
  file: ParleyFile,
  defaultProvider: Option.Option<ProviderKind>,
  name: string,
  depth = 0
): Resolution => {
  const direct = splitModel(name)
  if (Option.isSome(direct)) return { _tag: "Targets", targets: [direct.value] }
  const route = file.routes?.[name]
  if (route !== undefined) {
    const [first, ...rest] = route.targets.map((t): Target => {
      const parsed = Option.getOrThrow(splitModel(t.model))
      return { ...parsed, maxAttempts: Option.fromNullable(t.max_attempts) }
    })
    if (first !== undefined) return { _tag: "Targets", targets: [first, ...rest] }
  }
  const alias = file.aliases?.[name]
  if (alias !== undefined && depth < 5) return resolve(file, defaultProvider, alias, depth + 1)
  return Option.match(defaultProvider, {
    onNone: (): Resolution => ({ _tag: "UnknownModel" }),
    onSome: (provider): Resolution => ({ _tag: "Targets", targets: [{ provider, model: name, maxAttempts: Option.none() }] })
  })
}

/** Every model name a client may ask for by name (for GET /v1/models). */
export const namedModels = (file: ParleyFile): ReadonlyArray<string> => [
  ...Object.keys(file.aliases ?? {}),
  ...Object.keys(file.routes ?? {})
]
