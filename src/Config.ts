/**
 * Every setting Parley reads, through `effect/Config`. Secrets are `Redacted`.
 * A bad value stops startup with a message naming the variable (ConfigError).
 * The README's configuration table lists the same names and defaults.
 */
import { Config, ConfigError, Duration, Either, LogLevel, Option, Redacted } from "effect"

const positiveInt = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.withDefault(fallback),
    Config.validate({ message: `${name} must be a positive integer`, validation: (n) => n > 0 })
  )

const millis = (name: string, fallback: number) => positiveInt(name, fallback).pipe(Config.map(Duration.millis))

const optionalString = (name: string) =>
  Config.option(Config.string(name)).pipe(Config.map(Option.filter((s) => s.trim() !== "")))
const optionalSecret = (name: string) =>
  Config.option(Config.redacted(name)).pipe(
    Config.map(Option.filter((r) => Redacted.value(r).trim() !== ""))
  )

/** Comma-separated list; empty entries dropped. */
const list = (name: string) =>
  optionalString(name).pipe(
    Config.map(Option.match({
      onNone: () => [] as ReadonlyArray<string>,
      onSome: (s) => s.split(",").map((x) => x.trim()).filter((x) => x !== "")
    }))
  )

export const ServerConfig = Config.all({
  port: Config.integer("PORT").pipe(
    Config.withDefault(8080),
    Config.validate({ message: "PORT must be 0..65535 (0: any free port)", validation: (n) => n >= 0 && n <= 65535 })
  ),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  maxBodyBytes: positiveInt("PARLEY_MAX_BODY_BYTES", 4 * 1024 * 1024),
  shutdownDrain: millis("PARLEY_SHUTDOWN_DRAIN_MS", 10_000),
  /** A client must finish sending its headers within this (slow-header clients are cut off). */
  headersTimeout: millis("PARLEY_HEADERS_TIMEOUT_MS", 30_000),
  dataDir: Config.string("PARLEY_DATA_DIR").pipe(Config.withDefault(".data"))
})
export type ServerConfig = Config.Config.Success<typeof ServerConfig>

export const DbConfig = Config.all({
  url: optionalSecret("DATABASE_URL"),
  dataDir: Config.string("PARLEY_DATA_DIR").pipe(Config.withDefault(".data")),
  /** Embedded database kept in memory instead of `<data dir>/pg` (tests). */
  inMemory: Config.boolean("PARLEY_DB_IN_MEMORY").pipe(Config.withDefault(false)),
  poolMax: positiveInt("PARLEY_DB_POOL_MAX", 10),
  statementTimeout: millis("PARLEY_DB_STATEMENT_TIMEOUT_MS", 5_000),
  connectTimeout: millis("PARLEY_DB_CONNECT_TIMEOUT_MS", 3_000),
  /** How long startup keeps retrying the first connection. */
  startupRetry: millis("PARLEY_DB_STARTUP_RETRY_MS", 15_000)
})
export type DbConfig = Config.Config.Success<typeof DbConfig>

export const AuthConfig = Config.all({
  adminToken: optionalSecret("ADMIN_TOKEN"),
  dataDir: Config.string("PARLEY_DATA_DIR").pipe(Config.withDefault(".data")),
  jwtSecret: optionalSecret("JWT_SECRET"),
  jwksUrl: optionalString("JWT_JWKS_URL"),
  jwtIssuer: optionalString("JWT_ISSUER"),
  jwtAudience: optionalString("JWT_AUDIENCE"),
  /** Failed authentications from one client within a minute that raise a security alert. */
  failureAlertThreshold: positiveInt("PARLEY_AUTH_FAILURE_ALERT_THRESHOLD", 10)
})
export type AuthConfig = Config.Config.Success<typeof AuthConfig>

const logLevels: Record<string, LogLevel.LogLevel> = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warning,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None,
  off: LogLevel.None
}

