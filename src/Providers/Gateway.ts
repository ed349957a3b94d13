/**
 * The gateway to AI providers: resolve a model name to route targets, then
 * call them with one deadline for the whole request, retries per target
 * (transient failures only, full-jitter backoff, Retry-After honoured inside
 * the deadline, another key after a refused one), a circuit breaker and a
 * bulkhead per provider, and fallback along the route. A stream is retried
 * only until its first chunk; after that a failure ends it.
 */
import {
  Chunk,
  Duration,
  Effect,
  Exit,
  Layer,
  Metric,
  MetricBoundaries,
  MetricLabel,
  ExecutionStrategy,
  Option,
  Ref,
  Scope,
  Stream
} from "effect"
import { ProvidersConfig } from "../Config.js"
import { memoize } from "../Observability/Metrics.js"
import { ModelNotFound, ProviderNotConfigured } from "../Errors.js"
import type * as Bulkhead from "../Resilience/Bulkhead.js"
import type * as CircuitBreaker from "../Resilience/CircuitBreaker.js"
import * as Deadline from "../Resilience/Deadline.js"
import type { KeySnapshot } from "./KeyPool.js"
import type { DeadlineExceeded } from "../Resilience/Errors.js"
import * as Fallback from "../Resilience/Fallback.js"
import * as Retry from "../Resilience/Retry.js"
import * as Adapter from "./Adapter.js"
import type { ChatChunk, ChatRequest, ChatResponse, ProviderKey, ProviderKind } from "./Domain.js"
import { countsAsCircuitFailure, type ProviderError } from "./Errors.js"
import {
  type AttemptFailure,
  attemptRetryable,
  type CallFailure,
  type GatewayError,
  retryAfterOf,
  shouldFallback,
  TargetNotConfigured,
  toGatewayError
} from "./Failures.js"
import { loadParleyFile, namedModels, type ParleyFile, resolve, type Target } from "./Routing.js"
import * as Runtime from "./Runtime.js"

export const attemptsTotal = Metric.counter("parley_provider_attempts_total", { description: "Upstream attempts by provider and outcome" })
export const retriesTotal = Metric.counter("parley_provider_retries_total", { description: "Upstream retries by provider" })
export const latency = Metric.histogram(
  "parley_provider_latency_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 14 }),
  "Upstream attempt latency (headers for streams)"
)
export const ttft = Metric.histogram(
  "parley_provider_ttft_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 14 }),
  "Time to first token of streamed replies"
)

export const tokensTotal = Metric.counter("parley_tokens_total", { description: "Tokens by provider and direction (in, out)" })

const tokensOf = memoize((provider) => ({
  in: Metric.taggedWithLabels(tokensTotal, [MetricLabel.make("provider", provider), MetricLabel.make("direction", "in")]),
  out: Metric.taggedWithLabels(tokensTotal, [MetricLabel.make("provider", provider), MetricLabel.make("direction", "out")])
}))
const attemptsOf = memoize((provider, outcome) =>
  Metric.taggedWithLabels(attemptsTotal, [MetricLabel.make("provider", provider), MetricLabel.make("outcome", outcome)]))
const latencyOf = memoize((provider) => Metric.tagged(latency, "provider", provider))
const ttftOf = memoize((provider) => Metric.tagged(ttft, "provider", provider))

const countTokens = (provider: string, inputTokens: number, outputTokens: number) => {
  const m = tokensOf(provider)
  return Effect.zipRight(Metric.incrementBy(m.in, inputTokens), Metric.incrementBy(m.out, outputTokens))
}

/** The request without its model: the gateway fills in each target's upstream model. */
export type Prompt = Omit<ChatRequest, "model">

export interface CallOptions {
  /** Budget for the whole call: attempts, waits and fallbacks (streams: until their end). */
  readonly timeout: Duration.Duration
}

export interface Served {
  readonly provider: ProviderKind
  readonly model: string
}

/** A failure after the first chunk reached the client: the stream ends with it. */
export interface MidStreamFailure {
  readonly _tag: "MidStreamFailure"
  readonly code: "ERR_STREAM_INTERRUPTED" | "ERR_PROVIDER_TIMEOUT"
  readonly message: string
}

export interface ProviderStatus {
  readonly provider: ProviderKind
  readonly configured: boolean
  readonly base_url: string
  readonly circuit: CircuitBreaker.Snapshot
  readonly bulkhead: Bulkhead.Snapshot
  readonly keys: ReadonlyArray<KeySnapshot>
  readonly counters: Runtime.Counters
}

