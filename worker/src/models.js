// Model resolution: request model (or the tenant's default) → alias → catalog id → allow-list.

import { ALIASES, MODELS } from "./settings.js";
import { HttpError } from "./errors.js";

const CATALOG = new Set(MODELS);

export function resolveModel(requested, policy) {
  if (requested === undefined || requested === null || requested === "") {
    if (!policy.defaultModel) {
      throw new HttpError(400, "No model given and this key has no default model.", { param: "model" });
    }
    return policy.defaultModel;
  }
  if (typeof requested !== "string") {
    throw new HttpError(400, "'model' must be a string.", { param: "model", code: "invalid_type" });
  }
  const model = ALIASES[requested] ?? requested;
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

function modelObject(id) {
  return { id, object: "model", created: 0, owned_by: id.split("/", 1)[0] };
}

export function listModels(policy) {
  return { object: "list", data: policy.allowedModels.map(modelObject) };
}

export function getModel(id, policy) {
  const model = resolveModel(id, policy);
  return modelObject(model);
}
