// Usage estimates: the prompt bound reserved before a request is never below what the prompt
// can cost; reported usage is read only when it is well-formed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { readUsage } from "../src/providers/openai/usage";
import type { ChatBody } from "../src/schemas";
import { estimatePromptTokens, estimateTokens, promptTokensBound } from "../src/usage";

function body(messages: ChatBody["messages"], extra: Partial<ChatBody> = {}): ChatBody {
  return { messages, ...extra } as ChatBody;
}

describe("promptTokensBound", () => {
  const bodies = [
    body([{ role: "user", content: "hi" }]),
    body([
      { role: "system", content: "Be terse." },
      { role: "user", content: "Ünïcödé 😀 ".repeat(50) },
    ]),
    body([
      {
        role: "user",
        content: [
          { type: "text", text: "look" },
          { type: "image_url", image_url: { url: "x" } },
        ],
      },
    ]),
    body([{ role: "user", content: "call a tool" }], { tools: [{ type: "function", function: { name: "f" } }] }),
  ];

  test("is at least the estimate of the same prompt", () => {
    for (const b of bodies) assert.ok(promptTokensBound(b) >= estimatePromptTokens(b));
  });

  test("counts every byte of the messages and the tools", () => {
    const plain = body([{ role: "user", content: "x".repeat(1000) }]);
    assert.ok(promptTokensBound(plain) >= 1000);
    const tool = { type: "function" as const, function: { name: "f", description: "y".repeat(500) } };
    const withTools = { ...plain, tools: [tool] };
    assert.ok(promptTokensBound(withTools) >= promptTokensBound(plain) + 500);
  });

  test("charges each image at its upper bound, not by the bytes of its URL", () => {
    const one = body([{ role: "user", content: [{ type: "image_url", image_url: { url: "u" } }] }]);
    const two = body([
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: "u" } },
          { type: "image_url", image_url: { url: "v" } },
        ],
      },
    ]);
    assert.ok(promptTokensBound(one) > 48_000);
    assert.ok(promptTokensBound(two) - promptTokensBound(one) >= 48_200);
  });
});

describe("estimates", () => {
  test("four UTF-8 bytes make a token, rounded up", () => {
    assert.equal(estimateTokens(""), 0);
    assert.equal(estimateTokens("abcd"), 1);
    assert.equal(estimateTokens("abcde"), 2);
    assert.equal(estimateTokens("😀"), 1); // 4 bytes
  });

  test("a prompt costs framing per message plus its text", () => {
    const b = body([
      { role: "user", content: "abcdefgh" },
      { role: "user", content: [{ type: "text", text: "abcd" }] },
    ]);
    assert.equal(estimatePromptTokens(b), 3 + (4 + 2) + (4 + 1));
  });
});

describe("readUsage", () => {
  test("reads OpenAI's usage, cached tokens included", () => {
    assert.deepEqual(
      readUsage({ prompt_tokens: 10, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 4 } }),
      { promptTokens: 10, completionTokens: 5, cachedTokens: 4, cacheWriteTokens: 0 },
    );
    assert.deepEqual(readUsage({ prompt_tokens: 1, completion_tokens: 2 }), {
      promptTokens: 1,
      completionTokens: 2,
      cachedTokens: 0,
      cacheWriteTokens: 0,
    });
  });

  test("is null for absent or malformed usage", () => {
    for (const usage of [undefined, null, {}, { prompt_tokens: "10", completion_tokens: 5 }, { prompt_tokens: 1 }, 7]) {
      assert.equal(readUsage(usage), null, JSON.stringify(usage));
    }
  });
});
