// OpenAI, and every provider that speaks its wire format at a path of its own.

import { postToGateway } from "../gateway";
import type { ChatProvider } from "../types";
import { authHeaders, CHAT_PATH } from "./endpoint";
import { chatError } from "./errors";
import { chatRequest } from "./request";
import { completion } from "./response";
import { meterChatStream } from "./stream";

/** A provider in OpenAI's wire format at `chatPath` (under the gateway). */
export function openaiWire(chatPath: string, maxTokensField: "max_completion_tokens" | "max_tokens"): ChatProvider {
  return {
    send: (call) => postToGateway(call, chatPath, chatRequest(call, maxTokensField), authHeaders(call)),
    completion: (text) => completion(text),
    stream: (upstream, call, { clientWantsUsage }) =>
      meterChatStream(upstream, { clientWantsUsage, signal: call.signal }),
    error: chatError,
  };
}

export const openai: ChatProvider = openaiWire(CHAT_PATH, "max_completion_tokens");

// What the routes that speak OpenAI's own wire (embeddings, Responses) and the watch of
// background runs use of this provider.
export { EMBEDDINGS_PATH, embeddingsAnswer } from "./embeddings";
export { authHeaders } from "./endpoint";
export { chatError } from "./errors";
export {
  containerIds,
  type HandedOut,
  meterResponsesStream,
  RESPONSES_PATH,
  responsesAnswer,
  storedIds,
} from "./responses";
