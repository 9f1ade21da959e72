// Azure OpenAI: OpenAI's wire (the openai module's request, answer, stream and usage; Azure's
// content filter annotations pass through as they came) at a deployment of the stack's
// resource, with Azure's key header and Azure's errors. The Responses and embeddings routes
// reach the same deployments through `azureEndpoint`.

import { openaiWireAt } from "../openai";
import type { ChatProvider, UpstreamCall } from "../types";
import { authHeaders, deploymentOf, type Operation, operationPath } from "./endpoint";
import { azureError } from "./errors";

export { PROVIDER } from "./endpoint";

export const azureOpenai: ChatProvider = openaiWireAt({
  path: (call) => operationPath(call.upstreamModel, "chat/completions"),
  auth: authHeaders,
  maxTokensField: "max_completion_tokens",
  modelInBody: false,
  error: azureError,
});

/** Where a route in OpenAI's own wire (Responses, embeddings) sends an Azure model's call, and
 * the deployment Azure takes as its `model`. */
export function azureEndpoint(call: UpstreamCall, operation: Operation) {
  return {
    path: operationPath(call.upstreamModel, operation),
    auth: authHeaders(call),
    deployment: deploymentOf(call.upstreamModel).deployment,
    error: azureError,
  };
}
