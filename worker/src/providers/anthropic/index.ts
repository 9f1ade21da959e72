// Anthropic through its native Messages endpoint, translated to and from OpenAI chat.

import { postToGateway } from "../gateway";
import type { ChatProvider } from "../types";
import { authHeaders, MESSAGES_PATH } from "./endpoint";
import { messagesError } from "./errors";
import { messagesRequest, wantsJson } from "./request";
import { completion } from "./response";
import { translateStream } from "./stream";

export const anthropic: ChatProvider = {
  send: (call) => postToGateway(call, MESSAGES_PATH, messagesRequest(call), authHeaders(call)),
  completion: (text, call) => completion(text, wantsJson(call)),
  stream: (upstream, call, { clientWantsUsage }) =>
    translateStream(upstream, { clientWantsUsage, jsonAnswer: wantsJson(call), signal: call.signal }),
  error: messagesError,
};

// What the Messages route (Anthropic's own wire, passed through) uses of this provider.
export { MESSAGES_PATH } from "./endpoint";
export {
  COUNT_TOKENS_PATH,
  messageAnswer,
  meterMessagesStream,
  passthroughAuth,
  passthroughError,
} from "./messages";
export { MIN_THINKING_BUDGET } from "./request";
