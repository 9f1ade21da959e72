// Model resolution: request model (or the tenant's default) → alias → catalog id → allow-list.

import { BRIDGED_KINDS, MODEL_WIRES, ROUTE_KINDS, ROUTES } from "../generated/contract";
import { ALIASES, EMBEDDING_MODELS, FALLBACKS, MODELS } from "../generated/settings";
import { HttpError } from "../lib/errors";
import { catalogEntry, patternOf } from "../pricing/catalog-match";
import type { Policy } from "../protocol/policy";

const CATALOG = new Set(MODELS);
const EMBEDDINGS = new Set(EMBEDDING_MODELS);

export type Route = (typeof ROUTES)[number];
export type RouteKind = Route["kind"];

/** An own property of a table (an id from a request never walks a prototype). */
function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

export function modelType(model: string): "chat" | "embedding" {
  return EMBEDDINGS.has(model) ? "embedding" : "chat";
}

export function providerSlug(model: string): string {
  return model.slice(0, model.indexOf("/"));
}

const WIRES = MODEL_WIRES.map(({ provider, match, wire }) => ({ provider, wire, match: new RegExp(match) }));

/** Whether a model is `provider`'s or speaks its wire (Azure's speak OpenAI's; Claude on Bedrock, Anthropic's). */
export function speaks(model: string, provider: string): boolean {
  const slug = providerSlug(model);
  if (slug === provider) return true;
  const name = model.slice(slug.length + 1);
  return WIRES.some((w) => w.provider === slug && w.wire === provider && w.match.test(name));
}

const BRIDGED: readonly string[] = BRIDGED_KINDS;

/**
 * Whether `route` serves `model`: the model's type, and the route's provider (or its wire) if it
 * has one; the Messages routes that are not Anthropic's own serve every chat model (translated).
 */
export function serves(route: Route, model: string): boolean {
  const kind = ROUTE_KINDS[route.kind];
  const types: readonly string[] = kind.models;
  if (!types.includes(modelType(model))) return false;
  return route.provider === null || speaks(model, route.provider) || (!route.native && BRIDGED.includes(route.kind));
}

/** The paths that serve a model (listed by /v1/models). */
export function routesOf(model: string): string[] {
  return ROUTES.filter((route) => serves(route, model)).map(shownPath);
}

/** A route's path as a client writes it (Gemini's `models/:call{…}` as `models/{model}:{method}`). */
export function shownPath(route: Route): string {
  return route.path.replace(/:call\{.*\}$/, "{model}:{method}");
}

/**
 * A route's model: the catalog id or an alias, or, on a provider's route, the provider's own
 * name (`gpt-4o-mini` on /openai/… and /v1/responses, `claude-sonnet-4-5` on the Messages
 * routes, `@cf/…` on /workers-ai/…). Then the route must serve it (its type and provider) and
 * the key may use it. Only /v1/chat/completions and /v1/responses fall back to the key's
 * default model.
 */
export function resolveRouteModel(requested: unknown, route: Route, policy: Policy): string {
  const defaults = !route.native && (route.kind === "chat" || route.kind === "responses");
  if (!defaults && (requested === undefined || requested === null || requested === "")) {
    throw new HttpError(400, "'model' is required.", { param: "model", code: "missing_required_parameter" });
  }
  const providerNamed =
    route.provider !== null && typeof requested === "string" && offered(`${route.provider}/${requested}`);
  const model = resolveModel(providerNamed ? `${route.provider}/${requested}` : requested, policy);
  if (!serves(route, model)) {
    const types: readonly string[] = ROUTE_KINDS[route.kind].models;
    const what = `${types.join(" and ")} models${route.provider === null ? "" : ` of ${route.provider}`}`;
    throw new HttpError(400, `The model '${model}' is not served on ${route.path}: it serves ${what}.`, {
      param: "model",
      code: "model_not_supported",
    });
  }
  return model;
}

/** Whether the gateway offers a model id: the stack's catalog, or under one of its patterns. */
function offered(model: string): boolean {
  return CATALOG.has(model) || patternOf(model) !== null;
}

/**
 * A model under one of the stack's patterns: served when the key may use the pattern and the
 * price catalog compiled into the Worker knows the id (pricing/catalog-match.ts).
 */
function patternModel(model: string, policy: Policy): string {
  const pattern = patternOf(model);
  if (pattern === null) throw new Error(`${model} is under no pattern`);
  if (!policy.allowedPatterns.includes(pattern.pattern)) {
    throw new HttpError(403, `This API key is not allowed to use the model '${model}'.`, {
      param: "model",
      code: "model_not_allowed",
    });
  }
  if (catalogEntry(model, pattern) === null) {
    throw new HttpError(
      404,
      `The model '${model}' does not exist here: it is under '${pattern.pattern}', but the price catalog this gateway was deployed with does not know it, so it cannot be priced.`,
      { param: "model", code: "model_not_found" },
    );
  }
  return model;
}

export function resolveModel(requested: unknown, policy: Policy): string {
  if (requested === undefined || requested === null || requested === "") {
    if (!policy.defaultModel) {
      throw new HttpError(400, "No model given and this key has no default model.", { param: "model" });
    }
    return policy.defaultModel;
  }
  if (typeof requested !== "string") {
    throw new HttpError(400, "'model' must be a string.", { param: "model", code: "invalid_type" });
  }
  // the tenant's aliases (the user's over the org's) before the stack's
  const model = own(policy.aliases, requested) ?? own(ALIASES, requested) ?? requested;
  if (!CATALOG.has(model) && patternOf(model) !== null) return patternModel(model, policy);
  if (!CATALOG.has(model)) {
    throw new HttpError(404, `The model '${requested}' does not exist.`, {
      param: "model",
      code: "model_not_found",
    });
  }
  if (!policy.allowedModels.includes(model)) {
    throw new HttpError(403, `This API key is not allowed to use the model '${model}'.`, {
      param: "model",
      code: "model_not_allowed",
    });
  }
  return model;
}

/**
 * The models to try for a request, in order: its own, then the fallback chain named by what
 * was asked for (an alias or a model), else by the model it resolved to; the org's chain before
 * the stack's. Only models the key may use and the route serves are tried.
 */
export function attemptsFor(requested: unknown, model: string, route: Route, policy: Policy): string[] {
  const names = typeof requested === "string" && requested !== model ? [requested, model] : [model];
  let chain: readonly string[] = [];
  for (const name of names) {
    chain = own(policy.fallbacks, name) ?? own(FALLBACKS, name) ?? [];
    if (chain.length > 0) break;
  }
  const attempts = [model];
  for (const next of chain) {
    if (!attempts.includes(next) && policy.allowedModels.includes(next) && serves(route, next)) attempts.push(next);
  }
  return attempts;
}

function modelObject(id: string) {
  return { id, object: "model", created: 0, owned_by: providerSlug(id), type: modelType(id), routes: routesOf(id) };
}

export function listModels(policy: Policy) {
  return { object: "list", data: policy.allowedModels.map(modelObject) };
}

export function getModel(id: string, policy: Policy) {
  return modelObject(resolveModel(id, policy));
}
