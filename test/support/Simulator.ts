/**
 * Upstream simulator: a real HTTP server speaking the OpenAI chat-completions
 * API and the Anthropic messages API, with faults scripted per request.
 * Used by tests and benchmarks as Parley's fake AI provider.
 *
 * Plain `node:http` on purpose: faults need low-level control over sockets.
 * Wire formats live in ./SimulatorFormats.ts.
 */
import * as http from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { Effect } from "effect"
import {
  type Api,
  anthropicMessage,
  anthropicStream,
  countTokens,
  decodeFault,
  decodeFaults,
  errorBody,
  type Fault,
  isRecord,
  lastUserText,
  modelsList,
  openAiCompletion,
  openAiStream,
  promptTokens,
  type Reply,
  splitPieces,
  validateRequest
} from "./SimulatorFormats.js"

export type { Fault } from "./SimulatorFormats.js"

export interface RecordedRequest {
  id: number
  api: "openai" | "anthropic"
  method: string
  path: string
  headers: Record<string, string | string[] | undefined>
  body: unknown // parsed JSON or raw string
  apiKey: string | undefined // Authorization Bearer (openai) or x-api-key (anthropic)
  model: string | undefined // body.model, when a string
  stream: boolean // body.stream === true
  fault: Fault["kind"]
  aborted: boolean // client closed the connection before the response finished
  completed: boolean // response fully written
  receivedAt: number
  closedAt?: number
}

export interface Simulator {
  readonly url: string
  readonly requests: ReadonlyArray<RecordedRequest>
  script(...faults: Array<Fault>): void
  scriptFor(model: string, ...faults: Array<Fault>): void
  rejectKeys(...keys: Array<string>): void
  setDefault(fault: Fault): void
  reset(): void
  waitFor(pred: (reqs: ReadonlyArray<RecordedRequest>) => boolean, timeoutMs?: number): Promise<void>
  openConnections(): number
  /** Response timers still armed (header and chunk delays of exchanges in flight). */
  pendingTimers(): number
  close(): Promise<void>
}

export interface SimulatorOptions {
  readonly port?: number
  readonly host?: string
  /** Delay before response headers, for every API request (overridden by `headersDelayMs`). */
  readonly latencyMs?: number
  /** Delay between stream chunks (overridden by `chunkDelayMs` of an "ok" fault). */
  readonly chunkDelayMs?: number
  /** Keep at most this many recorded requests (oldest dropped). Default: unlimited. */
  readonly maxRecords?: number
}

/** One request/response in flight. */
interface Exchange {
  readonly res: http.ServerResponse
  readonly socket: Socket
  rec: RecordedRequest | undefined
  timer: NodeJS.Timeout | undefined
  done: boolean // the response is closed (finished, aborted or destroyed)
  selfDestroyed: boolean // the simulator destroyed the socket on purpose
}

interface Waiter {
  readonly pred: (reqs: ReadonlyArray<RecordedRequest>) => boolean
  readonly resolve: () => void
  readonly reject: (e: Error) => void
  readonly timer: NodeJS.Timeout
}

const OK: Fault = { kind: "ok" }
const SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"

const bearer = (h: string | undefined): string | undefined =>
  h !== undefined && h.startsWith("Bearer ") ? h.slice(7) : undefined

const apiKeyOf = (api: Api, headers: http.IncomingHttpHeaders): string | undefined => {
  if (api === "openai") return bearer(headers.authorization)
  const key = headers["x-api-key"]
  return typeof key === "string" ? key : bearer(headers.authorization)
}

