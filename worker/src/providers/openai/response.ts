// An OpenAI chat completion passes through byte for byte; only its usage is read.

import type { TokenUsage } from "../types";
import { readUsage } from "./usage";

export function completion(text: string): { text: string; usage: TokenUsage | null } {
  try {
    return { text, usage: readUsage((JSON.parse(text) as { usage?: unknown }).usage) };
  } catch {
    return { text, usage: null }; // not JSON: passed on as it came; the cost is estimated
  }
}
