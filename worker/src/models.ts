// Model resolution: request model (or the tenant's default) → alias → catalog id → allow-list.

import type { Policy } from "./env";
import { HttpError } from "./errors";
import { ALIASES, MODELS } from "./generated/settings";

const CATALOG = new Set(MODELS);

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
  const model = Object.hasOwn(ALIASES, requested) ? (ALIASES[requested] as string) : requested;
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

function modelObject(id: string) {
  return { id, object: "model", created: 0, owned_by: id.split("/", 1)[0] };
}

export function listModels(policy: Policy) {
  return { object: "list", data: policy.allowedModels.map(modelObject) };
}

export function getModel(id: string, policy: Policy) {
  return modelObject(resolveModel(id, policy));
}
