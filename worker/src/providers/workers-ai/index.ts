// Workers AI through the AI binding, translated to and from OpenAI chat.

import type { ChatProvider } from "../types";
import { runOnBinding } from "./binding";
import { runError } from "./errors";
import { runInputs } from "./request";
import { completion } from "./response";
import { translateStream } from "./stream";

export const workersAI: ChatProvider = {
  send: (call) => runOnBinding(call, runInputs(call)),
  completion: (text, call) => completion(text, { requestId: call.requestId, model: call.upstreamModel }),
  stream: (upstream, call, { clientWantsUsage }) =>
    translateStream(upstream, {
      clientWantsUsage,
      requestId: call.requestId,
      model: call.upstreamModel,
      signal: call.signal,
    }),
  error: runError,
};

// What the run and embeddings routes (Workers AI's own inputs, on the binding) use.
export { runOnBinding } from "./binding";
export { runError } from "./errors";
export { meterRunStream, openaiEmbeddings, runAnswer } from "./run";
