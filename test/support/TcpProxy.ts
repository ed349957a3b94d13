/**
 * A loopback TCP proxy for fault injection: put it between Parley and a
 * dependency (Postgres, Redis), then `cut()` to make the dependency vanish
 * (every proxied connection destroyed, new ones accepted and destroyed at
 * once, as a crashed host behind a live load balancer looks) and `restore()`
 * to forward again.
 *
 * Plain `node:net` on purpose: the faults are socket-level.
 */
import { Effect } from "effect"
import * as net from "node:net"

export interface TcpProxyStats {
  /** Connections forwarded to the target. */
  readonly forwarded: number
  /** Connections accepted and destroyed while cut. */
  readonly refused: number
  /** Proxied connections destroyed by `cut()`. */
  readonly severed: number
}

export interface TcpProxy {
  readonly host: string
  readonly port: number
  /** Destroys every connection and refuses new ones until `restore()`. */
  cut(): void
  restore(): void
  readonly isCut: () => boolean
  /** Proxied connections open right now. */
  readonly openConnections: () => number
  readonly stats: () => TcpProxyStats
  close(): Promise<void>
}

export interface TcpTarget {
  readonly host: string
  readonly port: number
}

export const startTcpProxy = async (target: TcpTarget, host = "127.0.0.1"): Promise<TcpProxy> => {
  const pairs = new Set<readonly [net.Socket, net.Socket]>()
  let cut = false
  let forwarded = 0
  let refused = 0
  let severed = 0

  const server = net.createServer({ noDelay: true }, (client) => {
    if (cut) {
      refused++
      client.destroy()
      return
    }
    forwarded++
    const upstream = net.connect({ host: target.host, port: target.port, noDelay: true })
    const pair = [client, upstream] as const
    pairs.add(pair)
    // Either side ending or failing ends both: a proxy never holds half a connection.
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on("error", end)
    upstream.on("error", end)
    client.on("close", end)
    upstream.on("close", end)
    client.pipe(upstream)
    upstream.pipe(client)
  })

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("TcpProxy: expected a TCP address")

  const destroyAll = () => {
    for (const [client, upstream] of pairs) {
      client.destroy()
      upstream.destroy()
    }
    pairs.clear()
  }

  return {
    host,
    port: address.port,
    cut: () => {
      cut = true
      severed += pairs.size
      destroyAll()
    },
    restore: () => {
      cut = false
    },
    isCut: () => cut,
    openConnections: () => pairs.size,
    stats: () => ({ forwarded, refused, severed }),
    close: () =>
      new Promise<void>((resolve) => {
        cut = true
        destroyAll()
        server.close(() => resolve())
      })
  }
}

/** The proxy as a scoped resource: started on acquire, closed on release. */
export const TcpProxyResource = (target: TcpTarget) =>
  Effect.acquireRelease(
    Effect.promise(() => startTcpProxy(target)),
    (proxy) => Effect.promise(() => proxy.close())
  )

/** `url` with its host and port replaced by the proxy's (database and Redis URLs). */
export const viaProxy = (url: string, proxy: TcpProxy): string => {
  const u = new URL(url)
  u.hostname = proxy.host
  u.port = String(proxy.port)
  return u.toString()
}

/** Host and port of a `postgres://` or `redis://` URL. */
export const targetOf = (url: string, defaultPort: number): TcpTarget => {
  const u = new URL(url)
  return { host: u.hostname, port: u.port === "" ? defaultPort : Number(u.port) }
}
