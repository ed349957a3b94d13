/**
 * The servers under test, each a child process (so none shares the load
 * generator's event loop), stopped when its scope closes: SIGTERM, then
 * SIGKILL after 5 s. Only loopback addresses are used.
 */
import { Data, Duration, Effect, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import * as net from "node:net"
import { fileURLToPath } from "node:url"

export class BenchError extends Data.TaggedError("BenchError")<{ readonly message: string }> {}

export const ROOT = fileURLToPath(new URL("../..", import.meta.url))
export const ADMIN_TOKEN = "adm_bench_0123456789abcdef"
export const UPSTREAM_KEY = "sk-bench"

export interface Server {
  readonly name: string
  readonly url: string
  readonly pid: number
  /** The last few KB of the process' stdout and stderr, for failure messages. */
  readonly output: () => string
  /** "running", or how it exited: a server that dies mid-run is reported, not averaged in. */
  readonly status: () => string
}

export const freePort = Effect.async<number>((resume) => {
  const probe = net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = address !== null && typeof address === "object" ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})

const exited = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

const stop = (child: ChildProcess) =>
  Effect.sync(() => child.kill("SIGTERM")).pipe(
    Effect.zipRight(Effect.timeout(exited(child), "5 seconds")),
    Effect.catchAll(() => Effect.sync(() => child.kill("SIGKILL")).pipe(Effect.zipRight(exited(child))))
  )

/** A Node process with a minimal environment: nothing from the caller's shell (e.g. DATABASE_URL) leaks in. */
const spawnNode = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const base = Object.fromEntries(
        ["PATH", "HOME", "TMPDIR"].flatMap((k) => process.env[k] === undefined ? [] : [[k, process.env[k]]])
      )
      const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] })
      let tail = ""
      const keep = (chunk: Buffer) => {
        tail = (tail + chunk.toString()).slice(-4000)
      }
      child.stdout.on("data", keep)
      child.stderr.on("data", keep)
      const status = () =>
        child.exitCode === null && child.signalCode === null
          ? "running"
          : `exited (${child.signalCode ?? `code ${child.exitCode}`})`
      return { child, output: () => tail, status }
    }),
    ({ child }) => stop(child)
  )

const failed = (name: string, output: () => string, why: string) =>
  new BenchError({ message: `${name} ${why}; its output ends with:\n${output().slice(-1500)}` })

/** Waits for the `{"url": …}` line the simulator and the raw proxy print once listening. */
const urlLine = (name: string, child: ChildProcess, output: () => string) =>
  Effect.async<string, BenchError>((resume) => {
    let buffer = ""
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString()
      const match = /\{"url":"(http:\/\/127\.0\.0\.1:\d+)"\}/.exec(buffer)
      if (match?.[1] !== undefined) resume(Effect.succeed(match[1]))
    }
    child.stdout?.on("data", onData)
    child.once("exit", () => resume(Effect.fail(failed(name, output, "exited before listening"))))
    return Effect.sync(() => child.stdout?.off("data", onData))
  }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => failed(name, output, "did not start in 60 s") }))

/** Polls `url` until it answers `expect` (any status when undefined); fails at once if the process exits. */
const answers = (name: string, child: ChildProcess, url: string, output: () => string, expect?: number) =>
  Effect.tryPromise({
    try: () => fetch(url).then((res) => res.status),
    catch: () => failed(name, output, "is not answering")
  }).pipe(
    Effect.filterOrFail((status) => expect === undefined || status === expect, () => failed(name, output, `is not ready at ${url}`)),
    Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo(Duration.seconds(90)))),
    Effect.raceFirst(exited(child).pipe(Effect.zipRight(Effect.fail(failed(name, output, "exited before it was ready"))))),
    Effect.asVoid
  )

const script = (path: string) => ["--import", "tsx", path]

export const startSimulator = Effect.gen(function*() {
  const { child, output, status } = yield* spawnNode([...script("scripts/simulator.ts"), "--port", "0", "--max-records", "1000"], {})
  const url = yield* urlLine("simulator", child, output)
  return { name: "upstream simulator", url, pid: child.pid ?? 0, output, status } satisfies Server
})

export const startRawProxy = (upstream: string) =>
  Effect.gen(function*() {
    const { child, output, status } = yield* spawnNode([...script("scripts/bench/raw-proxy.ts"), "--upstream", upstream], {})
    const url = yield* urlLine("raw proxy", child, output)
    return { name: "raw Node proxy", url, pid: child.pid ?? 0, output, status } satisfies Server
  })

