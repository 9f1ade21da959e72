// Gemini (Google AI Studio) through its own generateContent endpoint, translated to and from
// OpenAI chat.

import { postToGateway } from "../gateway";
import type { ChatProvider } from "../types";
import { authHeaders, generatePath } from "./endpoint";
import { geminiError } from "./errors";
import { generateContentRequest } from "./request";
import { completion } from "./response";
import { translateStream } from "./stream";

export const googleAiStudio: ChatProvider = {
  send: (call) =>
    postToGateway(
      call,
      generatePath(call.upstreamModel, call.body.stream === true),
      generateContentRequest(call),
      authHeaders(call),
    ),
  completion: (text) => completion(text),
  stream: (upstream, call, { clientWantsUsage }) =>
    translateStream(upstream, { clientWantsUsage, signal: call.signal }),
  error: geminiError,
};

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
