/** Markdown output for the benchmark report. */

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const line = (cells: ReadonlyArray<string>) => `| ${cells.join(" | ")} |`
  return [line(header), line(header.map((_, i) => (i === 0 ? "---" : "---:"))), ...rows.map(line)].join("\n")
}

/** A number with `digits` decimals, or "n/a". */
export const num = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n) ? "n/a" : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

export const ms = (n: number | undefined): string => num(n, n !== undefined && Math.abs(n) >= 100 ? 0 : 2)

/** `a / b` as "0.42×". */
export const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? "n/a" : `${(a / b).toFixed(2)}×`

/** Failed requests, when there were any, and what they were: a figure built on errors is flagged, not hidden. */
export const failures = (...runs: ReadonlyArray<{ readonly failed: number; readonly problems: string }>): string => {
  const failed = runs.reduce((n, r) => n + r.failed, 0)
  return failed === 0 ? "0" : `**${failed}** (${runs.flatMap((r) => r.problems === "" ? [] : [r.problems]).join("; ")})`
}
