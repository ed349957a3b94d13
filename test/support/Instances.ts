/**
 * Several Parley processes on one database and one Redis, as behind a load
 * balancer: each is a real `node src/main.ts` child process on its own
 * loopback port, stopped with SIGTERM when the scope closes.
 */
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const address = s.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      s.close(() => resolve(port))
    })
    s.on("error", reject)
  })

const waitReady = async (url: string, child: ChildProcess, log: () => string) => {
  const until = Date.now() + 90_000
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`instance exited early (${child.exitCode}):\n${log()}`)
    try {
      const res = await fetch(`${url}/ready`)
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`instance not ready in time:\n${log()}`)
}

export interface Instances {
  readonly urls: ReadonlyArray<string>
  /** Round-robin over the instances. */
  readonly next: () => string
}

export const startInstances = (count: number, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const children: Array<ChildProcess> = []
      const urls: Array<string> = []
      try {
        await Promise.all(Array.from({ length: count }, async () => {
          const port = await freePort()
          const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
            env: {
              ...process.env,
              PORT: String(port),
              PARLEY_DATA_DIR: mkdtempSync(join(tmpdir(), "parley-inst-")),
              PARLEY_LOG_LEVEL: "warn",
              ...env
            },
            stdio: ["ignore", "pipe", "pipe"]
          })
          let output = ""
          child.stdout?.on("data", (d: Buffer) => { output = (output + d.toString()).slice(-4000) })
          child.stderr?.on("data", (d: Buffer) => { output = (output + d.toString()).slice(-4000) })
          children.push(child)
          const url = `http://127.0.0.1:${port}`
          await waitReady(url, child, () => output)
          urls.push(url)
        }))
      } catch (e) {
        for (const c of children) c.kill("SIGKILL")
        throw e
      }
      let i = 0
      return { children, urls, next: () => urls[i++ % urls.length] ?? "" }
    }),
    ({ children }) =>
      Effect.promise(() =>
        Promise.all(children.map((c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null) return resolve()
            const timer = setTimeout(() => c.kill("SIGKILL"), 10_000)
            c.once("exit", () => {
              clearTimeout(timer)
              resolve()
            })
            c.kill("SIGTERM")
          })
        ))
      )
  ).pipe(Effect.map(({ next, urls }): Instances => ({ next, urls })))
