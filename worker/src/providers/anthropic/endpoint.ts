// Anthropic through AI Gateway: the native Messages path, the key as `x-api-key` (never the
// gateway token: that goes only in cf-aig-authorization), and the API version Anthropic requires.

import { providerKey } from "../gateway";
import type { UpstreamCall } from "../types";

export const MESSAGES_PATH = "anthropic/v1/messages";
export const API_VERSION = "2023-06-01";

export function authHeaders(call: UpstreamCall): Record<string, string> {
  const key = providerKey(call.env, call.provider);
  return { "anthropic-version": API_VERSION, ...(key ? { "x-api-key": key } : {}) };
}
