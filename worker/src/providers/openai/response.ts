// An OpenAI chat completion passes through byte for byte; only its usage and output are read.

import type { Answer } from "../types";
import { chatOutput, chatTier } from "./output";
import { readUsage } from "./usage";

export function completion(text: string): Answer {
  try {
    const body = JSON.parse(text) as { usage?: unknown };
    return { text, said: chatOutput(body), usage: readUsage(body.usage), extras: { tools: {}, tier: chatTier(body) } };
  } catch {
    return { text, said: text, usage: null }; // not JSON: passed on as it came; the cost is estimated
  }
}
