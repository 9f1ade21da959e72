// Gemini on Vertex AI through AI Gateway: the model's path under the stack's project and region
// (routing.vertexAi), the stream as SSE, and the credential as a bearer token (a service
// account's JSON, base64, which AI Gateway exchanges for an access token; none: stored on the
// gateway). The gateway token goes only in cf-aig-authorization.

import { VERTEX_AI } from "../../generated/settings";
import { HttpError } from "../../lib/errors";
import { providerKey } from "../gateway";
import type { UpstreamCall } from "../types";

export const PROVIDER = "google-vertex-ai";

/** The path of a model's generateContent (or its SSE stream) under the gateway. */
export function generatePath(model: string, stream: boolean): string {
  if (VERTEX_AI === null) {
    // config validation makes this unreachable; say so plainly if a render ever disagrees
    throw new HttpError(500, "No Vertex AI project is configured.", { code: "internal_error" });
  }
  const { project, region } = VERTEX_AI;
  const method = stream ? "streamGenerateContent?alt=sse" : "generateContent";
  return `${PROVIDER}/v1/projects/${project}/locations/${region}/publishers/google/models/${encodeURIComponent(model)}:${method}`;
}

/** The path of a model's method of Gemini's own API (generateContent, its SSE stream,
 * countTokens) under the gateway, for Gemini's own route. */
export function nativePath(model: string, method: "generateContent" | "streamGenerateContent" | "countTokens"): string {
  if (method === "countTokens") return generatePath(model, false).replace(/:generateContent$/, ":countTokens");
  return generatePath(model, method === "streamGenerateContent");
}

export function authHeaders(call: Pick<UpstreamCall, "env" | "provider">): Record<string, string> {
  const key = providerKey(call.env, call.provider);
  return key ? { authorization: `Bearer ${key}` } : {};
}
