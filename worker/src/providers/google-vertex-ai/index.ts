// Gemini on Vertex AI: Gemini's wire (the google-ai-studio module's translation, stream, usage
// and errors) at Vertex AI's endpoint with Vertex's credential; only the endpoint is its own.

import { postToGateway } from "../gateway";
import { geminiError } from "../google-ai-studio/errors";
import { generateContentRequest } from "../google-ai-studio/request";
import { completion } from "../google-ai-studio/response";
import { translateStream } from "../google-ai-studio/stream";
import type { ChatProvider } from "../types";
import { authHeaders, generatePath } from "./endpoint";

export const googleVertexAi: ChatProvider = {
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
