// Usage estimates: the prompt bound reserved before a request is never below what the prompt
// can cost; reported usage is read only when it is well-formed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { estimatePromptTokens, estimateTokens, inputTokensBound } from "../src/pricing/estimate";
import type { ChatBody } from "../src/protocol/bodies";
import { readUsage } from "../src/providers/openai/usage";

const utf8 = new TextEncoder();

function body(messages: ChatBody["messages"], extra: Partial<ChatBody> = {}): ChatBody {
  return { messages, ...extra } as ChatBody;
}

/** A body as the route reads it: parsed, its text, its bytes. */
function request(parsed: Record<string, unknown>) {
  const text = JSON.stringify(parsed);
  return { body: parsed, text, bytes: utf8.encode(text).length };
}

const bound = (parsed: Record<string, unknown>, tools = false) => inputTokensBound(request(parsed), { tools });

describe("inputTokensBound", () => {
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
    for (const b of bodies) assert.ok(bound(b) >= estimatePromptTokens(b));
  });

  test("counts every byte of the body, parts it does not understand included", () => {
    const plain = body([{ role: "user", content: "x".repeat(1000) }]);
    assert.ok(bound(plain) >= 1000);
    const unknown = { ...plain, a_field_from_next_month: { notes: "y".repeat(5000) } };
    assert.ok(bound(unknown) >= bound(plain) + 5000);
    const newRole = body([{ role: "narrator", content: [{ type: "hologram", payload: "z".repeat(3000) }] }]);
    assert.ok(bound(newRole) >= 3000);
  });

  test("adds the provider's own prompt when tools or a structured format are given", () => {
    const plain = body([{ role: "user", content: "hi" }]);
    assert.ok(bound(plain, true) >= bound(plain) + 1000);
  });

  test("charges each media part at its upper bound wherever it sits, not by the bytes of its URL", () => {
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
    assert.ok(bound(one) > 48_000);
    assert.ok(bound(two) - bound(one) >= 48_200);
    const responses = { input: [{ role: "user", content: [{ type: "input_image", image_url: "u" }] }] };
    const anthropic = { messages: [{ role: "user", content: [{ type: "document", source: { type: "url" } }] }] };
    const spaced = request({});
    spaced.text = '{"deep": {"x": [{"type" : "image"}]}}';
    for (const parsed of [responses, anthropic]) assert.ok(bound(parsed) > 48_000);
    assert.ok(inputTokensBound(spaced, { tools: false }) > 48_000);
  });

  test("text that merely mentions a media type is not media", () => {
    const said = body([{ role: "user", content: 'please send {"type": "image"}' }]);
    assert.ok(bound(said) < 1000);
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
