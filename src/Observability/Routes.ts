/**
 * The route template of a request (`/v1/sessions/:id`), taken from the
 * HttpApi's own endpoint list, for span names and metric labels. Known
 * before routing runs, so requests refused up front (413, 400) get theirs
 * too; a request no endpoint matches has none (the caller labels it
 * `unmatched`, never with the raw path, to keep label values bounded).
 */
import { HttpApi, type HttpApiGroup } from "@effect/platform"
import { Option } from "effect"

interface Route {
  readonly method: string
  readonly template: string
  readonly pattern: RegExp
  readonly params: number
}

export interface RouteTable {
  readonly match: (method: string, path: string) => Option.Option<string>
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const compile = (method: string, template: string): Route => {
  const segments = template.split("/")
  const pattern = new RegExp(
    "^" + segments.map((s) => s.startsWith(":") ? "[^/]+" : escapeRegExp(s)).join("/") + "/?$"
  )
  return { method: method.toUpperCase(), template, pattern, params: segments.filter((s) => s.startsWith(":")).length }
}

/** Every endpoint of `api`, plus routes served outside it (docs, OpenAPI document). */
export const fromApi = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<Id, Groups, E, R>,
  extra: ReadonlyArray<readonly [method: string, path: string]> = []
): RouteTable => {
  const routes: Array<Route> = extra.map(([method, path]) => compile(method, path))
  HttpApi.reflect(api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      routes.push(compile(endpoint.method, endpoint.path))
    }
  })
  // Static segments win over parameters, as in the router.
  routes.sort((a, b) => a.params - b.params)
  return {
    match: (method, path) => {
      const wanted = method.toUpperCase() === "HEAD" ? "GET" : method.toUpperCase()
      const found = routes.find((r) => r.method === wanted && r.pattern.test(path))
      return found === undefined ? Option.none() : Option.some(found.template)
    }
  }
}
