// Azure OpenAI through AI Gateway: a model is a deployment on the stack's resource
// (routing.azureOpenai), the operation follows it with the deployment's api-version
// (`azure-openai/{resource}/{deployment}/chat/completions?api-version=…`), and the key goes in
// Azure's own `api-key` header (none: stored on the gateway; the gateway token only ever in
// cf-aig-authorization).

import { AZURE_OPENAI } from "../../generated/settings";
import { HttpError } from "../../lib/errors";
import { providerKey } from "../gateway";
import type { UpstreamCall } from "../types";

export const PROVIDER = "azure-openai";

export type Operation = "chat/completions" | "embeddings" | "responses";

/** The deployment that serves a model (its name after `azure-openai/`) and its api-version. */
export function deploymentOf(model: string): { deployment: string; apiVersion: string } {
  const entry =
    AZURE_OPENAI !== null && Object.hasOwn(AZURE_OPENAI.deployments, model) ? AZURE_OPENAI.deployments[model] : null;
  if (AZURE_OPENAI === null || !entry) {
    // config validation makes this unreachable; say so plainly if a render ever disagrees
    throw new HttpError(500, `No Azure OpenAI deployment is configured for '${model}'.`, { code: "internal_error" });
  }
  return { deployment: entry.deployment, apiVersion: entry.apiVersion ?? AZURE_OPENAI.apiVersion };
}

/** The gateway path of an operation on a model's deployment. */
export function operationPath(model: string, operation: Operation): string {
  const { deployment, apiVersion } = deploymentOf(model);
  const resource = AZURE_OPENAI?.resource ?? "";
  return `${PROVIDER}/${resource}/${encodeURIComponent(deployment)}/${operation}?api-version=${encodeURIComponent(apiVersion)}`;
}

export function authHeaders(call: Pick<UpstreamCall, "env" | "provider">): Record<string, string> {
  const key = providerKey(call.env, call.provider);
  return key ? { "api-key": key } : {};
}