export const startSimulator = async (options: SimulatorOptions = {}): Promise<Simulator> => {
  const latencyMs = options.latencyMs ?? 0
  const globalChunkDelayMs = options.chunkDelayMs ?? 0
  const maxRecords = options.maxRecords ?? Infinity

  let records: Array<RecordedRequest> = []
  let queue: Array<Fault> = []
  let byModel = new Map<string, Array<Fault>>()
  let rejected = new Set<string>()
  let defaultFault: Fault = OK
  let nextId = 1
  let closing = false
  let closed: Promise<void> | undefined
  const sockets = new Set<Socket>()
  const active = new Set<Exchange>()
  const waiters = new Set<Waiter>()

  // -------------------------------------------------------------------------
  // Scripting and records

  const script = (...faults: Array<Fault>): void => {
    queue.push(...faults)
  }
  const scriptFor = (model: string, ...faults: Array<Fault>): void => {
    const q = byModel.get(model)
    if (q === undefined) byModel.set(model, [...faults])
    else q.push(...faults)
  }
  const rejectKeys = (...keys: Array<string>): void => {
    for (const k of keys) rejected.add(k)
  }
  const reset = (): void => {
    records = []
    queue = []
    byModel = new Map()
    rejected = new Set()
    defaultFault = OK
  }
  const nextFault = (model: string | undefined): Fault => {
    if (model !== undefined) {
      const q = byModel.get(model)
      const f = q?.shift()
      if (f !== undefined) return f
    }
    return queue.shift() ?? defaultFault
  }

  const notify = (): void => {
    if (waiters.size === 0) return
    for (const w of waiters) {
      let ok: boolean
      try {
        ok = w.pred(records)
      } catch (e) {
        ok = false
        waiters.delete(w)
        clearTimeout(w.timer)
        w.reject(e instanceof Error ? e : new Error(String(e)))
      }
      if (ok) {
        waiters.delete(w)
        clearTimeout(w.timer)
        w.resolve()
      }
    }
  }

  const waitFor = (pred: (reqs: ReadonlyArray<RecordedRequest>) => boolean, timeoutMs = 5_000): Promise<void> =>
    pred(records)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const w: Waiter = {
            pred,
            resolve,
            reject,
            timer: setTimeout(() => {
              waiters.delete(w)
              reject(new Error(`Simulator.waitFor timed out after ${timeoutMs}ms (${records.length} requests recorded)`))
            }, timeoutMs)
          }
          waiters.add(w)
        })

  const record = (rec: RecordedRequest): void => {
    records.push(rec)
    if (records.length > maxRecords) records.shift()
    notify()
  }

  // -------------------------------------------------------------------------
  // Response primitives

  /** Runs `fn` after `ms` unless the exchange closes first (the timer is then cleared). */
  const later = (ex: Exchange, ms: number, fn: () => void): void => {
    if (ex.done) return
    if (ms <= 0) return fn()
    ex.timer = setTimeout(() => {
      ex.timer = undefined
      if (!ex.done) fn()
    }, ms)
  }

  const destroy = (ex: Exchange): void => {
    ex.selfDestroyed = true
    ex.socket.destroy()
  }

  const send = (res: http.ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void => {
    const text = typeof body === "string" ? body : JSON.stringify(body)
    res.writeHead(status, {
      "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
      "content-length": Buffer.byteLength(text),
      ...headers
    })
    res.end(text)
  }

  const requestIdHeader = (api: Api, id: number): Record<string, string> =>
    api === "openai" ? { "x-request-id": `req_sim${id}` } : { "request-id": `req_sim${id}` }

  /** Writes `events` (with `chunkDelayMs` between them), then ends the response or cuts the socket. */
  const streamOut = (
    ex: Exchange,
    headers: Record<string, string>,
    headersDelayMs: number,
    chunkDelayMs: number,
    events: ReadonlyArray<string>,
    cut: boolean
  ): void => {
    const finish = (last: string): void => {
      if (cut) ex.res.write(last, () => destroy(ex))
      else ex.res.end(last)
    }
    later(ex, headersDelayMs, () => {
      ex.res.writeHead(200, { "content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache", ...headers })
      if (chunkDelayMs <= 0) return finish(events.join(""))
      let i = 0
      const step = (): void => {
        const ev = events[i++] ?? ""
        if (i >= events.length) return finish(ev)
        ex.res.write(ev)
        later(ex, chunkDelayMs, step)
      }
      step()
    })
  }

  // -------------------------------------------------------------------------
  // API requests

  const handleApi = (ex: Exchange, req: http.IncomingMessage, api: Api, path: string, raw: string): void => {
    let body: unknown = raw
    try {
      body = JSON.parse(raw)
    } catch {
      // keep the raw string
    }
    const json = isRecord(body) ? body : {}
    const model = typeof json["model"] === "string" ? json["model"] : undefined
    const apiKey = apiKeyOf(api, req.headers)
    let fault: Fault
    if (apiKey === undefined || rejected.has(apiKey)) {
      const message = apiKey === undefined ? "Missing API key." : "Incorrect API key provided."
      fault = { kind: "status", status: 401, body: errorBody(api, 401, message) }
    } else {
      const invalid = validateRequest(body)
      fault = invalid === undefined ? nextFault(model) : { kind: "status", status: 400, body: errorBody(api, 400, invalid) }
    }
    const id = nextId++
    const rec: RecordedRequest = {
      id,
      api,
      method: req.method ?? "POST",
      path,
      headers: req.headers,
      body,
      apiKey,
      model,
      stream: json["stream"] === true,
      fault: fault.kind,
      aborted: false,
      completed: false,
      receivedAt: Date.now()
    }
    ex.rec = rec
    record(rec)
    applyFault(ex, api, id, json, rec.stream, fault)
  }

  const applyFault = (ex: Exchange, api: Api, id: number, body: Record<string, unknown>, stream: boolean, fault: Fault): void => {
    const reqId = requestIdHeader(api, id)
    switch (fault.kind) {
      case "hang":
        return
      case "close":
        return later(ex, latencyMs, () => destroy(ex))
      case "status":
        return later(ex, latencyMs, () =>
          send(ex.res, fault.status, fault.body ?? errorBody(api, fault.status), { ...reqId, ...fault.headers })
        )
      default:
        break
    }
    const text = fault.kind === "ok" && fault.content !== undefined ? fault.content : "Echo: " + lastUserText(body)
    const reply: Reply = {
      id: api === "openai" ? `chatcmpl-sim${id}` : `msg_sim${id}`,
      model: typeof body["model"] === "string" ? body["model"] : "sim-echo",
      created: Math.floor(Date.now() / 1000),
      text,
      pieces: splitPieces(text),
      promptTokens: promptTokens(body),
      completionTokens: countTokens(text)
    }
    const headersDelayMs = fault.kind === "ok" ? (fault.headersDelayMs ?? latencyMs) : latencyMs
    if (!stream) {
      return later(ex, headersDelayMs, () => {
        switch (fault.kind) {
          case "ok":
            return send(ex.res, 200, api === "openai" ? openAiCompletion(reply) : anthropicMessage(reply), reqId)
          case "malformed":
            return send(ex.res, 200, `{"id":"${reply.id}","choices":[{"index":0,"message":{"content":"oo`, {
              ...reqId,
              "content-type": "application/json"
            })
          case "inbandError":
            // Non-stream in-band error: a 200 whose body is the provider's error object.
            return send(ex.res, 200, errorBody(api, api === "openai" ? 500 : 529), reqId)
          case "cut":
            // Headers announce a body that never comes.
            ex.res.writeHead(200, { "content-type": "application/json", "content-length": "4096", ...reqId })
            return void ex.res.write("", () => destroy(ex))
        }
      })
    }
    const includeUsage = isRecord(body["stream_options"]) && body["stream_options"]["include_usage"] === true
    const plan = api === "openai" ? openAiStream(reply, includeUsage) : anthropicStream(reply)
    switch (fault.kind) {
      case "ok":
        return streamOut(ex, reqId, headersDelayMs, fault.chunkDelayMs ?? globalChunkDelayMs, [...plan.head, ...plan.content, ...plan.tail], false)
      case "cut":
        return streamOut(ex, reqId, headersDelayMs, globalChunkDelayMs, [...plan.head, ...plan.content.slice(0, fault.afterChunks)], true)
      case "inbandError":
        return streamOut(ex, reqId, headersDelayMs, globalChunkDelayMs, [...plan.head, ...plan.content.slice(0, fault.afterChunks), plan.error], false)
      case "malformed":
        return streamOut(ex, reqId, headersDelayMs, globalChunkDelayMs, [...plan.head, plan.malformed], false)
    }
  }

  // -------------------------------------------------------------------------
  // Control endpoints (not recorded)

  const handleControl = (res: http.ServerResponse, method: string, path: string, raw: string): void => {
    let body: unknown
    try {
      body = raw.length === 0 ? {} : JSON.parse(raw)
    } catch {
      return send(res, 400, { error: "body is not valid JSON" })
    }
    const payload = isRecord(body) ? body : {}
    if (method === "GET" && path === "/_sim/requests") return send(res, 200, records)
    if (method !== "POST") return send(res, 404, { error: `unknown control endpoint ${method} ${path}` })
    switch (path) {
      case "/_sim/script": {
        const faults = decodeFaults(payload["faults"])
        if (faults === undefined) return send(res, 400, { error: "faults must be an array of valid faults" })
        const model = payload["model"]
        if (typeof model === "string") scriptFor(model, ...faults)
        else script(...faults)
        return send(res, 200, { ok: true })
      }
      case "/_sim/reject-keys": {
        const keys = payload["keys"]
        if (!Array.isArray(keys) || !keys.every((k): k is string => typeof k === "string")) {
          return send(res, 400, { error: "keys must be an array of strings" })
        }
        rejectKeys(...keys)
        return send(res, 200, { ok: true })
      }
      case "/_sim/default": {
        const fault = decodeFault(payload["fault"])
        if (fault === undefined) return send(res, 400, { error: "fault must be a valid fault" })
        defaultFault = fault
        return send(res, 200, { ok: true })
      }
      case "/_sim/reset":
        reset()
        return send(res, 200, { ok: true })
      default:
        return send(res, 404, { error: `unknown control endpoint ${method} ${path}` })
    }
  }

  // -------------------------------------------------------------------------
  // Server

  const route = (ex: Exchange, req: http.IncomingMessage, raw: string): void => {
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method ?? "GET"
    if (method === "POST" && path === "/v1/chat/completions") return handleApi(ex, req, "openai", path, raw)
    if (method === "POST" && path === "/v1/messages") return handleApi(ex, req, "anthropic", path, raw)
    if (path.startsWith("/_sim/")) return handleControl(ex.res, method, path, raw)
    if (method === "GET" && path === "/v1/models") {
      const key = apiKeyOf("openai", req.headers)
      if (key === undefined || rejected.has(key)) return send(ex.res, 401, errorBody("openai", 401))
      return send(ex.res, 200, modelsList(1_700_000_000))
    }
    return send(ex.res, 404, errorBody("openai", 404, `Unknown request URL: ${method} ${path}.`))
  }

  const server = http.createServer((req, res) => {
    const ex: Exchange = { res, socket: req.socket, rec: undefined, timer: undefined, done: false, selfDestroyed: false }
    active.add(ex)
    res.on("finish", () => {
      if (ex.rec !== undefined) {
        ex.rec.completed = true
        notify()
      }
    })
    res.on("close", () => {
      ex.done = true
      active.delete(ex)
      if (ex.timer !== undefined) clearTimeout(ex.timer)
      ex.timer = undefined
      const rec = ex.rec
      if (rec === undefined) return
      rec.closedAt = Date.now()
      if (!res.writableFinished && !ex.selfDestroyed && !closing) rec.aborted = true
      notify()
    })
    let raw = ""
    req.setEncoding("utf8")
    req.on("data", (chunk: string) => {
      raw += chunk
    })
    req.on("error", () => {
      // client went away mid-body; "close" handles the bookkeeping
    })
    req.on("end", () => {
      if (!ex.done) route(ex, req, raw)
    })
  })
  server.on("connection", (socket: Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  server.on("clientError", (_err, socket) => {
    socket.destroy()
  })

  const host = options.host ?? "127.0.0.1"
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`

  const close = (): Promise<void> => {
    if (closed !== undefined) return closed
    closing = true
    for (const ex of active) {
      if (ex.timer !== undefined) clearTimeout(ex.timer)
      ex.timer = undefined
      ex.done = true
    }
    for (const w of waiters) {
      clearTimeout(w.timer)
      w.reject(new Error("Simulator closed"))
    }
    waiters.clear()
    closed = new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    })
    return closed
  }

  return {
    url,
    get requests() {
      return records
    },
    script,
    scriptFor,
    rejectKeys,
    setDefault: (fault) => {
      defaultFault = fault
    },
    reset,
    waitFor,
    openConnections: () => sockets.size,
    pendingTimers: () => {
      let armed = 0
      for (const ex of active) if (ex.timer !== undefined) armed++
      return armed
    },
    close
  }
}

/** The simulator as a scoped Effect resource: started on acquire, closed on release. */
export const SimulatorResource = (options?: SimulatorOptions) =>
  Effect.acquireRelease(
    Effect.promise(() => startSimulator(options)),
    (s) => Effect.promise(() => s.close())
  )
