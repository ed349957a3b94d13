/**
 * Server-Sent Events parsing (WHATWG HTML "event stream interpretation"),
 * incremental and boundary-agnostic: bytes may be split anywhere — mid-line,
 * between `\r` and `\n`, in the middle of a multi-byte UTF-8 character.
 *
 * - lines end with `\r\n`, `\n` or a lone `\r`;
 * - `:`-prefixed lines are comments (keep-alives) and are ignored;
 * - `field: value` strips one leading space from the value; a line without a
 *   colon is a field with an empty value;
 * - several `data:` lines are joined with `\n`;
 * - an empty line dispatches the event if it has data (an event with no data
 *   is dropped, as the spec says);
 * - an event not terminated by an empty line when the stream ends is
 *   discarded (the spec's rule; adapters detect truncation by the missing
 *   terminal event instead).
 *
 * `id` and `retry` fields are not needed by any provider and are ignored.
 */
import { Stream } from "effect"

export interface SseEvent {
  readonly event?: string
  readonly data: string
}

export interface ParserState {
  /** The unterminated tail of the current line. */
  readonly buffer: string
  /** The last character seen was `\r`: a following `\n` belongs to it. */
  readonly pendingCR: boolean
  readonly event: string | undefined
  readonly data: ReadonlyArray<string>
}

export const initialState: ParserState = { buffer: "", pendingCR: false, event: undefined, data: [] }

/** Feeds decoded text into the parser; returns the new state and the events completed by it. */
export const feed = (state: ParserState, text: string): readonly [ParserState, ReadonlyArray<SseEvent>] => {
  const lineBreak = /[\r\n]/g
  const events: Array<SseEvent> = []
  let event = state.event
  let data: Array<string> = [...state.data]
  let buffer = state.buffer
  let pendingCR = state.pendingCR
  let pos = 0

  if (pendingCR && text.length > 0) {
    if (text.charCodeAt(0) === 10) pos = 1
    pendingCR = false
  }

  const processLine = (line: string): void => {
    if (line === "") {
      if (data.length > 0) {
        events.push(event === undefined ? { data: data.join("\n") } : { event, data: data.join("\n") })
      }
      event = undefined
      data = []
      return
    }
    if (line.charCodeAt(0) === 58 /* ":" */) return
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? "" : line.slice(colon + 1)
    if (value.charCodeAt(0) === 32 /* " " */) value = value.slice(1)
    if (field === "data") data.push(value)
    else if (field === "event") event = value
  }

  lineBreak.lastIndex = pos
  for (;;) {
    const match = lineBreak.exec(text)
    if (match === null) {
      buffer += text.slice(pos)
      break
    }
    const at = match.index
    processLine(buffer + text.slice(pos, at))
    buffer = ""
    if (text.charCodeAt(at) === 13 /* \r */) {
      if (at + 1 < text.length) {
        pos = text.charCodeAt(at + 1) === 10 ? at + 2 : at + 1
      } else {
        pendingCR = true
        pos = at + 1
      }
    } else {
      pos = at + 1
    }
    lineBreak.lastIndex = pos
  }

  return [{ buffer, pendingCR, event, data }, events]
}

/** Parses a whole string at once (tests, fixtures). */
export const parseAll = (text: string): ReadonlyArray<SseEvent> => feed(initialState, text)[1]

/** `Stream<Uint8Array>` → `Stream<SseEvent>`; UTF-8 decoding is streaming, so split characters are safe. */
export const parse = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<SseEvent, E, R> =>
  bytes.pipe(
    Stream.decodeText("utf-8"),
    Stream.mapAccum(initialState, (state, text) => feed(state, text)),
    Stream.flattenIterables
  )
