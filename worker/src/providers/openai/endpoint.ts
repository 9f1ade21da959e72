// OpenAI through AI Gateway: the native chat path, and the key as OpenAI takes it. The same
// module serves OpenAI-compatible providers (groq, mistral, …) at their own native paths.

import { providerKey } from "../gateway";
import type { UpstreamCall } from "../types";

export const CHAT_PATH = "openai/chat/completions";

/** `Authorization: Bearer <the provider's key>`, or nothing when the key is stored on the gateway. */
export function authHeaders(call: Pick<UpstreamCall, "env" | "provider">): Record<string, string> {
  const key = providerKey(call.env, call.provider);
  return key ? { authorization: `Bearer ${key}` } : {};
}
