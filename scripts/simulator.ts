/**
 * Upstream simulator CLI.
 *
 *   tsx scripts/simulator.ts --port 0 --host 127.0.0.1 [--latency-ms N] [--chunk-delay-ms N] [--max-records N]
 *
 * Prints one JSON line `{"url":"http://127.0.0.1:PORT"}` once listening, then
 * runs until SIGINT/SIGTERM. Drive it through the /_sim/* control endpoints.
 */
import { parseArgs } from "node:util"
import { type SimulatorOptions, startSimulator } from "../test/support/Simulator.js"

const usage = "usage: tsx scripts/simulator.ts [--port N] [--host H] [--latency-ms N] [--chunk-delay-ms N] [--max-records N]"

const intArg = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}\n${usage}\n`)
    process.exit(2)
  }
  return n
}

const main = async (): Promise<void> => {
  let values
  try {
    values = parseArgs({
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "latency-ms": { type: "string" },
        "chunk-delay-ms": { type: "string" },
        "max-records": { type: "string" },
        help: { type: "boolean", short: "h" }
      },
      strict: true
    }).values
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${usage}\n`)
    process.exit(2)
  }
  if (values.help === true) {
    process.stdout.write(`${usage}\n`)
    return
  }

  const options: {
    -readonly [K in keyof SimulatorOptions]: SimulatorOptions[K]
  } = { port: intArg("port", values.port) ?? 0, host: values.host ?? "127.0.0.1" }
  const latencyMs = intArg("latency-ms", values["latency-ms"])
  if (latencyMs !== undefined) options.latencyMs = latencyMs
  const chunkDelayMs = intArg("chunk-delay-ms", values["chunk-delay-ms"])
  if (chunkDelayMs !== undefined) options.chunkDelayMs = chunkDelayMs
  const maxRecords = intArg("max-records", values["max-records"])
  if (maxRecords !== undefined) options.maxRecords = maxRecords

  const sim = await startSimulator(options)
  process.stdout.write(`${JSON.stringify({ url: sim.url })}\n`)

  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1)
    )
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
}

main().catch((e: unknown) => {
  process.stderr.write(`simulator failed to start: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exit(1)
})
