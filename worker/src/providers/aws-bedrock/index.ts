// Amazon Bedrock through its Converse API, translated to and from OpenAI chat.

import { postToGateway } from "../gateway";
import type { ChatProvider } from "../types";
import { authHeaders, conversePath, gatewayPath } from "./endpoint";
import { bedrockError } from "./errors";
import { answersInJson, converseRequest } from "./request";
import { completion } from "./response";
import { translateStream } from "./stream";

export { PROVIDER } from "./endpoint";
// What the Messages route uses for Claude on Bedrock (Anthropic's format, through InvokeModel).
export { bedrockError } from "./errors";
export { anthropicEvents, countMessageTokens, invokeMessages } from "./invoke";

export const awsBedrock: ChatProvider = {
  send: async (call) => {
    const request = converseRequest(call);
    const path = conversePath(call.upstreamModel, call.body.stream === true);
    // signed over the very bytes postToGateway sends (JSON.stringify of the same object)
    const auth = await authHeaders(call, path, JSON.stringify(request));
    return postToGateway(call, gatewayPath(path), request, auth);
  },
  completion: (text, call) => completion(text, call.model, answersInJson(call)),
  stream: (upstream, call, { clientWantsUsage }) =>
    translateStream(upstream, {
      model: call.model,
      clientWantsUsage,
      jsonAnswer: answersInJson(call),
      signal: call.signal,
    }),
  error: bedrockError,
};
