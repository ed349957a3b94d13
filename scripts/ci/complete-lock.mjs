// Adds the lock entries npm leaves out on this machine: the optional native
// builds of other systems (rollup's and msgpackr-extract's). The registry this
// machine reaches lacks those exact versions, so npm writes the lock without
// them and `npm ci` then refuses it ("Missing: … from lock file"). Such a
// package is never installed here (wrong os/cpu), so its entry needs only the
// version and the os/cpu/libc fields that tell npm to skip it; those fields are
// read from any version of the package the registry has.
// Run after an `npm install` that rewrites the lock:
//   node scripts/ci/complete-lock.mjs
import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"

const path = new URL("../../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(path, "utf8"))
const packages = lock.packages

const view = (spec) => {
  const out = execFileSync("npm", ["view", spec, "--json"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
  const meta = JSON.parse(out)
  return Array.isArray(meta) ? meta[meta.length - 1] : meta
}
const platformOf = (name, spec) => {
  try {
    return view(`${name}@${spec}`)
  } catch {
    return view(name) // the latest the registry has: same platform fields
  }
}

let added = 0
for (const [key, entry] of Object.entries(packages)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const at = `node_modules/${name}`
    if (packages[at] !== undefined) continue
    const info = platformOf(name, spec)
    if (!info.os && !info.cpu) throw new Error(`${name} names no os/cpu: refusing to guess`)
    const record = { version: spec }
    if (info.cpu) record.cpu = info.cpu
    record.license = info.license
    if (info.libc) record.libc = info.libc
    record.optional = true
    if (info.os) record.os = info.os
    packages[at] = record
    added++
    console.log(`added ${at}@${spec} (optional dependency of ${key || "the project"})`)
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0))
)
writeFileSync(path, JSON.stringify(lock, null, 2) + "\n")
console.log(`${added} entries added`)
