import { Context } from "effect"
import type pg from "pg"

/** The driver pool behind the SqlClient, for health checks and pool metrics. */
export class DbPool extends Context.Tag("parley/DbPool")<DbPool, {
  readonly pool: pg.Pool
  readonly embedded: boolean
}>() {}
