// The provider registry: the slug of a catalog model (`anthropic` of `anthropic/claude-…`) →
// the module that speaks to it. The chat route names no provider; adding one is a folder of
// its own plus one line here (docs/adding-a-provider.md).

import { WORKERS_AI } from "../generated/contract";
import { CUSTOM_PROVIDERS, OPENAI_COMPATIBLE } from "../generated/settings";
import { HttpError } from "../lib/errors";
import { anthropic } from "./anthropic";
import { awsBedrock } from "./aws-bedrock";
import { azureOpenai } from "./azure-openai";
import { googleAiStudio } from "./google-ai-studio";
import { googleVertexAi } from "./google-vertex-ai";
import { openai, openaiWire } from "./openai";
import type { ChatProvider } from "./types";
import { workersAI } from "./workers-ai";

// The shapes every route and the meter share with the providers, and AI Gateway's own calls
// (the routes that pass a provider's wire through post with these).
export { fetchUpstream, gatewayUrl, postToGateway, tenantMetadata } from "./gateway";
export type { EventSourceMessage } from "./sse";
export { rewriteEvents } from "./sse";
export type { Answer, ChatCall, ChatProvider, Metered, MeteredStream, TokenUsage, UpstreamCall } from "./types";

const COMPAT_PATH = "compat/chat/completions";

const NATIVE: Readonly<Record<string, ChatProvider>> = {
  openai,
  anthropic,
  [WORKERS_AI]: workersAI,
  "google-ai-studio": googleAiStudio,
  "google-vertex-ai": googleVertexAi,
  "azure-openai": azureOpenai,
  "aws-bedrock": awsBedrock,
};

/** OpenAI-compatible providers the stack declares (routing.openaiCompatible): native path or
 * compat; and its AI Gateway custom providers (routing.customProviders), a team's own servers. */
function compatible(slug: string): ChatProvider | undefined {
  if (CUSTOM_PROVIDERS.includes(slug)) return openaiWire(`${slug}/chat/completions`, "max_tokens");
  if (!Object.hasOwn(OPENAI_COMPATIBLE, slug)) return undefined;
  const path = OPENAI_COMPATIBLE[slug] as string;
  return path === "compat" ? openaiWire(COMPAT_PATH, "max_tokens") : openaiWire(path, "max_tokens");
}

/** A catalog model's provider and what that provider calls the model. */
export function providerOf(model: string): { slug: string; upstreamModel: string; provider: ChatProvider } {
  const slash = model.indexOf("/");
  const slug = model.slice(0, slash);
  const provider = (Object.hasOwn(NATIVE, slug) ? NATIVE[slug] : undefined) ?? compatible(slug);
  if (!provider) {
    // config validation makes this unreachable; say so plainly if a render ever disagrees
    throw new HttpError(500, `No provider module for '${slug}'.`, { code: "internal_error" });
  }
  // /compat wants the catalog id as the model; native paths want the provider's own name
  const upstreamModel = OPENAI_COMPATIBLE[slug] === "compat" ? model : model.slice(slash + 1);
  return { slug, upstreamModel, provider };
}
