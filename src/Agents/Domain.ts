import { Schema } from "effect"
import { DbTimestamp, snake, Timestamp, UserId } from "../Http/Schemas.js"
import { SafeText, strict } from "../Sessions/Values.js"

export const AgentId = Schema.UUID.pipe(Schema.brand("AgentId"))
export type AgentId = typeof AgentId.Type

export const AgentName = SafeText.pipe(
  Schema.minLength(1),
  Schema.maxLength(100),
  Schema.pattern(/\S/, { message: () => "must not be blank" })
)
export const SystemPrompt = SafeText.pipe(Schema.maxLength(100_000))
export const ModelName = SafeText.pipe(Schema.minLength(1), Schema.maxLength(200))

/**
 * Sampling parameters, stored as JSON exactly as on the wire (snake_case):
 * the chat pipeline reads them back with this schema. Only known keys.
 */
export const AgentParameters = Schema.Struct({
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  max_tokens: Schema.optional(Schema.Int.pipe(Schema.between(1, 200_000))),
  top_p: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  stop: Schema.optional(Schema.Array(SafeText.pipe(Schema.minLength(1), Schema.maxLength(100))).pipe(Schema.maxItems(4)))
}).annotations({ ...strict, identifier: "AgentParameters" })
export type AgentParameters = typeof AgentParameters.Type

export const CreateAgent = Schema.Struct({
  name: AgentName,
  systemPrompt: Schema.optionalWith(SystemPrompt, { default: () => "" }).pipe(Schema.fromKey("system_prompt")),
  model: Schema.optionalWith(Schema.NullOr(ModelName), { default: () => null }),
  parameters: Schema.optionalWith(AgentParameters, { default: () => ({}) }),
  memoryEnabled: Schema.optionalWith(Schema.Boolean, { default: () => false }).pipe(Schema.fromKey("memory_enabled"))
}).annotations({ ...strict, identifier: "CreateAgent" })
export type CreateAgent = typeof CreateAgent.Type

/** Absent: unchanged. `model: null` clears the model; `parameters` replaces the whole object. */
export const UpdateAgent = Schema.Struct({
  name: Schema.optional(AgentName),
  systemPrompt: Schema.optional(SystemPrompt).pipe(Schema.fromKey("system_prompt")),
  model: Schema.optional(Schema.NullOr(ModelName)),
  parameters: Schema.optional(AgentParameters),
  memoryEnabled: Schema.optional(Schema.Boolean).pipe(Schema.fromKey("memory_enabled"))
}).annotations({ ...strict, identifier: "UpdateAgent" })
export type UpdateAgent = typeof UpdateAgent.Type

export const AgentRow = Schema.Struct({
  id: AgentId,
  userId: UserId,
  name: Schema.String,
  systemPrompt: Schema.String,
  model: Schema.NullOr(Schema.String),
  parameters: AgentParameters,
  memoryEnabled: Schema.Boolean,
  createdAt: DbTimestamp,
  updatedAt: DbTimestamp,
  /** The list's sort key, exact to the microsecond (see Paging). */
  sortMicros: Schema.Union(Schema.Number, Schema.NumberFromString)
})
export type AgentRow = typeof AgentRow.Type

export const Agent = Schema.Struct({
  id: AgentId,
  name: Schema.String,
  systemPrompt: snake(Schema.String, "system_prompt"),
  model: Schema.NullOr(Schema.String),
  parameters: AgentParameters,
  memoryEnabled: snake(Schema.Boolean, "memory_enabled"),
  createdAt: snake(Timestamp, "created_at"),
  updatedAt: snake(Timestamp, "updated_at")
}).annotations({ identifier: "Agent" })
