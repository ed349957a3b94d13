/** Configured patterns and a maximum prompt size, checked before any upstream call. */
import { Effect, Metric } from "effect"
import { LimitsConfig } from "../Config.js"
import { ContentBlocked } from "../Errors.js"

export const contentBlocks = Metric.counter("parley_content_blocked_total", { description: "Prompts refused by the content filter" })

export class ContentFilter extends Effect.Service<ContentFilter>()("parley/ContentFilter", {
  effect: Effect.map(LimitsConfig, (cfg) => ({
    check: (text: string) => {
      if (text.length > cfg.maxPromptChars) {
        return Metric.increment(contentBlocks).pipe(Effect.zipRight(Effect.fail(new ContentBlocked({
          message: `The prompt is longer than ${cfg.maxPromptChars} characters.`
        }))))
      }
      const hit = cfg.blockedPatterns.findIndex((p) => p.test(text))
      return hit === -1
        ? Effect.void
        : Metric.increment(contentBlocks).pipe(Effect.zipRight(Effect.fail(new ContentBlocked({
          message: "The prompt was blocked by the content filter.",
          param: `pattern_${hit}`
        }))))
    }
  }))
}) {}
