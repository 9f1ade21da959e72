// OpenAI, and every provider that speaks its wire format at a path of its own.

import type { HttpError } from "../../lib/errors";
import { postToGateway } from "../gateway";
import type { ChatCall, ChatProvider } from "../types";
import { authHeaders, CHAT_PATH } from "./endpoint";
import { chatError } from "./errors";
import { chatRequest } from "./request";
import { completion } from "./response";
import { meterChatStream } from "./stream";

/** Where a provider in OpenAI's wire format takes a chat request, and how. */
export interface ChatEndpoint {
  /** The path under the gateway. */
  path(call: ChatCall): string;
  /** The provider's own key header. */
  auth(call: ChatCall): Record<string, string>;
  /** OpenAI's reasoning models refuse max_tokens; compatible providers want it. */
  maxTokensField: "max_completion_tokens" | "max_tokens";
  /** False where the path names the model (an Azure deployment). */
  modelInBody: boolean;
  error(response: Response): Promise<HttpError>;
}

/** A provider in OpenAI's wire format at an endpoint of its own. */
export function openaiWireAt(endpoint: ChatEndpoint): ChatProvider {
  return {
    send: (call) => {
      const request = chatRequest(call, endpoint.maxTokensField);
      if (!endpoint.modelInBody) delete request.model;
      return postToGateway(call, endpoint.path(call), request, endpoint.auth(call));
    },
    completion: (text) => completion(text),
    stream: (upstream, call, { clientWantsUsage }) =>
      meterChatStream(upstream, { clientWantsUsage, signal: call.signal }),
    error: endpoint.error,
  };
}

/** A provider in OpenAI's wire format at `chatPath` (under the gateway), its key a bearer token. */
export function openaiWire(chatPath: string, maxTokensField: "max_completion_tokens" | "max_tokens"): ChatProvider {
  return openaiWireAt({ path: () => chatPath, auth: authHeaders, maxTokensField, modelInBody: true, error: chatError });
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