export const LogConfig = Config.all({
  level: Config.string("PARLEY_LOG_LEVEL").pipe(
    Config.withDefault("info"),
    Config.mapOrFail((name) => {
      const level = logLevels[name.trim().toLowerCase()]
      return level !== undefined
        ? Either.right(level)
        : Either.left(ConfigError.InvalidData(["PARLEY_LOG_LEVEL"], `PARLEY_LOG_LEVEL must be one of ${Object.keys(logLevels).join(", ")}`))
    })
  ),
  promptPreviewChars: Config.integer("PARLEY_LOG_PROMPT_PREVIEW_CHARS").pipe(Config.withDefault(80))
})

export const ObservabilityConfig = Config.all({
  otlpEndpoint: optionalString("OTEL_EXPORTER_OTLP_ENDPOINT"),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("parley")),
  metricsToken: optionalSecret("METRICS_TOKEN")
})

export const ProvidersConfig = Config.all({
  openaiKeys: Config.all([list("OPENAI_API_KEYS"), optionalString("OPENAI_API_KEY")]).pipe(
    Config.map(([many, one]) => Option.match(one, { onNone: () => many, onSome: (k) => [k, ...many] }))
  ),
  openaiBaseUrl: Config.string("OPENAI_BASE_URL").pipe(Config.withDefault("https://api.openai.com/v1")),
  anthropicKeys: Config.all([list("ANTHROPIC_API_KEYS"), optionalString("ANTHROPIC_API_KEY")]).pipe(
    Config.map(([many, one]) => Option.match(one, { onNone: () => many, onSome: (k) => [k, ...many] }))
  ),
  anthropicBaseUrl: Config.string("ANTHROPIC_BASE_URL").pipe(Config.withDefault("https://api.anthropic.com")),
  defaultProvider: optionalString("PARLEY_DEFAULT_PROVIDER"),
  defaultModel: optionalString("PARLEY_DEFAULT_MODEL"),
  configFile: optionalString("PARLEY_CONFIG"),
  requestTimeout: millis("PARLEY_REQUEST_TIMEOUT_MS", 60_000)
})
export type ProvidersConfig = Config.Config.Success<typeof ProvidersConfig>

export const RedisConfig = Config.all({
  url: optionalSecret("REDIS_URL")
})

const regexList = (name: string) =>
  optionalString(name).pipe(
    Config.mapOrFail((value) => {
      if (Option.isNone(value)) return Either.right([] as ReadonlyArray<RegExp>)
      try {
        const parsed: unknown = JSON.parse(value.value)
        if (!Array.isArray(parsed) || !parsed.every((p): p is string => typeof p === "string")) {
          return Either.left(ConfigError.InvalidData([name], `${name} must be a JSON array of regular expressions`))
        }
        return Either.right(parsed.map((p) => new RegExp(p, "iu")))
      } catch (e) {
        return Either.left(ConfigError.InvalidData([name], `${name} must be a JSON array of valid regular expressions: ${String(e)}`))
      }
    })
  )

export const LimitsConfig = Config.all({
  /** Requests per minute per API key (per user for JWTs); 0 turns the limit off. */
  rateLimitPerMinute: Config.integer("PARLEY_RATE_LIMIT_PER_MINUTE").pipe(
    Config.withDefault(600),
    Config.validate({ message: "PARLEY_RATE_LIMIT_PER_MINUTE must be >= 0", validation: (n) => n >= 0 })
  ),
  maxPromptChars: positiveInt("PARLEY_MAX_PROMPT_CHARS", 200_000),
  blockedPatterns: regexList("PARLEY_BLOCKED_PATTERNS"),
  idempotencyTtl: millis("PARLEY_IDEMPOTENCY_TTL_MS", 24 * 60 * 60 * 1000)
})
export type LimitsConfig = Config.Config.Success<typeof LimitsConfig>

