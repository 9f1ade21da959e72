// Shared by the provider unit tests: a ChatCall, streams from bytes, and byte-boundary cuts.

import type { ChatBody } from "../../src/protocol/bodies";
import type { Env } from "../../src/protocol/env";
import type { Principal } from "../../src/protocol/policy";
import type { ChatCall } from "../../src/providers/types";
import { undeclaredRouting } from "../../src/request/policy";

export const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const PRINCIPAL: Principal = {
  hash: "h",
  keyId: "key_ana",
  userId: "ana",
  orgId: "acme",
  policy: {
    userLimitMicros: 1,
    keyLimitMicros: null,
    spendRates: [],
    orgBudgetMicros: 1,
    failureMode: "fail-closed",
    fallbackDailyLimitMicros: 0,
    allowedModels: [],
    defaultModel: null,
    cacheTtl: 0,
    priceOverrides: {},
    ...undeclaredRouting(),
    version: "v",
  },
};

export function call(body: Partial<ChatBody> & Record<string, unknown>, overrides: Partial<ChatCall> = {}): ChatCall {
  return {
    env: { PROVIDER_KEY_ANTHROPIC: "sk-ant-test" } as unknown as Env,
    principal: PRINCIPAL,
    requestId: "req_1",
    route: "/v1/chat/completions",
    model: "anthropic/claude-sonnet-4-5",
    upstreamModel: "claude-sonnet-4-5",
    provider: "anthropic",
    body: { messages: [{ role: "user", content: "hi" }], ...body } as ChatBody,
    maxTokens: 4096,
    price: { in: 3_000_000, out: 15_000_000, cachedIn: 300_000, cacheWrite: 3_750_000 },
    ...overrides,
  };
}

export function streamOf(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      controller.close();
    },
  });
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let out = "";
  for await (const part of stream) out += decoder.decode(part, { stream: true });
  return out + decoder.decode();
}

export function splitAt(bytes: Uint8Array, ...cuts: number[]): Uint8Array[] {
  const points = [0, ...cuts, bytes.length];
  return points.slice(1).map((end, i) => bytes.slice(points[i], end));
}

/** `data:` payloads of an SSE text, parsed (the `[DONE]` marker kept as a string). */
export function dataOf(sse: string): unknown[] {
  return sse
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6))
    .map((d) => (d === "[DONE]" ? d : JSON.parse(d)));
}

/** A function tool as an OpenAI chat request declares it (the translation tests' one tool). */
export const WEATHER = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