export const startParley = (options: { simUrl: string; dataDir: string; databaseUrl: string | undefined }) =>
  Effect.gen(function*() {
    const port = yield* freePort
    // As `npm start` runs it: a 64 MiB young generation (see README, "Performance").
    const { child, output, status } = yield* spawnNode(["--max-semi-space-size=64", ...script("src/main.ts")], {
      PORT: String(port),
      HOST: "127.0.0.1",
      PARLEY_DATA_DIR: options.dataDir,
      ADMIN_TOKEN,
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: `${options.simUrl}/v1`,
      PARLEY_DEFAULT_PROVIDER: "openai",
      // Session turns name no model.
      PARLEY_DEFAULT_MODEL: "gpt-4o-mini",
      // Effect's log level names: WARN, not "Warning" (which Config.logLevel rejects).
      PARLEY_LOG_LEVEL: "WARN",
      // On, but far above the load: the limiter's cost is measured, not its refusals.
      PARLEY_RATE_LIMIT_PER_MINUTE: "100000000",
      // Identical benchmark requests must not be served from the response cache.
      PARLEY_CACHE_ENABLED: "false",
      PARLEY_SHUTDOWN_DRAIN_MS: "1000",
      ...(options.databaseUrl !== undefined ? { DATABASE_URL: options.databaseUrl } : {})
    })
    const url = `http://127.0.0.1:${port}`
    yield* answers("Parley", child, `${url}/health`, output, 200)
    return { name: "Parley", url, pid: child.pid ?? 0, output, status } satisfies Server
  })

export const PORTKEY_BIN = "node_modules/@portkey-ai/gateway/build/start-server.js"

export const startPortkey = Effect.gen(function*() {
  if (!existsSync(`${ROOT}/${PORTKEY_BIN}`)) {
    return yield* new BenchError({ message: `${PORTKEY_BIN} is missing: run npm ci (it is a dev dependency)` })
  }
  const port = yield* freePort
  const { child, output, status } = yield* spawnNode(
    ["--import", "tsx", "--import", "./scripts/bench/loopback.ts", PORTKEY_BIN, `--port=${port}`, "--headless"],
    {}
  )
  const url = `http://127.0.0.1:${port}`
  yield* answers("Portkey gateway", child, `${url}/`, output)
  return { name: "Portkey gateway", url, pid: child.pid ?? 0, output, status } satisfies Server
})

/** Peak resident set size (VmHWM) of a live process, in MiB. */
export const peakRssMiB = (pid: number) =>
  Effect.sync(() => {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
      return match?.[1] !== undefined ? Number(match[1]) / 1024 : NaN
    } catch {
      return NaN
    }
  })

/** A JSON request with a bearer token; any status from 300 up is a failure. */
export const requestJson = (method: "GET" | "POST", url: string, token: string, body?: unknown) =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {})
      })
      const text = await res.text()
      if (res.status >= 300) throw new Error(`${res.status} ${text.slice(0, 300)}`)
      const json: unknown = JSON.parse(text)
      return json
    },
    catch: (e) => new BenchError({ message: `${method} ${url}: ${e instanceof Error ? e.message : String(e)}` })
  })

export const property = (json: unknown, name: string): unknown =>
  json !== null && typeof json === "object" ? Reflect.get(json, name) : undefined

export const stringProperty = (json: unknown, name: string) => {
  const value = property(json, name)
  return typeof value === "string"
    ? Effect.succeed(value)
    : Effect.fail(new BenchError({ message: `expected a string "${name}" in ${JSON.stringify(json).slice(0, 300)}` }))
}

/** A user whose daily quota is far above the load, and an API key, through the admin API. */
export const provisionUser = (parley: Server) =>
  Effect.gen(function*() {
    const user = yield* requestJson("POST", `${parley.url}/v1/admin/users`, ADMIN_TOKEN, {
      email: `bench-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`,
      daily_request_limit: 1_000_000_000
    })
    const userId = yield* stringProperty(user, "id")
    const key = yield* stringProperty(yield* requestJson("POST", `${parley.url}/v1/admin/users/${userId}/keys`, ADMIN_TOKEN, {}), "key")
    return { userId, key }
  })

/** Removes a bench user and everything it owns (matters on a real database). */
export const removeUser = (parley: Server, userId: string) =>
  Effect.tryPromise(() =>
    fetch(`${parley.url}/v1/admin/users/${userId}`, { method: "DELETE", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  ).pipe(Effect.ignore)

/** Runs a TypeScript script to completion; its output (last 4 KB) when it exits 0. */
export const runScript = (path: string, env: Record<string, string>, limit: Duration.DurationInput) =>
  Effect.scoped(Effect.gen(function*() {
    const { child, output } = yield* spawnNode(script(path), env)
    // "close", not "exit": the last of its output has been read by then.
    const closed = Effect.async<void>((resume) => {
      if (child.stdout?.readableEnded === true && child.exitCode !== null) return resume(Effect.void)
      child.once("close", () => resume(Effect.void))
    })
    yield* closed.pipe(Effect.timeoutFail({ duration: limit, onTimeout: () => failed(path, output, "did not finish in time") }))
    if (child.exitCode !== 0) return yield* failed(path, output, `exited with ${child.exitCode ?? child.signalCode}`)
    return output()
  }))
