/**
 * CPU cost of one upstream call inside Parley's process, without the HTTP
 * server in front: the bare adapter (`adapter.complete` / `adapter.stream`) and the whole
 * gateway (`Gateway.complete` / `Gateway.stream`: route, deadline, retry, breaker, bulkhead,
 * key pool, metrics, spans), against the simulator on loopback.
 *
 *   npx tsx scripts/bench/gateway-cpu.ts [--calls 4000] [--concurrency 50]
 *
 * Prints CPU microseconds per call (process.cpuUsage, user + system; best of
 * three rounds) for each,
 * which is what limits a gateway's throughput on a busy core.
 */
import { Context, Duration, Effect, Layer, Logger, LogLevel, Redacted, Stream } from "effect"
import { ConfigProvider } from "effect"
import { parseArgs } from "node:util"
import * as Adapter from "../../src/Providers/Adapter.js"
import { Gateway, GatewayLive } from "../../src/Providers/Gateway.js"
import { startSimulator } from "./processes.js"

const { values } = parseArgs({ options: { calls: { type: "string", default: "3000" }, concurrency: { type: "string", default: "50" } } })
const calls = Number(values.calls)
const concurrency = Number(values.concurrency)

const prompt = { messages: [{ role: "user" as const, content: "hello" }] }

const measure = <E, R>(label: string, once: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    // warm-up: JIT, pooled connections
    yield* Effect.forEach(Array.from({ length: 500 }), () => once, { concurrency, discard: true })
    // best of three rounds: the least disturbed by GC timing and other processes
    let best = { perCall: Number.POSITIVE_INFINITY, rate: 0 }
    for (let round = 0; round < 3; round++) {
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      yield* Effect.forEach(Array.from({ length: calls }), () => once, { concurrency, discard: true })
      const wall = performance.now() - t0
      const cpu = process.cpuUsage(cpu0)
      const perCall = (cpu.user + cpu.system) / calls
      if (perCall < best.perCall) best = { perCall, rate: calls / (wall / 1000) }
    }
    process.stdout.write(`${label.padEnd(28)} ${best.perCall.toFixed(0).padStart(6)} µs CPU/call  ${best.rate.toFixed(0).padStart(6)} calls/s\n`)
  })

const program = Effect.gen(function*() {
  const sim = yield* startSimulator
  const baseUrl = `${sim.url}/v1`
  const adapter = yield* Adapter.make("openai", baseUrl)
  const key = { id: "openai#1", value: Redacted.make("sk-bench") }
  const attempt = { connectTimeout: Duration.seconds(5), firstByteTimeout: Duration.seconds(30), idleTimeout: Duration.seconds(30) }
  yield* measure("adapter.complete", adapter.complete({ ...prompt, model: "gpt-4o-mini" }, key, attempt))
  yield* measure("adapter.stream", Stream.runDrain(adapter.stream({ ...prompt, model: "gpt-4o-mini" }, key, attempt)))
  const config = ConfigProvider.fromMap(new Map([
    ["OPENAI_API_KEY", "sk-bench"],
    ["OPENAI_BASE_URL", baseUrl],
    ["PARLEY_DEFAULT_PROVIDER", "openai"]
  ]))
  const context = yield* Layer.build(GatewayLive.pipe(Layer.provide(Layer.setConfigProvider(config))))
  const gateway = Context.get(context, Gateway)
  yield* measure("Gateway.complete", gateway.complete("gpt-4o-mini", prompt, { timeout: Duration.seconds(30) }))
  yield* measure(
    "Gateway.stream",
    Effect.scoped(Effect.flatMap(gateway.stream("gpt-4o-mini", prompt, { timeout: Duration.seconds(30) }), (s) => Stream.runDrain(s.chunks)))
  )
}).pipe(Effect.provide(Adapter.layerHttpClient()), Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning))

Effect.runPromise(program).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
