// OpenAI's embeddings through AI Gateway (`openai/embeddings`), passed through; usage is
// `prompt_tokens` (embeddings have no output).

import type { Answer } from "../types";

export const EMBEDDINGS_PATH = "openai/embeddings";

export function embeddingsAnswer(raw: string): Answer {
  try {
    const prompt = (JSON.parse(raw) as { usage?: { prompt_tokens?: unknown } }).usage?.prompt_tokens;
    const usage =
      typeof prompt === "number"
        ? { promptTokens: prompt, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 0 }
        : null;
    return { text: raw, said: "", usage }; // vectors are no output: input tokens only
  } catch {
    return { text: raw, said: "", usage: null };
  }
}
