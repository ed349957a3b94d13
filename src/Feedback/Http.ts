import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../Api.js"
import { requireUser } from "../Auth/Policy.js"
import { FeedbackRepo } from "./Repo.js"

export const FeedbackHttp = HttpApiBuilder.group(Api, "feedback", (handlers) =>
  Effect.gen(function*() {
    const repo = yield* FeedbackRepo
    return handlers.handle("post", ({ path, payload }) =>
      Effect.flatMap(requireUser, ({ userId }) => repo.upsert(userId, path.id, payload)).pipe(
        Effect.withSpan("Feedback.post", { captureStackTrace: false })
      ))
  }))
