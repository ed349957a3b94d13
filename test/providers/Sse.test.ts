import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as fc from "fast-check"
import * as Sse from "../../src/Providers/Sse.js"

const encoder = new TextEncoder()

/** Runs the streaming parser over `bytes` split at the given cut points. */
const parseSplit = (bytes: Uint8Array, cuts: ReadonlyArray<number>): ReadonlyArray<Sse.SseEvent> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const pieces: Array<Uint8Array> = []
  let from = 0
  for (const p of points) {
    pieces.push(bytes.subarray(from, p))
    from = p
  }
  pieces.push(bytes.subarray(from))
  return Chunk.toReadonlyArray(Effect.runSync(Stream.runCollect(Sse.parse(Stream.fromIterable(pieces)))))
}

const parseBytes = (text: string, cuts: ReadonlyArray<number> = []) => parseSplit(encoder.encode(text), cuts)

describe("Sse.parse", () => {
  it("parses data, event names, comments and multi-line data", () => {
    const text = ": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: line1\ndata: line2\n\ndata:no-space\n\n"
    expect(parseBytes(text)).toEqual([
      { event: "message_start", data: "{\"a\":1}" },
      { data: "line1\nline2" },
      { data: "no-space" }
    ])
  })

  it("handles \\r\\n and lone \\r line endings", () => {
    expect(parseBytes("data: a\r\n\r\ndata: b\r\rdata: c\n\n")).toEqual([{ data: "a" }, { data: "b" }, { data: "c" }])
  })

  it("treats \\r then \\n in separate chunks as one line break", () => {
    const bytes = encoder.encode("data: a\r\n\r\ndata: b\r\n\r\n")
    // cut exactly between every \r and \n
    expect(parseSplit(bytes, [8, 10, 18, 20])).toEqual([{ data: "a" }, { data: "b" }])
  })

  it("strips exactly one leading space and keeps the rest", () => {
    expect(parseBytes("data:  two spaces\n\n")).toEqual([{ data: " two spaces" }])
  })

  it("drops events without data and an unterminated trailing event", () => {
    expect(parseBytes("event: ping\n\ndata: complete\n\ndata: partial")).toEqual([{ data: "complete" }])
  })

  it("a field line without a colon is a field with an empty value", () => {
    expect(parseBytes("data\n\n")).toEqual([{ data: "" }])
  })

  it("resets the event name after each dispatch", () => {
    expect(parseBytes("event: a\ndata: 1\n\ndata: 2\n\n")).toEqual([{ event: "a", data: "1" }, { data: "2" }])
  })

  it("decodes multi-byte UTF-8 split across chunks", () => {
    const bytes = encoder.encode("data: héllo 🌍 世界\n\n")
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(parseSplit(bytes, [cut])).toEqual([{ data: "héllo 🌍 世界" }])
    }
  })

  // Property: any serialization of any events, split at any byte positions, parses to the same events.
  const lineText = fc.string({ unit: fc.constantFrom("a", "b", " ", ":", "é", "🌍", "{", "\"", "世"), maxLength: 12 })
  const eventArb = fc.record({
    event: fc.option(fc.string({ unit: fc.constantFrom("x", "y", "_", "é"), minLength: 1, maxLength: 6 }), { nil: undefined }),
    lines: fc.array(lineText, { minLength: 1, maxLength: 4 }),
    comment: fc.option(lineText, { nil: undefined })
  })
  const eol = fc.constantFrom("\n", "\r\n", "\r")

  it("property: arbitrary split points give the same events", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(eventArb, eol), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (events, cuts) => {
          let text = ""
          const expected: Array<Sse.SseEvent> = []
          for (const [e, nl] of events) {
            if (e.comment !== undefined) text += `:${e.comment}${nl}`
            if (e.event !== undefined) text += `event: ${e.event}${nl}`
            for (const line of e.lines) text += `data: ${line}${nl}`
            text += nl
            const data = e.lines.join("\n")
            expected.push(e.event === undefined ? { data } : { event: e.event, data })
          }
          const bytes = encoder.encode(text)
          expect(parseSplit(bytes, [])).toEqual(expected)
          expect(parseSplit(bytes, cuts)).toEqual(expected)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("parseAll agrees with the streaming parser", () => {
    const text = "event: e\ndata: 1\n\ndata: 2\r\n\r\n"
    expect(Sse.parseAll(text)).toEqual(parseBytes(text, [3, 7, 11]))
  })
})
