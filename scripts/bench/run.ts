/**
 * `npm run bench`: gateway overhead on /v1/chat/completions (upstream direct,
 * raw Node proxy, Parley, Portkey) and the sessions benchmark, in one run,
 * on loopback only. Prints a Markdown report and writes it to
 * scripts/bench/RESULTS.md.
 *
 *   npm run bench                          # everything (about 8 minutes on 2 cores)
 *   npm run bench -- --only proxy          # or --only sessions
 *   npm run bench -- --seconds 5           # shorter runs, for a quick look
 *   npm run bench -- --output /tmp/r.md    # write the report elsewhere than scripts/bench/RESULTS.md
 *   BENCH_DATABASE_URL=postgres://… npm run bench   # Parley on that database instead of the embedded one
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, LogLevel, Schedule } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { ROOT, startSimulator } from "./processes.js"
import { proxyReport, runProxyBench } from "./proxy.js"
import { runSessionBench } from "./session.js"

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    seconds: { type: "string", default: "15" },
    output: { type: "string", default: "scripts/bench/RESULTS.md" },
    "no-sql-level": { type: "boolean", default: false }
  }
})
const only = values.only
if (only !== undefined && only !== "proxy" && only !== "sessions") {
  process.stderr.write("--only must be proxy or sessions\n")
  process.exit(2)
}
const seconds = Number(values.seconds)
if (!Number.isInteger(seconds) || seconds < 1) {
  process.stderr.write("--seconds must be a positive integer\n")
  process.exit(2)
}

const databaseUrl = process.env["BENCH_DATABASE_URL"] || undefined
const shell = (file: string, ...args: Array<string>) => {
  try {
    return execFileSync(file, args, { encoding: "utf8" }).trimEnd()
  } catch {
    return "(unavailable)"
  }
}
const load = () => loadavg().map((n) => n.toFixed(2)).join(" / ")
const command = ["npm run bench", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" ")

const dataDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "parley-bench-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const program = Effect.gen(function*() {
  const startedAt = new Date()
  const loadBefore = load()
  // Other work on the machine skews every figure: the 1-minute load average is sampled throughout.
  const loadSamples: Array<number> = []
  yield* Effect.forkScoped(Effect.repeat(Effect.sync(() => loadSamples.push(loadavg()[0] ?? NaN)), Schedule.spaced("5 seconds")))
  const sim = yield* startSimulator
  const parleyOptions = { dataDir: yield* dataDir, databaseUrl }
  const warmupSeconds = 3
  const sections: Array<string> = []

  if (only === undefined || only === "proxy") {
    const options = { seconds, warmupSeconds, connections: 50, maxRate: 200, ttfbRequests: 500, ttfbConcurrency: 10 }
    // Scoped: its servers stop before the sessions benchmark starts.
    const results = yield* Effect.scoped(runProxyBench(sim, parleyOptions, options))
    sections.push("## POST /v1/chat/completions: gateway overhead", proxyReport(results, options))
  }
  if (only === undefined || only === "sessions") {
    sections.push("## Sessions", yield* runSessionBench(sim, parleyOptions, {
      seconds,
      warmupSeconds,
      connections: 50,
      sessions: 10_000,
      listConnections: 10,
      sqlLevel: !values["no-sql-level"]
    }))
  }

  const minutes = ((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)
  const report = [
    "# Parley benchmarks",
    [
      `- Date: ${startedAt.toISOString()} (took ${minutes} min)`,
      `- Command: \`${command}\``,
      `- Machine: ${shell("nproc")} cores (nproc), Node ${process.version}; load average (1/5/15 min) ${loadBefore} at the start, ` +
      `${load()} at the end; 1-minute load during the run ${Math.min(...loadSamples).toFixed(2)}–${Math.max(...loadSamples).toFixed(2)}`,
      `- Parley's database: ${databaseUrl !== undefined ? "PostgreSQL from BENCH_DATABASE_URL" : "embedded PGlite (in a worker thread of Parley's process; BENCH_DATABASE_URL unset)"}`,
      "- Upstream: the zero-latency simulator (scripts/simulator.ts) in its own process; every server and the load generator " +
      "(autocannon, in the bench process) share the machine's cores, over loopback only.",
      "- Parley runs with auth (API key), rate limit (on, not binding), quota (counted in the database) and usage persistence; " +
      "its response cache is off. With the embedded database, Parley's RSS includes PGlite (Postgres in WebAssembly) and its CPU " +
      "time the database's work.",
      "- Portkey (`@portkey-ai/gateway` 1.15.2, its defaults: no cache, no config) runs with `@hono/node-server` 1.14.1 " +
      "(an npm override): with later versions its streaming answers fail with `TypeError: immutable` (Portkey-AI/gateway#1389). " +
      "It holds the first chunk of an OpenAI stream for 25 ms (a `setTimeout(25)` in its stream splitter), which shows in its TTFB."
    ].join("\n"),
    "```\n$ free -g\n" + shell("free", "-g") + "\n```",
    ...sections
  ].join("\n\n") + "\n"
  process.stdout.write(`\n${report}`)
  writeFileSync(resolve(ROOT, values.output), report)
  yield* Effect.logInfo(`written to ${values.output}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Logger.minimumLogLevel(LogLevel.Info)),
  NodeRuntime.runMain
)
