/**
 * Load generation: autocannon for throughput (fixed connections) and latency
 * (fixed overall rate), and a small streaming client for time to first byte.
 * Latencies are kept per response at full precision (autocannon's own
 * histogram rounds to whole milliseconds).
 */
import autocannon from "autocannon"
import { Effect } from "effect"
import * as http from "node:http"
import { BenchError } from "./processes.js"

export interface Endpoint {
  readonly url: string // origin, e.g. http://127.0.0.1:8080
  readonly path: string
  readonly method: "GET" | "POST"
  readonly headers: Record<string, string>
  readonly body?: string
  /** A path per connection (the n-th connection gets `pathOf(n)`), e.g. one session per connection. */
  readonly pathOf?: (connection: number) => string
}

export interface Run {
  readonly connections: number
  readonly seconds?: number
  /** Requests per second from all connections together (open loop); closed loop when absent. */
  readonly rate?: number
  /** Stop after this many requests instead of after `seconds`. */
  readonly amount?: number
}

export interface Measured {
  readonly rps: number // successful (2xx) responses per second
  readonly p50: number // ms
  readonly p99: number // ms
  readonly ok: number
  readonly failed: number // non-2xx and connection errors (timeouts among them)
  readonly problems: string // what the failures were, e.g. "503×10, errors×2 (timeouts×2)"; "" when none
}

/** Nearest-rank percentile of unsorted samples. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return NaN
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN
}

const perConnection = (endpoint: Endpoint, pathOf: (connection: number) => string) => {
  let connection = 0
  return (client: autocannon.Client) =>
    client.setRequests([{
      method: endpoint.method,
      path: pathOf(connection++),
      headers: endpoint.headers,
      ...(endpoint.body !== undefined ? { body: endpoint.body } : {})
    }])
}

export const load = (endpoint: Endpoint, run: Run) =>
  Effect.async<Measured, BenchError>((resume) => {
    const latencies: Array<number> = []
    const options: autocannon.Options = {
      url: endpoint.url + endpoint.path,
      method: endpoint.method,
      headers: endpoint.headers,
      connections: run.connections,
      ...(run.seconds !== undefined ? { duration: run.seconds } : {}),
      ...(run.amount !== undefined ? { amount: run.amount } : {}),
      ...(run.rate !== undefined ? { overallRate: run.rate } : {}),
      ...(endpoint.body !== undefined ? { body: endpoint.body } : {}),
      ...(endpoint.pathOf !== undefined ? { setupClient: perConnection(endpoint, endpoint.pathOf) } : {}),
      timeout: 30
    }
    const instance = autocannon(options, (error: unknown, result: autocannon.Result) => {
      if (error !== null && error !== undefined) {
        return resume(Effect.fail(new BenchError({ message: `autocannon ${options.url}: ${String(error)}` })))
      }
      resume(Effect.succeed({
        rps: result["2xx"] / result.duration,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        ok: result["2xx"],
        failed: result.non2xx + result.errors, // errors include timeouts
        problems: [
          ...Object.entries(result.statusCodeStats ?? {}).flatMap(([code, { count }]) => code.startsWith("2") ? [] : [`${code}×${count ?? 0}`]),
          ...(result.errors > 0 ? [`errors×${result.errors} (timeouts×${result.timeouts})`] : [])
        ].join(", ")
      }))
    })
    instance.on("response", (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms)
    })
    return Effect.sync(() => instance.stop())
  })

/** One request that must succeed before an endpoint is measured: a broken target fails loudly, not as a fast 4xx. */
export const smoke = (endpoint: Endpoint, expect: (body: string) => boolean = () => true) =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(endpoint.url + (endpoint.pathOf?.(0) ?? endpoint.path), {
        method: endpoint.method,
        headers: endpoint.headers,
        ...(endpoint.body !== undefined ? { body: endpoint.body } : {})
      })
      const body = await res.text()
      if (res.status < 200 || res.status >= 300 || !expect(body)) throw new Error(`${res.status} ${body.slice(0, 300)}`)
    },
    catch: (e) => new BenchError({ message: `${endpoint.method} ${endpoint.url}${endpoint.path}: ${e instanceof Error ? e.message : String(e)}` })
  })

export interface Ttfb {
  readonly p50: number // ms to the first body byte
  readonly p99: number
  readonly ok: number
  readonly failed: number // wrong status, or a stream that did not end with [DONE]
}

/** One streaming request: ms to the first body byte, and whether the stream completed. */
const streamOnce = (agent: http.Agent, endpoint: Endpoint) =>
  new Promise<{ ttfb: number; complete: boolean }>((resolve) => {
    const url = new URL(endpoint.url + endpoint.path)
    const started = performance.now()
    let ttfb = NaN
    let body = ""
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: endpoint.method, headers: endpoint.headers, agent },
      (res) => {
        res.on("data", (chunk: Buffer) => {
          if (Number.isNaN(ttfb)) ttfb = performance.now() - started
          body += chunk.toString()
        })
        res.on("end", () => resolve({ ttfb, complete: res.statusCode === 200 && body.includes("[DONE]") }))
        res.on("error", () => resolve({ ttfb, complete: false }))
      }
    )
    req.on("error", () => resolve({ ttfb, complete: false }))
    req.end(endpoint.body)
  })

/** `count` streaming requests from `concurrency` sequential clients over keep-alive connections. */
export const timeToFirstByte = (endpoint: Endpoint, count: number, concurrency: number) =>
  Effect.promise(async (): Promise<Ttfb> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
    const ttfbs: Array<number> = []
    let failed = 0
    let next = 0
    const client = async () => {
      while (next < count) {
        next++
        const { ttfb, complete } = await streamOnce(agent, endpoint)
        if (complete) ttfbs.push(ttfb)
        else failed++
      }
    }
    await Promise.all(Array.from({ length: concurrency }, client))
    agent.destroy()
    return { p50: percentile(ttfbs, 50), p99: percentile(ttfbs, 99), ok: ttfbs.length, failed }
  })
