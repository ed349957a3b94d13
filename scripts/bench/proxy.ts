/**
 * /v1/chat/completions, non-streaming and streaming, through four targets in
 * front of the same zero-latency simulator: the simulator itself, a raw Node
 * proxy (the ceiling for a Node gateway), Parley (auth, rate limit, quota and
 * usage persistence on) and the Portkey gateway. All run at once (idle while
 * another is measured) so that the latency runs can share one rate: half of
 * the slowest target's throughput, at most `maxRate`, so that no target is
 * measured while saturated.
 */
import { Effect, Either, type Scope } from "effect"
import { type Endpoint, load, type Measured, smoke, timeToFirstByte, type Ttfb } from "./load.js"
import {
  peakRssMiB,
  provisionUser,
  removeUser,
  type Server,
  startParley,
  startPortkey,
  startRawProxy,
  UPSTREAM_KEY
} from "./processes.js"
import { failures, ms, num, ratio, table } from "./report.js"

export interface ProxyOptions {
  readonly seconds: number // per throughput and latency run
  readonly warmupSeconds: number
  readonly connections: number // throughput runs
  readonly maxRate: number // latency runs, requests per second
  readonly ttfbRequests: number
  readonly ttfbConcurrency: number
}

type Mode = "json" | "stream"

interface Target {
  readonly name: string
  readonly server: Server
  readonly endpoint: (mode: Mode) => Endpoint
}

interface TargetResult {
  readonly name: string
  readonly throughput: Record<Mode, Measured>
  readonly atRate: Record<Mode, Measured>
  readonly ttfb: Ttfb
  readonly rssMiB: number
}

export interface ProxyResults {
  readonly results: ReadonlyArray<TargetResult>
  readonly unavailable: ReadonlyArray<{ readonly name: string; readonly reason: string }>
  readonly rate: number
  /** Servers that died mid-run: their figures are not valid. */
  readonly died: ReadonlyArray<string>
}

const target = (name: string, server: Server, headers: Record<string, string>): Target => ({
  name,
  server,
  endpoint: (mode) => ({
    url: server.url,
    path: "/v1/chat/completions",
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello to the benchmark, in a few words." }],
      ...(mode === "stream" ? { stream: true } : {})
    })
  })
})

/** Starts a target and checks one request of each mode; a failure is a reason, not a crash. */
const ready = <E extends { readonly message: string }>(name: string, start: Effect.Effect<Target, E, Scope.Scope>) =>
  start.pipe(
    Effect.tap((t) => smoke(t.endpoint("json"), (text) => text.includes('"chat.completion"'))),
    Effect.tap((t) => smoke(t.endpoint("stream"), (text) => text.includes("[DONE]"))),
    Effect.either,
    Effect.map(Either.mapLeft((e) => ({ name, reason: e.message }))),
    Effect.tap(Either.match({ onLeft: ({ reason }) => Effect.logWarning(`${name} is not measured: ${reason}`), onRight: () => Effect.void }))
  )

const perMode = <E>(f: (mode: Mode) => Effect.Effect<Measured, E>) => Effect.all({ json: f("json"), stream: f("stream") })

export const runProxyBench = (
  sim: Server,
  parleyOptions: { dataDir: string; databaseUrl: string | undefined },
  options: ProxyOptions
) =>
  Effect.gen(function*() {
    const upstreamAuth = { authorization: `Bearer ${UPSTREAM_KEY}` }
    const started = yield* Effect.all([
      ready("upstream (simulator, direct)", Effect.succeed(target("upstream (simulator, direct)", sim, upstreamAuth))),
      ready("raw Node proxy", Effect.map(startRawProxy(sim.url), (s) => target("raw Node proxy", s, upstreamAuth))),
      ready("Parley", Effect.gen(function*() {
        const parley = yield* startParley({ simUrl: sim.url, ...parleyOptions })
        const { key, userId } = yield* provisionUser(parley)
        yield* Effect.addFinalizer(() => removeUser(parley, userId))
        return target("Parley", parley, { authorization: `Bearer ${key}` })
      })),
      ready("Portkey gateway", Effect.map(startPortkey, (s) =>
        target("Portkey gateway", s, {
          ...upstreamAuth,
          "x-portkey-provider": "openai",
          "x-portkey-custom-host": `${sim.url}/v1`
        })))
    ])
    const targets = started.flatMap((r) => Either.isRight(r) ? [r.right] : [])
    const unavailable = started.flatMap((r) => Either.isLeft(r) ? [r.left] : [])

    const measured = yield* Effect.forEach(targets, (t) =>
      perMode((mode) =>
        Effect.logInfo(`${t.name}: throughput, ${mode}`).pipe(
          Effect.zipRight(load(t.endpoint(mode), { connections: options.connections, seconds: options.warmupSeconds })),
          Effect.zipRight(load(t.endpoint(mode), { connections: options.connections, seconds: options.seconds }))
        )
      ).pipe(Effect.map((throughput) => ({ t, throughput }))))

    const slowest = Math.min(...measured.flatMap(({ throughput }) => [throughput.json.rps, throughput.stream.rps]))
    const rate = Math.max(1, Math.min(options.maxRate, Math.floor(slowest / 2)))
    const results = yield* Effect.forEach(measured, ({ t, throughput }) =>
      Effect.gen(function*() {
        const atRate = yield* perMode((mode) =>
          Effect.logInfo(`${t.name}: latency at ${rate} req/s, ${mode}`).pipe(
            // Enough connections that the rate, not the connection count, paces the requests.
            Effect.zipRight(load(t.endpoint(mode), { connections: 20, seconds: options.seconds, rate }))
          )
        )
        yield* Effect.logInfo(`${t.name}: time to first byte`)
        yield* timeToFirstByte(t.endpoint("stream"), 50, options.ttfbConcurrency) // warm-up
        const ttfb = yield* timeToFirstByte(t.endpoint("stream"), options.ttfbRequests, options.ttfbConcurrency)
        return { name: t.name, throughput, atRate, ttfb, rssMiB: yield* peakRssMiB(t.server.pid) } satisfies TargetResult
      }))
    const died = targets.flatMap((t) =>
      t.server.status() === "running" ? [] : [`${t.name} ${t.server.status()} during the run: ${t.server.output().slice(-300)}`]
    )
    return { results, unavailable, rate, died } satisfies ProxyResults
  })

