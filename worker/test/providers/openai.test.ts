// The OpenAI module (and the OpenAI-compatible providers it serves): the request upstream,
// the pass-through answer, and OpenAI's and AI Gateway's errors → ours.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { authHeaders } from "../../src/providers/openai/endpoint";
import { chatError } from "../../src/providers/openai/errors";
import { chatRequest } from "../../src/providers/openai/request";
import { completion } from "../../src/providers/openai/response";
import { call } from "./support";

const openaiCall = (body: Record<string, unknown>) =>
  call(body, {
    model: "openai/gpt-4o-mini",
    upstreamModel: "gpt-4o-mini",
    provider: "openai",
    env: { PROVIDER_KEY_OPENAI: "sk-test" } as never,
  });

describe("request", () => {
  test("the provider's model id, the output bound when the client sets none, usage on streams", () => {
    const request = chatRequest(
      openaiCall({ model: "gpt-4o-mini", stream: true, temperature: 0 }),
      "max_completion_tokens",
    );
    assert.deepEqual(request, {
      messages: [{ role: "user", content: "hi" }],
      model: "gpt-4o-mini",
      stream: true,
      temperature: 0,
      max_completion_tokens: 4096,
      stream_options: { include_usage: true },
    });
  });

  test("a bound the client set is kept, in the field it used", () => {
    const request = chatRequest(openaiCall({ max_tokens: 50 }), "max_completion_tokens");
    assert.deepEqual([request.max_tokens, request.max_completion_tokens], [50, undefined]);
    const compatible = chatRequest(openaiCall({}), "max_tokens");
    assert.equal(compatible.max_tokens, 4096);
  });

  test("the provider's key as a bearer token, none when stored on the gateway", () => {
    assert.deepEqual(authHeaders(openaiCall({})), { authorization: "Bearer sk-test" });
    assert.deepEqual(authHeaders(call({}, { provider: "groq", env: {} as never })), {});
  });
});

test("an answer passes through byte for byte, its usage read", () => {
  const raw = '{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}';
  const { text, usage } = completion(raw);
  assert.equal(text, raw);
  assert.deepEqual(usage, { promptTokens: 3, completionTokens: 2, cachedTokens: 0, cacheWriteTokens: 0 });
  assert.deepEqual(completion("not json"), { text: "not json", said: "not json", usage: null });
});

describe("errors", () => {
  test("a 4xx keeps OpenAI's fields; 5xx is 502; our credentials refused is 502", async () => {
    const body = { error: { message: "bad param", type: "invalid_request_error", param: "temperature", code: "x" } };
    const error = await chatError(new Response(JSON.stringify(body), { status: 400 }));
    assert.deepEqual([error.status, error.param, error.code, error.message], [400, "temperature", "x", "bad param"]);
    assert.equal((await chatError(new Response("{}", { status: 503 }))).status, 502);
    assert.equal((await chatError(new Response("{}", { status: 401 }))).code, "provider_auth_error");
  });
});
