// Gemini (Google AI Studio) through its own generateContent endpoint, translated to and from
// OpenAI chat.

import { postToGateway } from "../gateway";
import type { ChatProvider, UpstreamCall } from "../types";
import { authHeaders, generatePath } from "./endpoint";
import { geminiError } from "./errors";
import { generateContentRequest } from "./request";
import { completion } from "./response";
import { translateStream } from "./stream";

/** A provider in Gemini's wire format: its path for a model (and stream), and its auth headers. */
export function geminiWire(
  path: (model: string, stream: boolean) => string,
  auth: (call: UpstreamCall) => Record<string, string>,
): ChatProvider {
  return {
    send: (call) =>
      postToGateway(
        call,
        path(call.upstreamModel, call.body.stream === true),
        generateContentRequest(call),
        auth(call),
      ),
    completion: (text) => completion(text),
    stream: (upstream, call, { clientWantsUsage }) =>
      translateStream(upstream, { clientWantsUsage, signal: call.signal }),
    error: geminiError,
  };
}

export const googleAiStudio: ChatProvider = geminiWire(generatePath, authHeaders);

// What the Gemini-native route (Gemini's own API, passed through) uses of this provider.
export { authHeaders } from "./endpoint";
export {
  GEMINI_METHODS,
  type GeminiMethod,
  geminiAnswer,
  geminiPassthroughError,
  meterGeminiStream,
  nativePath,
} from "./native";
