import { HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Cause, FiberId } from "effect"
import { isInterruption } from "../../src/Http/ErrorHandling.js"

describe("isInterruption", () => {
  const interrupted = Cause.interrupt(FiberId.runtime(1, 0))

  it("an interruption, alone or with the platform's empty abort response, is an interruption", () => {
    expect(isInterruption(interrupted)).toBe(true)
    expect(isInterruption(Cause.sequential(interrupted, Cause.die(HttpServerResponse.empty({ status: 503 }))))).toBe(true)
    expect(isInterruption(Cause.sequential(interrupted, Cause.die(HttpServerResponse.empty({ status: 499 }))))).toBe(true)
  })

  it("a real defect or failure is not, even next to an interruption", () => {
    expect(isInterruption(Cause.die(new Error("boom")))).toBe(false)
    expect(isInterruption(Cause.sequential(interrupted, Cause.die(new Error("boom"))))).toBe(false)
    expect(isInterruption(Cause.sequential(interrupted, Cause.fail("failed")))).toBe(false)
    expect(isInterruption(Cause.die(HttpServerResponse.empty({ status: 503 })))).toBe(false)
  })
})
