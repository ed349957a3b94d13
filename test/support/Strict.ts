/** A strict test double: the stubbed members, and a defect for any other. */
import { type Context, Layer } from "effect"

export const strict = <I, S extends object>(tag: Context.Tag<I, S>, stubs: Partial<S>): Layer.Layer<I> =>
  Layer.succeed(
    tag,
    new Proxy(stubs as S, {
      get: (target, key) => {
        if (Reflect.has(target, key)) return Reflect.get(target, key)
        throw new Error(`test double for ${tag.key}: ${String(key)} was not stubbed`)
      }
    })
  )