export const ChatConfig = Config.all({
  /** Characters of session history sent with a turn; the newest messages are kept. */
  historyBudgetChars: positiveInt("PARLEY_HISTORY_BUDGET_CHARS", 24_000),
  memoryReadTimeout: millis("PARLEY_MEMORY_READ_TIMEOUT_MS", 500),
  memoryTopK: positiveInt("PARLEY_MEMORY_TOP_K", 5),
  /** Memory for sessions without an agent (an agent's own setting wins). */
  memoryDefault: Config.boolean("PARLEY_MEMORY_DEFAULT").pipe(Config.withDefault(false)),
  /** How long a turn holds its session's lease before it must renew it. */
  turnLease: millis("PARLEY_TURN_LEASE_MS", 30_000)
})
export type ChatConfig = Config.Config.Success<typeof ChatConfig>

/** Trace export details (the endpoint and service name are in ObservabilityConfig). */
export const TracingExportConfig = Config.all({
  /** Extra exporter headers, `key=value,key2=value2` (e.g. Honeycomb's `x-honeycomb-team=…`). */
  headers: optionalSecret("OTEL_EXPORTER_OTLP_HEADERS"),
  /** Delay between batch exports: the standard OTel name; tests set it low. */
  batchDelay: millis("OTEL_BSP_SCHEDULE_DELAY", 5_000)
})
export type TracingExportConfig = Config.Config.Success<typeof TracingExportConfig>

export const PoolHealthConfig = Config.all({
  interval: millis("PARLEY_DB_HEALTH_INTERVAL_MS", 5_000),
  /** A probe slower than this counts as a failure. */
  timeout: millis("PARLEY_DB_HEALTH_TIMEOUT_MS", 2_000),
  /** Connections in use / pool max above which the pool is `degraded`. */
  degradedRatio: Config.number("PARLEY_DB_POOL_DEGRADED_RATIO").pipe(
    Config.withDefault(0.9),
    Config.validate({ message: "PARLEY_DB_POOL_DEGRADED_RATIO must be in (0, 1]", validation: (r) => r > 0 && r <= 1 })
  )
})
export type PoolHealthConfig = Config.Config.Success<typeof PoolHealthConfig>

export const JobsConfig = Config.all({
  pollInterval: millis("PARLEY_JOBS_POLL_MS", 500),
  /** Per-job time limit (default 15 minutes); PARLEY_JOB_TIMEOUT_MS_<KIND> overrides it per kind. */
  defaultTimeout: millis("PARLEY_JOB_TIMEOUT_MS", 15 * 60 * 1000),
  memoryExtractTimeout: Config.option(Config.integer("PARLEY_JOB_TIMEOUT_MS_MEMORY_EXTRACT").pipe(
    Config.validate({ message: "PARLEY_JOB_TIMEOUT_MS_MEMORY_EXTRACT must be a positive integer", validation: (n) => n > 0 }),
    Config.map(Duration.millis)
  )),
  maxAttempts: positiveInt("PARLEY_JOB_MAX_ATTEMPTS", 3),
  concurrency: positiveInt("PARLEY_JOB_CONCURRENCY", 2),
  backoffBase: millis("PARLEY_JOB_BACKOFF_MS", 2_000),
  drain: millis("PARLEY_JOBS_DRAIN_MS", 10_000),
  /** Model (or route/alias) that extracts memories; the default model when unset. */
  memoryModel: optionalString("PARLEY_MEMORY_MODEL"),
  workersEnabled: Config.boolean("PARLEY_JOBS_WORKERS").pipe(Config.withDefault(true))
})
export type JobsConfig = Config.Config.Success<typeof JobsConfig>

export const CacheConfig = Config.all({
  enabled: Config.boolean("PARLEY_CACHE_ENABLED").pipe(Config.withDefault(true)),
  ttl: millis("PARLEY_CACHE_TTL_MS", 5 * 60 * 1000),
  maxEntries: positiveInt("PARLEY_CACHE_MAX_ENTRIES", 10_000),
  /** Largest reply body cached, in characters. */
  maxEntryChars: positiveInt("PARLEY_CACHE_MAX_ENTRY_CHARS", 256 * 1024)
})
export type CacheConfig = Config.Config.Success<typeof CacheConfig>
