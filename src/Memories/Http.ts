import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../Api.js"
import { requireUser } from "../Auth/Policy.js"
import { Memory, toMemory } from "./Domain.js"
import { Memories } from "./Service.js"

export const MemoriesHttp = HttpApiBuilder.group(Api, "memories", (handlers) =>
  Effect.gen(function*() {
    const memories = yield* Memories
    return handlers
      .handle("list", ({ urlParams }) =>
        Effect.flatMap(requireUser, (p) => memories.list(p.userId, urlParams)))
      .handle("create", ({ payload }) =>
        Effect.gen(function*() {
          const p = yield* requireUser
          const { created, memory } = yield* memories.add(p.userId, payload.content)
          if (created) return toMemory(memory)
          // Both answers share one schema, so the encoder would always pick the first (201): the 200 is built here.
          return yield* HttpServerResponse.schemaJson(Memory)(toMemory(memory), { status: 200 }).pipe(Effect.orDie)
        }))
      .handle("remove", ({ path }) =>
        Effect.flatMap(requireUser, (p) => memories.remove(p.userId, path.id)))
  }))
