/**
 * Parley's own CPU time per request, per endpoint: the simulator and Parley
 * as child processes (Parley as `npm start` runs it), autocannon at 50
 * connections, and Parley's user + system time read from /proc/<pid>/stat
 * before and after each run, divided by the requests served. Throughput on a
 * shared 2-core machine moves with everything else running; CPU per request
 * is what Parley itself costs.
 *
 *   npx tsx scripts/bench/server-cpu.ts [--seconds 6]
 *   BENCH_DATABASE_URL=postgres://… npx tsx scripts/bench/server-cpu.ts   # external database
 *
 * Linux only (/proc). Loopback only; stops by itself.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, LogLevel } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { type Endpoint, load } from "./load.js"
import { BenchError, provisionUser, startParley, startSimulator } from "./processes.js"

const { values } = parseArgs({ options: { seconds: { type: "string", default: "6" } } })
const seconds = Number(values.seconds)
const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())

/** utime + stime of a process, in seconds (fields 14 and 15 of /proc/<pid>/stat). */
const cpuSeconds = (pid: number) =>
  Effect.try({
    try: () => {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond
    },
    catch: () => new BenchError({ message: `cannot read /proc/${pid}/stat (Linux only)` })
  })

const program = Effect.gen(function*() {
  const dataDir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "parley-cpu-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const sim = yield* startSimulator
  const databaseUrl = process.env["BENCH_DATABASE_URL"] || undefined
  const parley = yield* startParley({ simUrl: sim.url, dataDir, databaseUrl })
  const { key } = yield* provisionUser(parley)
  const auth = { authorization: `Bearer ${key}` }
  const json = { ...auth, "content-type": "application/json" }
  const chat = (stream: boolean) =>
    JSON.stringify({ model: "gpt-4o-mini", ...(stream ? { stream: true } : {}), messages: [{ role: "user", content: "hello" }] })
  const endpoints: ReadonlyArray<readonly [string, Endpoint]> = [
    ["GET /health", { url: parley.url, path: "/health", method: "GET", headers: {} }],
    ["GET /v1/models (auth)", { url: parley.url, path: "/v1/models", method: "GET", headers: auth }],
    ["POST /v1/chat/completions", { url: parley.url, path: "/v1/chat/completions", method: "POST", headers: json, body: chat(false) }],
    ["… stream: true", { url: parley.url, path: "/v1/chat/completions", method: "POST", headers: json, body: chat(true) }]
  ]
  process.stdout.write(
    `Parley's CPU per request (${databaseUrl !== undefined ? "external Postgres" : "embedded Postgres, its CPU included"}), 50 connections, ${seconds} s each\n\n` +
      "| endpoint | req/s | CPU µs / request |\n| --- | ---: | ---: |\n"
  )
  for (const [name, endpoint] of endpoints) {
    yield* load(endpoint, { connections: 50, seconds: 2 }) // warm-up
    const before = yield* cpuSeconds(parley.pid)
    const run = yield* load(endpoint, { connections: 50, seconds })
    const after = yield* cpuSeconds(parley.pid)
    if (run.failed > 0) yield* Effect.fail(new BenchError({ message: `${name}: ${run.failed} failed (${run.problems})` }))
    process.stdout.write(`| ${name} | ${run.rps.toFixed(0)} | ${((after - before) * 1e6 / run.ok).toFixed(0)} |\n`)
  }
}).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning))

NodeRuntime.runMain(program)
