import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import { randomBytes } from "node:crypto"
import { render } from "../../src/Observability/Prometheus.js"

/** Metric names unique to one test: the registry is global to the process. */
const unique = (base: string) => `${base}_${randomBytes(4).toString("hex")}`

/** The lines of the exposition text that belong to one metric family. */
const family = (text: string, name: string) =>
  text.split("\n").filter((l) => l === `# HELP ${name}` || l.startsWith(`# HELP ${name} `) ||
    l.startsWith(`# TYPE ${name} `) || l.startsWith(`${name}{`) || l.startsWith(`${name} `) || l.startsWith(`${name}_`))

describe("Prometheus exposition", () => {
  it.effect("counters and gauges: HELP, TYPE, one sample per tag set, label values escaped", () =>
    Effect.gen(function*() {
      const counter = unique("t_requests_total")
      const gauge = unique("t_in_flight")
      const c = Metric.counter(counter, { description: "Requests\nby route" })
      yield* Metric.increment(Metric.tagged(c, "route", "/a"))
      yield* Metric.incrementBy(Metric.tagged(c, "route", "/a"), 2)
      yield* Metric.increment(Metric.tagged(c, "route", "say \"hi\"\\now"))
      yield* Metric.set(Metric.gauge(gauge, { description: "In flight" }), 7)
      const text = render(yield* Metric.snapshot)
      expect(family(text, counter)).toEqual([
        `# HELP ${counter} Requests\\nby route`,
        `# TYPE ${counter} counter`,
        `${counter}{route="/a"} 3`,
        `${counter}{route="say \\"hi\\"\\\\now"} 1`
      ])
      expect(family(text, gauge)).toEqual([`# HELP ${gauge} In flight`, `# TYPE ${gauge} gauge`, `${gauge} 7`])
      expect(text.endsWith("\n")).toBe(true)
    }))

  it.effect("histograms: cumulative buckets ending in +Inf, _sum and _count, per tag set", () =>
    Effect.gen(function*() {
      const name = unique("t_latency_seconds")
      const h = Metric.histogram(name, MetricBoundaries.fromIterable([0.1, 0.5, 1]), "Latency")
      const get = Metric.tagged(h, "route", "/x")
      for (const v of [0.05, 0.2, 0.3, 0.7, 3]) yield* Metric.update(get, v)
      const text = render(yield* Metric.snapshot)
      expect(family(text, name)).toEqual([
        `# HELP ${name} Latency`,
        `# TYPE ${name} histogram`,
        `${name}_bucket{route="/x",le="0.1"} 1`,
        `${name}_bucket{route="/x",le="0.5"} 3`,
        `${name}_bucket{route="/x",le="1"} 4`,
        `${name}_bucket{route="/x",le="+Inf"} 5`,
        `${name}_sum{route="/x"} 4.25`,
        `${name}_count{route="/x"} 5`
      ])
    }))

  it.effect("summaries and frequencies; names and label names are made valid", () =>
    Effect.gen(function*() {
      const summary = unique("t_sizes")
      const s = Metric.summary({ name: summary, maxAge: "1 minute", maxSize: 10, error: 0, quantiles: [0.5], description: "Sizes" })
      // Equal values: the quantile is unambiguous whatever Effect's estimator does.
      for (const v of [4, 4, 4]) yield* Metric.update(s, v)
      const frequency = unique("t_outcomes")
      const f = Metric.frequency(frequency, { description: "Outcomes" })
      yield* Metric.update(f, "ok")
      yield* Metric.update(f, "ok")
      yield* Metric.update(f, "failed")
      const odd = unique("t.odd-name")
      yield* Metric.increment(Metric.tagged(Metric.counter(odd), "a-label", "v"))
      const text = render(yield* Metric.snapshot)
      expect(family(text, summary)).toEqual([
        `# HELP ${summary} Sizes`,
        `# TYPE ${summary} summary`,
        `${summary}{quantile="0.5"} 4`,
        `${summary}_sum 12`,
        `${summary}_count 3`
      ])
      expect(family(text, frequency).sort()).toEqual([
        `# HELP ${frequency} Outcomes`,
        `# TYPE ${frequency} counter`,
        `${frequency}{value="failed"} 1`,
        `${frequency}{value="ok"} 2`
      ].sort())
      const valid = odd.replace(/[.-]/g, "_")
      // No description: the name stands in for the help text.
      expect(family(text, valid)).toEqual([`# HELP ${valid} ${valid}`, `# TYPE ${valid} counter`, `${valid}{a_label="v"} 1`])
    }))
})