const outcomeOf = (e: AttemptFailure | DeadlineExceeded): string =>
  e._tag === "UpstreamStatusError" ? `status_${e.status}` : e._tag

export class Gateway extends Effect.Service<Gateway>()("parley/Gateway", {
  scoped: Effect.gen(function*() {
    const cfg = yield* ProvidersConfig
    const file: ParleyFile = yield* loadParleyFile(cfg.configFile).pipe(Effect.orDie)
    const runtimes = new Map<ProviderKind, Runtime.ProviderRuntime>()
    const openai = yield* Runtime.make("openai", cfg.openaiBaseUrl, cfg.openaiKeys, file.providers?.openai ?? {})
    const anthropic = yield* Runtime.make("anthropic", cfg.anthropicBaseUrl, cfg.anthropicKeys, file.providers?.anthropic ?? {})
    if (cfg.openaiKeys.length > 0) runtimes.set("openai", openai)
    if (cfg.anthropicKeys.length > 0) runtimes.set("anthropic", anthropic)
    const configuredDefault: Option.Option<ProviderKind> = Option.flatMap(cfg.defaultProvider, (p) =>
      p === "openai" || p === "anthropic" ? Option.some(p) : Option.none())
    const defaultProvider = Option.isSome(configuredDefault)
      ? configuredDefault
      : runtimes.size === 1 ? Option.fromNullable([...runtimes.keys()][0]) : Option.none()

    const targetsFor = (model: string) => {
      if (runtimes.size === 0) {
        return Effect.fail(new ProviderNotConfigured({ message: "No model provider is configured (set OPENAI_API_KEY or ANTHROPIC_API_KEY)." }))
      }
      const resolution = resolve(file, defaultProvider, model)
      return resolution._tag === "Targets"
        ? Effect.succeed(resolution.targets)
        : Effect.fail(new ModelNotFound({ message: `Unknown model "${model.slice(0, 100)}". Use provider/model, an alias or a route.` }))
    }

    /** Attempts on one target, with retries; `once` is one attempt with one key. */
    const onTarget = <A>(
      target: Target,
      deadline: Deadline.Deadline,
      once: (rt: Runtime.ProviderRuntime, key: ProviderKey, attempt: number, backoffMs: number) => Effect.Effect<A, ProviderError>
    ): Effect.Effect<A, CallFailure> => {
      const rt = runtimes.get(target.provider)
      if (rt === undefined) return Effect.fail(new TargetNotConfigured({ provider: target.provider }))
      let backoffMs = 0
      const attempt = (n: number): Effect.Effect<A, AttemptFailure> =>
        Effect.gen(function*() {
          const key = yield* rt.keys.next
          const started = Date.now()
          yield* Runtime.count(rt, (c) => ({ ...c, attempts: c.attempts + 1, inFlight: c.inFlight + 1 }))
          return yield* rt.bulkhead.run(rt.breaker.run(once(rt, key, n, backoffMs), countsAsCircuitFailure)).pipe(
            Effect.tapBoth({
              onFailure: (e) =>
                Effect.all([
                  e._tag === "UpstreamStatusError" && (e.status === 401 || e.status === 403)
                    ? rt.keys.reportRejected(key.id, `upstream answered ${e.status}`)
                    : Effect.void,
                  e._tag === "UpstreamStatusError" && e.status === 429
                    ? rt.keys.reportRateLimited(key.id, Duration.millis(e.retryAfterMs ?? 1_000))
                    : Effect.void,
                  Runtime.count(rt, (c) => ({ ...c, failures: c.failures + 1 })),
                  Metric.increment(attemptsOf(rt.kind, outcomeOf(e))),
                  Effect.annotateCurrentSpan({ "parley.attempt.outcome": outcomeOf(e), ...(e._tag === "UpstreamStatusError" ? { "http.response.status_code": e.status } : {}) })
                ]),
              onSuccess: () =>
                Effect.all([
                  Runtime.count(rt, (c) => ({ ...c, successes: c.successes + 1 })),
                  Metric.increment(attemptsOf(rt.kind, "success")),
                  Effect.annotateCurrentSpan({ "parley.attempt.outcome": "success" })
                ])
            }),
            Effect.ensuring(Effect.all([
              Runtime.count(rt, (c) => ({ ...c, inFlight: c.inFlight - 1 })),
              Metric.update(latencyOf(rt.kind), (Date.now() - started) / 1000)
            ])),
            Effect.withSpan("Provider.attempt", { captureStackTrace: false,
              attributes: {
                "gen_ai.system": rt.kind,
                "gen_ai.request.model": target.model,
                "parley.provider.key_id": key.id,
                "parley.attempt": n,
                "parley.retry.backoff_before_ms": backoffMs
              }
            })
          )
        })
      return Retry.retry(attempt, {
        maxAttempts: Option.getOrElse(target.maxAttempts, () => rt.settings.maxAttempts),
        baseDelay: rt.settings.backoffBase,
        maxDelay: rt.settings.backoffMax,
        isRetryable: attemptRetryable,
        retryAfter: (e) => Option.map(retryAfterOf(e), Duration.millis),
        deadline,
        onAttempt: (info) =>
          info.nextDelay === undefined ? Effect.void : Effect.gen(function*() {
            backoffMs = Duration.toMillis(info.nextDelay ?? Duration.zero)
            yield* Runtime.count(rt, (c) => ({ ...c, retries: c.retries + 1 }))
            yield* Metric.increment(Metric.tagged(retriesTotal, "provider", rt.kind))
            yield* Effect.logInfo("retrying upstream").pipe(Effect.annotateLogs({
              provider: rt.kind,
              attempt: info.attempt,
              backoff_ms: backoffMs,
              reason: info.error === undefined ? "unknown" : outcomeOf(info.error)
            }))
          })
      })
    }

    const overRoute = <A>(
      model: string,
      options: CallOptions,
      once: (rt: Runtime.ProviderRuntime, key: ProviderKey, target: Target, attempt: number, backoffMs: number) => Effect.Effect<A, ProviderError>
    ): Effect.Effect<A & Served, GatewayError> =>
      Effect.gen(function*() {
        const targets = yield* targetsFor(model)
        const deadline = yield* Deadline.make(options.timeout)
        return yield* Deadline.run(
          deadline,
          Fallback.firstSuccess(
            targets,
            (target, index) =>
              (index > 0
                ? Effect.flatMap(Effect.fromNullable(runtimes.get(target.provider)), (rt) =>
                  Runtime.count(rt, (c) => ({ ...c, fallbacks: c.fallbacks + 1 }))).pipe(Effect.ignore)
                : Effect.void).pipe(
                  Effect.zipRight(onTarget(target, deadline, (rt, key, n, b) => once(rt, key, target, n, b))),
                  Effect.map((a): A & Served => ({ ...a, provider: target.provider, model: target.model }))
                ),
            shouldFallback
          )
        ).pipe(Effect.mapError(toGatewayError))
      }).pipe(Effect.withSpan("Provider.route", { captureStackTrace: false, attributes: { "gen_ai.request.model": model } }))

    const complete = (model: string, prompt: Prompt, options: CallOptions) =>
      overRoute(model, options, (rt, key, target) =>
        Effect.map(rt.adapter.complete({ ...prompt, model: target.model }, key, rt.settings.attempt), (response: ChatResponse) => ({ response }))).pipe(
        Effect.tap((served) => countTokens(served.provider, served.response.usage.inputTokens, served.response.usage.outputTokens))
      )

    /**
     * A stream that has produced its first chunk (so retries and fallback are
     * over), with the rest to follow. The upstream request lives in `scope`.
     *
     * The request's budget bounds the whole reply: each attempt gets it as its
     * total timeout (when tighter than the provider's own), so the adapter's
     * stream watchdog enforces it — no second timer on the stream.
     */
    const stream = (model: string, prompt: Prompt, options: CallOptions) =>
      Effect.gen(function*() {
        const outer = yield* Effect.scope
        const started = Date.now()
        const budgetMs = Duration.toMillis(options.timeout)
        const opened = yield* overRoute(model, options, (rt, key, target) =>
          Effect.gen(function*() {
            const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
            const leftMs = Math.max(1, budgetMs - (Date.now() - started))
            const configuredMs = rt.settings.attempt.totalTimeout === undefined
              ? Number.POSITIVE_INFINITY
              : Duration.toMillis(rt.settings.attempt.totalTimeout)
            const budgetBound = leftMs < configuredMs
            const attempt = { ...rt.settings.attempt, totalTimeout: Duration.millis(Math.min(leftMs, configuredMs)) }
            return yield* Effect.gen(function*() {
              const pull = yield* Stream.toPull(rt.adapter.stream({ ...prompt, model: target.model }, key, attempt)).pipe(
                Scope.extend(scope)
              )
              // The first non-empty chunk decides the attempt; an end without one is no reply.
              const untilNonEmpty: Effect.Effect<Chunk.Chunk<ChatChunk>, Option.Option<ProviderError>> = Effect.flatMap(
                pull,
                (c) => Chunk.isEmpty(c) ? Effect.suspend(() => untilNonEmpty) : Effect.succeed(c)
              )
              const first = yield* untilNonEmpty.pipe(Effect.catchAll(Option.match({
                onNone: () => Effect.succeed(Chunk.empty<ChatChunk>()),
                onSome: (e) => Effect.fail(e)
              })))
              return { first, pull, scope, budgetBound }
            }).pipe(Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
          }))
        yield* Metric.update(ttftOf(opened.provider), (Date.now() - started) / 1000)
        const midStream = (e: ProviderError): MidStreamFailure =>
          e._tag === "AttemptTimeout" && e.kind === "total" && opened.budgetBound
            ? { _tag: "MidStreamFailure", code: "ERR_PROVIDER_TIMEOUT", message: `The reply did not finish within ${budgetMs} ms.` }
            : { _tag: "MidStreamFailure", code: "ERR_STREAM_INTERRUPTED", message: `The model provider failed mid-stream: ${e._tag}.` }
        // Tokens are counted when the Finish chunk passes; one Effect per batch of chunks, none per chunk.
        const counted = (chunk: Chunk.Chunk<ChatChunk>): Effect.Effect<Chunk.Chunk<ChatChunk>> => {
          for (const c of chunk) {
            if (c._tag === "Finish" && c.usage !== null) {
              return Effect.as(countTokens(opened.provider, c.usage.inputTokens, c.usage.outputTokens), chunk)
            }
          }
          return Effect.succeed(chunk)
        }
        let first: Chunk.Chunk<ChatChunk> | undefined = opened.first
        const next: Effect.Effect<Chunk.Chunk<ChatChunk>, Option.Option<MidStreamFailure>> = Effect.suspend(() => {
          if (first !== undefined) {
            const c = first
            first = undefined
            return counted(c)
          }
          return Effect.flatMap(opened.pull, counted)
        }).pipe(Effect.mapError(Option.map(midStream)))
        const chunks: Stream.Stream<ChatChunk, MidStreamFailure> = Stream.repeatEffectChunkOption(next).pipe(
          Stream.ensuring(Scope.close(opened.scope, Exit.void))
        )
        return { provider: opened.provider, model: opened.model, chunks }
      })

    const status: Effect.Effect<ReadonlyArray<ProviderStatus>> = Effect.forEach([openai, anthropic], (rt) =>
      Effect.all({
        circuit: rt.breaker.snapshot,
        bulkhead: rt.bulkhead.snapshot,
        keys: rt.keys.snapshot,
        counters: Ref.get(rt.counters)
      }).pipe(Effect.map((s): ProviderStatus => ({
        provider: rt.kind,
        configured: runtimes.has(rt.kind),
        base_url: rt.adapter.baseUrl,
        ...s
      }))))

    /** Back into rotation: the provider's keys afterwards, or none when it has no such key. */
    const reinstateKey = (provider: ProviderKind, keyId: string): Effect.Effect<Option.Option<ReadonlyArray<KeySnapshot>>> => {
      const rt = runtimes.get(provider)
      if (rt === undefined) return Effect.succeedNone
      return Effect.gen(function*() {
        if (!(yield* rt.keys.snapshot).some((k) => k.id === keyId)) return Option.none()
        yield* rt.keys.reinstate(keyId)
        yield* Effect.logInfo("provider key reinstated").pipe(Effect.annotateLogs({ provider, key_id: keyId }))
        return Option.some(yield* rt.keys.snapshot)
      })
    }

    return {
      complete,
      stream,
      status,
      reinstateKey,
      targetsFor,
      /** Names a client can ask for: aliases, routes, and the configured providers' prefixes. */
      models: Effect.sync(() => ({
        named: namedModels(file),
        providers: [...runtimes.keys()],
        defaultModel: cfg.defaultModel
      })),
      defaultTimeout: cfg.requestTimeout,
      file
    } as const
  })
}) {}

/** The gateway with its pooled HTTP client. */
export const GatewayLive = Gateway.Default.pipe(Layer.provide(Adapter.layerHttpClient({ connectTimeout: Duration.seconds(5) })))
