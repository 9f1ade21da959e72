// Gemini through AI Gateway: Google AI Studio's own generateContent endpoint (v1beta, as the
// Gemini CLI and AI Gateway's docs use it), the stream as SSE (`?alt=sse`; without it Gemini
// streams one JSON array), and the key as `x-goog-api-key` (never the gateway token: that goes
// only in cf-aig-authorization; none: the key is stored on the gateway).

import { providerKey } from "../gateway";
import type { UpstreamCall } from "../types";

export const PROVIDER = "google-ai-studio";
export const API_VERSION = "v1beta";

/** The path of a model's generateContent (or its SSE stream) under the gateway. */
export function generatePath(model: string, stream: boolean): string {
  const method = stream ? "streamGenerateContent?alt=sse" : "generateContent";
  return `${PROVIDER}/${API_VERSION}/models/${encodeURIComponent(model)}:${method}`;
}

export function authHeaders(call: UpstreamCall): Record<string, string> {
  const key = providerKey(call.env, call.provider);
  return key ? { "x-goog-api-key": key } : {};
}