export const proxyReport = ({ died, rate, results, unavailable }: ProxyResults, options: ProxyOptions): string => {
  const find = (name: string) => results.find((r) => r.name.startsWith(name))
  const base = find("upstream")
  const parley = find("Parley")
  const raw = find("raw")
  const portkey = find("Portkey")
  const rows = (f: (r: TargetResult) => ReadonlyArray<string>) => [
    ...results.map((r) => [r.name, ...f(r)]),
    ...unavailable.map(({ name }) => [name, "not measured (see below)"])
  ]
  const pair = (a: number, b: number) => `${ms(a)} / ${ms(b)}`
  const added = (m: Pick<Measured, "p50" | "p99">, b: Pick<Measured, "p50" | "p99"> | undefined) =>
    b === undefined ? "n/a" : pair(m.p50 - b.p50, m.p99 - b.p99)

  return [
    `### Throughput: ${options.connections} connections, ${options.seconds} s after a ${options.warmupSeconds} s warm-up`,
    table(
      ["target", "JSON req/s", "JSON p50 / p99 ms", "stream req/s", "stream p50 / p99 ms", "failed"],
      rows((r) => [
        num(r.throughput.json.rps),
        pair(r.throughput.json.p50, r.throughput.json.p99),
        num(r.throughput.stream.rps),
        pair(r.throughput.stream.p50, r.throughput.stream.p99),
        failures(r.throughput.json, r.throughput.stream)
      ])
    ),
    `### Latency at a fixed ${rate} req/s (${options.seconds} s, 20 connections)`,
    `The rate is half the slowest target's throughput above, capped at ${options.maxRate} req/s, so that no target is ` +
    "measured saturated. Added = target − upstream, percentile by percentile; a stream's latency is to its last byte.",
    table(
      ["target", "JSON p50 / p99 ms", "JSON added p50 / p99", "stream p50 / p99 ms", "stream added p50 / p99", "failed"],
      rows((r) => [
        pair(r.atRate.json.p50, r.atRate.json.p99),
        added(r.atRate.json, base?.atRate.json),
        pair(r.atRate.stream.p50, r.atRate.stream.p99),
        added(r.atRate.stream, base?.atRate.stream),
        failures(r.atRate.json, r.atRate.stream)
      ])
    ),
    `### Streaming time to first byte: ${options.ttfbRequests} requests, ${options.ttfbConcurrency} concurrent clients`,
    table(
      ["target", "TTFB p50 / p99 ms", "added p50 / p99 ms", "failed"],
      rows((r) => [pair(r.ttfb.p50, r.ttfb.p99), added(r.ttfb, base?.ttfb), failures({ failed: r.ttfb.failed, problems: "incomplete streams" })])
    ),
    "### Peak RSS (VmHWM of each server process, read after its runs)",
    table(["process", "peak RSS MiB"], rows((r) => [num(r.rssMiB)])),
    "### Ratios",
    table(
      ["", "Parley / raw proxy", "Parley / Portkey"],
      [
        ["JSON throughput", ratio(parley?.throughput.json.rps, raw?.throughput.json.rps), ratio(parley?.throughput.json.rps, portkey?.throughput.json.rps)],
        ["stream throughput", ratio(parley?.throughput.stream.rps, raw?.throughput.stream.rps), ratio(parley?.throughput.stream.rps, portkey?.throughput.stream.rps)],
        ["JSON p50 at the fixed rate", ratio(parley?.atRate.json.p50, raw?.atRate.json.p50), ratio(parley?.atRate.json.p50, portkey?.atRate.json.p50)],
        ["stream TTFB p50", ratio(parley?.ttfb.p50, raw?.ttfb.p50), ratio(parley?.ttfb.p50, portkey?.ttfb.p50)],
        ["peak RSS", ratio(parley?.rssMiB, raw?.rssMiB), ratio(parley?.rssMiB, portkey?.rssMiB)]
      ]
    ),
    ...unavailable.map(({ name, reason }) => `**${name} could not be measured**: ${reason.replace(/\s+/g, " ").slice(0, 600)}`),
    ...died.map((d) => `**Not valid**: ${d.replace(/\s+/g, " ")}`)
  ].join("\n\n")
}
