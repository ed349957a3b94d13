/**
 * Effect's metric registry as Prometheus text exposition (format 0.0.4):
 * one HELP and TYPE line per metric name, then a sample per tag set.
 * Counters and gauges are one sample each; histograms are cumulative
 * `_bucket{le=…}` samples (ending in `+Inf`), `_sum` and `_count`; summaries
 * are `{quantile=…}` samples, `_sum` and `_count`; frequencies are counted
 * per observed value under a `value` label.
 */
import { type MetricLabel, type MetricPair, MetricState, Option } from "effect"

export const contentType = "text/plain; version=0.0.4; charset=utf-8"

type Kind = "counter" | "gauge" | "histogram" | "summary"

interface Family {
  readonly name: string
  readonly kind: Kind
  help: string
  readonly lines: Array<string>
}

const metricName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned
}

const labelName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned
}

const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

export const formatNumber = (n: number | bigint): string => {
  if (typeof n === "bigint") return n.toString()
  if (Number.isNaN(n)) return "NaN"
  if (n === Number.POSITIVE_INFINITY) return "+Inf"
  if (n === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(n)
}

type Label = readonly [string, string]

const labelsOf = (tags: ReadonlyArray<MetricLabel.MetricLabel>): Array<Label> =>
  tags.map((t): Label => [labelName(t.key), t.value])

const sample = (name: string, labels: ReadonlyArray<Label>, value: number | bigint): string =>
  labels.length === 0
    ? `${name} ${formatNumber(value)}`
    : `${name}{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}} ${formatNumber(value)}`

const samplesOf = (name: string, labels: ReadonlyArray<Label>, state: unknown): { kind: Kind; lines: Array<string> } | undefined => {
  if (MetricState.isCounterState(state)) return { kind: "counter", lines: [sample(name, labels, state.count)] }
  if (MetricState.isGaugeState(state)) return { kind: "gauge", lines: [sample(name, labels, state.value)] }
  if (MetricState.isHistogramState(state)) {
    // Effect's buckets are cumulative and its boundaries always end with +Infinity.
    const buckets = state.buckets.map(([le, count]) => sample(`${name}_bucket`, [...labels, ["le", formatNumber(le)]], count))
    const hasInf = state.buckets.some(([le]) => le === Number.POSITIVE_INFINITY)
    return {
      kind: "histogram",
      lines: [
        ...buckets,
        ...(hasInf ? [] : [sample(`${name}_bucket`, [...labels, ["le", "+Inf"]], state.count)]),
        sample(`${name}_sum`, labels, state.sum),
        sample(`${name}_count`, labels, state.count)
      ]
    }
  }
  if (MetricState.isSummaryState(state)) {
    return {
      kind: "summary",
      lines: [
        ...state.quantiles.map(([q, v]) =>
          sample(name, [...labels, ["quantile", formatNumber(q)]], Option.getOrElse(v, () => Number.NaN))),
        sample(`${name}_sum`, labels, state.sum),
        sample(`${name}_count`, labels, state.count)
      ]
    }
  }
  if (MetricState.isFrequencyState(state)) {
    return {
      kind: "counter",
      lines: [...state.occurrences].map(([value, count]) => sample(name, [...labels, ["value", value]], count))
    }
  }
  return undefined
}

/** The whole registry snapshot as exposition text, families sorted by name. */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const keyed = pairs.map((pair) => ({ pair, name: metricName(pair.metricKey.name), labels: labelsOf(pair.metricKey.tags) }))
  // Stable output: series ordered by their labels within a family (bucket order stays as is).
  keyed.sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)))
  for (const { labels, name, pair } of keyed) {
    const rendered = samplesOf(name, labels, pair.metricState)
    if (rendered === undefined) continue
    const description = Option.getOrElse(pair.metricKey.description, () => "")
    const family = families.get(name)
    if (family === undefined) {
      families.set(name, { name, kind: rendered.kind, help: description, lines: [...rendered.lines] })
    } else if (family.kind === rendered.kind) {
      if (family.help === "") family.help = description
      family.lines.push(...rendered.lines)
    }
    // A name reused with another metric type cannot share a family: the first one wins.
  }
  const out: Array<string> = []
  for (const family of [...families.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    out.push(`# HELP ${family.name} ${escapeHelp(family.help === "" ? family.name : family.help)}`)
    out.push(`# TYPE ${family.name} ${family.kind}`)
    out.push(...family.lines)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}
